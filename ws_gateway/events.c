/*
 * Events: the entries the event links read from each shard's events
 * (redis.c) become push frames in the ring that every session reads with
 * its own tail; token.revoked entries are the gateway's own (a logout on any
 * gateway) and go to no socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

bool
gw_seq_parse(const char *s, struct gw_seq *out)
{
	uint64_t ms, seq;

	if (!rt_stream_id_parse(s, &ms, &seq))
		return false;
	out->ms = ms;
	out->seq = seq;
	return true;
}

int
gw_seq_cmp(struct gw_seq a, struct gw_seq b)
{
	if (a.ms != b.ms)
		return a.ms < b.ms ? -1 : 1;
	if (a.seq != b.seq)
		return a.seq < b.seq ? -1 : 1;
	return 0;
}

struct gw_frame *
gw_frame_new(const char *data, size_t len)
{
	struct gw_frame *f = xmalloc(sizeof(*f) + LWS_PRE + len + 1);

	f->next = NULL;
	memset(&f->seq, 0, sizeof(f->seq));
	f->to[0] = f->cmd_id[0] = f->name[0] = '\0';
	f->scope = 0;
	f->connector[0] = f->assignee[0] = '\0';
	f->len = len;
	memcpy(f->buf + LWS_PRE, data, len);
	f->buf[LWS_PRE + len] = '\0';
	return f;
}

struct gw_frame *
gw_event_frame(const struct gateway *gw, unsigned k, const char *id,
    const char *event, const char *data, const char *to, const char *cmd_id)
{
	size_t n = strlen(id) + strlen(event) + strlen(data) + 80;
	char *s = xmalloc(n), shard[16] = "";
	struct gw_frame *f;
	int len;

	if (gw->nshards > 1)
		snprintf(shard, sizeof(shard), "%u:", k);
	/* id and event are ours (router-made), data is JSON the router
	 * printed: no escaping needed. */
	len = snprintf(s, n, "{\"type\":\"event\",\"seq\":\"%s%s\","
	    "\"event\":\"%s\",\"data\":%s}", shard, id, event, data);
	f = gw_frame_new(s, (size_t)len);
	free(s);
	gw_seq_parse(id, &f->seq);
	f->shard = k;
	snprintf(f->to, sizeof(f->to), "%s", to ? to : "");
	snprintf(f->cmd_id, sizeof(f->cmd_id), "%s", cmd_id ? cmd_id : "");
	snprintf(f->name, sizeof(f->name), "%s", event);
	return f;
}

bool
gw_frame_visible(const struct gw_frame *f, const char *login)
{
	return f->to[0] == '\0' || (login != NULL && strcmp(f->to, login) == 0);
}

void
gw_view_load(struct gateway *gw, struct gw_session_view *view)
{
	struct store_txn *txn = NULL;
	struct store_agent a;

	snprintf(view->role, sizeof(view->role), "agent");
	view->teams[0] = '\0';
	if (gw_txn(gw, 0, &txn) != 0)
		return;
	if (store_agent_get(txn, view->login, &a) == 0) {
		snprintf(view->role, sizeof(view->role), "%s", a.role ? a.role :
		    "agent");
		snprintf(view->teams, sizeof(view->teams), "%s", a.teams ?
		    a.teams : "");
	}
	store_txn_abort(txn);
}

bool
gw_view_sees(const struct gateway *gw, const struct gw_session_view *v,
    const char *connector, const char *assignee)
{
	return inbox_conv_visible(gw->cfg, connector, assignee && *assignee ?
	    assignee : NULL, v->login, v->role, v->teams);
}

static bool
supervises(const struct gw_session_view *v)
{
	return strcmp(v->role, "supervisor") == 0 ||
	    strcmp(v->role, "admin") == 0;
}

static void
copy_str(char *out, size_t len, const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	snprintf(out, len, "%s", cJSON_IsString(it) ? it->valuestring : "");
}

/* Reads what the event is about (once per frame, service thread). */
static void
frame_scope(struct gateway *gw, struct gw_frame *f)
{
	cJSON *ev = cJSON_ParseWithLength((const char *)f->buf + LWS_PRE,
	    f->len);
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(data,
	    "conversation");
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(data,
	    "conversation_id");

	f->scope = 1;
	if (cJSON_IsObject(conv)) {
		f->scope = 2;
		copy_str(f->connector, sizeof(f->connector), conv, "connector");
		copy_str(f->assignee, sizeof(f->assignee), conv, "assignee");
	} else if (cJSON_IsNumber(cid) && cid->valuedouble >= 1) {
		struct store_txn *txn = NULL;
		struct store_conv c;

		f->scope = 2;
		copy_str(f->assignee, sizeof(f->assignee), data, "assignee");
		if (gw_txn(gw, f->shard, &txn) == 0 &&
		    store_conv_get(txn, (uint64_t)cid->valuedouble, &c) == 0) {
			snprintf(f->connector, sizeof(f->connector), "%s",
			    c.connector);
			snprintf(f->assignee, sizeof(f->assignee), "%s",
			    c.assignee ? c.assignee : "");
		}
		store_txn_abort(txn);
	}
	cJSON_Delete(ev);
}

void
gw_frame_scope_from(struct gw_frame *f, const redisReply *fields)
{
	const char *about = rt_entry_field(fields, "about", NULL), *tab;

	if (about == NULL)
		return;          /* an older router's: read from data if needed */
	if (strcmp(about, "*") == 0) {
		f->scope = 1;
	} else if ((tab = strchr(about, '\t')) != NULL) {
		f->scope = 2;
		snprintf(f->connector, sizeof(f->connector), "%.*s",
		    (int)(tab - about), about);
		snprintf(f->assignee, sizeof(f->assignee), "%s", tab + 1);
	}
}

bool
gw_frame_visible_to(const struct gateway *gw, struct gw_frame *f,
    const struct gw_session_view *v)
{
	if (!gw_frame_visible(f, v->login) ||
	    strcmp(f->name, "token.revoked") == 0)
		return false;
	if (f->to[0] != '\0')
		return true;             /* addressed to this agent */
	if (f->scope == 0)
		frame_scope((struct gateway *)gw, f);
	if (strncmp(f->name, "sla.", 4) == 0)
		return supervises(v) || strcmp(f->assignee, v->login) == 0;
	if (f->scope != 2)
		return true;
	return gw_view_sees(gw, v, f->connector, f->assignee);
}

struct gw_frame *
gw_command_result(const struct gw_pending *p, const struct gw_frame *e)
{
	cJSON *ev = cJSON_ParseWithLength((const char *)e->buf + LWS_PRE,
	    e->len);
	cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(ev, "data");
	cJSON *out = cJSON_CreateObject();
	cJSON *req = cJSON_Parse(p->req);
	struct gw_frame *f;
	char *s;

	cJSON_AddStringToObject(out, "type", "result");
	cJSON_AddItemToObject(out, "req", req ? req : cJSON_CreateNull());
	if (strcmp(e->name, "command.failed") == 0) {
		cJSON *err = cJSON_DetachItemFromObjectCaseSensitive(data,
		    "error");

		cJSON_AddBoolToObject(out, "ok", 0);
		if (err == NULL) {
			err = cJSON_CreateObject();
			cJSON_AddStringToObject(err, "code", "failed");
			cJSON_AddStringToObject(err, "message", "refused");
		}
		cJSON_AddItemToObject(out, "error", err);
		cJSON_Delete(data);
	} else {
		cJSON_AddBoolToObject(out, "ok", 1);
		if (data == NULL)
			data = cJSON_CreateObject();
		cJSON_AddStringToObject(data, "event", e->name);
		cJSON_AddItemToObject(out, "data", data);
	}
	s = cJSON_PrintUnformatted(out);
	cJSON_Delete(out);
	cJSON_Delete(ev);
	if (s == NULL)
		fatalx("gateway: out of memory");
	f = gw_frame_new(s, strlen(s));
	free(s);
	return f;
}

void
gw_event_entry(struct gateway *gw, unsigned k, const char *id,
    const redisReply *fields)
{
	const char *ev = rt_entry_field(fields, "event", NULL);
	const char *data = rt_entry_field(fields, "data", NULL);
	struct gw_frame *f;
	size_t slot;

	if (ev == NULL || data == NULL)
		return;
	if (strcmp(ev, "token.revoked") == 0) {
		cJSON *d = cJSON_Parse(data);
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, "nonce");
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(d, "expires");

		if (cJSON_IsString(n) && strlen(n->valuestring) == 16 &&
		    cJSON_IsNumber(x))
			gw_revoked_add(gw, n->valuestring,
			    (int64_t)x->valuedouble);
		cJSON_Delete(d);
		return;
	}
	f = gw_event_frame(gw, k, id, ev, data, rt_entry_field(fields, "to",
	    NULL), rt_entry_field(fields, "cmd_id", NULL));
	gw_frame_scope_from(f, fields);
	slot = gw->ring.head % gw->ring.size;
	free(gw->ring.slots[slot]);
	gw->ring.slots[slot] = f;
	gw->ring.head++;
}

void
gw_ring_finish(struct gw_ring *ring)
{
	if (ring->slots == NULL)
		return;
	for (size_t i = 0; i < ring->size; i++)
		free(ring->slots[i]);
	free(ring->slots);
	ring->slots = NULL;
}
