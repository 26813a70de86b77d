/* Fuzz target: the gateway's websocket frame handler (gw_request in
 * ws_gateway/query.c), on a real LMDB store seeded once with agents and
 * dialogs. Redis is a closed port, so commands and subscriptions take their
 * "unavailable" paths; queries, validation and answers run in full. Byte 0
 * picks the session (a supervisor, or an agent of team "support"); the
 * rest is the frame. Every answer must be one JSON object of type result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "inbox/rt/rt.h"
#include "store/store.h"
#include "ws_gateway/gateway_int.h"

struct world {
	struct inbox_config cfg;
	struct gateway gw;
	struct gw_shard shard;
	struct gw_session_view sup, agent;
	struct gw_pos sup_pos, agent_pos;
};

static void
seed(const char *dir)
{
	static const char *const conns[] = { "api1", "tg1", "api1" };
	static const char *const who[] = { NULL, "ann", "sue" };
	struct store *st;
	struct store_txn *txn;
	struct store_agent a;

	if (store_open(&st, dir, 64, 0) != 0 || store_txn_begin(st, true,
	    &txn) != 0)
		abort();
	memset(&a, 0, sizeof(a));
	a.login = "sue", a.name = "Sue", a.role = "supervisor", a.pwhash = "x";
	a.capacity = -1;
	if (store_agent_put(txn, &a) != 0)
		abort();
	a.login = "ann", a.name = "Ann", a.role = "agent", a.teams = "support";
	if (store_agent_put(txn, &a) != 0)
		abort();
	for (int i = 0; i < 3; i++) {
		struct store_conv c;
		char thread[16];

		memset(&c, 0, sizeof(c));
		snprintf(thread, sizeof(thread), "t-%d", i);
		c.contact_id = (uint64_t)i + 1;
		c.connector = conns[i];
		c.channel = "api";
		c.thread = thread;
		c.assignee = who[i];
		c.state = i == 2 ? STORE_STATE_CLOSED : STORE_STATE_OPEN;
		c.created = c.updated = 1790000000000LL + i;
		c.preview = "hello";
		c.ntags = 1;
		c.tags[0] = "vip";
		if (store_conv_put(txn, &c) != 0)
			abort();
	}
	if (store_txn_commit(txn) != 0)
		abort();
	store_close(st);
}

static char dir[] = "/tmp/inbox-fuzz-ws-XXXXXX";

/* The store's files go when the run ends. */
static void
cleanup(void)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

static struct world *
world(void)
{
	static struct world w;
	static bool ready;

	if (ready)
		return &w;
	ready = true;
	log_init("fuzz", INBOX_LOG_ERROR);
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	seed(dir);
	inbox_config_init(&w.cfg);
	free(w.cfg.store_path);
	w.cfg.store_path = xstrdup(dir);
	w.cfg.store_map_size_mb = 64;
	w.cfg.redis_port = 1;            /* nothing listens: unavailable */
	w.cfg.redis_timeout_ms = 50;
	w.gw.cfg = &w.cfg;
	w.gw.nshards = 1;
	w.gw.shards = &w.shard;
	w.shard.gw = &w.gw;
	rt_key(w.shard.k_cmd, sizeof(w.shard.k_cmd), &w.cfg, "cmd");
	rt_key(w.shard.k_events, sizeof(w.shard.k_events), &w.cfg, "events");
	rt_key(w.shard.k_sla, sizeof(w.shard.k_sla), &w.cfg, "sla");
	snprintf(w.gw.cmd_prefix, sizeof(w.gw.cmd_prefix), "fuzz");
	w.sup.login = "sue";
	w.sup.pos = &w.sup_pos;
	w.agent.login = "ann";
	w.agent.pos = &w.agent_pos;
	gw_view_load(&w.gw, &w.sup);
	gw_view_load(&w.gw, &w.agent);
	if (strcmp(w.sup.role, "supervisor") != 0 ||
	    strcmp(w.agent.teams, "support") != 0)
		abort();
	return &w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct world *w = world();
	struct gw_session_view view;
	struct gw_frame *replay = NULL;
	struct gw_pending pend;
	const cJSON *type;
	cJSON *ans;
	char *s;

	if (size < 1)
		return 0;
	view = data[0] & 1 ? w->agent : w->sup;
	memset(&pend, 0, sizeof(pend));
	s = gw_request(&w->gw, (const char *)data + 1, size - 1, &view, NULL,
	    &replay, &pend);
	while (replay != NULL) {
		struct gw_frame *next = replay->next;

		free(replay);
		replay = next;
	}
	if (s == NULL) {
		/* a command appended or a Redis read deferred: impossible
		 * without Redis */
		abort();
	}
	ans = cJSON_Parse(s);
	type = cJSON_GetObjectItem(ans, "type");
	if (ans == NULL || !cJSON_IsObject(ans) || !cJSON_IsString(type) ||
	    strcmp(type->valuestring, "result") != 0 ||
	    !cJSON_IsBool(cJSON_GetObjectItem(ans, "ok")))
		abort();
	cJSON_Delete(ans);
	free(s);
	return 0;
}
