/*
 * Meta's webhooks (WhatsApp Cloud API, Messenger, Instagram) share the
 * handshake (GET hub.mode=subscribe&hub.verify_token&hub.challenge), the
 * signature (X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw
 * body)>) and the Graph API's error format; this file has those and the
 * Messenger/Instagram format (object "page" / "instagram": entry[].
 * messaging[] events), which the two channels share.
 *
 * Ids: a message is its mid; edits "edit:<mid>:<num_edit>", deletions
 * "deleted:<mid>"; receipts become status envelopes for each mid they
 * name (watermark-only receipts name none and store nothing). Echoes of
 * our own sends (is_echo) are not customer messages and store nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webhooks/channel.h"

int
wh_meta_verify(const struct wh_conn *wc, const struct wh_request *req,
    struct inbox_err *err)
{
	if (wc->cc->app_secret == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "app_secret", 0,
		    "connector has no app_secret configured");
	if (req->signature == NULL || strncmp(req->signature, "sha256=", 7))
		return inbox_err_set(err, INBOX_EINVAL, "X-Hub-Signature-256",
		    0, "X-Hub-Signature-256: missing");
	if (!wh_hmac_sha256_ok(wc->cc->app_secret, req->body, req->len,
	    req->signature + 7))
		return inbox_err_set(err, INBOX_EINVAL, "X-Hub-Signature-256",
		    0, "X-Hub-Signature-256: signature does not match the body");
	return 0;
}

void
wh_meta_handshake(const struct wh_conn *wc, const struct wh_request *req,
    int *status, char *answer, size_t len)
{
	char mode[32], token[1100], challenge[256];
	const char *m = req->arg(req, "hub.mode", mode, sizeof(mode));
	const char *t = req->arg(req, "hub.verify_token", token, sizeof(token));
	const char *c = req->arg(req, "hub.challenge", challenge,
	    sizeof(challenge));

	if (m != NULL && strcmp(m, "subscribe") == 0 && c != NULL &&
	    wc->cc->verify_token != NULL && wh_secret_eq(t,
	    wc->cc->verify_token)) {
		*status = 200;
		snprintf(answer, len, "%s", c);
		return;
	}
	*status = 403;
	snprintf(answer, len, "forbidden");
}

void
wh_meta_send_result(long http, const char *body, size_t len, int64_t retry_ms,
    struct wh_send_result *res)
{
	/* Graph error codes that mean "later": throttling and transient */
	static const int later[] = { 1, 2, 4, 17, 32, 613, 80007, 130429,
	    131048, 131056 };
	cJSON *root = http ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *e = wh_jobj(root, "error"), *msgs;
	const char *details;
	double code = 0;

	wh_send_http_default(http, body, len, retry_ms, res);
	if (!cJSON_IsObject(root))
		goto out;
	if (e == NULL && http >= 200 && http < 300) {
		res->outcome = WH_SEND_SENT;
		if ((msgs = wh_jarr(root, "messages")) != NULL)
			wh_jid(cJSON_GetArrayItem(msgs, 0), "id", res->id,
			    sizeof(res->id));
		else
			wh_jid(root, "message_id", res->id, sizeof(res->id));
		goto out;
	}
	if (e == NULL)
		goto out;
	wh_jnum(e, "code", &code);
	details = wh_jstr(wh_jobj(e, "error_data"), "details");
	snprintf(res->error, sizeof(res->error), "%.0f: %.300s%s%.150s", code,
	    wh_jstr(e, "message") ? wh_jstr(e, "message") : "error",
	    details ? ": " : "", details ? details : "");
	if (http == 429 || http >= 500) {
		res->outcome = WH_SEND_RETRY;
		goto out;
	}
	res->outcome = WH_SEND_FAILED;
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		if ((int)code == later[i])
			res->outcome = WH_SEND_RETRY;
	}
out:
	cJSON_Delete(root);
}

/* ---- Messenger and Instagram ------------------------------------------ */

static void
attachments(const cJSON *msg, cJSON *env, struct wh_buf *label)
{
	const cJSON *arr = wh_jarr(msg, "attachments"), *a;

	cJSON_ArrayForEach(a, arr) {
		const char *type = wh_jstr(a, "type");
		const cJSON *p = wh_jobj(a, "payload"), *co;
		char sticker[32];

		if (type == NULL)
			type = "attachment";
		if (wh_jid(p, "sticker_id", sticker, sizeof(sticker)) != NULL)
			type = "sticker";
		if ((co = wh_jobj(p, "coordinates")) != NULL) {
			double lat = 0, lon = 0;

			wh_jnum(co, "lat", &lat);
			wh_jnum(co, "long", &lon);
			wh_buf_addf(label, "%s[location] %.6f, %.6f",
			    label->len ? " " : "", lat, lon);
			cJSON_AddItemToObject(env, "location",
			    cJSON_Duplicate(co, 1));
			continue;
		}
		wh_buf_addf(label, "%s[%.40s]", label->len ? " " : "", type);
		wh_env_attach(env, type, wh_jstr(p, "title") ? wh_jstr(p,
		    "title") : wh_jstr(a, "title"), NULL, -1, wh_jstr(p, "url"),
		    strcmp(type, "sticker") == 0 ? sticker : NULL);
	}
}

static void
meta_event(const struct wh_conn *wc, struct wh_envelopes *out, const cJSON *e,
    int64_t now)
{
	const char *name = wc->cc->channel == INBOX_CH_INSTAGRAM ? "instagram" :
	    "messenger";
	const cJSON *msg = wh_jobj(e, "message"), *x;
	char sid[64] = "", mid[300], ext[400], text[200];
	struct wh_buf label = { 0 };
	double ts = 0;
	int64_t tms;
	cJSON *env;

	wh_jid(wh_jobj(e, "sender"), "id", sid, sizeof(sid));
	tms = wh_jnum(e, "timestamp", &ts) ? wh_time_ms(ts, 1, now) : now;
	if (msg != NULL) {
		const cJSON *rto = wh_jobj(msg, "reply_to");

		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg,
		    "is_echo"))) {
			log_debug("connector %s: echo of our own message",
			    wc->cc->id);
			return;
		}
		if (wh_jid(msg, "mid", mid, sizeof(mid)) == NULL)
			wh_json_hash_id(e, "event", mid, sizeof(mid));
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg,
		    "is_deleted"))) {
			snprintf(ext, sizeof(ext), "deleted:%s", mid);
			env = wh_env_new(wc, "edit", ext, tms, sid, "", sid, "");
			cJSON_AddStringToObject(env, "reply_to", mid);
			cJSON_AddBoolToObject(env, "deleted", true);
			wh_env_emit(out, env);
			return;
		}
		env = wh_env_new(wc, "message", mid, tms, sid, "", sid, "");
		attachments(msg, env, &label);
		wh_env_text(env, &label, wh_jstr(msg, "text") ? wh_jstr(msg,
		    "text") : label.len ? NULL : "[empty message]");
		if (wh_jstr(rto, "mid") != NULL)
			cJSON_AddStringToObject(env, "reply_to", wh_jstr(rto,
			    "mid"));
		else if ((x = wh_jobj(rto, "story")) != NULL)
			cJSON_AddItemToObject(env, "story",
			    cJSON_Duplicate(x, 1));
		if ((x = wh_jobj(msg, "quick_reply")) != NULL)
			cJSON_AddItemToObject(env, "quick_reply",
			    cJSON_Duplicate(x, 1));
		wh_buf_finish(&label);
		wh_env_emit(out, env);
		return;
	}
	if ((x = wh_jobj(e, "message_edit")) != NULL) {
		double n = 0;

		if (wh_jid(x, "mid", mid, sizeof(mid)) == NULL)
			snprintf(mid, sizeof(mid), "unknown");
		wh_jnum(x, "num_edit", &n);
		snprintf(ext, sizeof(ext), "edit:%s:%.0f", mid, n);
		env = wh_env_new(wc, "edit", ext, tms, sid, "", sid,
		    wh_jstr(x, "text"));
		cJSON_AddStringToObject(env, "reply_to", mid);
		wh_env_emit(out, env);
		return;
	}
	if ((x = wh_jobj(e, "delivery")) != NULL ||
	    (x = wh_jobj(e, "read")) != NULL) {
		const char *st = wh_jobj(e, "delivery") ? "delivered" : "read";
		const cJSON *m;

		cJSON_ArrayForEach(m, wh_jarr(x, "mids")) {
			if (cJSON_IsString(m))
				wh_env_status(wc, out, m->valuestring, st, tms,
				    sid, sid, NULL);
		}
		if (wh_jstr(x, "mid") != NULL)
			wh_env_status(wc, out, wh_jstr(x, "mid"), st, tms, sid,
			    sid, NULL);
		return;
	}
	if ((x = wh_jobj(e, "reaction")) != NULL) {
		const char *emoji = wh_jstr(x, "emoji");
		const char *action = wh_jstr(x, "action");

		if (wh_jid(x, "mid", mid, sizeof(mid)) == NULL)
			snprintf(mid, sizeof(mid), "unknown");
		snprintf(ext, sizeof(ext), "reaction:%s:%s:%s:%lld", mid, sid,
		    action ? action : "react", (long long)tms);
		snprintf(text, sizeof(text), action && strcmp(action,
		    "unreact") == 0 ? "[reaction removed]" : "[reaction %.64s]",
		    emoji ? emoji : wh_jstr(x, "reaction") ? wh_jstr(x,
		    "reaction") : "");
		env = wh_env_new(wc, "message", ext, tms, sid, "", sid, text);
		cJSON_AddStringToObject(env, "reply_to", mid);
		wh_env_emit(out, env);
		return;
	}
	if ((x = wh_jobj(e, "postback")) != NULL) {
		if (wh_jid(x, "mid", mid, sizeof(mid)) == NULL)
			snprintf(mid, sizeof(mid), "postback:%s:%lld", sid,
			    (long long)tms);
		env = wh_env_new(wc, "message", mid, tms, sid, "", sid,
		    wh_jstr(x, "title") ? wh_jstr(x, "title") : "[postback]");
		if (wh_jstr(x, "payload") != NULL)
			cJSON_AddStringToObject(env, "payload", wh_jstr(x,
			    "payload"));
		wh_env_emit(out, env);
		return;
	}
	/* anything else (referral, optin, ...): say what arrived */
	{
		const char *kind = "event";

		for (const cJSON *it = e->child; it; it = it->next) {
			if (strcmp(it->string, "sender") &&
			    strcmp(it->string, "recipient") &&
			    strcmp(it->string, "timestamp")) {
				kind = it->string;
				break;
			}
		}
		wh_json_hash_id(e, "event", ext, sizeof(ext));
		snprintf(text, sizeof(text), "[%s event: %.100s]", name, kind);
		env = wh_env_new(wc, "message", ext, tms, sid, "", sid, text);
		cJSON_AddItemToObject(env, "event", cJSON_Duplicate(e, 1));
		wh_env_emit(out, env);
	}
}

static int
meta_decode(const struct wh_conn *wc, const struct wh_request *req,
    struct wh_envelopes *out, struct inbox_err *err)
{
	cJSON *root;
	const char *object;
	const cJSON *entry, *e;

	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	object = wh_jstr(root, "object");
	if (object == NULL || (strcmp(object, "page") != 0 &&
	    strcmp(object, "instagram") != 0) ||
	    wh_jarr(root, "entry") == NULL) {
		cJSON_Delete(root);
		return inbox_err_set(err, INBOX_EINVAL, "object", 0,
		    "object: not a Messenger or Instagram webhook (expected "
		    "\"page\" or \"instagram\" with entry[])");
	}
	cJSON_ArrayForEach(entry, wh_jarr(root, "entry")) {
		cJSON_ArrayForEach(e, wh_jarr(entry, "messaging"))
			if (cJSON_IsObject(e))
				meta_event(wc, out, e, req->now_ms);
		cJSON_ArrayForEach(e, wh_jarr(entry, "standby"))
			if (cJSON_IsObject(e))
				meta_event(wc, out, e, req->now_ms);
		cJSON_ArrayForEach(e, wh_jarr(entry, "changes")) {
			char ext[80], id[64] = "", text[160];
			cJSON *env;

			wh_jid(entry, "id", id, sizeof(id));
			wh_json_hash_id(e, "change", ext, sizeof(ext));
			snprintf(text, sizeof(text), "[%s change: %.100s]",
			    object, wh_jstr(e, "field") ? wh_jstr(e, "field") :
			    "unknown");
			env = wh_env_new(wc, "message", ext, req->now_ms, id,
			    "", id, text);
			cJSON_AddItemToObject(env, "change",
			    cJSON_Duplicate(e, 1));
			wh_env_emit(out, env);
		}
	}
	cJSON_Delete(root);
	out->status = 200;
	snprintf(out->answer, sizeof(out->answer), "EVENT_RECEIVED");
	return 0;
}

static int
meta_send_build(const struct wh_conn *wc, const char *base, const cJSON *item,
    struct wh_call *call, char *why, size_t wlen)
{
	const char *thread, *text;
	cJSON *b, *o;

	if (wh_item_text(item, &thread, &text, why, wlen) != 0)
		return INBOX_EINVAL;
	b = cJSON_CreateObject();
	o = cJSON_AddObjectToObject(b, "recipient");
	cJSON_AddStringToObject(o, "id", thread);
	cJSON_AddStringToObject(b, "messaging_type", "RESPONSE");
	o = cJSON_AddObjectToObject(b, "message");
	cJSON_AddStringToObject(o, "text", text);
	call->body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	call->content_type = "application/json";
	snprintf(call->url, sizeof(call->url), "%s/me/messages", base);
	snprintf(call->auth_header, sizeof(call->auth_header),
	    "Authorization: Bearer %s", wc->token);
	return 0;
}

const struct wh_channel_impl wh_channel_messenger = {
	.text_max = 2000,
	.text_units = WH_UNITS_CHARS,
	.channel = INBOX_CH_MESSENGER,
	.sig_header = "x-hub-signature-256:",
	.api_default = "https://graph.facebook.com/v21.0",
	.verify = wh_meta_verify,
	.decode = meta_decode,
	.handshake = wh_meta_handshake,
	.send_build = meta_send_build,
	.send_result = wh_meta_send_result,
};

const struct wh_channel_impl wh_channel_instagram = {
	.text_max = 999,             /* "less than 1000 bytes" of UTF-8 */
	.text_units = WH_UNITS_BYTES,
	.channel = INBOX_CH_INSTAGRAM,
	.sig_header = "x-hub-signature-256:",
	.api_default = "https://graph.facebook.com/v21.0",
	.verify = wh_meta_verify,
	.decode = meta_decode,
	.handshake = wh_meta_handshake,
	.send_build = meta_send_build,
	.send_result = wh_meta_send_result,
};
