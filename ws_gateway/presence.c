/* Agents' presence from their sockets: online while at least one socket is
 * open. The gateway reports changes to the router as agent.presence
 * commands, and repeats the online agents every third of
 * router.presence_lease_ms, so an agent of a gateway that died turns
 * offline by itself when the lease runs out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

struct gw_agent_socks {
	char login[65];
	unsigned n;
	int64_t last_active;     /* the last frame from any of its sockets */
	bool away;               /* reported away */
};

static void
report(struct gateway *gw, cJSON *agents)
{
	cJSON *cmd = cJSON_CreateObject();
	char cmd_id[96];
	char *json;

	snprintf(cmd_id, sizeof(cmd_id), "%s.p%llu", gw->cmd_prefix,
	    (unsigned long long)++gw->cmd_seq);
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", "agent.presence");
	cJSON_AddStringToObject(cmd, "cmd_id", cmd_id);
	cJSON_AddItemToObject(cmd, "agents", agents);
	json = cJSON_PrintUnformatted(cmd);
	cJSON_Delete(cmd);
	if (json == NULL)
		fatalx("gateway: out of memory");
	if (gw_cmd_append(gw, json) != 0)
		log_warnx("gateway: presence not reported (redis); repeated "
		    "with the next refresh");
	free(json);
}

static void
report_one(struct gateway *gw, const char *login, const char *presence)
{
	cJSON *agents = cJSON_CreateObject();

	cJSON_AddStringToObject(agents, login, presence);
	report(gw, agents);
}

void
gw_presence_open(struct gateway *gw, const char *login)
{
	for (size_t i = 0; i < gw->nsocks; i++) {
		if (strcmp(gw->socks[i].login, login) == 0) {
			gw->socks[i].n++;
			return;
		}
	}
	gw->socks = xrealloc(gw->socks, (gw->nsocks + 1) *
	    sizeof(*gw->socks));
	memset(&gw->socks[gw->nsocks], 0, sizeof(gw->socks[0]));
	snprintf(gw->socks[gw->nsocks].login, sizeof(gw->socks[0].login), "%s",
	    login);
	gw->socks[gw->nsocks].last_active = rt_now_ms();
	gw->socks[gw->nsocks++].n = 1;
	report_one(gw, login, "online");
}

void
gw_presence_close(struct gateway *gw, const char *login)
{
	for (size_t i = 0; i < gw->nsocks; i++) {
		if (strcmp(gw->socks[i].login, login) != 0)
			continue;
		if (--gw->socks[i].n == 0) {
			gw->socks[i] = gw->socks[--gw->nsocks];
			report_one(gw, login, "offline");
		}
		return;
	}
}

unsigned
gw_presence_count(const struct gateway *gw, const char *login)
{
	for (size_t i = 0; i < gw->nsocks; i++)
		if (strcmp(gw->socks[i].login, login) == 0)
			return gw->socks[i].n;
	return 0;
}

/* A third of the lease, or sooner when away_after is shorter. */
static lws_usec_t
refresh_us(const struct gateway *gw)
{
	int64_t ms = gw->cfg->router_presence_lease_ms / 3;

	if (gw->cfg->gateway_away_ms > 0 && gw->cfg->gateway_away_ms / 2 < ms)
		ms = gw->cfg->gateway_away_ms / 2;
	if (ms < 100)
		ms = 100;
	return (lws_usec_t)ms * 1000;
}

void
gw_presence_activity(struct gateway *gw, const char *login)
{
	for (size_t i = 0; i < gw->nsocks; i++) {
		if (strcmp(gw->socks[i].login, login) != 0)
			continue;
		gw->socks[i].last_active = rt_now_ms();
		if (gw->socks[i].away) {
			gw->socks[i].away = false;
			report_one(gw, login, "online");
		}
		return;
	}
}

static void
refresh(lws_sorted_usec_list_t *sul)
{
	struct gateway *gw = lws_container_of(sul, struct gateway,
	    presence_sul);
	int64_t now = rt_now_ms();

	if (gw->nsocks > 0) {
		cJSON *agents = cJSON_CreateObject();

		/* online while one socket is open, away when none of them
		 * said anything for gateway.away_after */
		for (size_t i = 0; i < gw->nsocks; i++) {
			struct gw_agent_socks *a = &gw->socks[i];

			a->away = gw->cfg->gateway_away_ms > 0 &&
			    now - a->last_active > gw->cfg->gateway_away_ms;
			cJSON_AddStringToObject(agents, a->login, a->away ?
			    "away" : "online");
		}
		report(gw, agents);
	}
	lws_sul_schedule(gw->lws, 0, &gw->presence_sul, refresh,
	    refresh_us(gw));
}

void
gw_presence_start(struct gateway *gw)
{
	lws_sul_schedule(gw->lws, 0, &gw->presence_sul, refresh,
	    refresh_us(gw));
}

void
gw_presence_finish(struct gateway *gw)
{
	/* The sockets close with the process: say so while we can. */
	if (gw->nsocks > 0) {
		cJSON *agents = cJSON_CreateObject();

		for (size_t i = 0; i < gw->nsocks; i++)
			cJSON_AddStringToObject(agents, gw->socks[i].login,
			    "offline");
		report(gw, agents);
	}
	free(gw->socks);
	gw->socks = NULL;
	gw->nsocks = 0;
}
