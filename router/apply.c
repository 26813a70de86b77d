/* What the router does with an envelope or a command, inside the batch's
 * write transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "router/router_int.h"

int
router__store_fail(int rc, const char *what, char *reason, size_t rlen)
{
	snprintf(reason, rlen, "store: %s: %s", what, inbox_strerror(rc));
	return rc;
}

/* ---- owned conversation copies ------------------------------------------- */

static const char *
own(struct router_conv *rc, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if (rc->nstrs == ROUTER_CONV_STRS)
		fatalx("router: too many owned strings");
	d = xstrdup(s);
	rc->strs[rc->nstrs++] = d;
	return d;
}

void
router__conv_own(struct router_conv *rc)
{
	struct store_conv *c = &rc->c;

	c->connector = own(rc, c->connector);
	c->channel = own(rc, c->channel);
	c->thread = own(rc, c->thread);
	c->subject = own(rc, c->subject);
	c->assignee = own(rc, c->assignee);
	c->outcome = own(rc, c->outcome);
	c->preview = own(rc, c->preview);
	c->sla_policy = own(rc, c->sla_policy);
	for (size_t i = 0; i < c->ntags; i++)
		c->tags[i] = own(rc, c->tags[i]);
}

int
router__conv_load(struct store_txn *txn, uint64_t id, struct router_conv *rc)
{
	int rv;

	memset(rc, 0, sizeof(*rc));
	if ((rv = store_conv_get(txn, id, &rc->c)) != 0)
		return rv;
	router__conv_own(rc);
	return 0;
}

void
router__conv_set(struct router_conv *rc, const char **field, const char *v)
{
	*field = own(rc, v);
}

void
router__conv_finish(struct router_conv *rc)
{
	for (size_t i = 0; i < rc->nstrs; i++)
		free(rc->strs[i]);
	rc->nstrs = 0;
}

void
router__preview(struct router_conv *rc, const char *text)
{
	size_t n = text ? strlen(text) : 0;
	char buf[STORE_PREVIEW_MAX + 1];

	if (n > STORE_PREVIEW_MAX) {
		n = STORE_PREVIEW_MAX;
		/* Cut on a character boundary. */
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(buf, text ? text : "", n);
	buf[n] = '\0';
	router__conv_set(rc, &rc->c.preview, buf);
}

/* ---- contacts ------------------------------------------------------------- */

/* Fills what contact `id` does not know yet from the envelope. */
static int
contact_fill(struct store_txn *txn, uint64_t id, const struct inbox_contact *ec,
    int64_t now)
{
	struct store_contact c;
	int rc;

	if ((rc = store_contact_get(txn, id, &c)) != 0)
		return rc;
	if ((c.name != NULL && c.name[0] != '\0') && c.email != NULL &&
	    c.phone != NULL && c.username != NULL)
		return 0;
	if (c.name == NULL || c.name[0] == '\0')
		c.name = ec->name;
	if (c.email == NULL)
		c.email = ec->email;
	if (c.phone == NULL)
		c.phone = ec->phone;
	if (c.username == NULL)
		c.username = ec->username;
	c.updated = now;
	return store_contact_put(txn, &c);
}

/* The contact behind an envelope: found by (connector, contact id), else
 * the contact with the same e-mail address or phone number (one person on
 * several channels), else created from what the channel tells. */
static int
contact_for(struct store_txn *txn, const struct inbox_envelope *env,
    int64_t now, uint64_t *id)
{
	const struct inbox_contact *ec = &env->contact;
	struct store_contact c;
	int rc;

	rc = store_contact_find_ext(txn, env->connector, ec->external_id, id);
	if (rc != INBOX_ENOTFOUND)
		return rc;
	rc = store_contact_find_email(txn, ec->email, id);
	if (rc == INBOX_ENOTFOUND)
		rc = store_contact_find_phone(txn, ec->phone, id);
	if (rc == 0) {
		if ((rc = store_contact_link_ext(txn, env->connector,
		    ec->external_id, *id)) != 0)
			return rc;
		log_debug("router: contact %s/%s linked to contact %llu",
		    env->connector, ec->external_id, (unsigned long long)*id);
		return contact_fill(txn, *id, ec, now);
	}
	if (rc != INBOX_ENOTFOUND)
		return rc;
	memset(&c, 0, sizeof(c));
	c.connector = env->connector;
	c.channel = inbox_channel_name(env->channel);
	c.external_id = ec->external_id;
	c.name = ec->name;
	c.email = ec->email;
	c.phone = ec->phone;
	c.username = ec->username;
	c.created = now;
	if ((rc = store_contact_put(txn, &c)) != 0)
		return rc;
	*id = c.id;
	return 0;
}

/* ---- delivery status of a reply ------------------------------------------- */

static int
status_rank(int s)
{
	switch (s) {
	case STORE_MS_QUEUED: return 1;
	case STORE_MS_SENT: return 2;
	case STORE_MS_DELIVERED: return 3;
	case STORE_MS_READ: return 4;
	default: return 0;
	}
}

static int
apply_status(struct router *r, struct store_txn *txn,
    const struct inbox_envelope *env, int64_t now, char *reason, size_t rlen)
{
	const cJSON *js = cJSON_GetObjectItemCaseSensitive(env->json, "status");
	const cJSON *jcm = cJSON_GetObjectItemCaseSensitive(env->json,
	    "channel_message_id");
	const cJSON *jerr = cJSON_GetObjectItemCaseSensitive(env->json, "error");
	const cJSON *jmore = cJSON_GetObjectItemCaseSensitive(env->json,
	    "channel_message_ids");
	const cJSON *it;
	struct store_msg m;
	uint64_t id, seen;
	int status, rc;
	bool advance;
	cJSON *ev;

	if (!cJSON_IsString(js) || store_mstatus_parse(js->valuestring,
	    &status) != 0 || status == STORE_MS_QUEUED) {
		snprintf(reason, rlen, "status: missing or not one of sent, "
		    "delivered, read, failed");
		return INBOX_EINVAL;
	}
	if (env->reply_to == NULL) {
		snprintf(reason, rlen, "reply_to: missing (the message whose "
		    "status this is)");
		return INBOX_EINVAL;
	}
	if (jcm != NULL && (!cJSON_IsString(jcm) ||
	    strlen(jcm->valuestring) == 0 ||
	    strlen(jcm->valuestring) > INBOX_EXTID_MAX)) {
		snprintf(reason, rlen, "channel_message_id: not a string of "
		    "1-400 bytes");
		return INBOX_EINVAL;
	}
	/* a reply the channel took as several messages: its other ids */
	if (jmore != NULL && (!cJSON_IsArray(jmore) || jcm == NULL ||
	    cJSON_GetArraySize(jmore) > 64)) {
		snprintf(reason, rlen, "channel_message_ids: not an array of at "
		    "most 64 ids next to channel_message_id");
		return INBOX_EINVAL;
	}
	cJSON_ArrayForEach(it, jmore) {
		if (!cJSON_IsString(it) || strlen(it->valuestring) == 0 ||
		    strlen(it->valuestring) > INBOX_EXTID_MAX) {
			snprintf(reason, rlen, "channel_message_ids: not strings "
			    "of 1-400 bytes");
			return INBOX_EINVAL;
		}
	}
	rc = store_msg_find_ext(txn, env->connector, env->external_id, &seen);
	if (rc == 0)
		return 0; /* this status was applied before */
	if (rc != INBOX_ENOTFOUND)
		return router__store_fail(rc, "status lookup", reason, rlen);
	if (strncmp(env->reply_to, "out:", 4) == 0) {
		char *end;

		id = strtoull(env->reply_to + 4, &end, 10);
		rc = *end == '\0' && id != 0 ? 0 : INBOX_ENOTFOUND;
	} else {
		rc = store_msg_find_ext(txn, env->connector, env->reply_to, &id);
	}
	if (rc == 0)
		rc = store_msg_get(txn, id, &m);
	if (rc == INBOX_ENOTFOUND || (rc == 0 && (m.dir != STORE_DIR_OUT ||
	    strcmp(m.connector, env->connector) != 0))) {
		snprintf(reason, rlen, "reply_to: no reply '%.100s' sent through "
		    "connector '%s'", env->reply_to, env->connector);
		return INBOX_EINVAL;
	}
	if (rc != 0)
		return router__store_fail(rc, "status message", reason, rlen);
	/* Statuses only move forward; failed only before delivery. */
	if (status == STORE_MS_FAILED)
		advance = m.status == STORE_MS_QUEUED || m.status == STORE_MS_SENT;
	else
		advance = m.status != STORE_MS_FAILED &&
		    status_rank(status) > status_rank(m.status);
	ev = NULL;
	if (advance) {
		m.status = status;
		m.status_at = now;
		m.status_error = status == STORE_MS_FAILED && cJSON_IsString(jerr) ?
		    jerr->valuestring : NULL;
		ev = cJSON_CreateObject();
		cJSON_AddNumberToObject(ev, "conversation_id", (double)m.conv_id);
		cJSON_AddNumberToObject(ev, "message_id", (double)m.id);
		cJSON_AddStringToObject(ev, "status", store_mstatus_name(status));
		if (m.status_error != NULL)
			cJSON_AddStringToObject(ev, "error", m.status_error);
		if ((rc = store_msg_update(txn, &m)) != 0) {
			cJSON_Delete(ev);
			return router__store_fail(rc, "status update", reason,
			    rlen);
		}
	}
	if ((rc = store_msg_link_ext(txn, env->connector, env->external_id,
	    id)) != 0 || (cJSON_IsString(jcm) && (rc = store_msg_link_ext(txn,
	    env->connector, jcm->valuestring, id)) != 0 && rc != INBOX_EEXIST)) {
		cJSON_Delete(ev);
		return router__store_fail(rc, "status link", reason, rlen);
	}
	cJSON_ArrayForEach(it, jmore) {
		if ((rc = store_msg_link_ext(txn, env->connector,
		    it->valuestring, id)) != 0 && rc != INBOX_EEXIST) {
			cJSON_Delete(ev);
			return router__store_fail(rc, "status link", reason,
			    rlen);
		}
	}
	if (ev != NULL)
		router__event(r, txn, "message.status", ev);
	return 0;
}

/* ---- edits ------------------------------------------------------------------ */

/* A customer edited a message: its text changes, the old one is kept in
 * "edits" [{text, at}]; message.updated. An edit seen before is a no-op;
 * an edit of a message the store does not have is a dead letter. */
static int
apply_edit(struct router *r, struct store_txn *txn,
    const struct inbox_envelope *env, char *reason, size_t rlen)
{
	struct store_msg m;
	uint64_t id, seen;
	cJSON *stored, *edits, *e, *ev;
	const cJSON *old;
	char *json;
	int rc;

	if (env->reply_to == NULL) {
		snprintf(reason, rlen, "reply_to: missing (the message edited)");
		return INBOX_EINVAL;
	}
	rc = store_msg_find_ext(txn, env->connector, env->external_id, &seen);
	if (rc == 0)
		return 0;
	if (rc != INBOX_ENOTFOUND)
		return router__store_fail(rc, "edit lookup", reason, rlen);
	rc = store_msg_find_ext(txn, env->connector, env->reply_to, &id);
	if (rc == 0)
		rc = store_msg_get(txn, id, &m);
	if (rc == INBOX_ENOTFOUND || (rc == 0 && m.dir != STORE_DIR_IN)) {
		snprintf(reason, rlen, "reply_to: no customer message '%.100s' "
		    "from connector '%s' to edit", env->reply_to,
		    env->connector);
		return INBOX_EINVAL;
	}
	if (rc != 0)
		return router__store_fail(rc, "edit message", reason, rlen);
	stored = cJSON_ParseWithLength(m.envelope, m.envelope_len);
	if (stored == NULL)
		stored = cJSON_CreateObject();
	old = cJSON_GetObjectItemCaseSensitive(stored, "text");
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "text", cJSON_IsString(old) ?
	    old->valuestring : "");
	cJSON_AddNumberToObject(e, "at", (double)env->ts);
	if ((edits = cJSON_GetObjectItemCaseSensitive(stored, "edits")) == NULL ||
	    !cJSON_IsArray(edits)) {
		cJSON_DeleteItemFromObjectCaseSensitive(stored, "edits");
		edits = cJSON_AddArrayToObject(stored, "edits");
	}
	cJSON_AddItemToArray(edits, e);
	cJSON_DeleteItemFromObjectCaseSensitive(stored, "text");
	cJSON_AddStringToObject(stored, "text", env->text);
	if ((json = cJSON_PrintUnformatted(stored)) == NULL)
		fatalx("router: out of memory");
	m.envelope = json;
	m.envelope_len = strlen(json);
	rc = store_msg_update(txn, &m);
	if (rc == 0)
		rc = store_msg_link_ext(txn, env->connector, env->external_id,
		    id);
	if (rc != 0) {
		cJSON_Delete(stored);
		free(json);
		return router__store_fail(rc, "edit", reason, rlen);
	}
	if ((rc = store_msg_get(txn, id, &m)) == 0) {
		ev = cJSON_CreateObject();
		cJSON_AddNumberToObject(ev, "conversation_id", (double)m.conv_id);
		cJSON_AddItemToObject(ev, "message", store_msg_json(&m, stored));
		router__event(r, txn, "message.updated", ev);
	}
	cJSON_Delete(stored);
	free(json);
	return rc == 0 ? 0 : router__store_fail(rc, "edit", reason, rlen);
}

/* ---- customer messages ----------------------------------------------------- */

int
router__apply_envelope(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen)
{
	struct inbox_envelope env;
	struct inbox_err err;
	struct router_conv rc_conv;
	struct store_conv *conv = &rc_conv.c;
	struct store_msg msg;
	struct inbox_dialog d;
	struct inbox_dtransition tr = { 0 };
	uint64_t id, contact_id, conv_id;
	struct router_rules_out ro;
	bool created = false, routed = false, automatic;
	int rating = 0;
	cJSON *ev;
	int rc;

	memset(&rc_conv, 0, sizeof(rc_conv));
	memset(&ro, 0, sizeof(ro));
	if (inbox_envelope_decode(&env, data, len, &err) != 0) {
		snprintf(reason, rlen, "invalid envelope: %s", err.msg);
		return INBOX_EINVAL;
	}
	if (inbox_config_connector(r->cfg, env.connector) == NULL)
		log_debug("router: envelope from connector '%s' that this "
		    "config does not list", env.connector);
	if (env.kind == INBOX_KIND_STATUS) {
		rc = apply_status(r, txn, &env, now, reason, rlen);
		goto out;
	}
	if (env.kind == INBOX_KIND_EDIT) {
		rc = apply_edit(r, txn, &env, reason, rlen);
		goto out;
	}
	if (env.kind != INBOX_KIND_MESSAGE) {
		snprintf(reason, rlen, "kind '%s' is not handled by this "
		    "router version", inbox_kind_name(env.kind));
		rc = INBOX_EINVAL;
		goto out;
	}
	rc = store_msg_find_ext(txn, env.connector, env.external_id, &id);
	if (rc == 0) {
		log_debug("router: %s/%s already stored as message %llu",
		    env.connector, env.external_id, (unsigned long long)id);
		goto out;
	}
	if (rc != INBOX_ENOTFOUND) {
		rc = router__store_fail(rc, "message lookup", reason, rlen);
		goto out;
	}
	if ((rc = contact_for(txn, &env, now, &contact_id)) != 0) {
		rc = router__store_fail(rc, "contact", reason, rlen);
		goto out;
	}

	rc = store_conv_find_thread(txn, env.connector, env.thread, &conv_id);
	if (rc == INBOX_ENOTFOUND && router__env_automatic(&env)) {
		/* An auto-reply or a bounce is kept (dead letters) but opens
		 * no dialog by itself. */
		snprintf(reason, rlen, "automatic message (auto-reply or "
		    "bounce) for no open dialog: recorded, no dialog opened");
		rc = INBOX_EINVAL;
		goto out;
	}
	if (rc == INBOX_ENOTFOUND) {
		conv->contact_id = contact_id;
		conv->connector = env.connector;
		conv->channel = inbox_channel_name(env.channel);
		conv->thread = env.thread;
		conv->subject = env.subject;
		conv->priority = INBOX_PRIO_NORMAL;
		conv->state = STORE_STATE_OPEN;
		conv->created = now;
		created = true;
		rc = 0;
	} else if (rc == 0) {
		rc = router__conv_load(txn, conv_id, &rc_conv);
	}
	if (rc != 0) {
		rc = router__store_fail(rc, "conversation", reason, rlen);
		goto out;
	}
	automatic = router__env_automatic(&env);
	/* An answer to the satisfaction survey is recorded and does not
	 * reopen the dialog. */
	if (!created && conv->state == STORE_STATE_CLOSED &&
	    conv->survey_sent_at != 0 && conv->rating == 0 &&
	    now - conv->survey_sent_at <= r->cfg->router_survey_window_ms &&
	    (rating = router__rating_of(env.text)) != 0) {
		conv->rating = rating;
		conv->rated_at = now;
	} else if (!created) {
		d.state = conv->state;
		d.snooze_until = conv->snooze_until;
		d.closed_at = conv->closed_at;
		d.reopen_count = conv->reopen_count;
		if (inbox_dialog_apply(&d, INBOX_DA_CUSTOMER_MSG, 0, now, &tr,
		    NULL) == 0 && tr.changed) {
			conv->state = d.state;
			conv->snooze_until = d.snooze_until;
			conv->reopen_count = d.reopen_count;
			if (tr.reopened)
				conv->survey_sent_at = 0;
		}
	}
	conv->updated = now;
	if (env.ts > conv->last_customer_msg_at)
		conv->last_customer_msg_at = env.ts;
	conv->message_count++;
	router__preview(&rc_conv, env.text);
	if (rating == 0 && (rc = router__rules(r, txn, &rc_conv, &env, created,
	    now, &ro)) != 0) {
		rc = router__store_fail(rc, "rules", reason, rlen);
		goto out;
	}
	/* Machines' messages (auto-responders, bounces) start no SLA. */
	if (rating == 0 && !automatic) {
		router__sla_event(r, &rc_conv, created ? ROUTER_SLA_CREATED :
		    tr.reopened ? ROUTER_SLA_REOPENED : ROUTER_SLA_CUSTOMER,
		    now);
		if (tr.reopened)
			router__sla_event(r, &rc_conv, ROUTER_SLA_CUSTOMER, now);
	}
	routed = ro.assigned;
	if ((created || tr.reopened) && !ro.assigned &&
	    (rc = router__route(r, txn, &rc_conv, now, NULL, &routed)) != 0) {
		rc = router__store_fail(rc, "routing", reason, rlen);
		goto out;
	}
	if ((rc = store_conv_put(txn, conv)) != 0) {
		rc = router__store_fail(rc, "conversation put", reason, rlen);
		goto out;
	}

	memset(&msg, 0, sizeof(msg));
	msg.conv_id = conv->id;
	msg.contact_id = contact_id;
	msg.dir = STORE_DIR_IN;
	msg.ts = env.ts;
	msg.created = now;
	msg.connector = env.connector;
	msg.channel = inbox_channel_name(env.channel);
	msg.external_id = env.external_id;
	msg.envelope = data;
	msg.envelope_len = len;
	if ((rc = store_msg_add(txn, &msg)) != 0) {
		rc = router__store_fail(rc, "message add", reason, rlen);
		goto out;
	}

	ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "conversation", store_conv_json(txn, conv));
	if (!created) {
		cJSON_AddStringToObject(ev, "change", rating ? "rated" :
		    tr.reopened ? "reopened" : tr.unsnoozed ? "unsnoozed" :
		    "message");
		cJSON_AddBoolToObject(ev, "reopened", tr.reopened);
		if (tr.changed)
			cJSON_AddStringToObject(ev, "why", tr.why);
	}
	if (ro.nmatched > 0) {
		cJSON *m = cJSON_AddArrayToObject(ev, "rules");

		for (size_t i = 0; i < ro.nmatched; i++)
			cJSON_AddItemToArray(m, cJSON_CreateString(
			    ro.matched[i]));
	}
	router__event(r, txn, created ? "conversation.created" :
	    "conversation.updated", ev);
	ev = cJSON_CreateObject();
	cJSON_AddNumberToObject(ev, "conversation_id", (double)conv->id);
	cJSON_AddItemToObject(ev, "message", store_msg_json(&msg, env.json));
	router__event_about(r, txn, "message.created", ev, conv);
	if (routed && conv->assignee != NULL)
		router__assigned(r, txn, conv);
	if (tr.unsnoozed && conv->assignee != NULL)
		router__unsnoozed(r, txn, conv, tr.why);
	if (ro.auto_reply != NULL && router__auto_reply_due(r, conv, &env, now) &&
	    (rc = router__auto_reply(r, txn, &rc_conv, ro.auto_reply,
	    now)) != 0) {
		rc = router__store_fail(rc, "auto-reply", reason, rlen);
		goto out;
	}
out:
	router__conv_finish(&rc_conv);
	inbox_envelope_finish(&env);
	return rc;
}

void
router__unsnoozed(struct router *r, struct store_txn *txn,
    const struct store_conv *conv, const char *why)
{
	cJSON *ev = cJSON_CreateObject();

	cJSON_AddNumberToObject(ev, "conversation_id", (double)conv->id);
	cJSON_AddStringToObject(ev, "assignee", conv->assignee);
	cJSON_AddStringToObject(ev, "why", why);
	router__event_to(r, txn, "conversation.unsnoozed", ev, conv->assignee);
}

