/*
 * The gateway's Redis links, on the loop lws serves from (hiredis' async
 * client with librt's lws adapter), two per shard: the request link
 * carries commands, logouts and the reads of subscribe, stats and
 * sla.recent; the event link follows the shard's events with XREAD BLOCK.
 * Nothing waits for Redis: a reply continues its request from a callback.
 * Each link reconnects by itself (asking the sentinels again when there
 * are some, or the cluster where the shard's slot is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

#define RETRY_MS 200
/* An XREAD that comes back empty this often shows the link is alive. */
#define XREAD_BLOCK_MS "5000"
#define XREAD_COUNT "512"

static void link_connect(struct gw_link *l);
static void ev_read(struct gw_shard *sh);

static void
retry_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_link *l = lws_container_of(sul, struct gw_link, retry);

	if (!l->gw->stopping && l->ac == NULL)
		link_connect(l);
}

static void
link_down(struct gw_link *l, const char *why)
{
	l->ac = NULL;            /* hiredis frees it after this callback */
	l->up = false;
	if (!l->warned)
		log_warnx("gateway: redis (%s link): %s; reconnecting", l->name,
		    why);
	l->warned = true;
	if (!l->gw->stopping)
		lws_sul_schedule(l->gw->lws, 0, &l->retry, retry_cb,
		    RETRY_MS * LWS_US_PER_MS);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct gw_link *l = ac->data;
	struct gateway *gw = l->gw;

	if (status != REDIS_OK) {
		link_down(l, ac->errstr);
		return;
	}
	if (l->warned)
		log_info("gateway: redis (%s link) is back", l->name);
	l->warned = false;
	l->up = true;
	if (gw->stopping)
		return;
	if (l == &l->sh->ev_link)
		ev_read(l->sh);
	else if (l->sh->k == 0)
		gw_revocations_load(gw);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct gw_link *l = ac->data;

	if (status == REDIS_OK && l->gw->stopping) {
		l->ac = NULL;
		l->up = false;
		return;
	}
	link_down(l, status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void
link_connect(struct gw_link *l)
{
	/* a view of the config whose keys are the shard's (borrowed) */
	struct inbox_config view = *l->gw->cfg;
	char host[256];
	redisAsyncContext *ac;
	int port;

	view.shard = (int)l->sh->k;
	if (rt_redis_addr(&view, host, sizeof(host), &port) != 0) {
		l->warned = true; /* logged by rt_redis_addr */
		lws_sul_schedule(l->gw->lws, 0, &l->retry, retry_cb,
		    RETRY_MS * LWS_US_PER_MS);
		return;
	}
	ac = port == 0 ? redisAsyncConnectUnix(host) :
	    redisAsyncConnect(host, port);
	if (ac == NULL)
		fatalx("gateway: out of memory");
	if (ac->err) {
		char why[300];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		link_down(l, why);
		return;
	}
	ac->data = l;
	if (rt_lws_redis_attach(ac, l->gw->lws) != REDIS_OK) {
		redisAsyncFree(ac);
		link_down(l, "cannot watch the connection");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	l->ac = ac;
}

static void
link_init(struct gw_shard *sh, struct gw_link *l, const char *name)
{
	l->gw = sh->gw;
	l->sh = sh;
	if (sh->gw->nshards > 1)
		snprintf(l->name, sizeof(l->name), "shard %u %s", sh->k, name);
	else
		snprintf(l->name, sizeof(l->name), "%s", name);
	link_connect(l);
}

/* The server does not serve our keys any more (a failover demoted it, or
 * a Redis Cluster moved their slot): reconnect to where they are. */
static void
check_moved(redisAsyncContext *ac, const redisReply *r)
{
	if (r != NULL && rt_reply_is_moved(r)) {
		log_warnx("gateway: redis says %.40s: reconnecting", r->str);
		redisAsyncDisconnect(ac);
	}
}

/* ---- calls ------------------------------------------------------------ */

static void
call_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gw_link *l = ac->data;
	struct gw_call *call = priv;
	redisReply *r = reply;

	check_moved(ac, r);
	if (call == NULL) {
		if (r != NULL && r->type == REDIS_REPLY_ERROR)
			log_warnx("gateway: redis: %s", r->str);
		return;
	}
	if (call->sock != NULL)
		lws_dll2_remove(&call->node);
	call->fn(l->gw, call, r);
}

int
gw_call_send(struct gateway *gw, unsigned k, struct gw_call *call,
    struct gw_sock *sock, gw_call_fn *fn, int argc, const char **argv,
    const size_t *lens)
{
	struct gw_link *l = &gw->shards[k].req_link;

	if (!l->up || gw->stopping)
		return INBOX_EUNAVAIL;
	if (redisAsyncCommandArgv(l->ac, call_reply, call, argc, argv,
	    lens) != REDIS_OK)
		return INBOX_EUNAVAIL;
	call->fn = fn;
	call->sock = sock;
	lws_dll2_clear(&call->node);
	if (sock != NULL)
		lws_dll2_add_tail(&call->node, gw_sock_calls(sock));
	return 0;
}

int
gw_redis_send(struct gateway *gw, unsigned k, int argc, const char **argv)
{
	struct gw_link *l = &gw->shards[k].req_link;

	if (!l->up || gw->stopping)
		return INBOX_EUNAVAIL;
	if (redisAsyncCommandArgv(l->ac, call_reply, NULL, argc, argv,
	    NULL) != REDIS_OK)
		return INBOX_EUNAVAIL;
	return 0;
}

/* ---- following each shard's events ------------------------------------ */

static void
ev_retry_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_shard *sh = lws_container_of(sul, struct gw_shard, ev_retry);

	if (sh->ev_link.up && !sh->gw->stopping)
		ev_read(sh);
}

static void
ev_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gw_shard *sh = priv;
	struct gateway *gw = sh->gw;
	redisReply *r = reply;
	size_t before = gw->ring.head;

	(void)ac;
	if (r == NULL || gw->stopping)
		return;          /* the link went down: read again when up */
	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("gateway: XREAD %s: %s", sh->k_events, r->str);
		check_moved(ac, r);
		lws_sul_schedule(gw->lws, 0, &sh->ev_retry, ev_retry_cb,
		    RETRY_MS * LWS_US_PER_MS);
		return;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements == 2) {
		const redisReply *entries = r->element[0]->element[1];

		for (size_t i = 0; i < entries->elements; i++) {
			const redisReply *e = entries->element[i];

			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING)
				continue;
			snprintf(sh->ev_last, sizeof(sh->ev_last), "%s",
			    e->element[0]->str);
			gw_event_entry(gw, sh->k, sh->ev_last, e->element[1]);
		}
	}
	if (gw->ring.head != before)
		gw_events_arrived(gw);
	ev_read(sh);
}

/* The first connection: events start after the newest one now (older ones
 * come through `subscribe`). */
static void
ev_start_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gw_shard *sh = priv;
	struct gateway *gw = sh->gw;
	redisReply *r = reply;

	(void)ac;
	if (r == NULL || gw->stopping)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("gateway: XREVRANGE %s: %s", sh->k_events, r->str);
		check_moved(ac, r);
		lws_sul_schedule(gw->lws, 0, &sh->ev_retry, ev_retry_cb,
		    RETRY_MS * LWS_US_PER_MS);
		return;
	}
	snprintf(sh->ev_last, sizeof(sh->ev_last), "0-0");
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements == 2 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
		snprintf(sh->ev_last, sizeof(sh->ev_last), "%s",
		    r->element[0]->element[0]->str);
	ev_read(sh);
}

static void
ev_read(struct gw_shard *sh)
{
	redisAsyncContext *ac = sh->ev_link.ac;

	if (!sh->ev_link.up)
		return;
	if (sh->ev_last[0] == '\0') {
		const char *argv[] = { "XREVRANGE", sh->k_events, "+", "-",
		    "COUNT", "1" };

		redisAsyncCommandArgv(ac, ev_start_reply, sh, 6, argv, NULL);
		return;
	}
	{
		const char *argv[] = { "XREAD", "COUNT", XREAD_COUNT, "BLOCK",
		    XREAD_BLOCK_MS, "STREAMS", sh->k_events, sh->ev_last };

		redisAsyncCommandArgv(ac, ev_reply, sh, 8, argv, NULL);
	}
}

/* ---- start and stop ----------------------------------------------------- */

void
gw_redis_start(struct gateway *gw)
{
	for (unsigned k = 0; k < gw->nshards; k++) {
		link_init(&gw->shards[k], &gw->shards[k].req_link, "requests");
		link_init(&gw->shards[k], &gw->shards[k].ev_link, "events");
	}
}

void
gw_redis_stop(struct gateway *gw)
{
	for (unsigned k = 0; k < gw->nshards; k++) {
		struct gw_shard *sh = &gw->shards[k];

		lws_sul_cancel(&sh->ev_retry);
		lws_sul_cancel(&sh->req_link.retry);
		lws_sul_cancel(&sh->ev_link.retry);
		/* the request link after the replies still due (presence
		 * going offline); the event link at once (an XREAD BLOCK
		 * would hold a graceful disconnect for seconds) */
		if (sh->req_link.ac != NULL)
			redisAsyncDisconnect(sh->req_link.ac);
		if (sh->ev_link.ac != NULL) {
			redisAsyncContext *ac = sh->ev_link.ac;

			sh->ev_link.ac = NULL;
			sh->ev_link.up = false;
			redisAsyncFree(ac);
		}
	}
}

bool
gw_redis_idle(const struct gateway *gw)
{
	for (unsigned k = 0; k < gw->nshards; k++)
		if (gw->shards[k].req_link.ac != NULL ||
		    gw->shards[k].ev_link.ac != NULL)
			return false;
	return true;
}
