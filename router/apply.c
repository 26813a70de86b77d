/* What the router does with an envelope or a command, inside the batch's
 * write transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "router/router_int.h"

static int
store_fail(int rc, const char *what, char *reason, size_t rlen)
{
	snprintf(reason, rlen, "store: %s: %s", what, inbox_strerror(rc));
	return rc;
}

/* The contact behind an envelope: found by (connector, contact id) or
 * created from what the channel tells. */
static int
contact_for(struct store_txn *txn, const struct inbox_envelope *env,
    int64_t now, uint64_t *id)
{
	struct store_contact c;
	int rc;

	rc = store_contact_find_ext(txn, env->connector,
	    env->contact.external_id, id);
	if (rc != INBOX_ENOTFOUND)
		return rc;
	memset(&c, 0, sizeof(c));
	c.connector = env->connector;
	c.channel = inbox_channel_name(env->channel);
	c.external_id = env->contact.external_id;
	c.name = env->contact.name;
	c.email = env->contact.email;
	c.phone = env->contact.phone;
	c.username = env->contact.username;
	c.created = now;
	if ((rc = store_contact_put(txn, &c)) != 0)
		return rc;
	*id = c.id;
	return 0;
}

int
router__apply_envelope(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen)
{
	struct inbox_envelope env;
	struct inbox_err err;
	struct store_conv conv;
	struct store_msg msg;
	uint64_t id, contact_id, conv_id;
	char *subject = NULL, *assignee = NULL, *priority = NULL;
	bool created = false;
	cJSON *ev;
	int rc;

	if (inbox_envelope_decode(&env, data, len, &err) != 0) {
		snprintf(reason, rlen, "invalid envelope: %s", err.msg);
		return INBOX_EINVAL;
	}
	if (inbox_config_connector(r->cfg, env.connector) == NULL)
		log_debug("router: envelope from connector '%s' that this "
		    "config does not list", env.connector);
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
		rc = store_fail(rc, "message lookup", reason, rlen);
		goto out;
	}
	if ((rc = contact_for(txn, &env, now, &contact_id)) != 0) {
		rc = store_fail(rc, "contact", reason, rlen);
		goto out;
	}

	rc = store_conv_find_thread(txn, env.connector, env.thread, &conv_id);
	if (rc == INBOX_ENOTFOUND) {
		memset(&conv, 0, sizeof(conv));
		conv.contact_id = contact_id;
		conv.connector = env.connector;
		conv.channel = inbox_channel_name(env.channel);
		conv.thread = env.thread;
		conv.subject = env.subject;
		conv.priority = "normal";
		conv.state = STORE_STATE_OPEN;
		conv.created = now;
		created = true;
		rc = 0;
	} else if (rc == 0 &&
	    (rc = store_conv_get(txn, conv_id, &conv)) == 0) {
		/* The record's strings die with the next update: own them. */
		conv.connector = env.connector;
		conv.thread = env.thread;
		conv.channel = inbox_channel_name(env.channel);
		subject = conv.subject ? xstrdup(conv.subject) : NULL;
		assignee = conv.assignee ? xstrdup(conv.assignee) : NULL;
		priority = xstrdup(conv.priority ? conv.priority : "normal");
		conv.subject = subject;
		conv.assignee = assignee;
		conv.priority = priority;
	}
	if (rc != 0) {
		rc = store_fail(rc, "conversation", reason, rlen);
		goto out;
	}
	conv.updated = now;
	if (env.ts > conv.last_customer_msg_at)
		conv.last_customer_msg_at = env.ts;
	conv.message_count++;
	if ((rc = store_conv_put(txn, &conv)) != 0) {
		rc = store_fail(rc, "conversation put", reason, rlen);
		goto out;
	}

	memset(&msg, 0, sizeof(msg));
	msg.conv_id = conv.id;
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
		rc = store_fail(rc, "message add", reason, rlen);
		goto out;
	}

	ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "conversation", store_conv_json(txn, &conv));
	router__event(r, txn, created ? "conversation.created" :
	    "conversation.updated", ev);
	ev = cJSON_CreateObject();
	cJSON_AddNumberToObject(ev, "conversation_id", (double)conv.id);
	cJSON_AddItemToObject(ev, "message", store_msg_json(&msg, env.json));
	router__event(r, txn, "message.created", ev);
out:
	free(subject);
	free(assignee);
	free(priority);
	inbox_envelope_finish(&env);
	return rc;
}

/* ---- commands ------------------------------------------------------ */

static bool
login_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *
str_field(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void
command_failed(struct router *r, struct store_txn *txn, const char *cmd_id,
    const char *type, const char *code, const char *message)
{
	cJSON *ev = cJSON_CreateObject(), *e;

	cJSON_AddStringToObject(ev, "cmd_id", cmd_id);
	cJSON_AddStringToObject(ev, "command", type);
	e = cJSON_AddObjectToObject(ev, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	router__event(r, txn, "command.failed", ev);
}

static int
agent_command(struct router *r, struct store_txn *txn, const cJSON *cmd,
    const char *type, const char *cmd_id, int64_t now, char *reason,
    size_t rlen)
{
	bool add = strcmp(type, "agent.add") == 0;
	const char *login = str_field(cmd, "login");
	const char *pwhash = str_field(cmd, "pwhash");
	const char *name = str_field(cmd, "name");
	const char *role = str_field(cmd, "role");
	struct store_agent a, old;
	cJSON *ev;
	int rc;

	if (login == NULL || !login_valid(login)) {
		snprintf(reason, rlen, "%s: login: missing or invalid "
		    "(1-64 of a-z0-9._-)", type);
		return INBOX_EINVAL;
	}
	if (pwhash == NULL || strncmp(pwhash, "$argon2", 7) != 0 ||
	    strlen(pwhash) > 256) {
		snprintf(reason, rlen, "%s: pwhash: missing or not an argon2 "
		    "hash", type);
		return INBOX_EINVAL;
	}
	if (role != NULL && strcmp(role, "agent") != 0 &&
	    strcmp(role, "supervisor") != 0 && strcmp(role, "admin") != 0) {
		snprintf(reason, rlen, "%s: role: unknown role '%s'", type, role);
		return INBOX_EINVAL;
	}
	if (name != NULL && (strlen(name) > 256 ||
	    inbox_utf8_invalid_at(name, strlen(name)) >= 0)) {
		snprintf(reason, rlen, "%s: name: too long or not UTF-8", type);
		return INBOX_EINVAL;
	}
	rc = store_agent_get(txn, login, &old);
	if (rc != 0 && rc != INBOX_ENOTFOUND)
		return store_fail(rc, "agent", reason, rlen);
	if (add && rc == 0) {
		command_failed(r, txn, cmd_id, type, "exists",
		    "an agent with this login exists");
		return 0;
	}
	if (!add && rc == INBOX_ENOTFOUND) {
		command_failed(r, txn, cmd_id, type, "not_found",
		    "no agent with this login");
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.login = login;
	a.pwhash = pwhash;
	a.updated = now;
	if (add) {
		a.name = name ? name : login;
		a.role = role ? role : "agent";
		a.created = now;
	} else {
		a.name = name ? name : old.name;
		a.role = role ? role : old.role;
		a.created = old.created;
	}
	/* `old` points into the page the put may rewrite: use the copies the
	 * event needs before putting. */
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "login", a.login);
	cJSON_AddStringToObject(ev, "name", a.name ? a.name : a.login);
	cJSON_AddStringToObject(ev, "role", a.role ? a.role : "agent");
	cJSON_AddStringToObject(ev, "cmd_id", cmd_id);
	if ((rc = store_agent_put(txn, &a)) != 0) {
		cJSON_Delete(ev);
		return store_fail(rc, "agent put", reason, rlen);
	}
	router__event(r, txn, "agent.updated", ev);
	return 0;
}

int
router__apply_command(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen)
{
	const cJSON *v;
	const char *type, *cmd_id;
	cJSON *cmd;
	int rc;

	cmd = cJSON_ParseWithLength(data, len);
	if (cmd == NULL || !cJSON_IsObject(cmd)) {
		snprintf(reason, rlen, "command: not a JSON object");
		cJSON_Delete(cmd);
		return INBOX_EINVAL;
	}
	v = cJSON_GetObjectItemCaseSensitive(cmd, "v");
	type = str_field(cmd, "type");
	cmd_id = str_field(cmd, "cmd_id");
	if (!cJSON_IsNumber(v) || v->valuedouble != 1) {
		snprintf(reason, rlen, "command: v: missing or unsupported");
		rc = INBOX_EINVAL;
	} else if (type == NULL) {
		snprintf(reason, rlen, "command: type: missing");
		rc = INBOX_EINVAL;
	} else if (cmd_id == NULL || strlen(cmd_id) > 128) {
		snprintf(reason, rlen, "command: cmd_id: missing or too long");
		rc = INBOX_EINVAL;
	} else if (strcmp(type, "agent.add") == 0 ||
	    strcmp(type, "agent.passwd") == 0) {
		rc = agent_command(r, txn, cmd, type, cmd_id, now, reason, rlen);
	} else {
		snprintf(reason, rlen, "command: unknown type '%.64s'", type);
		rc = INBOX_EINVAL;
	}
	cJSON_Delete(cmd);
	return rc;
}
