/*
 * The router: the only writer of the store. Consumes inbox:in and inbox:cmd
 * as group `router`, applies each batch in one LMDB write transaction, then
 * appends the batch's events (from the store's outbox) and acknowledges.
 */
#ifndef INBOX_ROUTER_ROUTER_H
#define INBOX_ROUTER_ROUTER_H

#include "inbox/inbox.h"

struct router;

/* Opens the store (creating it) and prepares the context; Redis is connected
 * by router_run. Returns NULL on failure (logged). */
struct router *router_create(const struct inbox_config *cfg);
/* Runs until SIGINT/SIGTERM. Returns 0 on a clean stop, -1 on a fatal
 * error (logged). */
int router_run(struct router *r);
void router_destroy(struct router *r);

#endif
