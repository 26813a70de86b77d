/* Messages the router sends to a customer: agents' replies, auto-replies
 * and satisfaction surveys. Each is stored as an outgoing message (status
 * queued) and queued on inbox:out:<connector> with the batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "router/router_int.h"

char *
router__own_message_json(const char *text, const char *author,
    const char *tpl, uint64_t task_id, const char *kind)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(o, "text", text);
	if (author != NULL)
		cJSON_AddStringToObject(o, "author", author);
	if (tpl != NULL)
		cJSON_AddStringToObject(o, "template", tpl);
	if (task_id != 0)
		cJSON_AddNumberToObject(o, "task_id", (double)task_id);
	if (kind != NULL)
		cJSON_AddStringToObject(o, "kind", kind);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s == NULL)
		fatalx("router: out of memory");
	return s;
}

struct tpl_ctx {
	const struct store_contact *contact;
	const struct store_conv *conv;
	const char *agent_login, *agent_name;
	char idbuf[24];
};

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

static const char *
tpl_lookup(void *arg, const char *name)
{
	struct tpl_ctx *t = arg;
	const struct store_contact *ct = t->contact;

	if (strcmp(name, "contact.name") == 0)
		return ct ? nz(ct->name) : "";
	if (strcmp(name, "contact.email") == 0)
		return ct ? nz(ct->email) : "";
	if (strcmp(name, "contact.phone") == 0)
		return ct ? nz(ct->phone) : "";
	if (strcmp(name, "contact.username") == 0)
		return ct ? nz(ct->username) : "";
	if (strcmp(name, "agent.name") == 0)
		return nz(t->agent_name);
	if (strcmp(name, "agent.login") == 0)
		return nz(t->agent_login);
	if (strcmp(name, "conversation.id") == 0) {
		snprintf(t->idbuf, sizeof(t->idbuf), "%llu", t->conv ?
		    (unsigned long long)t->conv->id : 0ULL);
		return t->idbuf;
	}
	if (strcmp(name, "conversation.subject") == 0)
		return t->conv ? nz(t->conv->subject) : "";
	return NULL;
}

int
router__render(const char *tpl, const struct store_contact *contact,
    const struct store_conv *conv, const char *agent_login,
    const char *agent_name, char **out, struct inbox_err *err)
{
	struct tpl_ctx t = { contact, conv, agent_login, agent_name, "" };

	return inbox_template_render(tpl, tpl_lookup, &t, out, err);
}

int
router__queue_reply(struct router *r, struct store_txn *txn,
    const struct store_conv *conv, const struct store_contact *contact,
    const char *text, const char *author, const char *tname,
    const char *kind, int64_t now, uint64_t *msg_id)
{
	struct store_msg m;
	cJSON *ev, *item, *to;
	char ref[32], *json;
	int rv;

	/* The out item names the contact: build it before the writes. */
	item = cJSON_CreateObject();
	cJSON_AddNumberToObject(item, "v", 1);
	cJSON_AddStringToObject(item, "connector", conv->connector);
	if (conv->channel != NULL)
		cJSON_AddStringToObject(item, "channel", conv->channel);
	cJSON_AddNumberToObject(item, "conversation_id", (double)conv->id);
	cJSON_AddStringToObject(item, "thread", conv->thread);
	to = cJSON_AddObjectToObject(item, "contact");
	cJSON_AddNumberToObject(to, "id", (double)conv->contact_id);
	if (contact != NULL) {
		if (contact->external_id != NULL)
			cJSON_AddStringToObject(to, "external_id",
			    contact->external_id);
		if (contact->name != NULL)
			cJSON_AddStringToObject(to, "name", contact->name);
		if (contact->email != NULL)
			cJSON_AddStringToObject(to, "email", contact->email);
		if (contact->phone != NULL)
			cJSON_AddStringToObject(to, "phone", contact->phone);
	}
	if (conv->subject != NULL)
		cJSON_AddStringToObject(item, "subject", conv->subject);
	cJSON_AddStringToObject(item, "text", text);
	if (author != NULL)
		cJSON_AddStringToObject(item, "author", author);
	if (kind != NULL) {
		cJSON_AddStringToObject(item, "kind", kind);
		/* connectors mark it (e-mail: Auto-Submitted: auto-replied) */
		cJSON_AddBoolToObject(item, "auto", true);
	}

	json = router__own_message_json(text, author, tname, 0, kind);
	memset(&m, 0, sizeof(m));
	m.conv_id = conv->id;
	m.contact_id = conv->contact_id;
	m.dir = STORE_DIR_OUT;
	m.ts = m.created = now;
	m.connector = conv->connector;
	m.channel = conv->channel;
	m.envelope = json;
	m.envelope_len = strlen(json);
	m.status = STORE_MS_QUEUED;
	m.status_at = now;
	m.author = author;
	if ((rv = store_msg_add(txn, &m)) != 0) {
		cJSON_Delete(item);
		free(json);
		return rv;
	}
	snprintf(ref, sizeof(ref), "out:%llu", (unsigned long long)m.id);
	cJSON_AddNumberToObject(item, "message_id", (double)m.id);
	cJSON_AddStringToObject(item, "ref", ref);
	ev = cJSON_CreateObject();
	cJSON_AddNumberToObject(ev, "conversation_id", (double)conv->id);
	cJSON_AddItemToObject(ev, "message", store_msg_json(&m, NULL));
	router__event(r, txn, "message.created", ev);
	router__out(r, txn, conv->connector, item);
	free(json);
	if (msg_id != NULL)
		*msg_id = m.id;
	return 0;
}
