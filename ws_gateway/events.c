/*
 * Events: a thread reads inbox:events (XREAD BLOCK) and stages push frames;
 * lws_cancel_service() wakes the service thread, which moves them into the
 * ring that every session reads with its own tail. Only the service thread
 * touches the ring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

bool
gw_seq_parse(const char *s, struct gw_seq *out)
{
	unsigned long long a, b;
	char tail;

	if (sscanf(s, "%llu-%llu%c", &a, &b, &tail) != 2)
		return false;
	out->ms = a;
	out->seq = b;
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
gw_event_frame(const char *id, const char *event, const char *data,
    const char *to, const char *cmd_id)
{
	size_t n = strlen(id) + strlen(event) + strlen(data) + 64;
	char *s = xmalloc(n);
	struct gw_frame *f;
	int len;

	/* id and event are ours (router-made), data is JSON the router
	 * printed: no escaping needed. */
	len = snprintf(s, n, "{\"type\":\"event\",\"seq\":\"%s\",\"event\":\"%s\","
	    "\"data\":%s}", id, event, data);
	f = gw_frame_new(s, (size_t)len);
	free(s);
	gw_seq_parse(id, &f->seq);
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
	if (gw_store(gw) != 0 || store_txn_begin(gw->store, false, &txn) != 0)
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
		if (gw_store(gw) == 0 &&
		    store_txn_begin(gw->store, false, &txn) == 0 &&
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

bool
gw_frame_visible_to(const struct gateway *gw, struct gw_frame *f,
    const struct gw_session_view *v)
{
	if (!gw_frame_visible(f, v->login))
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

static void
nap_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void *
reader_main(void *arg)
{
	struct gateway *gw = arg;
	redisContext *c = NULL;
	char last[64];

	snprintf(last, sizeof(last), "%s", gw->start_id);
	while (!atomic_load(&gw->reader_stop)) {
		struct gw_frame *head = NULL, *tail = NULL;
		redisReply *r;

		if (c == NULL && (c = rt_redis_connect(gw->cfg)) == NULL) {
			nap_ms(200);
			continue;
		}
		r = redisCommand(c, "XREAD COUNT 512 BLOCK 500 STREAMS %s %s",
		    gw->k_events, last);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			log_warnx("gateway: XREAD %s: %s", gw->k_events,
			    r ? r->str : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			redisFree(c);
			c = NULL;
			nap_ms(200);
			continue;
		}
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			redisReply *entries = r->element[0]->element[1];

			for (size_t i = 0; i < entries->elements; i++) {
				redisReply *e = entries->element[i];
				const char *ev = rt_entry_field(e->element[1],
				    "event", NULL);
				const char *data = rt_entry_field(e->element[1],
				    "data", NULL);
				struct gw_frame *f;

				snprintf(last, sizeof(last), "%s",
				    e->element[0]->str);
				if (ev == NULL || data == NULL)
					continue;
				f = gw_event_frame(last, ev, data,
				    rt_entry_field(e->element[1], "to", NULL),
				    rt_entry_field(e->element[1], "cmd_id",
				    NULL));
				if (tail != NULL)
					tail->next = f;
				else
					head = f;
				tail = f;
			}
		}
		freeReplyObject(r);
		if (head != NULL) {
			pthread_mutex_lock(&gw->lock);
			if (gw->staged_tail != NULL)
				gw->staged_tail->next = head;
			else
				gw->staged = head;
			gw->staged_tail = tail;
			pthread_mutex_unlock(&gw->lock);
			lws_cancel_service(gw->lws);
		}
	}
	if (c != NULL)
		redisFree(c);
	return NULL;
}

int
gw_reader_start(struct gateway *gw)
{
	redisContext *c = rt_redis_connect(gw->cfg);

	/* Start at the newest event: a socket sees events from its connection
	 * on; older ones come through `subscribe`. */
	snprintf(gw->start_id, sizeof(gw->start_id), "$");
	if (c != NULL) {
		redisReply *r = redisCommand(c, "XREVRANGE %s + - COUNT 1",
		    gw->k_events);

		snprintf(gw->start_id, sizeof(gw->start_id), "0-0");
		if (r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    r->elements == 1)
			snprintf(gw->start_id, sizeof(gw->start_id), "%s",
			    r->element[0]->element[0]->str);
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
	}
	if (strcmp(gw->start_id, "$") == 0)
		log_warnx("gateway: redis unreachable; events start when it is");
	atomic_store(&gw->reader_stop, false);
	if (pthread_create(&gw->reader, NULL, reader_main, gw) != 0) {
		log_warn("gateway: pthread_create");
		return INBOX_EIO;
	}
	gw->reader_started = true;
	return 0;
}

void
gw_reader_stop(struct gateway *gw)
{
	struct gw_frame *f, *next;

	if (gw->reader_started) {
		atomic_store(&gw->reader_stop, true);
		pthread_join(gw->reader, NULL);
		gw->reader_started = false;
	}
	for (f = gw->staged; f != NULL; f = next) {
		next = f->next;
		free(f);
	}
	gw->staged = gw->staged_tail = NULL;
}

size_t
gw_ring_take_staged(struct gateway *gw)
{
	struct gw_frame *f, *next;
	size_t n = 0;

	pthread_mutex_lock(&gw->lock);
	f = gw->staged;
	gw->staged = gw->staged_tail = NULL;
	pthread_mutex_unlock(&gw->lock);
	for (; f != NULL; f = next) {
		size_t slot = gw->ring.head % gw->ring.size;

		next = f->next;
		f->next = NULL;
		free(gw->ring.slots[slot]);
		gw->ring.slots[slot] = f;
		gw->ring.head++;
		n++;
	}
	return n;
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
