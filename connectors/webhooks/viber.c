/*
 * Viber REST bot API: one event per body, signed with
 * X-Viber-Content-Signature = hex HMAC-SHA256(auth token, raw body). The
 * `webhook` event (set_webhook's check) is answered 200 and stores nothing;
 * so do subscribed, unsubscribed and conversation_started, which carry no
 * message. Replies go out with send_message.
 *
 * Ids: message_token, an integer above 2^53 read from the raw text;
 * delivered/seen/failed become status envelopes for our reply's token. The
 * dialog is the sender's id (Viber bots talk one to one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webhooks/channel.h"

#define SENDER_NAME "Support"

static int
vb_verify(const struct wh_conn *wc, const struct wh_request *req,
    struct inbox_err *err)
{
	if (wc->token == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "token", 0,
		    "connector has no token configured");
	if (req->signature == NULL)
		return inbox_err_set(err, INBOX_EINVAL,
		    "X-Viber-Content-Signature", 0,
		    "X-Viber-Content-Signature: missing");
	if (!wh_hmac_sha256_ok(wc->token, req->body, req->len, req->signature))
		return inbox_err_set(err, INBOX_EINVAL,
		    "X-Viber-Content-Signature", 0,
		    "X-Viber-Content-Signature: signature does not match the "
		    "body");
	return 0;
}

static void
content(const cJSON *m, cJSON *env, struct wh_buf *label)
{
	const char *type = wh_jstr(m, "type");
	const cJSON *o;
	double size = -1;

	if (type == NULL)
		type = "unknown";
	wh_jnum(m, "size", &size);
	if (strcmp(type, "text") == 0)
		return;
	if (strcmp(type, "picture") == 0) {
		wh_buf_add(label, "[photo]");
		wh_env_attach(env, "photo", wh_jstr(m, "file_name"),
		    "image/jpeg", size, wh_jstr(m, "media"), NULL);
	} else if (strcmp(type, "video") == 0) {
		wh_buf_add(label, "[video]");
		wh_env_attach(env, "video", wh_jstr(m, "file_name"),
		    "video/mp4", size, wh_jstr(m, "media"), NULL);
	} else if (strcmp(type, "file") == 0) {
		wh_buf_add(label, "[document]");
		wh_env_attach(env, "document", wh_jstr(m, "file_name"), NULL,
		    size, wh_jstr(m, "media"), NULL);
	} else if (strcmp(type, "sticker") == 0) {
		char sid[32] = "";

		wh_jid(m, "sticker_id", sid, sizeof(sid));
		wh_buf_add(label, "[sticker]");
		wh_env_attach(env, "sticker", "sticker.png", "image/png", -1,
		    wh_jstr(m, "media"), sid[0] ? sid : NULL);
	} else if (strcmp(type, "location") == 0) {
		double lat = 0, lon = 0;

		o = wh_jobj(m, "location");
		wh_jnum(o, "lat", &lat);
		wh_jnum(o, "lon", &lon);
		wh_buf_addf(label, "[location] %.6f, %.6f", lat, lon);
		if (o != NULL)
			cJSON_AddItemToObject(env, "location",
			    cJSON_Duplicate(o, 1));
	} else if (strcmp(type, "contact") == 0) {
		o = wh_jobj(m, "contact");
		wh_buf_addf(label, "[contact] %.300s %.64s", wh_jstr(o, "name") ?
		    wh_jstr(o, "name") : "", wh_jstr(o, "phone_number") ?
		    wh_jstr(o, "phone_number") : "");
		if (o != NULL)
			cJSON_AddItemToObject(env, "shared_contact",
			    cJSON_Duplicate(o, 1));
	} else if (strcmp(type, "url") == 0) {
		wh_buf_addf(label, "[link] %.500s", wh_jstr(m, "media") ?
		    wh_jstr(m, "media") : "");
	} else {
		wh_buf_addf(label, "[viber %.64s message]", type);
	}
}

static int
vb_decode(const struct wh_conn *wc, const struct wh_request *req,
    struct wh_envelopes *out, struct inbox_err *err)
{
	char token[40], ext[120];
	const char *event, *text;
	const cJSON *sender, *m;
	struct wh_buf label = { 0 };
	double ts = 0;
	int64_t tms;
	cJSON *root, *env;

	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	event = wh_jstr(root, "event");
	if (!cJSON_IsObject(root) || event == NULL) {
		cJSON_Delete(root);
		return inbox_err_set(err, INBOX_EINVAL, "event", 0,
		    "event: missing (not a Viber callback)");
	}
	out->status = 200;
	tms = wh_jnum(root, "timestamp", &ts) ? wh_time_ms(ts, 1,
	    req->now_ms) : req->now_ms;
	if (wh_json_top_int(req->body, req->len, "message_token", token,
	    sizeof(token)) == NULL)
		wh_json_hash_id(root, "event", token, sizeof(token));
	if (strcmp(event, "delivered") == 0 || strcmp(event, "seen") == 0 ||
	    strcmp(event, "failed") == 0) {
		const char *uid = wh_jstr(root, "user_id");

		wh_env_status(wc, out, token, strcmp(event, "seen") == 0 ?
		    "read" : event, tms, uid, uid, strcmp(event, "failed") ==
		    0 ? (wh_jstr(root, "desc") ? wh_jstr(root, "desc") :
		    "failed") : NULL);
		cJSON_Delete(root);
		return 0;
	}
	if (strcmp(event, "message") != 0) {
		if (strcmp(event, "webhook") && strcmp(event, "subscribed") &&
		    strcmp(event, "unsubscribed") &&
		    strcmp(event, "conversation_started")) {
			char what[160];
			const char *uid = wh_jstr(wh_jobj(root, "user"), "id");

			if (uid == NULL)
				uid = wh_jstr(root, "user_id");
			snprintf(ext, sizeof(ext), "%.40s:%s", event, token);
			snprintf(what, sizeof(what), "[viber event: %.100s]",
			    event);
			env = wh_env_new(wc, "message", ext, tms, uid, "", uid,
			    what);
			cJSON_AddItemToObject(env, "event",
			    cJSON_Duplicate(root, 1));
			wh_env_emit(out, env);
		}
		cJSON_Delete(root);
		return 0;
	}
	sender = wh_jobj(root, "sender");
	m = wh_jobj(root, "message");
	env = wh_env_new(wc, "message", token, tms, wh_jstr(sender, "id"),
	    wh_jstr(sender, "name"), wh_jstr(sender, "id"), "");
	content(m, env, &label);
	text = wh_jstr(m, "text");
	wh_env_text(env, &label, text);
	wh_buf_finish(&label);
	if (wh_jstr(m, "tracking_data") != NULL)
		cJSON_AddStringToObject(env, "tracking_data", wh_jstr(m,
		    "tracking_data"));
	wh_env_emit(out, env);
	cJSON_Delete(root);
	return 0;
}

static int
vb_send_build(const struct wh_conn *wc, const char *base, const cJSON *item,
    struct wh_call *call, char *why, size_t wlen)
{
	const char *thread, *text;
	cJSON *b, *o;

	if (wh_item_text(item, &thread, &text, why, wlen) != 0)
		return INBOX_EINVAL;
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "receiver", thread);
	cJSON_AddNumberToObject(b, "min_api_version", 1);
	o = cJSON_AddObjectToObject(b, "sender");
	cJSON_AddStringToObject(o, "name", SENDER_NAME);
	cJSON_AddStringToObject(b, "type", "text");
	cJSON_AddStringToObject(b, "text", text);
	call->body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	call->content_type = "application/json";
	snprintf(call->url, sizeof(call->url), "%s/send_message", base);
	snprintf(call->auth_header, sizeof(call->auth_header),
	    "X-Viber-Auth-Token: %s", wc->token);
	return 0;
}

static void
vb_send_result(long http, const char *body, size_t len, int64_t retry_ms,
    struct wh_send_result *res)
{
	cJSON *root = http ? cJSON_ParseWithLength(body, len) : NULL;
	double st = -1;
	char tok[40];

	wh_send_http_default(http, body, len, retry_ms, res);
	if (!cJSON_IsObject(root) || http < 200 || http >= 300)
		goto out;
	wh_jnum(root, "status", &st);
	if (st == 0) {
		res->outcome = WH_SEND_SENT;
		if (wh_json_top_int(body, len, "message_token", tok,
		    sizeof(tok)) != NULL)
			snprintf(res->id, sizeof(res->id), "%s", tok);
		goto out;
	}
	snprintf(res->error, sizeof(res->error), "%.0f: %.400s", st,
	    wh_jstr(root, "status_message") ? wh_jstr(root, "status_message") :
	    "error");
	/* 12: too many requests (unverified); the rest are final */
	res->outcome = st == 12 ? WH_SEND_RETRY : WH_SEND_FAILED;
out:
	cJSON_Delete(root);
}

const struct wh_channel_impl wh_channel_viber = {
	.text_max = 7000,
	.text_units = WH_UNITS_CHARS,
	.channel = INBOX_CH_VIBER,
	.sig_header = "x-viber-content-signature:",
	.api_default = "https://chatapi.viber.com/pa",
	.verify = vb_verify,
	.decode = vb_decode,
	.send_build = vb_send_build,
	.send_result = vb_send_result,
};
