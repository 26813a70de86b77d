/* inboxctl rules: the operator's rules as the router reads them, and a dry
 * run of one message through them (inbox/rules.h is the same code the
 * router runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/route.h"
#include "inbox/rules.h"
#include "router/ctl_int.h"

static const char *const when_names[] = { "any", "business",
	"outside_business" };

static cJSON *
rule_json(const struct inbox_rule *r)
{
	cJSON *o = cJSON_CreateObject(), *c, *a;

#define S(obj, k, v) do { if ((v) != NULL) \
	cJSON_AddStringToObject(obj, k, v); } while (0)
	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddNumberToObject(o, "line", r->line);
	c = cJSON_AddObjectToObject(o, "when");
	S(c, "channel", r->channels);
	S(c, "connector", r->connectors);
	S(c, "contact_field", r->contact_field);
	S(c, "keyword", r->keywords);
	S(c, "regex", r->regex);
	if (r->when != INBOX_RULE_ANY_TIME)
		cJSON_AddStringToObject(c, "time", when_names[r->when]);
	if (r->first_contact)
		cJSON_AddBoolToObject(c, "first_contact", true);
	a = cJSON_AddObjectToObject(o, "then");
	S(a, "tags", r->tags);
	S(a, "priority", r->priority);
	S(a, "nature", r->nature);
	S(a, "assign", r->assign);
	S(a, "auto_reply", r->auto_reply);
	if (r->stop)
		cJSON_AddBoolToObject(a, "stop", true);
#undef S
	return o;
}

static void
print_rule(const cJSON *o)
{
	const cJSON *it;

	printf("%-20s (line %d)\n", cJSON_GetObjectItem(o, "name")->valuestring,
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "line")));
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "when"))
		printf("    if   %-14s %s\n", it->string, cJSON_IsString(it) ?
		    it->valuestring : "yes");
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "then"))
		printf("    then %-14s %s\n", it->string, cJSON_IsString(it) ?
		    it->valuestring : "yes");
}

static int
rules_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = { { "--json", NULL, false, NULL } };
	const char *ops[1];
	cJSON *arr;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 1, ops, 0, 0, &nops, "")) != 0)
		return rc;
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < ctl->cfg.nrules; i++)
		cJSON_AddItemToArray(arr, rule_json(&ctl->cfg.rules[i]));
	if (opts[0].val != NULL) {
		ctl__print_json(arr);
	} else if (ctl->cfg.nrules == 0) {
		printf("no [rule] sections in %s\n", ctl->cfg.file);
	} else {
		const cJSON *o;

		cJSON_ArrayForEach(o, arr)
			print_rule(o);
	}
	cJSON_Delete(arr);
	return 0;
}

/* inboxctl rules test [--channel C] [--connector ID] [--subject S]
 * [--text T] [--fields JSON] [--first] [--at MS] [--json] */
static int
rules_test(struct ctl *ctl, int argc, char **argv)
{
	enum { O_CHANNEL, O_CONNECTOR, O_SUBJECT, O_TEXT, O_FIELDS, O_FIRST,
		O_AT, O_JSON, O__N };
	struct ctl_opt opts[O__N] = {
		{ "--channel", NULL, true, NULL },
		{ "--connector", NULL, true, NULL },
		{ "--subject", NULL, true, NULL },
		{ "--text", NULL, true, NULL },
		{ "--fields", NULL, true, NULL },
		{ "--first", NULL, false, NULL },
		{ "--at", NULL, true, NULL },
		{ "--json", NULL, false, NULL },
	};
	struct inbox_rule_input in;
	struct inbox_calendar cal;
	struct inbox_err err;
	const char *ops[1];
	cJSON *out, *matched;
	int64_t at;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, O__N, ops, 0, 0, &nops,
	    "")) != 0)
		return rc;
	if (opts[O_FIELDS].val != NULL) {
		cJSON *f = cJSON_Parse(opts[O_FIELDS].val);
		bool obj = cJSON_IsObject(f);

		cJSON_Delete(f);
		if (!obj) {
			fprintf(stderr, "inboxctl: --fields: expected a JSON "
			    "object of custom contact fields\n");
			return 2;
		}
	}
	at = opts[O_AT].val ? strtoll(opts[O_AT].val, NULL, 10) : rt_now_ms();
	memset(&in, 0, sizeof(in));
	in.channel = opts[O_CHANNEL].val ? opts[O_CHANNEL].val : "api";
	in.connector = opts[O_CONNECTOR].val ? opts[O_CONNECTOR].val : "";
	in.subject = opts[O_SUBJECT].val;
	in.text = opts[O_TEXT].val ? opts[O_TEXT].val : "";
	in.fields_json = opts[O_FIELDS].val;
	in.first = opts[O_FIRST].val != NULL;
	in.business = true;
	if (ctl->cfg.business_week != NULL &&
	    inbox_calendar_parse(ctl->cfg.business_week,
	    ctl->cfg.business_utc_offset, &cal, &err) == 0)
		in.business = inbox_calendar_open_at(&cal, at);
	out = cJSON_CreateObject();
	cJSON_AddBoolToObject(out, "business_hours", in.business);
	matched = cJSON_AddArrayToObject(out, "matched");
	for (size_t i = 0; i < ctl->cfg.nrules; i++) {
		const struct inbox_rule *r = &ctl->cfg.rules[i];

		if (!inbox_rule_match(r, &in))
			continue;
		cJSON_AddItemToArray(matched, rule_json(r));
		if (r->stop)
			break;
	}
	if (opts[O_JSON].val != NULL) {
		ctl__print_json(out);
	} else if (cJSON_GetArraySize(matched) == 0) {
		printf("no rule matches\n");
	} else {
		const cJSON *o;

		cJSON_ArrayForEach(o, matched)
			print_rule(o);
	}
	cJSON_Delete(out);
	return 0;
}

int
ctl__rules(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return rules_list(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "test") == 0)
		return rules_test(ctl, argc - 1, argv + 1);
	return ctl__usage();
}
