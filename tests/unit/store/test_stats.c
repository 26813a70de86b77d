/*
 * store/stats.c against a real LMDB store in a private temporary directory:
 * conversations with known times go in through store_conv_put, then the
 * period's figures are checked: counts, medians and p90 (nearest rank),
 * per-team sums, the period's bounds ([from, to)), dialogs outside it,
 * breach alerts counted into the tree, and the agents' list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "store/store.h"

#define MAP_MB 64
#define FROM 100000
#define TO 200000

struct fixture {
	char dir[64];
	struct store *st;
};

/* One conversation of the scenario. */
struct sc {
	const char *assignee, *channel;
	int state;
	int64_t created, updated, fr, closed;
	int rating;
	int64_t rated_at;
};

/* The comments say how each counts in [FROM, TO). */
static const struct sc scenario[] = {
	/* ann: handled, fr 1000, resolution 10000, rated 5 */
	{ "ann", "email", STORE_STATE_CLOSED, 100000, 111000, 101000, 110000,
	  5, 111000 },
	/* ann: handled, fr 3000, open */
	{ "ann", "email", STORE_STATE_OPEN, 120000, 123000, 123000, 0, 0, 0 },
	/* ann: handled, fr 10000, open */
	{ "ann", "telegram", STORE_STATE_OPEN, 130000, 140000, 140000, 0, 0,
	  0 },
	/* bob: created before the period; fr 60000, resolution 70000, 3 */
	{ "bob", "telegram", STORE_STATE_CLOSED, 90000, 161000, 150000, 160000,
	  3, 161000 },
	/* bob: wholly before the period */
	{ "bob", "api", STORE_STATE_CLOSED, 10000, 30000, 20000, 30000, 4,
	  30000 },
	/* ann: fr 49999 counts; the close at TO is outside */
	{ "ann", "email", STORE_STATE_CLOSED, 150000, 200000, 199999, 200000,
	  0, 0 },
	/* bob: open since before the period, untouched in it */
	{ "bob", "api", STORE_STATE_OPEN, 50000, 60000, 0, 0, 0, 0 },
	/* cy: created at FROM (inside), fr 500, snoozed */
	{ "cy", "email", STORE_STATE_SNOOZED, 100000, 101000, 100500, 0, 0,
	  0 },
	/* unassigned: created in the period, open, no answer */
	{ NULL, "email", STORE_STATE_OPEN, 180000, 180000, 0, 0, 0, 0 },
	/* ann: closed 1 ms before FROM: nothing counts */
	{ "ann", "email", STORE_STATE_CLOSED, 98000, 99999, 99000, 99999, 2,
	  99999 },
	/* ann: reopened; its last close (in the period) counts: fr 1000,
	 * resolution 5000 */
	{ "ann", "email", STORE_STATE_OPEN, 165000, 175000, 166000, 170000, 0,
	  0 },
	/* bob: updated after TO (still touched in the period): fr 1000,
	 * resolution 85000; the rating after TO does not count */
	{ "bob", "email", STORE_STATE_CLOSED, 105000, 250000, 106000, 190000,
	  1, 250000 },
};

static void
put_agent(struct store_txn *t, const char *login, const char *teams,
    int32_t capacity)
{
	struct store_agent a = { .login = login, .name = login,
	    .role = "agent", .pwhash = "$argon2id$x", .created = 1,
	    .updated = 1, .teams = teams, .capacity = capacity };

	assert_int_equal(store_agent_put(t, &a), 0);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct store_txn *t = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/inboxd-stats-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (store_open(&f->st, f->dir, MAP_MB, 0) != 0 ||
	    store_txn_begin(f->st, true, &t) != 0)
		return -1;
	put_agent(t, "ann", "support, billing", 3);
	put_agent(t, "bob", "support", -1);
	put_agent(t, "cy", NULL, -1);
	for (size_t i = 0; i < sizeof(scenario) / sizeof(scenario[0]); i++) {
		const struct sc *s = &scenario[i];
		struct store_conv c = { 0 };
		char thread[32];

		snprintf(thread, sizeof(thread), "t-%zu", i);
		c.connector = "c1";
		c.thread = thread;
		c.channel = s->channel;
		c.assignee = s->assignee;
		c.state = s->state;
		c.created = s->created;
		c.updated = s->updated;
		c.first_response_at = s->fr;
		c.closed_at = s->closed;
		c.rating = s->rating;
		c.rated_at = s->rated_at;
		c.snooze_until = s->state == STORE_STATE_SNOOZED ? 500000 : 0;
		if (store_conv_put(t, &c) != 0)
			return -1;
	}
	if (store_txn_commit(t) != 0)
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

static cJSON *
stats(struct fixture *f, int64_t from, int64_t to)
{
	struct store_txn *t = NULL;
	void *out = NULL;

	assert_int_equal(store_txn_begin(f->st, false, &t), 0);
	assert_int_equal(store_stats(t, from, to, &out), 0);
	store_txn_abort(t);
	assert_non_null(out);
	return out;
}

static const cJSON *
row(const cJSON *root, const char *arr, const char *key, const char *name)
{
	/* arr NULL: root is the array */
	const cJSON *a = arr ? cJSON_GetObjectItemCaseSensitive(root, arr) :
	    root, *it;

	cJSON_ArrayForEach(it, a) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, key);

		if (cJSON_IsString(k) && strcmp(k->valuestring, name) == 0)
			return it;
	}
	fail_msg("no %s row %s", arr, name);
	return NULL;
}

/* A number field, or -1 for null. */
static double
num(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	if (cJSON_IsNull(it))
		return -1;
	if (!cJSON_IsNumber(it))
		fail_msg("%s is neither a number nor null", name);
	return it->valuedouble;
}

/* handled, closed, first responses, fr median, fr p90, resolution median,
 * ratings, rating average (-1: null). */
static void
check_figures(const cJSON *o, double handled, double closed, double frs,
    double frmed, double frp90, double resmed, double ratings, double avg)
{
	assert_true(num(o, "handled") == handled);
	assert_true(num(o, "closed") == closed);
	assert_true(num(o, "first_responses") == frs);
	assert_true(num(o, "first_response_median_ms") == frmed);
	assert_true(num(o, "first_response_p90_ms") == frp90);
	assert_true(num(o, "resolution_median_ms") == resmed);
	assert_true(num(o, "ratings") == ratings);
	assert_true(num(o, "rating_avg") == avg);
	assert_true(num(o, "sla_breaches") == 0);
}

static void
agents_have_their_counts_medians_p90_and_load(void **state)
{
	cJSON *s = stats(*state, FROM, TO);
	const cJSON *ann = row(s, "agents", "login", "ann");
	const cJSON *bob = row(s, "agents", "login", "bob");
	const cJSON *cy = row(s, "agents", "login", "cy");

	/* ann: fr 1000 1000 3000 10000 49999; resolution 5000 10000 */
	check_figures(ann, 5, 2, 5, 3000, 49999, 5000, 1, 5);
	assert_true(num(ann, "open_load") == 3);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
	    ann, "teams")), 2);
	/* bob: fr 1000 60000 (lower median); resolution 70000 85000 */
	check_figures(bob, 2, 2, 2, 1000, 60000, 70000, 1, 3);
	assert_true(num(bob, "open_load") == 1);
	/* cy: snoozed, answered at FROM + 500 */
	check_figures(cy, 1, 0, 1, 500, 500, -1, 0, -1);
	assert_true(num(cy, "open_load") == 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s,
	    "agents")), 3);
	cJSON_Delete(s);
}

static void
teams_pool_their_members_dialogs(void **state)
{
	cJSON *s = stats(*state, FROM, TO);
	const cJSON *support = row(s, "teams", "team", "support");
	const cJSON *billing = row(s, "teams", "team", "billing");

	/* fr 1000 1000 1000 3000 10000 49999 60000; resolution 5000 10000
	 * 70000 85000 */
	check_figures(support, 7, 4, 7, 3000, 60000, 10000, 2, 4);
	assert_true(num(support, "agents") == 2);
	assert_true(num(support, "open_load") == 4);
	check_figures(billing, 5, 2, 5, 3000, 49999, 5000, 1, 5);
	assert_true(num(billing, "agents") == 1);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s,
	    "teams")), 2);
	cJSON_Delete(s);
}

static void
totals_and_channels_count_created_in_the_period_and_open_now(void **state)
{
	cJSON *s = stats(*state, FROM, TO);
	const cJSON *tot = cJSON_GetObjectItemCaseSensitive(s, "totals");
	const cJSON *email = row(s, "channels", "channel", "email");
	const cJSON *tg = row(s, "channels", "channel", "telegram");
	const cJSON *api = row(s, "channels", "channel", "api");

	assert_true(num(s, "from") == FROM);
	assert_true(num(s, "to") == TO);
	/* fr 500 1000x4 3000 10000 49999 60000 */
	check_figures(tot, 8, 4, 8, 1000, 60000, 10000, 2, 4);
	assert_true(num(tot, "created") == 8);
	assert_true(num(tot, "open") == 5);
	assert_true(num(email, "created") == 7);
	assert_true(num(email, "open") == 3);
	assert_true(num(tg, "created") == 1);
	assert_true(num(tg, "open") == 1);
	assert_true(num(api, "created") == 0);
	assert_true(num(api, "open") == 1);
	cJSON_Delete(s);
}

static void
the_period_bounds_decide_what_counts(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = NULL;
	void *out = (void *)1;
	cJSON *s;

	/* up to the first close only: [FROM, 110001) */
	s = stats(f, FROM, 110001);
	check_figures(row(s, "agents", "login", "ann"), 1, 1, 1, 1000, 1000,
	    10000, 0, -1);
	check_figures(row(s, "agents", "login", "cy"), 1, 0, 1, 500, 500, -1,
	    0, -1);
	check_figures(row(s, "agents", "login", "bob"), 1, 0, 1, 1000, 1000,
	    -1, 0, -1);
	/* open now does not depend on the period */
	assert_true(num(cJSON_GetObjectItemCaseSensitive(s, "totals"),
	    "open") == 5);
	cJSON_Delete(s);
	/* widened by 1 ms at each end: the close at TO and the dialog closed
	 * just before FROM come in */
	s = stats(f, FROM - 1, TO + 1);
	check_figures(row(s, "agents", "login", "ann"), 6, 4, 5, 3000, 49999,
	    5000, 2, 3.5);
	cJSON_Delete(s);
	/* a period after everything: nothing */
	s = stats(f, 300000, 400000);
	check_figures(cJSON_GetObjectItemCaseSensitive(s, "totals"), 0, 0, 0,
	    -1, -1, -1, 0, -1);
	assert_true(num(cJSON_GetObjectItemCaseSensitive(s, "totals"),
	    "created") == 0);
	cJSON_Delete(s);
	assert_int_equal(store_txn_begin(f->st, false, &t), 0);
	assert_int_equal(store_stats(t, TO, FROM, &out), INBOX_EINVAL);
	assert_null(out);
	store_txn_abort(t);
}

static void
breach_alerts_count_for_the_agent_its_teams_and_the_totals(void **state)
{
	cJSON *s = stats(*state, FROM, TO);

	assert_true(store_stats_alert(s, "sla.breached",
	    "{\"conversation_id\":1,\"assignee\":\"ann\",\"at\":150000}"));
	assert_true(store_stats_alert(s, "sla.breached",
	    "{\"conversation_id\":2,\"assignee\":\"bob\",\"at\":100000}"));
	assert_true(store_stats_alert(s, "sla.breached",
	    "{\"conversation_id\":3,\"assignee\":null,\"at\":120000}"));
	/* not counted: a warning, outside the period, not JSON */
	assert_false(store_stats_alert(s, "sla.warning",
	    "{\"assignee\":\"ann\",\"at\":150000}"));
	assert_false(store_stats_alert(s, "sla.breached",
	    "{\"assignee\":\"ann\",\"at\":200000}"));
	assert_false(store_stats_alert(s, "sla.breached", "{oops"));
	assert_true(num(row(s, "agents", "login", "ann"), "sla_breaches") == 1);
	assert_true(num(row(s, "agents", "login", "bob"), "sla_breaches") == 1);
	assert_true(num(row(s, "agents", "login", "cy"), "sla_breaches") == 0);
	assert_true(num(row(s, "teams", "team", "support"), "sla_breaches") ==
	    2);
	assert_true(num(row(s, "teams", "team", "billing"), "sla_breaches") ==
	    1);
	assert_true(num(cJSON_GetObjectItemCaseSensitive(s, "totals"),
	    "sla_breaches") == 3);
	store_stats_alerts_unknown(s);
	assert_true(num(row(s, "agents", "login", "ann"), "sla_breaches") == -1);
	assert_true(num(cJSON_GetObjectItemCaseSensitive(s, "totals"),
	    "sla_breaches") == -1);
	cJSON_Delete(s);
}

static void
the_agents_list_has_load_and_effective_capacity(void **state)
{
	struct fixture *f = *state;
	struct store_txn *t = NULL;
	void *out = NULL;
	cJSON *arr;

	assert_int_equal(store_txn_begin(f->st, false, &t), 0);
	assert_int_equal(store_agents_json(t, 1000, 60000, 7, &out), 0);
	store_txn_abort(t);
	arr = out;
	assert_int_equal(cJSON_GetArraySize(arr), 3);
	assert_true(num(row(arr, NULL, "login", "ann"), "capacity") == 3);
	assert_true(num(row(arr, NULL, "login", "ann"), "effective_capacity") ==
	    3);
	assert_true(num(row(arr, NULL, "login", "ann"), "load") == 3);
	assert_true(num(row(arr, NULL, "login", "bob"), "capacity") == -1);
	assert_true(num(row(arr, NULL, "login", "bob"), "effective_capacity") ==
	    7);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(row(arr, NULL,
	    "login", "bob"), "presence")->valuestring, "offline");
	cJSON_Delete(arr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    agents_have_their_counts_medians_p90_and_load, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    teams_pool_their_members_dialogs, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    totals_and_channels_count_created_in_the_period_and_open_now,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_period_bounds_decide_what_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    breach_alerts_count_for_the_agent_its_teams_and_the_totals,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_agents_list_has_load_and_effective_capacity, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
