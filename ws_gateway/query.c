/* The websocket requests: feed, conversation.get, subscribe, ping, and for
 * supervisors and admins stats, agents and sla.recent. Queries read the
 * store in a read-only transaction each. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

#define FEED_LIMIT_MAX 500
#define REPLAY_MAX 5000
#define SLA_RECENT_MAX 200
#define STATS_DEFAULT_MS (7 * 86400000LL)
#define ALERT_PAGE 1000
/* Alert ids may run ahead of their `at` (the router's event clock): stats
 * read the alert stream this far past the period's end. */
#define ALERT_SLACK_MS 60000
#define STR_(x) #x
#define STR(x) STR_(x)

struct answer {
	cJSON *data;             /* ok answer */
	const char *code;        /* error answer */
	char message[256];
};

static void fail(struct answer *a, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct answer *a, const char *code, const char *fmt, ...)
{
	va_list ap;

	a->code = code;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
}

int
gw_store(struct gateway *gw)
{
	int rc;

	if (gw->store != NULL)
		return 0;
	rc = store_open(&gw->store, gw->cfg->store_path,
	    gw->cfg->store_map_size_mb, STORE_RDONLY);
	if (rc != 0) {
		gw->store = NULL;
		log_warnx("gateway: store %s: %s", gw->cfg->store_path,
		    inbox_strerror(rc));
	}
	return rc;
}

/* Reads an optional string field: absent or null leaves *out NULL; returns
 * false after failing on another type or a string over max bytes. */
static bool
opt_str(const cJSON *req, const char *name, size_t max, const char **out,
    struct answer *a)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(req, name);

	*out = NULL;
	if (it == NULL || cJSON_IsNull(it))
		return true;
	if (!cJSON_IsString(it) || strlen(it->valuestring) > max) {
		fail(a, "bad_request", "%s: expected a string of at most %zu "
		    "bytes", name, max);
		return false;
	}
	*out = it->valuestring;
	return true;
}

/* Reads an optional whole number from min to 2^53: absent or null leaves
 * *out; returns false after failing with "NAME: expected WHAT". */
static bool
opt_whole(const cJSON *req, const char *name, double min, const char *what,
    double *out, struct answer *a)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(req, name);

	if (it == NULL || cJSON_IsNull(it))
		return true;
	if (!cJSON_IsNumber(it) || it->valuedouble < min ||
	    it->valuedouble > 9007199254740992.0 ||
	    it->valuedouble != (double)(uint64_t)it->valuedouble) {
		fail(a, "bad_request", "%s: expected %s", name, what);
		return false;
	}
	*out = it->valuedouble;
	return true;
}

static bool
opt_id(const cJSON *req, const char *name, uint64_t *out, struct answer *a)
{
	double v = 0;

	if (!opt_whole(req, name, 1, "a positive integer", &v, a))
		return false;
	*out = (uint64_t)v;
	return true;
}

struct seer {
	const struct gateway *gw;
	const struct gw_session_view *view;
};

static bool
seer_sees(void *arg, const struct store_conv *c)
{
	const struct seer *s = arg;

	return gw_view_sees(s->gw, s->view, c->connector, c->assignee);
}

static void
do_feed(const struct gateway *gw, const cJSON *req,
    const struct gw_session_view *view, struct store_txn *txn,
    struct answer *a)
{
	struct seer seer = { gw, view };
	const cJSON *limit = cJSON_GetObjectItemCaseSensitive(req, "limit");
	const char *state, *assignee, *tag, *channel, *prio, *text, *before;
	struct store_feed_q q = { .state = STORE_STATE_OPEN, .priority = -1,
	    .limit = 50 };
	char tagbuf[INBOX_TAG_MAX + 1], cursor[64];
	struct inbox_err err;
	int64_t nkey;
	uint64_t nid;
	cJSON *arr;
	bool more;
	int rc;

	if (!opt_str(req, "state", 16, &state, a) ||
	    !opt_str(req, "assignee", 64, &assignee, a) ||
	    !opt_str(req, "tag", 256, &tag, a) ||
	    !opt_str(req, "channel", 32, &channel, a) ||
	    !opt_str(req, "priority", 16, &prio, a) ||
	    !opt_str(req, "text", 200, &text, a) ||
	    !opt_str(req, "before", 64, &before, a) ||
	    !opt_id(req, "contact", &q.contact_id, a))
		return;
	if (state != NULL && store_state_parse(state, &q.state) != 0)
		return fail(a, "bad_request", "state: expected open, snoozed or "
		    "closed");
	if (limit != NULL) {
		if (!cJSON_IsNumber(limit) || limit->valuedouble < 1 ||
		    limit->valuedouble > FEED_LIMIT_MAX)
			return fail(a, "bad_request",
			    "limit: expected an integer from 1 to 500");
		q.limit = (size_t)limit->valuedouble;
	}
	if (assignee == NULL || strcmp(assignee, "any") == 0)
		q.assignee = NULL;
	else if (strcmp(assignee, "me") == 0)
		q.assignee = view->login;
	else if (strcmp(assignee, "none") == 0)
		q.assignee = "";
	else if (inbox_login_valid(assignee))
		q.assignee = assignee;
	else
		return fail(a, "bad_request", "assignee: expected me, none, any "
		    "or a login");
	if (tag != NULL) {
		if (inbox_tag_normalize(tag, tagbuf, sizeof(tagbuf), &err) != 0)
			return fail(a, "bad_request", "%s", err.msg);
		q.tag = tagbuf;
	}
	if (channel != NULL) {
		enum inbox_channel ch;

		if (inbox_channel_parse(channel, &ch) != 0)
			return fail(a, "bad_request", "channel: unknown channel");
		q.channel = channel;
	}
	if (prio != NULL && inbox_priority_parse(prio, &q.priority) != 0)
		return fail(a, "bad_request", "priority: expected low, normal, "
		    "high or urgent");
	q.text = text;
	if (before != NULL) {
		long long k;
		unsigned long long id;
		char tail;

		if (sscanf(before, "%lld:%llu%c", &k, &id, &tail) != 2 || id == 0)
			return fail(a, "bad_request",
			    "before: not a cursor from a previous answer");
		q.after_key = k;
		q.after_id = id;
	}
	q.visible = seer_sees;
	q.visible_arg = &seer;
	arr = cJSON_CreateArray();
	rc = store_feed_json(txn, &q, arr, &more, &nkey, &nid);
	if (rc != 0) {
		cJSON_Delete(arr);
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	a->data = cJSON_CreateObject();
	cJSON_AddItemToObject(a->data, "conversations", arr);
	if (more) {
		snprintf(cursor, sizeof(cursor), "%lld:%llu", (long long)nkey,
		    (unsigned long long)nid);
		cJSON_AddStringToObject(a->data, "next", cursor);
	} else {
		cJSON_AddNullToObject(a->data, "next");
	}
}

static int
msg_one(void *arg, const struct store_msg *m)
{
	cJSON_AddItemToArray(arg, store_msg_json(m, NULL));
	return 0;
}

static int
task_one(void *arg, const struct store_task *t)
{
	cJSON_AddItemToArray(arg, store_task_json(t));
	return 0;
}

static void
do_conv_get(const struct gateway *gw, const cJSON *req,
    const struct gw_session_view *view, struct store_txn *txn,
    struct answer *a)
{
	struct store_conv c;
	cJSON *msgs, *notes, *tasks, *it, *next;
	uint64_t id;
	int rc;

	if (!opt_id(req, "id", &id, a))
		return;
	if (id == 0)
		return fail(a, "bad_request", "id: expected a conversation id");
	rc = store_conv_get(txn, id, &c);
	/* another team's dialog does not exist for this agent */
	if (rc == INBOX_ENOTFOUND || (rc == 0 && !gw_view_sees(gw, view,
	    c.connector, c.assignee)))
		return fail(a, "not_found", "no such conversation");
	if (rc != 0)
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	msgs = cJSON_CreateArray();
	tasks = cJSON_CreateArray();
	if ((rc = store_conv_messages(txn, c.id, msg_one, msgs)) != 0 ||
	    (rc = store_conv_tasks(txn, c.id, task_one, tasks)) != 0) {
		cJSON_Delete(msgs);
		cJSON_Delete(tasks);
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	/* Notes are messages of direction "note": give them their own list. */
	notes = cJSON_CreateArray();
	for (it = msgs->child; it != NULL; it = next) {
		const cJSON *dir = cJSON_GetObjectItemCaseSensitive(it,
		    "direction");

		next = it->next;
		if (cJSON_IsString(dir) && strcmp(dir->valuestring, "note") == 0)
			cJSON_AddItemToArray(notes,
			    cJSON_DetachItemViaPointer(msgs, it));
	}
	a->data = cJSON_CreateObject();
	cJSON_AddItemToObject(a->data, "conversation", store_conv_json(txn, &c));
	cJSON_AddItemToObject(a->data, "messages", msgs);
	cJSON_AddItemToObject(a->data, "notes", notes);
	cJSON_AddItemToObject(a->data, "tasks", tasks);
}

struct conv_list {
	struct store_txn *txn;
	cJSON *arr;
	struct seer seer;
};

static int
conv_one(void *arg, uint64_t id)
{
	struct conv_list *l = arg;
	struct store_conv c;

	if (store_conv_get(l->txn, id, &c) == 0 && seer_sees(&l->seer, &c))
		cJSON_AddItemToArray(l->arr, store_conv_json(l->txn, &c));
	return 0;
}

static void
do_contact_get(const struct gateway *gw, const cJSON *req,
    const struct gw_session_view *view, struct store_txn *txn,
    struct answer *a)
{
	struct store_contact c;
	struct conv_list l;
	uint64_t id;
	int rc;

	if (!opt_id(req, "id", &id, a))
		return;
	if (id == 0)
		return fail(a, "bad_request", "id: expected a contact id");
	rc = store_contact_get(txn, id, &c);
	if (rc == 0 && c.merged_into != 0) {
		id = c.merged_into;
		rc = store_contact_get(txn, id, &c);
	}
	if (rc == INBOX_ENOTFOUND)
		return fail(a, "not_found", "no such contact");
	if (rc != 0)
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	l.txn = txn;
	l.arr = cJSON_CreateArray();
	l.seer.gw = gw;
	l.seer.view = view;
	a->data = cJSON_CreateObject();
	cJSON_AddItemToObject(a->data, "contact", store_contact_json(&c));
	if ((rc = store_contact_convs(txn, id, conv_one, &l)) != 0) {
		cJSON_Delete(l.arr);
		cJSON_Delete(a->data);
		a->data = NULL;
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	cJSON_AddItemToObject(a->data, "conversations", l.arr);
}

static int
template_one(void *arg, const struct store_template *t)
{
	cJSON_AddItemToArray(arg, store_template_json(t));
	return 0;
}

static int
tag_one(void *arg, const char *tag, int64_t created)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(tag));
	return 0;
}

static void
do_list(const char *what, struct store_txn *txn, struct answer *a)
{
	cJSON *arr = cJSON_CreateArray();
	int rc;

	rc = what[1] == 'e' ? store_templates(txn, template_one, arr) :
	    store_tags(txn, tag_one, arr);
	if (rc != 0) {
		cJSON_Delete(arr);
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	a->data = cJSON_CreateObject();
	cJSON_AddItemToObject(a->data, what, arr);
}

/* The verbs that change something: forwarded to inbox:cmd as commands of
 * the same type; the answer comes with the router's event. */
static const char *const command_verbs[] = {
	"conversation.close", "conversation.snooze", "conversation.reopen",
	"conversation.assign", "conversation.tag", "conversation.set",
	"note.add", "message.send", "task.create", "task.update",
	"template.put", "template.delete", "contact.update", "contact.merge",
};

static bool
is_command(const char *type)
{
	for (size_t i = 0; i < sizeof(command_verbs) / sizeof(command_verbs[0]);
	    i++)
		if (strcmp(type, command_verbs[i]) == 0)
			return true;
	return false;
}

int
gw_cmd_append(struct gateway *gw, const char *json)
{
	const char *argv[5] = { "XADD", gw->k_cmd, "*", "cmd", json };

	return gw_redis_send(gw, 5, argv);
}

/* The result frame of a request (its "req" id or null, and a). */
static char *
render(const cJSON *reqid, struct answer *a)
{
	cJSON *out = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(out, "type", "result");
	if (reqid != NULL && (cJSON_IsNumber(reqid) || cJSON_IsString(reqid)))
		cJSON_AddItemToObject(out, "req", cJSON_Duplicate(reqid, 0));
	else
		cJSON_AddNullToObject(out, "req");
	if (a->code == NULL) {
		cJSON_AddBoolToObject(out, "ok", 1);
		cJSON_AddItemToObject(out, "data", a->data != NULL ? a->data :
		    cJSON_CreateObject());
	} else {
		cJSON *e;

		cJSON_Delete(a->data);
		cJSON_AddBoolToObject(out, "ok", 0);
		e = cJSON_AddObjectToObject(out, "error");
		cJSON_AddStringToObject(e, "code", a->code);
		cJSON_AddStringToObject(e, "message", a->message);
	}
	a->data = NULL;
	s = cJSON_PrintUnformatted(out);
	cJSON_Delete(out);
	if (s == NULL)
		fatalx("gateway: out of memory");
	return s;
}

/* A request answered after Redis replies: the answer goes to the socket
 * when it is still open. */
struct deferred {
	struct gw_call call;
	cJSON *reqid;            /* the request's "req" (a copy) or NULL */
	char cmd_id[136];        /* commands */
	char since[64];          /* subscribe */
	bool checked;            /* ... the oldest kept event was compared */
	cJSON *stats;            /* stats: the store's part */
	int64_t to;
	char start[80];          /* stats: the next page of alerts */
};

static struct deferred *
deferred_new(const cJSON *req)
{
	struct deferred *d = xcalloc(1, sizeof(*d));
	const cJSON *reqid = cJSON_GetObjectItemCaseSensitive(req, "req");

	if (reqid != NULL)
		d->reqid = cJSON_Duplicate(reqid, 0);
	return d;
}

static void
deferred_free(struct deferred *d)
{
	cJSON_Delete(d->reqid);
	cJSON_Delete(d->stats);
	free(d);
}

/* Sends the answer a (when the socket is still open) and frees d. */
static void
deferred_answer(struct gateway *gw, struct deferred *d,
    struct gw_frame *replay, struct answer *a)
{
	if (d->call.sock != NULL && d->since[0] != '\0')
		gw_sock_view(d->call.sock)->replaying--;  /* a subscribe */
	if (d->call.sock != NULL)
		gw_sock_result(d->call.sock, replay, render(d->reqid, a));
	else {
		while (replay != NULL) {
			struct gw_frame *next = replay->next;

			free(replay);
			replay = next;
		}
		cJSON_Delete(a->data);
	}
	deferred_free(d);
}

static void
cmd_appended(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct deferred *d = (struct deferred *)call;

	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		log_warnx("gateway: XADD %s: %s", gw->k_cmd, r == NULL ?
		    "redis went away" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		if (call->sock != NULL)
			gw_sock_cmd_failed(call->sock, d->cmd_id, r == NULL ?
			    "redis went away: the command was not sent" :
			    "cannot append to the command stream");
	}
	deferred_free(d);
}

/* Sends the request as a command. Returns true when it was sent (the
 * answer is deferred: pend is filled). */
static bool
forward(struct gateway *gw, const cJSON *req,
    const struct gw_session_view *view, struct gw_sock *sock,
    struct gw_pending *pend, struct answer *a)
{
	const cJSON *reqid = cJSON_GetObjectItemCaseSensitive(req, "req");
	struct deferred *d;
	const char *argv[5];
	cJSON *cmd;
	char *json;
	int rc;

	snprintf(pend->cmd_id, sizeof(pend->cmd_id), "%s.%llu", gw->cmd_prefix,
	    (unsigned long long)++gw->cmd_seq);
	cmd = cJSON_Duplicate(req, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(cmd, "req");
	cJSON_DeleteItemFromObjectCaseSensitive(cmd, "v");
	cJSON_DeleteItemFromObjectCaseSensitive(cmd, "cmd_id");
	cJSON_DeleteItemFromObjectCaseSensitive(cmd, "actor");
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "cmd_id", pend->cmd_id);
	cJSON_AddStringToObject(cmd, "actor", view->login);
	json = cJSON_PrintUnformatted(cmd);
	cJSON_Delete(cmd);
	if (json == NULL)
		fatalx("gateway: out of memory");
	d = xcalloc(1, sizeof(*d));
	snprintf(d->cmd_id, sizeof(d->cmd_id), "%s", pend->cmd_id);
	argv[0] = "XADD";
	argv[1] = gw->k_cmd;
	argv[2] = "*";
	argv[3] = "cmd";
	argv[4] = json;
	rc = gw_call_send(gw, &d->call, sock, cmd_appended, 5, argv, NULL);
	free(json);
	if (rc != 0) {
		deferred_free(d);
		pend->cmd_id[0] = '\0';
		fail(a, "unavailable", "redis unreachable");
		return false;
	}
	pend->req = reqid != NULL && (cJSON_IsNumber(reqid) ||
	    cJSON_IsString(reqid)) ? cJSON_PrintUnformatted(reqid) :
	    xstrdup("null");
	pend->since = rt_now_ms();
	return true;
}

/* typing {id}: the others who see the dialog are told (not stored). */
static void
do_typing(struct gateway *gw, const cJSON *req,
    const struct gw_session_view *view, struct answer *a)
{
	struct store_txn *txn = NULL;
	struct store_conv c;
	uint64_t id;
	int rc;

	if (!opt_id(req, "id", &id, a))
		return;
	if (id == 0)
		return fail(a, "bad_request", "id: expected a conversation id");
	if ((rc = gw_store(gw)) != 0 ||
	    (rc = store_txn_begin(gw->store, false, &txn)) != 0)
		return fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	rc = store_conv_get(txn, id, &c);
	if (rc == 0 && gw_view_sees(gw, view, c.connector, c.assignee)) {
		gw_typing(gw, view->login, id, c.connector, c.assignee);
		a->data = cJSON_CreateObject();
	} else if (rc == 0 || rc == INBOX_ENOTFOUND) {
		fail(a, "not_found", "no such conversation");
	} else {
		fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	store_txn_abort(txn);
}

/* Sends d's next Redis read for sock; false after failing a (Redis down,
 * or no socket to answer: the fuzz target's requests). */
static bool
deferred_send(struct gateway *gw, struct deferred *d, struct gw_sock *sock,
    gw_call_fn *fn, int argc, const char **argv, struct answer *a)
{
	if (sock != NULL && gw_call_send(gw, &d->call, sock, fn, argc, argv,
	    NULL) == 0)
		return true;
	fail(a, "unavailable", "redis unreachable");
	return false;
}

/* Replays the events of r (an XRANGE after `since`) that the socket was
 * not sent: those before its first live push or after the last one. */
static void
replay_build(struct gateway *gw, const redisReply *r, const char *since,
    struct gw_session_view *view, struct gw_frame **replay,
    struct answer *a)
{
	struct gw_frame *tail = NULL;
	char last[64] = "";
	size_t n = 0;

	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const char *ev, *data;
		struct gw_frame *f;
		struct gw_seq es;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		ev = rt_entry_field(e->element[1], "event", NULL);
		data = rt_entry_field(e->element[1], "data", NULL);
		snprintf(last, sizeof(last), "%s", e->element[0]->str);
		if (ev == NULL || data == NULL || !gw_seq_parse(last, &es))
			continue;
		if (view->live_sent && gw_seq_cmp(es, view->first_live) >= 0 &&
		    gw_seq_cmp(es, view->last) <= 0)
			continue; /* sent live already */
		f = gw_event_frame(last, ev, data,
		    rt_entry_field(e->element[1], "to", NULL), NULL);
		gw_frame_scope_from(f, e->element[1]);
		if (!gw_frame_visible_to(gw, f, view)) {
			free(f);
			continue;
		}
		if (tail != NULL)
			tail->next = f;
		else
			*replay = f;
		tail = f;
		n++;
		if (gw_seq_cmp(es, view->last) > 0)
			view->last = es;
	}
	a->data = cJSON_CreateObject();
	cJSON_AddNumberToObject(a->data, "replayed", (double)n);
	cJSON_AddStringToObject(a->data, "last", last[0] ? last : since);
	cJSON_AddBoolToObject(a->data, "more", r->elements == REPLAY_MAX);
}

static void
subscribe_reply(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct deferred *d = (struct deferred *)call;
	struct gw_frame *replay = NULL;
	struct answer a = { 0 };
	struct gw_seq s, first;

	if (call->sock == NULL)
		return deferred_free(d);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		fail(&a, "unavailable", "cannot read the event stream: %s",
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str :
		    "redis went away");
		return deferred_answer(gw, d, NULL, &a);
	}
	if (!d->checked) {
		char from[80];
		const char *argv[] = { "XRANGE", gw->k_events, from, "+",
		    "COUNT", STR(REPLAY_MAX) };

		/* events older than the stream keeps (it is trimmed): the
		 * client must reload what it shows */
		gw_seq_parse(d->since, &s);
		if (r->elements == 1 && r->element[0]->type ==
		    REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
		    r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
		    gw_seq_parse(r->element[0]->element[0]->str, &first) &&
		    gw_seq_cmp(s, first) < 0 && (s.ms != 0 || s.seq != 0)) {
			fail(&a, "resync", "events after %s are no longer kept "
			    "(the oldest is %s): reload the feed", d->since,
			    r->element[0]->element[0]->str);
			return deferred_answer(gw, d, NULL, &a);
		}
		d->checked = true;
		snprintf(from, sizeof(from), "(%s", d->since);
		if (!deferred_send(gw, d, call->sock, subscribe_reply, 6, argv,
		    &a))
			return deferred_answer(gw, d, NULL, &a);
		return;
	}
	replay_build(gw, r, d->since, gw_sock_view(call->sock), &replay, &a);
	deferred_answer(gw, d, replay, &a);
}

/* subscribe {since}: the events after `since` this socket missed. */
static bool
do_subscribe(struct gateway *gw, const cJSON *req, struct gw_sock *sock,
    struct answer *a)
{
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(req, "since");
	const char *argv[] = { "XRANGE", gw->k_events, "-", "+", "COUNT",
	    "1" };
	struct deferred *d;
	struct gw_seq s;

	if (!cJSON_IsString(since) || !gw_seq_parse(since->valuestring, &s)) {
		fail(a, "bad_request", "since: expected a seq (ms-n)");
		return false;
	}
	d = deferred_new(req);
	snprintf(d->since, sizeof(d->since), "%s", since->valuestring);
	if (!deferred_send(gw, d, sock, subscribe_reply, 6, argv, a)) {
		deferred_free(d);
		return false;
	}
	/* live events wait until the missed ones are queued: they come in
	 * order, and those the replay holds are not sent twice */
	gw_sock_view(sock)->replaying++;
	return true;
}

static void
sla_recent_reply(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct deferred *d = (struct deferred *)call;
	struct answer a = { 0 };
	cJSON *arr;

	if (call->sock == NULL)
		return deferred_free(d);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		fail(&a, "unavailable", "cannot read the alert stream");
		return deferred_answer(gw, d, NULL, &a);
	}
	a.data = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(a.data, "alerts");
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const char *ev, *data;
		cJSON *o, *j;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		ev = rt_entry_field(e->element[1], "event", NULL);
		data = rt_entry_field(e->element[1], "data", NULL);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "seq", e->element[0]->str);
		cJSON_AddStringToObject(o, "event", ev ? ev : "");
		j = data ? cJSON_Parse(data) : NULL;
		cJSON_AddItemToObject(o, "data", j ? j : cJSON_CreateNull());
		cJSON_AddItemToArray(arr, o);
	}
	cJSON_AddBoolToObject(a.data, "more", r->elements == SLA_RECENT_MAX);
	deferred_answer(gw, d, NULL, &a);
}

/* sla.recent {since?}: the latest alerts (after `since`), newest first. */
static bool
do_sla_recent(struct gateway *gw, const cJSON *req, struct gw_sock *sock,
    struct answer *a)
{
	const char *since;
	char end[80], stream[128];
	const char *argv[] = { "XREVRANGE", stream, "+", end, "COUNT",
	    STR(SLA_RECENT_MAX) };
	struct deferred *d;
	struct gw_seq s;

	if (!opt_str(req, "since", 64, &since, a))
		return false;
	if (since != NULL && !gw_seq_parse(since, &s)) {
		fail(a, "bad_request", "since: expected a seq (ms-n)");
		return false;
	}
	snprintf(end, sizeof(end), "%s%s", since ? "(" : "-", since ? since : "");
	rt_key(stream, sizeof(stream), gw->cfg, "sla");
	d = deferred_new(req);
	if (!deferred_send(gw, d, sock, sla_recent_reply, 6, argv, a)) {
		deferred_free(d);
		return false;
	}
	return true;
}

/* Reads the next page of the stats' breach alerts; false when Redis is
 * down. */
static bool
stats_page(struct gateway *gw, struct deferred *d, struct gw_sock *sock);

static void
stats_reply(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct deferred *d = (struct deferred *)call;
	struct answer a = { 0 };
	size_t n;

	if (call->sock == NULL)
		return deferred_free(d);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		/* without the stream the alerts are unknown (null) */
		log_warnx("gateway: stats: cannot read the alert stream");
		store_stats_alerts_unknown(d->stats);
		goto answer;
	}
	n = r->elements;
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = r->element[i];

		if (e->type == REDIS_REPLY_ARRAY && e->elements == 2)
			store_stats_alert(d->stats, rt_entry_field(e->element[1],
			    "event", NULL), rt_entry_field(e->element[1], "data",
			    NULL));
	}
	if (n == ALERT_PAGE && r->element[n - 1]->type == REDIS_REPLY_ARRAY &&
	    r->element[n - 1]->element[0]->type == REDIS_REPLY_STRING) {
		snprintf(d->start, sizeof(d->start), "(%s",
		    r->element[n - 1]->element[0]->str);
		if (stats_page(gw, d, call->sock))
			return;
		store_stats_alerts_unknown(d->stats);
	}
answer:
	a.data = d->stats;
	d->stats = NULL;
	deferred_answer(gw, d, NULL, &a);
}

static bool
stats_page(struct gateway *gw, struct deferred *d, struct gw_sock *sock)
{
	char stream[128], end[32];
	const char *argv[] = { "XRANGE", stream, d->start, end, "COUNT",
	    STR(ALERT_PAGE) };

	rt_key(stream, sizeof(stream), gw->cfg, "sla");
	snprintf(end, sizeof(end), "%lld", (long long)d->to + ALERT_SLACK_MS);
	return sock != NULL && gw_call_send(gw, &d->call, sock, stats_reply, 6,
	    argv, NULL) == 0;
}

/* An optional time in ms (absent: *out unchanged); false after failing
 * `a`. */
static bool
opt_ms(const cJSON *req, const char *name, int64_t *out, struct answer *a)
{
	double v = (double)*out;

	if (!opt_whole(req, name, 0, "a time in ms", &v, a))
		return false;
	*out = (int64_t)v;
	return true;
}

/* stats, agents and sla.recent: for supervisors and admins only. Returns
 * true when the answer is deferred (Redis reads). */
static bool
do_supervise(struct gateway *gw, const char *type, const cJSON *req,
    const struct gw_session_view *view, struct gw_sock *sock,
    struct answer *a)
{
	struct store_txn *txn = NULL;
	struct store_agent ag;
	int64_t now = rt_now_ms(), from = now - STATS_DEFAULT_MS, to = now;
	struct deferred *d;
	void *out = NULL;
	bool allowed = false;
	int rc;

	if ((rc = gw_store(gw)) != 0 ||
	    (rc = store_txn_begin(gw->store, false, &txn)) != 0) {
		fail(a, "store_unavailable", "%s", inbox_strerror(rc));
		return false;
	}
	rc = store_agent_get(txn, view->login, &ag);
	if (rc == 0 || rc == INBOX_ENOTFOUND) {
		allowed = rc == 0 && ag.role != NULL &&
		    (strcmp(ag.role, "supervisor") == 0 ||
		    strcmp(ag.role, "admin") == 0);
		rc = 0;
	}
	if (rc != 0)
		fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	else if (!allowed)
		fail(a, "forbidden", "%s is for supervisors and admins", type);
	else if (strcmp(type, "agents") == 0 &&
	    (rc = store_agents_json(txn, now, gw->cfg->router_presence_lease_ms,
	    gw->cfg->router_default_capacity, &out)) != 0)
		fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	else if (strcmp(type, "stats") == 0 && opt_ms(req, "from", &from, a) &&
	    opt_ms(req, "to", &to, a)) {
		if (to <= from)
			fail(a, "bad_request", "to: must come after from");
		else if ((rc = store_stats(txn, from, to, &out)) != 0)
			fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	store_txn_abort(txn);
	if (a->code != NULL || strcmp(type, "sla.recent") == 0) {
		cJSON_Delete(out);
		return a->code == NULL && do_sla_recent(gw, req, sock, a);
	}
	if (strcmp(type, "agents") == 0) {
		a->data = cJSON_CreateObject();
		cJSON_AddItemToObject(a->data, "agents", out);
		return false;
	}
	/* stats: the breach alerts of the period come from the alert
	 * stream, a page at a time */
	d = deferred_new(req);
	d->stats = out;
	d->to = to;
	snprintf(d->start, sizeof(d->start), "%lld", (long long)from);
	if (stats_page(gw, d, sock))
		return true;
	log_warnx("gateway: stats: redis unreachable: alerts unknown");
	store_stats_alerts_unknown(d->stats);
	a->data = d->stats;
	d->stats = NULL;
	deferred_free(d);
	return false;
}

char *
gw_request(struct gateway *gw, const char *frame, size_t len,
    struct gw_session_view *view, struct gw_sock *sock,
    struct gw_frame **replay, struct gw_pending *pend)
{
	struct answer a = { 0 };
	struct inbox_err err;
	struct store_txn *txn = NULL;
	const cJSON *type, *reqid = NULL;
	cJSON *req;
	char *s;
	int rc;

	*replay = NULL;
	req = inbox_json_parse(frame, len, &err);
	if (req == NULL || !cJSON_IsObject(req)) {
		fail(&a, "bad_request", "%s", req ? "frame: not a JSON object" :
		    err.msg);
		goto answer;
	}
	reqid = cJSON_GetObjectItemCaseSensitive(req, "req");
	type = cJSON_GetObjectItemCaseSensitive(req, "type");
	if (!cJSON_IsString(type)) {
		fail(&a, "bad_request", "type: missing");
		goto answer;
	}
	if (strcmp(type->valuestring, "ping") == 0) {
		a.data = cJSON_CreateObject();
		cJSON_AddNumberToObject(a.data, "now", (double)rt_now_ms());
	} else if (strcmp(type->valuestring, "subscribe") == 0) {
		if (do_subscribe(gw, req, sock, &a))
			goto deferred;
	} else if (strcmp(type->valuestring, "typing") == 0) {
		do_typing(gw, req, view, &a);
	} else if (strcmp(type->valuestring, "stats") == 0 ||
	    strcmp(type->valuestring, "agents") == 0 ||
	    strcmp(type->valuestring, "sla.recent") == 0) {
		if (do_supervise(gw, type->valuestring, req, view, sock, &a))
			goto deferred;
	} else if (is_command(type->valuestring)) {
		if (forward(gw, req, view, sock, pend, &a))
			goto deferred;
	} else if (strcmp(type->valuestring, "feed") == 0 ||
	    strcmp(type->valuestring, "conversation.get") == 0 ||
	    strcmp(type->valuestring, "contact.get") == 0 ||
	    strcmp(type->valuestring, "templates") == 0 ||
	    strcmp(type->valuestring, "tags") == 0) {
		const char *t = type->valuestring;

		if ((rc = gw_store(gw)) != 0 ||
		    (rc = store_txn_begin(gw->store, false, &txn)) != 0) {
			fail(&a, "store_unavailable", "%s", inbox_strerror(rc));
			goto answer;
		}
		if (strcmp(t, "feed") == 0)
			do_feed(gw, req, view, txn, &a);
		else if (strcmp(t, "conversation.get") == 0)
			do_conv_get(gw, req, view, txn, &a);
		else if (strcmp(t, "contact.get") == 0)
			do_contact_get(gw, req, view, txn, &a);
		else
			do_list(t, txn, &a);
		store_txn_abort(txn);
	} else {
		fail(&a, "unknown_type", "unknown request type '%.64s'",
		    type->valuestring);
	}
answer:
	s = render(reqid, &a);
	cJSON_Delete(req);
	return s;
deferred:
	cJSON_Delete(req);
	return NULL;
}
