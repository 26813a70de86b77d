/* Agent and admin commands from inbox:cmd (docs/protocol.md, "Commands"),
 * applied inside the batch's write transaction. A command that names its
 * cmd_id is answered by its own event or by command.failed; only an entry
 * that is not a command at all goes to the dead-letter stream. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "router/router_int.h"

#define TEXT_MAX (64 * 1024)
#define TITLE_MAX 500
#define FIELD_MAX 1000
#define TEMPLATE_NAME_MAX 64
#define FIELDS_JSON_MAX 8192

enum role { ROLE_AGENT, ROLE_SUPERVISOR, ROLE_ADMIN };

/* One command being applied. */
struct cmd {
	struct router *r;
	struct store_txn *txn;
	const cJSON *json;
	const char *type, *cmd_id;
	const char *actor;       /* login; NULL: the operator (inboxctl) */
	char actor_name[257];
	char actor_teams[1024];
	int role;
	int64_t now;
	bool failed;             /* command.failed was emitted */
	char *reason;            /* for errors that are fatal or dead letters */
	size_t rlen;
};

static const char *
str_field(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool
has_field(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name) != NULL;
}

/* Emits command.failed and returns 0 (the command was handled). */
static int __attribute__((format(printf, 3, 4)))
refuse(struct cmd *c, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	cJSON *ev = cJSON_CreateObject(), *e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON_AddStringToObject(ev, "cmd_id", c->cmd_id);
	cJSON_AddStringToObject(ev, "command", c->type);
	e = cJSON_AddObjectToObject(ev, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	router__event(c->r, c->txn, "command.failed", ev);
	c->failed = true;
	log_debug("router: %s %s refused: %s: %s", c->type, c->cmd_id, code,
	    msg);
	return 0;
}

static int
fail_store(struct cmd *c, int rc, const char *what)
{
	return router__store_fail(rc, what, c->reason, c->rlen);
}

/* A text field: absent (returns 1, *out NULL when !required), or a valid
 * UTF-8 string of at most max bytes (returns 1). Returns 0 after refusing. */
static int
text_arg(struct cmd *c, const char *name, size_t max, bool required,
    bool nullable, const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->json, name);

	*out = NULL;
	if (it == NULL || (nullable && cJSON_IsNull(it))) {
		if (required)
			return refuse(c, "bad_request", "%s: missing", name), 0;
		return 1;
	}
	if (!cJSON_IsString(it))
		return refuse(c, "bad_request", "%s: wrong type (expected "
		    "string)", name), 0;
	if (strlen(it->valuestring) > max)
		return refuse(c, "bad_request", "%s: too long (%zu bytes, at "
		    "most %zu)", name, strlen(it->valuestring), max), 0;
	if (inbox_utf8_invalid_at(it->valuestring, strlen(it->valuestring)) >= 0)
		return refuse(c, "bad_request", "%s: invalid UTF-8", name), 0;
	*out = it->valuestring;
	return 1;
}

/* An id field (a positive integer). Returns 1, or 0 after refusing. */
static int
id_arg(struct cmd *c, const char *name, bool required, uint64_t *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->json, name);

	*out = 0;
	if (it == NULL || cJSON_IsNull(it)) {
		if (required)
			return refuse(c, "bad_request", "%s: missing", name), 0;
		return 1;
	}
	if (!cJSON_IsNumber(it) || it->valuedouble < 1 ||
	    it->valuedouble > 9007199254740992.0 ||
	    it->valuedouble != (double)(uint64_t)it->valuedouble)
		return refuse(c, "bad_request", "%s: expected a positive "
		    "integer", name), 0;
	*out = (uint64_t)it->valuedouble;
	return 1;
}

/* A time in ms: absent (0), null (0 when nullable) or a positive integer. */
static int
time_arg(struct cmd *c, const char *name, int64_t *out)
{
	uint64_t v;

	if (!id_arg(c, name, false, &v))
		return 0;
	*out = (int64_t)v;
	return 1;
}

/* Is the actor an agent who exists (or the operator)? Sets role. Returns
 * 1, or 0 when refused or on a store error (*err set). */
static int
load_actor(struct cmd *c, int *err)
{
	struct store_agent a;
	int rc;

	*err = 0;
	c->role = ROLE_ADMIN;
	c->actor_name[0] = '\0';
	if (c->actor == NULL)
		return 1;
	rc = store_agent_get(c->txn, c->actor, &a);
	if (rc == INBOX_ENOTFOUND)
		return refuse(c, "forbidden", "actor '%.64s' is not an agent",
		    c->actor), 0;
	if (rc != 0) {
		*err = fail_store(c, rc, "actor");
		return 0;
	}
	c->role = strcmp(a.role, "admin") == 0 ? ROLE_ADMIN :
	    strcmp(a.role, "supervisor") == 0 ? ROLE_SUPERVISOR : ROLE_AGENT;
	snprintf(c->actor_name, sizeof(c->actor_name), "%s",
	    a.name ? a.name : a.login);
	snprintf(c->actor_teams, sizeof(c->actor_teams), "%s",
	    a.teams ? a.teams : "");
	return 1;
}

static bool
may_supervise(const struct cmd *c)
{
	return c->role >= ROLE_SUPERVISOR;
}

/* Agents act on their own dialogs and unassigned ones; supervisors and
 * admins on every dialog. */
static bool
may_handle(const struct cmd *c, const struct store_conv *conv)
{
	return may_supervise(c) || conv->assignee == NULL ||
	    (c->actor != NULL && strcmp(conv->assignee, c->actor) == 0);
}

static bool
agent_exists(struct cmd *c, const char *login, int *rc)
{
	struct store_agent a;

	*rc = store_agent_get(c->txn, login, &a);
	if (*rc == INBOX_ENOTFOUND) {
		*rc = 0;
		return false;
	}
	return *rc == 0;
}

/* Loads the conversation named by field "id" into rc. Returns 1, or 0 when
 * refused (or on a store error, with c->reason set and *err). */
static int
load_conv(struct cmd *c, struct router_conv *rc, int *err)
{
	uint64_t id;
	int rv;

	*err = 0;
	memset(rc, 0, sizeof(*rc));
	if (!id_arg(c, "id", true, &id))
		return 0;
	rv = router__conv_load(c->txn, id, rc);
	/* another team's dialog does not exist for an agent (as in the
	 * gateway's feeds) */
	if (rv == 0 && c->actor != NULL && !inbox_conv_visible(c->r->cfg,
	    rc->c.connector, rc->c.assignee, c->actor, c->role == ROLE_ADMIN ?
	    "admin" : c->role == ROLE_SUPERVISOR ? "supervisor" : "agent",
	    c->actor_teams)) {
		router__conv_finish(rc);
		rv = INBOX_ENOTFOUND;
	}
	if (rv == INBOX_ENOTFOUND)
		return refuse(c, "not_found", "no conversation %llu",
		    (unsigned long long)id), 0;
	if (rv != 0) {
		*err = fail_store(c, rv, "conversation");
		return 0;
	}
	return 1;
}

static void
conv_event(struct cmd *c, const struct store_conv *conv, const char *change)
{
	cJSON *ev = cJSON_CreateObject();

	cJSON_AddItemToObject(ev, "conversation", store_conv_json(c->txn, conv));
	cJSON_AddStringToObject(ev, "change", change);
	if (c->actor != NULL)
		cJSON_AddStringToObject(ev, "by", c->actor);
	router__event(c->r, c->txn, "conversation.updated", ev);
}

static int
put_conv(struct cmd *c, struct router_conv *rc, const char *change)
{
	int rv;

	/* SLA timers, and whether queued dialogs may move now */
	if (strcmp(change, "closed") == 0) {
		router__sla_event(c->r, rc, ROUTER_SLA_CLOSED, c->now);
		router__survey(c->r, c->txn, rc, c->now, &rv);
		if (rv != 0)
			return fail_store(c, rv, "survey");
		c->r->drain = true;
	} else if (strcmp(change, "reopened") == 0) {
		router__sla_event(c->r, rc, ROUTER_SLA_REOPENED, c->now);
		rc->c.survey_sent_at = 0;
	} else if (strcmp(change, "replied") == 0) {
		router__sla_event(c->r, rc, ROUTER_SLA_REPLIED, c->now);
	} else if (strcmp(change, "tagged") == 0 || strcmp(change, "set") == 0) {
		router__sla_event(c->r, rc, ROUTER_SLA_RECHECK, c->now);
		c->r->drain = true;
	} else {
		c->r->drain = true;  /* snoozed, assigned */
	}
	rc->c.updated = c->now;
	if ((rv = store_conv_put(c->txn, &rc->c)) != 0)
		return fail_store(c, rv, "conversation put");
	conv_event(c, &rc->c, change);
	return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int
cmd_lifecycle(struct cmd *c, int action)
{
	static const char *const change[] = {
		[INBOX_DA_CLOSE] = "closed", [INBOX_DA_SNOOZE] = "snoozed",
		[INBOX_DA_REOPEN] = "reopened",
	};
	struct router_conv rc;
	struct inbox_dialog d;
	struct inbox_dtransition t;
	struct inbox_err err;
	int64_t until = 0;
	int rv, e;

	if (!load_conv(c, &rc, &e))
		goto out;
	if (action == INBOX_DA_SNOOZE) {
		if (!time_arg(c, "until", &until))
			goto out;
		if (until == 0) {
			refuse(c, "bad_request", "until: missing");
			goto out;
		}
	}
	if (!may_handle(c, &rc.c)) {
		refuse(c, "forbidden", "conversation %llu is assigned to %s",
		    (unsigned long long)rc.c.id, rc.c.assignee);
		goto out;
	}
	d.state = rc.c.state;
	d.snooze_until = rc.c.snooze_until;
	d.closed_at = rc.c.closed_at;
	d.reopen_count = rc.c.reopen_count;
	rv = inbox_dialog_apply(&d, action, until, c->now, &t, &err);
	if (rv == INBOX_ESTATE) {
		refuse(c, "illegal_transition", "%s", err.msg);
		goto out;
	}
	if (rv != 0) {
		refuse(c, "bad_request", "%s", err.msg);
		goto out;
	}
	rc.c.state = d.state;
	rc.c.snooze_until = d.snooze_until;
	rc.c.closed_at = d.closed_at;
	rc.c.reopen_count = d.reopen_count;
	e = put_conv(c, &rc, change[action]);
out:
	router__conv_finish(&rc);
	return e;
}

/* ---- assignment, tags, fields ----------------------------------------------- */

static int
cmd_assign(struct cmd *c)
{
	const cJSON *ja = cJSON_GetObjectItemCaseSensitive(c->json, "assignee");
	struct router_conv rc;
	const char *login = NULL;
	int e, rv;

	if (!load_conv(c, &rc, &e))
		goto out;
	if (ja == NULL || (!cJSON_IsNull(ja) && !cJSON_IsString(ja))) {
		refuse(c, "bad_request", "assignee: expected a login or null");
		goto out;
	}
	if (cJSON_IsString(ja)) {
		login = ja->valuestring;
		if (!inbox_login_valid(login)) {
			refuse(c, "bad_request", "assignee: not a login");
			goto out;
		}
		if (!agent_exists(c, login, &rv)) {
			if (rv != 0)
				e = fail_store(c, rv, "assignee");
			else
				refuse(c, "not_found", "no agent '%s'", login);
			goto out;
		}
	}
	if (!may_handle(c, &rc.c)) {
		refuse(c, "forbidden", "conversation %llu is assigned to %s",
		    (unsigned long long)rc.c.id, rc.c.assignee);
		goto out;
	}
	router__conv_set(&rc, &rc.c.assignee, login);
	if ((e = put_conv(c, &rc, "assigned")) != 0)
		goto out;
	if (login != NULL && (c->actor == NULL || strcmp(login, c->actor) != 0)) {
		cJSON *ev = cJSON_CreateObject();

		cJSON_AddNumberToObject(ev, "conversation_id", (double)rc.c.id);
		cJSON_AddStringToObject(ev, "assignee", login);
		if (c->actor != NULL)
			cJSON_AddStringToObject(ev, "by", c->actor);
		router__event_to(c->r, c->txn, "conversation.assigned", ev, login);
	}
out:
	router__conv_finish(&rc);
	return e;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Normalizes every string of array `name` into tags[]. Returns the count,
 * or -1 after refusing. */
static int
tag_list(struct cmd *c, const char *name, char tags[][INBOX_TAG_MAX + 1],
    size_t max)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(c->json, name);
	const cJSON *it;
	struct inbox_err err;
	size_t n = 0;

	if (arr == NULL)
		return 0;
	if (!cJSON_IsArray(arr))
		return refuse(c, "bad_request", "%s: expected an array of tags",
		    name), -1;
	cJSON_ArrayForEach(it, arr) {
		if (n == max)
			return refuse(c, "bad_request", "%s: more than %zu tags",
			    name, max), -1;
		if (!cJSON_IsString(it))
			return refuse(c, "bad_request", "%s[%zu]: not a string",
			    name, n), -1;
		if (inbox_tag_normalize(it->valuestring, tags[n],
		    INBOX_TAG_MAX + 1, &err) != 0)
			return refuse(c, "bad_request", "%s[%zu]: %s", name, n,
			    err.msg), -1;
		n++;
	}
	return (int)n;
}

static int
cmd_tag(struct cmd *c)
{
	char add[STORE_TAGS_MAX][INBOX_TAG_MAX + 1];
	char del[STORE_TAGS_MAX][INBOX_TAG_MAX + 1];
	struct router_conv rc;
	int nadd, ndel, e, rv;

	if (!load_conv(c, &rc, &e))
		goto out;
	if ((nadd = tag_list(c, "add", add, STORE_TAGS_MAX)) < 0 ||
	    (ndel = tag_list(c, "remove", del, STORE_TAGS_MAX)) < 0)
		goto out;
	for (int i = 0; i < ndel; i++) {
		for (size_t j = 0; j < rc.c.ntags; j++) {
			if (strcmp(rc.c.tags[j], del[i]) == 0) {
				rc.c.tags[j] = rc.c.tags[--rc.c.ntags];
				break;
			}
		}
	}
	for (int i = 0; i < nadd; i++) {
		rv = router__conv_add_tag(c->txn, &rc, add[i], c->now);
		if (rv == INBOX_ETOOBIG) {
			refuse(c, "bad_request", "a conversation has at most %d "
			    "tags", STORE_TAGS_MAX);
			goto out;
		}
		if (rv != 0) {
			e = fail_store(c, rv, "tag");
			goto out;
		}
	}
	qsort(rc.c.tags, rc.c.ntags, sizeof(rc.c.tags[0]), cmp_str);
	e = put_conv(c, &rc, "tagged");
out:
	router__conv_finish(&rc);
	return e;
}

static int
cmd_set(struct cmd *c)
{
	const char *prio, *nature, *subject, *outcome;
	struct router_conv rc;
	int p, n, e;

	if (!load_conv(c, &rc, &e))
		goto out;
	if (!text_arg(c, "priority", 16, false, false, &prio) ||
	    !text_arg(c, "nature", 16, false, true, &nature) ||
	    !text_arg(c, "subject", FIELD_MAX, false, true, &subject) ||
	    !text_arg(c, "outcome", FIELD_MAX * 4, false, true, &outcome))
		goto out;
	if (prio != NULL && inbox_priority_parse(prio, &p) != 0) {
		refuse(c, "bad_request", "priority: not one of low, normal, "
		    "high, urgent");
		goto out;
	}
	if (nature != NULL && inbox_nature_parse(nature, &n) != 0) {
		refuse(c, "bad_request", "nature: not one of inquiry, complaint, "
		    "proposal, order, other");
		goto out;
	}
	if (prio != NULL)
		rc.c.priority = p;
	if (has_field(c->json, "nature"))
		rc.c.nature = nature ? n : INBOX_NATURE_NONE;
	if (has_field(c->json, "subject"))
		router__conv_set(&rc, &rc.c.subject, subject);
	if (has_field(c->json, "outcome"))
		router__conv_set(&rc, &rc.c.outcome, outcome);
	e = put_conv(c, &rc, "set");
out:
	router__conv_finish(&rc);
	return e;
}

/* ---- notes, replies -------------------------------------------------------- */

struct mention_ctx {
	struct cmd *c;
	uint64_t conv_id, note_id;
	const char *text;
	int err;
};

static int
mention_one(void *arg, const char *login)
{
	struct mention_ctx *m = arg;
	cJSON *ev;
	int rv;

	if (m->c->actor != NULL && strcmp(login, m->c->actor) == 0)
		return 0;
	if (!agent_exists(m->c, login, &rv)) {
		m->err = rv;
		return rv;
	}
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "agent", login);
	cJSON_AddNumberToObject(ev, "conversation_id", (double)m->conv_id);
	cJSON_AddNumberToObject(ev, "note_id", (double)m->note_id);
	if (m->c->actor != NULL)
		cJSON_AddStringToObject(ev, "by", m->c->actor);
	cJSON_AddStringToObject(ev, "text", m->text);
	router__event_to(m->c->r, m->c->txn, "mention", ev, login);
	return 0;
}

/* The JSON a note or reply keeps in place of an envelope. */
static int
cmd_note(struct cmd *c)
{
	struct router_conv rc;
	struct store_msg m;
	struct mention_ctx mc;
	const char *text;
	char *json = NULL, *text_copy = NULL;
	cJSON *ev;
	int e, rv;

	if (!load_conv(c, &rc, &e))
		goto out;
	if (!text_arg(c, "text", TEXT_MAX, true, false, &text))
		goto out;
	if (text[0] == '\0') {
		refuse(c, "bad_request", "text: empty");
		goto out;
	}
	text_copy = xstrdup(text);
	json = router__own_message_json(text, c->actor, NULL, 0, NULL);
	memset(&m, 0, sizeof(m));
	m.conv_id = rc.c.id;
	m.contact_id = rc.c.contact_id;
	m.dir = STORE_DIR_NOTE;
	m.ts = m.created = c->now;
	m.connector = rc.c.connector;
	m.channel = rc.c.channel;
	m.envelope = json;
	m.envelope_len = strlen(json);
	m.author = c->actor;
	if ((rv = store_msg_add(c->txn, &m)) != 0) {
		e = fail_store(c, rv, "note");
		goto out;
	}
	ev = cJSON_CreateObject();
	cJSON_AddNumberToObject(ev, "conversation_id", (double)rc.c.id);
	cJSON_AddItemToObject(ev, "message", store_msg_json(&m, NULL));
	router__event(c->r, c->txn, "note.created", ev);
	mc.c = c;
	mc.conv_id = rc.c.id;
	mc.note_id = m.id;
	mc.text = text_copy;
	mc.err = 0;
	inbox_mentions(text_copy, mention_one, &mc);
	if (mc.err != 0)
		e = fail_store(c, mc.err, "mention");
out:
	free(json);
	free(text_copy);
	router__conv_finish(&rc);
	return e;
}

static int
cmd_send(struct cmd *c)
{
	struct router_conv rc;
	struct store_contact contact;
	struct store_template tp;
	const char *text, *tname;
	char *rendered = NULL;
	bool have_contact;
	int e, rv;

	if (!load_conv(c, &rc, &e))
		goto out;
	if (!text_arg(c, "text", TEXT_MAX, false, false, &text) ||
	    !text_arg(c, "template", TEMPLATE_NAME_MAX, false, false, &tname))
		goto out;
	if (!may_handle(c, &rc.c)) {
		refuse(c, "forbidden", "conversation %llu is assigned to %s",
		    (unsigned long long)rc.c.id, rc.c.assignee);
		goto out;
	}
	{
		const struct inbox_connector_conf *cc =
		    inbox_config_connector(c->r->cfg, rc.c.connector);

		if (cc != NULL && !cc->enabled) {
			refuse(c, "disabled", "connector %s is disabled: no "
			    "reply can go out through it now", cc->id);
			goto out;
		}
	}
	rv = store_contact_get(c->txn, rc.c.contact_id, &contact);
	if (rv != 0 && rv != INBOX_ENOTFOUND) {
		e = fail_store(c, rv, "contact");
		goto out;
	}
	have_contact = rv == 0;
	if (tname != NULL) {
		struct inbox_err err;

		rv = store_template_get(c->txn, tname, &tp);
		if (rv == INBOX_ENOTFOUND) {
			refuse(c, "not_found", "no template '%s'", tname);
			goto out;
		}
		if (rv != 0) {
			e = fail_store(c, rv, "template");
			goto out;
		}
		if (router__render(tp.text, have_contact ? &contact : NULL,
		    &rc.c, c->actor, c->actor_name, &rendered, &err) != 0) {
			refuse(c, "bad_request", "template '%s': %s", tname,
			    err.msg);
			goto out;
		}
		text = rendered;
	}
	if (text == NULL || text[0] == '\0') {
		refuse(c, "bad_request", "text: missing or empty (give text or "
		    "template)");
		goto out;
	}
	if ((rv = router__queue_reply(c->r, c->txn, &rc.c, have_contact ?
	    &contact : NULL, text, c->actor, tname, NULL, c->now,
	    NULL)) != 0) {
		e = fail_store(c, rv, "reply");
		goto out;
	}

	/* A reply to an unassigned dialog takes it. */
	if (rc.c.assignee == NULL && c->actor != NULL)
		router__conv_set(&rc, &rc.c.assignee, c->actor);
	if (rc.c.first_response_at == 0)
		rc.c.first_response_at = c->now;
	rc.c.last_agent_msg_at = c->now;
	rc.c.message_count++;
	router__preview(&rc, text);
	e = put_conv(c, &rc, "replied");
out:
	free(rendered);
	router__conv_finish(&rc);
	return e;
}

/* ---- tasks --------------------------------------------------------------- */

static void
task_event(struct cmd *c, const char *name, const struct store_task *tk)
{
	cJSON *ev = cJSON_CreateObject();

	cJSON_AddItemToObject(ev, "task", store_task_json(tk));
	if (c->actor != NULL)
		cJSON_AddStringToObject(ev, "by", c->actor);
	router__event_to(c->r, c->txn, name, ev, tk->assignee);
}

/* Reads "assignee" (a known login or null) into *login. */
static int
assignee_arg(struct cmd *c, const char **login, int *e)
{
	int rv;

	if (!text_arg(c, "assignee", 64, false, true, login))
		return 0;
	if (*login == NULL)
		return 1;
	if (!agent_exists(c, *login, &rv)) {
		if (rv != 0)
			*e = fail_store(c, rv, "assignee");
		else
			refuse(c, "not_found", "no agent '%.64s'", *login);
		return 0;
	}
	return 1;
}

static int
cmd_task_create(struct cmd *c)
{
	struct router_conv rc;
	struct store_task tk;
	struct store_msg m;
	const char *title, *assignee;
	uint64_t msg_id;
	int64_t due;
	int e, rv;

	if (!load_conv(c, &rc, &e))
		goto out;
	if (!text_arg(c, "title", TITLE_MAX, true, false, &title) ||
	    !id_arg(c, "message_id", false, &msg_id) ||
	    !time_arg(c, "due", &due) || !assignee_arg(c, &assignee, &e))
		goto out;
	if (title[0] == '\0') {
		refuse(c, "bad_request", "title: empty");
		goto out;
	}
	if (msg_id != 0) {
		rv = store_msg_get(c->txn, msg_id, &m);
		if (rv == INBOX_ENOTFOUND || (rv == 0 && m.conv_id != rc.c.id)) {
			refuse(c, "not_found", "no message %llu in conversation "
			    "%llu", (unsigned long long)msg_id,
			    (unsigned long long)rc.c.id);
			goto out;
		}
		if (rv != 0) {
			e = fail_store(c, rv, "message");
			goto out;
		}
	}
	memset(&tk, 0, sizeof(tk));
	tk.conv_id = rc.c.id;
	tk.msg_id = msg_id;
	tk.title = title;
	tk.assignee = assignee ? assignee : c->actor;
	tk.created_by = c->actor;
	tk.due = due;
	tk.due_fired = due != 0 && due <= c->now;
	tk.created = tk.updated = c->now;
	if ((rv = store_task_put(c->txn, &tk)) != 0) {
		e = fail_store(c, rv, "task");
		goto out;
	}
	task_event(c, "task.created", &tk);
	if (tk.due_fired)
		task_event(c, "task.due", &tk);
out:
	router__conv_finish(&rc);
	return e;
}

static int
cmd_task_update(struct cmd *c)
{
	const cJSON *jdone = cJSON_GetObjectItemCaseSensitive(c->json, "done");
	struct store_task tk;
	const char *title, *assignee;
	char *t_title = NULL, *t_assignee = NULL, *t_by = NULL;
	uint64_t id;
	int64_t due;
	int e = 0, rv;

	if (!id_arg(c, "task_id", true, &id) ||
	    !text_arg(c, "title", TITLE_MAX, false, false, &title) ||
	    !time_arg(c, "due", &due) || !assignee_arg(c, &assignee, &e))
		return e;
	if (jdone != NULL && !cJSON_IsBool(jdone))
		return refuse(c, "bad_request", "done: expected true or false");
	rv = store_task_get(c->txn, id, &tk);
	if (rv == INBOX_ENOTFOUND)
		return refuse(c, "not_found", "no task %llu",
		    (unsigned long long)id);
	if (rv != 0)
		return fail_store(c, rv, "task");
	if (!may_supervise(c) && c->actor != NULL &&
	    (tk.assignee == NULL || strcmp(tk.assignee, c->actor) != 0) &&
	    (tk.created_by == NULL || strcmp(tk.created_by, c->actor) != 0))
		return refuse(c, "forbidden", "task %llu is neither yours nor "
		    "made by you", (unsigned long long)id);
	/* Own the record's strings before the put. */
	t_title = xstrdup(title ? title : tk.title);
	t_assignee = has_field(c->json, "assignee") ?
	    (assignee ? xstrdup(assignee) : NULL) :
	    (tk.assignee ? xstrdup(tk.assignee) : NULL);
	t_by = tk.created_by ? xstrdup(tk.created_by) : NULL;
	tk.title = t_title;
	tk.assignee = t_assignee;
	tk.created_by = t_by;
	if (jdone != NULL)
		tk.done = cJSON_IsTrue(jdone);
	if (has_field(c->json, "due")) {
		tk.due = due;
		tk.due_fired = due != 0 && due <= c->now;
	}
	tk.updated = c->now;
	if ((rv = store_task_put(c->txn, &tk)) != 0)
		e = fail_store(c, rv, "task");
	else
		task_event(c, "task.updated", &tk);
	free(t_title);
	free(t_assignee);
	free(t_by);
	return e;
}

/* ---- templates ------------------------------------------------------------ */

static bool
template_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > TEMPLATE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == '-'))
			return false;
	}
	return true;
}

static int
cmd_template_put(struct cmd *c)
{
	struct store_template tp;

	struct inbox_err err;
	const char *name, *text;
	char *check;
	cJSON *ev;
	int rv;

	if (!text_arg(c, "name", TEMPLATE_NAME_MAX, true, false, &name) ||
	    !text_arg(c, "text", TEXT_MAX, true, false, &text))
		return 0;
	if (!may_supervise(c))
		return refuse(c, "forbidden", "templates are kept by "
		    "supervisors and admins");
	if (!template_name_valid(name))
		return refuse(c, "bad_request", "name: 1-64 of A-Za-z0-9._-");
	if (router__render(text, NULL, NULL, NULL, NULL, &check, &err) != 0)
		return refuse(c, "bad_request", "text: %s", err.msg);
	free(check);
	tp.name = name;
	tp.text = text;
	tp.updated_by = c->actor;
	tp.updated = c->now;
	if ((rv = store_template_put(c->txn, &tp)) != 0)
		return fail_store(c, rv, "template");
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "name", name);
	cJSON_AddStringToObject(ev, "text", text);
	router__event(c->r, c->txn, "template.updated", ev);
	return 0;
}

static int
cmd_template_delete(struct cmd *c)
{
	const char *name;
	cJSON *ev;
	int rv;

	if (!text_arg(c, "name", TEMPLATE_NAME_MAX, true, false, &name))
		return 0;
	if (!may_supervise(c))
		return refuse(c, "forbidden", "templates are kept by "
		    "supervisors and admins");
	rv = store_template_del(c->txn, name);
	if (rv == INBOX_ENOTFOUND)
		return refuse(c, "not_found", "no template '%s'", name);
	if (rv != 0)
		return fail_store(c, rv, "template");
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "name", name);
	router__event(c->r, c->txn, "template.deleted", ev);
	return 0;
}

/* ---- contacts -------------------------------------------------------------- */

static int
contact_event(struct cmd *c, uint64_t id, const char *name, uint64_t from)
{
	struct store_contact ct;
	cJSON *ev;
	int rv;

	if ((rv = store_contact_get(c->txn, id, &ct)) != 0)
		return fail_store(c, rv, "contact");
	ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "contact", store_contact_json(&ct));
	if (from != 0)
		cJSON_AddNumberToObject(ev, "merged", (double)from);
	if (c->actor != NULL)
		cJSON_AddStringToObject(ev, "by", c->actor);
	router__event(c->r, c->txn, name, ev);
	return 0;
}

/* Merges the custom fields object `upd` into the JSON text `cur`: a null
 * value removes a key. Returns a malloc'd JSON text, or NULL after
 * refusing. */
static char *
merge_fields(struct cmd *c, const char *cur, const cJSON *upd, bool keep_cur)
{
	cJSON *o = cur ? cJSON_Parse(cur) : NULL;
	const cJSON *it;
	char *s;

	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		o = cJSON_CreateObject();
	}
	cJSON_ArrayForEach(it, upd) {
		if (c != NULL && !inbox_config_contact_field(c->r->cfg,
		    it->string)) {
			cJSON_Delete(o);
			refuse(c, "bad_request", "fields.%.64s: not a contact "
			    "field of this installation (contacts.fields)",
			    it->string);
			return NULL;
		}
		if (keep_cur && cJSON_GetObjectItemCaseSensitive(o, it->string))
			continue;
		if (cJSON_IsNull(it)) {
			cJSON_DeleteItemFromObjectCaseSensitive(o, it->string);
			continue;
		}
		if (!cJSON_IsString(it) || strlen(it->valuestring) > FIELD_MAX) {
			cJSON_Delete(o);
			if (c != NULL)
				refuse(c, "bad_request", "fields.%.64s: expected "
				    "a string of at most %d bytes or null",
				    it->string, FIELD_MAX);
			return NULL;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(o, it->string);
		cJSON_AddStringToObject(o, it->string, it->valuestring);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s != NULL && strlen(s) > FIELDS_JSON_MAX) {
		free(s);
		if (c != NULL)
			refuse(c, "bad_request", "fields: more than %d bytes",
			    FIELDS_JSON_MAX);
		return NULL;
	}
	return s;
}

static int
cmd_contact_update(struct cmd *c)
{
	const cJSON *jf = cJSON_GetObjectItemCaseSensitive(c->json, "fields");
	struct store_contact ct;
	const char *name, *email, *phone;
	char *fields = NULL, *s[7] = { 0 };
	uint64_t id;
	int e = 0, rv;

	if (!id_arg(c, "contact_id", true, &id) ||
	    !text_arg(c, "name", 256, false, true, &name) ||
	    !text_arg(c, "email", 320, false, true, &email) ||
	    !text_arg(c, "phone", 64, false, true, &phone))
		return 0;
	if (jf != NULL && !cJSON_IsObject(jf))
		return refuse(c, "bad_request", "fields: expected an object");
	if (email != NULL && strchr(email, '@') == NULL)
		return refuse(c, "bad_request", "email: not an e-mail address");
	rv = store_contact_get(c->txn, id, &ct);
	if (rv == INBOX_ENOTFOUND || (rv == 0 && ct.merged_into != 0))
		return refuse(c, "not_found", "no contact %llu",
		    (unsigned long long)id);
	if (rv != 0)
		return fail_store(c, rv, "contact");
	if (jf != NULL && (fields = merge_fields(c, ct.fields, jf, false)) ==
	    NULL)
		return 0;
	/* Own every string: the put rewrites the page. */
	s[0] = ct.connector ? xstrdup(ct.connector) : NULL;
	s[1] = ct.channel ? xstrdup(ct.channel) : NULL;
	s[2] = ct.external_id ? xstrdup(ct.external_id) : NULL;
	s[3] = has_field(c->json, "name") ? (name ? xstrdup(name) : NULL) :
	    (ct.name ? xstrdup(ct.name) : NULL);
	s[4] = has_field(c->json, "email") ? (email ? xstrdup(email) : NULL) :
	    (ct.email ? xstrdup(ct.email) : NULL);
	s[5] = has_field(c->json, "phone") ? (phone ? xstrdup(phone) : NULL) :
	    (ct.phone ? xstrdup(ct.phone) : NULL);
	s[6] = ct.username ? xstrdup(ct.username) : NULL;
	if (fields == NULL && ct.fields != NULL)
		fields = xstrdup(ct.fields);
	ct.connector = s[0];
	ct.channel = s[1];
	ct.external_id = s[2];
	ct.name = s[3];
	ct.email = s[4];
	ct.phone = s[5];
	ct.username = s[6];
	ct.fields = fields;
	ct.updated = c->now;
	if ((rv = store_contact_put(c->txn, &ct)) != 0)
		e = fail_store(c, rv, "contact");
	else
		e = contact_event(c, id, "contact.updated", 0);
	for (int i = 0; i < 7; i++)
		free(s[i]);
	free(fields);
	return e;
}

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Update-or-create by e-mail, then phone (the spreadsheet import). */
static int
cmd_contact_upsert(struct cmd *c)
{
	const cJSON *jf = cJSON_GetObjectItemCaseSensitive(c->json, "fields");
	const char *name, *email, *phone, *username;
	struct store_contact ct;
	char *own[7] = { 0 }, *fields = NULL;
	cJSON *ev, *changed;
	uint64_t id = 0;
	bool created = false;
	int rv, e = 0;

	if (!text_arg(c, "name", 256, false, true, &name) ||
	    !text_arg(c, "email", 320, false, true, &email) ||
	    !text_arg(c, "phone", 64, false, true, &phone) ||
	    !text_arg(c, "username", 256, false, true, &username))
		return 0;
	if (jf != NULL && !cJSON_IsObject(jf))
		return refuse(c, "bad_request", "fields: expected an object");
	if (email != NULL && email[0] == '\0')
		email = NULL;
	if (phone != NULL && phone[0] == '\0')
		phone = NULL;
	if (email == NULL && phone == NULL)
		return refuse(c, "bad_request", "a contact needs an email or a "
		    "phone to be matched by");
	if (email != NULL) {
		char *k = store_email_key(email);

		if (k == NULL)
			return refuse(c, "bad_request", "email: not an e-mail "
			    "address");
		free(k);
	}
	if (phone != NULL) {
		char *k = store_phone_key(phone);

		if (k == NULL)
			return refuse(c, "bad_request", "phone: fewer than 5 or "
			    "more than 20 digits");
		free(k);
	}
	if (!may_supervise(c))
		return refuse(c, "forbidden", "importing contacts is for "
		    "supervisors and admins");
	rv = store_contact_find_email(c->txn, email, &id);
	if (rv == INBOX_ENOTFOUND)
		rv = store_contact_find_phone(c->txn, phone, &id);
	if (rv == INBOX_ENOTFOUND) {
		memset(&ct, 0, sizeof(ct));
		ct.created = c->now;
		created = true;
	} else if (rv == 0) {
		rv = store_contact_get(c->txn, id, &ct);
	}
	if (rv != 0 && rv != INBOX_ENOTFOUND)
		return fail_store(c, rv, "contact");
	changed = cJSON_CreateArray();
#define UPD(field, val, i) do { \
	own[i] = ct.field ? xstrdup(ct.field) : NULL; \
	if ((val) != NULL && !same(ct.field, (val))) { \
		cJSON_AddItemToArray(changed, cJSON_CreateString(#field)); \
		free(own[i]); \
		own[i] = xstrdup(val); \
	} \
	ct.field = own[i]; \
} while (0)
	if (jf != NULL) {
		fields = merge_fields(c, ct.fields, jf, false);
		if (fields == NULL) {
			cJSON_Delete(changed);
			return 0;
		}
		if (!same(fields, ct.fields ? ct.fields : "{}"))
			cJSON_AddItemToArray(changed,
			    cJSON_CreateString("fields"));
	} else if (ct.fields != NULL) {
		fields = xstrdup(ct.fields);
	}
	UPD(name, name, 0);
	UPD(email, email, 1);
	UPD(phone, phone, 2);
	UPD(username, username, 3);
	own[4] = ct.connector ? xstrdup(ct.connector) : NULL;
	own[5] = ct.channel ? xstrdup(ct.channel) : NULL;
	own[6] = ct.external_id ? xstrdup(ct.external_id) : NULL;
	ct.connector = own[4];
	ct.channel = own[5];
	ct.external_id = own[6];
#undef UPD
	ct.fields = fields;
	ct.updated = c->now;
	if (cJSON_GetArraySize(changed) > 0 || created) {
		if ((rv = store_contact_put(c->txn, &ct)) != 0) {
			cJSON_Delete(changed);
			e = fail_store(c, rv, "contact");
			goto out;
		}
	}
	ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "contact", store_contact_json(&ct));
	cJSON_AddBoolToObject(ev, "created", created);
	cJSON_AddItemToObject(ev, "changed", changed);
	router__event(c->r, c->txn, "contact.updated", ev);
out:
	for (int i = 0; i < 7; i++)
		free(own[i]);
	free(fields);
	return e;
}

struct merge_ctx {
	struct store_txn *txn;
	uint64_t into;
	int err;
};

static int
move_conv(void *arg, uint64_t conv_id)
{
	struct merge_ctx *m = arg;
	struct router_conv rc;
	int rv;

	if ((rv = router__conv_load(m->txn, conv_id, &rc)) == 0) {
		rc.c.contact_id = m->into;
		rv = store_conv_put(m->txn, &rc.c);
	}
	router__conv_finish(&rc);
	m->err = rv;
	return rv;
}

static int
cmd_contact_merge(struct cmd *c)
{
	struct store_contact a, b;
	struct merge_ctx mc;
	uint64_t into, from;
	char *s[6] = { 0 }, *fields = NULL;
	cJSON *bf = NULL;
	int rv, e = 0;

	if (!id_arg(c, "into", true, &into) || !id_arg(c, "from", true, &from))
		return 0;
	if (!may_supervise(c))
		return refuse(c, "forbidden", "merging contacts is for "
		    "supervisors and admins");
	if (into == from)
		return refuse(c, "bad_request", "into and from are the same "
		    "contact");
	rv = store_contact_get(c->txn, from, &b);
	if (rv == 0 && b.merged_into != 0)
		rv = INBOX_ENOTFOUND;
	if (rv == INBOX_ENOTFOUND)
		return refuse(c, "not_found", "no contact %llu",
		    (unsigned long long)from);
	if (rv != 0)
		return fail_store(c, rv, "contact");
	/* What `into` lacks comes from `from`: copy b's strings first. */
	s[0] = b.name ? xstrdup(b.name) : NULL;
	s[1] = b.email ? xstrdup(b.email) : NULL;
	s[2] = b.phone ? xstrdup(b.phone) : NULL;
	s[3] = b.username ? xstrdup(b.username) : NULL;
	bf = b.fields ? cJSON_Parse(b.fields) : NULL;
	rv = store_contact_get(c->txn, into, &a);
	if (rv == 0 && a.merged_into != 0)
		rv = INBOX_ENOTFOUND;
	if (rv == INBOX_ENOTFOUND) {
		refuse(c, "not_found", "no contact %llu",
		    (unsigned long long)into);
		goto out;
	}
	if (rv != 0) {
		e = fail_store(c, rv, "contact");
		goto out;
	}
	/* Retire `from` first (its keys move to `into` on into's put). */
	b.merged_into = into;
	b.updated = c->now;
	if ((rv = store_contact_put(c->txn, &b)) != 0) {
		e = fail_store(c, rv, "contact");
		goto out;
	}
	if ((rv = store_contact_get(c->txn, into, &a)) != 0) {
		e = fail_store(c, rv, "contact");
		goto out;
	}
	fields = cJSON_IsObject(bf) ? merge_fields(NULL, a.fields, bf, true) :
	    (a.fields ? xstrdup(a.fields) : NULL);
	s[4] = a.connector ? xstrdup(a.connector) : NULL;
	s[5] = a.external_id ? xstrdup(a.external_id) : NULL;
	{
		char *ch = a.channel ? xstrdup(a.channel) : NULL;
		char *nm = a.name && a.name[0] ? xstrdup(a.name) : NULL;
		char *em = a.email ? xstrdup(a.email) : NULL;
		char *ph = a.phone ? xstrdup(a.phone) : NULL;
		char *us = a.username ? xstrdup(a.username) : NULL;

		a.connector = s[4];
		a.external_id = s[5];
		a.channel = ch;
		a.name = nm ? nm : s[0];
		a.email = em ? em : s[1];
		a.phone = ph ? ph : s[2];
		a.username = us ? us : s[3];
		a.fields = fields;
		a.updated = c->now;
		rv = store_contact_put(c->txn, &a);
		free(ch);
		free(nm);
		free(em);
		free(ph);
		free(us);
	}
	if (rv != 0) {
		e = fail_store(c, rv, "contact");
		goto out;
	}
	mc.txn = c->txn;
	mc.into = into;
	mc.err = 0;
	if ((rv = store_contact_convs(c->txn, from, move_conv, &mc)) != 0 ||
	    mc.err != 0) {
		e = fail_store(c, mc.err ? mc.err : rv, "contact conversations");
		goto out;
	}
	e = contact_event(c, into, "contact.merged", from);
out:
	for (int i = 0; i < 6; i++)
		free(s[i]);
	free(fields);
	cJSON_Delete(bf);
	return e;
}

/* ---- agents -------------------------------------------------------------- */

static int
cmd_agent(struct cmd *c)
{
	bool add = strcmp(c->type, "agent.add") == 0;
	const char *login = str_field(c->json, "login");
	const char *pwhash = str_field(c->json, "pwhash");
	const char *name = str_field(c->json, "name");
	const char *role = str_field(c->json, "role");
	struct store_agent a, old;
	cJSON *ev;
	int rc;

	if (c->role != ROLE_ADMIN)
		return refuse(c, "forbidden", "agents are managed by admins");
	if (login == NULL || !inbox_login_valid(login))
		return refuse(c, "bad_request", "login: missing or invalid "
		    "(1-64 of a-z0-9._-)");
	if (pwhash == NULL || strncmp(pwhash, "$argon2", 7) != 0 ||
	    strlen(pwhash) > 256)
		return refuse(c, "bad_request", "pwhash: missing or not an "
		    "argon2 hash");
	if (role != NULL && strcmp(role, "agent") != 0 &&
	    strcmp(role, "supervisor") != 0 && strcmp(role, "admin") != 0)
		return refuse(c, "bad_request", "role: unknown role '%.32s'",
		    role);
	if (name != NULL && (strlen(name) > 256 ||
	    inbox_utf8_invalid_at(name, strlen(name)) >= 0))
		return refuse(c, "bad_request", "name: too long or not UTF-8");
	rc = store_agent_get(c->txn, login, &old);
	if (rc != 0 && rc != INBOX_ENOTFOUND)
		return fail_store(c, rc, "agent");
	if (add && rc == 0)
		return refuse(c, "exists", "an agent with this login exists");
	if (!add && rc == INBOX_ENOTFOUND)
		return refuse(c, "not_found", "no agent with this login");
	memset(&a, 0, sizeof(a));
	a.login = login;
	a.pwhash = pwhash;
	a.updated = c->now;
	if (add) {
		a.name = name ? name : login;
		a.role = role ? role : "agent";
		a.created = c->now;
		a.capacity = -1;
	} else {
		a = old;
		a.login = login;
		a.pwhash = pwhash;
		a.updated = c->now;
		if (name != NULL)
			a.name = name;
		if (role != NULL)
			a.role = role;
	}
	/* `old` points into the page the put may rewrite: build the event
	 * first. */
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "login", a.login);
	cJSON_AddStringToObject(ev, "name", a.name ? a.name : a.login);
	cJSON_AddStringToObject(ev, "role", a.role ? a.role : "agent");
	cJSON_AddStringToObject(ev, "cmd_id", c->cmd_id);
	if ((rc = store_agent_put(c->txn, &a)) != 0) {
		cJSON_Delete(ev);
		return fail_store(c, rc, "agent put");
	}
	router__event(c->r, c->txn, "agent.updated", ev);
	return 0;
}

/* Presence: the gateway reports {"agents": {login: presence}} (its sockets;
 * it repeats the online ones within router.presence_lease_ms); an agent
 * sets its own with {"presence": "away"}. */
static int
set_presence(struct cmd *c, const char *login, const char *value,
    bool *changed)
{
	struct store_agent a;
	int p, rc, before;

	*changed = false;
	if (store_presence_parse(value, &p) != 0)
		return refuse(c, "bad_request", "presence of %.64s: '%.32s' is "
		    "not online, away or offline", login, value), 1;
	rc = store_agent_get(c->txn, login, &a);
	if (rc == INBOX_ENOTFOUND)
		return 0;        /* deleted meanwhile: nothing to do */
	if (rc != 0)
		return fail_store(c, rc, "agent");
	before = store_agent_presence(&a, c->now,
	    c->r->cfg->router_presence_lease_ms);
	a.presence = p;
	a.presence_at = c->now;
	if ((rc = store_agent_put(c->txn, &a)) != 0)
		return fail_store(c, rc, "agent put");
	if (before != p) {
		cJSON *ev = cJSON_CreateObject();

		cJSON_AddStringToObject(ev, "login", login);
		cJSON_AddStringToObject(ev, "presence", store_presence_name(p));
		router__event(c->r, c->txn, "agent.presence", ev);
		*changed = true;
		if (p == STORE_PRESENCE_ONLINE)
			c->r->drain = true;
	}
	return 0;
}

static int
cmd_presence(struct cmd *c)
{
	const cJSON *agents = cJSON_GetObjectItemCaseSensitive(c->json,
	    "agents");
	const char *own = str_field(c->json, "presence");
	const cJSON *it;
	size_t changed = 0;
	cJSON *ev;
	bool ch;
	int rc;

	if (agents != NULL) {
		if (c->actor != NULL)
			return refuse(c, "forbidden", "agents: only the gateway "
			    "reports other agents' presence");
		if (!cJSON_IsObject(agents))
			return refuse(c, "bad_request", "agents: expected an "
			    "object of login: presence");
		cJSON_ArrayForEach(it, agents) {
			if (!inbox_login_valid(it->string) ||
			    !cJSON_IsString(it))
				return refuse(c, "bad_request", "agents: '%.64s' "
				    "is not a login with a presence string",
				    it->string);
		}
		cJSON_ArrayForEach(it, agents) {
			if ((rc = set_presence(c, it->string, it->valuestring,
			    &ch)) != 0)
				return rc < 0 ? rc : 0;
			changed += ch;
		}
	} else {
		if (c->actor == NULL || own == NULL)
			return refuse(c, "bad_request", "presence: missing (or "
			    "agents: {login: presence})");
		if ((rc = set_presence(c, c->actor, own, &ch)) != 0)
			return rc < 0 ? rc : 0;
		changed += ch;
	}
	if (agents != NULL)
		return 0;        /* the gateway's reports wait for no answer */
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "cmd_id", c->cmd_id);
	cJSON_AddNumberToObject(ev, "changed", (double)changed);
	router__event(c->r, c->txn, "agent.presence.applied", ev);
	return 0;
}

/* A normalized, comma-separated skill list from an array of tags or a
 * comma-separated string. Returns a malloc'd string ("" for none), or NULL
 * after refusing. */
static char *
skills_arg(struct cmd *c, const cJSON *js)
{
	char norm[INBOX_TAG_MAX + 1];
	size_t len = 0, cap = 64;
	char *out = xmalloc(cap);
	struct inbox_err err;
	const cJSON *it;
	cJSON *arr = NULL;
	int count = 0;

	out[0] = '\0';
	if (cJSON_IsString(js)) {
		char *list = xstrdup(js->valuestring), *save = NULL;

		arr = cJSON_CreateArray();
		for (char *t = strtok_r(list, ", ", &save); t != NULL;
		    t = strtok_r(NULL, ", ", &save))
			cJSON_AddItemToArray(arr, cJSON_CreateString(t));
		free(list);
		js = arr;
	}
	if (!cJSON_IsArray(js)) {
		refuse(c, "bad_request", "skills: expected an array of tags");
		goto bad;
	}
	cJSON_ArrayForEach(it, js) {
		size_t n;

		if (!cJSON_IsString(it) || inbox_tag_normalize(it->valuestring,
		    norm, sizeof(norm), &err) != 0) {
			refuse(c, "bad_request", "skills: %s",
			    cJSON_IsString(it) ? err.msg : "not a string");
			goto bad;
		}
		if (++count > 64) {
			refuse(c, "bad_request", "skills: at most 64");
			goto bad;
		}
		n = strlen(norm);
		if (len + n + 3 > cap) {
			cap = (len + n + 3) * 2;
			out = xrealloc(out, cap);
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		    len ? ", " : "", norm);
	}
	cJSON_Delete(arr);
	return out;
bad:
	cJSON_Delete(arr);
	free(out);
	return NULL;
}

/* Teams, skills and capacity of an agent (supervisors and admins). */
static int
cmd_agent_update(struct cmd *c)
{
	const cJSON *jskills = cJSON_GetObjectItemCaseSensitive(c->json,
	    "skills");
	const cJSON *jcap = cJSON_GetObjectItemCaseSensitive(c->json,
	    "capacity");
	const char *login = str_field(c->json, "login");
	const char *teams = NULL, *name = NULL;
	char *skills = NULL, *own[4] = { 0 };
	struct store_agent a;
	cJSON *ev;
	uint32_t load = 0;
	int rc, e = 0;

	if (!may_supervise(c))
		return refuse(c, "forbidden", "agents are managed by "
		    "supervisors and admins");
	if (login == NULL || !inbox_login_valid(login))
		return refuse(c, "bad_request", "login: missing or invalid");
	if (!text_arg(c, "teams", 1024, false, true, &teams) ||
	    !text_arg(c, "name", 256, false, false, &name))
		return 0;
	if (jcap != NULL && !cJSON_IsNull(jcap) && (!cJSON_IsNumber(jcap) ||
	    jcap->valuedouble < 0 || jcap->valuedouble > 100000 ||
	    jcap->valuedouble != (double)(int)jcap->valuedouble))
		return refuse(c, "bad_request", "capacity: expected an integer "
		    "0-100000 or null (the default)");
	if (jskills != NULL && !cJSON_IsNull(jskills) &&
	    (skills = skills_arg(c, jskills)) == NULL)
		return 0;
	rc = store_agent_get(c->txn, login, &a);
	if (rc == INBOX_ENOTFOUND) {
		free(skills);
		return refuse(c, "not_found", "no agent '%s'", login);
	}
	if (rc != 0) {
		free(skills);
		return fail_store(c, rc, "agent");
	}
	/* the record's strings die with the put: own what is kept */
	own[0] = a.name ? xstrdup(a.name) : NULL;
	own[1] = a.role ? xstrdup(a.role) : NULL;
	own[2] = xstrdup(a.pwhash);
	own[3] = a.teams ? xstrdup(a.teams) : NULL;
	if (jskills == NULL && a.skills != NULL)
		skills = xstrdup(a.skills);
	a.login = login;
	a.name = name ? name : own[0];
	a.role = own[1];
	a.pwhash = own[2];
	a.teams = own[3];
	if (cJSON_GetObjectItemCaseSensitive(c->json, "teams") != NULL)
		a.teams = teams != NULL && teams[0] != '\0' ? teams : NULL;
	a.skills = skills != NULL && skills[0] != '\0' ? skills : NULL;
	if (jcap != NULL)
		a.capacity = cJSON_IsNull(jcap) ? -1 : (int32_t)jcap->valueint;
	a.updated = c->now;
	if ((rc = store_agent_put(c->txn, &a)) != 0) {
		e = fail_store(c, rc, "agent put");
		goto out;
	}
	if ((rc = store_agent_load(c->txn, login, &load)) != 0) {
		e = fail_store(c, rc, "agent load");
		goto out;
	}
	ev = store_agent_json(&a, load, c->now,
	    c->r->cfg->router_presence_lease_ms);
	cJSON_AddStringToObject(ev, "cmd_id", c->cmd_id);
	router__event(c->r, c->txn, "agent.updated", ev);
	c->r->drain = true;
out:
	for (int i = 0; i < 4; i++)
		free(own[i]);
	free(skills);
	return e;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct {
	const char *type;
	int (*fn)(struct cmd *c);
	int action;              /* for cmd_lifecycle */
} commands[] = {
	{ "conversation.close", NULL, INBOX_DA_CLOSE },
	{ "conversation.snooze", NULL, INBOX_DA_SNOOZE },
	{ "conversation.reopen", NULL, INBOX_DA_REOPEN },
	{ "conversation.assign", cmd_assign, 0 },
	{ "conversation.tag", cmd_tag, 0 },
	{ "conversation.set", cmd_set, 0 },
	{ "note.add", cmd_note, 0 },
	{ "message.send", cmd_send, 0 },
	{ "task.create", cmd_task_create, 0 },
	{ "task.update", cmd_task_update, 0 },
	{ "template.put", cmd_template_put, 0 },
	{ "template.delete", cmd_template_delete, 0 },
	{ "contact.update", cmd_contact_update, 0 },
	{ "contact.merge", cmd_contact_merge, 0 },
	{ "contact.upsert", cmd_contact_upsert, 0 },
	{ "agent.add", cmd_agent, 0 },
	{ "agent.passwd", cmd_agent, 0 },
	{ "agent.update", cmd_agent_update, 0 },
	{ "agent.presence", cmd_presence, 0 },
};

int
router__apply_command(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen)
{
	struct cmd c;
	const cJSON *v;
	cJSON *json;
	size_t i;
	int rc = 0;

	json = cJSON_ParseWithLength(data, len);
	if (json == NULL || !cJSON_IsObject(json)) {
		snprintf(reason, rlen, "command: not a JSON object");
		cJSON_Delete(json);
		return INBOX_EINVAL;
	}
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.txn = txn;
	c.json = json;
	c.now = now;
	c.reason = reason;
	c.rlen = rlen;
	v = cJSON_GetObjectItemCaseSensitive(json, "v");
	c.type = str_field(json, "type");
	c.cmd_id = str_field(json, "cmd_id");
	c.actor = str_field(json, "actor");
	/* Without a cmd_id nobody waits for an answer: a dead letter. */
	if (c.cmd_id == NULL || c.cmd_id[0] == '\0' || strlen(c.cmd_id) > 128) {
		snprintf(reason, rlen, "command: cmd_id: missing or too long");
		rc = INBOX_EINVAL;
		goto out;
	}
	if (c.type == NULL) {
		snprintf(reason, rlen, "command: type: missing");
		rc = INBOX_EINVAL;
		goto out;
	}
	r->cmd_id = c.cmd_id;
	r->copy = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "copy"));
	if (!cJSON_IsNumber(v) || v->valuedouble != 1) {
		refuse(&c, "bad_request", "v: missing or unsupported (this router "
		    "reads 1)");
		goto out;
	}
	if (has_field(json, "actor") && (c.actor == NULL ||
	    !inbox_login_valid(c.actor))) {
		refuse(&c, "bad_request", "actor: not a login");
		goto out;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(c.type, commands[i].type) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		refuse(&c, "unknown_type", "unknown command '%.64s'", c.type);
		goto out;
	}
	if (!load_actor(&c, &rc))
		goto out;
	rc = commands[i].fn ? commands[i].fn(&c) :
	    cmd_lifecycle(&c, commands[i].action);
out:
	r->cmd_id = NULL;
	r->copy = false;
	cJSON_Delete(json);
	return rc;
}
