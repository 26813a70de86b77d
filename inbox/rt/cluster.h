/*
 * A small synchronous Redis Cluster client on top of hiredis (0.14 has no
 * cluster support): the slot -> master table from CLUSTER SLOTS, one lazily
 * opened connection per master, and the redirections of the cluster spec
 * (-MOVED, -ASK, -TRYAGAIN, -CLUSTERDOWN) followed a bounded number of
 * times. Replicas are not used. One struct rt_cluster belongs to one thread.
 */
#ifndef INBOX_RT_CLUSTER_H
#define INBOX_RT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "inbox/inbox.h"

#define RT_CLUSTER_SLOTS 16384
/* Redirections and retries of one command before giving up. */
#define RT_CLUSTER_TRIES 5

struct rt_cluster;

/* The hash slot of a key: CRC16 (XMODEM) of the key mod 16384; when the
 * key has a hash tag ("{" then a "}" after it with something between the
 * first "{" and the first "}" after it), of the tag only. key needs no NUL
 * and may hold any byte. */
uint16_t rt_cluster_keyslot(const char *key, size_t len);

/* seeds: "host:port, host:port, ..." ("[v6addr]:port" too); timeout_ms
 * bounds each connect, read and write (<= 0: 2000). Asks the seeds in turn
 * for CLUSTER SLOTS and builds the slot table from the first answer (the
 * masters only); keeps that connection when the seed is a master and
 * opens the others when first needed. Returns a client the caller
 * frees with rt_cluster_close, or NULL (the reason logged at warn level)
 * when seeds is malformed or no seed answered with a slot map. */
struct rt_cluster *rt_cluster_open(const char *seeds, int timeout_ms);

/* Frees cl, closing every connection (pipelined commands whose reply was
 * not read may have run or not). NULL does nothing. */
void rt_cluster_close(struct rt_cluster *cl);

/* Sends the command argv[0..argc) (lengths in argvlen, or NULL for
 * NUL-terminated arguments, as redisCommandArgv) to the master that owns
 * the slot of key[0..keylen), which should be one of the command's keys
 * (for several keys, they must share a slot: use a hash tag). Follows
 * -MOVED (updates the slot and re-reads the whole map), -ASK (ASKING then
 * the command on that node; the map stays), -TRYAGAIN and -CLUSTERDOWN (a
 * short sleep, then again) and connection errors (the connection is
 * dropped, the map re-read from any master or seed that answers, then
 * again), RT_CLUSTER_TRIES times at most.
 * A command whose connection broke after it was sent may have run on the
 * server before being sent again: writes must bear being done twice.
 * Returns the reply, which the caller frees with freeReplyObject: the
 * answer, an error reply (the command's own error, or the last redirection
 * when the tries ran out), or NULL when the last try failed to connect or
 * lost the connection (logged at warn level). */
redisReply *rt_cluster_command_argv(struct rt_cluster *cl, const char *key,
    size_t keylen, int argc, const char **argv, const size_t *argvlen);

/* Pipelining: appends the command (as for rt_cluster_command_argv) to the
 * connection of the master that owns key's slot, without sending or
 * waiting (connecting, or reading the slot map when no owner is known, is
 * done here). When that master cannot be reached now, the command is kept
 * and rt_cluster_get_reply sends it. Commands for several masters may be
 * appended before the first reply is read; the commands appended for one
 * master go out together when the first of their replies is read (one
 * round trip per master, one master after the other). The formatted
 * command is kept (heap) until its reply is read. */
void rt_cluster_append_argv(struct rt_cluster *cl, const char *key,
    size_t keylen, int argc, const char **argv, const size_t *argvlen);

/* Reads the reply of the oldest appended command whose reply was not read
 * (replies come in append order, whatever the master). A redirected
 * command, or one whose connection failed, is sent again on its own as
 * rt_cluster_command_argv does (so it runs after commands appended later
 * may have run). Sets *reply to what rt_cluster_command_argv would return
 * (the caller frees it with freeReplyObject) and returns 0, or sets it to
 * NULL and returns INBOX_EUNAVAIL (no answer, logged) or INBOX_ESTATE
 * (no command is waiting for its reply). rt_cluster_command_argv may be
 * called between an append and its reply. */
int rt_cluster_get_reply(struct rt_cluster *cl, redisReply **reply);

/* "host:port" of the master the table names for slot (after a refresh or
 * a -MOVED), or NULL when no master owns it. For diagnostics: the string
 * is borrowed from cl, valid until the next call on cl. */
const char *rt_cluster_node_of(struct rt_cluster *cl, uint16_t slot);

#endif
