/*
 * inbox/rules.h and the [rule], [sla] and [business_hours] config sections:
 * every condition alone and together, Unicode keywords, regular
 * expressions, custom fields, time of day; and each bad rule refused with
 * file, line and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inbox/inbox.h"
#include "inbox/rules.h"

static struct inbox_config *
parse(const char *text, int want_rc, struct inbox_err *err)
{
	struct inbox_config *cfg = xcalloc(1, sizeof(*cfg));

	inbox_config_init(cfg);
	memset(err, 0, sizeof(*err));
	assert_int_equal(inbox_config_parse(cfg, "t.conf", text, strlen(text),
	    err), want_rc);
	return cfg;
}

static void
done(struct inbox_config *cfg)
{
	inbox_config_finish(cfg);
	free(cfg);
}

static void
each_condition_must_hold(void **state)
{
	struct inbox_err err;
	struct inbox_config *cfg = parse(
	    "[rule r]\n"
	    "channel = telegram, whatsapp\n"
	    "connector = tg1\n"
	    "keyword = оплата, refund\n"
	    "tags = billing\n", 0, &err);
	const struct inbox_rule *r = &cfg->rules[0];
	struct inbox_rule_input in = { "telegram", "tg1", NULL,
	    "Где моя ОПЛАТА?", NULL, false, true };

	assert_int_equal(cfg->nrules, 1);
	assert_true(inbox_rule_match(r, &in));
	in.text = "Please REFUND me";
	assert_true(inbox_rule_match(r, &in));
	in.text = NULL;
	in.subject = "refund";                 /* the subject counts too */
	assert_true(inbox_rule_match(r, &in));
	in.subject = "hello";
	assert_false(inbox_rule_match(r, &in));
	in.text = "оплата";
	in.channel = "email";                  /* not in the channel list */
	assert_false(inbox_rule_match(r, &in));
	in.channel = "whatsapp";
	in.connector = "tg2";                  /* another connector */
	assert_false(inbox_rule_match(r, &in));
	in.connector = "tg1";
	assert_true(inbox_rule_match(r, &in));
	/* a list item matches whole: "tele" is not "telegram" */
	in.channel = "tele";
	assert_false(inbox_rule_match(r, &in));
	done(cfg);
}

static void
regex_fields_time_and_first_contact(void **state)
{
	struct inbox_err err;
	struct inbox_config *cfg = parse(
	    "[business_hours]\nweek = mon-fri 09:00-18:00\n"
	    "[rule order]\nregex = \"order #[0-9]+\"\nnature = order\n"
	    "[rule gold]\ncontact_field = plan=gold\nassign = team:vip\n"
	    "[rule night]\nwhen = outside_business\nfirst_contact = yes\n"
	    "auto_reply = night\nstop = yes\n", 0, &err);
	struct inbox_rule_input in;

	assert_int_equal(cfg->nrules, 3);
	memset(&in, 0, sizeof(in));
	in.channel = "api";
	in.connector = "api1";
	in.text = "about ORDER #123, please";
	assert_true(inbox_rule_match(&cfg->rules[0], &in));
	in.text = "about order #x";
	assert_false(inbox_rule_match(&cfg->rules[0], &in));

	in.fields_json = "{\"plan\":\"gold\",\"company\":\"X\"}";
	assert_true(inbox_rule_match(&cfg->rules[1], &in));
	in.fields_json = "{\"plan\":\"silver\"}";
	assert_false(inbox_rule_match(&cfg->rules[1], &in));
	in.fields_json = NULL;
	assert_false(inbox_rule_match(&cfg->rules[1], &in));
	in.fields_json = "{\"plan\":";        /* broken JSON: no match */
	assert_false(inbox_rule_match(&cfg->rules[1], &in));

	assert_true(cfg->rules[2].stop);
	in.first = true;
	in.business = false;
	assert_true(inbox_rule_match(&cfg->rules[2], &in));
	in.business = true;
	assert_false(inbox_rule_match(&cfg->rules[2], &in));
	in.business = false;
	in.first = false;
	assert_false(inbox_rule_match(&cfg->rules[2], &in));
	done(cfg);
}

static void
bad_rules_name_file_line_and_key(void **state)
{
	static const struct {
		const char *text, *key, *what;
		int line;
	} bad[] = {
		{ "[rule a]\nregex = (unclosed\ntags = x\n", "regex", "regex",
		    1 },
		{ "[rule a]\npriority = huge\n", "priority", "unknown 'huge'",
		    1 },
		{ "[rule a]\nnature = rant\n", "nature", "unknown 'rant'", 1 },
		{ "[rule a]\nkeyword = x\n", "tags", "has no action", 1 },
		{ "[rule a]\ntags = two words\n", "tag", "not allowed", 1 },
		{ "[rule a]\nchannel = fax\ntags = x\n", "channel",
		    "unknown channel 'fax'", 1 },
		{ "[rule a]\nassign = Bad Login\n", "assign", "neither a login",
		    1 },
		{ "[rule a]\ncontact_field = plan\ntags = x\n", "contact_field",
		    "key=value", 1 },
		{ "[rule a]\nwhen = lunch\n", "when", "not any, business", 2 },
		{ "[rule a]\nstop = maybe\n", "stop", "not yes or no", 2 },
		{ "[rule a]\ncolour = red\n", "colour", "unknown key in [rule a]",
		    2 },
		{ "[rule a]\ntags = x\n[rule a]\ntags = y\n", NULL,
		    "defined twice", 3 },
		{ "[rule]\n", NULL, "needs a name", 1 },
		{ "[sla s]\nfirst_response = soon\n", "first_response",
		    "not a duration", 2 },
		{ "[sla s]\nhours = business\nresolution = 1d\n", "hours",
		    "sets no week", 1 },
		{ "[sla s]\npriority = high\n", "first_response", "sets none",
		    1 },
		{ "[sla s]\nresolution = 1d\npriority = hot\n", "priority",
		    "unknown priority 'hot'", 3 },
		{ "[business_hours]\nweek = mon 18:00-09:00\n", "week",
		    "week: expected", 2 },
		{ "[business_hours]\nutc_offset = +3\n", "utc_offset",
		    "utc_offset", 2 },
		{ "[router]\nauto_reply_interval = 1w\n", "auto_reply_interval",
		    "not a duration", 2 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct inbox_err err;
		struct inbox_config *cfg = parse(bad[i].text, INBOX_EINVAL,
		    &err);
		char where[32];

		snprintf(where, sizeof(where), "t.conf:%d:", bad[i].line);
		if (strstr(err.msg, bad[i].what) == NULL ||
		    strncmp(err.msg, where, strlen(where)) != 0 ||
		    (bad[i].key != NULL && strstr(err.msg, bad[i].key) == NULL))
			fail_msg("case %zu: got '%s'", i, err.msg);
		done(cfg);
	}
}

static void
defaults_of_the_new_router_keys(void **state)
{
	struct inbox_err err;
	struct inbox_config *cfg = parse("", 0, &err);

	assert_int_equal(cfg->router_auto_assign, 1);
	assert_int_equal(cfg->router_default_capacity, 10);
	assert_int_equal(cfg->router_sla_warning_pct, 80);
	assert_int_equal(cfg->router_lease_ms, 5000);
	assert_true(cfg->router_auto_reply_interval_ms == 86400000LL);
	assert_true(cfg->router_survey_window_ms == 7 * 86400000LL);
	assert_null(cfg->router_survey_template);
	assert_int_equal(cfg->nrules, 0);
	assert_int_equal(cfg->nsla, 0);
	done(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_condition_must_hold),
		cmocka_unit_test(regex_fields_time_and_first_contact),
		cmocka_unit_test(bad_rules_name_file_line_and_key),
		cmocka_unit_test(defaults_of_the_new_router_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
