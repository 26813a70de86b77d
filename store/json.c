/* The JSON views of stored records (docs/protocol.md, "Objects"). */
#include <string.h>

#include <cjson/cJSON.h>

#include "store/store.h"

static const char *const state_names[STORE_STATE__COUNT] = {
	"open", "snoozed", "closed",
};
static const char *const dir_names[] = { "in", "out", "note" };

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

void *
store_conv_json(struct store_txn *txn, const struct store_conv *c)
{
	cJSON *o = cJSON_CreateObject(), *ct;
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
	add_time_or_null(o, "snooze_until", c->snooze_until);
	add_str_or_null(o, "assignee", c->assignee);
	cJSON_AddArrayToObject(o, "tags");
	cJSON_AddStringToObject(o, "priority", c->priority ? c->priority :
	    "normal");
	add_str_or_null(o, "subject", c->subject);
	cJSON_AddNumberToObject(o, "created", (double)c->created);
	cJSON_AddNumberToObject(o, "updated", (double)c->updated);
	add_time_or_null(o, "last_customer_msg_at", c->last_customer_msg_at);
	cJSON_AddNumberToObject(o, "message_count", c->message_count);
	return o;
}

void *
store_msg_json(const struct store_msg *m, const void *envelope)
{
	static const char *const copied[] = {
		"text", "subject", "html", "attachments", "reply_to",
	};
	cJSON *o = cJSON_CreateObject();
	cJSON *env;

	cJSON_AddNumberToObject(o, "id", (double)m->id);
	cJSON_AddNumberToObject(o, "conversation_id", (double)m->conv_id);
	cJSON_AddNumberToObject(o, "contact_id", (double)m->contact_id);
	cJSON_AddStringToObject(o, "direction",
	    (unsigned)m->dir < 3 ? dir_names[m->dir] : "unknown");
	cJSON_AddNullToObject(o, "status");
	cJSON_AddNumberToObject(o, "ts", (double)m->ts);
	cJSON_AddNumberToObject(o, "created", (double)m->created);
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
	int64_t updated;
	uint64_t id;
};

static int
feed_json_one(void *arg, const struct store_conv *c)
{
	struct feed_json *f = arg;

	cJSON_AddItemToArray(f->arr, store_conv_json(f->txn, c));
	f->updated = c->updated;
	f->id = c->id;
	return 0;
}

int
store_feed_json(struct store_txn *txn, int state, int64_t *updated,
    uint64_t *id, size_t limit, void *arr, bool *more)
{
	struct feed_json f = { txn, arr, *updated, *id };
	int rc;

	rc = store_feed(txn, state, *updated, *id, limit, feed_json_one, &f,
	    more);
	*updated = f.updated;
	*id = f.id;
	return rc;
}
