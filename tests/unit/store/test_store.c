/* libstore against real LMDB files in a private temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/inboxd-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (store_open(&f->st, f->dir, 64, 0) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct store_txn *
wtxn(struct fixture *f)
{
	struct store_txn *t = NULL;

	assert_int_equal(store_txn_begin(f->st, true, &t), 0);
	return t;
}

static uint64_t
new_conv(struct store_txn *t, const char *thread, int64_t updated, int state)
{
	struct store_conv c = {
		.connector = "api1", .channel = "api", .thread = thread,
		.state = state, .created = updated, .updated = updated,
		.priority = INBOX_PRIO_NORMAL, .contact_id = 1,
	};

	assert_int_equal(store_conv_put(t, &c), 0);
	assert_true(c.id > 0);
	return c.id;
}

static void
conversation_is_found_by_its_thread_and_keeps_its_fields(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f);
	struct store_conv c;
	uint64_t id, found = 0;

	id = new_conv(t, "thread-A", 1000, STORE_STATE_OPEN);
	assert_int_equal(store_conv_find_thread(t, "api1", "thread-A", &found), 0);
	assert_int_equal(found, id);
	assert_int_equal(store_conv_find_thread(t, "api1", "thread-B", &found),
	    INBOX_ENOTFOUND);
	assert_int_equal(store_conv_find_thread(t, "api2", "thread-A", &found),
	    INBOX_ENOTFOUND);
	assert_int_equal(store_txn_commit(t), 0);

	/* a fresh environment sees what was committed */
	store_close(f->st);
	assert_int_equal(store_open(&f->st, f->dir, 64, 0), 0);
	assert_int_equal(store_txn_begin(f->st, false, &t), 0);
	assert_int_equal(store_conv_get(t, id, &c), 0);
	assert_string_equal(c.thread, "thread-A");
	assert_string_equal(c.connector, "api1");
	assert_int_equal(c.updated, 1000);
	assert_null(c.subject);
	assert_null(c.assignee);
	assert_int_equal(store_conv_get(t, id + 100, &c), INBOX_ENOTFOUND);
	store_txn_abort(t);
}

struct ids {
	uint64_t v[64];
	size_t n;
};

static int
collect_conv(void *arg, const struct store_conv *c)
{
	struct ids *ids = arg;

	ids->v[ids->n++] = c->id;
	return 0;
}

/* The feed of one state from the cursor (key, id), at most limit. */
static int
feed(struct store_txn *t, int st, int64_t key, uint64_t id, size_t limit,
    struct ids *ids, bool *more)
{
	struct store_feed_q q = { .state = st, .priority = -1,
	    .after_key = key, .after_id = id, .limit = limit };
	int64_t nk;
	uint64_t ni;

	return store_feed(t, &q, collect_conv, ids, more, &nk, &ni);
}

static void
feed_lists_a_state_newest_first_and_pages_without_gaps(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f);
	uint64_t a, b, c, d, e;
	struct ids ids = { .n = 0 };
	struct store_conv conv;
	bool more;

	a = new_conv(t, "a", 100, STORE_STATE_OPEN);
	b = new_conv(t, "b", 300, STORE_STATE_OPEN);
	c = new_conv(t, "c", 200, STORE_STATE_CLOSED);
	d = new_conv(t, "d", 300, STORE_STATE_OPEN); /* same time as b */
	e = new_conv(t, "e", 50, STORE_STATE_SNOOZED);

	assert_int_equal(feed(t, STORE_STATE_OPEN, 0, 0, 10, &ids, &more), 0);
	assert_false(more);
	assert_int_equal(ids.n, 3);
	assert_int_equal(ids.v[0], d); /* ties: higher id first */
	assert_int_equal(ids.v[1], b);
	assert_int_equal(ids.v[2], a);

	/* pages of one, each after the previous cursor */
	ids.n = 0;
	assert_int_equal(feed(t, STORE_STATE_OPEN, 0, 0, 1, &ids, &more), 0);
	assert_true(more);
	assert_int_equal(feed(t, STORE_STATE_OPEN, 300, d, 1, &ids, &more), 0);
	assert_true(more);
	assert_int_equal(feed(t, STORE_STATE_OPEN, 300, b, 1, &ids, &more), 0);
	assert_false(more);
	assert_int_equal(ids.n, 3);
	assert_int_equal(ids.v[0], d);
	assert_int_equal(ids.v[1], b);
	assert_int_equal(ids.v[2], a);

	/* moving a conversation (update + state change) moves its index */
	assert_int_equal(store_conv_get(t, a, &conv), 0);
	conv.updated = 999;
	conv.thread = "a";
	conv.connector = "api1";
	conv.channel = "api";
	assert_int_equal(store_conv_put(t, &conv), 0);
	ids.n = 0;
	assert_int_equal(feed(t, STORE_STATE_OPEN, 0, 0, 10, &ids, &more), 0);
	assert_int_equal(ids.n, 3);
	assert_int_equal(ids.v[0], a);
	ids.n = 0;
	assert_int_equal(feed(t, STORE_STATE_CLOSED, 0, 0, 10, &ids, &more), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.v[0], c);
	ids.n = 0;
	assert_int_equal(feed(t, STORE_STATE_SNOOZED, 0, 0, 10, &ids, &more), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.v[0], e);
	store_txn_abort(t);
}

static int
collect_msg(void *arg, const struct store_msg *m)
{
	struct ids *ids = arg;

	ids->v[ids->n++] = m->id;
	return 0;
}

static void
message_is_stored_once_per_connector_and_external_id(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f);
	const char *env = "{\"text\":\"hi\",\"subject\":\"S\",\"x-extra\":1}";
	struct store_msg m = {
		.contact_id = 1, .dir = STORE_DIR_IN, .ts = 5, .created = 6,
		.connector = "api1", .channel = "api", .external_id = "m-1",
		.envelope = env, .envelope_len = strlen(env),
	};
	struct store_msg got;
	struct ids ids = { .n = 0 };
	uint64_t conv, other, id;
	cJSON *json;

	conv = new_conv(t, "t", 1, STORE_STATE_OPEN);
	other = new_conv(t, "u", 1, STORE_STATE_OPEN);
	m.conv_id = conv;
	assert_int_equal(store_msg_add(t, &m), 0);
	assert_int_equal(store_msg_find_ext(t, "api1", "m-1", &id), 0);
	assert_int_equal(id, m.id);
	assert_int_equal(store_msg_find_ext(t, "api2", "m-1", &id),
	    INBOX_ENOTFOUND);
	/* the same (connector, external_id) again is refused */
	assert_int_equal(store_msg_add(t, &m), INBOX_EEXIST);

	m.external_id = "m-2";
	assert_int_equal(store_msg_add(t, &m), 0);
	m.external_id = "m-3";
	m.conv_id = other;
	assert_int_equal(store_msg_add(t, &m), 0);
	m.external_id = "m-4";
	m.conv_id = conv;
	assert_int_equal(store_msg_add(t, &m), 0);

	assert_int_equal(store_conv_messages(t, conv, collect_msg, &ids), 0);
	assert_int_equal(ids.n, 3);
	assert_true(ids.v[0] < ids.v[1] && ids.v[1] < ids.v[2]);

	assert_int_equal(store_msg_get(t, ids.v[0], &got), 0);
	assert_string_equal(got.external_id, "m-1");
	assert_int_equal(got.envelope_len, strlen(env));
	json = store_msg_json(&got, NULL);
	assert_string_equal(cJSON_GetObjectItem(json, "text")->valuestring, "hi");
	assert_string_equal(cJSON_GetObjectItem(json, "direction")->valuestring,
	    "in");
	assert_null(cJSON_GetObjectItem(json, "x-extra"));
	cJSON_Delete(json);
	store_txn_abort(t);
}

static int
collect_outbox(void *arg, const struct store_event *ev)
{
	struct ids *ids = arg;

	assert_string_equal(ev->name, ids->n == 0 ? "a.b" : "c.d");
	assert_string_equal(ev->id, ids->n == 0 ? "10-0" : "10-1");
	assert_string_equal(ev->data, "{}");
	if (ids->n == 0) {
		assert_null(ev->to);
		assert_null(ev->cmd_id);
		assert_null(ev->about);
	} else {
		assert_string_equal(ev->to, "ann");
		assert_string_equal(ev->cmd_id, "k-1");
		assert_string_equal(ev->about, "api1\t");
	}
	ids->n++;
	return 0;
}

static void
outbox_keeps_events_in_order_until_cleared(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f);
	struct ids ids = { .n = 0 };
	uint64_t v = 0;

	assert_int_equal(store_outbox_add(t, &(struct store_event){ .id = "10-0",
	    .name = "a.b", .data = "{}" }), 0);
	assert_int_equal(store_outbox_add(t, &(struct store_event){ .id = "10-1",
	    .name = "c.d", .data = "{}", .to = "ann", .cmd_id = "k-1",
	    .about = "api1\t" }), 0);
	assert_int_equal(store_meta_put(t, "event_ms", 10), 0);
	assert_int_equal(store_txn_commit(t), 0);

	assert_int_equal(store_txn_begin(f->st, false, &t), 0);
	assert_int_equal(store_outbox_foreach(t, collect_outbox, &ids), 0);
	assert_int_equal(ids.n, 2);
	assert_int_equal(store_meta_get(t, "event_ms", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(store_meta_get(t, "nope", &v), INBOX_ENOTFOUND);
	store_txn_abort(t);

	t = wtxn(f);
	assert_int_equal(store_outbox_clear(t), 0);
	assert_int_equal(store_txn_commit(t), 0);
	ids.n = 0;
	assert_int_equal(store_txn_begin(f->st, false, &t), 0);
	assert_int_equal(store_outbox_foreach(t, collect_outbox, &ids), 0);
	assert_int_equal(ids.n, 0);
	store_txn_abort(t);
}

static void
read_only_open_refuses_writes_and_reports_a_missing_store(void **state)
{
	struct fixture *f = *state;
	struct store *ro = NULL;
	struct store_txn *t = NULL;
	struct store_agent a = { .login = "ann", .name = "Ann", .role = "agent",
	    .pwhash = "$argon2id$x", .created = 1, .updated = 1 };
	struct store_agent got;

	t = wtxn(f);
	assert_int_equal(store_agent_put(t, &a), 0);
	assert_int_equal(store_txn_commit(t), 0);

	assert_int_equal(store_open(&ro, "/tmp/inboxd-no-such-store-dir", 64,
	    STORE_RDONLY), INBOX_ENOTFOUND);
	assert_int_equal(store_open(&ro, f->dir, 64, STORE_RDONLY), 0);
	assert_int_equal(store_txn_begin(ro, true, &t), INBOX_ESTATE);
	assert_int_equal(store_txn_begin(ro, false, &t), 0);
	assert_int_equal(store_agent_get(t, "ann", &got), 0);
	assert_string_equal(got.pwhash, "$argon2id$x");
	assert_string_equal(got.role, "agent");
	assert_int_equal(store_agent_get(t, "bob", &got), INBOX_ENOTFOUND);
	store_txn_abort(t);
	store_close(ro);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    conversation_is_found_by_its_thread_and_keeps_its_fields,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    feed_lists_a_state_newest_first_and_pages_without_gaps,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    message_is_stored_once_per_connector_and_external_id,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    outbox_keeps_events_in_order_until_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    read_only_open_refuses_writes_and_reports_a_missing_store,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
