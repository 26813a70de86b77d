/*
 * The webhooks HTTP server (libwebsockets). A request's body is decoded by
 * its channel; the envelopes of every request completed in one service pass
 * are appended to inbox:in in one pipelined round trip (a zero-delay timer
 * runs after the pass), and each request is answered 2xx only after its
 * XADDs succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "connectors/common/connector.h"
#include "connectors/webhooks/channel.h"
#include "connectors/webhooks/out.h"
#include "connectors/webhooks/webhooks.h"
#include "inbox/rt/rt.h"
#include "inbox/rt/rt_lws.h"

#define BODY_MAX_ANSWER WH_ANSWER_MAX
#define SIG_MAX 512

/* Where one shard's envelopes go. */
struct wh_shard {
	redisContext *redis;
	char k_in[128];
};

struct webhooks {
	const struct inbox_config *cfg;
	struct wh_conn *conns;           /* one per configured connector */
	char **tokens;                   /* read from token_file, owned */
	struct wh_out *out;              /* outbound delivery (out.c) */
	struct lws_context *lws;
	struct wh_shard *shards;         /* one per redis.shards */
	unsigned nshards;
	lws_sorted_usec_list_t flush_sul;
	struct rt_lws_stop stop;
	struct lws_dll2_owner waiting;   /* requests decoded, not yet XADDed */
	/* counters for /metrics */
	uint64_t m_answers[6];           /* by status class: [2] = 2xx */
	uint64_t m_envelopes;            /* appended to inbox:in */
};

/* Per connection (reused across keep-alive requests). */
struct req {
	struct lws *wsi;
	struct webhooks *wh;
	const struct inbox_connector_conf *cc;
	const struct wh_conn *conn;
	const struct wh_channel_impl *impl;
	struct lws_dll2 list;
	char *body;
	size_t len, cap;
	bool too_large;
	bool close_after;
	struct wh_envelopes envs;
	bool stored;             /* its XADDs succeeded (flush) */
	char stored_id[64];      /* the stream id of its last one */
	char authorization[512];
	bool has_auth;
	char signature[SIG_MAX];
	bool has_sig;
	/* the answer */
	int status;
	const char *content_type;
	char answer[LWS_PRE + BODY_MAX_ANSWER];
	size_t answer_len;
};

const struct wh_channel_impl *
wh_channel_find(enum inbox_channel ch)
{
	static const struct wh_channel_impl *const impls[] = {
		&wh_channel_api, &wh_channel_telegram, &wh_channel_whatsapp,
		&wh_channel_messenger, &wh_channel_instagram, &wh_channel_vk,
		&wh_channel_viber,
	};

	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
		if (impls[i]->channel == ch)
			return impls[i];
	}
	return NULL;
}

void
wh_envelopes_add(struct wh_envelopes *e, char *json, uint32_t hash)
{
	e->json = xrealloc(e->json, (e->n + 1) * sizeof(char *));
	e->hash = xrealloc(e->hash, (e->n + 1) * sizeof(uint32_t));
	e->hash[e->n] = hash;
	e->json[e->n++] = json;
}

void
wh_envelopes_finish(struct wh_envelopes *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->json[i]);
	free(e->json);
	free(e->hash);
	e->json = NULL;
	e->hash = NULL;
	e->n = 0;
}

static void
json_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

/* Sets the answer and asks for a writeable callback to send it. */
static void
answer(struct req *r, int status, const char *code, const char *field,
    const char *message)
{
	char *body = r->answer + LWS_PRE;
	char esc_msg[512], esc_field[160];

	r->status = status;
	r->content_type = "application/json";
	if (status >= 100 && status < 600)
		r->wh->m_answers[status / 100]++;
	if (code == NULL) {
		snprintf(body, BODY_MAX_ANSWER, "{\"ok\":true,\"id\":\"%s\"}",
		    message);
	} else {
		json_escape(esc_msg, sizeof(esc_msg), message);
		json_escape(esc_field, sizeof(esc_field), field ? field : "");
		if (field != NULL && *field)
			snprintf(body, BODY_MAX_ANSWER, "{\"ok\":false,\"error\":"
			    "{\"code\":\"%s\",\"field\":\"%s\",\"message\":\"%s\"}}",
			    code, esc_field, esc_msg);
		else
			snprintf(body, BODY_MAX_ANSWER, "{\"ok\":false,\"error\":"
			    "{\"code\":\"%s\",\"message\":\"%s\"}}", code, esc_msg);
	}
	r->answer_len = strlen(body);
	lws_callback_on_writable(r->wsi);
}

static void
req_reset(struct req *r)
{
	lws_dll2_remove(&r->list);
	free(r->body);
	wh_envelopes_finish(&r->envs);
	r->body = NULL;
	r->len = r->cap = 0;
	r->too_large = false;
	r->close_after = false;
	r->cc = NULL;
	r->impl = NULL;
	r->conn = NULL;
	r->status = 0;
	r->has_auth = false;
	r->has_sig = false;
}

/* A plain-text answer (a platform's handshake or its "ok"). */
static void
answer_text(struct req *r, int status, const char *text)
{
	r->status = status;
	r->content_type = "text/plain";
	if (status >= 100 && status < 600)
		r->wh->m_answers[status / 100]++;
	snprintf(r->answer + LWS_PRE, BODY_MAX_ANSWER, "%s", text);
	r->answer_len = strlen(r->answer + LWS_PRE);
	lws_callback_on_writable(r->wsi);
}

static const struct wh_conn *
conn_of(const struct webhooks *wh, const struct inbox_connector_conf *cc)
{
	return &wh->conns[cc - wh->cfg->connectors];
}

static const char *
query_arg(const struct wh_request *req, const char *name, char *buf,
    size_t len)
{
	char key[80];
	const char *v;

	snprintf(key, sizeof(key), "%s=", name);
	v = lws_get_urlarg_by_name(req->ctx, key, buf, (int)len);
	return v;
}

static bool
redis_ready(struct webhooks *wh, struct wh_shard *sh, unsigned k)
{
	if (sh->redis == NULL)
		sh->redis = rt_redis_connect_shard(wh->cfg, k);
	return sh->redis != NULL;
}

static void
drop_redis(struct wh_shard *sh)
{
	log_warnx("webhooks: lost redis (%s): %s", sh->k_in, sh->redis->err ?
	    sh->redis->errstr : "the server is a replica now");
	redisFree(sh->redis);
	sh->redis = NULL;
}

static unsigned
env_shard(const struct webhooks *wh, const struct req *r, size_t i)
{
	return wh->nshards > 1 ? r->envs.hash[i] % wh->nshards : 0;
}

/* Appends shard k's envelopes of every waiting request in one round trip
 * (with redis.min_replicas > 0, one WAIT after them all); a request with
 * one of them that failed is not stored. */
static void
flush_shard(struct webhooks *wh, unsigned k)
{
	struct wh_shard *sh = &wh->shards[k];
	struct lws_dll2 *d;
	bool ok = true, waited = false, moved = false;
	size_t appended = 0;

	for (d = wh->waiting.head; d != NULL && ok; d = d->next) {
		struct req *r = lws_container_of(d, struct req, list);

		for (size_t i = 0; i < r->envs.n; i++) {
			const char *argv[] = { "XADD", sh->k_in, "*", "env",
			    r->envs.json[i] };

			if (env_shard(wh, r, i) != k)
				continue;
			if (appended == 0 && !redis_ready(wh, sh, k)) {
				ok = false;
				break;
			}
			redisAppendCommandArgv(sh->redis, 5, argv, NULL);
			appended++;
		}
	}
	if (appended > 0)
		waited = rt_wait_append(sh->redis, wh->cfg);
	for (d = wh->waiting.head; d != NULL; d = d->next) {
		struct req *r = lws_container_of(d, struct req, list);

		for (size_t i = 0; i < r->envs.n; i++) {
			redisReply *rep = NULL;

			if (env_shard(wh, r, i) != k)
				continue;
			if (!ok) {
				r->stored = false;
				continue;
			}
			if (redisGetReply(sh->redis, (void **)&rep) !=
			    REDIS_OK) {
				drop_redis(sh);
				ok = r->stored = false;
				continue;
			}
			if (rep->type == REDIS_REPLY_STRING)
				snprintf(r->stored_id, sizeof(r->stored_id),
				    "%s", rep->str);
			else
				r->stored = false;
			if (rep->type == REDIS_REPLY_ERROR)
				log_warnx("webhooks: XADD: %s", rep->str);
			moved = moved || rt_reply_is_moved(rep);
			freeReplyObject(rep);
		}
	}
	if (waited && ok && rt_wait_reply(sh->redis, wh->cfg) != 0) {
		/* not replicated: none of this shard's counts as stored */
		for (d = wh->waiting.head; d != NULL; d = d->next) {
			struct req *r = lws_container_of(d, struct req, list);

			for (size_t i = 0; i < r->envs.n; i++)
				if (env_shard(wh, r, i) == k)
					r->stored = false;
		}
		if (sh->redis->err)
			drop_redis(sh);
	}
	if (moved && sh->redis != NULL)
		drop_redis(sh);  /* the keys are elsewhere: ask again */
}

/* Appends the envelopes of every waiting request, one round trip per
 * shard that has some, then answers each: 2xx only when all its XADDs
 * succeeded and, with min_replicas, were replicated. */
static void
flush(lws_sorted_usec_list_t *sul)
{
	struct webhooks *wh = lws_container_of(sul, struct webhooks, flush_sul);
	struct lws_dll2 *d, *next;

	for (d = wh->waiting.head; d != NULL; d = d->next) {
		struct req *r = lws_container_of(d, struct req, list);

		r->stored = true;
		r->stored_id[0] = '\0';
	}
	for (unsigned k = 0; k < wh->nshards; k++)
		flush_shard(wh, k);
	for (d = wh->waiting.head; d != NULL; d = next) {
		struct req *r = lws_container_of(d, struct req, list);

		next = d->next;
		lws_dll2_remove(d);
		if (r->stored)
			r->wh->m_envelopes += r->envs.n;
		if (r->stored && r->envs.status != 0)
			answer_text(r, r->envs.status, r->envs.answer);
		else if (r->stored)
			answer(r, 202, NULL, NULL, r->stored_id);
		else
			answer(r, 503, "redis_unavailable", NULL,
			    "the inbound stream is unavailable; retry later");
	}
}

/* Routes a request from its URI; answers errors found before the body. */
static void
route(struct req *r, const char *uri, bool post, long content_length)
{
	const struct inbox_config *cfg = r->wh->cfg;
	const char *id;

	if (strcmp(uri, "/healthz") == 0) {
		r->status = 200;
		r->content_type = "application/json";
		snprintf(r->answer + LWS_PRE, BODY_MAX_ANSWER, "{\"ok\":true}");
		r->answer_len = strlen(r->answer + LWS_PRE);
		lws_callback_on_writable(r->wsi);
		return;
	}
	if (strcmp(uri, "/metrics") == 0) {
		const struct webhooks *wh = r->wh;

		r->status = 200;
		r->content_type = "text/plain; version=0.0.4";
		snprintf(r->answer + LWS_PRE, BODY_MAX_ANSWER,
		    "# TYPE inbox_webhooks_envelopes_total counter\n"
		    "inbox_webhooks_envelopes_total %llu\n"
		    "# TYPE inbox_webhooks_answers_total counter\n"
		    "inbox_webhooks_answers_total{class=\"2xx\"} %llu\n"
		    "inbox_webhooks_answers_total{class=\"4xx\"} %llu\n"
		    "inbox_webhooks_answers_total{class=\"5xx\"} %llu\n",
		    (unsigned long long)wh->m_envelopes,
		    (unsigned long long)wh->m_answers[2],
		    (unsigned long long)wh->m_answers[4],
		    (unsigned long long)wh->m_answers[5]);
		r->answer_len = strlen(r->answer + LWS_PRE);
		lws_callback_on_writable(r->wsi);
		return;
	}
	if (strncmp(uri, "/hooks/", 7) != 0) {
		answer(r, 404, "not_found", NULL, "no such path");
		return;
	}
	id = uri + 7;
	r->cc = inbox_config_connector(cfg, id);
	if (r->cc == NULL || (r->impl = wh_channel_find(r->cc->channel)) ==
	    NULL) {
		answer(r, 404, "unknown_connector", NULL,
		    "no webhook connector with this id");
		return;
	}
	if (!r->cc->enabled) {
		/* the platform keeps the update and tries again later */
		answer(r, 503, "disabled", NULL, "this connector is disabled");
		return;
	}
	r->conn = conn_of(r->wh, r->cc);
	if (!post && r->impl->handshake != NULL) {
		struct wh_request in = { .arg = query_arg, .ctx = r->wsi,
		    .now_ms = rt_now_ms(), .body = "" };
		char text[BODY_MAX_ANSWER];
		int status = 403;

		r->impl->handshake(r->conn, &in, &status, text, sizeof(text));
		answer_text(r, status, text);
		return;
	}
	if (!post) {
		answer(r, 405, "method_not_allowed", NULL, "use POST");
		return;
	}
	if (content_length > cfg->webhooks_max_body) {
		r->close_after = true;
		answer(r, 413, "too_large", NULL, "request body too large");
		return;
	}
	if (content_length == 0)
		answer(r, 400, "invalid_json", NULL, "empty body");
}

static void
body_complete(struct req *r)
{
	struct wh_request in = {
		.authorization = r->has_auth ? r->authorization : NULL,
		.signature = r->has_sig ? r->signature : NULL,
		.body = r->body ? r->body : "",
		.len = r->len,
		.now_ms = rt_now_ms(),
	};
	struct inbox_err err;

	if (r->status != 0)
		return; /* answered already (an error found earlier) */
	if (r->too_large) {
		answer(r, 413, "too_large", NULL, "request body too large");
		return;
	}
	if (r->impl->verify(r->conn, &in, &err) != 0) {
		answer(r, 401, "unauthorized", err.field, err.msg);
		return;
	}
	if (r->impl->decode(r->conn, &in, &r->envs, &err) != 0) {
		answer(r, 400, err.field[0] ? "invalid_envelope" :
		    "invalid_json", err.field, err.msg);
		return;
	}
	if (r->envs.n == 0) {
		/* a handshake or an event that stores nothing */
		if (r->envs.status != 0)
			answer_text(r, r->envs.status, r->envs.answer);
		else
			answer(r, 202, NULL, NULL, "");
		return;
	}
	lws_dll2_add_tail(&r->list, &r->wh->waiting);
	lws_sul_schedule(r->wh->lws, 0, &r->wh->flush_sul, flush, 1);
}

static int
write_answer(struct req *r)
{
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start,
	    *end = hdr + sizeof(hdr) - 1;

	if (lws_add_http_common_headers(r->wsi, (unsigned)r->status,
	    r->content_type ? r->content_type : "application/json",
	    (lws_filepos_t)r->answer_len, &p, end))
		return -1;
	if (lws_finalize_write_http_header(r->wsi, start, &p, end))
		return -1;
	if (lws_write(r->wsi, (unsigned char *)r->answer + LWS_PRE,
	    r->answer_len, LWS_WRITE_HTTP_FINAL) != (int)r->answer_len)
		return -1;
	if (r->close_after)
		return -1;
	req_reset(r);
	if (lws_http_transaction_completed(r->wsi))
		return -1;
	return 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct req *r = user;
	struct webhooks *wh = lws_context_user(lws_get_context(wsi));
	char cl[32];

	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
		long content_length = -1;

		req_reset(r);
		r->wsi = wsi;
		r->wh = wh;
		if (lws_hdr_copy(wsi, cl, sizeof(cl),
		    WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
			content_length = strtol(cl, NULL, 10);
		else if (post && lws_hdr_total_length(wsi,
		    WSI_TOKEN_HTTP_TRANSFER_ENCODING) == 0)
			content_length = 0;
		if (lws_hdr_copy(wsi, r->authorization, sizeof(r->authorization),
		    WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
			r->has_auth = true;
		route(r, (const char *)in, post, content_length);
		if (r->impl != NULL && r->impl->sig_header != NULL &&
		    lws_hdr_custom_copy(wsi, r->signature, sizeof(r->signature),
		    r->impl->sig_header, (int)strlen(r->impl->sig_header)) >= 0)
			r->has_sig = true;
		return 0;
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (r->status != 0 || r->too_large)
			return 0;
		if (r->len + len > (size_t)wh->cfg->webhooks_max_body) {
			r->too_large = true;
			return 0;
		}
		if (r->len + len > r->cap) {
			r->cap = r->len + len + 4096;
			if (r->cap > (size_t)wh->cfg->webhooks_max_body)
				r->cap = (size_t)wh->cfg->webhooks_max_body;
			r->body = xrealloc(r->body, r->cap + 1);
		}
		memcpy(r->body + r->len, in, len);
		r->len += len;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		body_complete(r);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (r->status == 0)
			return 0;
		return write_answer(r);
	case LWS_CALLBACK_CLOSED_HTTP:
		if (r != NULL)   /* none when it closed before any request */
			req_reset(r);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{ "http", callback, sizeof(struct req), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
free_conns(struct webhooks *wh)
{
	for (size_t i = 0; i < wh->cfg->nconnectors; i++)
		free(wh->tokens[i]);
	free(wh->tokens);
	free(wh->conns);
}

struct webhooks *
webhooks_create(const struct inbox_config *cfg)
{
	struct lws_context_creation_info info;
	struct webhooks *wh = xcalloc(1, sizeof(*wh));

	wh->cfg = cfg;
	wh->conns = xcalloc(cfg->nconnectors + 1, sizeof(*wh->conns));
	wh->tokens = xcalloc(cfg->nconnectors + 1, sizeof(*wh->tokens));
	for (size_t i = 0; i < cfg->nconnectors; i++) {
		const struct inbox_connector_conf *cc = &cfg->connectors[i];

		wh->conns[i].cc = cc;
		wh->conns[i].token = cc->token;
		if (wh_channel_find(cc->channel) == NULL)
			continue;
		if (cc->token == NULL && cc->token_file != NULL) {
			wh->tokens[i] = connector_read_secret(cc->token_file);
			wh->conns[i].token = wh->tokens[i];
		}
		wh__conn_check(&wh->conns[i]);
	}
	wh->nshards = (unsigned)cfg->redis_shards;
	wh->shards = xcalloc(wh->nshards, sizeof(*wh->shards));
	for (unsigned k = 0; k < wh->nshards; k++)
		rt_key_shard(wh->shards[k].k_in, sizeof(wh->shards[k].k_in),
		    cfg, k, "in");
	rt_lws_log_init();
	memset(&info, 0, sizeof(info));
	info.port = cfg->webhooks_port;
	info.iface = cfg->webhooks_listen;
	info.protocols = protocols;
	info.user = wh;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.timeout_secs = 30;
	if ((wh->lws = lws_create_context(&info)) == NULL) {
		log_warnx("webhooks: cannot listen on %s:%d",
		    cfg->webhooks_listen, cfg->webhooks_port);
		free_conns(wh);
		free(wh->shards);
		free(wh);
		return NULL;
	}
	for (unsigned k = 0; k < wh->nshards; k++)  /* may be down: retried */
		redis_ready(wh, &wh->shards[k], k);
	return wh;
}

int
webhooks_run(struct webhooks *wh)
{
	wh->out = wh_out_start(wh->cfg, wh->conns, wh->cfg->nconnectors);
	rt_lws_stop_start(&wh->stop, wh->lws);
	log_info("webhooks ready: listening on %s:%d", wh->cfg->webhooks_listen,
	    wh->cfg->webhooks_port);
	rt_lws_serve(&wh->stop);
	log_info("webhooks: stopping");
	wh_out_stop(wh->out);
	wh->out = NULL;
	return 0;
}

void
webhooks_destroy(struct webhooks *wh)
{
	if (wh == NULL)
		return;
	wh_out_stop(wh->out);
	lws_context_destroy(wh->lws);
	for (unsigned k = 0; k < wh->nshards; k++)
		if (wh->shards[k].redis != NULL)
			redisFree(wh->shards[k].redis);
	free(wh->shards);
	free_conns(wh);
	free(wh);
}
