/* The router's consume-apply-commit-publish-ack cycle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include <sys/stat.h>

#include "inbox/rt/metrics.h"
#include "inbox/rt/rt.h"
#include "router/router.h"
#include "router/router_int.h"
#include "store/store.h"

#define GROUP "router"

struct dead {
	const char *stream;      /* one of the router's key buffers */
	char *id;
	char *reason;
	char *data;
	size_t datalen;
};

struct batch {
	struct dead *dead;
	size_t ndead, capdead;
	/* ids to acknowledge, per stream (0: in, 1: cmd) */
	char **ack[2];
	size_t nack[2], capack[2];
	size_t applied;
};

static char *metrics_text(void *arg);

struct router *
router_create(const struct inbox_config *cfg)
{
	struct router *r = xcalloc(1, sizeof(*r));
	int rc;

	r->cfg = cfg;
	if ((rc = store_open(&r->store, cfg->store_path, cfg->store_map_size_mb,
	    0)) != 0) {
		log_warnx("router: cannot open the store at %s: %s",
		    cfg->store_path, inbox_strerror(rc));
		free(r);
		return NULL;
	}
	if ((rc = store_set_shard(r->store, cfg->shard > 0 ?
	    (unsigned)cfg->shard : 0, (unsigned)cfg->redis_shards)) != 0) {
		log_warnx("router: the store at %s cannot serve shard %d of "
		    "%d: %s", cfg->store_path, cfg->shard > 0 ? cfg->shard : 0,
		    cfg->redis_shards, inbox_strerror(rc));
		store_close(r->store);
		free(r);
		return NULL;
	}
	rt_key(r->k_in, sizeof(r->k_in), cfg, "in");
	rt_key(r->k_cmd, sizeof(r->k_cmd), cfg, "cmd");
	rt_key(r->k_events, sizeof(r->k_events), cfg, "events");
	rt_key(r->k_dead, sizeof(r->k_dead), cfg, "dead");
	rt_key(r->k_lease, sizeof(r->k_lease), cfg, "router:lease");
	rt_key(r->k_epoch, sizeof(r->k_epoch), cfg, "router:epoch");
	snprintf(r->maxlen, sizeof(r->maxlen), "%d", cfg->router_events_maxlen);
	if (cfg->business_week != NULL) {
		struct inbox_err err;

		if (inbox_calendar_parse(cfg->business_week,
		    cfg->business_utc_offset, &r->calendar, &err) != 0) {
			log_warnx("router: business_hours: %s", err.msg);
			store_close(r->store);
			free(r);
			return NULL;
		}
		r->has_calendar = true;
	}
	r->drain = true;         /* agents may have room since the last run */
	r->loads = router__loads_new(cfg);
	if (cfg->router_metrics != NULL)
		r->metrics = rt_metrics_start(cfg->router_metrics, metrics_text,
		    r);
	return r;
}

/* /metrics: the counters, and what Redis and the disk say now (its own
 * Redis connection: the router's is not for another thread). */
static char *
metrics_text(void *arg)
{
	struct router *r = arg;
	char path[4200], *b = NULL;
	size_t len = 0;
	struct stat sb;
	redisContext *c;

	rt_metrics_printf(&b, &len,
	    "# TYPE inbox_router_active gauge\n"
	    "inbox_router_active %d\n"
	    "# TYPE inbox_router_entries_applied_total counter\n"
	    "inbox_router_entries_applied_total %llu\n"
	    "# TYPE inbox_router_dead_letters_total counter\n"
	    "inbox_router_dead_letters_total %llu\n"
	    "# TYPE inbox_router_batches_total counter\n"
	    "inbox_router_batches_total %llu\n"
	    "# TYPE inbox_router_commit_seconds_total counter\n"
	    "inbox_router_commit_seconds_total %.6f\n"
	    "# TYPE inbox_router_sla_alerts_total counter\n"
	    "inbox_router_sla_alerts_total %llu\n"
	    "# TYPE inbox_router_takeovers_total counter\n"
	    "inbox_router_takeovers_total %llu\n",
	    atomic_load(&r->m_active) ? 1 : 0,
	    (unsigned long long)atomic_load(&r->m_applied),
	    (unsigned long long)atomic_load(&r->m_dead),
	    (unsigned long long)atomic_load(&r->m_batches),
	    (double)atomic_load(&r->m_commit_us) / 1e6,
	    (unsigned long long)atomic_load(&r->m_sla_alerts),
	    (unsigned long long)atomic_load(&r->m_takeovers));
	snprintf(path, sizeof(path), "%s/data.mdb", r->cfg->store_path);
	if (stat(path, &sb) == 0)
		rt_metrics_printf(&b, &len, "# TYPE inbox_store_bytes gauge\n"
		    "inbox_store_bytes %lld\n", (long long)sb.st_size);
	if ((c = rt_redis_connect(r->cfg)) != NULL) {
		const char *streams[] = { r->k_in, r->k_cmd, r->k_events };

		rt_metrics_printf(&b, &len, "# TYPE inbox_stream_length gauge\n");
		for (int i = 0; i < 3; i++) {
			redisReply *rep = redisCommand(c, "XLEN %s", streams[i]);

			if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
				rt_metrics_printf(&b, &len, "inbox_stream_length"
				    "{stream=\"%s\"} %lld\n", streams[i],
				    rep->integer);
			if (rep != NULL)
				freeReplyObject(rep);
		}
		rt_metrics_printf(&b, &len, "# TYPE inbox_stream_pending gauge\n"
		    "# TYPE inbox_stream_lag gauge\n");
		for (int i = 0; i < 2; i++) {
			redisReply *rep = redisCommand(c, "XINFO GROUPS %s",
			    streams[i]);

			for (size_t g = 0; rep != NULL &&
			    rep->type == REDIS_REPLY_ARRAY && g < rep->elements;
			    g++) {
				const redisReply *e = rep->element[g];
				long long pending = -1, lag = -1;

				for (size_t k = 0; e->type == REDIS_REPLY_ARRAY &&
				    k + 1 < e->elements; k += 2) {
					const redisReply *key = e->element[k];
					const redisReply *v = e->element[k + 1];

					if (key->type != REDIS_REPLY_STRING ||
					    v->type != REDIS_REPLY_INTEGER)
						continue;
					if (strcmp(key->str, "pending") == 0)
						pending = v->integer;
					else if (strcmp(key->str, "lag") == 0)
						lag = v->integer;
				}
				if (pending >= 0)
					rt_metrics_printf(&b, &len,
					    "inbox_stream_pending{stream=\"%s\"} "
					    "%lld\n", streams[i], pending);
				if (lag >= 0)
					rt_metrics_printf(&b, &len,
					    "inbox_stream_lag{stream=\"%s\"} "
					    "%lld\n", streams[i], lag);
			}
			if (rep != NULL)
				freeReplyObject(rep);
		}
		redisFree(c);
	}
	return b;
}

void
router_destroy(struct router *r)
{
	if (r == NULL)
		return;
	rt_metrics_stop(r->metrics);
	for (size_t i = 0; i < r->nreloaded; i++) {
		inbox_config_finish(r->reloaded[i]);
		free(r->reloaded[i]);
	}
	free(r->reloaded);
	if (r->redis != NULL)
		redisFree(r->redis);
	router__loads_free(r->loads);
	store_close(r->store);
	free(r);
}

/* ---- events ------------------------------------------------------------ */

/* The next event id: above every id given out, whatever the clock does. */
static void
next_event_id(struct router *r, char *id, size_t len)
{
	int64_t now = rt_now_ms();

	if ((uint64_t)now > r->ev_ms) {
		r->ev_ms = (uint64_t)now;
		r->ev_seq = 0;
	} else {
		r->ev_seq++;
	}
	snprintf(id, len, "%llu-%llu", (unsigned long long)r->ev_ms,
	    (unsigned long long)r->ev_seq);
}

/* What an event is about, so that a gateway need not parse its data to
 * decide who sees it, into buf: the dialog of data.conversation (or of
 * data.conversation_id, read in txn) as "<connector>\t<assignee>", else
 * "*" (everyone). NULL when the dialog is not found (a gateway looks). */
static const char *
event_about(struct store_txn *txn, const cJSON *data, char *buf, size_t len)
{
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(data,
	    "conversation");
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(data,
	    "conversation_id");
	const char *cn, *as;
	struct store_conv c;

	if (cJSON_IsObject(conv)) {
		cn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv,
		    "connector"));
		as = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv,
		    "assignee"));
	} else if (cJSON_IsNumber(cid) && cid->valuedouble >= 1) {
		if (store_conv_get(txn, (uint64_t)cid->valuedouble, &c) != 0)
			return NULL;
		cn = c.connector;
		as = c.assignee;
	} else {
		return "*";
	}
	/* copied: an LMDB value is valid only until the next write */
	snprintf(buf, len, "%s\t%s", cn != NULL ? cn : "", as != NULL ? as :
	    "");
	return buf;
}

static void
outbox_add(struct router *r, struct store_txn *txn, const char *name,
    void *data, const char *to, const struct store_conv *about)
{
	struct store_event ev;
	char id[48], what[INBOX_ID_MAX + 130];
	char *json;
	int rc;

	if (r->copy && (strncmp(name, "agent.", 6) == 0 ||
	    strncmp(name, "template.", 9) == 0 ||
	    strcmp(name, "command.failed") == 0)) {
		cJSON_Delete(data);  /* the original's shard announces it */
		return;
	}
	next_event_id(r, id, sizeof(id));
	memset(&ev, 0, sizeof(ev));
	if (about != NULL) {
		snprintf(what, sizeof(what), "%s\t%s", about->connector,
		    about->assignee != NULL ? about->assignee : "");
		ev.about = what;
	} else if (name[0] != '@') {
		ev.about = event_about(txn, data, what, sizeof(what));
	}
	json = cJSON_PrintUnformatted(data);
	if (json == NULL)
		fatalx("router: out of memory printing an event");
	ev.id = id;
	ev.name = name;
	ev.data = json;
	ev.to = to;
	ev.cmd_id = name[0] == '@' ? NULL : r->cmd_id;
	rc = store_outbox_add(txn, &ev);
	cJSON_Delete(data);
	free(json);
	if (rc != 0)
		fatalx("router: outbox: %s", inbox_strerror(rc));
}

void
router__event(struct router *r, struct store_txn *txn, const char *name,
    void *data)
{
	outbox_add(r, txn, name, data, NULL, NULL);
}

void
router__event_about(struct router *r, struct store_txn *txn, const char *name,
    void *data, const struct store_conv *conv)
{
	outbox_add(r, txn, name, data, NULL, conv);
}

void
router__event_to(struct router *r, struct store_txn *txn, const char *name,
    void *data, const char *to)
{
	outbox_add(r, txn, name, data, to, NULL);
}

void
router__out(struct router *r, struct store_txn *txn, const char *connector,
    void *item)
{
	char name[INBOX_ID_MAX + 8];

	/* Stream ids of every out queue come from the event clock, so a
	 * replayed outbox cannot queue a reply twice either. */
	snprintf(name, sizeof(name), "@out:%s", connector);
	outbox_add(r, txn, name, item, NULL, NULL);
}

struct publish {
	struct router *r;
	size_t sent;
};

static int
publish_one(void *arg, const struct store_event *ev)
{
	struct publish *p = arg;
	char stream[256];
	const char *argv[16];
	int argc = 0;

	argv[argc++] = "XADD";
	if (strncmp(ev->name, "@sla:", 5) == 0) {
		/* supervisors' alert stream */
		rt_key(stream, sizeof(stream), p->r->cfg, "sla");
		argv[argc++] = stream;
		argv[argc++] = "MAXLEN";
		argv[argc++] = "~";
		argv[argc++] = p->r->maxlen;
		argv[argc++] = ev->id;
		argv[argc++] = "event";
		argv[argc++] = ev->name + 5;
		argv[argc++] = "data";
		argv[argc++] = ev->data;
	} else if (ev->name[0] == '@') {
		rt_key(stream, sizeof(stream), p->r->cfg, ev->name + 1);
		argv[argc++] = stream;
		argv[argc++] = ev->id;
		argv[argc++] = "out";
		argv[argc++] = ev->data;
	} else {
		argv[argc++] = p->r->k_events;
		argv[argc++] = "MAXLEN";
		argv[argc++] = "~";
		argv[argc++] = p->r->maxlen;
		argv[argc++] = ev->id;
		argv[argc++] = "event";
		argv[argc++] = ev->name;
		argv[argc++] = "data";
		argv[argc++] = ev->data;
		if (ev->to != NULL) {
			argv[argc++] = "to";
			argv[argc++] = ev->to;
		}
		if (ev->cmd_id != NULL) {
			argv[argc++] = "cmd_id";
			argv[argc++] = ev->cmd_id;
		}
		if (ev->about != NULL) {
			argv[argc++] = "about";
			argv[argc++] = ev->about;
		}
	}
	if (redisAppendCommandArgv(p->r->redis, argc, argv, NULL) != REDIS_OK)
		return INBOX_EUNAVAIL;
	p->sent++;
	return 0;
}

/* Appends every event of the outbox to inbox:events. An id at or below the
 * stream's top was appended before a crash: Redis refuses it, which is fine.
 * With redis.min_replicas > 0, one WAIT follows the events: the outbox is
 * cleared (next batch) and the batch acknowledged only once they reached
 * the replicas, so a failover cannot leave a gap in the events. (A refused
 * copy was written by an earlier connection: every connection starts with
 * the lease's EVAL, a write after it, so this WAIT covers it too.)
 * Returns 0 when every event is in Redis (and replicated). */
static int
publish_outbox(struct router *r)
{
	struct publish p = { .r = r };
	struct store_txn *txn;
	bool waited = false;
	int rc, failed = 0;

	if ((rc = store_txn_begin(r->store, false, &txn)) != 0)
		fatalx("router: read txn: %s", inbox_strerror(rc));
	rc = store_outbox_foreach(txn, publish_one, &p);
	store_txn_abort(txn);
	if (rc == 0 && p.sent > 0)
		waited = rt_wait_append(r->redis, r->cfg);
	for (size_t i = 0; i < p.sent; i++) {
		redisReply *rep = NULL;

		if (redisGetReply(r->redis, (void **)&rep) != REDIS_OK) {
			failed = 1;
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR &&
		    strstr(rep->str, "equal or smaller") == NULL) {
			log_warnx("router: XADD %s: %s", r->k_events, rep->str);
			failed = 1;
		}
		freeReplyObject(rep);
	}
	if (waited && !r->redis->err && rt_wait_reply(r->redis, r->cfg) != 0)
		failed = 1;
	if (rc != 0 || failed)
		return INBOX_EUNAVAIL;
	r->outbox_published = true;
	return 0;
}

/* Event ids must stay above the stream's top, whatever the clock does. */
static int
sync_event_clock(struct router *r)
{
	redisReply *rep = redisCommand(r->redis, "XREVRANGE %s + - COUNT 1",
	    r->k_events);
	uint64_t ms, seq;

	if (rep == NULL)
		return INBOX_EUNAVAIL;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	    rep->element[0]->type == REDIS_REPLY_ARRAY &&
	    rep->element[0]->elements >= 1 &&
	    rt_stream_id_parse(rep->element[0]->element[0]->str, &ms, &seq) &&
	    (ms > r->ev_ms || (ms == r->ev_ms && seq > r->ev_seq))) {
		r->ev_ms = ms;
		r->ev_seq = seq;
	}
	freeReplyObject(rep);
	return 0;
}

/* ---- the lease: one active router -------------------------------------
 *
 * Routers of one store run active/standby. The active one holds
 * <prefix>:router:lease ("<consumer> <epoch>", expiring after
 * router.lease_ms unless renewed every third of it); a standby polls and
 * takes the lease when it expires. The epoch (INCR <prefix>:router:epoch) is
 * a fencing number: every write transaction checks that the store's
 * "lease_epoch" is not above ours and writes ours, so a router that lost
 * its lease while paused can commit nothing after its successor's first
 * transaction. Pending entries of other consumers are claimed at takeover.
 */

static const char ACQUIRE_LUA[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. ' ' then "
    "return 0 end "
    "local e = redis.call('INCR', KEYS[2]) "
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2]) "
    "return e";
static const char RENEW_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

/* Is this router still the store's writer? Writes its epoch in txn. */
static bool
fenced_in(struct router *r, struct store_txn *txn)
{
	uint64_t e = 0;
	int rc;

	rc = store_meta_get(txn, "lease_epoch", &e);
	if (rc != 0 && rc != INBOX_ENOTFOUND)
		fatalx("router: meta: %s", inbox_strerror(rc));
	if (e > r->epoch) {
		log_warnx("router: the store was written by lease epoch %llu, "
		    "ours is %llu: standing by", (unsigned long long)e,
		    (unsigned long long)r->epoch);
		r->epoch = 0;
		return false;
	}
	if (e < r->epoch && (rc = store_meta_put(txn, "lease_epoch",
	    r->epoch)) != 0)
		fatalx("router: meta: %s", inbox_strerror(rc));
	return true;
}

/* Takes the lease when it is free or held by our own consumer name (an
 * earlier incarnation of this router). Returns 0 (r->epoch set), 1 when
 * another router holds it, or INBOX_EUNAVAIL. */
static int
lease_acquire(struct router *r)
{
	char ttl[16];
	const char *argv[] = { "EVAL", ACQUIRE_LUA, "2", r->k_lease, r->k_epoch,
	    r->cfg->router_consumer, ttl };
	redisReply *rep;
	int rc = 1;

	snprintf(ttl, sizeof(ttl), "%d", r->cfg->router_lease_ms);
	rep = redisCommandArgv(r->redis, 7, argv, NULL);
	if (rep == NULL)
		return INBOX_EUNAVAIL;
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
		r->epoch = (uint64_t)rep->integer;
		snprintf(r->lease_val, sizeof(r->lease_val), "%s %llu",
		    r->cfg->router_consumer, (unsigned long long)r->epoch);
		r->lease_renewed = rt_now_ms();
		rc = 0;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		log_warnx("router: lease: %s", rep->str);
		rc = INBOX_EUNAVAIL;
	}
	freeReplyObject(rep);
	return rc;
}

/* Renews the lease every third of its time. Returns 0, or INBOX_ESTATE
 * when it is lost (another router holds it), or INBOX_EUNAVAIL. */
static int
lease_renew(struct router *r)
{
	char ttl[16];
	const char *argv[] = { "EVAL", RENEW_LUA, "1", r->k_lease, r->lease_val,
	    ttl };
	int64_t now = rt_now_ms();
	redisReply *rep;
	int rc;

	if (now - r->lease_renewed < r->cfg->router_lease_ms / 3)
		return 0;
	snprintf(ttl, sizeof(ttl), "%d", r->cfg->router_lease_ms);
	rep = redisCommandArgv(r->redis, 6, argv, NULL);
	if (rep == NULL)
		return INBOX_EUNAVAIL;
	rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ? 0 :
	    rep->type == REDIS_REPLY_ERROR ? INBOX_EUNAVAIL : INBOX_ESTATE;
	freeReplyObject(rep);
	if (rc == 0)
		r->lease_renewed = now;
	else if (rc == INBOX_ESTATE)
		log_warnx("router: lost the lease (%s): standing by",
		    r->lease_val);
	return rc;
}

/* Gives the lease back on a clean stop, so a standby need not wait. */
static void
lease_release(struct router *r)
{
	const char *argv[] = { "EVAL", "if redis.call('GET', KEYS[1]) == "
	    "ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
	    "1", r->k_lease, r->lease_val };
	redisReply *rep;

	if (r->redis == NULL || r->epoch == 0)
		return;
	if ((rep = redisCommandArgv(r->redis, 5, argv, NULL)) != NULL)
		freeReplyObject(rep);
}

/* ---- batches ----------------------------------------------------------- */

static void
batch_dead(struct batch *b, const char *stream, const char *id,
    const char *data, size_t datalen, const char *reason)
{
	struct dead *d;

	if (b->ndead == b->capdead) {
		b->capdead = b->capdead ? b->capdead * 2 : 16;
		b->dead = xrealloc(b->dead, b->capdead * sizeof(*b->dead));
	}
	d = &b->dead[b->ndead++];
	d->stream = stream;
	d->id = xstrdup(id);
	d->reason = xstrdup(reason);
	d->data = data ? xstrndup(data, datalen) : xstrdup("");
	d->datalen = data ? datalen : 0;
	log_warnx("router: %s %s dead-lettered: %s", stream, id, reason);
}

static void
batch_ack(struct batch *b, int which, const char *id)
{
	if (b->nack[which] == b->capack[which]) {
		b->capack[which] = b->capack[which] ? b->capack[which] * 2 : 64;
		b->ack[which] = xrealloc(b->ack[which],
		    b->capack[which] * sizeof(char *));
	}
	b->ack[which][b->nack[which]++] = xstrdup(id);
}

static void
batch_finish(struct batch *b)
{
	for (size_t i = 0; i < b->ndead; i++) {
		free(b->dead[i].id);
		free(b->dead[i].reason);
		free(b->dead[i].data);
	}
	free(b->dead);
	for (int w = 0; w < 2; w++) {
		for (size_t i = 0; i < b->nack[w]; i++)
			free(b->ack[w][i]);
		free(b->ack[w]);
	}
	memset(b, 0, sizeof(*b));
}

/* The whole entry as a JSON object of its fields, for a dead letter. */
static char *
entry_json(const redisReply *fields)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i];
		const redisReply *v = fields->element[i + 1];

		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
			cJSON_AddItemToObject(o, k->str,
			    cJSON_CreateString(v->str));
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s == NULL)
		fatalx("router: out of memory");
	return s;
}

static void
apply_entry(struct router *r, struct store_txn *txn, struct batch *b,
    int which, const char *id, const redisReply *fields, int64_t now)
{
	const char *stream = which == 0 ? r->k_in : r->k_cmd;
	const char *data;
	char reason[600];
	size_t len;
	int rc;

	batch_ack(b, which, id);
	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
		return; /* deleted from the stream while pending */
	if (which == 1) {
		/* Commands are not idempotent (a note would be added twice):
		 * one applied before a crash, whose XACK was lost, is only
		 * acknowledged. The last applied id commits with its effect. */
		uint64_t ms, seq;

		if (!rt_stream_id_parse(id, &ms, &seq))
			return;
		if (ms < r->cmd_ms || (ms == r->cmd_ms && seq <= r->cmd_seq)) {
			log_info("router: command %s was applied before; "
			    "acknowledging it only", id);
			return;
		}
		r->cmd_ms = ms;
		r->cmd_seq = seq;
	} else {
		/* The newest inbound entry the store holds the effect of:
		 * `inboxctl restore --replay-inbound` replays what came
		 * after a backup's. */
		uint64_t ms, seq;

		if (rt_stream_id_parse(id, &ms, &seq) && (ms > r->in_ms ||
		    (ms == r->in_ms && seq > r->in_seq))) {
			r->in_ms = ms;
			r->in_seq = seq;
		}
	}
	data = rt_entry_field(fields, which == 0 ? "env" : "cmd", &len);
	if (data == NULL) {
		char *raw = entry_json(fields);

		batch_dead(b, stream, id, raw, strlen(raw), which == 0 ?
		    "entry has no 'env' field" : "entry has no 'cmd' field");
		free(raw);
		return;
	}
	if (which == 0)
		rc = router__apply_envelope(r, txn, data, len, now, reason,
		    sizeof(reason));
	else
		rc = router__apply_command(r, txn, data, len, now, reason,
		    sizeof(reason));
	if (rc == INBOX_EINVAL) {
		batch_dead(b, stream, id, data, len, reason);
		atomic_fetch_add(&r->m_dead, 1);
	}
	else if (rc != 0)
		fatalx("router: %s %s: %s", stream, id, reason);
	else {
		b->applied++;
		atomic_fetch_add(&r->m_applied, 1);
	}
}

/* Sends dead letters and acknowledgements, pipelined; replies are read so
 * errors are seen. Returns 0 or INBOX_EUNAVAIL. */
static int
send_dead_and_acks(struct router *r, struct batch *b)
{
	size_t sent = 0;
	int failed = 0;

	for (size_t i = 0; i < b->ndead; i++) {
		const struct dead *d = &b->dead[i];
		const char *argv[] = { "XADD", r->k_dead, "*", "reason",
		    d->reason, "source", d->stream, "source_id", d->id, "data",
		    d->data };
		size_t lens[11];

		for (int k = 0; k < 11; k++)
			lens[k] = strlen(argv[k]);
		lens[10] = d->datalen;
		redisAppendCommandArgv(r->redis, 11, argv, lens);
		sent++;
	}
	for (int w = 0; w < 2; w++) {
		size_t n = b->nack[w];
		const char **argv;

		if (n == 0)
			continue;
		argv = xcalloc(n + 3, sizeof(char *));
		argv[0] = "XACK";
		argv[1] = w == 0 ? r->k_in : r->k_cmd;
		argv[2] = GROUP;
		for (size_t i = 0; i < n; i++)
			argv[3 + i] = b->ack[w][i];
		redisAppendCommandArgv(r->redis, (int)(n + 3), argv, NULL);
		free(argv);
		sent++;
	}
	for (size_t i = 0; i < sent; i++) {
		redisReply *rep = NULL;

		if (redisGetReply(r->redis, (void **)&rep) != REDIS_OK)
			return INBOX_EUNAVAIL;
		if (rep->type == REDIS_REPLY_ERROR) {
			log_warnx("router: dead letter or XACK: %s", rep->str);
			failed = 1;
		}
		freeReplyObject(rep);
	}
	return failed ? INBOX_EUNAVAIL : 0;
}

/* Applies one XREADGROUP reply. Returns the number of entries, or
 * INBOX_EUNAVAIL when Redis failed after the commit (the entries stay
 * pending and come back; the store refuses the copies). */
static int
process_reply(struct router *r, const redisReply *rep)
{
	struct store_txn *txn;
	struct batch b;
	size_t total = 0;
	int64_t now = rt_now_ms();
	int rc;

	memset(&b, 0, sizeof(b));
	if ((rc = store_txn_begin(r->store, true, &txn)) != 0)
		fatalx("router: write txn: %s", inbox_strerror(rc));
	if (!fenced_in(r, txn)) {
		store_txn_abort(txn);
		return INBOX_ESTATE;
	}
	if (r->outbox_published) {
		if ((rc = store_outbox_clear(txn)) != 0)
			fatalx("router: outbox clear: %s", inbox_strerror(rc));
		r->outbox_published = false;
	}
	for (size_t s = 0; rep->type == REDIS_REPLY_ARRAY && s < rep->elements;
	    s++) {
		const redisReply *st = rep->element[s];
		int which;

		if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
			continue;
		which = strcmp(st->element[0]->str, r->k_in) == 0 ? 0 : 1;
		for (size_t i = 0; i < st->element[1]->elements; i++) {
			const redisReply *e = st->element[1]->element[i];

			if (e->type != REDIS_REPLY_ARRAY || e->elements < 1)
				continue;
			apply_entry(r, txn, &b, which, e->element[0]->str,
			    e->elements > 1 ? e->element[1] : NULL, now);
			total++;
		}
	}
	if (r->next_due != 0 && now >= r->next_due &&
	    (rc = router__apply_timers(r, txn, now)) != 0)
		fatalx("router: timers: %s", inbox_strerror(rc));
	if (r->drain && (rc = router__drain(r, txn, now)) != 0)
		fatalx("router: queue: %s", inbox_strerror(rc));
	if ((rc = store_next_due(txn, &r->next_due)) != 0)
		fatalx("router: timers: %s", inbox_strerror(rc));
	if ((rc = store_meta_put(txn, "cmd_ms", r->cmd_ms)) != 0 ||
	    (rc = store_meta_put(txn, "cmd_seq", r->cmd_seq)) != 0 ||
	    (rc = store_meta_put(txn, "in_ms", r->in_ms)) != 0 ||
	    (rc = store_meta_put(txn, "in_seq", r->in_seq)) != 0 ||
	    (rc = store_meta_put(txn, "event_ms", r->ev_ms)) != 0 ||
	    (rc = store_meta_put(txn, "event_seq", r->ev_seq)) != 0)
		fatalx("router: meta: %s", inbox_strerror(rc));
	{
		int64_t t0 = rt_now_us();

		if ((rc = store_txn_commit(txn)) != 0)
			fatalx("router: commit: %s", inbox_strerror(rc));
		atomic_fetch_add(&r->m_commit_us, (uint_fast64_t)(rt_now_us() -
		    t0));
		atomic_fetch_add(&r->m_batches, 1);
	}
	log_debug("router: batch of %zu committed (%zu applied, %zu dead)",
	    total, b.applied, b.ndead);
	rc = publish_outbox(r);
	if (rc == 0)
		rc = send_dead_and_acks(r, &b);
	batch_finish(&b);
	return rc != 0 ? rc : (int)total;
}

/* One XREADGROUP: pending entries (id 0) or new ones (>). */
static redisReply *
read_batch(struct router *r, bool pending)
{
	char count[16], block[16];
	const char *id = pending ? "0" : ">";
	int block_ms = r->cfg->redis_timeout_ms / 2;

	if (block_ms > 1000)
		block_ms = 1000;
	if (r->next_due != 0) {
		int64_t wait = r->next_due - rt_now_ms();

		if (wait < block_ms)
			block_ms = wait < 1 ? 1 : (int)wait;
	}
	snprintf(count, sizeof(count), "%d", r->cfg->router_batch);
	snprintf(block, sizeof(block), "%d", block_ms);
	if (pending) {
		const char *argv[] = { "XREADGROUP", "GROUP", GROUP,
		    r->cfg->router_consumer, "COUNT", count, "STREAMS",
		    r->k_in, r->k_cmd, id, id };
		return redisCommandArgv(r->redis, 11, argv, NULL);
	} else {
		const char *argv[] = { "XREADGROUP", "GROUP", GROUP,
		    r->cfg->router_consumer, "COUNT", count, "BLOCK", block,
		    "STREAMS", r->k_in, r->k_cmd, id, id };
		return redisCommandArgv(r->redis, 13, argv, NULL);
	}
}

/* Claims entries of dead consumers into our pending list. */
static int
claim_stale(struct router *r, const char *stream)
{
	char idle[16], cursor[64] = "0-0";

	snprintf(idle, sizeof(idle), "%d", r->cfg->router_claim_idle_ms);
	for (;;) {
		const char *argv[] = { "XAUTOCLAIM", stream, GROUP,
		    r->cfg->router_consumer, idle, cursor, "COUNT", "1000",
		    "JUSTID" };
		redisReply *rep = redisCommandArgv(r->redis, 9, argv, NULL);
		bool done;

		if (rep == NULL)
			return INBOX_EUNAVAIL;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING) {
			log_warnx("router: XAUTOCLAIM %s: %s", stream,
			    rep->type == REDIS_REPLY_ERROR ? rep->str :
			    "unexpected reply");
			freeReplyObject(rep);
			return INBOX_EUNAVAIL;
		}
		if (rep->element[1]->elements > 0)
			log_info("router: claimed %zu stale entries of %s",
			    rep->element[1]->elements, stream);
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		freeReplyObject(rep);
		done = strcmp(cursor, "0-0") == 0;
		if (done)
			return 0;
	}
}

/* Connects and makes sure the consumer groups exist. */
static int
connect_redis(struct router *r)
{
	if ((r->redis = rt_redis_connect(r->cfg)) == NULL)
		return INBOX_EUNAVAIL;
	if (rt_group_create(r->redis, r->k_in, GROUP) != 0 ||
	    rt_group_create(r->redis, r->k_cmd, GROUP) != 0) {
		redisFree(r->redis);
		r->redis = NULL;
		return INBOX_EUNAVAIL;
	}
	return 0;
}

/* After taking the lease: one write transaction fences the store with our
 * epoch (the former router can commit nothing after it) and reads the
 * state it left; then its outbox goes out and its pending entries are
 * ours. */
static int
take_over(struct router *r)
{
	struct store_txn *txn;
	int rc;

	if ((rc = store_txn_begin(r->store, true, &txn)) != 0)
		fatalx("router: write txn: %s", inbox_strerror(rc));
	if (!fenced_in(r, txn)) {
		store_txn_abort(txn);
		return INBOX_ESTATE;
	}
	r->ev_ms = r->ev_seq = r->cmd_ms = r->cmd_seq = 0;
	r->in_ms = r->in_seq = 0;
	store_meta_get(txn, "in_ms", &r->in_ms);
	store_meta_get(txn, "in_seq", &r->in_seq);
	store_meta_get(txn, "event_ms", &r->ev_ms);
	store_meta_get(txn, "event_seq", &r->ev_seq);
	store_meta_get(txn, "cmd_ms", &r->cmd_ms);
	store_meta_get(txn, "cmd_seq", &r->cmd_seq);
	if ((rc = store_next_due(txn, &r->next_due)) != 0)
		fatalx("router: timers: %s", inbox_strerror(rc));
	if ((rc = store_txn_commit(txn)) != 0)
		fatalx("router: commit: %s", inbox_strerror(rc));
	r->outbox_published = false;
	r->drain = true;
	if (publish_outbox(r) != 0 || sync_event_clock(r) != 0 ||
	    claim_stale(r, r->k_in) != 0 || claim_stale(r, r->k_cmd) != 0)
		return INBOX_EUNAVAIL;
	return 0;
}

static void
nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* SIGHUP: rules, SLA policies, business hours and routing settings apply
 * from the next batch; the old configuration stays alive (the metrics
 * thread may read it). */
static void
reload(struct router *r)
{
	struct inbox_config *cfg = rt_config_reload(r->cfg);
	struct inbox_calendar cal;
	struct inbox_err err;

	if (cfg == NULL)
		return;
	if (cfg->business_week != NULL && inbox_calendar_parse(
	    cfg->business_week, cfg->business_utc_offset, &cal, &err) != 0) {
		log_warnx("reload: business_hours: %s; the running "
		    "configuration stays", err.msg);
		inbox_config_finish(cfg);
		free(cfg);
		return;
	}
	r->has_calendar = cfg->business_week != NULL;
	if (r->has_calendar)
		r->calendar = cal;
	r->reloaded = xrealloc(r->reloaded, (r->nreloaded + 1) *
	    sizeof(*r->reloaded));
	r->reloaded[r->nreloaded++] = cfg;
	r->cfg = cfg;
	r->drain = true;
	log_info("router: %zu rules, %zu SLA policies", cfg->nrules, cfg->nsla);
}

static void
drop_redis(struct router *r)
{
	redisFree(r->redis);
	r->redis = NULL;
	r->epoch = 0;
	router__loads_forget(r->loads);
	atomic_store(&r->m_active, false);
	/* a connection that failed at once (a Redis Cluster slot half
	 * moved answers -ASK until the move ends): do not spin */
	if (rt_now_ms() - r->connected_at < 1000)
		nap(100);
}

int
router_run(struct router *r)
{
	bool pending = true, ready = false, waiting = false;
	int backoff = 100;

	while (!rt_sig_pending()) {
		redisReply *rep;
		bool applied;
		int n, rc;

		if (rt_sig_hup())
			reload(r);
		if (r->redis == NULL) {
			if (connect_redis(r) != 0) {
				nap(backoff);
				backoff = backoff < 2000 ? backoff * 2 : 2000;
				continue;
			}
			r->connected_at = rt_now_ms();
			backoff = 100;
			if (ready)
				log_info("router: reconnected to redis");
		}
		if (r->epoch == 0) {
			rc = lease_acquire(r);
			if (rc == 1) {
				if (!waiting)
					log_info("router standby ready: another "
					    "router holds %s", r->k_lease);
				waiting = ready = true;
				nap(r->cfg->router_lease_ms / 4);
				continue;
			}
			if (rc != 0 || (rc = take_over(r)) != 0) {
				if (rc == INBOX_ESTATE)
					nap(r->cfg->router_lease_ms / 4);
				drop_redis(r);
				continue;
			}
			pending = true;
			waiting = false;
			atomic_store(&r->m_active, true);
			if (ready)
				atomic_fetch_add(&r->m_takeovers, 1);
			log_info("%s: consuming %s and %s as %s/%s (lease "
			    "epoch %llu)", ready ? "router: took over" :
			    "router ready", r->k_in, r->k_cmd, GROUP,
			    r->cfg->router_consumer,
			    (unsigned long long)r->epoch);
			ready = true;
		} else if (lease_renew(r) != 0) {
			drop_redis(r);
			continue;
		}
		rep = read_batch(r, pending);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			log_warnx("router: XREADGROUP: %s", rep ? rep->str :
			    r->redis->errstr);
			if (rep != NULL)
				freeReplyObject(rep);
			drop_redis(r);
			continue;
		}
		/* with shards: the other shards' agent loads before routing */
		router__loads_read(r, r->loads);
		applied = true;
		n = 0;
		if (rep->type == REDIS_REPLY_ARRAY)
			n = process_reply(r, rep);
		else if ((r->next_due != 0 && rt_now_ms() >= r->next_due) ||
		    r->drain)
			n = process_reply(r, rep) < 0 ? -1 : 0; /* timers only */
		else
			applied = false;
		freeReplyObject(rep);
		if (n < 0) {
			drop_redis(r);
			continue;
		}
		/* with shards: what this batch assigned or closed, for the
		 * other shards' routing */
		if (applied)
			router__loads_publish(r, r->loads);
		if (pending && n == 0)
			pending = false;
	}
	lease_release(r);
	log_info("router: stopping");
	return 0;
}
