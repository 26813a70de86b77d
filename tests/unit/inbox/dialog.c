/* libinbox: the dialog lifecycle tried on every state against every action,
 * and the value rules of a ticket (tags, names, logins, mentions, reply
 * templates). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inbox/dialog.h"

#define NOW	1790000000000LL
#define HOUR	3600000LL
#define DAY	(24 * HOUR)
#define FIVE_YEARS	(5LL * 365 * DAY)
#define EARLIER	(NOW - 7 * DAY)  /* closed_at of the dialogs set up */
#define WAKE	(NOW + HOUR)     /* snooze_until of the snoozed one */
#define UNTIL	(NOW + DAY)      /* `until` given to SNOOZE */

static void
expect_msg(const struct inbox_err *err, const char *part)
{
	if (strstr(err->msg, part) == NULL)
		fail_msg("message '%s' lacks '%s'", err->msg, part);
}

/* ---- lifecycle ------------------------------------------------------- */

/* A dialog in `state` as the table starts it: closed once before, reopened
 * twice, and (snoozed only) due at WAKE. */
static struct inbox_dialog
dialog_in(int state)
{
	struct inbox_dialog d;

	d.state = state;
	d.snooze_until = state == INBOX_DS_SNOOZED ? WAKE : 0;
	d.closed_at = EARLIER;
	d.reopen_count = 2;
	return d;
}

struct row {
	int state, action;
	int rc;
	int to;
	bool changed, reopened, unsnoozed;
	const char *why;
	uint32_t reopen_count;
	int64_t snooze_until, closed_at;
	const char *msg;         /* part of err.msg when rc != 0 */
};

/* Every (state, action) pair, applied at NOW (SNOOZE with UNTIL). */
static const struct row rows[] = {
	{ INBOX_DS_OPEN, INBOX_DA_CLOSE, 0, INBOX_DS_CLOSED,
	    true, false, false, "agent", 2, 0, NOW, NULL },
	{ INBOX_DS_OPEN, INBOX_DA_SNOOZE, 0, INBOX_DS_SNOOZED,
	    true, false, false, "agent", 2, UNTIL, EARLIER, NULL },
	{ INBOX_DS_OPEN, INBOX_DA_REOPEN, INBOX_ESTATE, INBOX_DS_OPEN,
	    false, false, false, "agent", 2, 0, EARLIER,
	    "illegal transition: reopen of an open dialog" },
	{ INBOX_DS_OPEN, INBOX_DA_CUSTOMER_MSG, 0, INBOX_DS_OPEN,
	    false, false, false, "customer_message", 2, 0, EARLIER, NULL },
	{ INBOX_DS_OPEN, INBOX_DA_TIMER, 0, INBOX_DS_OPEN,
	    false, false, false, "timer", 2, 0, EARLIER, NULL },

	{ INBOX_DS_SNOOZED, INBOX_DA_CLOSE, 0, INBOX_DS_CLOSED,
	    true, false, false, "agent", 2, 0, NOW, NULL },
	{ INBOX_DS_SNOOZED, INBOX_DA_SNOOZE, 0, INBOX_DS_SNOOZED,
	    true, false, false, "agent", 2, UNTIL, EARLIER, NULL },
	/* the agent reopens it himself: nobody is told it woke */
	{ INBOX_DS_SNOOZED, INBOX_DA_REOPEN, 0, INBOX_DS_OPEN,
	    true, false, false, "agent", 2, 0, EARLIER, NULL },
	{ INBOX_DS_SNOOZED, INBOX_DA_CUSTOMER_MSG, 0, INBOX_DS_OPEN,
	    true, false, true, "customer_message", 2, 0, EARLIER, NULL },
	/* not due yet at NOW (due at WAKE) */
	{ INBOX_DS_SNOOZED, INBOX_DA_TIMER, 0, INBOX_DS_SNOOZED,
	    false, false, false, "timer", 2, WAKE, EARLIER, NULL },

	{ INBOX_DS_CLOSED, INBOX_DA_CLOSE, INBOX_ESTATE, INBOX_DS_CLOSED,
	    false, false, false, "agent", 2, 0, EARLIER,
	    "illegal transition: close of a closed dialog" },
	{ INBOX_DS_CLOSED, INBOX_DA_SNOOZE, INBOX_ESTATE, INBOX_DS_CLOSED,
	    false, false, false, "agent", 2, 0, EARLIER,
	    "illegal transition: snooze of a closed dialog" },
	{ INBOX_DS_CLOSED, INBOX_DA_REOPEN, 0, INBOX_DS_OPEN,
	    true, true, false, "agent", 3, 0, EARLIER, NULL },
	{ INBOX_DS_CLOSED, INBOX_DA_CUSTOMER_MSG, 0, INBOX_DS_OPEN,
	    true, true, false, "customer_message", 3, 0, EARLIER, NULL },
	{ INBOX_DS_CLOSED, INBOX_DA_TIMER, 0, INBOX_DS_CLOSED,
	    false, false, false, "timer", 2, 0, EARLIER, NULL },
};

static void
every_state_meets_every_action_as_the_table_says(void **state)
{
	bool seen[INBOX_DS__COUNT][INBOX_DA__COUNT] = { { false } };

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct inbox_dialog d = dialog_in(r->state);
		struct inbox_dtransition t;
		struct inbox_err err;
		const char *label;
		int rc;

		assert_false(seen[r->state][r->action]);
		seen[r->state][r->action] = true;
		memset(&err, 0, sizeof(err));
		memset(&t, 0xa5, sizeof(t));
		rc = inbox_dialog_apply(&d, r->action,
		    r->action == INBOX_DA_SNOOZE ? UNTIL : -1, NOW, &t, &err);
		label = inbox_dstate_name(r->state);
		if (rc != r->rc)
			fail_msg("row %zu (%s, action %d): rc %d, want %d", i,
			    label, r->action, rc, r->rc);
		assert_int_equal(t.from, r->state);
		assert_int_equal(t.to, r->to);
		assert_int_equal(d.state, r->to);
		if (t.changed != r->changed || t.reopened != r->reopened ||
		    t.unsnoozed != r->unsnoozed)
			fail_msg("row %zu (%s, action %d): changed %d reopened "
			    "%d unsnoozed %d", i, label, r->action, t.changed,
			    t.reopened, t.unsnoozed);
		assert_string_equal(t.why, r->why);
		assert_int_equal(d.reopen_count, r->reopen_count);
		assert_true(d.snooze_until == r->snooze_until);
		assert_true(d.closed_at == r->closed_at);
		if (r->rc != 0) {
			assert_int_equal(err.code, r->rc);
			assert_string_equal(err.field, "state");
			assert_string_equal(err.msg, r->msg);
		}
	}
	for (int s = 0; s < INBOX_DS__COUNT; s++)
		for (int a = 0; a < INBOX_DA__COUNT; a++)
			if (!seen[s][a])
				fail_msg("no row for state %d action %d", s, a);
}

static void
an_unchanged_dialog_is_left_byte_for_byte(void **state)
{
	static const struct { int state, action; } same[] = {
		{ INBOX_DS_OPEN, INBOX_DA_REOPEN },
		{ INBOX_DS_OPEN, INBOX_DA_CUSTOMER_MSG },
		{ INBOX_DS_OPEN, INBOX_DA_TIMER },
		{ INBOX_DS_SNOOZED, INBOX_DA_TIMER },
		{ INBOX_DS_CLOSED, INBOX_DA_CLOSE },
		{ INBOX_DS_CLOSED, INBOX_DA_SNOOZE },
		{ INBOX_DS_CLOSED, INBOX_DA_TIMER },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		struct inbox_dialog d = dialog_in(same[i].state), before = d;
		struct inbox_dtransition t;

		/* err NULL is allowed, errors included */
		(void)inbox_dialog_apply(&d, same[i].action, UNTIL, NOW, &t,
		    NULL);
		assert_memory_equal(&d, &before, sizeof(d));
		assert_false(t.changed);
	}
}

static void
the_timer_wakes_a_snoozed_dialog_at_its_time_not_before(void **state)
{
	static const struct { int64_t now; bool wakes; } at[] = {
		{ WAKE - HOUR, false },
		{ WAKE - 1, false },
		{ WAKE, true },
		{ WAKE + 1, true },
		{ WAKE + 30 * DAY, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct inbox_dialog d = dialog_in(INBOX_DS_SNOOZED);
		struct inbox_dtransition t;

		assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_TIMER, 0,
		    at[i].now, &t, NULL), 0);
		assert_int_equal(t.changed, at[i].wakes);
		assert_int_equal(t.unsnoozed, at[i].wakes);
		assert_false(t.reopened);
		assert_string_equal(t.why, "timer");
		assert_int_equal(d.state, at[i].wakes ? INBOX_DS_OPEN :
		    INBOX_DS_SNOOZED);
		assert_int_equal(t.to, d.state);
		assert_true(d.snooze_until == (at[i].wakes ? 0 : WAKE));
		assert_int_equal(d.reopen_count, 2);
	}
}

static void
snooze_takes_a_time_after_now_and_at_most_five_years_ahead(void **state)
{
	static const struct { int64_t now, until; int rc; const char *msg; }
	    at[] = {
		{ NOW, NOW + 1, 0, NULL },
		{ NOW, NOW + FIVE_YEARS, 0, NULL },
		{ NOW, NOW, INBOX_EINVAL, "not after now" },
		{ NOW, NOW - 1, INBOX_EINVAL, "not after now" },
		{ NOW, 0, INBOX_EINVAL, "not after now" },
		{ NOW, NOW + FIVE_YEARS + 1, INBOX_EINVAL, "5 years" },
		{ NOW, INT64_MAX, INBOX_EINVAL, "5 years" },
		{ NOW, INT64_MIN, INBOX_EINVAL, "not after now" },
		/* the difference overflows int64 and must not wrap */
		{ -NOW, INT64_MAX, INBOX_EINVAL, "5 years" },
		{ INT64_MIN, INT64_MAX, INBOX_EINVAL, "5 years" },
		{ INT64_MAX - 1, INT64_MAX, 0, NULL },
	};

	(void)state;
	for (int s = INBOX_DS_OPEN; s <= INBOX_DS_SNOOZED; s++) {
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			struct inbox_dialog d = dialog_in(s), before = d;
			struct inbox_dtransition t;
			struct inbox_err err;
			int rc;

			memset(&err, 0, sizeof(err));
			rc = inbox_dialog_apply(&d, INBOX_DA_SNOOZE, at[i].until,
			    at[i].now, &t, &err);
			if (rc != at[i].rc)
				fail_msg("state %d row %zu: rc %d", s, i, rc);
			if (rc == 0) {
				assert_int_equal(d.state, INBOX_DS_SNOOZED);
				assert_true(d.snooze_until == at[i].until);
				assert_true(t.changed);
				continue;
			}
			assert_memory_equal(&d, &before, sizeof(d));
			assert_false(t.changed);
			assert_int_equal(t.to, s);
			assert_string_equal(err.field, "until");
			expect_msg(&err, at[i].msg);
		}
	}
}

static void
a_closed_dialog_is_refused_a_snooze_before_its_time_is_checked(void **state)
{
	struct inbox_dialog d = dialog_in(INBOX_DS_CLOSED);
	struct inbox_dtransition t;
	struct inbox_err err;

	(void)state;
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_SNOOZE, NOW - 1, NOW,
	    &t, &err), INBOX_ESTATE);
	assert_string_equal(err.msg,
	    "illegal transition: snooze of a closed dialog");
}

static void
a_whole_life_counts_reopens_and_keeps_the_last_close(void **state)
{
	struct inbox_dialog d = { INBOX_DS_OPEN, 0, 0, 0 };
	struct inbox_dtransition t;

	(void)state;
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_CLOSE, 0, 100, &t,
	    NULL), 0);
	assert_true(d.closed_at == 100);
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_CUSTOMER_MSG, 0, 200,
	    &t, NULL), 0);
	assert_true(t.reopened);
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_SNOOZE, 1000, 300,
	    &t, NULL), 0);
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_SNOOZE, 500, 400,
	    &t, NULL), 0);
	assert_true(d.snooze_until == 500);  /* moved, earlier too */
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_TIMER, 0, 500, &t,
	    NULL), 0);
	assert_true(t.unsnoozed);
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_CLOSE, 0, 600, &t,
	    NULL), 0);
	assert_int_equal(inbox_dialog_apply(&d, INBOX_DA_REOPEN, 0, 700, &t,
	    NULL), 0);
	assert_int_equal(d.state, INBOX_DS_OPEN);
	assert_int_equal(d.reopen_count, 2);
	assert_true(d.closed_at == 600);
	assert_true(d.snooze_until == 0);
}

static void
unknown_states_and_actions_are_refused_untouched(void **state)
{
	static const struct { int state, action; const char *field, *msg; }
	    bad[] = {
		{ -1, INBOX_DA_CLOSE, "state", "unknown dialog state -1" },
		{ INBOX_DS__COUNT, INBOX_DA_TIMER, "state",
		    "unknown dialog state 3" },
		{ INBOX_DS_OPEN, -1, "action", "unknown dialog action -1" },
		{ INBOX_DS_CLOSED, INBOX_DA__COUNT, "action",
		    "unknown dialog action 5" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct inbox_dialog d = { bad[i].state, 7, 8, 9 }, before = d;
		struct inbox_dtransition t;
		struct inbox_err err;

		assert_int_equal(inbox_dialog_apply(&d, bad[i].action, UNTIL,
		    NOW, &t, &err), INBOX_EINVAL);
		assert_memory_equal(&d, &before, sizeof(d));
		assert_int_equal(t.from, bad[i].state);
		assert_int_equal(t.to, bad[i].state);
		assert_false(t.changed);
		assert_string_equal(err.field, bad[i].field);
		assert_string_equal(err.msg, bad[i].msg);
		assert_int_equal(inbox_dialog_apply(&d, bad[i].action, UNTIL,
		    NOW, &t, NULL), INBOX_EINVAL);
	}
}

static void
state_names_parse_back_and_others_are_refused(void **state)
{
	static const char *const names[] = { "open", "snoozed", "closed" };
	int s;

	(void)state;
	for (int i = 0; i < INBOX_DS__COUNT; i++) {
		assert_string_equal(inbox_dstate_name(i), names[i]);
		s = -1;
		assert_int_equal(inbox_dstate_parse(names[i], &s), 0);
		assert_int_equal(s, i);
	}
	s = 42;
	assert_int_equal(inbox_dstate_parse("Open", &s), INBOX_EINVAL);
	assert_int_equal(inbox_dstate_parse("", &s), INBOX_EINVAL);
	assert_int_equal(inbox_dstate_parse("reopened", &s), INBOX_EINVAL);
	assert_int_equal(inbox_dstate_parse(NULL, &s), INBOX_EINVAL);
	assert_int_equal(s, 42);
	assert_string_equal(inbox_dstate_name(3), "unknown");
	assert_string_equal(inbox_dstate_name(-1), "unknown");
}

/* ---- tags ------------------------------------------------------------- */

static void
expect_tag(const char *in, const char *want)
{
	char out[INBOX_TAG_MAX + 1];
	struct inbox_err err;

	memset(&err, 0, sizeof(err));
	if (inbox_tag_normalize(in, out, sizeof(out), &err) != 0)
		fail_msg("tag '%s' refused: %s", in, err.msg);
	if (strcmp(out, want) != 0)
		fail_msg("tag '%s' became '%s', want '%s'", in, out, want);
}

static void
expect_bad_tag(const char *in, const char *msg)
{
	char out[INBOX_TAG_MAX + 1] = "untouched";
	struct inbox_err err;

	memset(&err, 0, sizeof(err));
	if (inbox_tag_normalize(in, out, sizeof(out), &err) != INBOX_EINVAL)
		fail_msg("tag '%s' accepted as '%s'", in, out);
	assert_int_equal(err.code, INBOX_EINVAL);
	assert_string_equal(err.field, "tag");
	if (strstr(err.msg, msg) == NULL)
		fail_msg("tag '%s': message '%s' lacks '%s'", in, err.msg, msg);
	assert_string_equal(out, "untouched");
	assert_int_equal(inbox_tag_normalize(in, out, sizeof(out), NULL),
	    INBOX_EINVAL);
}

static char *
repeat(const char *pre, const char *unit, size_t n, const char *post)
{
	size_t u = strlen(unit), p = strlen(pre);
	char *s = malloc(p + u * n + strlen(post) + 1);

	assert_non_null(s);
	memcpy(s, pre, p);
	for (size_t i = 0; i < n; i++)
		memcpy(s + p + i * u, unit, u);
	strcpy(s + p + u * n, post);
	return s;
}

static void
tags_lose_hash_and_spaces_and_are_lowercased_in_any_script(void **state)
{
	(void)state;
	expect_tag("payment", "payment");
	expect_tag("#Payment ", "payment");
	expect_tag(" \t#VIP-Client\r\n", "vip-client");
	expect_tag("ОПЛАТА", "оплата");
	expect_tag("#Возврат_Денег", "возврат_денег");
	expect_tag("ΣΟΦΊΑ", "σοφία");
	/* simple case mapping: no final-sigma rule */
	expect_tag("ΟΔΟΣ", "οδοσ");
	expect_tag("Größe", "größe");
	expect_tag("ẞ", "ß");
	expect_tag("ÄÖÜ", "äöü");
	expect_tag("ǄEMAL", "ǆemal");
	expect_tag("ǅemal", "ǆemal");
	expect_tag("ŁÓDŹ", "łódź");
	expect_tag("ՀԱՅ", "հայ");
	expect_tag("ᲥᲐᲠᲗᲣᲚᲘ", "ქართული");
	expect_tag("İstanbul", "istanbul");
	expect_tag("\xe2\x84\xaa", "k");  /* KELVIN SIGN, 3 bytes to 1 */
	expect_tag("ȺB", "ⱥb");           /* 2 bytes to 3 */
	expect_tag("𐐀", "𐐨");            /* Deseret, outside the BMP */
	expect_tag("注文", "注文");
	expect_tag("طلب-١٢٣", "طلب-١٢٣");  /* Arabic-Indic digits */
	expect_tag("भुगतान", "भुगतान");      /* Devanagari vowel signs */
	expect_tag("v2.1/Order:Refund_X-9", "v2.1/order:refund_x-9");
	expect_tag("123", "123");
	expect_tag("#-", "-");
}

static void
tags_at_the_length_limit_pass_and_one_byte_more_fails(void **state)
{
	char *s;

	(void)state;
	s = repeat("", "a", INBOX_TAG_MAX, "");
	expect_tag(s, s);
	free(s);
	/* '#' and the white space around do not count */
	s = repeat("  #", "A", INBOX_TAG_MAX, " \t");
	{
		char *want = repeat("", "a", INBOX_TAG_MAX, "");

		expect_tag(s, want);
		free(want);
	}
	free(s);
	s = repeat("", "a", INBOX_TAG_MAX + 1, "");
	expect_bad_tag(s, "tag: longer than 64 bytes");
	free(s);
	/* 63 bytes and a 2-byte letter: 65, refused and not cut */
	s = repeat("", "a", INBOX_TAG_MAX - 1, "ж");
	expect_bad_tag(s, "longer than 64 bytes");
	free(s);
	s = repeat("", "a", INBOX_TAG_MAX - 2, "ж");
	expect_tag(s, s);
	free(s);
	/* the limit is on the normalized form: Ⱥ (2 bytes) lowers to ⱥ (3) */
	s = repeat("", "Ⱥ", 22, "");                 /* 44 in, 66 out */
	expect_bad_tag(s, "longer than 64 bytes");
	free(s);
	s = repeat("", "Ⱥ", 21, "A");                /* 43 in, 64 out */
	{
		char *want = repeat("", "ⱥ", 21, "a");

		expect_tag(s, want);
		free(want);
	}
	free(s);
	/* and the Kelvin sign (3 bytes) lowers to k (1): 66 in, 22 out */
	s = repeat("", "\xe2\x84\xaa", 22, "");
	{
		char *want = repeat("", "k", 22, "");

		expect_tag(s, want);
		free(want);
	}
	free(s);
}

static void
bad_tags_are_refused_naming_the_problem_and_the_byte(void **state)
{
	(void)state;
	expect_bad_tag("", "tag: empty");
	expect_bad_tag(" \t\n", "tag: empty");
	expect_bad_tag("#", "tag: empty");
	expect_bad_tag("  #  ", "tag: empty");
	expect_bad_tag(NULL, "tag: empty");
	expect_bad_tag("pay ment", "tag: character ' ' (U+0020) not allowed "
	    "at byte 3");
	expect_bad_tag("  pay ment", "' ' (U+0020) not allowed at byte 5");
	expect_bad_tag("# vip", "' ' (U+0020) not allowed at byte 1");
	expect_bad_tag("##vip", "'#' (U+0023) not allowed at byte 1");
	expect_bad_tag("a\tb", "character U+0009 not allowed at byte 1");
	expect_bad_tag("a!", "'!' (U+0021) not allowed at byte 1");
	expect_bad_tag("a@b", "'@' (U+0040) not allowed at byte 1");
	expect_bad_tag("a,b", "',' (U+002C) not allowed at byte 1");
	expect_bad_tag("a+b", "'+' (U+002B) not allowed at byte 1");
	expect_bad_tag("оплата€", "'€' (U+20AC) not allowed at byte 12");
	expect_bad_tag("ok😀", "(U+1F600) not allowed at byte 2");
	expect_bad_tag("a\xc2\xa0" "b", "(U+00A0) not allowed at byte 1");
	/* NFC is not applied, and a lone combining mark is no letter */
	expect_bad_tag("e\xcc\x81", "(U+0301) not allowed at byte 1");
	expect_bad_tag("\xff", "tag: invalid UTF-8 at byte 0");
	expect_bad_tag("  ab\xc3", "invalid UTF-8 at byte 4");
	expect_bad_tag("#ab\xed\xa0\x80", "invalid UTF-8 at byte 3");
	expect_bad_tag("a\xc0\xafz", "invalid UTF-8 at byte 1");
}

static void
a_tag_buffer_too_small_is_refused_not_overrun(void **state)
{
	char out[4] = "xyz";
	struct inbox_err err;

	(void)state;
	assert_int_equal(inbox_tag_normalize("abcd", out, sizeof(out), &err),
	    INBOX_EINVAL);
	assert_string_equal(out, "xyz");
	assert_string_equal(err.field, "tag");
	assert_int_equal(inbox_tag_normalize("ABC", out, sizeof(out), &err), 0);
	assert_string_equal(out, "abc");
}

/* ---- priority, nature, login ----------------------------------------- */

static void
priorities_and_natures_parse_their_names_only(void **state)
{
	static const char *const prio[] = { "low", "normal", "high", "urgent" };
	static const char *const nature[] = { NULL, "inquiry", "complaint",
	    "proposal", "order", "other" };
	int v;

	(void)state;
	for (int i = 0; i < INBOX_PRIO__COUNT; i++) {
		assert_string_equal(inbox_priority_name(i), prio[i]);
		v = -1;
		assert_int_equal(inbox_priority_parse(prio[i], &v), 0);
		assert_int_equal(v, i);
	}
	assert_true(INBOX_PRIO_LOW < INBOX_PRIO_NORMAL &&
	    INBOX_PRIO_NORMAL < INBOX_PRIO_HIGH &&
	    INBOX_PRIO_HIGH < INBOX_PRIO_URGENT);
	for (int i = 1; i < INBOX_NATURE__COUNT; i++) {
		assert_string_equal(inbox_nature_name(i), nature[i]);
		v = -1;
		assert_int_equal(inbox_nature_parse(nature[i], &v), 0);
		assert_int_equal(v, i);
	}
	assert_null(inbox_nature_name(INBOX_NATURE_NONE));
	assert_null(inbox_nature_name(INBOX_NATURE__COUNT));
	assert_null(inbox_nature_name(-1));
	assert_string_equal(inbox_priority_name(INBOX_PRIO__COUNT), "unknown");
	assert_string_equal(inbox_priority_name(-1), "unknown");
	v = 42;
	assert_int_equal(inbox_priority_parse("Urgent", &v), INBOX_EINVAL);
	assert_int_equal(inbox_priority_parse("critical", &v), INBOX_EINVAL);
	assert_int_equal(inbox_priority_parse("", &v), INBOX_EINVAL);
	assert_int_equal(inbox_priority_parse(NULL, &v), INBOX_EINVAL);
	assert_int_equal(inbox_nature_parse("none", &v), INBOX_EINVAL);
	assert_int_equal(inbox_nature_parse("", &v), INBOX_EINVAL);
	assert_int_equal(inbox_nature_parse("Order", &v), INBOX_EINVAL);
	assert_int_equal(inbox_nature_parse(NULL, &v), INBOX_EINVAL);
	assert_int_equal(v, 42);
}

static void
logins_are_1_to_64_lowercase_letters_digits_dot_underscore_dash(void **state)
{
	char *s;

	(void)state;
	assert_true(inbox_login_valid("ann"));
	assert_true(inbox_login_valid("a.b_c-9"));
	assert_true(inbox_login_valid("0"));
	assert_true(inbox_login_valid("-"));
	s = repeat("", "z", 64, "");
	assert_true(inbox_login_valid(s));
	free(s);
	s = repeat("", "z", 65, "");
	assert_false(inbox_login_valid(s));
	free(s);
	assert_false(inbox_login_valid(""));
	assert_false(inbox_login_valid(NULL));
	assert_false(inbox_login_valid("Ann"));
	assert_false(inbox_login_valid("ann@example.com"));
	assert_false(inbox_login_valid("an n"));
	assert_false(inbox_login_valid("ann/x"));
	assert_false(inbox_login_valid("анна"));
	assert_false(inbox_login_valid("é"));
}

/* ---- mentions --------------------------------------------------------- */

struct got {
	char v[1100][65];
	size_t n;
	size_t stop_after;       /* 0: never stop */
};

static int
collect(void *arg, const char *login)
{
	struct got *g = arg;

	assert_true(strlen(login) <= 64);
	assert_true(g->n < sizeof(g->v) / sizeof(g->v[0]));
	strcpy(g->v[g->n++], login);
	return g->stop_after != 0 && g->n == g->stop_after;
}

/* want: the logins expected, space-separated ("" for none). */
static void
expect_mentions(const char *text, const char *want)
{
	struct got *g = calloc(1, sizeof(*g));
	char all[4096] = "";
	size_t n;

	assert_non_null(g);
	n = inbox_mentions(text, collect, g);
	for (size_t i = 0; i < g->n; i++) {
		if (i > 0)
			strcat(all, " ");
		strcat(all, g->v[i]);
	}
	if (strcmp(all, want) != 0)
		fail_msg("mentions of '%s': '%s', want '%s'", text, all, want);
	assert_int_equal(n, g->n);
	free(g);
}

static void
mentions_are_found_in_order_lowercased_and_once_each(void **state)
{
	(void)state;
	expect_mentions("hi @ann and @Bob", "ann bob");
	expect_mentions("@ann at the start", "ann");
	expect_mentions("at the end @ann", "ann");
	expect_mentions("@ann @bob @ann @ANN @Ann.", "ann bob");
	expect_mentions("@ANN-Marie_2.x", "ann-marie_2.x");
	expect_mentions("@carl, @bob @ann", "carl bob ann");
	expect_mentions("(@ann) [@bob] \"@carl\" '@dave' @eve's @fay? @gus!",
	    "ann bob carl dave eve fay gus");
	expect_mentions("@ann.\n@bob-\t@carl_ @dave..._", "ann bob carl dave");
	expect_mentions("@@ann", "ann");
	expect_mentions("«@ann» — @bob…", "ann bob");
	expect_mentions("no mentions here", "");
	expect_mentions("", "");
}

static void
emails_and_bare_at_signs_are_not_mentions(void **state)
{
	(void)state;
	expect_mentions("write to ann@example.com", "");
	expect_mentions("ANN@example.com", "");
	expect_mentions("x.@ann x_@bob x-@carl 9@dave", "");
	expect_mentions("Пётр@ann", "");
	expect_mentions("café@ann", "");
	expect_mentions("\xff@ann \x80@bob", "");
	expect_mentions("@", "");
	expect_mentions("the end @", "");
	expect_mentions("@ @ @@ @!", "");
	expect_mentions("@... @-_", "");
	expect_mentions("@анна", "");
	expect_mentions("mail ann@example.com, cc @bob", "bob");
}

static void
a_mention_is_at_most_64_bytes_and_a_longer_run_is_none(void **state)
{
	char *s, *want;

	(void)state;
	want = repeat("", "a", 64, "");
	s = repeat("hey @", "A", 64, " there");
	expect_mentions(s, want);
	free(s);
	/* trailing dots do not count against the limit */
	s = repeat("@", "a", 64, "...");
	expect_mentions(s, want);
	free(s);
	free(want);
	/* 65: not a mention, and not cut to 64 either */
	s = repeat("@", "a", 65, " @bob");
	expect_mentions(s, "bob");
	free(s);
	s = repeat("@", "a.", 40, "");
	expect_mentions(s, "");
	free(s);
}

static void
a_callback_returning_nonzero_stops_the_walk(void **state)
{
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.stop_after = 2;
	assert_int_equal(inbox_mentions("@a @a @b @c @d", collect, &g), 2);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.v[1], "b");
}

static void
a_thousand_distinct_mentions_each_come_once(void **state)
{
	size_t cap = 1000 * 12 * 2 + 1, len = 0;
	char *s = malloc(cap);
	struct got *g = calloc(1, sizeof(*g));

	(void)state;
	assert_non_null(s);
	assert_non_null(g);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 1000; i++)
			len += (size_t)snprintf(s + len, cap - len,
			    round ? "@U%d. " : "@u%d ", i);
	assert_int_equal(inbox_mentions(s, collect, g), 1000);
	assert_int_equal(g->n, 1000);
	for (int i = 0; i < 1000; i++) {
		char want[16];

		snprintf(want, sizeof(want), "u%d", i);
		assert_string_equal(g->v[i], want);
	}
	free(g);
	free(s);
}

/* ---- templates -------------------------------------------------------- */

struct vars {
	const char *const *kv;   /* name, value, ..., NULL */
	char asked[8][80];
	size_t nasked;
};

static const char *
lookup(void *arg, const char *name)
{
	struct vars *v = arg;

	if (v->nasked < 8)
		snprintf(v->asked[v->nasked++], sizeof(v->asked[0]), "%s",
		    name);
	for (size_t i = 0; v->kv[i] != NULL; i += 2)
		if (strcmp(v->kv[i], name) == 0)
			return v->kv[i + 1];
	return NULL;
}

static const char *const contact_vars[] = {
	"contact.name", "Ann",
	"contact.email", "ann@example.com",
	"conv.id", "42",
	"agent_name", "Bob",
	"braces", "{contact.name} }{",
	"empty", "",
	NULL,
};

static void
expect_render(const char *tpl, const char *want)
{
	struct vars v = { contact_vars, { "" }, 0 };
	struct inbox_err err;
	char *out = NULL;

	memset(&err, 0, sizeof(err));
	if (inbox_template_render(tpl, lookup, &v, &out, &err) != 0)
		fail_msg("template '%s' refused: %s", tpl, err.msg);
	assert_non_null(out);
	if (strcmp(out, want) != 0)
		fail_msg("template '%s' gave '%s', want '%s'", tpl, out, want);
	free(out);
}

static void
expect_bad_template(const char *tpl, const char *field, const char *msg)
{
	struct vars v = { contact_vars, { "" }, 0 };
	struct inbox_err err;
	char *out = (char *)"untouched";

	memset(&err, 0, sizeof(err));
	if (inbox_template_render(tpl, lookup, &v, &out, &err) != INBOX_EINVAL)
		fail_msg("template '%s' rendered", tpl);
	assert_string_equal(out, "untouched");
	assert_int_equal(err.code, INBOX_EINVAL);
	assert_string_equal(err.field, field);
	if (strstr(err.msg, msg) == NULL)
		fail_msg("template '%s': message '%s' lacks '%s'", tpl,
		    err.msg, msg);
	assert_int_equal(inbox_template_render(tpl, lookup, &v, &out, NULL),
	    INBOX_EINVAL);
}

static void
placeholders_are_replaced_by_their_values(void **state)
{
	struct vars v = { contact_vars, { "" }, 0 };
	char *out;

	(void)state;
	expect_render("Hello {contact.name}, ticket #{conv.id}. {agent_name}",
	    "Hello Ann, ticket #42. Bob");
	expect_render("{contact.name}{contact.name} <{contact.email}>",
	    "AnnAnn <ann@example.com>");
	expect_render("[{empty}]", "[]");
	expect_render("no placeholders", "no placeholders");
	expect_render("", "");
	expect_render("Привет, {contact.name}!", "Привет, Ann!");
	/* values are copied as they are, never expanded again */
	expect_render("{braces}", "{contact.name} }{");
	/* lookup gets the bare name */
	assert_int_equal(inbox_template_render("a {conv.id} b {agent_name}",
	    lookup, &v, &out, NULL), 0);
	free(out);
	assert_int_equal(v.nasked, 2);
	assert_string_equal(v.asked[0], "conv.id");
	assert_string_equal(v.asked[1], "agent_name");
}

static void
double_braces_stand_for_literal_braces(void **state)
{
	(void)state;
	expect_render("{{", "{");
	expect_render("}}", "}");
	expect_render("{{contact.name}}", "{contact.name}");
	expect_render("{{{contact.name}}}", "{Ann}");
	expect_render("a {{ b }} c", "a { b } c");
	expect_render("{{}}", "{}");
	expect_render("}}{{", "}{");
}

static const char *
long_value(void *arg, const char *name)
{
	(void)name;
	return arg;
}

static void
long_values_and_names_at_the_limit_render(void **state)
{
	char *big = repeat("", "xyz", 10000, "");
	char *name = repeat("{", "n", 64, "}");
	char *tpl = repeat("<", "{v}", 5, ">");
	char *want = repeat("<", big, 5, ">");
	char *out;

	(void)state;
	assert_int_equal(inbox_template_render(tpl, long_value, big, &out,
	    NULL), 0);
	assert_string_equal(out, want);
	free(out);
	assert_int_equal(inbox_template_render(name, long_value, "ok", &out,
	    NULL), 0);
	assert_string_equal(out, "ok");
	free(out);
	free(big);
	free(name);
	free(tpl);
	free(want);
}

static void
bad_templates_are_refused_naming_the_problem(void **state)
{
	char *s;

	(void)state;
	expect_bad_template("Call {contact.phonex} now", "contact.phonex",
	    "template: unknown placeholder {contact.phonex}");
	expect_bad_template("{contact.name} {nope}", "nope",
	    "unknown placeholder {nope}");
	expect_bad_template("Hi {contact.name", "template",
	    "template: unclosed '{' at byte 3");
	expect_bad_template("{", "template", "unclosed '{' at byte 0");
	expect_bad_template("a {{ {", "template", "unclosed '{' at byte 5");
	expect_bad_template("{contact name}", "template",
	    "unclosed '{' at byte 0: character ' ' at byte 8 not allowed");
	expect_bad_template("{a-b}", "template",
	    "character '-' at byte 2 not allowed");
	expect_bad_template("{имя}", "template",
	    "unclosed '{' at byte 0: byte 0xd0 at byte 1 not allowed");
	expect_bad_template("{{contact.name}", "template",
	    "lone '}' at byte 14");
	expect_bad_template("a } b", "template", "template: lone '}' at byte 2");
	expect_bad_template("}", "template", "lone '}' at byte 0");
	expect_bad_template("{contact.name}}", "template",
	    "lone '}' at byte 14");
	expect_bad_template("x {} y", "template",
	    "template: empty '{}' at byte 2");
	expect_bad_template("{}}", "template", "empty '{}' at byte 0");
	s = repeat("ab {", "n", 65, "}");
	expect_bad_template(s, "template", "placeholder at byte 3 is longer "
	    "than 64 bytes");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_state_meets_every_action_as_the_table_says),
		cmocka_unit_test(an_unchanged_dialog_is_left_byte_for_byte),
		cmocka_unit_test(
		    the_timer_wakes_a_snoozed_dialog_at_its_time_not_before),
		cmocka_unit_test(
		    snooze_takes_a_time_after_now_and_at_most_five_years_ahead),
		cmocka_unit_test(
		    a_closed_dialog_is_refused_a_snooze_before_its_time_is_checked),
		cmocka_unit_test(
		    a_whole_life_counts_reopens_and_keeps_the_last_close),
		cmocka_unit_test(
		    unknown_states_and_actions_are_refused_untouched),
		cmocka_unit_test(state_names_parse_back_and_others_are_refused),
		cmocka_unit_test(
		    tags_lose_hash_and_spaces_and_are_lowercased_in_any_script),
		cmocka_unit_test(
		    tags_at_the_length_limit_pass_and_one_byte_more_fails),
		cmocka_unit_test(
		    bad_tags_are_refused_naming_the_problem_and_the_byte),
		cmocka_unit_test(a_tag_buffer_too_small_is_refused_not_overrun),
		cmocka_unit_test(priorities_and_natures_parse_their_names_only),
		cmocka_unit_test(
		    logins_are_1_to_64_lowercase_letters_digits_dot_underscore_dash),
		cmocka_unit_test(
		    mentions_are_found_in_order_lowercased_and_once_each),
		cmocka_unit_test(emails_and_bare_at_signs_are_not_mentions),
		cmocka_unit_test(
		    a_mention_is_at_most_64_bytes_and_a_longer_run_is_none),
		cmocka_unit_test(a_callback_returning_nonzero_stops_the_walk),
		cmocka_unit_test(a_thousand_distinct_mentions_each_come_once),
		cmocka_unit_test(placeholders_are_replaced_by_their_values),
		cmocka_unit_test(double_braces_stand_for_literal_braces),
		cmocka_unit_test(long_values_and_names_at_the_limit_render),
		cmocka_unit_test(bad_templates_are_refused_naming_the_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
