/* libstore private: the record writer and reader (record.c). */
#ifndef INBOX_STORE_STORE_INT_H
#define INBOX_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record layout: one version byte, then fields in a fixed order per record
 * type: u8, u32 and u64 big-endian, strings as u32 length (0xffffffff for
 * NULL), the bytes and a NUL, so a reader can hand out pointers into the
 * database page. Adding a field at the end keeps the version; any other
 * change bumps it. */
#define STORE_REC_NULL 0xffffffffu

struct rec_w {
	unsigned char *buf;
	size_t len, cap;
};

struct rec_r {
	const unsigned char *p;
	size_t len, pos;
	bool bad;
};

void store__w_init(struct rec_w *w, unsigned char version);
void store__w_u8(struct rec_w *w, unsigned v);
void store__w_u32(struct rec_w *w, uint32_t v);
void store__w_u64(struct rec_w *w, uint64_t v);
void store__w_str(struct rec_w *w, const char *s);
void store__w_bytes(struct rec_w *w, const char *s, size_t n);
void store__w_finish(struct rec_w *w);

/* Starts reading; bad is set when the version differs. */
void store__r_init(struct rec_r *r, const void *p, size_t len,
    unsigned char version);
unsigned store__r_u8(struct rec_r *r);
uint32_t store__r_u32(struct rec_r *r);
uint64_t store__r_u64(struct rec_r *r);
const char *store__r_str(struct rec_r *r, size_t *len);
/* True when fields follow (a newer writer added them at the end). */
bool store__r_more(const struct rec_r *r);
/* True when the record is whole and well-formed after the last read. */
bool store__r_ok(const struct rec_r *r);

void store__be64(unsigned char *out, uint64_t v);
uint64_t store__get_be64(const unsigned char *in);
/* The version byte of a record (0 for an empty one). */
unsigned store__r_version(const void *p, size_t len);

/* ---- store.c: the environment and table helpers ------------------------ */

#include <lmdb.h>

enum { T_META, T_CONV, T_CONV_THREAD, T_CONV_IDX, T_MSG, T_MSG_EXT,
	T_CONV_MSG, T_CONTACT, T_CONTACT_EXT, T_AGENT, T_OUTBOX, T_DUE,
	T_CONTACT_EMAIL, T_CONTACT_PHONE, T_TASK, T_CONV_TASK, T_TEMPLATE,
	T_TAG, T_CONV_STATE_V1, T_AGENT_LOAD, T_QUEUE, T__COUNT };

/* Timer kinds in T_DUE: kind, when (be64), id (be64). */
enum { STORE_DUE_SNOOZE = 1, STORE_DUE_TASK = 2, STORE_DUE_SLA = 3 };

struct store {
	MDB_env *env;
	MDB_dbi dbi[T__COUNT];
	bool rdonly;
	unsigned shard, shards;  /* ids k + 1 + i * n (store_set_shard) */
};

struct store_txn {
	struct store *st;
	MDB_txn *txn;
};

#define STORE_PAIR_MAX 511   /* LMDB's default key size limit */

int store__fail(const char *what, int rc);
int store__get(struct store_txn *t, int table, const void *k, size_t klen,
    MDB_val *v);
int store__put(struct store_txn *t, int table, const void *k, size_t klen,
    const void *v, size_t vlen, unsigned flags);
int store__del(struct store_txn *t, int table, const void *k, size_t klen);
int store__get_id(struct store_txn *t, int table, const void *k, size_t klen,
    uint64_t *id);
int store__put_id(struct store_txn *t, int table, const void *k, size_t klen,
    uint64_t id);
/* Reads the record of a table keyed by a u64 id. */
int store__get_by_id(struct store_txn *t, int table, uint64_t id, MDB_val *v);
/* Calls cb for each child of parent in a (parent, child) index table, in
 * child order; cb returning nonzero stops (a negative value is returned). */
int store__children(struct store_txn *t, int table, uint64_t parent,
    int (*cb)(void *arg, uint64_t child), void *arg);
int store__next_id(struct store_txn *t, int table, uint64_t *id);
/* key = a "\0" b; returns its length, or 0 when it would not fit. */
size_t store__pair_key(char *buf, size_t cap, const char *a, const char *b);
void store__due_key(unsigned char *k, int kind, int64_t when, uint64_t id);
/* Walks T_DUE entries of `kind` with when <= now. */
int store__due_walk(struct store_txn *t, int kind, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t id), void *arg);

/* conv.c */
int store__conv_reindex_all(struct store_txn *t);

/* contact.c */
int store__contact_reindex_all(struct store_txn *t);

#endif
