/*
 * inbox/route.h with an injected clock: who gets a dialog (fairness over
 * capacities, skills, presence, the previous assignee), business hours
 * across a weekend, durations, and SLA warnings and breaches that fire once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inbox/route.h"

#define MIN 60000LL
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
/* 2026-11-30 00:00 UTC, a Monday */
#define MONDAY 1795996800000LL

static void
fair_share_over_capacities_10_10_20_20_40(void **state)
{
	static const uint32_t caps[5] = { 10, 10, 20, 20, 40 };
	static const char *const logins[5] = { "a1", "a2", "a3", "a4", "a5" };
	struct inbox_route_agent ag[5];
	/* assigned[i]: open dialogs of agent i, by id, to close some */
	uint32_t open[5] = { 0 };
	size_t waiting = 0, given = 0;
	unsigned seed = 7;
	int64_t now = MONDAY;

	memset(ag, 0, sizeof(ag));
	for (int i = 0; i < 5; i++) {
		ag[i].login = logins[i];
		ag[i].available = true;
		ag[i].capacity = caps[i];
	}
	/* 1,000 dialogs arrive; agents close one now and then, and the queue
	 * drains into whoever has room */
	for (int d = 0; d < 1000; d++) {
		waiting++;
		now += 1000;
		if (d % 3 == 0) {
			seed = seed * 1103515245u + 12345u;
			int who = (int)((seed >> 16) % 5);

			if (ag[who].load > 0) {
				ag[who].load--;
				open[who]--;
			}
		}
		while (waiting > 0) {
			int i = inbox_route_pick(ag, 5, NULL, 0, NULL);
			uint32_t total = 0;

			if (i < 0)
				break;
			ag[i].load++;
			ag[i].last_assigned = now;
			open[i]++;
			waiting--;
			given++;
			/* every agent within one dialog of its share of the
			 * dialogs assigned now (share = capacity / 100) */
			for (int k = 0; k < 5; k++)
				total += ag[k].load;
			for (int k = 0; k < 5; k++) {
				double fair = (double)total * caps[k] / 100.0;

				if (ag[k].load > caps[k] ||
				    ag[k].load + 1.0 < fair ||
				    ag[k].load > fair + 1.0)
					fail_msg("dialog %d: %s has %u, fair "
					    "share %.2f of %u", d, logins[k],
					    ag[k].load, fair, total);
			}
		}
	}
	assert_true(given >= 100);
	/* the queue holds the rest; everyone is full */
	for (int k = 0; k < 5; k++)
		assert_int_equal(ag[k].load, caps[k]);
	assert_int_equal(inbox_route_pick(ag, 5, NULL, 0, NULL), -1);
}

static void
skills_route_and_a_tag_nobody_has_does_not(void **state)
{
	const char *const billing[] = { "billing" };
	const char *const vip_billing[] = { "vip", "billing" };
	const char *const tags_b[] = { "billing" };
	const char *const tags_vb[] = { "vip", "billing" };
	const char *const tags_x[] = { "nobody-has-this" };
	struct inbox_route_agent ag[3] = {
		{ "ann", true, 10, 0, 0, NULL, 0 },
		{ "bob", true, 10, 5, 0, billing, 1 },
		{ "cid", true, 10, 9, 0, vip_billing, 2 },
	};

	/* no tags: the least loaded */
	assert_int_equal(inbox_route_pick(ag, 3, NULL, 0, NULL), 0);
	/* #billing never goes to ann, who lacks the skill */
	assert_int_equal(inbox_route_pick(ag, 3, tags_b, 1, NULL), 1);
	ag[1].available = false;
	assert_int_equal(inbox_route_pick(ag, 3, tags_b, 1, NULL), 2);
	ag[2].load = 10;
	assert_int_equal(inbox_route_pick(ag, 3, tags_b, 1, NULL), -1);
	ag[1].available = true;
	ag[2].load = 0;
	/* #vip and #billing: only cid has both */
	assert_int_equal(inbox_route_pick(ag, 3, tags_vb, 2, NULL), 2);
	/* a tag that is nobody's skill does not restrict */
	assert_false(inbox_route_is_skill(ag, 3, "nobody-has-this"));
	assert_int_equal(inbox_route_pick(ag, 3, tags_x, 1, NULL), 0);
}

static void
previous_assignee_first_when_online_with_room(void **state)
{
	struct inbox_route_agent ag[2] = {
		{ "ann", true, 10, 0, 0, NULL, 0 },
		{ "bob", true, 10, 8, 0, NULL, 0 },
	};

	assert_int_equal(inbox_route_pick(ag, 2, NULL, 0, "bob"), 1);
	ag[1].available = false;        /* offline: someone else */
	assert_int_equal(inbox_route_pick(ag, 2, NULL, 0, "bob"), 0);
	ag[1].available = true;
	ag[1].load = 10;                /* full */
	assert_int_equal(inbox_route_pick(ag, 2, NULL, 0, "bob"), 0);
	/* a previous assignee who no longer exists */
	assert_int_equal(inbox_route_pick(ag, 2, NULL, 0, "gone"), 0);
}

static void
ties_go_to_the_agent_assigned_least_recently(void **state)
{
	struct inbox_route_agent ag[3] = {
		{ "ann", true, 10, 1, 500, NULL, 0 },   /* (1 + 1) / 10 */
		{ "bob", true, 20, 3, 100, NULL, 0 },   /* (3 + 1) / 20, earlier */
		{ "cid", true, 0, 0, 0, NULL, 0 },      /* capacity 0: never */
	};

	assert_int_equal(inbox_route_pick(ag, 3, NULL, 0, NULL), 1);
	ag[1].last_assigned = 900;
	assert_int_equal(inbox_route_pick(ag, 3, NULL, 0, NULL), 0);
	ag[0].last_assigned = 900;      /* full tie: by login */
	assert_int_equal(inbox_route_pick(ag, 3, NULL, 0, NULL), 0);
}

static void
business_hours_skip_nights_and_the_weekend(void **state)
{
	struct inbox_calendar cal;
	struct inbox_err err;
	int64_t fri17 = MONDAY + 4 * DAY + 17 * HOUR;
	int64_t sat12 = MONDAY + 5 * DAY + 12 * HOUR;

	assert_int_equal(inbox_calendar_parse("mon-fri 09:00-18:00", "UTC",
	    &cal, &err), 0);
	/* Friday 17:00 + 4 business hours = Monday 12:00 */
	assert_int_equal(inbox_calendar_add(&cal, fri17, 4 * HOUR),
	    MONDAY + 7 * DAY + 12 * HOUR);
	/* written on Saturday: counts from Monday 09:00 */
	assert_int_equal(inbox_calendar_add(&cal, sat12, 1 * HOUR),
	    MONDAY + 7 * DAY + 10 * HOUR);
	/* within one day */
	assert_int_equal(inbox_calendar_add(&cal, MONDAY + 10 * HOUR, HOUR),
	    MONDAY + 11 * HOUR);
	/* ending exactly at closing time stays that day */
	assert_int_equal(inbox_calendar_add(&cal, MONDAY + 9 * HOUR, 9 * HOUR),
	    MONDAY + 18 * HOUR);
	/* two full weeks of business time: 90 h later is two weeks on */
	assert_int_equal(inbox_calendar_add(&cal, MONDAY + 9 * HOUR, 90 * HOUR),
	    MONDAY + 11 * DAY + 18 * HOUR);
	/* no calendar: plain time */
	assert_int_equal(inbox_calendar_add(NULL, fri17, 4 * HOUR),
	    fri17 + 4 * HOUR);

	/* +03:00: Monday 09:00 local is 06:00 UTC */
	assert_int_equal(inbox_calendar_parse("mon-fri 09:00-18:00, sat "
	    "10:00-14:00", "+03:00", &cal, &err), 0);
	assert_int_equal(inbox_calendar_add(&cal, MONDAY, HOUR),
	    MONDAY + 7 * HOUR);
	/* Saturday has hours now: Friday 17:00 local + 2 h = Sat 11:00 */
	assert_int_equal(inbox_calendar_add(&cal, fri17 - 3 * HOUR, 2 * HOUR),
	    MONDAY + 5 * DAY + 11 * HOUR - 3 * HOUR);
}

static void
calendar_and_durations_reject_bad_input_with_a_reason(void **state)
{
	struct inbox_calendar cal;
	struct inbox_err err;
	int64_t ms;
	static const char *const bad[] = {
		"", "mon", "mon 9:00-18:00", "mon 18:00-09:00",
		"fri-mon 09:00-18:00", "xyz 09:00-10:00", "mon 09:00-25:00",
		"mon 09:00-18:00 tue", "mon 09:00_18:00",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(inbox_calendar_parse(bad[i], NULL, &cal, &err),
		    INBOX_EINVAL);
		assert_non_null(strstr(err.msg, "week"));
	}
	assert_int_equal(inbox_calendar_parse("mon 09:00-10:00", "3", &cal,
	    &err), INBOX_EINVAL);
	assert_non_null(strstr(err.msg, "utc_offset"));
	assert_int_equal(inbox_calendar_parse("mon 09:00-10:00", "+15:00",
	    &cal, &err), INBOX_EINVAL);
	assert_int_equal(inbox_duration_parse("90s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(inbox_duration_parse("4h", &ms), 0);
	assert_int_equal(ms, 4 * HOUR);
	assert_int_equal(inbox_duration_parse("2d", &ms), 0);
	assert_int_equal(ms, 2 * DAY);
	assert_int_equal(inbox_duration_parse("4", &ms), INBOX_EINVAL);
	assert_int_equal(inbox_duration_parse("h", &ms), INBOX_EINVAL);
	assert_int_equal(inbox_duration_parse("-1h", &ms), INBOX_EINVAL);
	assert_int_equal(inbox_duration_parse("4hh", &ms), INBOX_EINVAL);
	assert_int_equal(inbox_duration_parse("99999999999999d", &ms),
	    INBOX_EINVAL);
}

static void
sla_warns_then_breaches_once_each_and_a_stop_clears(void **state)
{
	struct inbox_sla s;
	struct inbox_sla_alert al[6];
	int64_t t0 = MONDAY;

	memset(&s, 0, sizeof(s));
	assert_int_equal(inbox_sla_next(&s), 0);
	inbox_sla_start(&s, INBOX_SLA_FIRST_RESPONSE, t0, 10 * MIN, 80, NULL);
	inbox_sla_start(&s, INBOX_SLA_RESOLUTION, t0, 100 * MIN, 80, NULL);
	assert_int_equal(inbox_sla_next(&s), t0 + 8 * MIN);
	assert_int_equal(inbox_sla_fire(&s, t0 + 7 * MIN, al), 0);
	assert_int_equal(inbox_sla_fire(&s, t0 + 8 * MIN, al), 1);
	assert_int_equal(al[0].kind, INBOX_SLA_FIRST_RESPONSE);
	assert_false(al[0].breached);
	assert_int_equal(al[0].overdue_ms, -2 * MIN);
	/* not again */
	assert_int_equal(inbox_sla_fire(&s, t0 + 9 * MIN, al), 0);
	assert_int_equal(inbox_sla_next(&s), t0 + 10 * MIN);
	assert_int_equal(inbox_sla_fire(&s, t0 + 12 * MIN, al), 1);
	assert_true(al[0].breached);
	assert_int_equal(al[0].overdue_ms, 2 * MIN);
	assert_int_equal(inbox_sla_fire(&s, t0 + 13 * MIN, al), 0);
	assert_int_equal(inbox_sla_next(&s), t0 + 80 * MIN);
	/* a reply stops first response; close stops resolution */
	inbox_sla_stop(&s, INBOX_SLA_FIRST_RESPONSE);
	inbox_sla_stop(&s, INBOX_SLA_RESOLUTION);
	assert_int_equal(inbox_sla_next(&s), 0);
	assert_int_equal(inbox_sla_fire(&s, t0 + 1000 * MIN, al), 0);
}

static void
sla_after_downtime_sends_the_breach_not_a_stale_warning(void **state)
{
	struct inbox_sla s;
	struct inbox_sla_alert al[6];
	struct inbox_calendar cal;
	struct inbox_err err;
	int64_t fri17 = MONDAY + 4 * DAY + 17 * HOUR;

	memset(&s, 0, sizeof(s));
	inbox_sla_start(&s, INBOX_SLA_NEXT_RESPONSE, MONDAY, HOUR, 80, NULL);
	assert_int_equal(inbox_sla_fire(&s, MONDAY + 5 * HOUR, al), 1);
	assert_true(al[0].breached);
	assert_int_equal(al[0].overdue_ms, 4 * HOUR);
	assert_int_equal(inbox_sla_next(&s), 0);
	/* a restart clears what was sent */
	inbox_sla_start(&s, INBOX_SLA_NEXT_RESPONSE, MONDAY + 6 * HOUR, HOUR,
	    50, NULL);
	assert_int_equal(inbox_sla_next(&s), MONDAY + 6 * HOUR + 30 * MIN);

	/* in business hours, a Friday-evening dialog breaches on Monday */
	assert_int_equal(inbox_calendar_parse("mon-fri 09:00-18:00", NULL, &cal,
	    &err), 0);
	memset(&s, 0, sizeof(s));
	inbox_sla_start(&s, INBOX_SLA_FIRST_RESPONSE, fri17, 2 * HOUR, 50,
	    &cal);
	assert_int_equal(s.t[0].warn_at, fri17 + HOUR);
	assert_int_equal(s.t[0].due_at, MONDAY + 7 * DAY + 10 * HOUR);
	assert_int_equal(inbox_sla_fire(&s, MONDAY + 5 * DAY + 12 * HOUR, al),
	    1);
	assert_false(al[0].breached);   /* Saturday: only the warning */
	assert_int_equal(inbox_sla_fire(&s, MONDAY + 7 * DAY + 10 * HOUR, al),
	    1);
	assert_true(al[0].breached);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fair_share_over_capacities_10_10_20_20_40),
		cmocka_unit_test(skills_route_and_a_tag_nobody_has_does_not),
		cmocka_unit_test(previous_assignee_first_when_online_with_room),
		cmocka_unit_test(ties_go_to_the_agent_assigned_least_recently),
		cmocka_unit_test(business_hours_skip_nights_and_the_weekend),
		cmocka_unit_test(calendar_and_durations_reject_bad_input_with_a_reason),
		cmocka_unit_test(sla_warns_then_breaches_once_each_and_a_stop_clears),
		cmocka_unit_test(sla_after_downtime_sends_the_breach_not_a_stale_warning),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
