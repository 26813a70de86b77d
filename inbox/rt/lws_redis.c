/*
 * hiredis' async client on the lws loop: the five hooks of a hiredis event
 * adapter (as adapters/ae.h has them) over an lws "raw file" wsi that
 * watches the Redis socket. lws polls a dup() of the descriptor, so lws and
 * hiredis each close their own.
 */
#include <stdlib.h>
#include <unistd.h>

#include <hiredis/async.h>

#include "inbox/rt/rt.h"
#include "inbox/rt/rt_lws.h"

struct rt_lws_redis {
	redisAsyncContext *ac;   /* NULL once hiredis let go */
	struct lws *wsi;         /* NULL once lws closed it */
	bool in_callback;        /* inside one of this wsi's callbacks */
};

static void
add_read(void *priv)
{
	(void)priv;              /* lws always watches for input */
}

static void
del_read(void *priv)
{
	(void)priv;
}

static void
add_write(void *priv)
{
	struct rt_lws_redis *a = priv;

	if (a->wsi != NULL)
		lws_callback_on_writable(a->wsi);
}

static void
del_write(void *priv)
{
	(void)priv;              /* lws drops POLLOUT after each callback */
}

/* hiredis is done with the connection: the wsi goes too (at once when
 * inside its callback, else when lws services its timeouts next). */
static void
cleanup(void *priv)
{
	struct rt_lws_redis *a = priv;

	a->ac = NULL;
	if (a->wsi == NULL) {
		free(a);
		return;
	}
	if (!a->in_callback)
		lws_set_timeout(a->wsi, PENDING_TIMEOUT_CLOSE_SEND,
		    LWS_TO_KILL_ASYNC);
}

int
rt_lws_redis_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct rt_lws_redis *a = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	if (a == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (a->ac == NULL)
			return -1;
		a->in_callback = true;
		if (reason == LWS_CALLBACK_RAW_RX_FILE)
			redisAsyncHandleRead(a->ac);
		else
			redisAsyncHandleWrite(a->ac);
		a->in_callback = false;
		return a->ac == NULL ? -1 : 0;   /* hiredis disconnected */
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		lws_set_opaque_user_data(wsi, NULL);
		a->wsi = NULL;
		if (a->ac == NULL) {
			free(a);
			return 0;
		}
		/* lws dropped it (a hang-up, or the context goes): so does
		 * hiredis (its disconnect callback runs; cleanup frees a) */
		redisAsyncFree(a->ac);
		return 0;
	default:
		return 0;
	}
}

int
rt_lws_redis_attach(redisAsyncContext *ac, struct lws_context *lws)
{
	struct lws_vhost *vh = lws_get_vhost_by_name(lws, "default");
	struct rt_lws_redis *a;
	lws_sock_file_fd_type fd;

	if (ac->ev.data != NULL || vh == NULL)
		return REDIS_ERR;
	if ((fd.filefd = dup(ac->c.fd)) < 0) {
		log_warn("redis: dup");
		return REDIS_ERR;
	}
	a = xcalloc(1, sizeof(*a));
	a->ac = ac;
	a->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd,
	    RT_LWS_REDIS_PROTOCOL_NAME, NULL);
	if (a->wsi == NULL) {
		log_warnx("redis: lws cannot watch the connection");
		close(fd.filefd);
		free(a);
		return REDIS_ERR;
	}
	lws_set_opaque_user_data(a->wsi, a);
	ac->ev.data = a;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	/* the connect completes when the socket is writeable */
	lws_callback_on_writable(a->wsi);
	return REDIS_OK;
}
