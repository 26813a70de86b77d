/* The Redis connection and stream helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "inbox/rt/cluster.h"
#include "inbox/rt/rt.h"

static struct timeval
timeout_tv(const struct inbox_config *cfg)
{
	struct timeval tv = {
		.tv_sec = cfg->redis_timeout_ms / 1000,
		.tv_usec = (cfg->redis_timeout_ms % 1000) * 1000,
	};

	return tv;
}

/* A TCP connection with the configured timeout, or NULL with the reason in
 * why. */
static redisContext *
connect_tcp(const char *host, int port, struct timeval tv, char *why,
    size_t len)
{
	redisContext *c = redisConnectWithTimeout(host, port, tv);

	if (c == NULL) {
		snprintf(why, len, "cannot allocate a context");
		return NULL;
	}
	if (c->err) {
		snprintf(why, len, "%s", c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

/* Asks one sentinel for the master's address. Returns 0, or -1 with the
 * reason in why. */
static int
ask_sentinel(const struct inbox_config *cfg, const char *host, int port,
    char *mhost, size_t mlen, int *mport, char *why, size_t len)
{
	redisContext *s = connect_tcp(host, port, timeout_tv(cfg), why, len);
	redisReply *r;
	int rc = -1;

	if (s == NULL)
		return -1;
	r = redisCommand(s, "SENTINEL get-master-addr-by-name %s",
	    cfg->redis_master_name);
	if (r == NULL)
		snprintf(why, len, "%s", s->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		snprintf(why, len, "%s", r->str);
	else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING)
		snprintf(why, len, "does not know master '%s'",
		    cfg->redis_master_name);
	else if (r->element[0]->len >= mlen || (*mport =
	    atoi(r->element[1]->str)) <= 0)
		snprintf(why, len, "answered a bad address");
	else {
		memcpy(mhost, r->element[0]->str, r->element[0]->len + 1);
		rc = 0;
	}
	if (r != NULL)
		freeReplyObject(r);
	redisFree(s);
	return rc;
}

/* ROLE says "master" (a demoted one says "slave" until the sentinels have
 * made it a replica of the new master, and refuses writes). */
static bool
is_master(redisContext *c, char *why, size_t len)
{
	redisReply *r = redisCommand(c, "ROLE");
	bool ok = false;

	if (r == NULL)
		snprintf(why, len, "ROLE: %s", c->errstr);
	else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		ok = strcmp(r->element[0]->str, "master") == 0;
	if (r != NULL && !ok)
		snprintf(why, len, "ROLE is %s", r->type == REDIS_REPLY_ARRAY &&
		    r->elements >= 1 && r->element[0]->type ==
		    REDIS_REPLY_STRING ? r->element[0]->str : "unexpected");
	if (r != NULL)
		freeReplyObject(r);
	return ok;
}

/* Asks the sentinels in turn for the master and connects to the first
 * answer that is reachable and really a master. */
static redisContext *
connect_sentinels(const struct inbox_config *cfg)
{
	char host[256], mhost[256], why[1024] = "no sentinel listed";
	int port, mport, rc;

	for (size_t i = 0; (rc = inbox_hostport_nth(cfg->redis_sentinels, i,
	    host, sizeof(host), &port)) == 1; i++) {
		char w[200];
		redisContext *c;

		if (ask_sentinel(cfg, host, port, mhost, sizeof(mhost), &mport,
		    w, sizeof(w)) != 0) {
			snprintf(why, sizeof(why), "sentinel %s:%d: %s", host,
			    port, w);
			log_debug("redis: %s", why);
			continue;
		}
		if ((c = connect_tcp(mhost, mport, timeout_tv(cfg), w,
		    sizeof(w))) != NULL && is_master(c, w, sizeof(w))) {
			log_info("redis: master '%s' is %s:%d (from sentinel "
			    "%s:%d)", cfg->redis_master_name, mhost, mport,
			    host, port);
			return c;
		}
		if (c != NULL)
			redisFree(c);
		snprintf(why, sizeof(why), "%s:%d (from sentinel %s:%d): %s",
		    mhost, mport, host, port, w);
		log_debug("redis: %s", why);
	}
	log_warnx("redis: no master '%s' from the sentinels (last: %s)",
	    cfg->redis_master_name, why);
	return NULL;
}

/* With redis.cluster: where the slot of every key (the prefix's hash tag)
 * is served now, as the cluster's masters say. Returns 0, or
 * INBOX_EUNAVAIL (logged). */
static int
cluster_owner(const struct inbox_config *cfg, char *host, size_t len,
    int *port)
{
	struct rt_cluster *cl = rt_cluster_open(cfg->redis_cluster,
	    cfg->redis_timeout_ms);
	const char *node, *colon;
	char key[160];
	uint16_t slot;
	size_t n;

	if (cl == NULL)
		return INBOX_EUNAVAIL;  /* logged */
	rt_key(key, sizeof(key), cfg, "in");
	slot = rt_cluster_keyslot(key, strlen(key));
	if ((node = rt_cluster_node_of(cl, slot)) == NULL ||
	    (colon = strrchr(node, ':')) == NULL || (*port = atoi(colon + 1))
	    <= 0) {
		log_warnx("redis: no master of the cluster serves slot %u (the "
		    "keys' %s)", slot, key);
		rt_cluster_close(cl);
		return INBOX_EUNAVAIL;
	}
	if (*node == '[' && colon > node + 1 && colon[-1] == ']')
		node++;          /* [v6]:port */
	n = (size_t)(colon - node) - (colon[-1] == ']');
	snprintf(host, len, "%.*s", (int)n, node);
	log_debug("redis: slot %u of the cluster is on %s:%d", slot, host,
	    *port);
	rt_cluster_close(cl);
	return 0;
}

redisContext *
rt_redis_connect(const struct inbox_config *cfg)
{
	struct timeval tv = timeout_tv(cfg);
	redisContext *c;
	char why[200];

	if (cfg->redis_sentinels != NULL)
		return connect_sentinels(cfg);
	if (cfg->redis_cluster != NULL) {
		char host[256];
		int port;

		if (cluster_owner(cfg, host, sizeof(host), &port) != 0)
			return NULL;
		if ((c = connect_tcp(host, port, tv, why, sizeof(why))) == NULL)
			log_warnx("redis %s:%d (cluster): %s", host, port, why);
		return c;
	}
	if (cfg->redis_unix == NULL) {
		if ((c = connect_tcp(cfg->redis_host, cfg->redis_port, tv, why,
		    sizeof(why))) == NULL)
			log_warnx("redis %s:%d: %s", cfg->redis_host,
			    cfg->redis_port, why);
		return c;
	}
	c = redisConnectUnixWithTimeout(cfg->redis_unix, tv);
	if (c == NULL) {
		log_warnx("redis: cannot allocate a context");
		return NULL;
	}
	if (c->err) {
		log_warnx("redis %s: %s", cfg->redis_unix, c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

int
rt_redis_addr(const struct inbox_config *cfg, char *host, size_t len,
    int *port)
{
	redisContext *c;

	if (cfg->redis_cluster != NULL)
		return cluster_owner(cfg, host, len, port);
	if (cfg->redis_sentinels == NULL) {
		snprintf(host, len, "%s", cfg->redis_unix != NULL ?
		    cfg->redis_unix : cfg->redis_host);
		*port = cfg->redis_unix != NULL ? 0 : cfg->redis_port;
		return 0;
	}
	if ((c = connect_sentinels(cfg)) == NULL)
		return INBOX_EUNAVAIL;
	snprintf(host, len, "%s", c->tcp.host);
	*port = c->tcp.port;
	redisFree(c);
	return 0;
}

bool
rt_wait_append(redisContext *c, const struct inbox_config *cfg)
{
	int ms = cfg->redis_timeout_ms / 2;

	if (cfg->redis_min_replicas <= 0)
		return false;
	redisAppendCommand(c, "WAIT %d %d", cfg->redis_min_replicas,
	    ms > 0 ? ms : 1);
	return true;
}

int
rt_wait_reply(redisContext *c, const struct inbox_config *cfg)
{
	redisReply *r = NULL;
	int rc = INBOX_EUNAVAIL;

	if (redisGetReply(c, (void **)&r) != REDIS_OK) {
		log_warnx("redis: WAIT: %s", c->errstr);
		return INBOX_EUNAVAIL;
	}
	if (r->type == REDIS_REPLY_INTEGER &&
	    r->integer >= cfg->redis_min_replicas)
		rc = 0;
	else if (r->type == REDIS_REPLY_INTEGER)
		log_warnx("redis: WAIT: %lld of %d replicas acknowledged the "
		    "writes in %d ms: not acknowledging them", r->integer,
		    cfg->redis_min_replicas, cfg->redis_timeout_ms / 2);
	else
		log_warnx("redis: WAIT: %s", r->type == REDIS_REPLY_ERROR ?
		    r->str : "unexpected reply");
	freeReplyObject(r);
	return rc;
}

bool
rt_reply_is_moved(const redisReply *r)
{
	static const char *const codes[] = { "READONLY", "MOVED ", "ASK ",
	    "TRYAGAIN", "CLUSTERDOWN" };

	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return false;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(r->str, codes[i], strlen(codes[i])) == 0)
			return true;
	return false;
}

bool
rt_stream_id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*ms = strtoull(s, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return false;
	*seq = strtoull(end + 1, &end, 10);
	return *end == '\0';
}

void
rt_key(char *buf, size_t len, const struct inbox_config *cfg, const char *name)
{
	rt_key_shard(buf, len, cfg, cfg->shard > 0 ? (unsigned)cfg->shard : 0,
	    name);
}

void
rt_key_shard(char *buf, size_t len, const struct inbox_config *cfg,
    unsigned k, const char *name)
{
	char prefix[128];

	if (inbox_shard_prefix(prefix, sizeof(prefix), cfg->redis_prefix, k,
	    (unsigned)cfg->redis_shards) != 0)
		snprintf(prefix, sizeof(prefix), "%s", cfg->redis_prefix);
	snprintf(buf, len, "%s:%s", prefix, name);
}

redisContext *
rt_redis_connect_shard(const struct inbox_config *cfg, unsigned k)
{
	/* a view of cfg whose keys are shard k's: borrowed, never freed */
	struct inbox_config view = *cfg;

	view.shard = (int)k;
	return rt_redis_connect(&view);
}

bool
rt_reply_is_error(const redisReply *r)
{
	return r == NULL || r->type == REDIS_REPLY_ERROR;
}

int
rt_group_create(redisContext *c, const char *stream, const char *group)
{
	redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM",
	    stream, group);
	int rc = 0;

	if (r == NULL) {
		log_warnx("redis: XGROUP CREATE %s: %s", stream, c->errstr);
		return INBOX_EUNAVAIL;
	}
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
		log_warnx("redis: XGROUP CREATE %s: %s", stream, r->str);
		rc = INBOX_EUNAVAIL;
	}
	freeReplyObject(r);
	return rc;
}

const char *
rt_entry_field(const redisReply *fields, const char *name, size_t *len)
{
	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i];
		const redisReply *v = fields->element[i + 1];

		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, name) == 0) {
			if (len != NULL)
				*len = v->len;
			return v->str;
		}
	}
	return NULL;
}
