/*
 * The webhooks connector's channel interface: one const struct per channel
 * (after wlroots' backend_impl), looked up by the connector's channel.
 */
#ifndef INBOX_CONNECTORS_WEBHOOKS_CHANNEL_H
#define INBOX_CONNECTORS_WEBHOOKS_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "inbox/inbox.h"

/* What a request carries that a channel may need to check. */
struct wh_request {
	const char *authorization;   /* Authorization header or NULL */
	const char *body;
	size_t len;
	int64_t now_ms;
};

/* The envelopes decoded from one request (a channel may batch several). */
struct wh_envelopes {
	char **json;                 /* owned, encoded envelopes */
	size_t n;
};

struct wh_channel_impl {
	enum inbox_channel channel;
	/* Checks the request's authenticity before anything is parsed.
	 * Returns 0, or INBOX_EINVAL with err filled (answered 401). */
	int (*verify)(const struct inbox_connector_conf *cc,
	    const struct wh_request *req, struct inbox_err *err);
	/* Turns the body into envelopes. Returns 0 and fills out, or
	 * INBOX_EINVAL with err naming the problem (answered 400). */
	int (*decode)(const struct inbox_connector_conf *cc,
	    const struct wh_request *req, struct wh_envelopes *out,
	    struct inbox_err *err);
};

extern const struct wh_channel_impl wh_channel_api;

/* The implementation for a channel, or NULL when this connector has none. */
const struct wh_channel_impl *wh_channel_find(enum inbox_channel ch);
void wh_envelopes_add(struct wh_envelopes *e, char *json);
void wh_envelopes_finish(struct wh_envelopes *e);

#endif
