/*
 * libconnector: what every connector shares (docs/connector-protocol.md).
 * Envelopes go to <prefix>:in; agents' replies come from
 * <prefix>:out:<connector-id>, read as consumer group "connector"; the
 * outcome of each reply goes back as a status envelope, and only then is
 * the reply acknowledged. With redis.shards > 1 each shard has these
 * streams (rt_key_shard): an envelope goes to its dialog's shard, replies
 * come from every shard, a status goes back to its reply's. Synchronous
 * (hiredis): one struct connector per thread.
 */
#ifndef INBOX_CONNECTORS_COMMON_CONNECTOR_H
#define INBOX_CONNECTORS_COMMON_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "inbox/inbox.h"

#define CONNECTOR_GROUP "connector"

struct connector;

/* A reply to deliver: one entry of the out stream. */
struct connector_out {
	char id[64];             /* its stream id */
	cJSON *item;             /* the out JSON (docs/protocol.md), owned */
	long deliveries;         /* times Redis handed it out, >= 1 */
	unsigned shard;          /* whose out stream it came from */
};

/* Connects lazily (the first call that needs Redis). Returns NULL only when
 * cc is NULL. */
struct connector *connector_create(const struct inbox_config *cfg,
    const struct inbox_connector_conf *cc);
void connector_destroy(struct connector *c);
const struct inbox_connector_conf *connector_conf(const struct connector *c);

/* Appends n envelopes (JSON) to <prefix>:in in one pipelined round trip
 * (with redis.min_replicas > 0, followed by one WAIT). Returns 0 when every
 * XADD succeeded (and reached min_replicas replicas), or INBOX_EUNAVAIL
 * (some may have been appended: the store refuses the copies when they
 * come again). */
int connector_publish(struct connector *c, const char *const *envs,
    const size_t *lens, size_t n);

/* Reads at most max replies into out: this consumer's pending ones first
 * (after a restart: those it never finished; each handed out once), then
 * new ones, blocking up to block_ms when there are none (with shards, up
 * to 100 ms on one shard, each in turn). Entries that are not JSON objects are
 * moved to <prefix>:dead and acknowledged here. Returns the number read
 * (>= 0), or INBOX_EUNAVAIL. */
int connector_out_read(struct connector *c, struct connector_out *out,
    size_t max, int block_ms);
void connector_out_finish(struct connector_out *o);

/* The end of a reply: publishes its status envelope ("sent" with the
 * channel's message id when known, or "failed" with the error, which also
 * parks the reply in <prefix>:dead with the reason), then acknowledges it.
 * Returns 0, or INBOX_EUNAVAIL (the reply stays pending and comes back;
 * its status envelope has a fixed external id, so a second copy is
 * harmless). */
int connector_out_done(struct connector *c, const struct connector_out *o,
    const char *status, const char *channel_message_id, const char *error);
/* The same for a reply the channel took as several messages: ids[0] is
 * channel_message_id, the others go in channel_message_ids, so a later
 * status that names any of them finds the reply. */
int connector_out_done_ids(struct connector *c, const struct connector_out *o,
    const char *status, const char *const *ids, size_t nids,
    const char *error);

/* Appends an item this connector could not use to <prefix>:dead with the
 * reason (source names where it came from, e.g. "imap:ann@example.com",
 * source_id which item). Returns 0 or INBOX_EUNAVAIL. */
int connector_dead(struct connector *c, const char *source,
    const char *source_id, const char *reason, const char *data, size_t len);

/* The status envelope of an out item (malloc'd JSON): kind "status",
 * external_id "status:<ref>:<status>", reply_to the item's ref, the
 * channel's ids of it (nids may be 0). */
char *connector_status_envelope(const struct inbox_connector_conf *cc,
    const cJSON *item, const char *status, const char *const *ids,
    size_t nids, const char *error, int64_t now);

/* A string field of the out item, or NULL. */
const char *connector_item_str(const cJSON *item, const char *path);

/* Reads a secret from a file (first line, trailing newline dropped); NULL
 * with a logged reason when unreadable or empty. malloc'd. */
char *connector_read_secret(const char *path);

/* The delay before attempt n+1 after n failures: 1 s doubling up to 5 min,
 * with up to 25% jitter from `seed`. */
int64_t connector_backoff_ms(int failures, uint32_t seed);

#endif
