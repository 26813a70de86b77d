/*
 * Outbound delivery of agents' replies for the webhooks connector's
 * messenger channels: one thread per connector instance, each with its own
 * libconnector handle (consumer of <prefix>:out:<id>) and a libcurl multi
 * handle keeping up to send_concurrency platform calls in flight, so the
 * lws HTTP thread never waits on a platform.
 */
#ifndef INBOX_CONNECTORS_WEBHOOKS_OUT_H
#define INBOX_CONNECTORS_WEBHOOKS_OUT_H

#include <stddef.h>

#include "connectors/webhooks/channel.h"
#include "inbox/inbox.h"

struct wh_out;

/* Starts a sender thread for each connector whose channel delivers and
 * that has a token. conns (n of them) must outlive the senders. Call after
 * rt_sig_block(). Returns NULL when there is nothing to deliver. */
struct wh_out *wh_out_start(const struct inbox_config *cfg,
    const struct wh_conn *conns, size_t n);
/* Stops and joins every sender (replies in flight stay pending in Redis
 * and are delivered again at the next start). NULL does nothing. */
void wh_out_stop(struct wh_out *o);

/* Logs what a connector lacks for its channel (a missing secret means
 * every webhook request is refused). */
void wh__conn_check(const struct wh_conn *wc);

#endif
