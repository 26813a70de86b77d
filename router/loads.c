/*
 * Shards: an agent's load counts every shard's dialogs. Each router keeps
 * the open-dialog counts of its shard's agents in its shard's
 * <prefix>:load hash (login -> count), written after each batch it
 * applied, and reads the other shards' hashes before a batch, at most
 * every LOADS_SYNC_MS; routing adds those to its own store's counts
 * (docs/sharding.md, "Routing load"). Approximate: what another shard
 * gave out in the last LOADS_SYNC_MS is not seen yet, so an agent may
 * exceed its capacity by what the other shards assign within that time.
 * A shard that cannot be read keeps its last known counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox/rt/rt.h"
#include "router/router_int.h"

#define LOADS_SYNC_MS 250
/* After a shard could not be reached: so long before trying again (a
 * connect may take redis.timeout_ms; this shard's routing must not). */
#define PEER_RETRY_MS 5000

struct load {
	char *login;
	uint32_t n;
};

/* Counts by login, sorted. */
struct loads {
	struct load *v;
	size_t n;
};

/* One other shard. */
struct peer {
	redisContext *redis;
	char key[160];
	struct loads counts;
	bool warned;
	int64_t retry_at;        /* ms; 0: try now */
};

struct router_loads {
	unsigned me, n;
	struct peer *peers;      /* n; peers[me] unused */
	char key[160];           /* ours */
	struct loads published;  /* what our hash holds */
	int64_t next_sync;
};

static void
loads_clear(struct loads *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].login);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
load_cmp(const void *a, const void *b)
{
	return strcmp(((const struct load *)a)->login,
	    ((const struct load *)b)->login);
}

static uint32_t
loads_get(const struct loads *l, const char *login)
{
	struct load key = { (char *)login, 0 }, *f;

	f = l->n ? bsearch(&key, l->v, l->n, sizeof(*l->v), load_cmp) : NULL;
	return f != NULL ? f->n : 0;
}

static void
loads_add(struct loads *l, const char *login, uint32_t n)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n].login = xstrdup(login);
	l->v[l->n].n = n;
	l->n++;
}

struct router_loads *
router__loads_new(const struct inbox_config *cfg)
{
	struct router_loads *ls;

	if (cfg->redis_shards <= 1)
		return NULL;
	ls = xcalloc(1, sizeof(*ls));
	ls->me = (unsigned)(cfg->shard > 0 ? cfg->shard : 0);
	ls->n = (unsigned)cfg->redis_shards;
	ls->peers = xcalloc(ls->n, sizeof(*ls->peers));
	rt_key(ls->key, sizeof(ls->key), cfg, "load");
	for (unsigned k = 0; k < ls->n; k++)
		rt_key_shard(ls->peers[k].key, sizeof(ls->peers[k].key), cfg, k,
		    "load");
	return ls;
}

void
router__loads_free(struct router_loads *ls)
{
	if (ls == NULL)
		return;
	for (unsigned k = 0; k < ls->n; k++) {
		if (ls->peers[k].redis != NULL)
			redisFree(ls->peers[k].redis);
		loads_clear(&ls->peers[k].counts);
	}
	free(ls->peers);
	loads_clear(&ls->published);
	free(ls);
}

void
router__loads_forget(struct router_loads *ls)
{
	if (ls != NULL)
		loads_clear(&ls->published);    /* published again in full */
}

uint32_t
router__load_elsewhere(const struct router_loads *ls, const char *login)
{
	uint32_t n = 0;

	for (unsigned k = 0; ls != NULL && k < ls->n; k++)
		if (k != ls->me)
			n += loads_get(&ls->peers[k].counts, login);
	return n;
}

struct gather {
	struct store_txn *txn;
	struct loads now;
	int rc;
};

static int
gather_one(void *arg, const struct store_agent *a)
{
	struct gather *g = arg;
	uint32_t n = 0;

	if ((g->rc = store_agent_load(g->txn, a->login, &n)) != 0)
		return g->rc;
	loads_add(&g->now, a->login, n);
	return 0;
}

/* HSETs the counts of our agents that changed since the last time. */
int
router__loads_publish(struct router *r, struct router_loads *ls)
{
	struct gather g = { 0 };
	const char **argv = NULL;
	char (*nums)[12] = NULL;
	size_t argc = 2, changed = 0;
	redisReply *rep;
	int rc;

	if (ls == NULL || r->redis == NULL)
		return 0;
	if ((rc = store_txn_begin(r->store, false, &g.txn)) != 0)
		return rc;
	rc = store_agents(g.txn, gather_one, &g);
	store_txn_abort(g.txn);
	if (rc != 0) {
		loads_clear(&g.now);
		return rc;
	}
	if (g.now.n > 1)
		qsort(g.now.v, g.now.n, sizeof(*g.now.v), load_cmp);
	argv = xcalloc(2 + 2 * g.now.n, sizeof(*argv));
	nums = xcalloc(g.now.n + 1, sizeof(*nums));
	argv[0] = "HSET";
	argv[1] = ls->key;
	for (size_t i = 0; i < g.now.n; i++) {
		const struct load *l = &g.now.v[i];
		struct load key = { l->login, 0 }, *was = ls->published.n ?
		    bsearch(&key, ls->published.v, ls->published.n,
		    sizeof(key), load_cmp) : NULL;

		if (was != NULL && was->n == l->n)
			continue;
		snprintf(nums[changed], sizeof(nums[changed]), "%u", l->n);
		argv[argc++] = l->login;
		argv[argc++] = nums[changed];
		changed++;
	}
	rc = 0;
	if (changed > 0) {
		rep = redisCommandArgv(r->redis, (int)argc, argv, NULL);
		if (rt_reply_is_error(rep)) {
			log_warnx("router: HSET %s: %s", ls->key, rep != NULL ?
			    rep->str : r->redis->errstr);
			rc = INBOX_EUNAVAIL;
		}
		if (rep != NULL)
			freeReplyObject(rep);
	}
	free(argv);
	free(nums);
	if (rc == 0) {
		loads_clear(&ls->published);
		ls->published = g.now;
	} else {
		loads_clear(&g.now);
	}
	return rc;
}

/* Reads another shard's hash; keeps the last counts when it cannot. Sets
 * *less when an agent's count there went down (queued dialogs may fit
 * now). */
static void
read_peer(struct router *r, struct peer *p, unsigned k, bool *less)
{
	struct loads now = { 0 };
	redisReply *rep;

	if (p->redis == NULL && rt_now_ms() < p->retry_at)
		return;
	if (p->redis == NULL && (p->redis = rt_redis_connect_shard(r->cfg,
	    k)) == NULL)
		goto unreadable;
	rep = redisCommand(p->redis, "HGETALL %s", p->key);
	if (rt_reply_is_error(rep) || rep->type != REDIS_REPLY_ARRAY) {
		if (rep != NULL)
			freeReplyObject(rep);
		redisFree(p->redis);
		p->redis = NULL;
		goto unreadable;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2)
		if (rep->element[i]->type == REDIS_REPLY_STRING &&
		    rep->element[i + 1]->type == REDIS_REPLY_STRING)
			loads_add(&now, rep->element[i]->str,
			    (uint32_t)strtoul(rep->element[i + 1]->str, NULL,
			    10));
	freeReplyObject(rep);
	if (now.n > 1)
		qsort(now.v, now.n, sizeof(*now.v), load_cmp);
	for (size_t i = 0; i < p->counts.n; i++)
		if (loads_get(&now, p->counts.v[i].login) < p->counts.v[i].n)
			*less = true;
	loads_clear(&p->counts);
	p->counts = now;
	if (p->warned)
		log_info("router: shard %u's agent loads are readable again",
		    k);
	p->warned = false;
	return;
unreadable:
	p->retry_at = rt_now_ms() + PEER_RETRY_MS;
	if (!p->warned)
		log_warnx("router: cannot read shard %u's agent loads (%s): "
		    "its last known counts stay", k, p->key);
	p->warned = true;
}

void
router__loads_read(struct router *r, struct router_loads *ls)
{
	int64_t now = rt_now_ms();
	bool less = false;

	if (ls == NULL || r->redis == NULL || now < ls->next_sync)
		return;
	ls->next_sync = now + LOADS_SYNC_MS;
	if (ls->published.n == 0)
		router__loads_publish(r, ls);   /* (again) after a connect */
	for (unsigned k = 0; k < ls->n; k++)
		if (k != ls->me)
			read_peer(r, &ls->peers[k], k, &less);
	if (less)
		r->drain = true;
}
