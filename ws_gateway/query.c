/* The websocket requests: feed, conversation.get, subscribe, ping. Queries
 * read the store in a read-only transaction each. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

#define FEED_LIMIT_MAX 500
#define REPLAY_MAX 5000

struct answer {
	cJSON *data;             /* ok answer */
	const char *code;        /* error answer */
	char message[256];
};

static void fail(struct answer *a, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct answer *a, const char *code, const char *fmt, ...)
{
	va_list ap;

	a->code = code;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
}

int
gw_store(struct gateway *gw)
{
	int rc;

	if (gw->store != NULL)
		return 0;
	rc = store_open(&gw->store, gw->cfg->store_path,
	    gw->cfg->store_map_size_mb, STORE_RDONLY);
	if (rc != 0) {
		gw->store = NULL;
		log_warnx("gateway: store %s: %s", gw->cfg->store_path,
		    inbox_strerror(rc));
	}
	return rc;
}

static void
do_feed(struct gateway *gw, const cJSON *req, struct store_txn *txn,
    struct answer *a)
{
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(req, "state");
	const cJSON *limit = cJSON_GetObjectItemCaseSensitive(req, "limit");
	const cJSON *before = cJSON_GetObjectItemCaseSensitive(req, "before");
	cJSON *arr;
	long long bu = 0;
	unsigned long long bid = 0;
	int st = STORE_STATE_OPEN, rc;
	size_t lim = 50;
	bool more;
	char cursor[64];

	if (state != NULL && (!cJSON_IsString(state) ||
	    store_state_parse(state->valuestring, &st) != 0))
		return fail(a, "bad_request", "state: expected open, snoozed or "
		    "closed");
	if (limit != NULL) {
		if (!cJSON_IsNumber(limit) || limit->valuedouble < 1 ||
		    limit->valuedouble > FEED_LIMIT_MAX)
			return fail(a, "bad_request",
			    "limit: expected an integer from 1 to 500");
		lim = (size_t)limit->valuedouble;
	}
	if (before != NULL && !cJSON_IsNull(before)) {
		char tail;

		if (!cJSON_IsString(before) || sscanf(before->valuestring,
		    "%lld:%llu%c", &bu, &bid, &tail) != 2 || bid == 0)
			return fail(a, "bad_request",
			    "before: not a cursor from a previous answer");
	}
	int64_t updated = bu;
	uint64_t id = bid;

	arr = cJSON_CreateArray();
	rc = store_feed_json(txn, st, &updated, &id, lim, arr, &more);
	if (rc != 0) {
		cJSON_Delete(arr);
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	a->data = cJSON_CreateObject();
	cJSON_AddItemToObject(a->data, "conversations", arr);
	if (more) {
		snprintf(cursor, sizeof(cursor), "%lld:%llu",
		    (long long)updated, (unsigned long long)id);
		cJSON_AddStringToObject(a->data, "next", cursor);
	} else {
		cJSON_AddNullToObject(a->data, "next");
	}
}

static int
msg_one(void *arg, const struct store_msg *m)
{
	cJSON_AddItemToArray(arg, store_msg_json(m, NULL));
	return 0;
}

static void
do_conv_get(const cJSON *req, struct store_txn *txn, struct answer *a)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	struct store_conv c;
	cJSON *msgs;
	int rc;

	if (!cJSON_IsNumber(id) || id->valuedouble < 1 ||
	    id->valuedouble > 9007199254740992.0)
		return fail(a, "bad_request", "id: expected a conversation id");
	rc = store_conv_get(txn, (uint64_t)id->valuedouble, &c);
	if (rc == INBOX_ENOTFOUND)
		return fail(a, "not_found", "no such conversation");
	if (rc != 0)
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	msgs = cJSON_CreateArray();
	if ((rc = store_conv_messages(txn, c.id, msg_one, msgs)) != 0) {
		cJSON_Delete(msgs);
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	a->data = cJSON_CreateObject();
	cJSON_AddItemToObject(a->data, "conversation", store_conv_json(txn, &c));
	cJSON_AddItemToObject(a->data, "messages", msgs);
}

/* Replays the events after `since` that this socket was not sent: those
 * before its first live push or after the last one. */
static void
do_subscribe(struct gateway *gw, const cJSON *req,
    struct gw_session_view *view, struct gw_frame **replay, struct answer *a)
{
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(req, "since");
	struct gw_frame *tail = NULL;
	struct gw_seq s;
	redisReply *r;
	char from[80], last[64] = "";
	size_t n = 0;
	bool more;

	if (!cJSON_IsString(since) || !gw_seq_parse(since->valuestring, &s))
		return fail(a, "bad_request", "since: expected a seq (ms-n)");
	if (gw->redis == NULL && (gw->redis = rt_redis_connect(gw->cfg)) == NULL)
		return fail(a, "unavailable", "redis unreachable");
	snprintf(from, sizeof(from), "(%s", since->valuestring);
	r = redisCommand(gw->redis, "XRANGE %s %s + COUNT %d", gw->k_events,
	    from, REPLAY_MAX);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		if (r == NULL) {
			redisFree(gw->redis);
			gw->redis = NULL;
		} else {
			freeReplyObject(r);
		}
		return fail(a, "unavailable", "cannot read the event stream");
	}
	more = r->elements == REPLAY_MAX;
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *e = r->element[i];
		const char *ev = rt_entry_field(e->element[1], "event", NULL);
		const char *data = rt_entry_field(e->element[1], "data", NULL);
		struct gw_frame *f;
		struct gw_seq es;

		snprintf(last, sizeof(last), "%s", e->element[0]->str);
		if (ev == NULL || data == NULL || !gw_seq_parse(last, &es))
			continue;
		if (view->live_sent && gw_seq_cmp(es, view->first_live) >= 0 &&
		    gw_seq_cmp(es, view->last) <= 0)
			continue; /* sent live already */
		f = gw_event_frame(last, ev, data);
		if (tail != NULL)
			tail->next = f;
		else
			*replay = f;
		tail = f;
		n++;
		if (gw_seq_cmp(es, view->last) > 0)
			view->last = es;
	}
	freeReplyObject(r);
	a->data = cJSON_CreateObject();
	cJSON_AddNumberToObject(a->data, "replayed", (double)n);
	if (last[0])
		cJSON_AddStringToObject(a->data, "last", last);
	else
		cJSON_AddStringToObject(a->data, "last", since->valuestring);
	cJSON_AddBoolToObject(a->data, "more", more);
}

char *
gw_request(struct gateway *gw, const char *frame, size_t len,
    struct gw_session_view *view, struct gw_frame **replay)
{
	struct answer a = { 0 };
	struct inbox_err err;
	struct store_txn *txn = NULL;
	const cJSON *type, *reqid = NULL;
	cJSON *req, *out;
	char *s;
	int rc;

	*replay = NULL;
	req = inbox_json_parse(frame, len, &err);
	if (req == NULL || !cJSON_IsObject(req)) {
		fail(&a, "bad_request", "%s", req ? "frame: not a JSON object" :
		    err.msg);
		goto answer;
	}
	reqid = cJSON_GetObjectItemCaseSensitive(req, "req");
	type = cJSON_GetObjectItemCaseSensitive(req, "type");
	if (!cJSON_IsString(type)) {
		fail(&a, "bad_request", "type: missing");
		goto answer;
	}
	if (strcmp(type->valuestring, "ping") == 0) {
		a.data = cJSON_CreateObject();
		cJSON_AddNumberToObject(a.data, "now", (double)rt_now_ms());
	} else if (strcmp(type->valuestring, "subscribe") == 0) {
		do_subscribe(gw, req, view, replay, &a);
	} else if (strcmp(type->valuestring, "feed") == 0 ||
	    strcmp(type->valuestring, "conversation.get") == 0) {
		if ((rc = gw_store(gw)) != 0 ||
		    (rc = store_txn_begin(gw->store, false, &txn)) != 0) {
			fail(&a, "store_unavailable", "%s", inbox_strerror(rc));
			goto answer;
		}
		if (type->valuestring[0] == 'f')
			do_feed(gw, req, txn, &a);
		else
			do_conv_get(req, txn, &a);
		store_txn_abort(txn);
	} else {
		fail(&a, "unknown_type", "unknown request type '%.64s'",
		    type->valuestring);
	}
answer:
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "type", "result");
	if (reqid != NULL && (cJSON_IsNumber(reqid) || cJSON_IsString(reqid)))
		cJSON_AddItemToObject(out, "req", cJSON_Duplicate(reqid, 0));
	else
		cJSON_AddNullToObject(out, "req");
	if (a.code == NULL) {
		cJSON_AddBoolToObject(out, "ok", 1);
		cJSON_AddItemToObject(out, "data", a.data);
	} else {
		cJSON *e;

		cJSON_AddBoolToObject(out, "ok", 0);
		e = cJSON_AddObjectToObject(out, "error");
		cJSON_AddStringToObject(e, "code", a.code);
		cJSON_AddStringToObject(e, "message", a.message);
	}
	s = cJSON_PrintUnformatted(out);
	cJSON_Delete(out);
	cJSON_Delete(req);
	return s;
}
