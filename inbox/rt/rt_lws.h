/* librt's libwebsockets glue, shared by the processes that serve HTTP. */
#ifndef INBOX_RT_RT_LWS_H
#define INBOX_RT_RT_LWS_H

#include <stdbool.h>

#include <libwebsockets.h>

/* Polls for SIGINT/SIGTERM (blocked by rt_sig_block) every 100 ms from the
 * lws loop; when one is pending, sets `stop` and wakes the loop. The struct
 * lives in the caller's context. */
struct rt_lws_stop {
	lws_sorted_usec_list_t sul;
	struct lws_context *lws;
	bool stop;
	/* called from the loop on SIGHUP (NULL: the signal is logged) */
	void (*hup)(void *arg);
	void *hup_arg;
};

void rt_lws_stop_start(struct rt_lws_stop *s, struct lws_context *lws);
/* Sends lws's own warnings and errors to our log (at debug level). */
void rt_lws_log_init(void);
/* Serves until a signal arrives. */
void rt_lws_serve(struct rt_lws_stop *s);

/* hiredis' async client on the lws loop (lws_redis.c). The context's
 * protocols must include RT_LWS_REDIS_PROTOCOL, which watches the Redis
 * sockets. */
#define RT_LWS_REDIS_PROTOCOL_NAME "rt-redis"
#define RT_LWS_REDIS_PROTOCOL \
	{ RT_LWS_REDIS_PROTOCOL_NAME, rt_lws_redis_callback, 0, 0, 0, NULL, 0 }
int rt_lws_redis_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);
struct redisAsyncContext;
/* Attaches an async context (just made by redisAsyncConnect*, before its
 * connect callback is set) to the loop of lws's default vhost. Returns
 * REDIS_OK or REDIS_ERR (logged). */
int rt_lws_redis_attach(struct redisAsyncContext *ac,
    struct lws_context *lws);

#endif
