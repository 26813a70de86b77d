/*
 * libstore schema 2 against real LMDB files in a private temporary
 * directory: the faceted feeds and their cursors, the timer index, contacts
 * and merges, messages, tasks, templates, tags, the outbox, and the
 * migration of a schema-1 store (written here with raw LMDB, in the walking
 * skeleton's record layout, because no code writes it any more).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "inbox/dialog.h"
#include "store/store.h"

#define MAP_MB 64

struct fixture {
	char dir[64];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/inboxd-store2-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (store_open(&f->st, f->dir, MAP_MB, 0) != 0)
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
wtxn(struct store *st)
{
	struct store_txn *t = NULL;

	assert_int_equal(store_txn_begin(st, true, &t), 0);
	return t;
}

static struct store_txn *
rtxn(struct store *st)
{
	struct store_txn *t = NULL;

	assert_int_equal(store_txn_begin(st, false, &t), 0);
	return t;
}

struct ids {
	uint64_t v[256];
	size_t n;
};

static void
ids_add(struct ids *ids, uint64_t id)
{
	assert_true(ids->n < sizeof(ids->v) / sizeof(ids->v[0]));
	ids->v[ids->n++] = id;
}

static int
collect_id(void *arg, uint64_t id)
{
	ids_add(arg, id);
	return 0;
}

static void
assert_ids(const struct ids *got, size_t n, const uint64_t *want)
{
	if (got->n != n)
		fail_msg("got %zu ids, want %zu", got->n, n);
	for (size_t i = 0; i < n; i++)
		if (got->v[i] != want[i])
			fail_msg("id %zu: got %llu, want %llu", i,
			    (unsigned long long)got->v[i],
			    (unsigned long long)want[i]);
}

#define ASSERT_IDS(got, ...) do {                                          \
	const uint64_t want_[] = { __VA_ARGS__ };                          \
	assert_ids((got), sizeof(want_) / sizeof(want_[0]), want_);        \
} while (0)

/* ---- feeds: a model of ~60 conversations checked against store_feed ---- */

#define NCONV 60

static const char *const tag_pool[] = { "billing", "bug", "refund", "vip" };
static const char *const assignee_pool[] = { NULL, "ann", "bob", "cy" };
static const char *const channel_pool[] = { "email", "telegram", "whatsapp" };
static const char *const subject_pool[] = { NULL, "Where is my INVOICE?",
	"Login trouble", "refund please", "Hello" };
static const char *const preview_pool[] = { NULL,
	"I paid the invoice yesterday", "It crashes on start", "thanks!",
	"Can I get a Refund?" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct mconv {
	uint64_t id;
	int state;
	const char *assignee, *channel, *subject, *preview;
	int priority;
	uint64_t contact;
	int64_t updated, snooze_until;
	size_t ntags;
	const char *tags[NELEM(tag_pool)];   /* sorted: tag_pool is */
};

struct model {
	struct mconv c[NCONV];
	size_t n;
};

static uint32_t
rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static void
mconv_tags(struct mconv *m, unsigned bits)
{
	m->ntags = 0;
	for (size_t i = 0; i < NELEM(tag_pool); i++)
		if (bits & (1u << i))
			m->tags[m->ntags++] = tag_pool[i];
}

static void
conv_from_model(struct store_conv *c, const struct mconv *m)
{
	c->state = m->state;
	c->assignee = m->assignee;
	c->channel = m->channel;
	c->subject = m->subject;
	c->preview = m->preview;
	c->priority = m->priority;
	c->contact_id = m->contact;
	c->updated = m->updated;
	c->snooze_until = m->snooze_until;
	c->ntags = m->ntags;
	for (size_t i = 0; i < m->ntags; i++)
		c->tags[i] = m->tags[i];
}

/* Creates the conversations of a deterministic, varied model: every facet
 * has several values, `updated` and `snooze_until` repeat (ties). */
static void
model_build(struct store *st, struct model *mo)
{
	struct store_txn *t = wtxn(st);
	uint32_t seed = 12345;

	mo->n = NCONV;
	for (size_t i = 0; i < NCONV; i++) {
		struct mconv *m = &mo->c[i];
		struct store_conv c = { 0 };
		char thread[32];

		m->state = (int)(rnd(&seed) % 3);
		m->assignee = assignee_pool[rnd(&seed) % NELEM(assignee_pool)];
		m->channel = channel_pool[rnd(&seed) % NELEM(channel_pool)];
		m->subject = subject_pool[rnd(&seed) % NELEM(subject_pool)];
		m->preview = preview_pool[rnd(&seed) % NELEM(preview_pool)];
		m->priority = (int)(rnd(&seed) % INBOX_PRIO__COUNT);
		m->contact = 1 + rnd(&seed) % 5;
		m->updated = 1000 + rnd(&seed) % 25;
		m->snooze_until = m->state == STORE_STATE_SNOOZED ?
		    5000 + rnd(&seed) % 8 : 0;
		mconv_tags(m, rnd(&seed) % 16);

		snprintf(thread, sizeof(thread), "thread-%zu", i);
		c.connector = "api1";
		c.thread = thread;
		c.created = m->updated;
		conv_from_model(&c, m);
		assert_int_equal(store_conv_put(t, &c), 0);
		assert_true(c.id > 0);
		m->id = c.id;
	}
	assert_int_equal(store_txn_commit(t), 0);
}

static bool
icontains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (hay == NULL)
		return false;
	for (; *hay; hay++) {
		size_t i;

		for (i = 0; i < n; i++) {
			int a = hay[i], b = needle[i];

			if (a >= 'A' && a <= 'Z')
				a += 'a' - 'A';
			if (b >= 'A' && b <= 'Z')
				b += 'a' - 'A';
			if (a != b)
				break;
		}
		if (i == n)
			return true;
	}
	return false;
}

static bool
model_matches(const struct mconv *m, const struct store_feed_q *q)
{
	if (m->state != q->state)
		return false;
	if (q->assignee != NULL && strcmp(m->assignee ? m->assignee : "",
	    q->assignee) != 0)
		return false;
	if (q->tag != NULL) {
		bool found = false;

		for (size_t i = 0; i < m->ntags; i++)
			found |= strcmp(m->tags[i], q->tag) == 0;
		if (!found)
			return false;
	}
	if (q->channel != NULL && strcmp(m->channel, q->channel) != 0)
		return false;
	if (q->priority >= 0 && m->priority != q->priority)
		return false;
	if (q->contact_id != 0 && m->contact != q->contact_id)
		return false;
	if (q->text != NULL && !icontains(m->subject, q->text) &&
	    !icontains(m->preview, q->text))
		return false;
	return true;
}

static int64_t
model_key(const struct mconv *m)
{
	return m->state == STORE_STATE_SNOOZED ? m->snooze_until : m->updated;
}

/* Feed order: open and closed newest first, ties by id descending;
 * snoozed soonest first, ties by id ascending (the index order). */
static int
model_cmp(const void *a, const void *b)
{
	const struct mconv *x = *(const struct mconv *const *)a;
	const struct mconv *y = *(const struct mconv *const *)b;
	int64_t kx = model_key(x), ky = model_key(y);
	int r = kx < ky ? -1 : kx > ky ? 1 : x->id < y->id ? -1 : x->id > y->id;

	return x->state == STORE_STATE_SNOOZED ? r : -r;
}

static void
model_expect(const struct model *mo, const struct store_feed_q *q,
    struct ids *want)
{
	const struct mconv *sel[NCONV];
	size_t n = 0;

	for (size_t i = 0; i < mo->n; i++)
		if (model_matches(&mo->c[i], q))
			sel[n++] = &mo->c[i];
	qsort(sel, n, sizeof(sel[0]), model_cmp);
	want->n = 0;
	for (size_t i = 0; i < n; i++)
		ids_add(want, sel[i]->id);
}

static void
q_describe(const struct store_feed_q *q, char *buf, size_t cap)
{
	snprintf(buf, cap, "state=%d assignee=%s tag=%s channel=%s priority=%d "
	    "contact=%llu text=%s limit=%zu scan_max=%zu", q->state,
	    q->assignee ? q->assignee : "(any)", q->tag ? q->tag : "(any)",
	    q->channel ? q->channel : "(any)", q->priority,
	    (unsigned long long)q->contact_id, q->text ? q->text : "(any)",
	    q->limit, q->scan_max);
}

struct page {
	struct ids *ids;
	int state;
};

static int
collect_page(void *arg, const struct store_conv *c)
{
	struct page *p = arg;

	assert_int_equal(c->state, p->state);
	ids_add(p->ids, c->id);
	return 0;
}

/* Walks every page of q (limit and scan_max as given) following the
 * returned cursors, and checks the concatenation equals the model's answer:
 * every match exactly once, in feed order. Returns the number of calls. */
static size_t
check_feed(struct store_txn *t, const struct model *mo,
    const struct store_feed_q *q0)
{
	struct store_feed_q q = *q0;
	struct ids got = { .n = 0 }, want = { .n = 0 };
	struct page p = { &got, q.state };
	char desc[256];
	size_t calls;

	q_describe(&q, desc, sizeof(desc));
	model_expect(mo, &q, &want);
	q.after_key = 0;
	q.after_id = 0;
	for (calls = 1;; calls++) {
		size_t before = got.n;
		int64_t nk = -1;
		uint64_t ni = 0;
		bool more = true;
		int rc;

		if (calls > 1000)
			fail_msg("%s: the cursor never ends", desc);
		rc = store_feed(t, &q, collect_page, &p, &more, &nk, &ni);
		if (rc != 0)
			fail_msg("%s: store_feed returned %d", desc, rc);
		if (got.n - before > q.limit)
			fail_msg("%s: page of %zu, over the limit", desc,
			    got.n - before);
		if (!more)
			break;
		if (ni == 0 || (nk == q.after_key && ni == q.after_id))
			fail_msg("%s: more set but the cursor did not move "
			    "(%lld, %llu)", desc, (long long)nk,
			    (unsigned long long)ni);
		q.after_key = nk;
		q.after_id = ni;
	}
	if (got.n != want.n || memcmp(got.v, want.v, got.n *
	    sizeof(got.v[0])) != 0) {
		print_error("%s\n got :", desc);
		for (size_t i = 0; i < got.n; i++)
			print_error(" %llu", (unsigned long long)got.v[i]);
		print_error("\n want:");
		for (size_t i = 0; i < want.n; i++)
			print_error(" %llu", (unsigned long long)want.v[i]);
		print_error("\n");
		fail_msg("%s: feed differs from the model", desc);
	}
	return calls;
}

static struct store_feed_q
q_state(int state)
{
	return (struct store_feed_q){ .state = state, .priority = -1,
	    .limit = 1000 };
}

/* Every filter alone and several combinations, in each state, paged by 1,
 * by 7 and all at once; some with a small scan_max. */
static void
check_all_feeds(struct store *st, const struct model *mo)
{
	static const char *const texts[] = { "invoice", "REFUND", "zzz-none" };
	static const size_t limits[] = { 1, 7, 1000 };
	struct store_txn *t = rtxn(st);
	size_t nonempty = 0;

	for (int s = 0; s < STORE_STATE__COUNT; s++) {
		struct store_feed_q qs[128];
		size_t n = 0;

		qs[n++] = q_state(s);
		for (size_t i = 0; i < NELEM(tag_pool); i++) {
			qs[n] = q_state(s);
			qs[n++].tag = tag_pool[i];
		}
		for (size_t i = 0; i < NELEM(assignee_pool); i++) {
			qs[n] = q_state(s);
			qs[n++].assignee = assignee_pool[i] ? assignee_pool[i] :
			    "";
		}
		for (size_t i = 0; i < NELEM(channel_pool); i++) {
			qs[n] = q_state(s);
			qs[n++].channel = channel_pool[i];
		}
		for (int p = 0; p < INBOX_PRIO__COUNT; p++) {
			qs[n] = q_state(s);
			qs[n++].priority = p;
		}
		for (uint64_t c = 1; c <= 5; c++) {
			qs[n] = q_state(s);
			qs[n++].contact_id = c;
		}
		for (size_t i = 0; i < NELEM(texts); i++) {
			qs[n] = q_state(s);
			qs[n++].text = texts[i];
		}
		/* combinations */
		for (size_t i = 0; i < NELEM(tag_pool); i++) {
			for (size_t j = 0; j < NELEM(assignee_pool); j++) {
				qs[n] = q_state(s);
				qs[n].tag = tag_pool[i];
				qs[n++].assignee = assignee_pool[j] ?
				    assignee_pool[j] : "";
			}
		}
		qs[n] = q_state(s);
		qs[n].channel = "telegram";
		qs[n++].priority = INBOX_PRIO_HIGH;
		qs[n] = q_state(s);
		qs[n].contact_id = 2;
		qs[n++].tag = "vip";
		qs[n] = q_state(s);
		qs[n].tag = "refund";
		qs[n++].text = "invoice";
		qs[n] = q_state(s);
		qs[n].assignee = "";
		qs[n++].channel = "email";
		qs[n] = q_state(s);
		qs[n].assignee = "ann";
		qs[n].channel = "whatsapp";
		qs[n].priority = INBOX_PRIO_LOW;
		qs[n++].text = "e";
		assert_true(n <= NELEM(qs));

		for (size_t i = 0; i < n; i++) {
			struct ids want = { .n = 0 };

			model_expect(mo, &qs[i], &want);
			nonempty += want.n > 0;
			for (size_t l = 0; l < NELEM(limits); l++) {
				qs[i].limit = limits[l];
				qs[i].scan_max = 0;
				check_feed(t, mo, &qs[i]);
			}
			qs[i].limit = 2;
			qs[i].scan_max = 3;
			check_feed(t, mo, &qs[i]);
		}
	}
	/* the model is varied enough for the checks to mean something */
	assert_true(nonempty > 60);
	store_txn_abort(t);
}

static void
feeds_match_every_filter_alone_and_combined_across_all_pages(void **state)
{
	struct fixture *f = *state;
	struct model *mo = xcalloc(1, sizeof(*mo));
	size_t per[STORE_STATE__COUNT] = { 0 }, ties = 0;

	model_build(f->st, mo);
	for (size_t i = 0; i < mo->n; i++) {
		per[mo->c[i].state]++;
		for (size_t j = 0; j < i; j++)
			ties += mo->c[i].state == mo->c[j].state &&
			    model_key(&mo->c[i]) == model_key(&mo->c[j]);
	}
	for (int s = 0; s < STORE_STATE__COUNT; s++)
		assert_true(per[s] >= 10);
	assert_true(ties > 5);
	check_all_feeds(f->st, mo);
	free(mo);
}

/* Changes tags, state (close, reopen, snooze, unsnooze), assignee, updated,
 * priority, channel and contact of many conversations, each by reading the
 * stored record and putting it back changed, then checks every feed again:
 * an entry left in an old range would show up twice or in the wrong feed. */
static void
feeds_follow_updates_without_stale_entries(void **state)
{
	struct fixture *f = *state;
	struct model *mo = xcalloc(1, sizeof(*mo));
	struct store_txn *t;

	model_build(f->st, mo);
	t = wtxn(f->st);
	for (size_t i = 0; i < mo->n; i += 2) {
		struct mconv *m = &mo->c[i];
		struct store_conv c;

		switch (i % 10) {
		case 0:   /* tags: drop the first, or add vip */
			if (m->ntags > 0) {
				memmove(m->tags, m->tags + 1, (m->ntags - 1) *
				    sizeof(m->tags[0]));
				m->ntags--;
			} else {
				mconv_tags(m, 1u << 3);
			}
			break;
		case 2:   /* state */
			if (m->state == STORE_STATE_OPEN) {
				m->state = i % 4 == 0 ? STORE_STATE_CLOSED :
				    STORE_STATE_SNOOZED;
				m->snooze_until = m->state == STORE_STATE_SNOOZED ?
				    5003 : 0;
			} else {
				m->state = STORE_STATE_OPEN;
				m->snooze_until = 0;
			}
			break;
		case 4:   /* assignee */
			m->assignee = m->assignee == NULL ? "cy" :
			    strcmp(m->assignee, "ann") == 0 ? NULL : "ann";
			break;
		case 6:   /* updated, and a snoozed one's time */
			m->updated += 17;
			if (m->state == STORE_STATE_SNOOZED)
				m->snooze_until -= 3;
			break;
		case 8:   /* priority, channel, contact */
			m->priority = (m->priority + 1) % INBOX_PRIO__COUNT;
			m->channel = strcmp(m->channel, "email") == 0 ?
			    "whatsapp" : "email";
			m->contact = m->contact % 5 + 1;
			break;
		}
		assert_int_equal(store_conv_get(t, m->id, &c), 0);
		conv_from_model(&c, m);
		assert_int_equal(store_conv_put(t, &c), 0);
		assert_int_equal(c.id, m->id);
	}
	/* the changes are visible inside the write transaction too */
	{
		struct store_feed_q q = q_state(STORE_STATE_OPEN);
		struct ids got = { .n = 0 }, want = { .n = 0 };
		struct page p = { &got, STORE_STATE_OPEN };
		int64_t nk;
		uint64_t ni;
		bool more;

		assert_int_equal(store_feed(t, &q, collect_page, &p, &more, &nk,
		    &ni), 0);
		model_expect(mo, &q, &want);
		assert_ids(&got, want.n, want.v);
	}
	assert_int_equal(store_txn_commit(t), 0);
	check_all_feeds(f->st, mo);
	free(mo);
}

static uint64_t
put_conv(struct store_txn *t, const char *thread, int state, int64_t updated,
    int64_t snooze_until, const char *assignee, const char *tag)
{
	struct store_conv c = {
		.connector = "api1", .channel = "email", .thread = thread,
		.state = state, .created = updated, .updated = updated,
		.snooze_until = snooze_until, .assignee = assignee,
		.priority = INBOX_PRIO_NORMAL, .contact_id = 1,
	};

	if (tag != NULL) {
		c.ntags = 1;
		c.tags[0] = tag;
	}
	assert_int_equal(store_conv_put(t, &c), 0);
	return c.id;
}

static void
feed_of(struct store_txn *t, struct store_feed_q q, struct ids *ids)
{
	struct page p = { ids, q.state };
	int64_t nk;
	uint64_t ni;
	bool more;

	ids->n = 0;
	if (q.limit == 0)
		q.limit = 100;
	assert_int_equal(store_feed(t, &q, collect_page, &p, &more, &nk, &ni),
	    0);
	assert_false(more);
}

static void
feed_drops_a_conversation_from_its_old_tag_state_and_assignee(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store_feed_q q;
	struct store_conv c;
	struct ids ids;
	uint64_t a, b;

	a = put_conv(t, "a", STORE_STATE_OPEN, 100, 0, "ann", "vip");
	b = put_conv(t, "b", STORE_STATE_OPEN, 200, 0, "ann", "vip");
	assert_int_equal(store_txn_commit(t), 0);

	t = wtxn(f->st);
	/* a loses its tag and gets bob; b is closed */
	assert_int_equal(store_conv_get(t, a, &c), 0);
	c.ntags = 0;
	c.assignee = "bob";
	c.updated = 300;
	assert_int_equal(store_conv_put(t, &c), 0);
	assert_int_equal(store_conv_get(t, b, &c), 0);
	c.state = STORE_STATE_CLOSED;
	assert_int_equal(store_conv_put(t, &c), 0);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	q = q_state(STORE_STATE_OPEN);
	q.tag = "vip";
	feed_of(t, q, &ids);
	assert_int_equal(ids.n, 0);
	q = q_state(STORE_STATE_CLOSED);
	q.tag = "vip";
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, b);
	q = q_state(STORE_STATE_OPEN);
	q.assignee = "ann";
	feed_of(t, q, &ids);
	assert_int_equal(ids.n, 0);
	q.assignee = "bob";
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, a);
	feed_of(t, q_state(STORE_STATE_OPEN), &ids);
	ASSERT_IDS(&ids, a);
	feed_of(t, q_state(STORE_STATE_CLOSED), &ids);
	ASSERT_IDS(&ids, b);
	assert_int_equal(store_conv_get(t, a, &c), 0);
	assert_int_equal(c.ntags, 0);
	assert_string_equal(c.assignee, "bob");
	store_txn_abort(t);
}

static void
feed_keeps_tags_priority_nature_outcome_and_preview(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store_conv c = {
		.connector = "tg1", .channel = "telegram", .thread = "x",
		.state = STORE_STATE_SNOOZED, .snooze_until = 777,
		.priority = INBOX_PRIO_URGENT, .nature = INBOX_NATURE_ORDER,
		.outcome = "refunded", .preview = "Can I get a Refund?",
		.closed_at = 11, .first_response_at = 12,
		.last_agent_msg_at = 13, .reopen_count = 2, .ntags = 2,
		.tags = { "billing", "vip" }, .contact_id = 9,
	};
	struct store_conv got;

	assert_int_equal(store_conv_put(t, &c), 0);
	assert_int_equal(store_txn_commit(t), 0);
	t = rtxn(f->st);
	assert_int_equal(store_conv_get(t, c.id, &got), 0);
	assert_int_equal(got.priority, INBOX_PRIO_URGENT);
	assert_int_equal(got.nature, INBOX_NATURE_ORDER);
	assert_string_equal(got.outcome, "refunded");
	assert_string_equal(got.preview, "Can I get a Refund?");
	assert_int_equal(got.closed_at, 11);
	assert_int_equal(got.first_response_at, 12);
	assert_int_equal(got.last_agent_msg_at, 13);
	assert_int_equal(got.reopen_count, 2);
	assert_int_equal(got.ntags, 2);
	assert_string_equal(got.tags[0], "billing");
	assert_string_equal(got.tags[1], "vip");
	assert_int_equal(store_feed_key(&got), 777);
	got.state = STORE_STATE_OPEN;
	got.updated = 55;
	assert_int_equal(store_feed_key(&got), 55);
	store_txn_abort(t);

	/* out-of-range values are refused, not stored */
	t = wtxn(f->st);
	c.id = 0;
	c.thread = "y";
	c.priority = INBOX_PRIO__COUNT;
	assert_int_equal(store_conv_put(t, &c), INBOX_EINVAL);
	c.priority = INBOX_PRIO_LOW;
	c.ntags = STORE_TAGS_MAX + 1;
	assert_int_equal(store_conv_put(t, &c), INBOX_EINVAL);
	store_txn_abort(t);
}

static void
feed_with_a_scan_max_hands_back_a_cursor_until_the_end(void **state)
{
	struct fixture *f = *state;
	struct model *mo = xcalloc(1, sizeof(*mo));
	struct store_feed_q q = q_state(STORE_STATE_OPEN);
	struct ids got = { .n = 0 };
	struct page p = { &got, STORE_STATE_OPEN };
	struct store_txn *t;
	size_t nopen = 0, calls = 0;
	bool more = true;

	model_build(f->st, mo);
	for (size_t i = 0; i < mo->n; i++)
		nopen += mo->c[i].state == STORE_STATE_OPEN;
	assert_true(nopen > 10);

	t = rtxn(f->st);
	q.text = "no conversation says this";
	q.limit = 50;
	q.scan_max = 10;
	while (more) {
		int64_t nk = 0;
		uint64_t ni = 0;

		calls++;
		assert_true(calls <= nopen / 10 + 2);
		assert_int_equal(store_feed(t, &q, collect_page, &p, &more, &nk,
		    &ni), 0);
		assert_int_equal(got.n, 0);
		if (calls == 1) {
			/* cut short by scan_max, not by the end */
			assert_true(more);
			assert_true(ni != 0);
		}
		if (more) {
			assert_false(nk == q.after_key && ni == q.after_id);
			q.after_key = nk;
			q.after_id = ni;
		}
	}
	assert_true(calls >= (nopen + 9) / 10);

	/* with no text filter, scan_max still pages the whole feed */
	q.text = NULL;
	q.scan_max = 10;
	q.limit = 1000;
	assert_true(check_feed(t, mo, &q) >= (nopen + 9) / 10);
	store_txn_abort(t);
	free(mo);
}

/* ---- timers and tasks ----------------------------------------------- */

static void
snoozes_fall_due_in_time_order_and_leave_when_unsnoozed(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store_conv c;
	struct ids ids = { .n = 0 };
	uint64_t s1, s2, s3, s4, o;
	int64_t when = -1;

	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 0);
	s1 = put_conv(t, "s1", STORE_STATE_SNOOZED, 10, 300, NULL, NULL);
	s2 = put_conv(t, "s2", STORE_STATE_SNOOZED, 10, 100, NULL, NULL);
	s3 = put_conv(t, "s3", STORE_STATE_SNOOZED, 10, 200, NULL, NULL);
	s4 = put_conv(t, "s4", STORE_STATE_SNOOZED, 10, 100, NULL, NULL);
	o = put_conv(t, "o", STORE_STATE_OPEN, 10, 0, NULL, NULL);
	(void)o;
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_due_snoozes(t, 99, 10, collect_id, &ids), 0);
	assert_int_equal(ids.n, 0);
	assert_int_equal(store_due_snoozes(t, 100, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, s2, s4);
	ids.n = 0;
	assert_int_equal(store_due_snoozes(t, 250, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, s2, s4, s3);
	ids.n = 0;
	assert_int_equal(store_due_snoozes(t, 1000, 2, collect_id, &ids), 0);
	ASSERT_IDS(&ids, s2, s4);
	ids.n = 0;
	assert_int_equal(store_due_snoozes(t, 1000, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, s2, s4, s3, s1);
	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 100);
	store_txn_abort(t);

	t = wtxn(f->st);
	/* s2 is unsnoozed, s4 snoozed again for later, s3 closed */
	assert_int_equal(store_conv_get(t, s2, &c), 0);
	c.state = STORE_STATE_OPEN;
	c.snooze_until = 0;
	assert_int_equal(store_conv_put(t, &c), 0);
	assert_int_equal(store_conv_get(t, s4, &c), 0);
	c.snooze_until = 500;
	assert_int_equal(store_conv_put(t, &c), 0);
	assert_int_equal(store_conv_get(t, s3, &c), 0);
	c.state = STORE_STATE_CLOSED;
	assert_int_equal(store_conv_put(t, &c), 0);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	ids.n = 0;
	assert_int_equal(store_due_snoozes(t, 250, 10, collect_id, &ids), 0);
	assert_int_equal(ids.n, 0);
	assert_int_equal(store_due_snoozes(t, 1000, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, s1, s4);
	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 300);
	/* the snoozed feed agrees */
	feed_of(t, q_state(STORE_STATE_SNOOZED), &ids);
	ASSERT_IDS(&ids, s1, s4);
	store_txn_abort(t);
}

static uint64_t
put_task(struct store_txn *t, uint64_t conv, const char *title, int64_t due,
    bool done, bool fired)
{
	struct store_task tk = {
		.conv_id = conv, .title = title, .assignee = "ann",
		.created_by = "bob", .due = due, .done = done,
		.due_fired = fired, .created = 1, .updated = 2,
	};

	assert_int_equal(store_task_put(t, &tk), 0);
	assert_true(tk.id > 0);
	return tk.id;
}

static int
collect_task(void *arg, const struct store_task *tk)
{
	ids_add(arg, tk->id);
	return 0;
}

static void
task_timers_hold_only_pending_tasks_and_next_due_takes_the_earliest(
    void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store_task tk;
	struct ids ids = { .n = 0 };
	uint64_t ca, cb, t1, t2, t3, t4, t5, t6;
	int64_t when;

	ca = put_conv(t, "a", STORE_STATE_OPEN, 1, 0, NULL, NULL);
	cb = put_conv(t, "b", STORE_STATE_SNOOZED, 1, 150, NULL, NULL);
	t1 = put_task(t, ca, "call back", 80, false, false);
	t2 = put_task(t, ca, "send invoice", 40, false, false);
	t3 = put_task(t, cb, "no due time", 0, false, false);
	t4 = put_task(t, cb, "done already", 60, true, false);
	t5 = put_task(t, cb, "announced", 70, false, true);
	t6 = put_task(t, cb, "later", 500, false, false);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_due_tasks(t, 100, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, t2, t1);
	ids.n = 0;
	assert_int_equal(store_due_tasks(t, 1000, 1, collect_id, &ids), 0);
	ASSERT_IDS(&ids, t2);
	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 40);         /* the task, before the snooze */
	ids.n = 0;
	assert_int_equal(store_conv_tasks(t, ca, collect_task, &ids), 0);
	ASSERT_IDS(&ids, t1, t2);
	ids.n = 0;
	assert_int_equal(store_conv_tasks(t, cb, collect_task, &ids), 0);
	ASSERT_IDS(&ids, t3, t4, t5, t6);
	ids.n = 0;
	assert_int_equal(store_conv_tasks(t, cb + 100, collect_task, &ids), 0);
	assert_int_equal(ids.n, 0);
	assert_int_equal(store_task_get(t, t1, &tk), 0);
	assert_int_equal(tk.conv_id, ca);
	assert_string_equal(tk.title, "call back");
	assert_string_equal(tk.assignee, "ann");
	assert_string_equal(tk.created_by, "bob");
	assert_int_equal(tk.due, 80);
	assert_false(tk.done);
	assert_false(tk.due_fired);
	assert_int_equal(store_task_get(t, t6 + 1, &tk), INBOX_ENOTFOUND);
	store_txn_abort(t);

	t = wtxn(f->st);
	/* t2 done, t1 announced, t3 gets a due time, t6 moves earlier */
	assert_int_equal(store_task_get(t, t2, &tk), 0);
	tk.done = true;
	assert_int_equal(store_task_put(t, &tk), 0);
	assert_int_equal(store_task_get(t, t1, &tk), 0);
	tk.due_fired = true;
	assert_int_equal(store_task_put(t, &tk), 0);
	assert_int_equal(store_task_get(t, t3, &tk), 0);
	tk.due = 90;
	assert_int_equal(store_task_put(t, &tk), 0);
	assert_int_equal(store_task_get(t, t6, &tk), 0);
	tk.due = 95;
	assert_int_equal(store_task_put(t, &tk), 0);
	/* a task needs a title and a conversation */
	tk.id = 0;
	tk.conv_id = 0;
	assert_int_equal(store_task_put(t, &tk), INBOX_EINVAL);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	ids.n = 0;
	assert_int_equal(store_due_tasks(t, 10000, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, t3, t6);
	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 90);
	/* the snooze at 150 is earlier than any task still pending? no: 90 */
	ids.n = 0;
	assert_int_equal(store_conv_tasks(t, cb, collect_task, &ids), 0);
	ASSERT_IDS(&ids, t3, t4, t5, t6);   /* still listed, once each */
	store_txn_abort(t);

	t = wtxn(f->st);
	assert_int_equal(store_task_get(t, t3, &tk), 0);
	tk.done = true;
	assert_int_equal(store_task_put(t, &tk), 0);
	assert_int_equal(store_task_get(t, t6, &tk), 0);
	tk.done = true;
	assert_int_equal(store_task_put(t, &tk), 0);
	assert_int_equal(store_txn_commit(t), 0);
	t = rtxn(f->st);
	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 150);        /* now the snooze is first */
	ids.n = 0;
	assert_int_equal(store_due_tasks(t, 10000, 10, collect_id, &ids), 0);
	assert_int_equal(ids.n, 0);
	store_txn_abort(t);
}

/* ---- contacts ------------------------------------------------------- */

static uint64_t
put_contact(struct store_txn *t, const char *connector, const char *ext,
    const char *name, const char *email, const char *phone)
{
	struct store_contact c = {
		.connector = connector, .channel = "telegram",
		.external_id = ext, .name = name, .email = email,
		.phone = phone, .created = 1, .updated = 1,
	};

	assert_int_equal(store_contact_put(t, &c), 0);
	assert_true(c.id > 0);
	return c.id;
}

static int
collect_contact(void *arg, const struct store_contact *c)
{
	assert_int_equal(c->merged_into, 0);
	ids_add(arg, c->id);
	return 0;
}

static void
merge(struct store_txn *t, uint64_t from, uint64_t into)
{
	struct store_contact c;

	assert_int_equal(store_contact_get(t, from, &c), 0);
	c.merged_into = into;
	c.updated = 9;
	assert_int_equal(store_contact_put(t, &c), 0);
}

static void
contacts_are_found_by_email_phone_and_channel_id_through_merges(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store_contact c = {
		.connector = "tg1", .channel = "telegram", .external_id = "u1",
		.name = "Ann", .email = "Ann.Smith@Example.COM",
		.phone = "+1 (555) 010-2030", .created = 1, .updated = 2,
		.fields = "{\"plan\":\"pro\"}",
	};
	struct store_contact got;
	struct ids ids = { .n = 0 };
	uint64_t c1, c2, c3, c4, id;
	char *a, *b;

	assert_int_equal(store_contact_put(t, &c), 0);
	c1 = c.id;
	c2 = put_contact(t, "wa1", "p2", "Ann S", "ann@work.example",
	    "+44 20 7946 0000");
	/* the same address, another case: the live owner keeps the key */
	c3 = put_contact(t, "tg1", "u3", "Cy", "ANN.SMITH@example.com", NULL);
	c4 = put_contact(t, "tg1", "u4", "Four", "four@x.example", NULL);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_contact_find_email(t, "ann.smith@example.com",
	    &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_email(t, "  ANN.SMITH@EXAMPLE.COM ",
	    &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_email(t, "nobody@example.com", &id),
	    INBOX_ENOTFOUND);
	assert_int_equal(store_contact_find_email(t, "not an address", &id),
	    INBOX_ENOTFOUND);
	assert_int_equal(store_contact_find_phone(t, "15550102030", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_phone(t, "+1 555 010 2030", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_phone(t, "15550102031", &id),
	    INBOX_ENOTFOUND);
	assert_int_equal(store_contact_find_phone(t, "12-3", &id),
	    INBOX_ENOTFOUND);
	assert_int_equal(store_contact_find_ext(t, "tg1", "u1", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_get(t, c1, &got), 0);
	assert_string_equal(got.fields, "{\"plan\":\"pro\"}");
	assert_string_equal(got.email, "Ann.Smith@Example.COM");
	assert_int_equal(got.merged_into, 0);
	assert_int_equal(got.updated, 2);
	store_txn_abort(t);

	a = store_phone_key("+1 (555) 010-2030");
	b = store_phone_key("15550102030");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_null(store_phone_key("12-34"));
	a = store_email_key(" Ann@Example.COM ");
	assert_string_equal(a, "ann@example.com");
	free(a);

	/* c2 merged into c1; c4 into c2 (a chain) */
	t = wtxn(f->st);
	merge(t, c2, c1);
	merge(t, c4, c2);
	assert_int_equal(store_contact_link_ext(t, "mail1",
	    "ann.smith@example.com", c1), 0);
	assert_int_equal(store_contact_link_ext(t, "mail1", "old@example.com",
	    c2), 0);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_contact_find_ext(t, "wa1", "p2", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_email(t, "ann@work.example", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_phone(t, "442079460000", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_email(t, "four@x.example", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_ext(t, "tg1", "u4", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_ext(t, "mail1",
	    "ann.smith@example.com", &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_ext(t, "mail1", "old@example.com",
	    &id), 0);
	assert_int_equal(id, c1);
	assert_int_equal(store_contact_find_ext(t, "mail1", "nobody", &id),
	    INBOX_ENOTFOUND);
	/* the merged record itself is still there */
	assert_int_equal(store_contact_get(t, c2, &got), 0);
	assert_int_equal(got.merged_into, c1);
	assert_string_equal(got.name, "Ann S");
	assert_int_equal(store_contacts(t, collect_contact, &ids), 0);
	ASSERT_IDS(&ids, c1, c3);
	store_txn_abort(t);
}

/* ---- messages ------------------------------------------------------- */

static int
collect_msg(void *arg, const struct store_msg *m)
{
	ids_add(arg, m->id);
	return 0;
}

static void
messages_without_external_id_get_status_updates_and_one_link_per_key(
    void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	const char *env = "{\"text\":\"reply\",\"author\":\"ann\"}";
	struct store_msg m = {
		.contact_id = 1, .dir = STORE_DIR_OUT, .ts = 5, .created = 5,
		.connector = "tg1", .channel = "telegram", .envelope = env,
		.envelope_len = strlen(env), .status = STORE_MS_QUEUED,
		.status_at = 5, .author = "ann",
	};
	struct store_msg got;
	struct ids ids = { .n = 0 };
	uint64_t conv, m1, m2, m3, id;

	conv = put_conv(t, "c", STORE_STATE_OPEN, 1, 0, NULL, NULL);
	m.conv_id = conv;
	assert_int_equal(store_msg_add(t, &m), 0);
	m1 = m.id;
	/* a second message without an external id is no duplicate */
	m.dir = STORE_DIR_NOTE;
	m.status = STORE_MS_NONE;
	assert_int_equal(store_msg_add(t, &m), 0);
	m2 = m.id;
	assert_true(m2 > m1);
	m.dir = STORE_DIR_IN;
	m.external_id = "in-1";
	m.author = NULL;
	assert_int_equal(store_msg_add(t, &m), 0);
	m3 = m.id;
	m.status = STORE_MS__COUNT;
	m.external_id = NULL;
	assert_int_equal(store_msg_add(t, &m), INBOX_EINVAL);
	assert_int_equal(store_txn_commit(t), 0);

	t = wtxn(f->st);
	assert_int_equal(store_msg_get(t, m1, &got), 0);
	assert_null(got.external_id);
	assert_string_equal(got.author, "ann");
	assert_int_equal(got.status, STORE_MS_QUEUED);
	assert_int_equal(got.dir, STORE_DIR_OUT);
	assert_int_equal(got.envelope_len, strlen(env));
	assert_memory_equal(got.envelope, env, strlen(env));
	/* status changes, rewriting the borrowed record */
	got.status = STORE_MS_SENT;
	got.status_at = 6;
	assert_int_equal(store_msg_update(t, &got), 0);
	assert_int_equal(store_msg_get(t, m1, &got), 0);
	got.status = STORE_MS_FAILED;
	got.status_at = 7;
	got.status_error = "blocked by the user";
	assert_int_equal(store_msg_update(t, &got), 0);
	got.id = m3 + 100;
	assert_int_equal(store_msg_update(t, &got), INBOX_ENOTFOUND);
	/* the channel's id of the reply links to it, once */
	assert_int_equal(store_msg_link_ext(t, "tg1", "sent-9", m1), 0);
	assert_int_equal(store_msg_link_ext(t, "tg1", "sent-9", m2),
	    INBOX_EEXIST);
	assert_int_equal(store_msg_link_ext(t, "tg1", "sent-9", m1),
	    INBOX_EEXIST);
	assert_int_equal(store_msg_link_ext(t, "tg1", "in-1", m1), INBOX_EEXIST);
	assert_int_equal(store_msg_link_ext(t, "tg2", "sent-9", m2), 0);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_msg_get(t, m1, &got), 0);
	assert_int_equal(got.status, STORE_MS_FAILED);
	assert_int_equal(got.status_at, 7);
	assert_string_equal(got.status_error, "blocked by the user");
	assert_string_equal(got.author, "ann");
	assert_null(got.external_id);
	assert_int_equal(store_msg_find_ext(t, "tg1", "sent-9", &id), 0);
	assert_int_equal(id, m1);
	assert_int_equal(store_msg_find_ext(t, "tg2", "sent-9", &id), 0);
	assert_int_equal(id, m2);
	assert_int_equal(store_msg_find_ext(t, "tg1", "in-1", &id), 0);
	assert_int_equal(id, m3);
	assert_int_equal(store_msg_get(t, m2, &got), 0);
	assert_int_equal(got.dir, STORE_DIR_NOTE);
	assert_int_equal(got.status, STORE_MS_NONE);
	assert_null(got.status_error);
	assert_int_equal(store_conv_messages(t, conv, collect_msg, &ids), 0);
	ASSERT_IDS(&ids, m1, m2, m3);
	store_txn_abort(t);
}

/* ---- templates and tags --------------------------------------------- */

static int
collect_template(void *arg, const struct store_template *tp)
{
	char (*names)[16] = arg;
	size_t i = 0;

	while (names[i][0] != '\0')
		i++;
	assert_true(i < 7);
	snprintf(names[i], sizeof(names[i]), "%s", tp->name);
	if (strcmp(tp->name, "greeting") == 0) {
		assert_string_equal(tp->text, "Hello {name}, again");
		assert_string_equal(tp->updated_by, "bob");
		assert_int_equal(tp->updated, 20);
	}
	return 0;
}

static void
templates_are_kept_by_name_listed_in_order_and_deleted_once(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store_template tp;
	char names[8][16];

	assert_int_equal(store_template_put(t, &(struct store_template){
	    "greeting", "Hello {name}", "ann", 10 }), 0);
	assert_int_equal(store_template_put(t, &(struct store_template){
	    "bye", "Bye", "ann", 11 }), 0);
	assert_int_equal(store_template_put(t, &(struct store_template){
	    "apology", "Sorry", NULL, 12 }), 0);
	assert_int_equal(store_template_put(t, &(struct store_template){
	    "greeting", "Hello {name}, again", "bob", 20 }), 0);
	assert_int_equal(store_template_put(t, &(struct store_template){
	    "", "x", "ann", 1 }), INBOX_EINVAL);
	assert_int_equal(store_template_put(t, &(struct store_template){
	    "empty", NULL, "ann", 1 }), INBOX_EINVAL);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_template_get(t, "greeting", &tp), 0);
	assert_string_equal(tp.name, "greeting");
	assert_string_equal(tp.text, "Hello {name}, again");
	assert_string_equal(tp.updated_by, "bob");
	assert_int_equal(tp.updated, 20);
	assert_int_equal(store_template_get(t, "apology", &tp), 0);
	assert_null(tp.updated_by);
	assert_int_equal(store_template_get(t, "empty", &tp), INBOX_ENOTFOUND);
	memset(names, 0, sizeof(names));
	assert_int_equal(store_templates(t, collect_template, names), 0);
	assert_string_equal(names[0], "apology");
	assert_string_equal(names[1], "bye");
	assert_string_equal(names[2], "greeting");
	assert_string_equal(names[3], "");
	store_txn_abort(t);

	t = wtxn(f->st);
	assert_int_equal(store_template_del(t, "bye"), 0);
	assert_int_equal(store_template_del(t, "bye"), INBOX_ENOTFOUND);
	assert_int_equal(store_template_del(t, "never"), INBOX_ENOTFOUND);
	assert_int_equal(store_txn_commit(t), 0);
	t = rtxn(f->st);
	assert_int_equal(store_template_get(t, "bye", &tp), INBOX_ENOTFOUND);
	memset(names, 0, sizeof(names));
	assert_int_equal(store_templates(t, collect_template, names), 0);
	assert_string_equal(names[0], "apology");
	assert_string_equal(names[1], "greeting");
	assert_string_equal(names[2], "");
	store_txn_abort(t);
}

struct tag_list {
	char name[8][16];
	int64_t created[8];
	size_t n;
};

static int
collect_tag(void *arg, const char *tag, int64_t created)
{
	struct tag_list *l = arg;

	assert_true(l->n < 8);
	snprintf(l->name[l->n], sizeof(l->name[l->n]), "%s", tag);
	l->created[l->n++] = created;
	return 0;
}

static void
tags_are_registered_once_and_listed_sorted(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct tag_list l = { .n = 0 };
	bool created = false;

	assert_int_equal(store_tag_touch(t, "vip", 10, &created), 0);
	assert_true(created);
	assert_int_equal(store_tag_touch(t, "vip", 20, &created), 0);
	assert_false(created);
	assert_int_equal(store_tag_touch(t, "billing", 30, &created), 0);
	assert_true(created);
	assert_int_equal(store_tag_touch(t, "a-tag", 40, &created), 0);
	assert_true(created);
	assert_int_equal(store_txn_commit(t), 0);

	t = wtxn(f->st);
	created = true;
	assert_int_equal(store_tag_touch(t, "billing", 50, &created), 0);
	assert_false(created);
	assert_int_equal(store_tags(t, collect_tag, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.name[0], "a-tag");
	assert_int_equal(l.created[0], 40);
	assert_string_equal(l.name[1], "billing");
	assert_int_equal(l.created[1], 30);
	assert_string_equal(l.name[2], "vip");
	assert_int_equal(l.created[2], 10);   /* the first touch's time */
	store_txn_abort(t);
}

/* ---- outbox --------------------------------------------------------- */

struct outbox_seen {
	size_t n, base;
};

static int
check_outbox_event(void *arg, const struct store_event *ev)
{
	struct outbox_seen *s = arg;
	size_t i = s->base + s->n;
	char buf[32];

	snprintf(buf, sizeof(buf), "100-%zu", i);
	assert_string_equal(ev->id, buf);
	snprintf(buf, sizeof(buf), "ev.%zu", i);
	assert_string_equal(ev->name, buf);
	snprintf(buf, sizeof(buf), "{\"i\":%zu}", i);
	assert_string_equal(ev->data, buf);
	if (i % 3 == 0) {
		assert_string_equal(ev->to, "ann");
	} else {
		assert_null(ev->to);
	}
	if (i % 2 == 0) {
		snprintf(buf, sizeof(buf), "cmd-%zu", i);
		assert_string_equal(ev->cmd_id, buf);
	} else {
		assert_null(ev->cmd_id);
	}
	s->n++;
	return 0;
}

static void
outbox_add(struct store_txn *t, size_t i)
{
	char id[32], name[32], data[32], cmd[32];
	struct store_event ev = { .id = id, .name = name, .data = data,
	    .to = i % 3 == 0 ? "ann" : NULL, .cmd_id = i % 2 == 0 ? cmd : NULL };

	snprintf(id, sizeof(id), "100-%zu", i);
	snprintf(name, sizeof(name), "ev.%zu", i);
	snprintf(data, sizeof(data), "{\"i\":%zu}", i);
	snprintf(cmd, sizeof(cmd), "cmd-%zu", i);
	assert_int_equal(store_outbox_add(t, &ev), 0);
}

static void
outbox_events_keep_their_recipient_and_command_until_cleared(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct outbox_seen s = { 0, 0 };

	for (size_t i = 0; i < 20; i++)
		outbox_add(t, i);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	assert_int_equal(store_outbox_foreach(t, check_outbox_event, &s), 0);
	assert_int_equal(s.n, 20);
	store_txn_abort(t);

	t = wtxn(f->st);
	assert_int_equal(store_outbox_clear(t), 0);
	s.n = 0;
	assert_int_equal(store_outbox_foreach(t, check_outbox_event, &s), 0);
	assert_int_equal(s.n, 0);
	outbox_add(t, 21);
	outbox_add(t, 22);
	assert_int_equal(store_txn_commit(t), 0);

	t = rtxn(f->st);
	s.n = 0;
	s.base = 21;
	assert_int_equal(store_outbox_foreach(t, check_outbox_event, &s), 0);
	assert_int_equal(s.n, 2);
	store_txn_abort(t);
}

/* ---- schema and migration ------------------------------------------- */

/* A record in the walking skeleton's layout: version byte, big-endian
 * integers, strings as u32 length (0xffffffff: NULL), bytes, NUL. */
struct raw_rec {
	unsigned char b[1024];
	size_t n;
};

static void
raw_u8(struct raw_rec *r, unsigned v)
{
	assert_true(r->n < sizeof(r->b));
	r->b[r->n++] = (unsigned char)v;
}

static void
raw_u32(struct raw_rec *r, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		raw_u8(r, (v >> (8 * i)) & 0xff);
}

static void
raw_u64(struct raw_rec *r, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		raw_u8(r, (unsigned)((v >> (8 * i)) & 0xff));
}

static void
raw_str(struct raw_rec *r, const char *s)
{
	if (s == NULL) {
		raw_u32(r, 0xffffffffu);
		return;
	}
	raw_u32(r, (uint32_t)strlen(s));
	for (; *s; s++)
		raw_u8(r, (unsigned char)*s);
	raw_u8(r, 0);
}

static void
be64(unsigned char *out, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

static void
raw_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };

	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
}

static MDB_env *
raw_env(const char *dir, bool rdonly)
{
	MDB_env *env;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)MAP_MB << 20), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS |
	    (rdonly ? MDB_RDONLY : 0), 0640), 0);
	return env;
}

/* The schema-1 tables. */
enum { V1_META, V1_CONV, V1_CONV_THREAD, V1_CONV_STATE, V1_MSG, V1_MSG_EXT,
	V1_CONV_MSG, V1_CONTACT, V1_CONTACT_EXT, V1_AGENT, V1_OUTBOX, V1__COUNT };
static const char *const v1_tables[V1__COUNT] = {
	"meta", "conv", "conv_thread", "conv_state", "msg", "msg_ext",
	"conv_msg", "contact", "contact_ext", "agent", "outbox",
};

struct v1_conv {
	uint64_t id, contact;
	const char *connector, *channel, *thread, *subject, *assignee, *prio;
	int state;
	int64_t updated, snooze_until;
};

static void
v1_put_conv(MDB_txn *txn, const MDB_dbi *dbi, const struct v1_conv *c)
{
	struct raw_rec r = { .n = 0 };
	unsigned char k[8], sk[17];
	char tk[128];
	size_t tn;

	raw_u8(&r, 1);
	raw_u64(&r, c->contact);
	raw_str(&r, c->connector);
	raw_str(&r, c->channel);
	raw_str(&r, c->thread);
	raw_str(&r, c->subject);
	raw_str(&r, c->assignee);
	raw_str(&r, c->prio);
	raw_u8(&r, (unsigned)c->state);
	raw_u64(&r, 100);                        /* created */
	raw_u64(&r, (uint64_t)c->updated);
	raw_u64(&r, (uint64_t)c->updated - 1);   /* last_customer_msg_at */
	raw_u64(&r, (uint64_t)c->snooze_until);
	raw_u32(&r, 3);                          /* message_count */
	be64(k, c->id);
	raw_put(txn, dbi[V1_CONV], k, 8, r.b, r.n);

	tn = (size_t)snprintf(tk, sizeof(tk), "%s%c%s", c->connector, 0,
	    c->thread);
	raw_put(txn, dbi[V1_CONV_THREAD], tk, tn, k, 8);

	sk[0] = (unsigned char)c->state;
	be64(sk + 1, (uint64_t)c->updated);
	be64(sk + 9, c->id);
	raw_put(txn, dbi[V1_CONV_STATE], sk, sizeof(sk), "", 0);
}

/* Writes a schema-1 store into dir (created): four conversations (1 open,
 * high, ann; 2 snoozed until 900, urgent; 3 closed, low, bob; 4 open, no
 * priority string), a message, a contact with an e-mail and a phone, an
 * outbox event, and meta without "schema". */
static void
build_v1(const char *dir)
{
	static const struct v1_conv convs[] = {
		{ 1, 7, "api1", "email", "t1", "Hello", "ann", "high",
		    STORE_STATE_OPEN, 500, 0 },
		{ 2, 7, "api1", "email", "t2", NULL, NULL, "urgent",
		    STORE_STATE_SNOOZED, 300, 900 },
		{ 3, 8, "tg1", "telegram", "t3", "Bye", "bob", "low",
		    STORE_STATE_CLOSED, 400, 0 },
		{ 4, 8, "tg1", "telegram", "t4", NULL, NULL, NULL,
		    STORE_STATE_OPEN, 600, 0 },
	};
	const char *env = "{\"text\":\"hi\"}";
	MDB_dbi dbi[V1__COUNT];
	struct raw_rec r = { .n = 0 };
	unsigned char k[16], v[8];
	MDB_env *e;
	MDB_txn *txn;

	assert_int_equal(mkdir(dir, 0750), 0);
	e = raw_env(dir, false);
	assert_int_equal(mdb_txn_begin(e, NULL, 0, &txn), 0);
	for (int i = 0; i < V1__COUNT; i++)
		assert_int_equal(mdb_dbi_open(txn, v1_tables[i], MDB_CREATE,
		    &dbi[i]), 0);
	for (size_t i = 0; i < NELEM(convs); i++)
		v1_put_conv(txn, dbi, &convs[i]);

	/* message 1 of conversation 1 */
	raw_u8(&r, 1);
	raw_u64(&r, 1);                          /* conv */
	raw_u64(&r, 7);                          /* contact */
	raw_u8(&r, STORE_DIR_IN);
	raw_u64(&r, 480);
	raw_u64(&r, 490);
	raw_str(&r, "api1");
	raw_str(&r, "email");
	raw_str(&r, "m-1");
	raw_str(&r, env);
	be64(k, 1);
	raw_put(txn, dbi[V1_MSG], k, 8, r.b, r.n);
	raw_put(txn, dbi[V1_MSG_EXT], "api1\0m-1", 8, k, 8);
	be64(k, 1);
	be64(k + 8, 1);
	raw_put(txn, dbi[V1_CONV_MSG], k, 16, "", 0);

	/* contact 7 */
	r.n = 0;
	raw_u8(&r, 1);
	raw_str(&r, "api1");
	raw_str(&r, "email");
	raw_str(&r, "c-7");
	raw_str(&r, "Ann");
	raw_str(&r, "Ann@Example.com");
	raw_str(&r, "+1 555 010 2030");
	raw_str(&r, NULL);
	raw_u64(&r, 50);
	be64(k, 7);
	raw_put(txn, dbi[V1_CONTACT], k, 8, r.b, r.n);
	raw_put(txn, dbi[V1_CONTACT_EXT], "api1\0c-7", 8, k, 8);

	/* an event not yet appended to Redis */
	r.n = 0;
	raw_u8(&r, 1);
	raw_str(&r, "5-0");
	raw_str(&r, "conversation.updated");
	raw_str(&r, "{}");
	be64(k, 1);
	raw_put(txn, dbi[V1_OUTBOX], k, 8, r.b, r.n);

	be64(v, 42);
	raw_put(txn, dbi[V1_META], "event_ms", 8, v, 8);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(e);
}

static int
collect_event(void *arg, const struct store_event *ev)
{
	struct ids *ids = arg;

	assert_string_equal(ev->id, "5-0");
	assert_string_equal(ev->name, "conversation.updated");
	assert_string_equal(ev->data, "{}");
	assert_null(ev->to);
	assert_null(ev->cmd_id);
	ids_add(ids, 1);
	return 0;
}

static void
fresh_store_gets_the_current_schema(void **state)
{
	struct fixture *f = *state;
	struct store *ro = NULL;
	uint64_t schema = 0;

	assert_int_equal(STORE_SCHEMA, 3);
	assert_int_equal(store_schema(f->st, &schema), 0);
	assert_int_equal(schema, STORE_SCHEMA);
	store_close(f->st);
	f->st = NULL;
	/* reopening does not change it; readers accept it */
	assert_int_equal(store_open(&f->st, f->dir, MAP_MB, 0), 0);
	schema = 0;
	assert_int_equal(store_schema(f->st, &schema), 0);
	assert_int_equal(schema, STORE_SCHEMA);
	assert_int_equal(store_open(&ro, f->dir, MAP_MB, STORE_RDONLY), 0);
	schema = 0;
	assert_int_equal(store_schema(ro, &schema), 0);
	assert_int_equal(schema, STORE_SCHEMA);
	store_close(ro);
}

static void
migration_rebuilds_feeds_and_timers_from_a_schema_1_store(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	struct store *st = NULL, *ro = NULL;
	struct store_txn *t;
	struct store_feed_q q;
	struct store_conv c;
	struct store_msg m;
	struct store_contact ct;
	struct ids ids = { .n = 0 };
	uint64_t schema = 0, id = 0, v = 0;
	int64_t when = 0;
	MDB_env *e;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, val;
	MDB_stat ms;
	size_t nconv = 0;

	snprintf(dir, sizeof(dir), "%s/v1", f->dir);
	build_v1(dir);
	assert_int_equal(store_open(&st, dir, MAP_MB, 0), 0);
	assert_int_equal(store_schema(st, &schema), 0);
	assert_int_equal(schema, STORE_SCHEMA);

	t = rtxn(st);
	/* conversations keep their fields; the priority string is parsed */
	assert_int_equal(store_conv_get(t, 1, &c), 0);
	assert_int_equal(c.priority, INBOX_PRIO_HIGH);
	assert_string_equal(c.subject, "Hello");
	assert_string_equal(c.assignee, "ann");
	assert_string_equal(c.channel, "email");
	assert_int_equal(c.updated, 500);
	assert_int_equal(c.last_customer_msg_at, 499);
	assert_int_equal(c.message_count, 3);
	assert_int_equal(c.contact_id, 7);
	assert_int_equal(c.ntags, 0);
	assert_null(c.preview);
	assert_null(c.outcome);
	assert_int_equal(store_conv_get(t, 2, &c), 0);
	assert_int_equal(c.priority, INBOX_PRIO_URGENT);
	assert_int_equal(c.state, STORE_STATE_SNOOZED);
	assert_int_equal(c.snooze_until, 900);
	assert_int_equal(store_conv_get(t, 3, &c), 0);
	assert_int_equal(c.priority, INBOX_PRIO_LOW);
	assert_int_equal(store_conv_get(t, 4, &c), 0);
	assert_int_equal(c.priority, INBOX_PRIO_NORMAL);
	assert_int_equal(store_conv_find_thread(t, "tg1", "t3", &id), 0);
	assert_int_equal(id, 3);

	/* the feeds, by state and by facet */
	feed_of(t, q_state(STORE_STATE_OPEN), &ids);
	ASSERT_IDS(&ids, 4, 1);
	feed_of(t, q_state(STORE_STATE_SNOOZED), &ids);
	ASSERT_IDS(&ids, 2);
	feed_of(t, q_state(STORE_STATE_CLOSED), &ids);
	ASSERT_IDS(&ids, 3);
	q = q_state(STORE_STATE_OPEN);
	q.priority = INBOX_PRIO_HIGH;
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 1);
	q.priority = INBOX_PRIO_NORMAL;
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 4);
	q = q_state(STORE_STATE_SNOOZED);
	q.priority = INBOX_PRIO_URGENT;
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 2);
	q = q_state(STORE_STATE_OPEN);
	q.assignee = "ann";
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 1);
	q.assignee = "";
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 4);
	q = q_state(STORE_STATE_OPEN);
	q.channel = "telegram";
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 4);
	q = q_state(STORE_STATE_CLOSED);
	q.contact_id = 8;
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 3);
	q = q_state(STORE_STATE_OPEN);
	q.text = "hello";
	feed_of(t, q, &ids);
	ASSERT_IDS(&ids, 1);

	/* the snooze timer */
	ids.n = 0;
	assert_int_equal(store_due_snoozes(t, 899, 10, collect_id, &ids), 0);
	assert_int_equal(ids.n, 0);
	assert_int_equal(store_due_snoozes(t, 900, 10, collect_id, &ids), 0);
	ASSERT_IDS(&ids, 2);
	assert_int_equal(store_next_due(t, &when), 0);
	assert_int_equal(when, 900);

	/* schema-1 messages, contacts, outbox events and meta still read */
	assert_int_equal(store_msg_get(t, 1, &m), 0);
	assert_string_equal(m.external_id, "m-1");
	assert_int_equal(m.status, STORE_MS_NONE);
	assert_null(m.author);
	assert_int_equal(m.envelope_len, strlen("{\"text\":\"hi\"}"));
	assert_int_equal(store_msg_find_ext(t, "api1", "m-1", &id), 0);
	assert_int_equal(id, 1);
	ids.n = 0;
	assert_int_equal(store_conv_messages(t, 1, collect_msg, &ids), 0);
	ASSERT_IDS(&ids, 1);
	assert_int_equal(store_contact_get(t, 7, &ct), 0);
	assert_string_equal(ct.name, "Ann");
	assert_int_equal(ct.merged_into, 0);
	assert_null(ct.fields);
	assert_int_equal(store_contact_find_ext(t, "api1", "c-7", &id), 0);
	assert_int_equal(id, 7);
	ids.n = 0;
	assert_int_equal(store_outbox_foreach(t, collect_event, &ids), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(store_meta_get(t, "event_ms", &v), 0);
	assert_int_equal(v, 42);
	store_txn_abort(t);

	/* new conversations continue the ids and join the same feeds */
	t = wtxn(st);
	id = put_conv(t, "t5", STORE_STATE_OPEN, 550, 0, NULL, NULL);
	assert_int_equal(id, 5);
	feed_of(t, q_state(STORE_STATE_OPEN), &ids);
	ASSERT_IDS(&ids, 4, 5, 1);
	assert_int_equal(store_txn_commit(t), 0);
	store_close(st);

	/* on disk: the old index is empty, records are rewritten as v2 */
	e = raw_env(dir, true);
	assert_int_equal(mdb_txn_begin(e, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "conv_state", 0, &dbi), 0);
	assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
	assert_int_equal(ms.ms_entries, 0);
	assert_int_equal(mdb_dbi_open(txn, "conv_idx", 0, &dbi), 0);
	assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
	assert_true(ms.ms_entries >= 5 * 5);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	k.mv_size = 6;
	k.mv_data = "schema";
	assert_int_equal(mdb_get(txn, dbi, &k, &val), 0);
	assert_int_equal(val.mv_size, 8);
	assert_int_equal(get_be64(val.mv_data), STORE_SCHEMA);
	assert_int_equal(mdb_dbi_open(txn, "conv", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	while (mdb_cursor_get(cur, &k, &val, nconv == 0 ? MDB_FIRST :
	    MDB_NEXT) == 0) {
		assert_true(val.mv_size > 0);
		assert_int_equal(((const unsigned char *)val.mv_data)[0], 2);
		nconv++;
	}
	assert_int_equal(nconv, 5);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(e);

	/* a second start finds nothing to migrate; readers may open it */
	assert_int_equal(store_open(&st, dir, MAP_MB, 0), 0);
	t = rtxn(st);
	feed_of(t, q_state(STORE_STATE_OPEN), &ids);
	ASSERT_IDS(&ids, 4, 5, 1);
	store_txn_abort(t);
	store_close(st);
	assert_int_equal(store_open(&ro, dir, MAP_MB, STORE_RDONLY), 0);
	t = rtxn(ro);
	feed_of(t, q_state(STORE_STATE_SNOOZED), &ids);
	ASSERT_IDS(&ids, 2);
	store_txn_abort(t);
	store_close(ro);
}

static void
migration_indexes_schema_1_contacts_by_email_and_phone(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	struct store *st = NULL;
	struct store_txn *t;
	uint64_t id = 0;

	snprintf(dir, sizeof(dir), "%s/v1", f->dir);
	build_v1(dir);
	assert_int_equal(store_open(&st, dir, MAP_MB, 0), 0);
	t = rtxn(st);
	/* a schema-1 customer writing from another channel is recognized */
	assert_int_equal(store_contact_find_email(t, "ann@example.com", &id),
	    0);
	assert_int_equal(id, 7);
	assert_int_equal(store_contact_find_phone(t, "15550102030", &id), 0);
	assert_int_equal(id, 7);
	store_txn_abort(t);
	store_close(st);
}

static void
store_with_a_newer_schema_is_refused_read_write_and_read_only(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);
	struct store *st = NULL;
	MDB_env *e;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, "schema" }, v;

	assert_int_equal(store_meta_put(t, "schema", 99), 0);
	put_conv(t, "a", STORE_STATE_OPEN, 1, 0, NULL, NULL);
	assert_int_equal(store_txn_commit(t), 0);
	store_close(f->st);
	f->st = NULL;

	assert_int_equal(store_open(&st, f->dir, MAP_MB, 0), INBOX_ESTATE);
	assert_int_equal(store_open(&st, f->dir, MAP_MB, STORE_RDONLY),
	    INBOX_ESTATE);

	/* and left as it was */
	e = raw_env(f->dir, true);
	assert_int_equal(mdb_txn_begin(e, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_int_equal(v.mv_size, 8);
	assert_int_equal(get_be64(v.mv_data), 99);
	mdb_txn_abort(txn);
	mdb_env_close(e);
}

static void
read_only_open_of_a_schema_1_store_is_refused_until_migrated(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	struct store *st = NULL;
	uint64_t schema = 0;

	snprintf(dir, sizeof(dir), "%s/v1", f->dir);
	build_v1(dir);
	assert_int_equal(store_open(&st, dir, MAP_MB, STORE_RDONLY),
	    INBOX_ESTATE);
	assert_int_equal(store_open(&st, dir, MAP_MB, 0), 0);
	assert_int_equal(store_schema(st, &schema), 0);
	assert_int_equal(schema, STORE_SCHEMA);
	store_close(st);
	assert_int_equal(store_open(&st, dir, MAP_MB, STORE_RDONLY), 0);
	store_close(st);
}

/* Shard 2 of 3 gives ids 3, 6, 9, ... to dialogs, messages, contacts and
 * tasks; the store keeps which shard it is and refuses another. */
static void
a_shard_gives_ids_of_its_own_and_keeps_its_number(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t;
	struct store_contact ct = { .connector = "api1", .channel = "api",
	    .external_id = "c1", .created = 1 };
	struct store_msg m = { .dir = STORE_DIR_IN, .ts = 1, .created = 1,
	    .connector = "api1", .channel = "api", .external_id = "m1",
	    .envelope = "{}", .envelope_len = 2 };
	struct store *ro;
	uint64_t c1, c2, t1, v = 0;

	assert_int_equal(store_set_shard(f->st, 2, 3), 0);
	t = wtxn(f->st);
	c1 = put_conv(t, "t1", STORE_STATE_OPEN, 10, 0, NULL, NULL);
	c2 = put_conv(t, "t2", STORE_STATE_OPEN, 11, 0, NULL, NULL);
	assert_int_equal(c1, 3);
	assert_int_equal(c2, 6);
	assert_int_equal(store_contact_put(t, &ct), 0);
	assert_int_equal(ct.id, 3);
	m.conv_id = c1;
	m.contact_id = ct.id;
	assert_int_equal(store_msg_add(t, &m), 0);
	assert_int_equal(m.id, 3);
	m.id = 0;
	m.external_id = "m2";
	assert_int_equal(store_msg_add(t, &m), 0);
	assert_int_equal(m.id, 6);
	t1 = put_task(t, c1, "call back", 0, false, false);
	assert_int_equal(t1, 3);
	assert_int_equal(store_meta_get(t, "shards", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(store_txn_commit(t), 0);
	for (uint64_t id = 3; id <= 6; id += 3)
		assert_int_equal(inbox_shard_of_id(id, 3), 2);

	/* the same shard again is fine; another shard or count is not */
	assert_int_equal(store_set_shard(f->st, 2, 3), 0);
	assert_int_equal(store_set_shard(f->st, 1, 3), INBOX_ESTATE);
	assert_int_equal(store_set_shard(f->st, 2, 4), INBOX_ESTATE);
	assert_int_equal(store_set_shard(f->st, 3, 3), INBOX_EINVAL);
	/* a read-only open checks it too */
	assert_int_equal(store_open(&ro, f->dir, MAP_MB, STORE_RDONLY), 0);
	assert_int_equal(store_set_shard(ro, 2, 3), 0);
	assert_int_equal(store_set_shard(ro, 0, 1), INBOX_ESTATE);
	store_close(ro);
}

/* A store that holds dialogs without shards cannot become a shard (its
 * ids are not its shard's); one shard (the default) is fine. */
static void
an_unsharded_store_with_dialogs_does_not_become_a_shard(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = wtxn(f->st);

	assert_int_equal(put_conv(t, "t1", STORE_STATE_OPEN, 10, 0, NULL,
	    NULL), 1);
	assert_int_equal(store_txn_commit(t), 0);
	assert_int_equal(store_set_shard(f->st, 0, 1), 0);
	assert_int_equal(store_set_shard(f->st, 0, 3), INBOX_ESTATE);
	t = wtxn(f->st);
	assert_int_equal(put_conv(t, "t2", STORE_STATE_OPEN, 11, 0, NULL,
	    NULL), 2);
	assert_int_equal(store_txn_commit(t), 0);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(feeds_match_every_filter_alone_and_combined_across_all_pages),
		TEST(feeds_follow_updates_without_stale_entries),
		TEST(feed_drops_a_conversation_from_its_old_tag_state_and_assignee),
		TEST(feed_keeps_tags_priority_nature_outcome_and_preview),
		TEST(feed_with_a_scan_max_hands_back_a_cursor_until_the_end),
		TEST(snoozes_fall_due_in_time_order_and_leave_when_unsnoozed),
		TEST(task_timers_hold_only_pending_tasks_and_next_due_takes_the_earliest),
		TEST(contacts_are_found_by_email_phone_and_channel_id_through_merges),
		TEST(messages_without_external_id_get_status_updates_and_one_link_per_key),
		TEST(templates_are_kept_by_name_listed_in_order_and_deleted_once),
		TEST(tags_are_registered_once_and_listed_sorted),
		TEST(outbox_events_keep_their_recipient_and_command_until_cleared),
		TEST(fresh_store_gets_the_current_schema),
		TEST(migration_rebuilds_feeds_and_timers_from_a_schema_1_store),
		TEST(migration_indexes_schema_1_contacts_by_email_and_phone),
		TEST(store_with_a_newer_schema_is_refused_read_write_and_read_only),
		TEST(read_only_open_of_a_schema_1_store_is_refused_until_migrated),
		TEST(a_shard_gives_ids_of_its_own_and_keeps_its_number),
		TEST(an_unsharded_store_with_dialogs_does_not_become_a_shard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
