/* The JSON views of stored records (docs/protocol.md, "Objects"). */
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "store/store.h"

static const char *const state_names[STORE_STATE__COUNT] = {
	"open", "snoozed", "closed",
};
static const char *const dir_names[] = { "in", "out", "note" };
static const char *const mstatus_names[STORE_MS__COUNT] = {
	"none", "queued", "sent", "delivered", "read", "failed",
};

const char *
store_mstatus_name(int status)
{
	if (status <= STORE_MS_NONE || status >= STORE_MS__COUNT)
		return NULL;
	return mstatus_names[status];
}

int
store_mstatus_parse(const char *name, int *status)
{
	for (int i = STORE_MS_QUEUED; i < STORE_MS__COUNT; i++) {
		if (strcmp(name, mstatus_names[i]) == 0) {
			*status = i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

const char *
store_state_name(int state)
{
	if (state < 0 || state >= STORE_STATE__COUNT)
		return "unknown";
	return state_names[state];
}

int
store_state_parse(const char *name, int *state)
{
	for (int i = 0; i < STORE_STATE__COUNT; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*state = i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

static void
add_str_or_null(cJSON *o, const char *name, const char *s)
{
	if (s != NULL)
		cJSON_AddStringToObject(o, name, s);
	else
		cJSON_AddNullToObject(o, name);
}

static void
add_time_or_null(cJSON *o, const char *name, int64_t t)
{
	if (t > 0)
		cJSON_AddNumberToObject(o, name, (double)t);
	else
		cJSON_AddNullToObject(o, name);
}

/* A time (ms) as a raw JSON number: cJSON prints a double that does not
 * fit an int with "%1.15g" and reads it back to check, the largest CPU
 * item of the router's events (a conversation has up to nine times). */
static void
add_ms(cJSON *o, const char *name, int64_t t)
{
	char buf[24], *p = buf + sizeof(buf) - 1;
	uint64_t v = t < 0 ? (uint64_t)-t : (uint64_t)t;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	if (t < 0)
		*--p = '-';
	cJSON_AddRawToObject(o, name, p);
}

static void
add_ms_or_null(cJSON *o, const char *name, int64_t t)
{
	if (t > 0)
		add_ms(o, name, t);
	else
		cJSON_AddNullToObject(o, name);
}

void *
store_conv_json(struct store_txn *txn, const struct store_conv *c)
{
	cJSON *o = cJSON_CreateObject(), *ct, *tags;
	struct store_contact contact;

	cJSON_AddNumberToObject(o, "id", (double)c->id);
	ct = cJSON_AddObjectToObject(o, "contact");
	cJSON_AddNumberToObject(ct, "id", (double)c->contact_id);
	if (store_contact_get(txn, c->contact_id, &contact) == 0) {
		add_str_or_null(ct, "name", contact.name);
		if (contact.email != NULL)
			cJSON_AddStringToObject(ct, "email", contact.email);
		if (contact.phone != NULL)
			cJSON_AddStringToObject(ct, "phone", contact.phone);
		if (contact.username != NULL)
			cJSON_AddStringToObject(ct, "username", contact.username);
	}
	add_str_or_null(o, "channel", c->channel);
	cJSON_AddStringToObject(o, "connector", c->connector);
	cJSON_AddStringToObject(o, "thread", c->thread);
	cJSON_AddStringToObject(o, "state", store_state_name(c->state));
	add_ms_or_null(o, "snooze_until", c->snooze_until);
	add_str_or_null(o, "assignee", c->assignee);
	tags = cJSON_AddArrayToObject(o, "tags");
	for (size_t i = 0; i < c->ntags; i++)
		cJSON_AddItemToArray(tags, cJSON_CreateString(c->tags[i]));
	cJSON_AddStringToObject(o, "priority", inbox_priority_name(c->priority));
	add_str_or_null(o, "nature", inbox_nature_name(c->nature));
	add_str_or_null(o, "subject", c->subject);
	add_str_or_null(o, "outcome", c->outcome);
	add_str_or_null(o, "preview", c->preview);
	add_ms(o, "created", c->created);
	add_ms(o, "updated", c->updated);
	add_ms_or_null(o, "last_customer_msg_at", c->last_customer_msg_at);
	add_ms_or_null(o, "first_response_at", c->first_response_at);
	add_ms_or_null(o, "closed_at", c->closed_at);
	cJSON_AddNumberToObject(o, "reopen_count", c->reopen_count);
	cJSON_AddNumberToObject(o, "message_count", c->message_count);
	if (c->rating != 0) {
		cJSON_AddNumberToObject(o, "rating", c->rating);
		add_ms_or_null(o, "rated_at", c->rated_at);
	}
	if (c->sla_policy != NULL) {
		cJSON *sla = cJSON_AddObjectToObject(o, "sla");

		cJSON_AddStringToObject(sla, "policy", c->sla_policy);
		for (int k = 0; k < INBOX_SLA__COUNT; k++) {
			char name[40];

			snprintf(name, sizeof(name), "due_%s",
			    inbox_sla_kind_name(k));
			add_ms_or_null(sla, name, c->sla.t[k].due_at);
		}
		cJSON_AddBoolToObject(sla, "warned",
		    (c->sla.fired & 0x15) != 0);
		cJSON_AddBoolToObject(sla, "breached",
		    (c->sla.fired & 0x2a) != 0);
	}
	return o;
}

void *
store_agent_json(const struct store_agent *a, uint32_t load, int64_t now,
    int64_t lease_ms)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "login", a->login);
	cJSON_AddStringToObject(o, "name", a->name ? a->name : a->login);
	cJSON_AddStringToObject(o, "role", a->role ? a->role : "agent");
	add_str_or_null(o, "teams", a->teams);
	add_str_or_null(o, "skills", a->skills);
	if (a->capacity >= 0)
		cJSON_AddNumberToObject(o, "capacity", a->capacity);
	else
		cJSON_AddNullToObject(o, "capacity");
	cJSON_AddStringToObject(o, "presence", store_presence_name(
	    store_agent_presence(a, now, lease_ms)));
	cJSON_AddNumberToObject(o, "load", load);
	add_time_or_null(o, "last_assigned", a->last_assigned);
	return o;
}

void *
store_msg_json(const struct store_msg *m, const void *envelope)
{
	static const char *const copied[] = {
		"text", "subject", "html", "attachments", "reply_to", "template",
		"task_id", "edits", "text_full", "kind",
	};
	cJSON *o = cJSON_CreateObject();
	cJSON *env;

	cJSON_AddNumberToObject(o, "id", (double)m->id);
	cJSON_AddNumberToObject(o, "conversation_id", (double)m->conv_id);
	cJSON_AddNumberToObject(o, "contact_id", (double)m->contact_id);
	cJSON_AddStringToObject(o, "direction",
	    (unsigned)m->dir < 3 ? dir_names[m->dir] : "unknown");
	add_str_or_null(o, "status", store_mstatus_name(m->status));
	if (m->status_error != NULL)
		cJSON_AddStringToObject(o, "status_error", m->status_error);
	add_str_or_null(o, "author", m->author);
	add_ms(o, "ts", m->ts);
	add_ms(o, "created", m->created);
	cJSON_AddStringToObject(o, "connector", m->connector);
	add_str_or_null(o, "channel", m->channel);
	add_str_or_null(o, "external_id", m->external_id);
	if (envelope != NULL) {
		for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
			const cJSON *it = cJSON_GetObjectItemCaseSensitive(
			    envelope, copied[i]);
			if (it != NULL)
				cJSON_AddItemToObject(o, copied[i],
				    cJSON_Duplicate(it, 1));
		}
		return o;
	}
	env = cJSON_ParseWithLength(m->envelope, m->envelope_len);
	if (env == NULL) {
		cJSON_AddStringToObject(o, "text", "");
		return o;
	}
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
		cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(env,
		    copied[i]);
		if (it != NULL)
			cJSON_AddItemToObject(o, copied[i], it);
	}
	cJSON_Delete(env);
	return o;
}

struct feed_json {
	struct store_txn *txn;
	cJSON *arr;
};

static int
feed_json_one(void *arg, const struct store_conv *c)
{
	struct feed_json *f = arg;

	cJSON_AddItemToArray(f->arr, store_conv_json(f->txn, c));
	return 0;
}

int
store_feed_json(struct store_txn *txn, const struct store_feed_q *q,
    void *arr, bool *more, int64_t *next_key, uint64_t *next_id)
{
	struct feed_json f = { txn, arr };

	return store_feed(txn, q, feed_json_one, &f, more, next_key, next_id);
}

void *
store_task_json(const struct store_task *tk)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "id", (double)tk->id);
	cJSON_AddNumberToObject(o, "conversation_id", (double)tk->conv_id);
	if (tk->msg_id != 0)
		cJSON_AddNumberToObject(o, "message_id", (double)tk->msg_id);
	else
		cJSON_AddNullToObject(o, "message_id");
	cJSON_AddStringToObject(o, "title", tk->title);
	add_str_or_null(o, "assignee", tk->assignee);
	add_str_or_null(o, "created_by", tk->created_by);
	add_time_or_null(o, "due", tk->due);
	cJSON_AddBoolToObject(o, "done", tk->done);
	cJSON_AddNumberToObject(o, "created", (double)tk->created);
	cJSON_AddNumberToObject(o, "updated", (double)tk->updated);
	return o;
}

void *
store_template_json(const struct store_template *t)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "text", t->text);
	cJSON_AddNumberToObject(o, "updated", (double)t->updated);
	add_str_or_null(o, "updated_by", t->updated_by);
	return o;
}

void *
store_contact_json(const struct store_contact *c)
{
	cJSON *o = cJSON_CreateObject(), *f;

	cJSON_AddNumberToObject(o, "id", (double)c->id);
	add_str_or_null(o, "name", c->name);
	add_str_or_null(o, "email", c->email);
	add_str_or_null(o, "phone", c->phone);
	add_str_or_null(o, "username", c->username);
	add_str_or_null(o, "channel", c->channel);
	add_str_or_null(o, "connector", c->connector);
	add_str_or_null(o, "external_id", c->external_id);
	f = c->fields ? cJSON_Parse(c->fields) : NULL;
	if (!cJSON_IsObject(f)) {
		cJSON_Delete(f);
		f = cJSON_CreateObject();
	}
	cJSON_AddItemToObject(o, "fields", f);
	cJSON_AddNumberToObject(o, "created", (double)c->created);
	add_time_or_null(o, "updated", c->updated);
	return o;
}
