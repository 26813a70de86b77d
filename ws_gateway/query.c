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
gw_txn(struct gateway *gw, unsigned k, struct store_txn **txn)
{
	struct gw_shard *sh = &gw->shards[k];
	char path[4200];
	int rc;

	*txn = NULL;
	if (sh->store == NULL) {
		rt_store_path(path, sizeof(path), gw->cfg, k);
		if ((rc = store_open(&sh->store, path,
		    gw->cfg->store_map_size_mb, STORE_RDONLY)) == 0 &&
		    (rc = store_set_shard(sh->store, k, gw->nshards)) != 0) {
			store_close(sh->store);
			sh->store = NULL;
		}
		if (rc != 0) {
			sh->store = NULL;
			log_warnx("gateway: store %s: %s", path,
			    inbox_strerror(rc));
			return rc;
		}
	}
	return store_txn_begin(sh->store, false, txn);
}

/* The shard of an id (conversation, contact, task, message). */
static unsigned
shard_of(const struct gateway *gw, uint64_t id)
{
	return inbox_shard_of_id(id, gw->nshards);
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

/* One conversation of a shard's page, with where it sorts. */
struct feed_item {
	int64_t key;
	uint64_t id;
	cJSON *json;
};

struct feed_part {
	struct store_txn *txn;
	struct feed_item *items;
	size_t n;
};

static int
feed_collect(void *arg, const struct store_conv *c)
{
	struct feed_part *p = arg;

	p->items[p->n].key = store_feed_key(c);
	p->items[p->n].id = c->id;
	p->items[p->n].json = store_conv_json(p->txn, c);
	p->n++;
	return 0;
}

/* Whether (ka, ia) comes before (kb, ib) in the feed's order: newest key
 * first, snoozed ones soonest first; ids break ties the same way. */
static bool
feed_before(bool asc, int64_t ka, uint64_t ia, int64_t kb, uint64_t ib)
{
	if (ka != kb)
		return asc ? ka < kb : ka > kb;
	return asc ? ia < ib : ia > ib;
}

/* A page of every shard's feed, merged. Ids are unique across shards and
 * the order (key, id) is total, so one cursor serves every shard: each
 * reads its page after it, and the merged page stops where the first
 * shard that has more stopped (nothing of it beyond is known yet). */
static int
feed_merged(struct gateway *gw, const struct store_feed_q *q, cJSON *arr,
    bool *more, int64_t *nkey, uint64_t *nid)
{
	bool asc = q->state == STORE_STATE_SNOOZED, bounded = false;
	struct feed_part *parts = xcalloc(gw->nshards, sizeof(*parts));
	size_t *at = xcalloc(gw->nshards, sizeof(*at)), given = 0;
	int64_t bkey = 0;
	uint64_t bid = 0;
	int rc = 0;

	*more = false;
	*nkey = q->after_key;
	*nid = q->after_id;
	for (unsigned k = 0; k < gw->nshards && rc == 0; k++) {
		bool m;
		int64_t sk;
		uint64_t si;

		parts[k].items = xcalloc(q->limit, sizeof(*parts[k].items));
		if ((rc = gw_txn(gw, k, &parts[k].txn)) != 0 ||
		    (rc = store_feed(parts[k].txn, q, feed_collect, &parts[k],
		    &m, &sk, &si)) != 0)
			break;
		/* shard k stopped at (sk, si): the page ends there at most */
		if (m && (!bounded || feed_before(asc, sk, si, bkey, bid))) {
			bkey = sk;
			bid = si;
			bounded = true;
		}
	}
	for (; rc == 0; given++) {
		unsigned best = gw->nshards;

		for (unsigned k = 0; k < gw->nshards; k++) {
			const struct feed_item *it;

			if (at[k] == parts[k].n)
				continue;
			it = &parts[k].items[at[k]];
			if (bounded && feed_before(asc, bkey, bid, it->key,
			    it->id))
				continue;        /* beyond the bound */
			if (best == gw->nshards || feed_before(asc, it->key,
			    it->id, parts[best].items[at[best]].key,
			    parts[best].items[at[best]].id))
				best = k;
		}
		if (best == gw->nshards)
			break;               /* every shard's page is out */
		if (given == q->limit) {
			*more = true;
			break;
		}
		*nkey = parts[best].items[at[best]].key;
		*nid = parts[best].items[at[best]].id;
		cJSON_AddItemToArray(arr, parts[best].items[at[best]].json);
		parts[best].items[at[best]++].json = NULL;
	}
	if (rc == 0 && !*more && bounded) {
		/* the rest lies after the bound */
		*more = true;
		*nkey = bkey;
		*nid = bid;
	}
	for (unsigned k = 0; k < gw->nshards; k++) {
		for (size_t i = 0; i < parts[k].n; i++)
			cJSON_Delete(parts[k].items[i].json);
		free(parts[k].items);
		store_txn_abort(parts[k].txn);
	}
	free(parts);
	free(at);
	return rc;
}

static void
do_feed(struct gateway *gw, const cJSON *req,
    const struct gw_session_view *view, struct answer *a)
{
	struct store_txn *txn = NULL;
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
	if (gw->nshards > 1) {
		rc = feed_merged(gw, &q, arr, &more, &nkey, &nid);
	} else if ((rc = gw_txn(gw, 0, &txn)) == 0) {
		rc = store_feed_json(txn, &q, arr, &more, &nkey, &nid);
		store_txn_abort(txn);
	}
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

static int
tag_cmp(const void *a, const void *b)
{
	return strcmp((*(cJSON *const *)a)->valuestring,
	    (*(cJSON *const *)b)->valuestring);
}

/* Every shard's tags (each registers those of its dialogs), sorted and
 * each once. */
static int
tags_merged(struct gateway *gw, cJSON *arr)
{
	cJSON *all = cJSON_CreateArray(), **v, *it;
	size_t n = 0;
	int rc = 0;

	for (unsigned k = 0; k < gw->nshards && rc == 0; k++) {
		struct store_txn *txn;

		if ((rc = gw_txn(gw, k, &txn)) == 0)
			rc = store_tags(txn, tag_one, all);
		store_txn_abort(txn);
	}
	v = xcalloc((size_t)cJSON_GetArraySize(all) + 1, sizeof(*v));
	cJSON_ArrayForEach(it, all)
		v[n++] = it;
	qsort(v, n, sizeof(*v), tag_cmp);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (i == 0 || strcmp(v[i]->valuestring, v[i - 1]->valuestring))
			cJSON_AddItemToArray(arr, cJSON_CreateString(
			    v[i]->valuestring));
	free(v);
	cJSON_Delete(all);
	return rc;
}

/* templates (shard 0 keeps them, as every shard does) and tags. */
static void
do_list(struct gateway *gw, const char *what, struct answer *a)
{
	cJSON *arr = cJSON_CreateArray();
	struct store_txn *txn = NULL;
	int rc;

	if (what[1] == 'a')
		rc = tags_merged(gw, arr);
	else if ((rc = gw_txn(gw, 0, &txn)) == 0)
		rc = store_templates(txn, template_one, arr);
	store_txn_abort(txn);
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

/* A global command (JSON object) as a copy for the other shards: they
 * apply it without announcing it (malloc'd). */
static char *
copy_of(const char *json)
{
	size_t n = strlen(json);
	char *s = xmalloc(n + 16);

	/* the object's closing brace gets a last member before it */
	snprintf(s, n + 16, "%.*s,\"copy\":true}", (int)(n - 1), json);
	return s;
}

/* Sends the copies of a global command to shards 1.. (errors logged: the
 * shard lacks the change until it is made again). Returns 0, or
 * INBOX_EUNAVAIL when one could not be sent. */
static int
send_copies(struct gateway *gw, const char *json)
{
	char *copy;
	int rc = 0;

	if (gw->nshards == 1)
		return 0;
	copy = copy_of(json);
	for (unsigned k = 1; k < gw->nshards; k++) {
		const char *argv[5] = { "XADD", gw->shards[k].k_cmd, "*", "cmd",
		    copy };

		if (gw_redis_send(gw, k, 5, argv) != 0) {
			log_warnx("gateway: %s: a global command is not copied "
			    "to shard %u (redis)", gw->shards[k].k_cmd, k);
			rc = INBOX_EUNAVAIL;
		}
	}
	free(copy);
	return rc;
}

int
gw_cmd_append(struct gateway *gw, const char *json)
{
	const char *argv[5] = { "XADD", gw->shards[0].k_cmd, "*", "cmd", json };
	int rc = gw_redis_send(gw, 0, 5, argv);

	return send_copies(gw, json) != 0 ? INBOX_EUNAVAIL : rc;
}

/* Which shard a command goes to: the one of the dialog, task or contact
 * it names; global ones (templates) to shard 0, which announces them,
 * with copies to the others (*global). Returns false after failing a
 * (a merge of contacts of two shards). */
static bool
command_shard(struct gateway *gw, const char *type, const cJSON *req,
    unsigned *k, bool *global, struct answer *a)
{
	const char *field = "id";
	uint64_t id = 0, from = 0;

	*k = 0;
	*global = strncmp(type, "template.", 9) == 0;
	if (*global || gw->nshards == 1)
		return true;
	if (strcmp(type, "task.update") == 0)
		field = "task_id";
	else if (strcmp(type, "contact.update") == 0)
		field = "contact_id";
	else if (strcmp(type, "contact.merge") == 0)
		field = "into";
	if (!opt_id(req, field, &id, a))
		return false;
	if (strcmp(type, "contact.merge") == 0) {
		if (!opt_id(req, "from", &from, a))
			return false;
		if (from != 0 && id != 0 && shard_of(gw, from) !=
		    shard_of(gw, id)) {
			fail(a, "cross_shard", "contacts %llu and %llu are kept "
			    "by different shards: they cannot be merged",
			    (unsigned long long)id, (unsigned long long)from);
			return false;
		}
	}
	/* no id: the router of shard 0 refuses it with its reason */
	*k = shard_of(gw, id);
	return true;
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
	cJSON *stats;            /* stats: the store's part */
	cJSON *alerts;           /* sla.recent: the alerts read so far */
	int64_t from, to;
	char start[80];          /* the next page of alerts */
	unsigned shard;          /* ... of this shard's alert stream */
	bool more;               /* sla.recent: a shard had more */
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
	cJSON_Delete(d->alerts);
	free(d);
}

/* Sends the answer a (when the socket is still open) and frees d. */
static void
deferred_answer(struct gateway *gw, struct deferred *d, struct answer *a)
{
	if (d->call.sock != NULL)
		gw_sock_result(d->call.sock, NULL, render(d->reqid, a));
	else
		cJSON_Delete(a->data);
	deferred_free(d);
}

static void
cmd_appended(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct deferred *d = (struct deferred *)call;

	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		log_warnx("gateway: XADD cmd: %s", r == NULL ?
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
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(req, "type");
	struct deferred *d;
	const char *argv[5];
	unsigned k;
	bool global;
	cJSON *cmd;
	char *json;
	int rc;

	if (!command_shard(gw, type->valuestring, req, &k, &global, a))
		return false;
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
	argv[1] = gw->shards[k].k_cmd;
	argv[2] = "*";
	argv[3] = "cmd";
	argv[4] = json;
	rc = gw_call_send(gw, k, &d->call, sock, cmd_appended, 5, argv, NULL);
	if (rc == 0 && global)
		send_copies(gw, json);
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
	if ((rc = gw_txn(gw, shard_of(gw, id), &txn)) != 0)
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
deferred_send(struct gateway *gw, unsigned k, struct deferred *d,
    struct gw_sock *sock, gw_call_fn *fn, int argc, const char **argv,
    struct answer *a)
{
	if (sock != NULL && gw_call_send(gw, k, &d->call, sock, fn, argc, argv,
	    NULL) == 0)
		return true;
	fail(a, "unavailable", "redis unreachable");
	return false;
}

/* ---- subscribe ----------------------------------------------------------
 * A subscribe reads each shard's events it names (after the seq given for
 * it) in its own chain of calls; the answer goes when the last shard's
 * part is done. */

struct sub;

/* One shard's part of a subscribe. */
struct sub_part {
	struct gw_call call;     /* first: the part is the call */
	struct sub *sub;
	unsigned k;
	bool asked;              /* since names this shard: replay after it;
	                          * else only its last seq is told */
	bool checked;            /* the oldest kept event was compared */
	char since[64];
	char last[64];
	bool more;
	struct gw_frame *replay; /* its events, oldest first */
	size_t replayed;
};

struct sub {
	cJSON *reqid;
	bool per_shard;          /* since was an object: so is last */
	unsigned left;           /* parts still reading */
	bool failed, gone;       /* an error was set; the socket closed */
	struct answer err;
	struct sub_part *parts;  /* nshards */
};

static void
frames_free(struct gw_frame *f)
{
	while (f != NULL) {
		struct gw_frame *next = f->next;

		free(f);
		f = next;
	}
}

static int
frame_cmp(const void *a, const void *b)
{
	const struct gw_frame *x = *(const struct gw_frame *const *)a;
	const struct gw_frame *y = *(const struct gw_frame *const *)b;
	int c = gw_seq_cmp(x->seq, y->seq);

	return c != 0 ? c : x->shard < y->shard ? -1 : x->shard > y->shard;
}

/* The parts are all done: the answer (or the error) goes to the socket
 * of the last one, when it is still open. */
static void
sub_finish(struct gateway *gw, struct sub *sub, struct gw_sock *sock)
{
	struct answer a = { 0 };
	struct gw_frame *replay = NULL, **v, **tail = &replay;
	size_t n = 0, total = 0;
	bool more = false;
	cJSON *last;

	for (unsigned k = 0; k < gw->nshards; k++)
		total += sub->parts[k].replayed;
	v = xcalloc(total + 1, sizeof(*v));
	for (unsigned k = 0; k < gw->nshards; k++) {
		for (struct gw_frame *f = sub->parts[k].replay; f != NULL;
		    f = f->next)
			v[n++] = f;
		more = more || sub->parts[k].more;
	}
	/* shards' events in the order of their ids' clocks */
	qsort(v, n, sizeof(*v), frame_cmp);
	for (size_t i = 0; i < n; i++) {
		*tail = v[i];
		tail = &v[i]->next;
	}
	*tail = NULL;
	free(v);
	if (sub->failed || sock == NULL) {
		frames_free(replay);
		replay = NULL;
		a = sub->err;
	} else {
		a.data = cJSON_CreateObject();
		cJSON_AddNumberToObject(a.data, "replayed", (double)n);
		if (sub->per_shard) {
			char key[16];

			last = cJSON_AddObjectToObject(a.data, "last");
			for (unsigned k = 0; k < gw->nshards; k++) {
				snprintf(key, sizeof(key), "%u", k);
				cJSON_AddStringToObject(last, key,
				    sub->parts[k].last);
			}
		} else {
			cJSON_AddStringToObject(a.data, "last",
			    sub->parts[0].last);
		}
		cJSON_AddBoolToObject(a.data, "more", more);
	}
	if (sock != NULL) {
		gw_sock_view(sock)->replaying--;
		gw_sock_result(sock, replay, render(sub->reqid, &a));
	} else {
		cJSON_Delete(a.data);
	}
	cJSON_Delete(sub->reqid);
	free(sub->parts);
	free(sub);
}

/* A part is done (after an error too). */
static void
part_done(struct gateway *gw, struct sub_part *p, struct gw_sock *sock)
{
	struct sub *sub = p->sub;

	if (sock == NULL)
		sub->gone = true;
	if (--sub->left == 0)
		sub_finish(gw, sub, sub->gone ? NULL : sock);
}

/* The subscribe fails (the first error is told). */
static void
part_fail(struct gateway *gw, struct sub_part *p, struct gw_sock *sock,
    const char *code, const char *message)
{
	struct sub *sub = p->sub;

	if (!sub->failed) {
		sub->failed = true;
		sub->err.code = code;
		snprintf(sub->err.message, sizeof(sub->err.message), "%s",
		    message);
	}
	part_done(gw, p, sock);
}

/* Keeps the events of r (an XRANGE of shard p->k after p->since) that the
 * socket was not sent: those before its first live push of that shard or
 * after the last one. */
static void
replay_build(struct gateway *gw, struct sub_part *p, const redisReply *r,
    struct gw_session_view *view)
{
	struct gw_pos *pos = &view->pos[p->k];
	struct gw_frame **tail = &p->replay;

	snprintf(p->last, sizeof(p->last), "%s", p->since);
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
		snprintf(p->last, sizeof(p->last), "%s", e->element[0]->str);
		if (ev == NULL || data == NULL || !gw_seq_parse(p->last, &es))
			continue;
		if (pos->live_sent && gw_seq_cmp(es, pos->first_live) >= 0 &&
		    gw_seq_cmp(es, pos->last) <= 0)
			continue; /* sent live already */
		f = gw_event_frame(gw, p->k, p->last, ev, data,
		    rt_entry_field(e->element[1], "to", NULL), NULL);
		gw_frame_scope_from(f, e->element[1]);
		if (!gw_frame_visible_to(gw, f, view)) {
			free(f);
			continue;
		}
		*tail = f;
		tail = &f->next;
		p->replayed++;
		if (gw_seq_cmp(es, pos->last) > 0)
			pos->last = es;
	}
	p->more = r->elements == REPLAY_MAX;
}

static void part_reply(struct gateway *gw, struct gw_call *call,
    redisReply *r);

static bool
part_send(struct gateway *gw, struct sub_part *p, struct gw_sock *sock,
    int argc, const char **argv)
{
	return sock != NULL && gw_call_send(gw, p->k, &p->call, sock,
	    part_reply, argc, argv, NULL) == 0;
}

static void
part_reply(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct sub_part *p = (struct sub_part *)call;
	const char *events = gw->shards[p->k].k_events;
	struct gw_seq s, first;
	char msg[256];

	if (call->sock == NULL)
		return part_done(gw, p, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(msg, sizeof(msg), "cannot read the event stream %s: "
		    "%s", events, r != NULL && r->type == REDIS_REPLY_ERROR ?
		    r->str : "redis went away");
		return part_fail(gw, p, call->sock, "unavailable", msg);
	}
	if (!p->asked) {
		/* the shard's newest event: the client starts from there */
		snprintf(p->last, sizeof(p->last), "0-0");
		if (r->elements == 1 && r->element[0]->type ==
		    REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
		    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
			snprintf(p->last, sizeof(p->last), "%s",
			    r->element[0]->element[0]->str);
		return part_done(gw, p, call->sock);
	}
	if (!p->checked) {
		char from[80];
		const char *argv[] = { "XRANGE", events, from, "+", "COUNT",
		    STR(REPLAY_MAX) };

		/* events older than the stream keeps (it is trimmed): the
		 * client must reload what it shows */
		gw_seq_parse(p->since, &s);
		if (r->elements == 1 && r->element[0]->type ==
		    REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
		    r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
		    gw_seq_parse(r->element[0]->element[0]->str, &first) &&
		    gw_seq_cmp(s, first) < 0 && (s.ms != 0 || s.seq != 0)) {
			snprintf(msg, sizeof(msg), "events after %s are no "
			    "longer kept (the oldest is %s): reload the feed",
			    p->since, r->element[0]->element[0]->str);
			return part_fail(gw, p, call->sock, "resync", msg);
		}
		p->checked = true;
		snprintf(from, sizeof(from), "(%s", p->since);
		if (!part_send(gw, p, call->sock, 6, argv))
			return part_fail(gw, p, call->sock, "unavailable",
			    "redis unreachable");
		return;
	}
	replay_build(gw, p, r, gw_sock_view(call->sock));
	part_done(gw, p, call->sock);
}

/* Reads the since of shard k from `since`: a seq (one shard), or an
 * object {"<k>": seq} (absent: the shard is not replayed). Returns false
 * after failing a. */
static bool
since_of(const struct gateway *gw, const cJSON *since, unsigned k,
    struct sub_part *p, struct answer *a)
{
	const cJSON *v = since;
	char key[16];
	struct gw_seq s;

	if (cJSON_IsObject(since)) {
		snprintf(key, sizeof(key), "%u", k);
		v = cJSON_GetObjectItemCaseSensitive(since, key);
		if (v == NULL)
			return true;
	} else if (k > 0 || gw->nshards > 1) {
		fail(a, "bad_request", "since: expected an object {\"<shard>\": "
		    "seq} (redis.shards is %u)", gw->nshards);
		return false;
	}
	if (!cJSON_IsString(v) || !gw_seq_parse(v->valuestring, &s)) {
		fail(a, "bad_request", "since: expected a seq (ms-n)%s",
		    cJSON_IsObject(since) ? " for each shard" : "");
		return false;
	}
	p->asked = true;
	snprintf(p->since, sizeof(p->since), "%s", v->valuestring);
	return true;
}

/* subscribe {since}: the events after `since` this socket missed. */
static bool
do_subscribe(struct gateway *gw, const cJSON *req, struct gw_sock *sock,
    struct answer *a)
{
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(req, "since");
	const cJSON *reqid = cJSON_GetObjectItemCaseSensitive(req, "req");
	struct sub *sub;

	if (!cJSON_IsString(since) && !cJSON_IsObject(since)) {
		fail(a, "bad_request", "since: expected a seq (ms-n)%s",
		    gw->nshards > 1 ? " per shard: {\"<shard>\": seq}" : "");
		return false;
	}
	sub = xcalloc(1, sizeof(*sub));
	sub->parts = xcalloc(gw->nshards, sizeof(*sub->parts));
	sub->per_shard = cJSON_IsObject(since);
	for (unsigned k = 0; k < gw->nshards; k++) {
		sub->parts[k].sub = sub;
		sub->parts[k].k = k;
		if (!since_of(gw, since, k, &sub->parts[k], a))
			goto refused;
	}
	if (sock == NULL) {
		fail(a, "unavailable", "redis unreachable");
		goto refused;
	}
	if (reqid != NULL)
		sub->reqid = cJSON_Duplicate(reqid, 0);
	/* live events wait until the missed ones are queued: they come in
	 * order, and those the replay holds are not sent twice */
	gw_sock_view(sock)->replaying++;
	sub->left = gw->nshards;
	for (unsigned k = 0; k < gw->nshards; k++) {
		struct sub_part *p = &sub->parts[k];
		const char *argv[] = { p->asked ? "XRANGE" : "XREVRANGE",
		    gw->shards[k].k_events, p->asked ? "-" : "+",
		    p->asked ? "+" : "-", "COUNT", "1" };

		/* a part that cannot be sent fails the subscribe, answered
		 * once the others are done (the last one: now) */
		if (!part_send(gw, p, sock, 6, argv))
			part_fail(gw, p, sock, "unavailable",
			    "redis unreachable");
	}
	return true;
refused:
	free(sub->parts);
	free(sub);
	return false;
}

static bool sla_recent_page(struct gateway *gw, struct deferred *d,
    struct gw_sock *sock, struct answer *a);

static int
alert_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	const char *sx = cJSON_GetObjectItemCaseSensitive(x, "seq")->valuestring;
	const char *sy = cJSON_GetObjectItemCaseSensitive(y, "seq")->valuestring;
	struct gw_seq qx = { 0, 0 }, qy = { 0, 0 };

	/* "<k>:<id>" with shards: by the id's clock */
	gw_seq_parse(strchr(sx, ':') ? strchr(sx, ':') + 1 : sx, &qx);
	gw_seq_parse(strchr(sy, ':') ? strchr(sy, ':') + 1 : sy, &qy);
	return -gw_seq_cmp(qx, qy);      /* newest first */
}

/* Each shard's alert stream in turn: the newest after since, merged. */
static void
sla_recent_reply(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct deferred *d = (struct deferred *)call;
	struct answer a = { 0 };
	cJSON *arr, **v, *it;
	size_t n = 0;

	if (call->sock == NULL)
		return deferred_free(d);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		fail(&a, "unavailable", "cannot read the alert stream");
		return deferred_answer(gw, d, &a);
	}
	if (d->alerts == NULL)
		d->alerts = cJSON_CreateArray();
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const char *ev, *data;
		char seq[96];
		cJSON *o, *j;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		ev = rt_entry_field(e->element[1], "event", NULL);
		data = rt_entry_field(e->element[1], "data", NULL);
		o = cJSON_CreateObject();
		if (gw->nshards > 1)
			snprintf(seq, sizeof(seq), "%u:%s", d->shard,
			    e->element[0]->str);
		else
			snprintf(seq, sizeof(seq), "%s", e->element[0]->str);
		cJSON_AddStringToObject(o, "seq", seq);
		cJSON_AddStringToObject(o, "event", ev ? ev : "");
		j = data ? cJSON_Parse(data) : NULL;
		cJSON_AddItemToObject(o, "data", j ? j : cJSON_CreateNull());
		cJSON_AddItemToArray(d->alerts, o);
	}
	d->more = d->more || r->elements == SLA_RECENT_MAX;
	if (++d->shard < gw->nshards) {
		if (sla_recent_page(gw, d, call->sock, &a))
			return;
		return deferred_answer(gw, d, &a);
	}
	/* merged newest first, the limit over all of them */
	v = xcalloc((size_t)cJSON_GetArraySize(d->alerts) + 1, sizeof(*v));
	while ((it = d->alerts->child) != NULL)
		v[n++] = cJSON_DetachItemViaPointer(d->alerts, it);
	qsort(v, n, sizeof(*v), alert_cmp);
	a.data = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(a.data, "alerts");
	for (size_t i = 0; i < n; i++) {
		if (i < SLA_RECENT_MAX)
			cJSON_AddItemToArray(arr, v[i]);
		else
			cJSON_Delete(v[i]);
	}
	free(v);
	cJSON_AddBoolToObject(a.data, "more", d->more || n > SLA_RECENT_MAX);
	deferred_answer(gw, d, &a);
}

static bool
sla_recent_page(struct gateway *gw, struct deferred *d, struct gw_sock *sock,
    struct answer *a)
{
	char end[96];
	const char *argv[] = { "XREVRANGE", gw->shards[d->shard].k_sla, "+",
	    end, "COUNT", STR(SLA_RECENT_MAX) };

	snprintf(end, sizeof(end), "%s%s", d->start[0] ? "(" : "-",
	    d->start);
	return deferred_send(gw, d->shard, d, sock, sla_recent_reply, 6, argv,
	    a);
}

/* sla.recent {since?}: the latest alerts (after `since`), newest first. */
static bool
do_sla_recent(struct gateway *gw, const cJSON *req, struct gw_sock *sock,
    struct answer *a)
{
	const char *since, *id;
	struct deferred *d;
	struct gw_seq s;

	if (!opt_str(req, "since", 64, &since, a))
		return false;
	/* with shards "<k>:<id>": every shard's alerts after that id's
	 * time */
	id = since != NULL && strchr(since, ':') != NULL ?
	    strchr(since, ':') + 1 : since;
	if (since != NULL && !gw_seq_parse(id, &s)) {
		fail(a, "bad_request", "since: expected a seq (ms-n)");
		return false;
	}
	d = deferred_new(req);
	snprintf(d->start, sizeof(d->start), "%s", id ? id : "");
	if (!sla_recent_page(gw, d, sock, a)) {
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
	    r->element[n - 1]->element[0]->type == REDIS_REPLY_STRING)
		snprintf(d->start, sizeof(d->start), "(%s",
		    r->element[n - 1]->element[0]->str);
	else if (++d->shard < gw->nshards)
		snprintf(d->start, sizeof(d->start), "%lld",
		    (long long)d->from);  /* the next shard's alerts */
	else
		goto answer;
	if (stats_page(gw, d, call->sock))
		return;
	store_stats_alerts_unknown(d->stats);
answer:
	a.data = d->stats;
	d->stats = NULL;
	deferred_answer(gw, d, &a);
}

static bool
stats_page(struct gateway *gw, struct deferred *d, struct gw_sock *sock)
{
	char end[32];
	const char *argv[] = { "XRANGE", gw->shards[d->shard].k_sla, d->start,
	    end, "COUNT", STR(ALERT_PAGE) };

	snprintf(end, sizeof(end), "%lld", (long long)d->to + ALERT_SLACK_MS);
	return sock != NULL && gw_call_send(gw, d->shard, &d->call, sock,
	    stats_reply, 6, argv, NULL) == 0;
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
	struct store_txn **txns = xcalloc(gw->nshards, sizeof(*txns)), *txn;
	struct store_agent ag;
	int64_t now = rt_now_ms(), from = now - STATS_DEFAULT_MS, to = now;
	struct deferred *d;
	void *out = NULL;
	bool allowed = false;
	int rc = 0;

	/* every shard's store: stats and loads count all dialogs */
	for (unsigned k = 0; k < gw->nshards && rc == 0; k++)
		rc = gw_txn(gw, k, &txns[k]);
	if (rc != 0) {
		for (unsigned k = 0; k < gw->nshards; k++)
			store_txn_abort(txns[k]);
		free(txns);
		fail(a, "store_unavailable", "%s", inbox_strerror(rc));
		return false;
	}
	txn = txns[0];
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
	    (rc = store_agents_json_shards(txns, gw->nshards, now,
	    gw->cfg->router_presence_lease_ms,
	    gw->cfg->router_default_capacity, &out)) != 0)
		fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	else if (strcmp(type, "stats") == 0 && opt_ms(req, "from", &from, a) &&
	    opt_ms(req, "to", &to, a)) {
		if (to <= from)
			fail(a, "bad_request", "to: must come after from");
		else if ((rc = store_stats_shards(txns, gw->nshards, from, to,
		    &out)) != 0)
			fail(a, "store_unavailable", "%s", inbox_strerror(rc));
	}
	for (unsigned k = 0; k < gw->nshards; k++)
		store_txn_abort(txns[k]);
	free(txns);
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
	d->from = from;
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
		uint64_t id = 0;

		if (strcmp(t, "feed") == 0) {
			do_feed(gw, req, view, &a);
			goto answer;
		}
		if (t[0] == 't') {
			do_list(gw, t, &a);
			goto answer;
		}
		/* one dialog or contact: its shard's store */
		if (!opt_id(req, "id", &id, &a))
			goto answer;
		if ((rc = gw_txn(gw, shard_of(gw, id), &txn)) != 0) {
			fail(&a, "store_unavailable", "%s", inbox_strerror(rc));
			goto answer;
		}
		if (strcmp(t, "conversation.get") == 0)
			do_conv_get(gw, req, view, txn, &a);
		else
			do_contact_get(gw, req, view, txn, &a);
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
