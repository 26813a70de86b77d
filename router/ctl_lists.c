/*
 * inboxctl's lists of what the inbox is set up with, and the commands that
 * change templates: templates list|put|delete, tags list, teams list (the
 * store) and sla list (the [sla] sections as the router reads them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/ctl_int.h"

#define TEMPLATE_FILE_MAX (64 * 1024)

/* Runs `fill` on a read transaction of the store (an absent store holds
 * nothing: fill is not called) and prints `out` as JSON or with `print`.
 * Returns the exit status. */
static int
store_list(struct ctl *ctl, bool json, cJSON *out,
    int (*fill)(struct store_txn *txn, cJSON *out),
    void (*print)(const cJSON *out))
{
	struct store *st = NULL;
	struct store_txn *txn = NULL;
	int rc;

	rc = ctl__store_read(ctl, &st, &txn);
	if (rc == 0 && (rc = fill(txn, out)) != 0)
		fprintf(stderr, "inboxctl: store %s: %s\n", ctl->cfg.store_path,
		    inbox_strerror(rc));
	store_txn_abort(txn);
	store_close(st);
	if (rc == INBOX_ENOTFOUND)
		rc = 0;          /* no store yet: nothing in it */
	if (rc == 0) {
		if (json)
			ctl__print_json(out);
		else
			print(out);
	}
	cJSON_Delete(out);
	return rc == 0 ? 0 : 1;
}

/* ---- templates ------------------------------------------------------------ */

static int
template_one(void *arg, const struct store_template *t)
{
	cJSON_AddItemToArray(arg, store_template_json(t));
	return 0;
}

static int
templates_fill(struct store_txn *txn, cJSON *out)
{
	return store_templates(txn, template_one, out);
}

static void
templates_print(const cJSON *arr)
{
	const cJSON *t;

	if (cJSON_GetArraySize(arr) == 0) {
		printf("no templates\n");
		return;
	}
	printf("%-24s %-19s %s\n", "NAME", "UPDATED", "TEXT");
	cJSON_ArrayForEach(t, arr) {
		const char *text = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(t, "text"));
		size_t n = strcspn(text, "\n");
		char when[32];

		ctl__fmt_time((int64_t)cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(t, "updated")), when,
		    sizeof(when));
		printf("%-24s %-19s %.*s%s\n", cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(t, "name")), when,
		    (int)(n > 60 ? 60 : n), text, n > 60 || text[n] != '\0' ?
		    "..." : "");
	}
}

/* templates put NAME (--text T | --file F): template.put through the
 * router, which checks the text renders. */
static int
templates_put(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--text", NULL, true, NULL },
		{ "--file", NULL, true, NULL },
	};
	const char *ops[1];
	char *text = NULL;
	cJSON *cmd;
	size_t nops, len;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 2, ops, 1, 1, &nops,
	    "templates put: which name?")) != 0)
		return rc;
	if ((opts[0].val == NULL) == (opts[1].val == NULL)) {
		fprintf(stderr, "inboxctl: templates put: give --text TEXT or "
		    "--file FILE (- reads stdin)\n");
		return 2;
	}
	if (opts[1].val != NULL) {
		text = rt_read_file(strcmp(opts[1].val, "-") == 0 ?
		    "/dev/stdin" : opts[1].val, TEMPLATE_FILE_MAX, &len);
		if (text == NULL) {
			fprintf(stderr, "inboxctl: templates put: %s: %s\n",
			    opts[1].val, errno == EFBIG ? "over 64 KiB" :
			    strerror(errno));
			return 1;
		}
	}
	cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", "template.put");
	cJSON_AddStringToObject(cmd, "name", ops[0]);
	cJSON_AddStringToObject(cmd, "text", text != NULL ? text :
	    opts[0].val);
	rc = ctl__call_print(ctl, cmd, "templates put", false);
	cJSON_Delete(cmd);
	free(text);
	return rc;
}

static int
templates_delete(struct ctl *ctl, int argc, char **argv)
{
	const char *ops[1];
	cJSON *cmd;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, NULL, 0, ops, 1, 1, &nops,
	    "templates delete: which name?")) != 0)
		return rc;
	cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", "template.delete");
	cJSON_AddStringToObject(cmd, "name", ops[0]);
	rc = ctl__call_print(ctl, cmd, "templates delete", false);
	cJSON_Delete(cmd);
	return rc;
}

/* A list verb's only option, --json. Returns 0 and *json, or 2. */
static int
json_only(int argc, char **argv, bool *json)
{
	struct ctl_opt opts[] = { { "--json", NULL, false, NULL } };
	const char *ops[1];
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 1, ops, 0, 0, &nops, "")) != 0)
		return rc;
	*json = opts[0].val != NULL;
	return 0;
}

int
ctl__templates(struct ctl *ctl, int argc, char **argv)
{
	bool json;
	int rc;

	if (argc >= 1 && strcmp(argv[0], "put") == 0)
		return templates_put(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "delete") == 0)
		return templates_delete(ctl, argc - 1, argv + 1);
	if (argc < 1 || strcmp(argv[0], "list") != 0)
		return ctl__usage();
	if ((rc = json_only(argc - 1, argv + 1, &json)) != 0)
		return rc;
	return store_list(ctl, json, cJSON_CreateArray(), templates_fill,
	    templates_print);
}

/* ---- tags ----------------------------------------------------------------- */

static int
tag_one(void *arg, const char *tag, int64_t created)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "tag", tag);
	cJSON_AddNumberToObject(o, "created", (double)created);
	cJSON_AddItemToArray(arg, o);
	return 0;
}

static int
tags_fill(struct store_txn *txn, cJSON *out)
{
	return store_tags(txn, tag_one, out);
}

static void
tags_print(const cJSON *arr)
{
	const cJSON *t;

	if (cJSON_GetArraySize(arr) == 0)
		printf("no tags\n");
	cJSON_ArrayForEach(t, arr) {
		char when[32];

		ctl__fmt_time((int64_t)cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(t, "created")), when,
		    sizeof(when));
		printf("#%-30s first used %s\n", cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(t, "tag")), when);
	}
}

int
ctl__tags(struct ctl *ctl, int argc, char **argv)
{
	bool json;
	int rc;

	if (argc < 1 || strcmp(argv[0], "list") != 0)
		return ctl__usage();
	if ((rc = json_only(argc - 1, argv + 1, &json)) != 0)
		return rc;
	return store_list(ctl, json, cJSON_CreateArray(), tags_fill,
	    tags_print);
}

/* ---- teams ---------------------------------------------------------------- */

/* The team object named `name` in out (made when missing). */
static cJSON *
team_of(cJSON *out, const char *name, size_t len)
{
	cJSON *t;

	cJSON_ArrayForEach(t, out) {
		const char *n = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(t, "team"));

		if (strlen(n) == len && strncmp(n, name, len) == 0)
			return t;
	}
	t = cJSON_CreateObject();
	{
		char *s = xstrndup(name, len);

		cJSON_AddStringToObject(t, "team", s);
		free(s);
	}
	cJSON_AddArrayToObject(t, "agents");
	cJSON_AddArrayToObject(t, "connectors");
	cJSON_AddItemToArray(out, t);
	return t;
}

/* Adds `member` to the list `what` of each team in the "a, b" list. */
static void
add_member(cJSON *out, const char *teams, const char *what,
    const char *member)
{
	for (const char *p = teams; p != NULL && *p != '\0';) {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0)
			cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(
			    team_of(out, p, n), what), cJSON_CreateString(
			    member));
		p += strcspn(p, ",");
	}
}

static int
agent_teams(void *arg, const struct store_agent *a)
{
	add_member(arg, a->teams, "agents", a->login);
	return 0;
}

static void
teams_print(const cJSON *arr)
{
	const cJSON *t;

	if (cJSON_GetArraySize(arr) == 0)
		printf("no teams (agent set LOGIN --teams, [connector] team)\n");
	cJSON_ArrayForEach(t, arr) {
		const cJSON *m;
		const char *sep = "";

		printf("%s\n  agents:", cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(t, "team")));
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(t,
		    "agents")) {
			printf("%s %s", sep, m->valuestring);
			sep = ",";
		}
		printf("%s\n  connectors:", *sep ? "" : " -");
		sep = "";
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(t,
		    "connectors")) {
			printf("%s %s", sep, m->valuestring);
			sep = ",";
		}
		printf("%s\n", *sep ? "" : " -");
	}
}

static int
teams_fill(struct store_txn *txn, cJSON *out)
{
	return store_agents(txn, agent_teams, out);
}

int
ctl__teams(struct ctl *ctl, int argc, char **argv)
{
	cJSON *out;
	bool json;
	int rc;

	if (argc < 1 || strcmp(argv[0], "list") != 0)
		return ctl__usage();
	if ((rc = json_only(argc - 1, argv + 1, &json)) != 0)
		return rc;
	out = cJSON_CreateArray();
	for (size_t i = 0; i < ctl->cfg.nconnectors; i++)
		add_member(out, ctl->cfg.connectors[i].team, "connectors",
		    ctl->cfg.connectors[i].id);
	return store_list(ctl, json, out, teams_fill, teams_print);
}

/* ---- sla list ------------------------------------------------------------- */

static void
add_ms(cJSON *o, const char *name, int64_t ms)
{
	if (ms > 0)
		cJSON_AddNumberToObject(o, name, (double)ms);
	else
		cJSON_AddNullToObject(o, name);
}

static void
add_list(cJSON *o, const char *name, const char *v)
{
	if (v != NULL)
		cJSON_AddStringToObject(o, name, v);
	else
		cJSON_AddNullToObject(o, name);
}

int
ctl__sla_list(struct ctl *ctl, int argc, char **argv)
{
	cJSON *arr;
	bool json;
	int rc;

	if ((rc = json_only(argc, argv, &json)) != 0)
		return rc;
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < ctl->cfg.nsla; i++) {
		const struct inbox_sla_policy *p = &ctl->cfg.sla[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", p->name);
		add_ms(o, "first_response_ms", p->first_response_ms);
		add_ms(o, "next_response_ms", p->next_response_ms);
		add_ms(o, "resolution_ms", p->resolution_ms);
		cJSON_AddStringToObject(o, "hours", p->business ? "business" :
		    "calendar");
		add_list(o, "priority", p->priorities);
		add_list(o, "tags", p->tags);
		cJSON_AddItemToArray(arr, o);
	}
	if (json) {
		ctl__print_json(arr);
	} else if (ctl->cfg.nsla == 0) {
		printf("no [sla] sections in %s\n", ctl->cfg.file);
	} else {
		printf("%-16s %-10s %-10s %-10s %-9s %s\n", "NAME", "FIRST",
		    "NEXT", "RESOLUTION", "HOURS", "APPLIES TO");
		for (size_t i = 0; i < ctl->cfg.nsla; i++) {
			const struct inbox_sla_policy *p = &ctl->cfg.sla[i];
			char f[32] = "-", n[32] = "-", r[32] = "-";

			if (p->first_response_ms > 0)
				ctl__fmt_dur(p->first_response_ms, f, sizeof(f));
			if (p->next_response_ms > 0)
				ctl__fmt_dur(p->next_response_ms, n, sizeof(n));
			if (p->resolution_ms > 0)
				ctl__fmt_dur(p->resolution_ms, r, sizeof(r));
			printf("%-16s %-10s %-10s %-10s %-9s priority %s, tags "
			    "%s\n", p->name, f, n, r, p->business ? "business" :
			    "calendar", p->priorities ? p->priorities : "any",
			    p->tags ? p->tags : "any");
		}
		printf("(the first policy that applies to a dialog sets its "
		    "times)\n");
	}
	cJSON_Delete(arr);
	return 0;
}
