/*
 * inboxctl connectors: each configured connector with the state of its
 * replies' stream (queued, not yet read by the connector, read and not yet
 * acknowledged, the oldest of those) and the last dead letter that names it
 * (a reply it failed, or an envelope of it the router refused), read from
 * Redis; the router's backlog of inbound envelopes on top.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "router/ctl_int.h"

/* Dead letters read back, newest first, to find each connector's last. */
#define DEAD_SCAN 5000

/* A field of an XINFO GROUPS entry (a flat name/value array), or NULL. */
static const redisReply *
group_field(const redisReply *g, const char *name)
{
	for (size_t i = 0; i + 1 < g->elements; i += 2) {
		const redisReply *k = g->element[i];

		if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
			return g->element[i + 1];
	}
	return NULL;
}

static long long
group_int(const redisReply *g, const char *name)
{
	const redisReply *v = group_field(g, name);

	return v != NULL && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
}

/* The group `group` of stream key: its lag (entries not read yet, -1 when
 * Redis cannot tell) and pending count. Returns false when the stream or
 * the group does not exist. */
static bool
group_state(redisContext *rc, const char *key, const char *group,
    long long *lag, long long *pending)
{
	redisReply *r = redisCommand(rc, "XINFO GROUPS %s", key);
	bool found = false;

	*lag = *pending = -1;
	for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    i < r->elements && !found; i++) {
		const redisReply *g = r->element[i];
		const redisReply *name;

		if (g->type != REDIS_REPLY_ARRAY ||
		    (name = group_field(g, "name")) == NULL ||
		    name->type != REDIS_REPLY_STRING ||
		    strcmp(name->str, group) != 0)
			continue;
		found = true;
		*lag = group_int(g, "lag");
		*pending = group_int(g, "pending");
	}
	if (r != NULL)
		freeReplyObject(r);
	return found;
}

static long long
xlen(redisContext *rc, const char *key)
{
	redisReply *r = redisCommand(rc, "XLEN %s", key);
	long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ?
	    r->integer : -1;

	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* The ms part of the oldest pending entry of the group, or 0. */
static int64_t
oldest_pending(redisContext *rc, const char *key, const char *group)
{
	redisReply *r = redisCommand(rc, "XPENDING %s %s", key, group);
	int64_t ms = 0;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING)
		ms = strtoll(r->element[1]->str, NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	return ms;
}

/* Which connector a dead letter names: a reply's stream <prefix>:out:<id>,
 * else the "connector" of its data when that is a JSON object. Writes the
 * id into buf; false when none. */
static bool
dead_connector(const redisReply *fields, const char *out_prefix, char *buf,
    size_t len)
{
	const char *source = rt_entry_field(fields, "source", NULL);
	size_t dlen = 0;
	const char *data = rt_entry_field(fields, "data", &dlen);
	size_t pl = strlen(out_prefix);
	cJSON *j;
	const cJSON *c;

	if (source != NULL && strncmp(source, out_prefix, pl) == 0) {
		snprintf(buf, len, "%s", source + pl);
		return true;
	}
	if (data == NULL || (j = cJSON_ParseWithLength(data, dlen)) == NULL)
		return false;
	c = cJSON_GetObjectItemCaseSensitive(j, "connector");
	if (cJSON_IsString(c))
		snprintf(buf, len, "%s", c->valuestring);
	cJSON_Delete(j);
	return cJSON_IsString(c) != 0 && buf[0] != '\0';
}

static void
print_table(const cJSON *o)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "connectors"), *c;
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "inbound");

	printf("inbound: %.0f envelopes queued, %.0f not read by the router, "
	    "%.0f being applied\n", cJSON_GetNumberValue(
	    cJSON_GetObjectItemCaseSensitive(in, "length")),
	    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in, "lag")),
	    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in,
	    "pending")));
	printf("%-16s %-10s %-10s %6s %6s %7s %-20s %s\n", "ID", "CHANNEL",
	    "TEAM", "QUEUED", "UNREAD", "PENDING", "OLDEST PENDING",
	    "LAST DEAD LETTER");
	cJSON_ArrayForEach(c, arr) {
		const cJSON *team = cJSON_GetObjectItemCaseSensitive(c, "team");
		const cJSON *out = cJSON_GetObjectItemCaseSensitive(c, "out");
		const cJSON *dead = cJSON_GetObjectItemCaseSensitive(c,
		    "last_dead");
		const char *reason;
		const cJSON *old = cJSON_GetObjectItemCaseSensitive(out,
		    "oldest_pending");
		char when[32] = "-", dwhen[32] = "";

		if (cJSON_IsNumber(old))
			ctl__fmt_time((int64_t)old->valuedouble, when,
			    sizeof(when));
		if (!cJSON_IsObject(dead))
			dead = NULL;
		if (dead != NULL)
			ctl__fmt_time((int64_t)cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(dead, "at")), dwhen,
			    sizeof(dwhen));
		reason = dead != NULL ? cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(dead, "reason")) : NULL;
		printf("%-16s %-10s %-10.10s %6.0f %6.0f %7.0f %-20s %s%s%s\n",
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c,
		    "id")), cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(c, "channel")),
		    cJSON_IsString(team) ? team->valuestring : "-",
		    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out,
		    "length")), cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(out, "lag")),
		    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out,
		    "pending")), when, dwhen, dead != NULL ? " " : "-",
		    reason != NULL ? reason : "");
	}
	cJSON_ArrayForEach(c, arr) {
		if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c,
		    "enabled")))
			printf("disabled: %s (nothing comes in or goes out)\n",
			    cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(c, "id")));
	}
}

int
ctl__connectors(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = { { "--json", NULL, false, NULL } };
	const char *ops[1];
	char key[192], out_prefix[160];
	cJSON *root, *arr, *in;
	redisReply *dead = NULL;
	long long lag, pending;
	size_t nops;
	int rc;

	if (argc >= 1 && (strcmp(argv[0], "add") == 0 ||
	    strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0))
		return ctl__connectors_edit(ctl, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "status") == 0) {
		argc--;
		argv++;
	}
	if ((rc = ctl__args(argc, argv, opts, 1, ops, 0, 0, &nops, "")) != 0)
		return rc;
	if (ctl__connect(ctl) != 0)
		return 1;
	root = cJSON_CreateObject();
	in = cJSON_AddObjectToObject(root, "inbound");
	rt_key(key, sizeof(key), &ctl->cfg, "in");
	group_state(ctl->redis, key, "router", &lag, &pending);
	cJSON_AddNumberToObject(in, "length", (double)xlen(ctl->redis, key));
	cJSON_AddNumberToObject(in, "lag", (double)lag);
	cJSON_AddNumberToObject(in, "pending", (double)pending);
	rt_key(out_prefix, sizeof(out_prefix), &ctl->cfg, "out:");
	rt_key(key, sizeof(key), &ctl->cfg, "dead");
	dead = redisCommand(ctl->redis, "XREVRANGE %s + - COUNT %d", key,
	    DEAD_SCAN);
	if (dead == NULL) {
		fprintf(stderr, "inboxctl: redis: %s\n", ctl->redis->errstr);
		cJSON_Delete(root);
		return 1;
	}
	arr = cJSON_AddArrayToObject(root, "connectors");
	for (size_t i = 0; i < ctl->cfg.nconnectors; i++) {
		const struct inbox_connector_conf *cc = &ctl->cfg.connectors[i];
		cJSON *c = cJSON_CreateObject(), *out;
		long long queued;
		int64_t old;

		cJSON_AddItemToArray(arr, c);
		cJSON_AddStringToObject(c, "id", cc->id);
		cJSON_AddStringToObject(c, "channel",
		    inbox_channel_name(cc->channel));
		if (cc->team != NULL)
			cJSON_AddStringToObject(c, "team", cc->team);
		else
			cJSON_AddNullToObject(c, "team");
		cJSON_AddBoolToObject(c, "enabled", cc->enabled);
		out = cJSON_AddObjectToObject(c, "out");
		snprintf(key, sizeof(key), "%s%s", out_prefix, cc->id);
		queued = xlen(ctl->redis, key);
		cJSON_AddNumberToObject(out, "length", (double)queued);
		if (!group_state(ctl->redis, key, "connector", &lag,
		    &pending)) {
			/* no connector has read its stream yet: all unread */
			lag = queued;
			pending = 0;
		}
		cJSON_AddNumberToObject(out, "lag", (double)lag);
		cJSON_AddNumberToObject(out, "pending", (double)pending);
		if ((old = oldest_pending(ctl->redis, key, "connector")) > 0)
			cJSON_AddNumberToObject(out, "oldest_pending",
			    (double)old);
		else
			cJSON_AddNullToObject(out, "oldest_pending");
		cJSON_AddNullToObject(c, "last_dead");
	}
	/* each connector's newest dead letter */
	for (size_t i = 0; dead->type == REDIS_REPLY_ARRAY &&
	    i < dead->elements; i++) {
		const redisReply *e = dead->element[i];
		char id[INBOX_EXTID_MAX + 1] = "";
		cJSON *c;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    !dead_connector(e->element[1], out_prefix, id, sizeof(id)))
			continue;
		cJSON_ArrayForEach(c, arr) {
			const char *reason;
			cJSON *d;

			if (strcmp(cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(c, "id")), id) != 0 ||
			    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c,
			    "last_dead")))
				continue;
			reason = rt_entry_field(e->element[1], "reason", NULL);
			d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "id", e->element[0]->str);
			cJSON_AddNumberToObject(d, "at", (double)strtoll(
			    e->element[0]->str, NULL, 10));
			cJSON_AddStringToObject(d, "reason", reason != NULL ?
			    reason : "");
			cJSON_ReplaceItemInObjectCaseSensitive(c, "last_dead",
			    d);
		}
	}
	freeReplyObject(dead);
	if (opts[0].val != NULL)
		ctl__print_json(root);
	else
		print_table(root);
	cJSON_Delete(root);
	return 0;
}
