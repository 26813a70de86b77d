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
 * conv_state (state, updated, id -> empty: the feeds), msg (id -> record,
 * appended in id order), msg_ext (connector\0external_id -> id), conv_msg
 * (conv id, msg id -> empty), contact, contact_ext, agent (login -> record),
 * outbox (seq -> event not yet appended to Redis), meta (name -> value).
 */
#ifndef INBOX_STORE_STORE_H
#define INBOX_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbox/inbox.h"

#define STORE_RDONLY 0x1

struct store;
struct store_txn;

enum store_state { STORE_STATE_OPEN, STORE_STATE_SNOOZED, STORE_STATE_CLOSED,
	STORE_STATE__COUNT };
enum store_dir { STORE_DIR_IN, STORE_DIR_OUT, STORE_DIR_NOTE };

struct store_conv {
	uint64_t id;
	uint64_t contact_id;
	const char *connector;
	const char *channel;
	const char *thread;
	const char *subject;     /* NULL when none */
	const char *assignee;    /* NULL when unassigned */
	const char *priority;    /* low, normal, high, urgent */
	int state;               /* enum store_state */
	int64_t created, updated, last_customer_msg_at, snooze_until;
	uint32_t message_count;
};

struct store_msg {
	uint64_t id, conv_id, contact_id;
	int dir;                 /* enum store_dir */
	int64_t ts, created;
	const char *connector;
	const char *channel;
	const char *external_id;
	const char *envelope;    /* the envelope JSON as received */
	size_t envelope_len;
};

struct store_contact {
	uint64_t id;
	const char *connector, *channel, *external_id;
	const char *name, *email, *phone, *username;   /* NULL when unknown */
	int64_t created;
};

struct store_agent {
	const char *login, *name, *role, *pwhash;
	int64_t created, updated;
};

/* Opens (the router: creates) the environment in directory `path`.
 * flags: STORE_RDONLY for every process but the router. Returns 0, or
 * INBOX_ENOTFOUND when a read-only open finds no database yet. */
int store_open(struct store **out, const char *path, int map_size_mb, int flags);
void store_close(struct store *st);

/* One transaction at a time per thread. commit frees txn (also on failure);
 * abort frees txn; abort(NULL) does nothing. A write commit is durable
 * (synced) when it returns 0. */
int store_txn_begin(struct store *st, bool write, struct store_txn **out);
int store_txn_commit(struct store_txn *txn);
void store_txn_abort(struct store_txn *txn);

/* Conversations. put with id 0 assigns the next id (written back into
 * conv->id) and creates the thread index; every put keeps the state index. */
int store_conv_get(struct store_txn *txn, uint64_t id, struct store_conv *out);
int store_conv_find_thread(struct store_txn *txn, const char *connector,
    const char *thread, uint64_t *id);
int store_conv_put(struct store_txn *txn, struct store_conv *conv);

/* Calls cb for conversations in `state`, newest `updated` first, starting
 * after the cursor (before_updated, before_id) when before_id is not 0, at
 * most limit times; cb returning nonzero stops the walk. Sets *more when more
 * conversations follow the last one given. */
int store_feed(struct store_txn *txn, int state, int64_t before_updated,
    uint64_t before_id, size_t limit,
    int (*cb)(void *arg, const struct store_conv *conv), void *arg,
    bool *more);

/* Messages. add assigns the next id (written into msg->id), indexes it by
 * (connector, external_id) and by conversation. */
int store_msg_find_ext(struct store_txn *txn, const char *connector,
    const char *external_id, uint64_t *id);
int store_msg_add(struct store_txn *txn, struct store_msg *msg);
int store_msg_get(struct store_txn *txn, uint64_t id, struct store_msg *out);
/* Calls cb for each message of a conversation, oldest first. */
int store_conv_messages(struct store_txn *txn, uint64_t conv_id,
    int (*cb)(void *arg, const struct store_msg *msg), void *arg);

/* Contacts. put with id 0 assigns the next id and indexes it by
 * (connector, external_id). */
int store_contact_get(struct store_txn *txn, uint64_t id,
    struct store_contact *out);
int store_contact_find_ext(struct store_txn *txn, const char *connector,
    const char *external_id, uint64_t *id);
int store_contact_put(struct store_txn *txn, struct store_contact *contact);

/* Agents, by login. */
int store_agent_get(struct store_txn *txn, const char *login,
    struct store_agent *out);
int store_agent_put(struct store_txn *txn, const struct store_agent *agent);

/* The event outbox: events written with the change they describe, appended
 * to Redis after the commit, then cleared. */
int store_outbox_add(struct store_txn *txn, const char *stream_id,
    const char *event, const char *data);
int store_outbox_foreach(struct store_txn *txn,
    int (*cb)(void *arg, const char *stream_id, const char *event,
    const char *data), void *arg);
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
/* Appends up to `limit` conversations of the feed of `state` to arr (a cJSON
 * array) after the cursor (*updated, *id; *id 0 starts at the newest), and
 * moves the cursor to the last one appended. Sets *more as store_feed. */
int store_feed_json(struct store_txn *txn, int state, int64_t *updated,
    uint64_t *id, size_t limit, void *arr, bool *more);
const char *store_state_name(int state);
/* Returns 0 and sets *state, or INBOX_EINVAL. */
int store_state_parse(const char *name, int *state);

#endif
