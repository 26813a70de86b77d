/*
 * librt: the I/O every inboxd process shares: loading the config file, the
 * clock, signals without handlers, and the Redis connection with its stream
 * helpers (hiredis, synchronous).
 */
#ifndef INBOX_RT_RT_H
#define INBOX_RT_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "inbox/inbox.h"

/* ---- rt.c ------------------------------------------------------------- */

/* Milliseconds since the epoch (wall clock). */
int64_t rt_now_ms(void);
/* Microseconds of a monotonic clock (durations only). */
int64_t rt_now_us(void);

/* Reads a whole file (at most max bytes). Returns a malloc'd NUL-terminated
 * buffer the caller frees, or NULL with errno set (EFBIG when too large). */
char *rt_read_file(const char *path, size_t max, size_t *len);
/* fsyncs the directory that holds path (after a rename into it, so that
 * the new name survives a crash). Returns 0, or -1 with errno set. */
int rt_fsync_dir_of(const char *path);

/* Loads `path` into cfg (defaults first). On error prints "file:line: key
 * 'k': problem" to stderr and returns INBOX_EINVAL or INBOX_EIO; cfg must be
 * finished either way. */
int rt_config_load(struct inbox_config *cfg, const char *path);

/* Makes cfg serve shard k alone (a router of a sharded deployment,
 * redis.shards > 1): cfg->shard = k, so rt_key names the shard's keys;
 * store.path becomes its directory "<store.path>/shard-<k>" (see
 * rt_store_path) and router.metrics' port is port + k. With one shard
 * nothing changes but cfg->shard = 0. Returns 0, or INBOX_EINVAL (k out
 * of range, logged). */
int rt_config_shard(struct inbox_config *cfg, int k);

/* The store directory of shard k (store.path itself with one shard) of a
 * config that serves no shard in particular (the gateway). */
void rt_store_path(char *buf, size_t len, const struct inbox_config *cfg,
    unsigned k);

/* The common start of every process: parses -c FILE, -n (check and exit),
 * -v (debug); loads the config and starts the log. Returns 0 to go on, 1 when
 * the process should exit with status 0 (-n), -1 on error (usage or config,
 * already reported). *argi is set to the first operand. */
int rt_proc_init(struct inbox_config *cfg, const char *procname, int argc,
    char **argv, int *argi);

/* Blocks SIGINT, SIGTERM and SIGHUP (call before creating threads) and
 * ignores SIGPIPE; rt_sig_pending() then tells whether one of them arrived,
 * without handlers or globals. */
void rt_sig_block(void);
/* SIGINT or SIGTERM arrived (stop). */
bool rt_sig_pending(void);
/* Consumes a pending SIGHUP (reload the configuration): true when one was
 * there. */
bool rt_sig_hup(void);
/* Reads the configuration file again (cfg->file). Returns a new config
 * (heap, the caller keeps it alive while anything may still read the old
 * one), or NULL after logging the errors (the running one stays). Sets
 * the log level. */
struct inbox_config *rt_config_reload(const struct inbox_config *old);

/* ---- redis.c ----------------------------------------------------------- */

/* Connects to the configured Redis (unix socket or TCP) with the configured
 * timeout. With redis.cluster, to the master that serves the slot of every
 * key (redis.prefix carries a hash tag), as the cluster's nodes say. With
 * redis.sentinels, asks them in turn for the master
 * redis.master_name and connects to the first answer whose ROLE is master
 * (after a failover, the next call finds the new master: drop the context
 * on any connection error and call again). Returns a context the caller
 * frees with redisFree, or NULL (the reason logged at warn level). */
redisContext *rt_redis_connect(const struct inbox_config *cfg);

/* Where the configured Redis is, for a client that connects by itself
 * (hiredis' async one): a unix socket path with *port 0, or host and
 * port. With redis.sentinels this asks them (synchronously, each within
 * redis.timeout_ms) and checks the answer is a master. Returns 0 or
 * INBOX_EUNAVAIL (logged). */
int rt_redis_addr(const struct inbox_config *cfg, char *host, size_t len,
    int *port);

/* Replication before acknowledgement (redis.min_replicas > 0): appends
 * WAIT <min_replicas> <timeout_ms / 2> to c's pipeline after the writes it
 * covers (every write this connection made), once per pipeline. Returns
 * true when it did: read its reply with rt_wait_reply after the writes'
 * replies; false when min_replicas is 0 (nothing appended). */
bool rt_wait_append(redisContext *c, const struct inbox_config *cfg);
/* Reads the reply of the WAIT appended by rt_wait_append. Returns 0 when
 * min_replicas replicas acknowledged the writes, or INBOX_EUNAVAIL (logged)
 * when fewer did in time (the writes may be lost in a failover: do not
 * acknowledge them) or the connection failed (c->err set: drop c). */
int rt_wait_reply(redisContext *c, const struct inbox_config *cfg);
/* True when the server does not serve our keys (any more): -READONLY (a
 * master demoted by a Sentinel failover), or in a Redis Cluster -MOVED
 * (the keys' slot is on another master: a reshard or a failover), -ASK and
 * -TRYAGAIN (it is moving), -CLUSTERDOWN. Drop the context: the next
 * connect asks the sentinels or the cluster where the keys are. */
bool rt_reply_is_moved(const redisReply *r);

/* A stream id "<ms>-<seq>" (digits, nothing after): true and its parts,
 * or false. */
bool rt_stream_id_parse(const char *s, uint64_t *ms, uint64_t *seq);

/* Writes "<prefix>:<name>" into buf: with redis.shards > 1, the key of
 * the shard the process serves (cfg->shard), else of shard 0, which also
 * holds what is global (revoked tokens). */
void rt_key(char *buf, size_t len, const struct inbox_config *cfg,
    const char *name);

/* Writes "<shard k's prefix>:<name>" into buf (inbox_shard_prefix; the
 * same as rt_key when redis.shards is 1). */
void rt_key_shard(char *buf, size_t len, const struct inbox_config *cfg,
    unsigned k, const char *name);
/* rt_redis_connect for shard k's keys (on a cluster, the master of their
 * slot). */
redisContext *rt_redis_connect_shard(const struct inbox_config *cfg,
    unsigned k);

/* True when r is an error reply or NULL. */
bool rt_reply_is_error(const redisReply *r);

/* Creates consumer group `group` on `stream` (from id 0, MKSTREAM); an
 * existing group is fine. Returns 0 or INBOX_EUNAVAIL. */
int rt_group_create(redisContext *c, const char *stream, const char *group);

/* A stream entry's field value (by name) or NULL; len set when found. */
const char *rt_entry_field(const redisReply *fields, const char *name,
    size_t *len);

#endif
