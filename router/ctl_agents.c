/*
 * inboxctl agent list (read from the store) and agent set (the router's
 * agent.update command: teams, skills, capacity and name of an agent).
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "router/ctl_int.h"

static const char *
str_or(const cJSON *o, const char *name, const char *none)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(it) ? it->valuestring : none;
}

static void
print_agents(const cJSON *arr)
{
	const cJSON *a;

	printf("%-16s %-20s %-10s %-20s %-20s %-11s %-8s %-4s %s\n", "LOGIN",
	    "NAME", "ROLE", "TEAMS", "SKILLS", "CAPACITY", "PRESENCE", "LOAD",
	    "LAST ASSIGNED");
	cJSON_ArrayForEach(a, arr) {
		const cJSON *cap = cJSON_GetObjectItemCaseSensitive(a,
		    "capacity");
		const cJSON *last = cJSON_GetObjectItemCaseSensitive(a,
		    "last_assigned");
		char capbuf[32], when[32];

		if (cJSON_IsNumber(cap))
			snprintf(capbuf, sizeof(capbuf), "%.0f",
			    cap->valuedouble);
		else
			snprintf(capbuf, sizeof(capbuf), "default %.0f",
			    cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(a,
			    "effective_capacity")));
		ctl__fmt_time(cJSON_IsNumber(last) ?
		    (int64_t)last->valuedouble : 0, when, sizeof(when));
		printf("%-16s %-20.20s %-10s %-20.20s %-20.20s %-11s %-8s "
		    "%-4.0f %s\n", str_or(a, "login", "?"),
		    str_or(a, "name", "-"), str_or(a, "role", "-"),
		    str_or(a, "teams", "-"), str_or(a, "skills", "-"), capbuf,
		    str_or(a, "presence", "-"),
		    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(a,
		    "load")), when);
	}
}

int
ctl__agent_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = { { "--json", NULL, false, NULL } };
	struct ctl_stores s;
	const char *ops[1];
	void *arr = NULL;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 1, ops, 0, 0, &nops, "")) != 0)
		return rc;
	/* loads count every shard's dialogs (without -s) */
	rc = ctl__stores_read(ctl, &s);
	if (rc == INBOX_ENOTFOUND && s.st[0] == NULL) {
		rc = 0; /* no store yet: no agents */
		arr = cJSON_CreateArray();
		goto print;
	}
	if (rc != 0)
		goto out;
	if ((rc = store_agents_json_shards(s.txn, s.n, rt_now_ms(),
	    ctl->cfg.router_presence_lease_ms,
	    ctl->cfg.router_default_capacity, &arr)) != 0) {
		fprintf(stderr, "inboxctl: store %s: %s\n", ctl->cfg.store_path,
		    inbox_strerror(rc));
		goto out;
	}
print:
	if (opts[0].val != NULL)
		ctl__print_json(arr);
	else
		print_agents(arr);
out:
	ctl__stores_finish(&s);
	cJSON_Delete(arr);
	return rc == 0 ? 0 : 1;
}

int
ctl__agent_set(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--name", NULL, true, NULL },
		{ "--teams", NULL, true, NULL },
		{ "--skills", NULL, true, NULL },
		{ "--capacity", NULL, true, NULL },
	};
	const char *ops[1], *cap;
	double n = 0;
	cJSON *cmd;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 4, ops, 1, 1, &nops,
	    "agent set: which login?")) != 0)
		return rc;
	cap = opts[3].val;
	if (opts[0].val == NULL && opts[1].val == NULL && opts[2].val == NULL &&
	    cap == NULL) {
		fprintf(stderr, "inboxctl: agent set: nothing to change (give "
		    "--name, --teams, --skills or --capacity)\n");
		return 2;
	}
	if (cap != NULL && strcmp(cap, "default") != 0 &&
	    (!ctl__number_arg(cap, 0, 100000, &n) || n != (double)(int)n)) {
		fprintf(stderr, "inboxctl: --capacity: a whole number from 0 to "
		    "100000, or default\n");
		return 2;
	}
	cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", "agent.update");
	cJSON_AddStringToObject(cmd, "login", ops[0]);
	if (opts[0].val != NULL)
		cJSON_AddStringToObject(cmd, "name", opts[0].val);
	if (opts[1].val != NULL)
		cJSON_AddStringToObject(cmd, "teams", opts[1].val);
	if (opts[2].val != NULL)
		cJSON_AddStringToObject(cmd, "skills", opts[2].val);
	if (cap != NULL && strcmp(cap, "default") == 0)
		cJSON_AddNullToObject(cmd, "capacity");
	else if (cap != NULL)
		cJSON_AddNumberToObject(cmd, "capacity", n);
	rc = ctl__call_print(ctl, cmd, "agent set", false);
	cJSON_Delete(cmd);
	return rc;
}
