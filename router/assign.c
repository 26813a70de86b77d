/* Routing (who gets a dialog: inbox/route.h decides, this file feeds it
 * from the store), the unassigned queue, agents' presence and profiles,
 * and the SLA timers of each dialog. All inside the batch's write txn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "inbox/route.h"
#include "router/router_int.h"

#define QUEUE_PASS 1000          /* queued dialogs looked at per drain */
#define SKILLS_MAX 64

/* The agents as routing sees them, with their strings owned. */
struct agents {
	struct inbox_route_agent *a;
	char **logins;
	char ***skills;          /* per agent, SKILLS_MAX at most */
	bool *touched;           /* last_assigned changed: write it back */
	size_t n, cap;
	int64_t now;
	const struct router *r;
	struct store_txn *txn;
	const char *team;        /* only agents of this team; NULL: all */
	int err;
};

static size_t
split_list(const char *list, char **out, size_t max)
{
	size_t n = 0;

	for (const char *p = list; p != NULL && *p != '\0' && n < max;) {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len > 0)
			out[n++] = xstrndup(p, len);
		p += len;
	}
	return n;
}

static int
agent_one(void *arg, const struct store_agent *sa)
{
	struct agents *as = arg;
	struct inbox_route_agent *a;
	uint32_t load = 0;
	int rc;

	if (as->team != NULL && !inbox_list_has(sa->teams, as->team))
		return 0;
	if (as->n == as->cap) {
		as->cap = as->cap ? as->cap * 2 : 16;
		as->a = xrealloc(as->a, as->cap * sizeof(*as->a));
		as->logins = xrealloc(as->logins, as->cap * sizeof(char *));
		as->skills = xrealloc(as->skills, as->cap * sizeof(char **));
		as->touched = xrealloc(as->touched, as->cap * sizeof(bool));
	}
	if ((rc = store_agent_load(as->txn, sa->login, &load)) != 0)
		return rc;
	a = &as->a[as->n];
	as->logins[as->n] = xstrdup(sa->login);
	as->skills[as->n] = xcalloc(SKILLS_MAX, sizeof(char *));
	as->touched[as->n] = false;
	a->login = as->logins[as->n];
	a->available = store_agent_presence(sa, as->now,
	    as->r->cfg->router_presence_lease_ms) == STORE_PRESENCE_ONLINE;
	a->capacity = sa->capacity >= 0 ? (uint32_t)sa->capacity :
	    (uint32_t)as->r->cfg->router_default_capacity;
	/* with shards, the dialogs the other shards gave it count too */
	a->load = load + router__load_elsewhere(as->r->loads, sa->login);
	a->last_assigned = sa->last_assigned;
	a->nskills = split_list(sa->skills, as->skills[as->n], SKILLS_MAX);
	a->skills = (const char *const *)as->skills[as->n];
	as->n++;
	return 0;
}

static int
agents_load(struct agents *as, const struct router *r, struct store_txn *txn,
    int64_t now, const char *team)
{
	memset(as, 0, sizeof(*as));
	as->r = r;
	as->txn = txn;
	as->now = now;
	as->team = team;
	return store_agents(txn, agent_one, as);
}

static void
agents_finish(struct agents *as)
{
	for (size_t i = 0; i < as->n; i++) {
		for (size_t k = 0; k < as->a[i].nskills; k++)
			free(as->skills[i][k]);
		free(as->skills[i]);
		free(as->logins[i]);
	}
	free(as->a);
	free(as->logins);
	free(as->skills);
	free(as->touched);
	memset(as, 0, sizeof(*as));
}

/* Writes back last_assigned of the agents that got dialogs. */
static int
agents_save(struct agents *as, struct store_txn *txn)
{
	for (size_t i = 0; i < as->n; i++) {
		struct store_agent sa;
		int rc;

		if (!as->touched[i])
			continue;
		if ((rc = store_agent_get(txn, as->logins[i], &sa)) != 0)
			return rc;
		sa.last_assigned = as->a[i].last_assigned;
		if ((rc = store_agent_put(txn, &sa)) != 0)
			return rc;
	}
	return 0;
}

static bool
any_room(const struct agents *as)
{
	for (size_t i = 0; i < as->n; i++)
		if (as->a[i].available && as->a[i].load < as->a[i].capacity)
			return true;
	return false;
}

/* Picks for conv and sets its assignee (NULL when nobody can take it).
 * Returns the agent's index or -1. */
static int
pick(struct agents *as, struct router_conv *rc, const char *previous)
{
	int i = inbox_route_pick(as->a, as->n,
	    (const char *const *)rc->c.tags, rc->c.ntags, previous);

	if (i < 0)
		return -1;
	router__conv_set(rc, &rc->c.assignee, as->a[i].login);
	as->a[i].load++;
	as->a[i].last_assigned = as->now;
	as->touched[i] = true;
	return i;
}

static void
assigned_event(struct router *r, struct store_txn *txn,
    const struct store_conv *conv)
{
	cJSON *ev = cJSON_CreateObject();

	cJSON_AddNumberToObject(ev, "conversation_id", (double)conv->id);
	cJSON_AddStringToObject(ev, "assignee", conv->assignee);
	cJSON_AddStringToObject(ev, "by", "routing");
	router__event_to(r, txn, "conversation.assigned", ev, conv->assignee);
}

int
router__route(struct router *r, struct store_txn *txn,
    struct router_conv *rc, int64_t now, const char *team, bool *assigned)
{
	struct agents as;
	char *previous = rc->c.assignee ? xstrdup(rc->c.assignee) : NULL;
	int rv;

	*assigned = false;
	if (!r->cfg->router_auto_assign && team == NULL) {
		free(previous);
		return 0;
	}
	if ((rv = agents_load(&as, r, txn, now, team)) != 0)
		goto out;
	if (pick(&as, rc, previous) >= 0) {
		*assigned = previous == NULL ||
		    strcmp(previous, rc->c.assignee) != 0;
	} else if (previous != NULL) {
		/* its agent is away or full: it waits in the queue */
		router__conv_set(rc, &rc->c.assignee, NULL);
	}
	rv = agents_save(&as, txn);
out:
	agents_finish(&as);
	free(previous);
	return rv;
}

struct idbuf {
	uint64_t v[QUEUE_PASS];
	size_t n;
};

static int
collect_id(void *arg, uint64_t id)
{
	struct idbuf *b = arg;

	b->v[b->n++] = id;
	return 0;
}

int
router__drain(struct router *r, struct store_txn *txn, int64_t now)
{
	struct idbuf *ids;
	struct agents as;
	size_t given = 0;
	int rv;

	r->drain = false;
	if (!r->cfg->router_auto_assign)
		return 0;
	if ((rv = agents_load(&as, r, txn, now, NULL)) != 0)
		goto out_agents;
	if (!any_room(&as))
		goto out_agents;
	ids = xmalloc(sizeof(*ids));
	ids->n = 0;
	if ((rv = store_queue(txn, QUEUE_PASS, collect_id, ids)) != 0)
		goto out;
	for (size_t i = 0; i < ids->n && any_room(&as); i++) {
		struct router_conv rc;

		if ((rv = router__conv_load(txn, ids->v[i], &rc)) != 0)
			goto out;
		if (pick(&as, &rc, NULL) >= 0) {
			cJSON *ev;

			rc.c.updated = now;
			if ((rv = store_conv_put(txn, &rc.c)) != 0) {
				router__conv_finish(&rc);
				goto out;
			}
			ev = cJSON_CreateObject();
			cJSON_AddItemToObject(ev, "conversation",
			    store_conv_json(txn, &rc.c));
			cJSON_AddStringToObject(ev, "change", "assigned");
			cJSON_AddStringToObject(ev, "by", "routing");
			router__event(r, txn, "conversation.updated", ev);
			assigned_event(r, txn, &rc.c);
			given++;
		}
		router__conv_finish(&rc);
	}
	rv = agents_save(&as, txn);
	if (given > 0)
		log_debug("router: %zu queued dialogs assigned", given);
out:
	free(ids);
out_agents:
	agents_finish(&as);
	return rv;
}

void
router__assigned(struct router *r, struct store_txn *txn,
    const struct store_conv *conv)
{
	assigned_event(r, txn, conv);
}

/* ---- SLA ------------------------------------------------------------- */

static bool
tag_listed(const char *list, const struct store_conv *c)
{
	char *items[STORE_TAGS_MAX];
	size_t n = split_list(list, items, STORE_TAGS_MAX);
	bool hit = false;

	for (size_t i = 0; i < n; i++) {
		char norm[INBOX_TAG_MAX + 1];

		if (!hit && inbox_tag_normalize(items[i], norm, sizeof(norm),
		    NULL) == 0) {
			for (size_t t = 0; t < c->ntags && !hit; t++)
				hit = strcmp(c->tags[t], norm) == 0;
		}
		free(items[i]);
	}
	return hit;
}

static const struct inbox_sla_policy *
policy_for(const struct router *r, const struct store_conv *c)
{
	for (size_t i = 0; i < r->cfg->nsla; i++) {
		const struct inbox_sla_policy *p = &r->cfg->sla[i];

		if (p->priorities != NULL && !inbox_list_has(p->priorities,
		    inbox_priority_name(c->priority)))
			continue;
		if (p->tags != NULL && !tag_listed(p->tags, c))
			continue;
		return p;
	}
	return NULL;
}

static int64_t
policy_ms(const struct inbox_sla_policy *p, int kind)
{
	if (p == NULL)
		return 0;
	switch (kind) {
	case INBOX_SLA_FIRST_RESPONSE: return p->first_response_ms;
	case INBOX_SLA_NEXT_RESPONSE: return p->next_response_ms;
	default: return p->resolution_ms;
	}
}

static const struct inbox_calendar *
calendar(const struct router *r, const struct inbox_sla_policy *p)
{
	return p != NULL && p->business && r->has_calendar ? &r->calendar :
	    NULL;
}

static void
start(struct router *r, struct router_conv *rc,
    const struct inbox_sla_policy *p, int kind, int64_t at)
{
	inbox_sla_start(&rc->c.sla, kind, at, policy_ms(p, kind),
	    r->cfg->router_sla_warning_pct, calendar(r, p));
}

void
router__sla_event(struct router *r, struct router_conv *rc, int what,
    int64_t now)
{
	const struct inbox_sla_policy *p;
	struct inbox_sla *s = &rc->c.sla;

	switch (what) {
	case ROUTER_SLA_CREATED:
		p = policy_for(r, &rc->c);
		router__conv_set(rc, &rc->c.sla_policy, p ? p->name : NULL);
		start(r, rc, p, INBOX_SLA_FIRST_RESPONSE, now);
		start(r, rc, p, INBOX_SLA_RESOLUTION, now);
		break;
	case ROUTER_SLA_CUSTOMER:
		p = policy_for(r, &rc->c);
		router__conv_set(rc, &rc->c.sla_policy, p ? p->name : NULL);
		if (rc->c.first_response_at == 0) {
			if (s->t[INBOX_SLA_FIRST_RESPONSE].due_at == 0)
				start(r, rc, p, INBOX_SLA_FIRST_RESPONSE, now);
		} else if (s->t[INBOX_SLA_NEXT_RESPONSE].due_at == 0) {
			start(r, rc, p, INBOX_SLA_NEXT_RESPONSE, now);
		}
		if (s->t[INBOX_SLA_RESOLUTION].due_at == 0)
			start(r, rc, p, INBOX_SLA_RESOLUTION, now);
		break;
	case ROUTER_SLA_REPLIED:
		inbox_sla_stop(s, INBOX_SLA_FIRST_RESPONSE);
		inbox_sla_stop(s, INBOX_SLA_NEXT_RESPONSE);
		break;
	case ROUTER_SLA_CLOSED:
		for (int k = 0; k < INBOX_SLA__COUNT; k++)
			inbox_sla_stop(s, k);
		break;
	case ROUTER_SLA_REOPENED:
		p = policy_for(r, &rc->c);
		router__conv_set(rc, &rc->c.sla_policy, p ? p->name : NULL);
		start(r, rc, p, INBOX_SLA_RESOLUTION, now);
		break;
	case ROUTER_SLA_RECHECK:
		/* tags or priority changed: another policy may apply; running
		 * timers keep their start and take the new times */
		p = policy_for(r, &rc->c);
		if ((p == NULL && rc->c.sla_policy == NULL) || (p != NULL &&
		    rc->c.sla_policy != NULL &&
		    strcmp(p->name, rc->c.sla_policy) == 0))
			break;
		router__conv_set(rc, &rc->c.sla_policy, p ? p->name : NULL);
		if (rc->c.state == STORE_STATE_CLOSED)
			break;
		for (int k = 0; k < INBOX_SLA__COUNT; k++) {
			int64_t from = s->t[k].due_at ? s->t[k].start : 0;

			if (from == 0 && k == INBOX_SLA_FIRST_RESPONSE &&
			    rc->c.first_response_at == 0)
				from = rc->c.created;
			if (from == 0 && k == INBOX_SLA_RESOLUTION)
				from = rc->c.created;
			if (from != 0)
				start(r, rc, p, k, from);
		}
		break;
	}
}

static int
collect_due(void *arg, uint64_t id)
{
	return collect_id(arg, id);
}

int
router__sla_timers(struct router *r, struct store_txn *txn, int64_t now)
{
	struct idbuf *ids = xmalloc(sizeof(*ids));
	int rv;

	ids->n = 0;
	if ((rv = store_due_sla(txn, now, QUEUE_PASS, collect_due, ids)) != 0)
		goto out;
	for (size_t i = 0; i < ids->n; i++) {
		struct inbox_sla_alert al[INBOX_SLA__COUNT * 2];
		struct router_conv rc;
		size_t n;

		if ((rv = router__conv_load(txn, ids->v[i], &rc)) != 0)
			goto out;
		n = inbox_sla_fire(&rc.c.sla, now, al);
		if ((rv = store_conv_put(txn, &rc.c)) != 0) {
			router__conv_finish(&rc);
			goto out;
		}
		for (size_t k = 0; k < n; k++) {
			const char *name = al[k].breached ? "sla.breached" :
			    "sla.warning";
			cJSON *ev = cJSON_CreateObject();
			char sname[32];

			cJSON_AddNumberToObject(ev, "conversation_id",
			    (double)rc.c.id);
			if (rc.c.assignee != NULL)
				cJSON_AddStringToObject(ev, "assignee",
				    rc.c.assignee);
			else
				cJSON_AddNullToObject(ev, "assignee");
			cJSON_AddStringToObject(ev, "policy", rc.c.sla_policy ?
			    rc.c.sla_policy : "");
			cJSON_AddStringToObject(ev, "timer",
			    inbox_sla_kind_name(al[k].kind));
			cJSON_AddNumberToObject(ev, "due", (double)al[k].due_at);
			cJSON_AddNumberToObject(ev, "overdue_ms",
			    (double)al[k].overdue_ms);
			cJSON_AddNumberToObject(ev, "at", (double)now);
			cJSON_AddStringToObject(ev, "priority",
			    inbox_priority_name(rc.c.priority));
			if (rc.c.subject != NULL)
				cJSON_AddStringToObject(ev, "subject",
				    rc.c.subject);
			snprintf(sname, sizeof(sname), "@sla:%s", name);
			router__event(r, txn, sname, cJSON_Duplicate(ev, 1));
			router__event(r, txn, name, ev);
			atomic_fetch_add(&r->m_sla_alerts, 1);
			log_info("router: %s: conversation %llu %s (%s)", name,
			    (unsigned long long)rc.c.id,
			    inbox_sla_kind_name(al[k].kind),
			    rc.c.assignee ? rc.c.assignee : "unassigned");
		}
		router__conv_finish(&rc);
	}
out:
	free(ids);
	return rv;
}
