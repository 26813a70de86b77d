/*
 * WhatsApp Cloud API: object "whatsapp_business_account", entry[].changes[]
 * with field "messages" and value {metadata, contacts[], messages[],
 * statuses[]}. Signature, handshake and Graph errors: meta.c. Replies go
 * out with POST /{phone_number_id}/messages.
 *
 * Ids: a message is its wamid; the dialog is the customer's wa_id. A
 * status is a status envelope for the wamid of our reply. Changes of other
 * fields (templates, account updates) are stored as what arrived, keyed by
 * a hash of the change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webhooks/channel.h"

static const char *
profile_name(const cJSON *value, const char *wa_id)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, wh_jarr(value, "contacts")) {
		const char *id = wh_jstr(c, "wa_id");

		if (id != NULL && wa_id != NULL && strcmp(id, wa_id) == 0)
			return wh_jstr(wh_jobj(c, "profile"), "name");
	}
	return NULL;
}

/* The content of a message of `type` into label and env. Returns the
 * caption or text, or NULL. */
static const char *
content(const cJSON *m, const char *type, cJSON *env, struct wh_buf *label)
{
	static const char *const media[] = { "image", "video", "document",
	    "audio", "sticker" };
	const cJSON *o = wh_jobj(m, type), *it;

	for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++) {
		const char *kind = media[i];

		if (strcmp(type, kind) != 0)
			continue;
		if (strcmp(kind, "audio") == 0 && cJSON_IsTrue(
		    cJSON_GetObjectItemCaseSensitive(o, "voice")))
			kind = "voice";
		wh_buf_addf(label, "[%s]", kind);
		wh_env_attach(env, kind, wh_jstr(o, "filename"),
		    wh_jstr(o, "mime_type"), -1, wh_jstr(o, "url"),
		    wh_jstr(o, "id"));
		return wh_jstr(o, "caption");
	}
	if (strcmp(type, "text") == 0)
		return wh_jstr(o, "body");
	if (strcmp(type, "location") == 0) {
		double lat = 0, lon = 0;

		wh_jnum(o, "latitude", &lat);
		wh_jnum(o, "longitude", &lon);
		wh_buf_addf(label, "[location] %.6f, %.6f", lat, lon);
		if (wh_jstr(o, "name") != NULL)
			wh_buf_addf(label, " %.300s", wh_jstr(o, "name"));
		if (wh_jstr(o, "address") != NULL)
			wh_buf_addf(label, ", %.300s", wh_jstr(o, "address"));
		if (o != NULL)
			cJSON_AddItemToObject(env, "location",
			    cJSON_Duplicate(o, 1));
		return NULL;
	}
	if (strcmp(type, "contacts") == 0) {
		cJSON_ArrayForEach(it, wh_jarr(m, "contacts")) {
			const cJSON *ph = cJSON_GetArrayItem(wh_jarr(it,
			    "phones"), 0);

			wh_buf_addf(label, "%s[contact] %.300s %.64s",
			    label->len ? " " : "", wh_jstr(wh_jobj(it, "name"),
			    "formatted_name") ? wh_jstr(wh_jobj(it, "name"),
			    "formatted_name") : "", wh_jstr(ph, "phone") ?
			    wh_jstr(ph, "phone") : "");
		}
		if (wh_jarr(m, "contacts") != NULL)
			cJSON_AddItemToObject(env, "shared_contacts",
			    cJSON_Duplicate(wh_jarr(m, "contacts"), 1));
		return NULL;
	}
	if (strcmp(type, "reaction") == 0) {
		wh_buf_addf(label, "[reaction %.64s]", wh_jstr(o, "emoji") ?
		    wh_jstr(o, "emoji") : "removed");
		return NULL;
	}
	if (strcmp(type, "interactive") == 0) {
		const cJSON *r = wh_jobj(o, "button_reply");

		if (r == NULL)
			r = wh_jobj(o, "list_reply");
		return wh_jstr(r, "title");
	}
	if (strcmp(type, "button") == 0)
		return wh_jstr(o, "text");
	if (strcmp(type, "order") == 0) {
		wh_buf_addf(label, "[order of %d items]", cJSON_GetArraySize(
		    wh_jarr(o, "product_items")));
		return wh_jstr(o, "text");
	}
	/* unsupported and unknown types: say what arrived */
	it = cJSON_GetArrayItem(wh_jarr(m, "errors"), 0);
	wh_buf_addf(label, "[whatsapp %.64s message%s%.300s]", type,
	    wh_jstr(it, "title") ? ": " : "", wh_jstr(it, "title") ?
	    wh_jstr(it, "title") : "");
	return NULL;
}

static void
wa_message(const struct wh_conn *wc, struct wh_envelopes *out,
    const cJSON *value, const cJSON *m, int64_t now)
{
	const char *from = wh_jstr(m, "from"), *type = wh_jstr(m, "type");
	const cJSON *ctx = wh_jobj(m, "context");
	char id[300], ext[400], phone[80];
	struct wh_buf label = { 0 };
	const char *text, *rto = NULL;
	const char *kind = "message";
	double ts = 0;
	int64_t tms;
	cJSON *env;

	if (wh_jid(m, "id", id, sizeof(id)) == NULL)
		wh_json_hash_id(m, "message", id, sizeof(id));
	if (type == NULL)
		type = "unknown";
	tms = wh_jnum(m, "timestamp", &ts) ? wh_time_ms(ts, 1000, now) : now;
	snprintf(ext, sizeof(ext), "%s", id);
	if (strcmp(type, "edit") == 0) {
		/* edit{original_message_id, message{type, text...}}
		 * (unverified against Meta's reference) */
		const cJSON *ed = wh_jobj(m, "edit");
		const cJSON *nm = wh_jobj(ed, "message");

		kind = "edit";
		rto = wh_jstr(ed, "original_message_id");
		m = nm ? nm : m;
		type = wh_jstr(m, "type") ? wh_jstr(m, "type") : "text";
	}
	env = wh_env_new(wc, kind, ext, tms, from, profile_name(value, from),
	    from, "");
	text = content(m, type, env, &label);
	wh_env_text(env, &label, text);
	wh_buf_finish(&label);
	if (from != NULL && strlen(from) < 40) {
		snprintf(phone, sizeof(phone), "+%s", from);
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(env,
		    "contact"), "phone", phone);
	}
	if (rto == NULL && strcmp(type, "reaction") == 0)
		rto = wh_jstr(wh_jobj(m, "reaction"), "message_id");
	if (rto == NULL)
		rto = wh_jstr(ctx, "id");
	if (rto != NULL)
		cJSON_AddStringToObject(env, "reply_to", rto);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, "forwarded")) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx,
	    "frequently_forwarded")))
		cJSON_AddBoolToObject(env, "forwarded", true);
	wh_env_emit(out, env);
}

static void
wa_status(const struct wh_conn *wc, struct wh_envelopes *out, const cJSON *s,
    int64_t now)
{
	const char *id = wh_jstr(s, "id"), *st = wh_jstr(s, "status");
	const char *to = wh_jstr(s, "recipient_id");
	const cJSON *e = cJSON_GetArrayItem(wh_jarr(s, "errors"), 0);
	char err[600];
	double ts = 0;

	if (id == NULL || st == NULL) {
		log_warnx("connector %s: status without id or status",
		    wc->cc->id);
		return;
	}
	if (e != NULL) {
		double code = 0;
		const char *details = wh_jstr(wh_jobj(e, "error_data"),
		    "details");

		wh_jnum(e, "code", &code);
		snprintf(err, sizeof(err), "%.0f: %.250s%s%.250s", code,
		    wh_jstr(e, "title") ? wh_jstr(e, "title") : wh_jstr(e,
		    "message") ? wh_jstr(e, "message") : "error",
		    details ? ": " : "", details ? details : "");
	}
	wh_env_status(wc, out, id, st, wh_jnum(s, "timestamp", &ts) ?
	    wh_time_ms(ts, 1000, now) : now, to, to, e ? err : NULL);
}

static int
wa_decode(const struct wh_conn *wc, const struct wh_request *req,
    struct wh_envelopes *out, struct inbox_err *err)
{
	const cJSON *entry, *ch, *it;
	cJSON *root;
	const char *object;

	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	object = wh_jstr(root, "object");
	if (object == NULL || strcmp(object, "whatsapp_business_account") ||
	    wh_jarr(root, "entry") == NULL) {
		cJSON_Delete(root);
		return inbox_err_set(err, INBOX_EINVAL, "object", 0,
		    "object: not a WhatsApp webhook (expected "
		    "\"whatsapp_business_account\" with entry[])");
	}
	cJSON_ArrayForEach(entry, wh_jarr(root, "entry")) {
		cJSON_ArrayForEach(ch, wh_jarr(entry, "changes")) {
			const cJSON *value = wh_jobj(ch, "value");
			const char *field = wh_jstr(ch, "field");

			if (field != NULL && strcmp(field, "messages") == 0 &&
			    value != NULL) {
				cJSON_ArrayForEach(it, wh_jarr(value,
				    "messages"))
					wa_message(wc, out, value, it,
					    req->now_ms);
				cJSON_ArrayForEach(it, wh_jarr(value,
				    "statuses"))
					wa_status(wc, out, it, req->now_ms);
				if (wh_jarr(value, "messages") != NULL ||
				    wh_jarr(value, "statuses") != NULL)
					continue;
			}
			{
				char ext[80], id[64] = "", text[200];
				cJSON *env;

				wh_jid(entry, "id", id, sizeof(id));
				wh_json_hash_id(ch, "change", ext, sizeof(ext));
				snprintf(text, sizeof(text),
				    "[whatsapp change: %.100s]", field ? field :
				    "unknown");
				env = wh_env_new(wc, "message", ext, req->now_ms,
				    id, "", id, text);
				cJSON_AddItemToObject(env, "change",
				    cJSON_Duplicate(ch, 1));
				cJSON_AddBoolToObject(env, "auto", true);
				wh_env_emit(out, env);
			}
		}
	}
	cJSON_Delete(root);
	out->status = 200;
	snprintf(out->answer, sizeof(out->answer), "EVENT_RECEIVED");
	return 0;
}

static int
wa_send_build(const struct wh_conn *wc, const char *base, const cJSON *item,
    struct wh_call *call, char *why, size_t wlen)
{
	const char *thread, *text;
	const char *rto = wh_jstr(item, "reply_to");
	cJSON *b, *o;

	if (wc->cc->phone_number_id == NULL) {
		snprintf(why, wlen, "connector has no phone_number_id");
		return INBOX_EINVAL;
	}
	if (wh_item_text(item, &thread, &text, why, wlen) != 0)
		return INBOX_EINVAL;
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "messaging_product", "whatsapp");
	cJSON_AddStringToObject(b, "recipient_type", "individual");
	cJSON_AddStringToObject(b, "to", thread);
	cJSON_AddStringToObject(b, "type", "text");
	o = cJSON_AddObjectToObject(b, "text");
	cJSON_AddStringToObject(o, "body", text);
	if (rto != NULL && strncmp(rto, "wamid.", 6) == 0) {
		o = cJSON_AddObjectToObject(b, "context");
		cJSON_AddStringToObject(o, "message_id", rto);
	}
	call->body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	call->content_type = "application/json";
	snprintf(call->url, sizeof(call->url), "%s/%s/messages", base,
	    wc->cc->phone_number_id);
	snprintf(call->auth_header, sizeof(call->auth_header),
	    "Authorization: Bearer %s", wc->token);
	return 0;
}

const struct wh_channel_impl wh_channel_whatsapp = {
	.text_max = 4096,
	.text_units = WH_UNITS_CHARS,
	.channel = INBOX_CH_WHATSAPP,
	.sig_header = "x-hub-signature-256:",
	.api_default = "https://graph.facebook.com/v21.0",
	.verify = wh_meta_verify,
	.decode = wa_decode,
	.handshake = wh_meta_handshake,
	.send_build = wa_send_build,
	.send_result = wh_meta_send_result,
};
