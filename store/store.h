/*
 * libstore: the LMDB layer, the only code that includes <lmdb.h>.
 *
 * Records are versioned binary (see record.c). Strings in records returned by
 * the *_get functions and passed to callbacks are borrowed: valid until the
 * transaction ends or, in a write transaction, until its next update (as for
 * mdb_get): copy what must outlive a put. Every function returns 0 or a negative INBOX_E* code:
 * INBOX_ENOTFOUND for a missing record, INBOX_EIO for an LMDB failure (logged),
 * INBOX_EINVAL for a corrupt record.
 *
 * Tables: conv (id -> record), conv_thread (connector\0thread -> id),
 * conv_idx (facet, value, state, sort key, id -> empty: the feeds, see
 * conv.c), due (kind, time, id -> empty: snooze and task timers), msg (id ->
 * record, appended in id order), msg_ext (connector\0external_id -> id),
 * conv_msg (conv id, msg id -> empty), contact, contact_ext, contact_email,
 * contact_phone, agent (login -> record), agent_load (login -> open dialogs
 * assigned), queue (priority, created, id -> empty: open unassigned
 * dialogs), task, conv_task (conv id, task id),
 * template (name -> record), tag (tag -> created), outbox (seq -> event not
 * yet appended to Redis), meta (name -> value; "schema" is the schema).
 */
#ifndef INBOX_STORE_STORE_H
#define INBOX_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbox/inbox.h"
#include "inbox/route.h"

#define STORE_RDONLY 0x1

struct store;
struct store_txn;

/* The schema this code writes. store_open (read-write) migrates an older
 * store in place and refuses a newer one (INBOX_ESTATE, logged with both
 * versions); a read-only open of an older store is refused too, until the
 * router has migrated it. */
#define STORE_SCHEMA 3

enum store_state { STORE_STATE_OPEN, STORE_STATE_SNOOZED, STORE_STATE_CLOSED,
	STORE_STATE__COUNT };
enum store_dir { STORE_DIR_IN, STORE_DIR_OUT, STORE_DIR_NOTE };
/* Delivery status of an outgoing message. */
enum store_mstatus { STORE_MS_NONE, STORE_MS_QUEUED, STORE_MS_SENT,
	STORE_MS_DELIVERED, STORE_MS_READ, STORE_MS_FAILED, STORE_MS__COUNT };

#define STORE_TAGS_MAX 32        /* tags on one conversation */
#define STORE_PREVIEW_MAX 200    /* bytes of the last message kept for search */

struct store_conv {
	uint64_t id;
	uint64_t contact_id;
	const char *connector;
	const char *channel;
	const char *thread;
	const char *subject;     /* NULL when none */
	const char *assignee;    /* NULL when unassigned */
	int priority;            /* enum inbox_priority */
	int nature;              /* enum inbox_nature */
	int state;               /* enum store_state */
	int64_t created, updated, last_customer_msg_at, snooze_until;
	uint32_t message_count;
	/* schema 2 */
	const char *outcome;     /* what was answered; NULL when none */
	const char *preview;     /* start of the last message, for search */
	int64_t closed_at, first_response_at, last_agent_msg_at;
	uint32_t reopen_count;
	size_t ntags;
	const char *tags[STORE_TAGS_MAX];   /* normalized, sorted */
	/* schema 3 */
	const char *sla_policy;  /* the SLA policy's name; NULL: none */
	struct inbox_sla sla;    /* its timers (route.h) */
	int64_t survey_sent_at;  /* the satisfaction survey went out; 0: no */
	int rating;              /* the customer's 1..5; 0: none */
	int64_t rated_at;
	int64_t auto_reply_at;   /* the last auto-reply sent; 0: never */
};

struct store_msg {
	uint64_t id, conv_id, contact_id;
	int dir;                 /* enum store_dir */
	int64_t ts, created;
	const char *connector;
	const char *channel;
	const char *external_id; /* NULL for out and note */
	const char *envelope;    /* in: the envelope JSON as received; out and
	                          * note: {"text", "author", ...} */
	size_t envelope_len;
	/* schema 2 */
	int status;              /* enum store_mstatus */
	int64_t status_at;
	const char *author;      /* login, for out and note */
	const char *status_error;/* failed: why */
};

struct store_contact {
	uint64_t id;
	const char *connector, *channel, *external_id;
	const char *name, *email, *phone, *username;   /* NULL when unknown */
	int64_t created;
	/* schema 2 */
	const char *fields;      /* custom fields, a JSON object; NULL: none */
	uint64_t merged_into;    /* not 0: this contact was merged into that */
	int64_t updated;
};

enum store_presence { STORE_PRESENCE_OFFLINE, STORE_PRESENCE_ONLINE,
	STORE_PRESENCE_AWAY, STORE_PRESENCE__COUNT };

struct store_agent {
	const char *login, *name, *role, *pwhash;
	int64_t created, updated;
	/* schema 3 */
	const char *teams;       /* "support, billing"; NULL: none */
	const char *skills;      /* normalized tags "billing, vip"; NULL: none */
	int32_t capacity;        /* most open dialogs; -1: the router's default */
	int presence;            /* enum store_presence, as last reported */
	int64_t presence_at;     /* when it was reported or refreshed */
	int64_t last_assigned;   /* when routing last gave it a dialog */
};

struct store_task {
	uint64_t id, conv_id, msg_id;      /* msg_id 0: from the dialog */
	const char *title, *assignee, *created_by;
	int64_t due;                       /* 0: no due time */
	bool done, due_fired;
	int64_t created, updated;
};

struct store_template {
	const char *name, *text, *updated_by;
	int64_t updated;
};

/* Opens (the router: creates or migrates) the environment in directory
 * `path`. flags: STORE_RDONLY for every process but the router. Returns 0,
 * INBOX_ENOTFOUND when a read-only open finds no database yet, or
 * INBOX_ESTATE for a schema this code cannot use. */
int store_open(struct store **out, const char *path, int map_size_mb, int flags);
void store_close(struct store *st);
/* Makes st shard k of n (redis.shards): new conversations, messages,
 * contacts and tasks get ids k + 1 + i * n. The router records it in the
 * store at its first start and refuses another k or n afterwards, or a
 * store that already holds dialogs without shards (INBOX_ESTATE, logged);
 * a read-only store checks it. Call before the first write. */
int store_set_shard(struct store *st, unsigned k, unsigned n);
/* A consistent copy of the whole store into directory `dir` (created, must
 * be empty), compacted; safe while the router writes. */
int store_backup(struct store *st, const char *dir);
/* The schema number stored in an environment (for tools and tests). */
int store_schema(struct store *st, uint64_t *out);

/* One transaction at a time per thread. commit frees txn (also on failure);
 * abort frees txn; abort(NULL) does nothing. A write commit is durable
 * (synced) when it returns 0. */
int store_txn_begin(struct store *st, bool write, struct store_txn **out);
int store_txn_commit(struct store_txn *txn);
void store_txn_abort(struct store_txn *txn);

/* Conversations. put with id 0 assigns the next id (written back into
 * conv->id) and creates the thread index; every put keeps the feed indexes
 * (by state alone, assignee, tag, channel, priority, contact) and the
 * snooze timer index in step with the record. */
int store_conv_get(struct store_txn *txn, uint64_t id, struct store_conv *out);
int store_conv_find_thread(struct store_txn *txn, const char *connector,
    const char *thread, uint64_t *id);
int store_conv_put(struct store_txn *txn, struct store_conv *conv);

/* A feed query: the conversations in `state` that match every filter given,
 * newest `updated` first (snoozed: soonest snooze_until first). The store
 * walks the index of the most selective filter (contact, tag, assignee,
 * channel, priority, else state alone) and checks the others on each
 * conversation it reads; `text` (a case-insensitive substring of the subject
 * or the last message) is checked the same way. At most `scan_max`
 * conversations are read per call (0: 10000): a page cut short by it has
 * *more set and a cursor to go on from. */
struct store_feed_q {
	int state;
	const char *assignee;    /* a login; "" for unassigned; NULL: any */
	const char *tag;         /* normalized */
	const char *channel;
	int priority;            /* -1: any */
	uint64_t contact_id;     /* 0: any */
	const char *text;
	int64_t after_key;       /* cursor: the sort key and id of the last */
	uint64_t after_id;       /* conversation given (id 0: from the start) */
	size_t limit;
	size_t scan_max;
	/* NULL, or who may see what: a conversation it refuses is skipped
	 * like one that does not match (agents' team visibility) */
	bool (*visible)(void *arg, const struct store_conv *conv);
	void *visible_arg;
};
int store_feed(struct store_txn *txn, const struct store_feed_q *q,
    int (*cb)(void *arg, const struct store_conv *conv), void *arg,
    bool *more, int64_t *next_key, uint64_t *next_id);
/* The sort key of a conversation in its state's feed (the cursor part). */
int64_t store_feed_key(const struct store_conv *conv);

/* Timers: calls cb for each due snooze (conversation id) with time <= now,
 * soonest first, at most limit. */
int store_due_snoozes(struct store_txn *txn, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t conv_id), void *arg);
/* The earliest pending timer (snooze, task due, SLA), or 0 when none. */
int store_next_due(struct store_txn *txn, int64_t *when);

/* Messages. add assigns the next id (written into msg->id), indexes it by
 * (connector, external_id) when it has one, and by conversation. update
 * rewrites an existing message (status changes). link_ext adds another
 * (connector, external id) for a message, e.g. the channel's id of a reply
 * it sent. */
int store_msg_find_ext(struct store_txn *txn, const char *connector,
    const char *external_id, uint64_t *id);
int store_msg_add(struct store_txn *txn, struct store_msg *msg);
int store_msg_update(struct store_txn *txn, const struct store_msg *msg);
int store_msg_link_ext(struct store_txn *txn, const char *connector,
    const char *external_id, uint64_t id);
int store_msg_get(struct store_txn *txn, uint64_t id, struct store_msg *out);
/* Calls cb for each message of a conversation, oldest first. */
int store_conv_messages(struct store_txn *txn, uint64_t conv_id,
    int (*cb)(void *arg, const struct store_msg *msg), void *arg);

/* Contacts. put with id 0 assigns the next id and indexes it by
 * (connector, external_id) when external_id is not NULL; every put keeps
 * the e-mail (lowercased) and phone (digits) indexes. find_ext follows
 * merges to the surviving contact. */
int store_contact_get(struct store_txn *txn, uint64_t id,
    struct store_contact *out);
int store_contact_find_ext(struct store_txn *txn, const char *connector,
    const char *external_id, uint64_t *id);
int store_contact_find_email(struct store_txn *txn, const char *email,
    uint64_t *id);
int store_contact_find_phone(struct store_txn *txn, const char *phone,
    uint64_t *id);
int store_contact_link_ext(struct store_txn *txn, const char *connector,
    const char *external_id, uint64_t id);
int store_contact_put(struct store_txn *txn, struct store_contact *contact);
/* Conversations of a contact (the history across channels), oldest first. */
int store_contact_convs(struct store_txn *txn, uint64_t contact_id,
    int (*cb)(void *arg, uint64_t conv_id), void *arg);
/* Every contact not merged away, by id. */
int store_contacts(struct store_txn *txn,
    int (*cb)(void *arg, const struct store_contact *c), void *arg);
/* Normalized index forms: lowercased e-mail; '+' and digits of a phone
 * (NULL when fewer than 5 digits). Return malloc'd strings. */
char *store_email_key(const char *email);
char *store_phone_key(const char *phone);

/* Agents, by login. */
int store_agent_get(struct store_txn *txn, const char *login,
    struct store_agent *out);
int store_agent_put(struct store_txn *txn, const struct store_agent *agent);
/* Every agent, by login. */
int store_agents(struct store_txn *txn,
    int (*cb)(void *arg, const struct store_agent *a), void *arg);
/* Open dialogs assigned to login (kept by store_conv_put). */
int store_agent_load(struct store_txn *txn, const char *login,
    uint32_t *open);
const char *store_presence_name(int presence);
/* The presence that holds at now: what was reported, or offline once
 * lease_ms passed without a refresh (a gateway that died). */
int store_agent_presence(const struct store_agent *a, int64_t now,
    int64_t lease_ms);
int store_presence_parse(const char *name, int *presence);

/* The unassigned queue: open dialogs without an assignee, most urgent
 * first, then oldest first (by created). Calls cb for at most limit. */
int store_queue(struct store_txn *txn, size_t limit,
    int (*cb)(void *arg, uint64_t conv_id), void *arg);
/* Dialogs whose next SLA warning or breach is due at or before now. */
int store_due_sla(struct store_txn *txn, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t conv_id), void *arg);

/* Tasks. put with id 0 assigns the next id; every put keeps the due timer
 * index (tasks not done and not yet announced) and the conversation's
 * task list. */
int store_task_get(struct store_txn *txn, uint64_t id, struct store_task *out);
int store_task_put(struct store_txn *txn, struct store_task *task);
int store_conv_tasks(struct store_txn *txn, uint64_t conv_id,
    int (*cb)(void *arg, const struct store_task *t), void *arg);
int store_due_tasks(struct store_txn *txn, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t task_id), void *arg);

/* Reply templates by name, and the tag registry (created on first use). */
int store_template_get(struct store_txn *txn, const char *name,
    struct store_template *out);
int store_template_put(struct store_txn *txn, const struct store_template *t);
int store_template_del(struct store_txn *txn, const char *name);
int store_templates(struct store_txn *txn,
    int (*cb)(void *arg, const struct store_template *t), void *arg);
/* Registers a tag (no-op when known); *created tells whether it was new. */
int store_tag_touch(struct store_txn *txn, const char *tag, int64_t now,
    bool *created);
int store_tags(struct store_txn *txn,
    int (*cb)(void *arg, const char *tag, int64_t created), void *arg);

/* The event outbox: events written with the change they describe, appended
 * to Redis after the commit, then cleared. */
struct store_event {
	const char *id;          /* the stream id it gets */
	const char *name;        /* event name; "@<stream>" for an item of
	                          * another stream (a connector's out queue) */
	const char *data;        /* JSON */
	const char *to;          /* NULL, or the one agent it is for */
	const char *cmd_id;      /* NULL, or the command it answers */
	/* what it is about, for the gateways' visibility checks: NULL (not
	 * said: a gateway reads it from data), "*" (everyone), or a
	 * dialog's "<connector>\t<assignee>" (assignee "" when none) */
	const char *about;
};
int store_outbox_add(struct store_txn *txn, const struct store_event *ev);
int store_outbox_foreach(struct store_txn *txn,
    int (*cb)(void *arg, const struct store_event *ev), void *arg);
int store_outbox_clear(struct store_txn *txn);

/* Small named values (counters, the last event id). */
int store_meta_get(struct store_txn *txn, const char *name, uint64_t *v);
int store_meta_put(struct store_txn *txn, const char *name, uint64_t v);

/* ---- json.c: the JSON views (docs/protocol.md, "Objects") ----------------
 * Each returns a new cJSON tree (as void *) the caller frees with
 * cJSON_Delete. */
void *store_conv_json(struct store_txn *txn, const struct store_conv *conv);
/* `envelope` is msg's envelope already parsed (a cJSON tree, borrowed), or
 * NULL to parse msg->envelope. */
void *store_msg_json(const struct store_msg *msg, const void *envelope);
void *store_task_json(const struct store_task *task);
void *store_contact_json(const struct store_contact *c);
/* {"name", "text", "updated", "updated_by" (or null)} (a cJSON *). */
void *store_template_json(const struct store_template *t);
/* capacity null: the router's default; presence as of now (see
 * store_agent_presence). */
void *store_agent_json(const struct store_agent *a, uint32_t load,
    int64_t now, int64_t lease_ms);
/* Appends the page of q to arr (a cJSON array); sets *more and the cursor
 * as store_feed. */
int store_feed_json(struct store_txn *txn, const struct store_feed_q *q,
    void *arr, bool *more, int64_t *next_key, uint64_t *next_id);
const char *store_state_name(int state);
/* Returns 0 and sets *state, or INBOX_EINVAL. */
int store_state_parse(const char *name, int *state);
const char *store_mstatus_name(int status);
int store_mstatus_parse(const char *name, int *status);

/* ---- stats.c: supervisors' views (docs/operations.md, "Supervisor stats")
 * Each returns a new cJSON tree (as void *) the caller frees with
 * cJSON_Delete. */

/* Every agent by login, as store_agent_json shows it (load, presence as of
 * now), plus "effective_capacity" (its capacity, or default_capacity when
 * it has none). Returns 0 and *out, or an error code and *out NULL. */
int store_agents_json(struct store_txn *txn, int64_t now, int64_t lease_ms,
    int default_capacity, void **out);
/* The same with every shard's store: loads summed across txns[0..n). */
int store_agents_json_shards(struct store_txn *const *txns, size_t n,
    int64_t now, int64_t lease_ms, int default_capacity, void **out);
/* Who answered how many dialogs, how fast, over [from, to) (ms), from txn
 * alone: {from, to, totals, agents[], teams[], channels[]}. A dialog counts
 * for its assignee now and each of that agent's teams (from the agent's
 * record): handled when its first response (first_response_at) or its last
 * close (closed_at) falls in the period; first-response times
 * (first_response_at - created) of first responses in the period, median
 * and p90 by nearest rank; resolution times (closed_at - created) of
 * closes in the period; ratings given (rated_at) in the period; open_load
 * now (store_agent_load); per channel, dialogs created in the period and
 * open now. sla_breaches are 0 here: callers count the alerts of the
 * `<prefix>:sla` stream with store_stats_alert. Returns 0 and *out, or
 * INBOX_EINVAL (to <= from) or a store error with *out NULL. */
int store_stats(struct store_txn *txn, int64_t from, int64_t to, void **out);
/* The same over every shard's store (txns[0..n)): dialogs counted in
 * each, agents read from the first, loads summed. */
int store_stats_shards(struct store_txn *const *txns, size_t n, int64_t from,
    int64_t to, void **out);
/* Counts one entry of the alert stream into a store_stats tree: an
 * sla.breached whose data's `at` is in the period adds one to totals, to
 * the agent named by `assignee` and to its teams. Returns whether it
 * counted. */
bool store_stats_alert(void *stats, const char *event, const char *data);
/* Sets every sla_breaches to null: the alert stream could not be read. */
void store_stats_alerts_unknown(void *stats);

#endif
