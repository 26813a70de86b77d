/*
 * Telegram Bot API: the webhook body is one Update
 * (https://core.telegram.org/bots/api#update); requests carry
 * X-Telegram-Bot-Api-Secret-Token (setWebhook's secret_token). Replies go
 * out with sendMessage.
 *
 * Ids: a message is "<chat id>:<message id>" (message ids are unique per
 * chat only), so a retried update is the same envelope and a customer's
 * reply to our message names the id we reported as channel_message_id.
 * Other updates are "update:<update_id>". The dialog is the chat; in forum
 * supergroups "<chat id>/<topic id>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webhooks/channel.h"

static int
tg_verify(const struct wh_conn *wc, const struct wh_request *req,
    struct inbox_err *err)
{
	if (wc->cc->secret == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "secret", 0,
		    "connector has no secret configured");
	if (req->signature == NULL)
		return inbox_err_set(err, INBOX_EINVAL,
		    "X-Telegram-Bot-Api-Secret-Token", 0,
		    "X-Telegram-Bot-Api-Secret-Token: missing");
	if (!wh_secret_eq(req->signature, wc->cc->secret))
		return inbox_err_set(err, INBOX_EINVAL,
		    "X-Telegram-Bot-Api-Secret-Token", 0,
		    "X-Telegram-Bot-Api-Secret-Token: wrong secret");
	return 0;
}

static void
full_name(const cJSON *u, char *buf, size_t len)
{
	const char *first = wh_jstr(u, "first_name");
	const char *last = wh_jstr(u, "last_name");
	const char *title = wh_jstr(u, "title");

	if (first != NULL && last != NULL)
		snprintf(buf, len, "%s %s", first, last);
	else
		snprintf(buf, len, "%s", first ? first : last ? last :
		    title ? title : "");
}

static double
num_or(const cJSON *o, const char *name, double dflt)
{
	double d;

	return wh_jnum(o, name, &d) ? d : dflt;
}

/* A file-like object (document, voice, ...) as an attachment. */
static void
file_attach(cJSON *env, const char *type, const cJSON *f, const char *dflt_mime)
{
	const char *name = wh_jstr(f, "file_name");
	const char *mime = wh_jstr(f, "mime_type");

	if (name == NULL)
		name = wh_jstr(f, "title");
	wh_env_attach(env, type, name, mime ? mime : dflt_mime,
	    num_or(f, "file_size", -1), NULL, wh_jstr(f, "file_id"));
}

/* Describes the message's content into label and attachments. */
static void
content(const cJSON *m, cJSON *env, struct wh_buf *label)
{
	static const struct {
		const char *key, *type, *mime;
	} files[] = {
		{ "document", "document", "application/octet-stream" },
		{ "voice", "voice", "audio/ogg" },
		{ "audio", "audio", "audio/mpeg" },
		{ "video", "video", "video/mp4" },
		{ "video_note", "video_note", "video/mp4" },
		{ "animation", "animation", "video/mp4" },
	};
	const cJSON *it, *photo = wh_jarr(m, "photo");
	char tmp[512];

	if (photo != NULL && cJSON_GetArraySize(photo) > 0) {
		/* sizes, smallest first: the last is the original */
		const cJSON *big = cJSON_GetArrayItem(photo,
		    cJSON_GetArraySize(photo) - 1);

		wh_buf_add(label, "[photo]");
		wh_env_attach(env, "photo", "photo.jpg", "image/jpeg",
		    num_or(big, "file_size", -1), NULL, wh_jstr(big, "file_id"));
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if ((it = wh_jobj(m, files[i].key)) == NULL)
			continue;
		wh_buf_addf(label, "%s[%s]", label->len ? " " : "",
		    files[i].type);
		file_attach(env, files[i].type, it, files[i].mime);
		break; /* animations also carry "document" */
	}
	if ((it = wh_jobj(m, "sticker")) != NULL) {
		const char *emoji = wh_jstr(it, "emoji");

		wh_buf_addf(label, "[sticker%s%s]", emoji ? " " : "",
		    emoji ? emoji : "");
		wh_env_attach(env, "sticker", "sticker.webp", "image/webp",
		    num_or(it, "file_size", -1), NULL, wh_jstr(it, "file_id"));
	}
	if ((it = wh_jobj(m, "location")) != NULL && !wh_jobj(m, "venue")) {
		double lat = num_or(it, "latitude", 0), lon = num_or(it,
		    "longitude", 0);

		wh_buf_addf(label, "[location] %.6f, %.6f", lat, lon);
		cJSON_AddItemToObject(env, "location", cJSON_Duplicate(it, 1));
	}
	if ((it = wh_jobj(m, "venue")) != NULL) {
		const cJSON *loc = wh_jobj(it, "location");

		wh_buf_addf(label, "[location] %.200s, %.200s %.6f, %.6f",
		    wh_jstr(it, "title") ? wh_jstr(it, "title") : "",
		    wh_jstr(it, "address") ? wh_jstr(it, "address") : "",
		    num_or(loc, "latitude", 0), num_or(loc, "longitude", 0));
		cJSON_AddItemToObject(env, "location", cJSON_Duplicate(it, 1));
	}
	if ((it = wh_jobj(m, "contact")) != NULL) {
		full_name(it, tmp, sizeof(tmp));
		wh_buf_addf(label, "[contact] %.300s %.64s", tmp,
		    wh_jstr(it, "phone_number") ? wh_jstr(it, "phone_number") :
		    "");
		cJSON_AddItemToObject(env, "shared_contact",
		    cJSON_Duplicate(it, 1));
	}
	if ((it = wh_jobj(m, "poll")) != NULL)
		wh_buf_addf(label, "[poll] %.500s", wh_jstr(it, "question") ?
		    wh_jstr(it, "question") : "");
	if ((it = wh_jobj(m, "dice")) != NULL)
		wh_buf_addf(label, "[dice %.16s]", wh_jstr(it, "emoji") ?
		    wh_jstr(it, "emoji") : "");
}

/* One message-like object (message, edited_message, channel_post...). */
static int
tg_message(const struct wh_conn *wc, struct wh_envelopes *out,
    const cJSON *m, bool edit, struct inbox_err *err)
{
	const cJSON *chat = wh_jobj(m, "chat"), *from = wh_jobj(m, "from");
	const cJSON *reply = wh_jobj(m, "reply_to_message");
	char chat_id[32], mid[32], uid[32], topic[32], name[600];
	char ext[128], thread[80], orig[80];
	const char *text = wh_jstr(m, "text");
	struct wh_buf label = { 0 };
	double date;
	cJSON *env, *ct;

	if (text == NULL)
		text = wh_jstr(m, "caption");
	if (wh_jid(chat, "id", chat_id, sizeof(chat_id)) == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "message.chat.id", 0,
		    "message.chat.id: missing");
	if (wh_jid(m, "message_id", mid, sizeof(mid)) == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "message.message_id", 0,
		    "message.message_id: missing");
	if (from == NULL)
		from = wh_jobj(m, "sender_chat");
	if (from == NULL)
		from = chat;  /* channel posts: the channel itself */
	if (wh_jid(from, "id", uid, sizeof(uid)) == NULL)
		snprintf(uid, sizeof(uid), "%s", chat_id);
	full_name(from, name, sizeof(name));
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m,
	    "is_topic_message")) && wh_jid(m, "message_thread_id", topic,
	    sizeof(topic)) != NULL)
		snprintf(thread, sizeof(thread), "%s/%s", chat_id, topic);
	else
		snprintf(thread, sizeof(thread), "%s", chat_id);
	snprintf(orig, sizeof(orig), "%s:%s", chat_id, mid);
	date = num_or(m, edit ? "edit_date" : "date", 0);
	if (edit)
		snprintf(ext, sizeof(ext), "%s:edit:%.0f", orig, date);
	else
		snprintf(ext, sizeof(ext), "%s", orig);

	env = wh_env_new(wc, edit ? "edit" : "message", ext,
	    wh_time_ms(date, 1000, 0), uid, name, thread, "");
	content(m, env, &label);
	if (label.len == 0 && text == NULL)
		text = "[unsupported telegram message]";
	wh_env_text(env, &label, text);
	wh_buf_finish(&label);

	ct = cJSON_GetObjectItemCaseSensitive(env, "contact");
	if (wh_jstr(from, "username") != NULL)
		cJSON_AddStringToObject(ct, "username", wh_jstr(from,
		    "username"));
	if (edit) {
		cJSON_AddStringToObject(env, "reply_to", orig);
	} else if (wh_jid(reply, "message_id", mid, sizeof(mid)) != NULL) {
		char rto[80];

		snprintf(rto, sizeof(rto), "%s:%s", chat_id, mid);
		cJSON_AddStringToObject(env, "reply_to", rto);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(from, "is_bot")) ||
	    wh_jobj(m, "via_bot") != NULL)
		cJSON_AddBoolToObject(env, "auto", true);
	{
		cJSON *c = cJSON_AddObjectToObject(env, "chat");

		cJSON_AddStringToObject(c, "type", wh_jstr(chat, "type") ?
		    wh_jstr(chat, "type") : "private");
		if (wh_jstr(chat, "title") != NULL)
			cJSON_AddStringToObject(c, "title", wh_jstr(chat,
			    "title"));
	}
	wh_env_emit(out, env);
	return 0;
}

/* An update of a kind without a message: stored as what arrived. */
static void
tg_other(const struct wh_conn *wc, struct wh_envelopes *out,
    const char *update_id, const cJSON *u, int64_t now)
{
	const cJSON *kind = NULL, *obj, *from, *chat, *msg;
	char ext[64], uid[32] = "", thread[32] = "", name[600] = "", text[160];
	cJSON *env;

	for (const cJSON *it = u ? u->child : NULL; it; it = it->next) {
		if (strcmp(it->string, "update_id") != 0) {
			kind = it;
			break;
		}
	}
	obj = kind;
	from = wh_jobj(obj, "from");
	if (from == NULL)
		from = wh_jobj(obj, "user");
	chat = wh_jobj(obj, "chat");
	if (chat == NULL && (msg = wh_jobj(obj, "message")) != NULL)
		chat = wh_jobj(msg, "chat");
	if (from != NULL) {
		wh_jid(from, "id", uid, sizeof(uid));
		full_name(from, name, sizeof(name));
	}
	if (chat == NULL || wh_jid(chat, "id", thread, sizeof(thread)) == NULL)
		snprintf(thread, sizeof(thread), "%s", uid);
	snprintf(ext, sizeof(ext), "update:%s", update_id);
	snprintf(text, sizeof(text), "[telegram update: %.100s]",
	    kind && kind->string ? kind->string : "empty");
	env = wh_env_new(wc, "message", ext, now, uid, name, thread, text);
	if (kind != NULL)
		cJSON_AddItemToObject(env, "update", cJSON_Duplicate(u, 1));
	wh_env_emit(out, env);
}

static int
tg_decode(const struct wh_conn *wc, const struct wh_request *req,
    struct wh_envelopes *out, struct inbox_err *err)
{
	static const struct {
		const char *key;
		bool edit;
	} kinds[] = {
		{ "message", false }, { "edited_message", true },
		{ "channel_post", false }, { "edited_channel_post", true },
		{ "business_message", false },
		{ "edited_business_message", true },
	};
	cJSON *root;
	char uid[32];
	int rc = 0;
	bool done = false;

	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	if (!cJSON_IsObject(root) || wh_jid(root, "update_id", uid,
	    sizeof(uid)) == NULL) {
		cJSON_Delete(root);
		return inbox_err_set(err, INBOX_EINVAL, "update_id", 0,
		    "update_id: missing (not a Telegram Update)");
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const cJSON *m = wh_jobj(root, kinds[i].key);

		if (m != NULL) {
			rc = tg_message(wc, out, m, kinds[i].edit, err);
			done = true;
			break;
		}
	}
	if (!done)
		tg_other(wc, out, uid, root, req->now_ms);
	cJSON_Delete(root);
	if (rc != 0)
		wh_envelopes_finish(out);
	return rc;
}

static int
tg_send_build(const struct wh_conn *wc, const char *base, const cJSON *item,
    struct wh_call *call, char *why, size_t wlen)
{
	const char *thread, *text;
	const char *rto = wh_jstr(item, "reply_to");
	const char *slash;
	cJSON *b;
	char chat[64];

	if (wh_item_text(item, &thread, &text, why, wlen) != 0)
		return INBOX_EINVAL;
	b = cJSON_CreateObject();
	slash = strchr(thread, '/');
	snprintf(chat, sizeof(chat), "%.*s", slash ? (int)(slash - thread) :
	    (int)strlen(thread), thread);
	cJSON_AddStringToObject(b, "chat_id", chat);
	if (slash != NULL)
		cJSON_AddNumberToObject(b, "message_thread_id",
		    strtod(slash + 1, NULL));
	cJSON_AddStringToObject(b, "text", text);
	/* a reply context: the customer's message "<chat>:<id>" */
	if (rto != NULL && strchr(rto, ':') != NULL) {
		cJSON *rp = cJSON_AddObjectToObject(b, "reply_parameters");

		cJSON_AddNumberToObject(rp, "message_id",
		    strtod(strrchr(rto, ':') + 1, NULL));
		cJSON_AddBoolToObject(rp, "allow_sending_without_reply", true);
	}
	call->body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	call->content_type = "application/json";
	snprintf(call->url, sizeof(call->url), "%s/bot%s/sendMessage", base,
	    wc->token);
	return 0;
}

static void
tg_send_result(long http, const char *body, size_t len, int64_t retry_ms,
    struct wh_send_result *res)
{
	cJSON *root = http ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *result = wh_jobj(root, "result");
	double code = 0, ra = 0;
	char mid[32], chat[32];

	wh_send_http_default(http, body, len, retry_ms, res);
	if (!cJSON_IsObject(root))
		goto out;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ok"))) {
		res->outcome = WH_SEND_SENT;
		if (wh_jid(result, "message_id", mid, sizeof(mid)) != NULL &&
		    wh_jid(wh_jobj(result, "chat"), "id", chat, sizeof(chat)))
			snprintf(res->id, sizeof(res->id), "%s:%s", chat, mid);
		goto out;
	}
	wh_jnum(root, "error_code", &code);
	snprintf(res->error, sizeof(res->error), "%.0f: %.400s", code,
	    wh_jstr(root, "description") ? wh_jstr(root, "description") :
	    "error");
	if (code == 429 || code >= 500 || http == 429 || http >= 500) {
		res->outcome = WH_SEND_RETRY;
		if (wh_jnum(wh_jobj(root, "parameters"), "retry_after", &ra) &&
		    ra > 0 && ra <= 86400)
			res->retry_after_ms = (int64_t)(ra * 1000);
	} else {
		res->outcome = WH_SEND_FAILED;
	}
out:
	cJSON_Delete(root);
}

const struct wh_channel_impl wh_channel_telegram = {
	.text_max = 4096,
	.text_units = WH_UNITS_UTF16,
	.channel = INBOX_CH_TELEGRAM,
	.sig_header = "x-telegram-bot-api-secret-token:",
	.api_default = "https://api.telegram.org",
	.verify = tg_verify,
	.decode = tg_decode,
	.send_build = tg_send_build,
	.send_result = tg_send_result,
};
