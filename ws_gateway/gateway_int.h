/* The gateway's private parts. */
#ifndef INBOX_WS_GATEWAY_GATEWAY_INT_H
#define INBOX_WS_GATEWAY_GATEWAY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <libwebsockets.h>

#include "inbox/inbox.h"
#include "inbox/rt/rt_lws.h"
#include "store/store.h"

struct gw_agent_socks;
struct gw_login_fail;
struct gw_static;

/* A stream id "ms-seq", comparable. */
struct gw_seq {
	uint64_t ms, seq;
};

/* An outgoing websocket frame, with LWS_PRE bytes of headroom. */
struct gw_frame {
	struct gw_frame *next;
	struct gw_seq seq;       /* events only; zero for results */
	unsigned shard;          /* ... and whose stream it came from */
	char to[65];             /* events for one agent: its login; else "" */
	char cmd_id[136];        /* events that answer a command; else "" */
	char name[48];           /* event name; "" for results */
	/* what the event is about, from the router's stream fields or else
	 * read from its data on first use: scope 0 unknown, 1 none (for
	 * everyone), 2 a dialog (connector, assignee) */
	int scope;
	char connector[65];
	char assignee[65];
	size_t len;
	unsigned char buf[];     /* LWS_PRE + len (+1 for a NUL) */
};

/* The events read from inbox:events, which every session reads with its
 * own tail. */
struct gw_ring {
	struct gw_frame **slots;
	size_t size;
	uint64_t head;           /* frames ever inserted */
};

struct gateway;

struct gw_shard;

/* A connection to Redis on lws's loop (hiredis' async client); it
 * reconnects by itself (redis.c). */
struct gw_link {
	struct gateway *gw;
	struct gw_shard *sh;     /* whose keys it serves */
	char name[40];           /* "requests" or "events", with the shard
	                          * when there are several (logs) */
	redisAsyncContext *ac;   /* NULL while down */
	bool up;
	bool warned;             /* the outage was logged */
	lws_sorted_usec_list_t retry;
};

/* A revoked token (logout), known until it would have expired. */
struct gw_revoked {
	char nonce[17];
	int64_t expires;
};

/* One shard (redis.shards; one when the deployment has no shards): its
 * store, its streams and the links to where they are. Shard 0 also
 * holds what is global (revoked tokens, agents and templates, whose
 * copies every shard keeps). */
struct gw_shard {
	struct gateway *gw;
	unsigned k;
	struct store *store;     /* opened on first use, read-only */
	struct gw_link req_link; /* commands, subscribe and SLA reads (and
	                          * on shard 0: logout, revocations) */
	struct gw_link ev_link;  /* XREAD BLOCK on its events */
	char ev_last[64];        /* the last event read ("" before the first
	                          * connection found the stream's end) */
	lws_sorted_usec_list_t ev_retry;    /* XREAD again after an error */
	char k_events[128], k_cmd[128], k_sla[128];
};

struct gateway {
	const struct inbox_config *cfg;
	struct lws_context *lws; /* its loop serves the Redis links too */
	struct gw_shard *shards;
	unsigned nshards;
	lws_sorted_usec_list_t start_sul;   /* ready without Redis after a
	                                     * while */
	bool ready;              /* websockets accepted (see gw_ready) */
	bool stopping;
	struct rt_lws_stop stop;
	unsigned char *wbuf;     /* frames of one websocket write */
	size_t wbuf_size;
	char k_revoked[128];
	char cmd_prefix[64];     /* cmd_ids are <prefix>.<n> */
	uint64_t cmd_seq;
	unsigned char secret[32];
	/* tokens revoked by a logout (loaded from Redis, then from
	 * token.revoked events); revocations_known once loaded */
	struct gw_revoked *revoked;
	size_t nrevoked;
	bool revocations_known;

	struct gw_ring ring;

	struct lws_dll2_owner sessions;  /* every open websocket */
	struct inbox_config **reloaded;  /* configs read on SIGHUP (owned) */
	size_t nreloaded;
	/* counters for /metrics (service thread) */
	uint64_t m_frames, m_writes, m_bytes, m_cut, m_logins_ok,
	    m_logins_failed,
	    m_logins_limited, m_requests;
	struct gw_static **statics;      /* the web client's files */
	size_t nstatic;
	struct gw_login_fail *fails;     /* login rate limits (auth.c) */
	size_t nfails;

	/* presence: open sockets per agent (presence.c) */
	struct gw_agent_socks *socks;
	size_t nsocks;
	lws_sorted_usec_list_t presence_sul;
};

/* events.c */
bool gw_seq_parse(const char *s, struct gw_seq *out);
int gw_seq_cmp(struct gw_seq a, struct gw_seq b);
struct gw_frame *gw_frame_new(const char *data, size_t len);
/* Builds the push frame of one entry of shard k's events; its seq is
 * the stream id, "<k>:<id>" when the gateway follows several shards. */
struct gw_frame *gw_event_frame(const struct gateway *gw, unsigned k,
    const char *id, const char *event, const char *data, const char *to,
    const char *cmd_id);
/* Takes what the event is about from the stream entry's `about` field
 * (the router's: "*", or "<connector>\t<assignee>"); without it, it is
 * read from the data when first needed. */
void gw_frame_scope_from(struct gw_frame *f, const redisReply *fields);
/* Whether an event frame may go to the agent `login`. */
bool gw_frame_visible(const struct gw_frame *f, const char *login);
/* Handles one entry of shard k's events: a push frame into the ring, or
 * an internal event the gateway acts on (token.revoked). */
void gw_event_entry(struct gateway *gw, unsigned k, const char *id,
    const redisReply *fields);
void gw_ring_finish(struct gw_ring *ring);
/* gateway.c: events reached the ring: wakes the sockets that may send. */
void gw_events_arrived(struct gateway *gw);

/* redis.c: the links. */
void gw_redis_start(struct gateway *gw);
/* Disconnects both links, the request link after its pending replies
 * (SIGTERM); gw_redis_idle() tells when both are closed. */
void gw_redis_stop(struct gateway *gw);
bool gw_redis_idle(const struct gateway *gw);
/* A socket of gateway.c (struct conn), opaque elsewhere. */
struct gw_sock;
struct gw_call;
/* Called with the reply of a call (NULL: the link went down), call->sock
 * NULL when its connection closed first. Frees the call, or sends it
 * again with gw_call_send. */
typedef void gw_call_fn(struct gateway *gw, struct gw_call *call,
    redisReply *r);
/* A Redis request on behalf of a connection: embed it first in the
 * caller's own struct. */
struct gw_call {
	struct lws_dll2 node;    /* in its socket's calls */
	struct gw_sock *sock;    /* NULL: none, or it closed */
	gw_call_fn *fn;
};
/* Sends a command on shard k's request link; fn gets the reply. Returns
 * 0, or INBOX_EUNAVAIL when the link is down (nothing sent, call still
 * the caller's). */
int gw_call_send(struct gateway *gw, unsigned k, struct gw_call *call,
    struct gw_sock *sock, gw_call_fn *fn, int argc, const char **argv,
    const size_t *lens);
/* A command on shard k's request link whose answer nobody waits for
 * (errors are logged). Returns 0 or INBOX_EUNAVAIL. */
int gw_redis_send(struct gateway *gw, unsigned k, int argc,
    const char **argv);

/* gateway.c: what a deferred answer needs of its socket. */
/* Queues replayed frames, then the result frame (JSON, taken), and wakes
 * the socket. */
void gw_sock_result(struct gw_sock *s, struct gw_frame *replay, char *json);
/* An HTTP answer (JSON, taken). */
void gw_sock_http(struct gw_sock *s, int status, char *json);
struct gw_session_view *gw_sock_view(struct gw_sock *s);
/* The calls in flight for the socket (closing it detaches them). */
struct lws_dll2_owner *gw_sock_calls(struct gw_sock *s);
/* The gateway is ready (/healthz answers 200 and websockets are let in)
 * once the revocations are loaded, or without them when Redis did not
 * answer in time. */
void gw_ready(struct gateway *gw);
/* Answers the socket's pending command cmd_id with an error. */
void gw_sock_cmd_failed(struct gw_sock *s, const char *cmd_id,
    const char *message);

/* static.c: a file of the web root, cached with its gzip form; NULL when
 * missing or too large. Valid until the next call. */
const struct gw_static *gw_static_get(struct gateway *gw, const char *path);
const char *gw_static_body(const struct gw_static *e, bool gz, size_t *len);
const char *gw_static_etag(const struct gw_static *e);
void gw_static_finish(struct gateway *gw);

/* presence.c */
struct gw_agent_socks;
void gw_presence_open(struct gateway *gw, const char *login);
void gw_presence_close(struct gateway *gw, const char *login);
/* How many websockets login has open on this gateway. */
unsigned gw_presence_count(const struct gateway *gw, const char *login);
/* A frame came from one of login's sockets (not away any more). */
void gw_presence_activity(struct gateway *gw, const char *login);
/* gateway.c: relays "login is typing in conversation id" to the other
 * sockets that may see it (a transient event: no seq, not stored). */
void gw_typing(struct gateway *gw, const char *login, uint64_t conv_id,
    const char *connector, const char *assignee);
void gw_presence_start(struct gateway *gw);
void gw_presence_finish(struct gateway *gw);

/* auth.c */
int gw_secret_load(struct gateway *gw);
/* A login token's parts. */
struct gw_token {
	char login[65];
	char nonce[17];          /* the token's id (logout revokes it) */
	char pwtag[17];          /* which password it was given for */
	int64_t expires;
};
/* Writes a token for login (with password hash pwhash) valid until
 * `expires` (ms). */
void gw_token_make(const struct gateway *gw, const char *login,
    const char *pwhash, int64_t expires, char *out, size_t outlen);
/* Checks the signature and expiry only. */
bool gw_token_parse(const struct gateway *gw, const char *token,
    struct gw_token *t);
/* Returns true and fills login (and *t when not NULL) when the token is
 * valid, unexpired, not revoked, and its agent exists with the same
 * password. */
bool gw_token_check(struct gateway *gw, const char *token, char *login,
    size_t loginlen, struct gw_token *t);
/* POST /api/logout: revokes the token (in Redis, until it expires; the
 * other gateways learn it from a token.revoked event) and closes its
 * sockets. Returns true when the answer comes later through
 * gw_sock_http; else sets *status and *json. */
bool gw_logout(struct gateway *gw, struct gw_sock *sock, const char *token,
    int *status, char **json);
/* Loads the revoked tokens from Redis (the request link came up). */
void gw_revocations_load(struct gateway *gw);
/* Notes a revocation (from a token.revoked event) and closes its
 * sockets. */
void gw_revoked_add(struct gateway *gw, const char *nonce, int64_t expires);
void gw_revocations_finish(struct gateway *gw);
void gw_sessions_revoke(struct gateway *gw, const char *nonce);
/* Answers a login request body from address addr: sets *status (429 with
 * *retry_after seconds when too many logins failed for the account or the
 * address) and returns the JSON answer (malloc'd). */
char *gw_login(struct gateway *gw, const char *body, size_t len,
    const char *addr, int *status, int64_t *retry_after);
void gw_login_finish(struct gateway *gw);

/* query.c: answers one websocket request frame; returns the result frame's
 * JSON (malloc'd). `replay` receives frames to send before the result. */
/* What a socket was sent of one shard's events. */
struct gw_pos {
	struct gw_seq first_live, last;
	bool live_sent;
};
struct gw_session_view {
	struct gw_pos *pos;               /* per shard (nshards) */
	unsigned replaying;               /* subscribes reading the stream:
	                                   * live events wait for them */
	const char *login;                /* the agent */
	char role[16];                    /* as the store says at connect */
	char teams[1024];
};
/* Loads the agent's role and teams into view (at connect). */
void gw_view_load(struct gateway *gw, struct gw_session_view *view);
/* May the session see this conversation (inbox_conv_visible)? */
bool gw_view_sees(const struct gateway *gw, const struct gw_session_view *v,
    const char *connector, const char *assignee);
/* May the session see this event frame? (its `to`, the dialog it is
 * about, SLA alerts for supervisors and the assignee) */
bool gw_frame_visible_to(const struct gateway *gw, struct gw_frame *f,
    const struct gw_session_view *v);
/* A command sent for a request, waiting for the router's event. */
struct gw_pending {
	char cmd_id[136];
	char *req;               /* the request's "req" as JSON, malloc'd */
	int64_t since;
};
/* Returns NULL when the answer comes later: a command (pend is filled;
 * its event carries pend->cmd_id) or a Redis read on behalf of `sock`
 * (pend->cmd_id is empty; gw_sock_result delivers it). sock may be NULL
 * (no deferred reads: they are answered "unavailable"). */
char *gw_request(struct gateway *gw, const char *frame, size_t len,
    struct gw_session_view *view, struct gw_sock *sock,
    struct gw_frame **replay, struct gw_pending *pend);
/* The result frame that answers pending request `p` with event frame e
 * (its data, or its error for command.failed). */
struct gw_frame *gw_command_result(const struct gw_pending *p,
    const struct gw_frame *e);
/* Appends a global command (JSON; presence) with nobody waiting for its
 * answer: to shard 0, and as a copy to the others. 0 or INBOX_EUNAVAIL
 * (Redis down). */
int gw_cmd_append(struct gateway *gw, const char *json);
/* Begins a read transaction on shard k's store (opened read-only on
 * first use; shard 0 for global data: agents, templates). Returns 0 or
 * an INBOX_E code (logged when the store cannot be opened). */
int gw_txn(struct gateway *gw, unsigned k, struct store_txn **txn);

#endif
