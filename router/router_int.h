/* The router's private parts, shared by router.c and apply.c. */
#ifndef INBOX_ROUTER_ROUTER_INT_H
#define INBOX_ROUTER_ROUTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "inbox/inbox.h"
#include "store/store.h"

struct router {
	const struct inbox_config *cfg;
	struct store *store;
	redisContext *redis;
	char k_in[128], k_cmd[128], k_events[128], k_dead[128];
	char maxlen[16];
	uint64_t ev_ms, ev_seq;  /* the last event id given out */
	bool outbox_published;   /* the outbox is in Redis: clear it next txn */
};

/* Adds an event to the outbox within txn; takes ownership of data (a cJSON
 * tree). Its stream id is fixed here. */
void router__event(struct router *r, struct store_txn *txn, const char *name,
    void *data);

/* Apply one stream entry inside txn. Return 0, INBOX_EINVAL when the entry is
 * bad (reason filled: it goes to the dead-letter stream), or another code for
 * a store failure (fatal). */
int router__apply_envelope(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen);
int router__apply_command(struct router *r, struct store_txn *txn,
    const char *data, size_t len, int64_t now, char *reason, size_t rlen);

#endif
