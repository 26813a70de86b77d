/* inbox-webhooks: the HTTP server that turns channel webhooks into
 * envelopes on inbox:in. */
#ifndef INBOX_CONNECTORS_WEBHOOKS_WEBHOOKS_H
#define INBOX_CONNECTORS_WEBHOOKS_WEBHOOKS_H

#include "inbox/inbox.h"

struct webhooks;

/* Creates the server listening on webhooks.listen:port. NULL on failure. */
struct webhooks *webhooks_create(const struct inbox_config *cfg);
/* Serves until SIGINT/SIGTERM; returns 0. */
int webhooks_run(struct webhooks *wh);
void webhooks_destroy(struct webhooks *wh);

#endif
