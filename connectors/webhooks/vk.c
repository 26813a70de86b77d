/*
 * VK Callback API: {type, object, group_id, event_id, v, secret}; every
 * body carries the configured `secret`; the `confirmation` event is
 * answered with the configured string, every other one with "ok". Replies
 * go out with messages.send (random_id from our message id: idempotent).
 *
 * Ids: a message is its id (the one messages.send returns for ours, so a
 * customer's reply to our message links), or "<peer_id>_c<conversation_
 * message_id>" in group conversations where id is 0; the same message
 * redelivered under another event_id is still one message. Edits are
 * "edit:<id>:<update_time>". message_reply (our own sends echoed) and
 * typing/allow/deny events store nothing. API >= 5.103 wraps the message in
 * object.message; older versions send it as the object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webhooks/channel.h"

static int
vk_verify(const struct wh_conn *wc, const struct wh_request *req,
    struct inbox_err *err)
{
	cJSON *root;
	char gid[32];
	int rc = 0;

	if (wc->cc->secret == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "secret", 0,
		    "connector has no secret configured");
	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	if (!wh_secret_eq(wh_jstr(root, "secret"), wc->cc->secret))
		rc = inbox_err_set(err, INBOX_EINVAL, "secret", 0,
		    "secret: missing or wrong");
	else if (wc->cc->group_id != NULL && (wh_jid(root, "group_id", gid,
	    sizeof(gid)) == NULL || strcmp(gid, wc->cc->group_id) != 0))
		rc = inbox_err_set(err, INBOX_EINVAL, "group_id", 0,
		    "group_id: not this connector's community");
	cJSON_Delete(root);
	return rc;
}

static void
largest_photo(const cJSON *photo, cJSON *env)
{
	const cJSON *s, *best = NULL;
	double bw = -1, w;

	cJSON_ArrayForEach(s, wh_jarr(photo, "sizes")) {
		if (wh_jnum(s, "width", &w) && w > bw) {
			bw = w;
			best = s;
		} else if (best == NULL) {
			best = s;
		}
	}
	wh_env_attach(env, "photo", "photo.jpg", "image/jpeg", -1,
	    wh_jstr(best, "url"), NULL);
}

static void
attachments(const cJSON *msg, cJSON *env, struct wh_buf *label)
{
	const cJSON *a, *geo = wh_jobj(msg, "geo");

	cJSON_ArrayForEach(a, wh_jarr(msg, "attachments")) {
		const char *type = wh_jstr(a, "type");
		const cJSON *o;
		char oid[32] = "", id[32] = "", url[200];
		double size = -1;

		if (type == NULL)
			continue;
		o = wh_jobj(a, type);
		wh_jid(o, "owner_id", oid, sizeof(oid));
		wh_jid(o, "id", id, sizeof(id));
		if (strcmp(type, "photo") == 0) {
			wh_buf_addf(label, "%s[photo]", label->len ? " " : "");
			largest_photo(o, env);
		} else if (strcmp(type, "doc") == 0) {
			const cJSON *pv = wh_jobj(o, "preview");
			bool voice = wh_jobj(pv, "audio_msg") != NULL ||
			    (wh_jstr(o, "kind") && !strcmp(wh_jstr(o, "kind"),
			    "audiomsg"));

			wh_jnum(o, "size", &size);
			wh_buf_addf(label, "%s[%s]", label->len ? " " : "",
			    voice ? "voice" : "document");
			wh_env_attach(env, voice ? "voice" : "document",
			    wh_jstr(o, "title"), NULL, size, wh_jstr(o, "url"),
			    NULL);
		} else if (strcmp(type, "audio_message") == 0) {
			wh_buf_addf(label, "%s[voice]", label->len ? " " : "");
			wh_env_attach(env, "voice", "voice.ogg", "audio/ogg", -1,
			    wh_jstr(o, "link_ogg") ? wh_jstr(o, "link_ogg") :
			    wh_jstr(o, "link_mp3"), NULL);
		} else if (strcmp(type, "audio") == 0) {
			wh_buf_addf(label, "%s[audio]", label->len ? " " : "");
			wh_env_attach(env, "audio", wh_jstr(o, "title"),
			    "audio/mpeg", -1, wh_jstr(o, "url"), NULL);
		} else if (strcmp(type, "video") == 0) {
			snprintf(url, sizeof(url), "https://vk.com/video%s_%s",
			    oid, id);
			wh_buf_addf(label, "%s[video]", label->len ? " " : "");
			wh_env_attach(env, "video", wh_jstr(o, "title"), NULL,
			    -1, url, NULL);
		} else if (strcmp(type, "sticker") == 0) {
			const cJSON *im = cJSON_GetArrayItem(wh_jarr(o,
			    "images"), 0);
			char sid[32] = "";

			wh_jid(o, "sticker_id", sid, sizeof(sid));
			wh_buf_addf(label, "%s[sticker]", label->len ? " " : "");
			wh_env_attach(env, "sticker", "sticker.png", "image/png",
			    -1, wh_jstr(im, "url"), sid[0] ? sid : NULL);
		} else if (strcmp(type, "link") == 0) {
			wh_buf_addf(label, "%s[link] %.500s", label->len ? " " :
			    "", wh_jstr(o, "url") ? wh_jstr(o, "url") : "");
		} else {
			wh_buf_addf(label, "%s[%.40s]", label->len ? " " : "",
			    type);
			wh_env_attach(env, type, NULL, NULL, -1, NULL,
			    id[0] ? id : NULL);
		}
	}
	if (geo != NULL) {
		const cJSON *c = wh_jobj(geo, "coordinates");
		double lat = 0, lon = 0;

		wh_jnum(c, "latitude", &lat);
		wh_jnum(c, "longitude", &lon);
		wh_buf_addf(label, "%s[location] %.6f, %.6f", label->len ? " " :
		    "", lat, lon);
		cJSON_AddItemToObject(env, "location", cJSON_Duplicate(geo, 1));
	}
}

/* The message's own id (see the top of the file). */
static void
msg_id(const cJSON *m, char *buf, size_t len)
{
	char id[32] = "", peer[32] = "", cmid[32] = "";

	wh_jid(m, "id", id, sizeof(id));
	wh_jid(m, "peer_id", peer, sizeof(peer));
	wh_jid(m, "conversation_message_id", cmid, sizeof(cmid));
	if (id[0] != '\0' && strcmp(id, "0") != 0)
		snprintf(buf, len, "%s", id);
	else
		snprintf(buf, len, "%s_c%s", peer, cmid);
}

static void
vk_message(const struct wh_conn *wc, struct wh_envelopes *out,
    const cJSON *m, bool edit, const char *event_id, int64_t now)
{
	char id[80], ext[120], from[32] = "", peer[32] = "";
	struct wh_buf label = { 0 };
	const cJSON *rm = wh_jobj(m, "reply_message");
	const char *text = wh_jstr(m, "text");
	double date = 0, upd = 0;
	cJSON *env;

	msg_id(m, id, sizeof(id));
	wh_jid(m, "from_id", from, sizeof(from));
	if (wh_jid(m, "peer_id", peer, sizeof(peer)) == NULL)
		snprintf(peer, sizeof(peer), "%s", from);
	wh_jnum(m, "date", &date);
	if (edit) {
		if (!wh_jnum(m, "update_time", &upd))
			upd = date;
		snprintf(ext, sizeof(ext), "edit:%s:%.0f", id, upd);
	} else {
		snprintf(ext, sizeof(ext), "%s", id);
	}
	env = wh_env_new(wc, edit ? "edit" : "message", ext,
	    wh_time_ms(edit ? upd : date, 1000, 0), from, "", peer, "");
	if (wh_time_ms(date, 1000, 0) == 0)
		cJSON_ReplaceItemInObjectCaseSensitive(env, "ts",
		    cJSON_CreateNumber((double)now));
	attachments(m, env, &label);
	if (text != NULL && *text == '\0')
		text = NULL;
	if (label.len == 0 && text == NULL && wh_jarr(m, "fwd_messages"))
		wh_buf_addf(&label, "[%d forwarded messages]",
		    cJSON_GetArraySize(wh_jarr(m, "fwd_messages")));
	wh_env_text(env, &label, text);
	wh_buf_finish(&label);
	if (edit) {
		cJSON_AddStringToObject(env, "reply_to", id);
	} else if (rm != NULL) {
		msg_id(rm, ext, sizeof(ext));
		cJSON_AddStringToObject(env, "reply_to", ext);
	}
	if (event_id != NULL)
		cJSON_AddStringToObject(env, "event_id", event_id);
	if (from[0] == '-')
		cJSON_AddBoolToObject(env, "auto", true);
	wh_env_emit(out, env);
}

static int
vk_decode(const struct wh_conn *wc, const struct wh_request *req,
    struct wh_envelopes *out, struct inbox_err *err)
{
	static const char *const quiet[] = { "message_reply",
	    "message_typing_state", "message_allow", "message_deny",
	    "message_read" };
	cJSON *root;
	const char *type, *event_id;
	const cJSON *obj, *m;

	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	type = wh_jstr(root, "type");
	if (type == NULL) {
		cJSON_Delete(root);
		return inbox_err_set(err, INBOX_EINVAL, "type", 0,
		    "type: missing (not a VK Callback API event)");
	}
	out->status = 200;
	snprintf(out->answer, sizeof(out->answer), "ok");
	if (strcmp(type, "confirmation") == 0) {
		snprintf(out->answer, sizeof(out->answer), "%s",
		    wc->cc->confirmation ? wc->cc->confirmation : "");
		if (wc->cc->confirmation == NULL)
			log_warnx("connector %s: VK asks for confirmation but "
			    "no confirmation string is configured", wc->cc->id);
		cJSON_Delete(root);
		return 0;
	}
	obj = wh_jobj(root, "object");
	event_id = wh_jstr(root, "event_id");
	m = wh_jobj(obj, "message");
	if (m == NULL)
		m = obj;  /* API < 5.103: the object is the message */
	if (strcmp(type, "message_new") == 0 && m != NULL) {
		vk_message(wc, out, m, false, event_id, req->now_ms);
	} else if (strcmp(type, "message_edit") == 0 && m != NULL) {
		vk_message(wc, out, m, true, event_id, req->now_ms);
	} else {
		bool skip = false;

		for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
			skip = skip || strcmp(type, quiet[i]) == 0;
		if (!skip) {
			char ext[120], uid[32] = "", text[160];
			cJSON *env;

			if (wh_jid(obj, "user_id", uid, sizeof(uid)) == NULL)
				wh_jid(obj, "from_id", uid, sizeof(uid));
			if (event_id != NULL)
				snprintf(ext, sizeof(ext), "event:%.100s",
				    event_id);
			else
				wh_json_hash_id(root, "event", ext, sizeof(ext));
			snprintf(text, sizeof(text), "[vk event: %.100s]", type);
			env = wh_env_new(wc, "message", ext, req->now_ms, uid,
			    "", uid, text);
			if (obj != NULL)
				cJSON_AddItemToObject(env, "event",
				    cJSON_Duplicate(obj, 1));
			wh_env_emit(out, env);
		}
	}
	cJSON_Delete(root);
	return 0;
}

static int
vk_send_build(const struct wh_conn *wc, const char *base, const cJSON *item,
    struct wh_call *call, char *why, size_t wlen)
{
	const char *thread = wh_jstr(item, "thread");
	const char *text = wh_jstr(item, "text");
	const char *rto = wh_jstr(item, "reply_to");
	const cJSON *mid = cJSON_GetObjectItemCaseSensitive(item, "message_id");
	const cJSON *part = cJSON_GetObjectItemCaseSensitive(item, "part");
	struct wh_buf b = { 0 };
	unsigned long long id, k = 0;

	if (thread == NULL || text == NULL || *text == '\0' ||
	    !cJSON_IsNumber(mid)) {
		snprintf(why, wlen, "out item has no thread, text or "
		    "message_id");
		return INBOX_EINVAL;
	}
	/* random_id: an int32 fixed by our message id (and the part of a
	 * long reply), so a repeated send (after a timeout, a restart) is not
	 * delivered twice, and the parts of one reply are not taken for
	 * repeats of each other */
	id = (unsigned long long)mid->valuedouble;
	if (cJSON_IsNumber(part) && part->valuedouble >= 1 &&
	    part->valuedouble <= 1000)
		k = (unsigned long long)part->valuedouble;
	id += k * 1000000007ULL;
	wh_buf_add(&b, "access_token=");
	wh_buf_urlenc(&b, wc->token);
	wh_buf_add(&b, "&v=5.199&peer_id=");
	wh_buf_urlenc(&b, thread);
	wh_buf_addf(&b, "&random_id=%llu", id % 2147483647ULL + 1);
	wh_buf_add(&b, "&message=");
	wh_buf_urlenc(&b, text);
	if (rto != NULL && rto[0] >= '0' && rto[0] <= '9' &&
	    strspn(rto, "0123456789") == strlen(rto)) {
		wh_buf_add(&b, "&reply_to=");
		wh_buf_add(&b, rto);
	}
	call->body = xstrdup(wh_buf_str(&b));
	wh_buf_finish(&b);
	call->content_type = "application/x-www-form-urlencoded";
	snprintf(call->url, sizeof(call->url), "%s/messages.send", base);
	return 0;
}

static void
vk_send_result(long http, const char *body, size_t len, int64_t retry_ms,
    struct wh_send_result *res)
{
	/* 1 unknown, 6 too many requests per second, 9 flood control,
	 * 10 internal server error: worth another try */
	cJSON *root = http ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *e = wh_jobj(root, "error");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "response");
	double code = 0;

	wh_send_http_default(http, body, len, retry_ms, res);
	if (!cJSON_IsObject(root) || http < 200 || http >= 300)
		goto out;
	if (e != NULL) {
		wh_jnum(e, "error_code", &code);
		snprintf(res->error, sizeof(res->error), "%.0f: %.400s", code,
		    wh_jstr(e, "error_msg") ? wh_jstr(e, "error_msg") : "error");
		res->outcome = code == 1 || code == 6 || code == 9 ||
		    code == 10 ? WH_SEND_RETRY : WH_SEND_FAILED;
		if (code == 6 || code == 9)
			res->retry_after_ms = 1000;
		goto out;
	}
	res->outcome = WH_SEND_SENT;
	if (cJSON_IsNumber(r))
		snprintf(res->id, sizeof(res->id), "%.0f", r->valuedouble);
	else if (cJSON_IsArray(r))
		wh_jid(cJSON_GetArrayItem(r, 0), "message_id", res->id,
		    sizeof(res->id));
out:
	cJSON_Delete(root);
}

const struct wh_channel_impl wh_channel_vk = {
	.text_max = 4096,
	.text_units = WH_UNITS_CHARS,
	.channel = INBOX_CH_VK,
	.api_default = "https://api.vk.com/method",
	.verify = vk_verify,
	.decode = vk_decode,
	.send_build = vk_send_build,
	.send_result = vk_send_result,
};
