/* The router's private parts, shared by router.c and apply.c. */
#ifndef INBOX_ROUTER_ROUTER_INT_H
#define INBOX_ROUTER_ROUTER_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "inbox/inbox.h"
#include "inbox/route.h"
#include "store/store.h"

struct rt_metrics;
struct router_loads;

struct router {
	const struct inbox_config *cfg;
	struct store *store;
	redisContext *redis;
	char k_in[128], k_cmd[128], k_events[128], k_dead[128];
	char maxlen[16];
	uint64_t ev_ms, ev_seq;  /* the last event id given out */
	uint64_t cmd_ms, cmd_seq;/* the last inbox:cmd entry applied */
	uint64_t in_ms, in_seq;  /* the newest inbox:in entry applied */
	int64_t connected_at;    /* ms: the Redis connection was made */
	bool outbox_published;   /* the outbox is in Redis: clear it next txn */
	const char *cmd_id;      /* the command being applied, or NULL */
	bool copy;               /* ... a copy of a global command (agents,
	                          * templates, presence) whose own shard
	                          * announces it: its agent.*, template.* and
	                          * command.failed events are not written */
	int64_t next_due;        /* the earliest timer (ms), 0: none */
	struct router_loads *loads;  /* other shards' agent loads (NULL:
	                              * one shard) */
	bool drain;              /* someone may take queued dialogs now */
	/* active/standby: only the holder of the lease in Redis applies */
	char k_lease[128], k_epoch[128];
	char lease_val[128];     /* "<consumer> <epoch>" while we hold it */
	uint64_t epoch;          /* our fencing number; 0: standby */
	int64_t lease_renewed;   /* ms */
	bool has_calendar;       /* [business_hours] is set */
	struct inbox_calendar calendar;
	struct inbox_config **reloaded;  /* configs read on SIGHUP (owned) */
	size_t nreloaded;
	/* counters for /metrics (read by its thread) */
	struct rt_metrics *metrics;
	atomic_uint_fast64_t m_applied, m_dead, m_batches, m_commit_us,
	    m_sla_alerts, m_takeovers;
	atomic_bool m_active;
};

/* Adds an event to the outbox within txn; takes ownership of data (a cJSON
 * tree). Its stream id is fixed here. */
void router__event(struct router *r, struct store_txn *txn, const char *name,
    void *data);
/* The same, about dialog conv (its connector and assignee as the gateways'
 * scope), where data names it only by id: saves reading it again. */
void router__event_about(struct router *r, struct store_txn *txn,
    const char *name, void *data, const struct store_conv *conv);
/* The same, for one agent only (mention, task, unsnooze notices). */
void router__event_to(struct router *r, struct store_txn *txn,
    const char *name, void *data, const char *to);
/* Queues an item on inbox:out:<connector> (a reply to send), after the
 * commit like events. Takes ownership of item. */
void router__out(struct router *r, struct store_txn *txn,
    const char *connector, void *item);

/* loads.c: with shards, every shard's agent loads. NULL with one shard. */
struct router_loads *router__loads_new(const struct inbox_config *cfg);
void router__loads_free(struct router_loads *ls);
/* Publishes our agents' loads that changed (after a batch). Returns 0 or
 * an INBOX_E code (logged; published with the next batch). */
int router__loads_publish(struct router *r, struct router_loads *ls);
/* Reads the other shards' loads (every 250 ms at most); sets r->drain
 * when one went down. */
void router__loads_read(struct router *r, struct router_loads *ls);
/* The connection was lost: publish everything again. */
void router__loads_forget(struct router_loads *ls);
/* An agent's open dialogs in the other shards, as last read. */
uint32_t router__load_elsewhere(const struct router_loads *ls,
    const char *login);

/* apply.c: a conversation read for update, with its strings owned (the
 * record's die with the next write). */
#define ROUTER_CONV_STRS 64
struct router_conv {
	struct store_conv c;
	char *strs[ROUTER_CONV_STRS];
	size_t nstrs;
};
int router__conv_load(struct store_txn *txn, uint64_t id,
    struct router_conv *rc);
/* Owns every string c points to now. */
void router__conv_own(struct router_conv *rc);
/* Sets *field (one of rc->c's strings) to a copy of v (NULL allowed). */
void router__conv_set(struct router_conv *rc, const char **field,
    const char *v);
void router__conv_finish(struct router_conv *rc);
/* Sets the search preview to the start of text. */
void router__preview(struct router_conv *rc, const char *text);
int router__store_fail(int rc, const char *what, char *reason, size_t rlen);
/* conversation.unsnoozed to the assignee. */
void router__unsnoozed(struct router *r, struct store_txn *txn,
    const struct store_conv *conv, const char *why);

/* rules.c: the operator's rules on a customer message, applied to rc
 * (tags, priority, nature, assignment); out tells what else to do. */
#define ROUTER_RULES_MAX 16
struct router_rules_out {
	const char *auto_reply;  /* a template to answer with, or NULL */
	bool assigned;           /* a rule assigned the dialog */
	const char *matched[ROUTER_RULES_MAX];   /* rule names */
	size_t nmatched;
};
int router__rules(struct router *r, struct store_txn *txn,
    struct router_conv *rc, const struct inbox_envelope *env, bool first,
    int64_t now, struct router_rules_out *out);
/* Adds a normalized tag (registered on first use); INBOX_ETOOBIG when the
 * dialog has STORE_TAGS_MAX. */
int router__conv_add_tag(struct store_txn *txn, struct router_conv *rc,
    const char *tag, int64_t now);
/* Whether an auto-reply may answer env on c now: never to a message marked
 * automatic, at most once per router.auto_reply_interval. */
bool router__auto_reply_due(const struct router *r, const struct store_conv *c,
    const struct inbox_envelope *env, int64_t now);
/* Sends template tname as an auto-reply on the stored rc and stores rc
 * again (auto_reply_at, message_count). */
int router__auto_reply(struct router *r, struct store_txn *txn,
    struct router_conv *rc, const char *tname, int64_t now);
/* Sends the satisfaction survey (router.survey_template) on rc once per
 * close, before rc is stored; *err is a store error or 0. */
void router__survey(struct router *r, struct store_txn *txn,
    struct router_conv *rc, int64_t now, int *err);
/* The envelope says it was sent by a machine ("auto": true). */
bool router__env_automatic(const struct inbox_envelope *env);
/* A survey answer: 1..5, or 0 when text is not one. */
int router__rating_of(const char *text);

/* assign.c: routing. route picks an agent for a new or reopened dialog
 * (rc's assignee is set, or cleared when its agent cannot take it; the
 * caller stores rc and, when *assigned, calls router__assigned after the
 * put); team not NULL: only agents of that team. drain hands queued
 * dialogs to agents with room. */
int router__route(struct router *r, struct store_txn *txn,
    struct router_conv *rc, int64_t now, const char *team, bool *assigned);
void router__assigned(struct router *r, struct store_txn *txn,
    const struct store_conv *conv);
int router__drain(struct router *r, struct store_txn *txn, int64_t now);
/* SLA timers: what happened to the dialog in rc (before it is stored). */
enum { ROUTER_SLA_CREATED, ROUTER_SLA_CUSTOMER, ROUTER_SLA_REPLIED,
	ROUTER_SLA_CLOSED, ROUTER_SLA_REOPENED, ROUTER_SLA_RECHECK };
void router__sla_event(struct router *r, struct router_conv *rc, int what,
    int64_t now);
/* Sends the SLA warnings and breaches due at now. */
int router__sla_timers(struct router *r, struct store_txn *txn, int64_t now);

/* reply.c: a message's stored JSON ({"text", "author"?, "template"?,
 * "task_id"?, "kind"?}), malloc'd. */
char *router__own_message_json(const char *text, const char *author,
    const char *tpl, uint64_t task_id, const char *kind);
/* Renders a reply template for conv (any argument but tpl may be NULL). */
int router__render(const char *tpl, const struct store_contact *contact,
    const struct store_conv *conv, const char *agent_login,
    const char *agent_name, char **out, struct inbox_err *err);
/* Stores text as an outgoing message of conv (status queued), announces it
 * and queues it on inbox:out:<connector>. author NULL and kind
 * ("auto_reply", "survey") for what the router sends by itself. The caller
 * updates the conversation. */
int router__queue_reply(struct router *r, struct store_txn *txn,
    const struct store_conv *conv, const struct store_contact *contact,
    const char *text, const char *author, const char *tname,
    const char *kind, int64_t now, uint64_t *msg_id);

/* timers.c: applies the snooze and task timers due at `now`; sets
 * r->next_due from what is left. */
int router__apply_timers(struct router *r, struct store_txn *txn,
    int64_t now);

/* Apply one stream entry inside txn. Return 0, INBOX_EINVAL when the entry is
 * bad (reason filled: it goes to the dead-letter stream), or another code for
 * a store failure (fatal). */
int router__apply_envelope(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen);
int router__apply_command(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen);

#endif
