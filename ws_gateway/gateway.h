/* inbox-gateway: the web client, agent login, and the websocket protocol. */
#ifndef INBOX_WS_GATEWAY_GATEWAY_H
#define INBOX_WS_GATEWAY_GATEWAY_H

#include "inbox/inbox.h"

struct gateway;

/* Creates the server on gateway.listen:port and starts the event reader.
 * Returns NULL on failure (logged). */
struct gateway *gateway_create(const struct inbox_config *cfg);
/* Serves until SIGINT/SIGTERM; returns 0. */
int gateway_run(struct gateway *gw);
void gateway_destroy(struct gateway *gw);

#endif
