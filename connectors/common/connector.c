/* libconnector (connector.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/common/connector.h"
#include "inbox/rt/rt.h"

/* The keys of one shard and a connection to where they are. */
struct link {
	redisContext *redis;
	bool group_ok;
	bool pending_done;       /* own pending entries were read once */
	char pending_after[64];  /* the last pending id handed out */
	char k_in[128], k_out[192], k_dead[128];
};

struct connector {
	const struct inbox_config *cfg;
	const struct inbox_connector_conf *cc;
	struct link *links;      /* one per shard (redis.shards) */
	unsigned nlinks;
	unsigned turn;           /* the shard whose out stream waits next */
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
	c->nlinks = cfg->redis_shards > 1 ? (unsigned)cfg->redis_shards : 1;
	c->links = xcalloc(c->nlinks, sizeof(*c->links));
	snprintf(name, sizeof(name), "out:%s", cc->id);
	for (unsigned k = 0; k < c->nlinks; k++) {
		struct link *l = &c->links[k];

		rt_key_shard(l->k_in, sizeof(l->k_in), cfg, k, "in");
		rt_key_shard(l->k_dead, sizeof(l->k_dead), cfg, k, "dead");
		rt_key_shard(l->k_out, sizeof(l->k_out), cfg, k, name);
		snprintf(l->pending_after, sizeof(l->pending_after), "0");
	}
	return c;
}

void
connector_destroy(struct connector *c)
{
	if (c == NULL)
		return;
	for (unsigned k = 0; k < c->nlinks; k++)
		if (c->links[k].redis != NULL)
			redisFree(c->links[k].redis);
	free(c->links);
	free(c);
}

const struct inbox_connector_conf *
connector_conf(const struct connector *c)
{
	return c->cc;
}

static void
drop(struct link *l)
{
	if (l->redis != NULL)
		redisFree(l->redis);
	l->redis = NULL;
	l->group_ok = false;
	l->pending_done = false;
	snprintf(l->pending_after, sizeof(l->pending_after), "0");
}

/* Shard k's link, connected, with the out stream's group made. */
static struct link *
ensure(struct connector *c, unsigned k)
{
	struct link *l = &c->links[k];

	if (l->redis == NULL && (l->redis = rt_redis_connect_shard(c->cfg,
	    k)) == NULL)
		return NULL;
	if (!l->group_ok) {
		if (rt_group_create(l->redis, l->k_out, CONNECTOR_GROUP) != 0) {
			drop(l);
			return NULL;
		}
		l->group_ok = true;
	}
	return l;
}

/* Sends the pipelined commands appended so far and reads n replies. */
static int
flush(struct connector *c, struct link *l, size_t n)
{
	bool moved = false;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		redisReply *rep = NULL;

		if (redisGetReply(l->redis, (void **)&rep) != REDIS_OK) {
			log_warnx("connector %s: redis: %s", c->cc->id,
			    l->redis->errstr);
			drop(l);
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
		drop(l);         /* the keys are elsewhere: ask again */
	return rc;
}

/* The shard of an envelope: its connector and thread (0 with one shard,
 * or when it has none: the router dead-letters it). */
static unsigned
shard_of(const struct connector *c, const char *env, size_t len)
{
	cJSON *j, *conn, *thread;
	unsigned k = 0;

	if (c->nlinks == 1 || (j = cJSON_ParseWithLength(env, len)) == NULL)
		return 0;
	conn = cJSON_GetObjectItemCaseSensitive(j, "connector");
	thread = cJSON_GetObjectItemCaseSensitive(j, "thread");
	if (cJSON_IsString(conn) && cJSON_IsString(thread))
		k = inbox_shard_of(conn->valuestring, thread->valuestring,
		    c->nlinks);
	cJSON_Delete(j);
	return k;
}

/* XADDs the envelopes i with shard[i] == k to shard k's in stream, in one
 * round trip (and one WAIT). */
static int
publish_shard(struct connector *c, unsigned k, const char *const *envs,
    const size_t *lens, const unsigned *shard, size_t n)
{
	struct link *l;
	size_t sent = 0;
	bool waited;
	int rc;

	if ((l = ensure(c, k)) == NULL)
		return INBOX_EUNAVAIL;
	for (size_t i = 0; i < n; i++) {
		const char *argv[] = { "XADD", l->k_in, "*", "env", envs[i] };
		size_t al[] = { 4, strlen(l->k_in), 1, 3, lens[i] };

		if (shard[i] != k)
			continue;
		redisAppendCommandArgv(l->redis, 5, argv, al);
		sent++;
	}
	if (sent == 0)
		return 0;
	/* acknowledged only once replicated (redis.min_replicas): one WAIT
	 * after the batch */
	waited = rt_wait_append(l->redis, c->cfg);
	rc = flush(c, l, sent);
	if (waited && l->redis != NULL && rt_wait_reply(l->redis, c->cfg) !=
	    0) {
		if (l->redis->err)
			drop(l);
		rc = INBOX_EUNAVAIL;
	}
	return rc;
}

int
connector_publish(struct connector *c, const char *const *envs,
    const size_t *lens, size_t n)
{
	unsigned *shard;
	int rc = 0;

	if (n == 0)
		return 0;
	shard = xcalloc(n, sizeof(*shard));
	for (size_t i = 0; i < n; i++)
		shard[i] = shard_of(c, envs[i], lens[i]);
	for (unsigned k = 0; k < c->nlinks && rc == 0; k++)
		rc = publish_shard(c, k, envs, lens, shard, n);
	free(shard);
	return rc;
}

static int
dead_to(struct connector *c, unsigned k, const char *source,
    const char *source_id, const char *reason, const char *data, size_t len)
{
	const char *argv[11];
	size_t l[11];
	struct link *lk;
	redisReply *rep;
	int rc = 0;

	if ((lk = ensure(c, k)) == NULL)
		return INBOX_EUNAVAIL;
	argv[0] = "XADD";
	argv[1] = lk->k_dead;
	argv[2] = "*";
	argv[3] = "reason";
	argv[4] = reason;
	argv[5] = "source";
	argv[6] = source;
	argv[7] = "source_id";
	argv[8] = source_id;
	argv[9] = "data";
	argv[10] = data;
	for (int i = 0; i < 10; i++)
		l[i] = strlen(argv[i]);
	l[10] = len;
	rep = redisCommandArgv(lk->redis, 11, argv, l);
	if (rep == NULL) {
		drop(lk);
		return INBOX_EUNAVAIL;
	}
	if (rep->type == REDIS_REPLY_ERROR)
		rc = INBOX_EUNAVAIL;
	freeReplyObject(rep);
	log_warnx("connector %s: %s %s dead-lettered: %s", c->cc->id, source,
	    source_id, reason);
	return rc;
}

int
connector_dead(struct connector *c, const char *source, const char *source_id,
    const char *reason, const char *data, size_t len)
{
	/* an item that never became an envelope has no shard: the first */
	return dead_to(c, 0, source, source_id, reason, data, len);
}

static int
ack(struct link *l, const char *id)
{
	redisReply *rep = redisCommand(l->redis, "XACK %s %s %s", l->k_out,
	    CONNECTOR_GROUP, id);

	if (rep == NULL) {
		drop(l);
		return INBOX_EUNAVAIL;
	}
	freeReplyObject(rep);
	return 0;
}

/* Delivery counts of this consumer's pending entries, by id. */
static long
deliveries_of(struct connector *c, struct link *l, const char *id)
{
	redisReply *rep = redisCommand(l->redis, "XPENDING %s %s %s %s 1 %s",
	    l->k_out, CONNECTOR_GROUP, id, id, c->cc->id);
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

/* Reads shard k's out stream into out (at most max): its pending entries
 * first, then new ones, blocking up to block_ms (0: not at all). */
static int
read_shard(struct connector *c, unsigned k, struct connector_out *out,
    size_t max, int block_ms)
{
	char count[16], block[16];
	redisReply *rep, *entries;
	struct link *l;
	bool pending;
	size_t n = 0;

	if ((l = ensure(c, k)) == NULL)
		return INBOX_EUNAVAIL;
	pending = !l->pending_done;
	snprintf(count, sizeof(count), "%zu", max);
	snprintf(block, sizeof(block), "%d", block_ms);
	if (pending) {
		/* from after the last pending entry handed out: those are
		 * the caller's now */
		const char *argv[] = { "XREADGROUP", "GROUP", CONNECTOR_GROUP,
		    c->cc->id, "COUNT", count, "STREAMS", l->k_out,
		    l->pending_after };

		rep = redisCommandArgv(l->redis, 9, argv, NULL);
	} else if (block_ms > 0) {
		const char *argv[] = { "XREADGROUP", "GROUP", CONNECTOR_GROUP,
		    c->cc->id, "COUNT", count, "BLOCK", block, "STREAMS",
		    l->k_out, ">" };

		rep = redisCommandArgv(l->redis, 11, argv, NULL);
	} else {
		const char *argv[] = { "XREADGROUP", "GROUP", CONNECTOR_GROUP,
		    c->cc->id, "COUNT", count, "STREAMS", l->k_out, ">" };

		rep = redisCommandArgv(l->redis, 9, argv, NULL);
	}
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		log_warnx("connector %s: XREADGROUP %s: %s", c->cc->id, l->k_out,
		    rep ? rep->str : l->redis->errstr);
		if (rep != NULL)
			freeReplyObject(rep);
		drop(l);
		return INBOX_EUNAVAIL;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) {
		freeReplyObject(rep);
		if (pending)
			l->pending_done = true;
		return 0;
	}
	entries = rep->element[0]->element[1];
	if (pending && entries->elements == 0)
		l->pending_done = true;
	for (size_t i = 0; i < entries->elements && n < max; i++) {
		const redisReply *e = entries->element[i];
		const char *data;
		size_t len = 0;
		cJSON *item;

		if (pending && e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
		    e->element[0]->type == REDIS_REPLY_STRING)
			snprintf(l->pending_after, sizeof(l->pending_after), "%s",
			    e->element[0]->str);

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    e->element[1]->type != REDIS_REPLY_ARRAY) {
			/* deleted while pending: nothing to deliver */
			if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1)
				ack(l, e->element[0]->str);
			continue;
		}
		data = rt_entry_field(e->element[1], "out", &len);
		item = data ? cJSON_ParseWithLength(data, len) : NULL;
		if (item == NULL || !cJSON_IsObject(item)) {
			dead_to(c, k, l->k_out, e->element[0]->str, data ?
			    "out item: not a JSON object" :
			    "entry has no 'out' field", data ? data : "",
			    data ? len : 0);
			cJSON_Delete(item);
			if (l->redis == NULL || ack(l, e->element[0]->str) != 0)
				break;
			continue;
		}
		snprintf(out[n].id, sizeof(out[n].id), "%s", e->element[0]->str);
		out[n].item = item;
		out[n].shard = k;
		out[n].deliveries = pending ? deliveries_of(c, l, out[n].id) : 1;
		n++;
	}
	freeReplyObject(rep);
	if (l->redis == NULL) {
		for (size_t i = 0; i < n; i++)
			connector_out_finish(&out[i]);
		return INBOX_EUNAVAIL;
	}
	return (int)n;
}

int
connector_out_read(struct connector *c, struct connector_out *out,
    size_t max, int block_ms)
{
	size_t n = 0;
	int got;

	if (block_ms < 1)
		block_ms = 1;
	if (c->nlinks == 1)
		return read_shard(c, 0, out, max, block_ms);
	/* several shards: take what each has without waiting, and wait
	 * (a short while: the others may receive meanwhile) only when
	 * none had anything, on each shard in turn */
	for (unsigned i = 0; i < c->nlinks && n < max; i++) {
		if ((got = read_shard(c, (c->turn + i) % c->nlinks, out + n,
		    max - n, 0)) < 0) {
			if (n > 0)
				break;
			return got;
		}
		n += (size_t)got;
	}
	c->turn = (c->turn + 1) % c->nlinks;
	if (n > 0)
		return (int)n;
	return read_shard(c, c->turn, out, max, block_ms < 100 ? block_ms :
	    100);
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
	unsigned shard = o->shard < c->nlinks ? o->shard : 0;
	struct link *l;
	int rc;

	/* the status goes to the reply's shard, where its dialog is */
	rc = publish_shard(c, shard, envs, &len, &shard, 1);
	free(env);
	if (rc != 0)
		return rc;
	if (strcmp(status, "failed") == 0) {
		char *data = cJSON_PrintUnformatted(o->item);

		if (data == NULL)
			fatalx("connector: out of memory");
		dead_to(c, shard, c->links[shard].k_out, o->id, error ? error :
		    "delivery failed", data, strlen(data));
		free(data);
	}
	if ((l = ensure(c, shard)) == NULL)
		return INBOX_EUNAVAIL;
	return ack(l, o->id);
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
