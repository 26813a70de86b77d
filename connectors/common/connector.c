/* libconnector (connector.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/common/connector.h"
#include "inbox/rt/rt.h"

struct connector {
	const struct inbox_config *cfg;
	const struct inbox_connector_conf *cc;
	redisContext *redis;
	bool group_ok;
	bool pending_done;       /* own pending entries were read once */
	char pending_after[64];  /* the last pending id handed out */
	char k_in[128], k_out[192], k_dead[128];
};

struct connector *
connector_create(const struct inbox_config *cfg,
    const struct inbox_connector_conf *cc)
{
	struct connector *c;
	char name[128];

	if (cc == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->cfg = cfg;
	c->cc = cc;
	rt_key(c->k_in, sizeof(c->k_in), cfg, "in");
	rt_key(c->k_dead, sizeof(c->k_dead), cfg, "dead");
	snprintf(name, sizeof(name), "out:%s", cc->id);
	rt_key(c->k_out, sizeof(c->k_out), cfg, name);
	snprintf(c->pending_after, sizeof(c->pending_after), "0");
	return c;
}

void
connector_destroy(struct connector *c)
{
	if (c == NULL)
		return;
	if (c->redis != NULL)
		redisFree(c->redis);
	free(c);
}

const struct inbox_connector_conf *
connector_conf(const struct connector *c)
{
	return c->cc;
}

static void
drop(struct connector *c)
{
	if (c->redis != NULL)
		redisFree(c->redis);
	c->redis = NULL;
	c->group_ok = false;
	c->pending_done = false;
	snprintf(c->pending_after, sizeof(c->pending_after), "0");
}

static int
ensure(struct connector *c)
{
	if (c->redis == NULL && (c->redis = rt_redis_connect(c->cfg)) == NULL)
		return INBOX_EUNAVAIL;
	if (!c->group_ok) {
		if (rt_group_create(c->redis, c->k_out, CONNECTOR_GROUP) != 0) {
			drop(c);
			return INBOX_EUNAVAIL;
		}
		c->group_ok = true;
	}
	return 0;
}

/* Sends the pipelined commands appended so far and reads n replies. */
static int
flush(struct connector *c, size_t n)
{
	bool moved = false;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		redisReply *rep = NULL;

		if (redisGetReply(c->redis, (void **)&rep) != REDIS_OK) {
			log_warnx("connector %s: redis: %s", c->cc->id,
			    c->redis->errstr);
			drop(c);
			return INBOX_EUNAVAIL;
		}
		if (rep->type == REDIS_REPLY_ERROR) {
			log_warnx("connector %s: redis: %s", c->cc->id, rep->str);
			rc = INBOX_EUNAVAIL;
		}
		moved = moved || rt_reply_is_moved(rep);
		freeReplyObject(rep);
	}
	if (moved)
		drop(c);         /* the keys are elsewhere: ask again */
	return rc;
}

int
connector_publish(struct connector *c, const char *const *envs,
    const size_t *lens, size_t n)
{
	bool waited;
	int rc;

	if (n == 0)
		return 0;
	if (ensure(c) != 0)
		return INBOX_EUNAVAIL;
	for (size_t i = 0; i < n; i++) {
		const char *argv[] = { "XADD", c->k_in, "*", "env", envs[i] };
		size_t l[] = { 4, strlen(c->k_in), 1, 3, lens[i] };

		redisAppendCommandArgv(c->redis, 5, argv, l);
	}
	/* acknowledged only once replicated (redis.min_replicas): one WAIT
	 * after the batch */
	waited = rt_wait_append(c->redis, c->cfg);
	rc = flush(c, n);
	if (waited && c->redis != NULL && rt_wait_reply(c->redis, c->cfg) != 0) {
		if (c->redis->err)
			drop(c);
		rc = INBOX_EUNAVAIL;
	}
	return rc;
}

int
connector_dead(struct connector *c, const char *source, const char *source_id,
    const char *reason, const char *data, size_t len)
{
	const char *argv[] = { "XADD", c->k_dead, "*", "reason", reason,
	    "source", source, "source_id", source_id, "data", data };
	size_t l[11];
	redisReply *rep;
	int rc = 0;

	if (ensure(c) != 0)
		return INBOX_EUNAVAIL;
	for (int i = 0; i < 10; i++)
		l[i] = strlen(argv[i]);
	l[10] = len;
	rep = redisCommandArgv(c->redis, 11, argv, l);
	if (rep == NULL) {
		drop(c);
		return INBOX_EUNAVAIL;
	}
	if (rep->type == REDIS_REPLY_ERROR)
		rc = INBOX_EUNAVAIL;
	freeReplyObject(rep);
	log_warnx("connector %s: %s %s dead-lettered: %s", c->cc->id, source,
	    source_id, reason);
	return rc;
}

static void
dead_letter(struct connector *c, const char *id, const char *reason,
    const char *data, size_t len)
{
	connector_dead(c, c->k_out, id, reason, data, len);
}

static int
ack(struct connector *c, const char *id)
{
	redisReply *rep = redisCommand(c->redis, "XACK %s %s %s", c->k_out,
	    CONNECTOR_GROUP, id);

	if (rep == NULL) {
		drop(c);
		return INBOX_EUNAVAIL;
	}
	freeReplyObject(rep);
	return 0;
}

/* Delivery counts of this consumer's pending entries, by id. */
static long
deliveries_of(struct connector *c, const char *id)
{
	redisReply *rep = redisCommand(c->redis, "XPENDING %s %s %s %s 1 %s",
	    c->k_out, CONNECTOR_GROUP, id, id, c->cc->id);
	long n = 1;

	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	    rep->element[0]->type == REDIS_REPLY_ARRAY &&
	    rep->element[0]->elements >= 4 &&
	    rep->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
		n = (long)rep->element[0]->element[3]->integer;
	if (rep != NULL)
		freeReplyObject(rep);
	return n < 1 ? 1 : n;
}

int
connector_out_read(struct connector *c, struct connector_out *out,
    size_t max, int block_ms)
{
	char count[16], block[16];
	redisReply *rep, *entries;
	bool pending;
	size_t n = 0;

	if (ensure(c) != 0)
		return INBOX_EUNAVAIL;
	pending = !c->pending_done;
	snprintf(count, sizeof(count), "%zu", max);
	snprintf(block, sizeof(block), "%d", block_ms < 1 ? 1 : block_ms);
	if (pending) {
		/* from after the last pending entry handed out: those are
		 * the caller's now */
		const char *argv[] = { "XREADGROUP", "GROUP", CONNECTOR_GROUP,
		    c->cc->id, "COUNT", count, "STREAMS", c->k_out,
		    c->pending_after };

		rep = redisCommandArgv(c->redis, 9, argv, NULL);
	} else {
		const char *argv[] = { "XREADGROUP", "GROUP", CONNECTOR_GROUP,
		    c->cc->id, "COUNT", count, "BLOCK", block, "STREAMS",
		    c->k_out, ">" };

		rep = redisCommandArgv(c->redis, 11, argv, NULL);
	}
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		log_warnx("connector %s: XREADGROUP %s: %s", c->cc->id, c->k_out,
		    rep ? rep->str : c->redis->errstr);
		if (rep != NULL)
			freeReplyObject(rep);
		drop(c);
		return INBOX_EUNAVAIL;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) {
		freeReplyObject(rep);
		if (pending)
			c->pending_done = true;
		return 0;
	}
	entries = rep->element[0]->element[1];
	if (pending && entries->elements == 0)
		c->pending_done = true;
	for (size_t i = 0; i < entries->elements && n < max; i++) {
		const redisReply *e = entries->element[i];
		const char *data;
		size_t len = 0;
		cJSON *item;

		if (pending && e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
		    e->element[0]->type == REDIS_REPLY_STRING)
			snprintf(c->pending_after, sizeof(c->pending_after), "%s",
			    e->element[0]->str);

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    e->element[1]->type != REDIS_REPLY_ARRAY) {
			/* deleted while pending: nothing to deliver */
			if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1)
				ack(c, e->element[0]->str);
			continue;
		}
		data = rt_entry_field(e->element[1], "out", &len);
		item = data ? cJSON_ParseWithLength(data, len) : NULL;
		if (item == NULL || !cJSON_IsObject(item)) {
			dead_letter(c, e->element[0]->str, data ?
			    "out item: not a JSON object" :
			    "entry has no 'out' field", data ? data : "",
			    data ? len : 0);
			cJSON_Delete(item);
			if (ack(c, e->element[0]->str) != 0)
				break;
			continue;
		}
		snprintf(out[n].id, sizeof(out[n].id), "%s", e->element[0]->str);
		out[n].item = item;
		out[n].deliveries = pending ? deliveries_of(c, out[n].id) : 1;
		n++;
	}
	freeReplyObject(rep);
	if (c->redis == NULL) {
		for (size_t i = 0; i < n; i++)
			connector_out_finish(&out[i]);
		return INBOX_EUNAVAIL;
	}
	return (int)n;
}

void
connector_out_finish(struct connector_out *o)
{
	cJSON_Delete(o->item);
	o->item = NULL;
}

const char *
connector_item_str(const cJSON *item, const char *path)
{
	const cJSON *it = item;
	char key[64];

	while (it != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		it = cJSON_GetObjectItemCaseSensitive(it, key);
		path += n + (path[n] == '.');
	}
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

char *
connector_status_envelope(const struct inbox_connector_conf *cc,
    const cJSON *item, const char *status, const char *const *ids,
    size_t nids, const char *error, int64_t now)
{
	const char *ref = connector_item_str(item, "ref");
	const char *thread = connector_item_str(item, "thread");
	const char *cext = connector_item_str(item, "contact.external_id");
	const char *cname = connector_item_str(item, "contact.name");
	cJSON *env = cJSON_CreateObject(), *ct, *more = NULL;
	bool first = true;
	char ext[256];
	char *s;

	snprintf(ext, sizeof(ext), "status:%s:%s", ref ? ref : "?", status);
	cJSON_AddNumberToObject(env, "v", 1);
	cJSON_AddStringToObject(env, "connector", cc->id);
	cJSON_AddStringToObject(env, "channel", inbox_channel_name(cc->channel));
	cJSON_AddStringToObject(env, "kind", "status");
	cJSON_AddStringToObject(env, "external_id", ext);
	cJSON_AddNumberToObject(env, "ts", (double)now);
	ct = cJSON_AddObjectToObject(env, "contact");
	cJSON_AddStringToObject(ct, "external_id", cext ? cext : "unknown");
	cJSON_AddStringToObject(ct, "name", cname ? cname : "");
	cJSON_AddStringToObject(env, "thread", thread ? thread : "unknown");
	cJSON_AddStringToObject(env, "text", "");
	cJSON_AddStringToObject(env, "status", status);
	cJSON_AddStringToObject(env, "reply_to", ref ? ref : "");
	/* the first id known is channel_message_id, the others (parts of
	 * one reply) channel_message_ids */
	for (size_t i = 0; i < nids; i++) {
		if (ids[i] == NULL || ids[i][0] == '\0')
			continue;
		if (first)
			cJSON_AddStringToObject(env, "channel_message_id", ids[i]);
		else {
			if (more == NULL)
				more = cJSON_AddArrayToObject(env,
				    "channel_message_ids");
			cJSON_AddItemToArray(more, cJSON_CreateString(ids[i]));
		}
		first = false;
	}
	if (error != NULL)
		cJSON_AddStringToObject(env, "error", error);
	s = cJSON_PrintUnformatted(env);
	cJSON_Delete(env);
	if (s == NULL)
		fatalx("connector: out of memory");
	return s;
}

int
connector_out_done(struct connector *c, const struct connector_out *o,
    const char *status, const char *channel_message_id, const char *error)
{
	const char *ids[1] = { channel_message_id };

	return connector_out_done_ids(c, o, status, ids,
	    channel_message_id != NULL ? 1 : 0, error);
}

int
connector_out_done_ids(struct connector *c, const struct connector_out *o,
    const char *status, const char *const *ids, size_t nids,
    const char *error)
{
	char *env = connector_status_envelope(c->cc, o->item, status, ids,
	    nids, error, rt_now_ms());
	size_t len = strlen(env);
	const char *envs[1] = { env };
	int rc;

	rc = connector_publish(c, envs, &len, 1);
	free(env);
	if (rc != 0)
		return rc;
	if (strcmp(status, "failed") == 0) {
		char *data = cJSON_PrintUnformatted(o->item);

		if (data == NULL)
			fatalx("connector: out of memory");
		dead_letter(c, o->id, error ? error : "delivery failed", data,
		    strlen(data));
		free(data);
	}
	return ack(c, o->id);
}

char *
connector_read_secret(const char *path)
{
	size_t len = 0;
	char *s = rt_read_file(path, 64 * 1024, &len);

	if (s == NULL) {
		log_warn("connector: cannot read %s", path);
		return NULL;
	}
	s[strcspn(s, "\r\n")] = '\0';
	if (s[0] == '\0') {
		log_warnx("connector: %s is empty", path);
		free(s);
		return NULL;
	}
	return s;
}

int64_t
connector_backoff_ms(int failures, uint32_t seed)
{
	int64_t d = 1000;

	for (int i = 1; i < failures && d < 300000; i++)
		d *= 2;
	if (d > 300000)
		d = 300000;
	return d + (int64_t)(seed % 1000) * d / 4000;
}
