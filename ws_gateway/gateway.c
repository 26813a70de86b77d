/*
 * The gateway's lws server: static files of the web client, POST /api/login,
 * and the websocket /ws?token=... One protocol handles both HTTP and the
 * websocket; each connection's user data is a `struct gw_sock`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "inbox/rt/metrics.h"
#include "inbox/rt/rt.h"
#include "inbox/rt/rt_lws.h"
#include "ws_gateway/gateway.h"
#include "ws_gateway/gateway_int.h"

#define LOGIN_BODY_MAX 4096
#define PENDING_MAX 64
#define PENDING_TIMEOUT_MS 15000
#define RX_MAX (64 * 1024)
#define QUEUE_MAX_BYTES (64u * 1024 * 1024)
/* Bytes of frames one write of a websocket carries. */
#define WRITE_BUDGET (16 * 1024)

struct gw_sock {
	struct lws *wsi;
	struct lws_dll2_owner calls;  /* Redis requests in flight for it */
	/* http */
	char *body;
	size_t len;
	bool too_large;
	bool logout;             /* the body is for /api/logout */
	bool plain;              /* the answer is text/plain (metrics) */
	bool waiting;            /* the answer comes with a Redis reply */
	int status;
	char *answer;            /* JSON, malloc'd */
	char extra_headers[160]; /* e.g. Retry-After */
	char *static_path;       /* a web client file to send, malloc'd */
	bool static_gz;          /* ... gzip-encoded */
	bool static_304;         /* ... not modified */
	/* websocket */
	bool ws;
	char login[65];
	char nonce[17];          /* the token's id */
	int64_t last_active;     /* ms of the last frame from the client */
	bool cut;                /* being closed for falling behind */
	struct lws_dll2 node;    /* in gw->sessions */
	uint64_t ring_next;
	struct gw_session_view view;
	struct gw_pos pos1;      /* view.pos with one shard (else heap) */
	struct gw_frame *q_head, *q_tail;   /* results and replays */
	size_t q_bytes;
	char *rx;
	size_t rx_len;
	bool rx_overflow;        /* dropping a message over RX_MAX */
	struct gw_pending *pend;  /* commands awaiting events: PENDING_MAX
	                           * slots, allocated with the first one (a
	                           * socket that only reads costs ~10 kB less) */
	size_t npend;
};

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);

static const struct lws_protocols protocols[] = {
	/* tx_packet_size: lws sends at most that much per send() (else
	 * rx_buffer_size, 4096) and buffers the rest */
	{ "inbox", callback, sizeof(struct gw_sock), 4096, 0, NULL,
	    WRITE_BUDGET + 4096 },
	RT_LWS_REDIS_PROTOCOL,   /* the Redis links' sockets */
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
conn_http_reset(struct gw_sock *c)
{
	free(c->body);
	free(c->answer);
	c->body = NULL;
	c->answer = NULL;
	c->len = 0;
	c->too_large = false;
	c->logout = false;
	c->plain = false;
	c->waiting = false;
	c->status = 0;
	c->extra_headers[0] = '\0';
	free(c->static_path);
	c->static_path = NULL;
}

static void
conn_ws_finish(struct gw_sock *c)
{
	struct gw_frame *f, *next;

	for (f = c->q_head; f != NULL; f = next) {
		next = f->next;
		free(f);
	}
	c->q_head = c->q_tail = NULL;
	c->q_bytes = 0;
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	for (size_t i = 0; i < c->npend; i++)
		free(c->pend[i].req);
	c->npend = 0;
	free(c->pend);
	c->pend = NULL;
	if (c->view.pos != &c->pos1)
		free(c->view.pos);
	c->view.pos = NULL;
}

/* The connection closes: the replies of its calls find no socket. */
static void
calls_detach(struct gw_sock *c)
{
	lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1,
	    lws_dll2_get_head(&c->calls)) {
		struct gw_call *call = lws_container_of(d, struct gw_call, node);

		lws_dll2_remove(d);
		call->sock = NULL;
	} lws_end_foreach_dll_safe(d, d1);
}

static void
enqueue(struct gw_sock *c, struct gw_frame *f)
{
	for (; f != NULL; f = f->next) {
		c->q_bytes += f->len;
		if (c->q_tail != NULL)
			c->q_tail->next = f;
		else
			c->q_head = f;
		c->q_tail = f;
		if (f->next == NULL)
			break;
	}
}

/* ---- HTTP ------------------------------------------------------------- */

static char *
metrics_text(struct gateway *gw)
{
	char *b = NULL;
	size_t len = 0;

	rt_metrics_printf(&b, &len,
	    "# TYPE inbox_gateway_sockets gauge\n"
	    "inbox_gateway_sockets %u\n"
	    "# TYPE inbox_gateway_agents_connected gauge\n"
	    "inbox_gateway_agents_connected %zu\n"
	    "# TYPE inbox_gateway_events_received_total counter\n"
	    "inbox_gateway_events_received_total %llu\n"
	    "# TYPE inbox_gateway_frames_sent_total counter\n"
	    "inbox_gateway_frames_sent_total %llu\n"
	    "# TYPE inbox_gateway_writes_total counter\n"
	    "inbox_gateway_writes_total %llu\n"
	    "# TYPE inbox_gateway_bytes_sent_total counter\n"
	    "inbox_gateway_bytes_sent_total %llu\n"
	    "# TYPE inbox_gateway_sockets_cut_total counter\n"
	    "inbox_gateway_sockets_cut_total %llu\n"
	    "# TYPE inbox_gateway_logins_total counter\n"
	    "inbox_gateway_logins_total{result=\"ok\"} %llu\n"
	    "inbox_gateway_logins_total{result=\"failed\"} %llu\n"
	    "inbox_gateway_logins_total{result=\"rate_limited\"} %llu\n",
	    (unsigned)gw->sessions.count, gw->nsocks,
	    (unsigned long long)gw->ring.head,
	    (unsigned long long)gw->m_frames, (unsigned long long)gw->m_writes,
	    (unsigned long long)gw->m_bytes,
	    (unsigned long long)gw->m_cut,
	    (unsigned long long)gw->m_logins_ok,
	    (unsigned long long)gw->m_logins_failed,
	    (unsigned long long)gw->m_logins_limited);
	return b;
}

static int
http_answer(struct lws *wsi, struct gw_sock *c)
{
	size_t n = strlen(c->answer);
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start,
	    *end = hdr + sizeof(hdr) - 1;
	unsigned char *buf = xmalloc(LWS_PRE + n);
	int rc = 0;

	memcpy(buf + LWS_PRE, c->answer, n);
	if (lws_add_http_common_headers(wsi, (unsigned)c->status, c->plain ?
	    "text/plain; version=0.0.4" : "application/json",
	    (lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
	    (const unsigned char *)"no-store", 8, &p, end) ||
	    (c->extra_headers[0] != '\0' && lws_add_http_header_by_name(wsi,
	    (const unsigned char *)"retry-after:", (const unsigned char *)
	    c->extra_headers, (int)strlen(c->extra_headers), &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end) ||
	    lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) != (int)n)
		rc = -1;
	free(buf);
	conn_http_reset(c);
	if (rc == 0 && lws_http_transaction_completed(wsi))
		rc = -1;
	return rc;
}

static void
set_answer(struct lws *wsi, struct gw_sock *c, int status, char *json)
{
	c->status = status;
	c->answer = json;
	lws_callback_on_writable(wsi);
}

static const char *
mime_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot == NULL)
		return "application/octet-stream";
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	if (strcmp(dot, ".png") == 0)
		return "image/png";
	if (strcmp(dot, ".ico") == 0)
		return "image/x-icon";
	return "application/octet-stream";
}

/* Sends the web client file the request asked for (from the cache). */
static int
static_answer(struct gateway *gw, struct lws *wsi, struct gw_sock *c)
{
	const struct gw_static *e = gw_static_get(gw, c->static_path);
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE, *p = start,
	    *end = hdr + sizeof(hdr) - 1;
	const char *body = NULL, *etag;
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc = 0;

	if (e == NULL) {
		conn_http_reset(c);
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	etag = gw_static_etag(e);
	if (!c->static_304)
		body = gw_static_body(e, c->static_gz, &n);
	if (lws_add_http_common_headers(wsi, c->static_304 ?
	    HTTP_STATUS_NOT_MODIFIED : HTTP_STATUS_OK, mime_of(c->static_path),
	    (lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ETAG,
	    (const unsigned char *)etag, (int)strlen(etag), &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
	    (const unsigned char *)"no-cache", 8, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
	    (const unsigned char *)"Accept-Encoding", 15, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)
	    "x-content-type-options:", (const unsigned char *)"nosniff", 7,
	    &p, end) ||
	    (c->static_gz && !c->static_304 && lws_add_http_header_by_token(wsi,
	    WSI_TOKEN_HTTP_CONTENT_ENCODING, (const unsigned char *)"gzip", 4,
	    &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end)) {
		rc = -1;
	} else if (n > 0) {
		buf = xmalloc(LWS_PRE + n);
		memcpy(buf + LWS_PRE, body, n);
		if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) !=
		    (int)n)
			rc = -1;
		free(buf);
	}
	conn_http_reset(c);
	if (rc == 0 && lws_http_transaction_completed(wsi))
		rc = -1;
	return rc;
}

/* A file of the web root; names are [A-Za-z0-9._-/] without "..". */
static int
serve_file(struct gateway *gw, struct lws *wsi, struct gw_sock *c,
    const char *uri)
{
	char path[4200], hv[256];
	const struct gw_static *e;

	if (strcmp(uri, "/") == 0)
		uri = "/index.html";
	if (strstr(uri, "..") != NULL || strspn(uri, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != strlen(uri) ||
	    snprintf(path, sizeof(path), "%s%s", gw->cfg->gateway_web_root,
	    uri) >= (int)sizeof(path) || (e = gw_static_get(gw, path)) == NULL) {
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	c->static_path = xstrdup(path);
	c->static_gz = lws_hdr_copy(wsi, hv, sizeof(hv),
	    WSI_TOKEN_HTTP_ACCEPT_ENCODING) > 0 && strstr(hv, "gzip") != NULL;
	c->static_304 = lws_hdr_copy(wsi, hv, sizeof(hv),
	    WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
	    strcmp(hv, gw_static_etag(e)) == 0;
	lws_callback_on_writable(wsi);
	return 0;
}

/* GET /api/blobs/<sha256 hex>?token=...&type=<mime>: an attachment's
 * bytes (the e-mail connector stores them by hash under store.blob_path);
 * for agents with a valid token. */
static int
serve_blob(struct gateway *gw, struct lws *wsi, const char *hex)
{
	static const char hdrs[] = "Content-Disposition: attachment\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Cache-Control: private, max-age=86400\r\n";
	char token[512], type[128], path[4300], login[65];
	const char *mime = "application/octet-stream";
	const char *t;
	int n;

	t = lws_get_urlarg_by_name(wsi, "token=", token, sizeof(token));
	if (t == NULL || !gw_token_check(gw, t, login, sizeof(login), NULL)) {
		if (lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED,
		    "invalid or missing token"))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64 ||
	    snprintf(path, sizeof(path), "%s/%.2s/%s", gw->cfg->blob_path, hex,
	    hex) >= (int)sizeof(path) || access(path, R_OK) != 0) {
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	t = lws_get_urlarg_by_name(wsi, "type=", type, sizeof(type));
	if (t != NULL && strchr(t, '/') != NULL && strspn(t,
	    "abcdefghijklmnopqrstuvwxyz0123456789.+-/") == strlen(t))
		mime = t;
	n = lws_serve_http_file(wsi, path, mime, hdrs, (int)strlen(hdrs));
	if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
		return -1;
	return 0;
}

static int
on_http(struct gateway *gw, struct lws *wsi, struct gw_sock *c, const char *uri)
{
	bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;

	conn_http_reset(c);
	if (strcmp(uri, "/healthz") == 0) {
		set_answer(wsi, c, gw->ready ? 200 : 503, xstrdup(gw->ready ?
		    "{\"ok\":true}" : "{\"ok\":false,\"error\":{\"code\":"
		    "\"starting\",\"message\":\"loading the revoked tokens\"}}"));
		return 0;
	}
	if (strcmp(uri, "/metrics") == 0) {
		set_answer(wsi, c, 200, metrics_text(gw));
		c->plain = true;
		return 0;
	}
	if (strcmp(uri, "/api/logout") == 0) {
		char auth[512];
		int status;

		if (!post) {
			set_answer(wsi, c, 405, xstrdup("{\"ok\":false,\"error\":"
			    "{\"code\":\"method_not_allowed\",\"message\":"
			    "\"use POST\"}}"));
			return 0;
		}
		/* the token comes as "Authorization: Bearer <token>" */
		if (lws_hdr_copy(wsi, auth, sizeof(auth),
		    WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
		    strncmp(auth, "Bearer ", 7) == 0) {
			char *json;

			if (!gw_logout(gw, c, auth + 7, &status, &json))
				set_answer(wsi, c, status, json);
			else
				c->waiting = true;
			return 0;
		}
		c->logout = true;        /* or as {"token": ...} in the body */
		return 0;
	}
	if (strcmp(uri, "/api/login") == 0) {
		char cl[32];

		if (!post) {
			set_answer(wsi, c, 405, xstrdup("{\"ok\":false,\"error\":"
			    "{\"code\":\"method_not_allowed\",\"message\":"
			    "\"use POST\"}}"));
			return 0;
		}
		if (lws_hdr_copy(wsi, cl, sizeof(cl),
		    WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 || atol(cl) <= 0) {
			set_answer(wsi, c, 400, xstrdup("{\"ok\":false,\"error\":"
			    "{\"code\":\"bad_request\",\"message\":"
			    "\"empty body\"}}"));
			return 0;
		}
		return 0; /* the body follows */
	}
	if (post) {
		set_answer(wsi, c, 404, xstrdup("{\"ok\":false,\"error\":"
		    "{\"code\":\"not_found\",\"message\":\"no such path\"}}"));
		return 0;
	}
	if (strncmp(uri, "/api/blobs/", 11) == 0)
		return serve_blob(gw, wsi, uri + 11);
	return serve_file(gw, wsi, c, uri);
}

/* ---- websocket -------------------------------------------------------- */

/* A websocket from a browser must come from a page of this gateway (or an
 * origin listed in gateway.origins): a page elsewhere cannot use an
 * agent's token through the agent's browser. */
static bool
origin_ok(struct gateway *gw, struct lws *wsi)
{
	char origin[256], host[256];
	const char *o = origin;

	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
		return true;     /* not a browser: the token decides */
	if (gw->cfg->gateway_origins != NULL &&
	    inbox_list_has(gw->cfg->gateway_origins, origin))
		return true;
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	if (strncmp(o, "http://", 7) == 0)
		o += 7;
	else if (strncmp(o, "https://", 8) == 0)
		o += 8;
	else
		return false;
	return strcmp(o, host) == 0;
}

static bool
ws_authorize(struct gateway *gw, struct lws *wsi, struct gw_sock *c)
{
	char uri[256], token[512];
	struct gw_token t;
	const char *v;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, "/ws") != 0)
		return false;
	if (!origin_ok(gw, wsi)) {
		log_info("gateway: websocket from a foreign origin refused");
		return false;
	}
	v = lws_get_urlarg_by_name(wsi, "token=", token, sizeof(token));
	if (v == NULL || !gw_token_check(gw, v, c->login, sizeof(c->login),
	    &t))
		return false;
	memcpy(c->nonce, t.nonce, sizeof(c->nonce));
	return true;
}

/* Closes another websocket than the one whose callback runs. */
static void
sock_close(struct gw_sock *c, int status, const char *reason)
{
	lws_close_reason(c->wsi, (enum lws_close_status)status,
	    (unsigned char *)reason, strlen(reason));
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

void
gw_sessions_revoke(struct gateway *gw, const char *nonce)
{
	lws_start_foreach_dll(struct lws_dll2 *, d,
	    lws_dll2_get_head(&gw->sessions)) {
		struct gw_sock *c = lws_container_of(d, struct gw_sock, node);

		if (strcmp(c->nonce, nonce) == 0)
			sock_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			    "logged out");
	} lws_end_foreach_dll(d);
}

static void
queue_text(struct gw_sock *c, const char *text)
{
	enqueue(c, gw_frame_new(text, strlen(text)));
}

static int
ws_receive(struct gateway *gw, struct lws *wsi, struct gw_sock *c,
    const void *in, size_t len)
{
	struct gw_frame *replay = NULL;
	struct gw_pending slot;
	char *answer;

	if (!c->rx_overflow && c->rx_len + len > RX_MAX) {
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
		c->rx_overflow = true;
	}
	if (c->rx_overflow) {
		/* Drop the message to its last fragment, then say why. */
		if (!lws_is_final_fragment(wsi))
			return 0;
		c->rx_overflow = false;
		queue_text(c, "{\"type\":\"result\",\"req\":null,\"ok\":false,"
		    "\"error\":{\"code\":\"too_large\",\"message\":"
		    "\"message over 65536 bytes\"}}");
		lws_callback_on_writable(wsi);
		return 0;
	}
	c->rx = xrealloc(c->rx, c->rx_len + len + 1);
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(wsi))
		return 0;
	if (c->npend == PENDING_MAX) {
		queue_text(c, "{\"type\":\"result\",\"req\":null,\"ok\":false,"
		    "\"error\":{\"code\":\"too_many\",\"message\":"
		    "\"too many commands awaiting their answer\"}}");
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
		lws_callback_on_writable(wsi);
		return 0;
	}
	memset(&slot, 0, sizeof(slot));
	answer = gw_request(gw, c->rx, c->rx_len, &c->view, c, &replay, &slot);
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	enqueue(c, replay);
	if (answer == NULL && slot.cmd_id[0] == '\0')
		return 0;        /* answered when Redis replies */
	if (answer == NULL) {
		/* answered when its event comes by */
		if (c->pend == NULL)
			c->pend = xcalloc(PENDING_MAX, sizeof(*c->pend));
		c->pend[c->npend++] = slot;
		lws_set_timer_usecs(wsi, (lws_usec_t)PENDING_TIMEOUT_MS * 1000);
		return 0;
	}
	queue_text(c, answer);
	free(answer);
	if (c->q_bytes > QUEUE_MAX_BYTES) {
		log_warnx("gateway: %s: answers pile up unread; closing",
		    c->login);
		return -1;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* Answers the commands that waited too long for the router (it is down or
 * far behind): the command may still be applied later, and its event will
 * show it. */
static void
expire_pending(struct lws *wsi, struct gw_sock *c)
{
	int64_t now = rt_now_ms(), next = 0;

	for (size_t i = 0; i < c->npend;) {
		struct gw_pending *p = &c->pend[i];
		size_t n = strlen(p->req) + 256;
		char *buf;

		if (now - p->since < PENDING_TIMEOUT_MS) {
			int64_t left = PENDING_TIMEOUT_MS - (now - p->since);

			if (next == 0 || left < next)
				next = left;
			i++;
			continue;
		}
		buf = xmalloc(n);
		snprintf(buf, n, "{\"type\":\"result\",\"req\":%s,"
		    "\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":"
		    "\"the router did not answer within %d s; the command may "
		    "still be applied\"}}", p->req, PENDING_TIMEOUT_MS / 1000);
		queue_text(c, buf);
		free(buf);
		free(p->req);
		*p = c->pend[--c->npend];
	}
	if (next > 0)
		lws_set_timer_usecs(wsi, (lws_usec_t)next * 1000);
	lws_callback_on_writable(wsi);
}

/* Queues the result of the pending command e answers, if any. */
static bool
answer_pending(struct gw_sock *c, const struct gw_frame *e)
{
	for (size_t i = 0; i < c->npend; i++) {
		if (strcmp(c->pend[i].cmd_id, e->cmd_id) != 0)
			continue;
		enqueue(c, gw_command_result(&c->pend[i], e));
		free(c->pend[i].req);
		c->pend[i] = c->pend[--c->npend];
		return true;
	}
	return false;
}

/* The next frame for c: its queue first (answers, replays), then the
 * events of the ring it may see. Sets *f (NULL: nothing to send); returns
 * -1 when the socket fell behind the ring and is closed with resync. */
static int
next_frame(struct gateway *gw, struct lws *wsi, struct gw_sock *c,
    struct gw_frame **f)
{
	*f = c->q_head;
	while (*f == NULL && c->view.replaying == 0 &&
	    c->ring_next < gw->ring.head) {
		struct gw_frame *e;
		struct gw_pos *pos;

		if (gw->ring.head - c->ring_next > gw->ring.size) {
			log_warnx("gateway: %s fell %llu events behind; closing "
			    "(it resubscribes from its last seq)", c->login,
			    (unsigned long long)(gw->ring.head - c->ring_next));
			lws_close_reason(wsi, (enum lws_close_status)4000,
			    (unsigned char *)"resync", 6);
			return -1;
		}
		e = gw->ring.slots[c->ring_next++ % gw->ring.size];
		if (e->cmd_id[0] != '\0' && answer_pending(c, e))
			*f = c->q_head;
		if (!gw_frame_visible_to(gw, e, &c->view))
			continue;
		/* sent already: live, or replayed by a subscribe (which may
		 * come before the first live event: an event that reached the
		 * ring while the subscribe read the stream is in both) */
		pos = &c->view.pos[e->shard];
		if (gw_seq_cmp(e->seq, pos->last) <= 0)
			continue;
		if (!pos->live_sent) {
			pos->first_live = e->seq;
			pos->live_sent = true;
		}
		pos->last = e->seq;
		*f = e;
	}
	return 0;
}

/* The header of an unmasked text frame of len bytes (RFC 6455 5.2) into
 * h (10 bytes at most); returns its length. */
static size_t
ws_text_header(unsigned char *h, size_t len)
{
	h[0] = 0x81;             /* FIN, text */
	if (len < 126) {
		h[1] = (unsigned char)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

/* Writes what the socket is due, up to WRITE_BUDGET bytes (one frame may
 * go past it), as whole frames in one write: a socket behind by many
 * events costs one send() for all of them instead of one per frame and
 * writeable callback. lws keeps what the kernel did not take and calls
 * again once that is out, so at most a budget waits per socket. (lws has
 * no call for several frames; its raw write sends bytes as they are, and
 * the gateway negotiates no extension that would change the framing.) */
static int
ws_writeable(struct gateway *gw, struct lws *wsi, struct gw_sock *c)
{
	struct gw_frame *f;
	size_t used = 0, frames = 0;

	while (used < WRITE_BUDGET) {
		if (next_frame(gw, wsi, c, &f) != 0)
			return -1;
		if (f == NULL)
			break;
		if (gw->wbuf_size < used + f->len + 10) {
			gw->wbuf_size = used + f->len + 10 > 2 * gw->wbuf_size ?
			    used + f->len + 10 : 2 * gw->wbuf_size;
			gw->wbuf = xrealloc(gw->wbuf, gw->wbuf_size);
		}
		used += ws_text_header(gw->wbuf + used, f->len);
		memcpy(gw->wbuf + used, f->buf + LWS_PRE, f->len);
		used += f->len;
		frames++;
		gw->m_bytes += f->len;
		if (f == c->q_head) {
			c->q_head = f->next;
			if (c->q_head == NULL)
				c->q_tail = NULL;
			c->q_bytes -= f->len;
			free(f);
		}
	}
	if (used == 0)
		return 0;
	if (lws_write(wsi, gw->wbuf, used, LWS_WRITE_RAW) < (int)used)
		return -1;
	gw->m_frames += frames;
	gw->m_writes++;
	if (c->q_head != NULL || (c->view.replaying == 0 &&
	    c->ring_next < gw->ring.head))
		lws_callback_on_writable(wsi);
	return 0;
}

void
gw_sock_result(struct gw_sock *c, struct gw_frame *replay, char *json)
{
	enqueue(c, replay);
	queue_text(c, json);
	free(json);
	lws_callback_on_writable(c->wsi);
}

void
gw_sock_http(struct gw_sock *c, int status, char *json)
{
	set_answer(c->wsi, c, status, json);
}

struct gw_session_view *
gw_sock_view(struct gw_sock *c)
{
	return &c->view;
}

struct lws_dll2_owner *
gw_sock_calls(struct gw_sock *c)
{
	return &c->calls;
}

void
gw_sock_cmd_failed(struct gw_sock *c, const char *cmd_id, const char *message)
{
	for (size_t i = 0; i < c->npend; i++) {
		struct gw_pending *p = &c->pend[i];
		size_t n;
		char *buf;

		if (strcmp(p->cmd_id, cmd_id) != 0)
			continue;
		n = strlen(p->req) + strlen(message) + 128;
		buf = xmalloc(n);
		snprintf(buf, n, "{\"type\":\"result\",\"req\":%s,\"ok\":false,"
		    "\"error\":{\"code\":\"unavailable\",\"message\":\"%s\"}}",
		    p->req, message);
		queue_text(c, buf);
		free(buf);
		free(p->req);
		*p = c->pend[--c->npend];
		lws_callback_on_writable(c->wsi);
		return;
	}
}

/* Events reached the ring: one walk over the websockets wakes each to send
 * them. A socket that does not read (its send buffer full) is never
 * writeable, so it is checked here: one the ring has overtaken is closed
 * with "resync" (4000); it comes back and subscribes from its last seq.
 * Memory stays bounded by the ring. */
void
gw_events_arrived(struct gateway *gw)
{
	lws_start_foreach_dll(struct lws_dll2 *, d,
	    lws_dll2_get_head(&gw->sessions)) {
		struct gw_sock *c = lws_container_of(d, struct gw_sock, node);

		if (c->cut)
			continue;
		if (gw->ring.head - c->ring_next > gw->ring.size) {
			log_warnx("gateway: %s fell %llu events behind; closing "
			    "(resync)", c->login, (unsigned long long)
			    (gw->ring.head - c->ring_next));
			c->cut = true;
			gw->m_cut++;
			sock_close(c, 4000, "resync");
		} else {
			lws_callback_on_writable(c->wsi);
		}
	} lws_end_foreach_dll(d);
}

void
gw_typing(struct gateway *gw, const char *login, uint64_t conv_id,
    const char *connector, const char *assignee)
{
	char text[256];

	snprintf(text, sizeof(text), "{\"type\":\"event\",\"event\":"
	    "\"typing\",\"data\":{\"conversation_id\":%llu,\"login\":"
	    "\"%s\"}}", (unsigned long long)conv_id, login);
	lws_start_foreach_dll(struct lws_dll2 *, d,
	    lws_dll2_get_head(&gw->sessions)) {
		struct gw_sock *c = lws_container_of(d, struct gw_sock, node);

		if (strcmp(c->login, login) != 0 && !c->cut &&
		    c->q_bytes < QUEUE_MAX_BYTES &&
		    gw_view_sees(gw, &c->view, connector, assignee)) {
			queue_text(c, text);
			lws_callback_on_writable(c->wsi);
		}
	} lws_end_foreach_dll(d);
}


static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct gateway *gw = lws_context_user(lws_get_context(wsi));
	struct gw_sock *c = user;
	int status;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		c->wsi = wsi;
		return on_http(gw, wsi, c, in);
	case LWS_CALLBACK_HTTP_BODY:
		if (c->too_large || c->status != 0 || c->waiting || len == 0)
			return 0;
		if (c->len + len > LOGIN_BODY_MAX) {
			c->too_large = true;
			return 0;
		}
		c->body = xrealloc(c->body, c->len + len + 1);
		memcpy(c->body + c->len, in, len);
		c->len += len;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (c->status != 0 || c->waiting)
			return 0;
		if (c->too_large) {
			set_answer(wsi, c, 413, xstrdup("{\"ok\":false,\"error\":"
			    "{\"code\":\"too_large\",\"message\":"
			    "\"body too large\"}}"));
			return 0;
		}
		if (c->logout) {
			cJSON *b = cJSON_ParseWithLength(c->body ? c->body : "",
			    c->len);
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(b,
			    "token");
			char *json;

			if (!gw_logout(gw, c, cJSON_IsString(t) ?
			    t->valuestring : NULL, &status, &json))
				set_answer(wsi, c, status, json);
			else
				c->waiting = true;
			cJSON_Delete(b);
			return 0;
		}
		{
			char addr[64] = "";
			int64_t retry = 0;
			char *json;

			lws_get_peer_simple(wsi, addr, sizeof(addr));
			json = gw_login(gw, c->body ? c->body : "", c->len, addr,
			    &status, &retry);
			if (status == 200)
				gw->m_logins_ok++;
			else if (status == 429)
				gw->m_logins_limited++;
			else if (status == 401)
				gw->m_logins_failed++;
			if (retry > 0)
				snprintf(c->extra_headers,
				    sizeof(c->extra_headers), "%lld",
				    (long long)retry);
			set_answer(wsi, c, status, json);
		}
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (c->static_path != NULL)
			return static_answer(gw, wsi, c);
		if (c->answer == NULL)
			return 0;
		return http_answer(wsi, c);
	case LWS_CALLBACK_CLOSED_HTTP:
		/* also for a connection that closed before it had user data
		 * (a TLS handshake that failed) */
		if (c != NULL) {
			calls_detach(c);
			conn_http_reset(c);
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (!gw->ready) {
			lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    "starting: try again in a moment");
			return -1;
		}
		if (!ws_authorize(gw, wsi, c)) {
			lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED,
			    "invalid or missing token");
			return -1;
		}
		/* a leaked token or a runaway tab cannot take every socket */
		if (gw->cfg->gateway_max_agent_socks > 0 &&
		    gw_presence_count(gw, c->login) >=
		    (unsigned)gw->cfg->gateway_max_agent_socks) {
			log_warnx("gateway: %s already has %d websockets open: "
			    "one more refused (gateway.max_sockets_per_agent)",
			    c->login, gw->cfg->gateway_max_agent_socks);
			lws_return_http_status(wsi, 429, "too many websockets "
			    "for this agent");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		c->wsi = wsi;
		c->ws = true;
		c->ring_next = gw->ring.head;
		memset(&c->view, 0, sizeof(c->view));
		memset(&c->pos1, 0, sizeof(c->pos1));
		c->view.pos = gw->nshards == 1 ? &c->pos1 :
		    xcalloc(gw->nshards, sizeof(*c->view.pos));
		c->view.login = c->login;
		gw_view_load(gw, &c->view);
		c->last_active = rt_now_ms();
		lws_dll2_add_tail(&c->node, &gw->sessions);
		log_info("gateway: %s connected", c->login);
		gw_presence_open(gw, c->login);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		c->last_active = rt_now_ms();
		gw_presence_activity(gw, c->login);
		return ws_receive(gw, wsi, c, in, len);
	case LWS_CALLBACK_TIMER:
		if (c != NULL && c->ws)
			expire_pending(wsi, c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_writeable(gw, wsi, c);
	case LWS_CALLBACK_CLOSED:
		if (c == NULL)
			return 0;
		log_info("gateway: %s disconnected", c->login);
		calls_detach(c);
		conn_ws_finish(c);
		if (c->ws) {
			c->ws = false;
			lws_dll2_remove(&c->node);
			gw_presence_close(gw, c->login);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const lws_retry_bo_t keepalive = {
	.secs_since_valid_ping = 30,
	.secs_since_valid_hangup = 60,
};

/* lws's own loop (poll) serves the sockets and the Redis links: measured
 * twice as fast as lws on a libuv loop for the fan-out (docs/
 * performance.md), where every change of a socket's POLLOUT is an
 * epoll_ctl. */
struct gateway *
gateway_create(const struct inbox_config *cfg)
{
	struct lws_context_creation_info info;
	struct gateway *gw;
	struct store_txn *txn;

	gw = xcalloc(1, sizeof(*gw));
	gw->cfg = cfg;
	gw->nshards = (unsigned)cfg->redis_shards;
	gw->shards = xcalloc(gw->nshards, sizeof(*gw->shards));
	for (unsigned k = 0; k < gw->nshards; k++) {
		struct gw_shard *sh = &gw->shards[k];

		sh->gw = gw;
		sh->k = k;
		rt_key_shard(sh->k_events, sizeof(sh->k_events), cfg, k,
		    "events");
		rt_key_shard(sh->k_cmd, sizeof(sh->k_cmd), cfg, k, "cmd");
		rt_key_shard(sh->k_sla, sizeof(sh->k_sla), cfg, k, "sla");
	}
	rt_key(gw->k_revoked, sizeof(gw->k_revoked), cfg, "revoked");
	snprintf(gw->cmd_prefix, sizeof(gw->cmd_prefix), "gw%ld.%lld",
	    (long)getpid(), (long long)rt_now_ms());
	gw->ring.size = (size_t)cfg->gateway_ring_size;
	gw->ring.slots = xcalloc(gw->ring.size, sizeof(*gw->ring.slots));
	if (sodium_init() < 0 || gw_secret_load(gw) != 0)
		goto err;
	rt_lws_log_init();
	/* every agent tab is a socket: take all the descriptors allowed
	 * (lws sizes its table from the limit when the context starts) */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				log_warn("gateway: cannot raise the file limit");
		}
	}
	memset(&info, 0, sizeof(info));
	info.port = cfg->gateway_port;
	info.iface = cfg->gateway_listen;
	info.protocols = protocols;
	info.user = gw;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 |
	    LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.timeout_secs = 30;
	/* keep-alive: lws pings a websocket idle 30 s and drops one that
	 * has not answered within 60 s */
	info.retry_and_idle_policy = &keepalive;
	if (cfg->gateway_tls_cert != NULL) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->gateway_tls_cert;
		info.ssl_private_key_filepath = cfg->gateway_tls_key;
	}
	if ((gw->lws = lws_create_context(&info)) == NULL) {
		log_warnx("gateway: cannot listen on %s:%d", cfg->gateway_listen,
		    cfg->gateway_port);
		goto err;
	}
	/* the stores may not exist yet: opened again on first use */
	for (unsigned k = 0; k < gw->nshards; k++)
		if (gw_txn(gw, k, &txn) == 0)
			store_txn_abort(txn);
	return gw;

err:
	gw_ring_finish(&gw->ring);
	free(gw->shards);
	free(gw);
	return NULL;
}

void
gw_ready(struct gateway *gw)
{
	lws_sul_cancel(&gw->start_sul);
	if (gw->ready)
		return;
	gw->ready = true;
	log_info("gateway ready: http://%s:%d/", gw->cfg->gateway_listen,
	    gw->cfg->gateway_port);
}

/* Redis did not answer in time: serve without the revocations (loaded
 * when it is back). */
static void
start_timeout(lws_sorted_usec_list_t *sul)
{
	struct gateway *gw = lws_container_of(sul, struct gateway, start_sul);

	if (!gw->ready) {
		log_warnx("gateway: redis unreachable: serving without the "
		    "list of revoked tokens until it is back");
		gw_ready(gw);
	}
}

/* SIGHUP: the new configuration applies to what is read per request
 * (visibility, origins, away time, token lifetime); sockets stay open.
 * The old one stays alive while anything may still point into it. */
static void
reload(void *arg)
{
	struct gateway *gw = arg;
	struct inbox_config *cfg = rt_config_reload(gw->cfg);

	if (cfg == NULL)
		return;
	gw->reloaded = xrealloc(gw->reloaded, (gw->nreloaded + 1) *
	    sizeof(*gw->reloaded));
	gw->reloaded[gw->nreloaded++] = cfg;
	gw->cfg = cfg;
}

int
gateway_run(struct gateway *gw)
{
	int ms = gw->cfg->redis_timeout_ms > 0 ? gw->cfg->redis_timeout_ms :
	    1000;
	int64_t until;

	gw->stop.hup = reload;
	gw->stop.hup_arg = gw;
	rt_lws_stop_start(&gw->stop, gw->lws);
	lws_sul_schedule(gw->lws, 0, &gw->start_sul, start_timeout,
	    (lws_usec_t)ms * LWS_US_PER_MS);
	gw_redis_start(gw);
	gw_presence_start(gw);
	rt_lws_serve(&gw->stop);
	/* SIGTERM: say the agents of this gateway went offline, then let
	 * the request link deliver what is due (a second at most) */
	log_info("gateway: stopping");
	gw_presence_finish(gw);
	gw->stopping = true;
	gw_redis_stop(gw);
	until = rt_now_ms() + 1000;
	while (!gw_redis_idle(gw) && rt_now_ms() < until &&
	    lws_service(gw->lws, 0) >= 0)
		;
	return 0;
}

void
gateway_destroy(struct gateway *gw)
{
	if (gw == NULL)
		return;
	gw_presence_finish(gw);
	lws_context_destroy(gw->lws);
	gw_login_finish(gw);
	gw_static_finish(gw);
	gw_revocations_finish(gw);
	gw_ring_finish(&gw->ring);
	free(gw->wbuf);
	for (unsigned k = 0; k < gw->nshards; k++)
		store_close(gw->shards[k].store);
	free(gw->shards);
	sodium_memzero(gw->secret, sizeof(gw->secret));
	for (size_t i = 0; i < gw->nreloaded; i++) {
		inbox_config_finish(gw->reloaded[i]);
		free(gw->reloaded[i]);
	}
	free(gw->reloaded);
	free(gw);
}
