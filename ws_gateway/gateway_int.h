/* The gateway's private parts. */
#ifndef INBOX_WS_GATEWAY_GATEWAY_INT_H
#define INBOX_WS_GATEWAY_GATEWAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
	char to[65];             /* events for one agent: its login; else "" */
	char cmd_id[136];        /* events that answer a command; else "" */
	char name[48];           /* event name; "" for results */
	/* what the event is about, read from its data on first use by the
	 * service thread: scope 0 unknown, 1 none (for everyone), 2 a
	 * dialog (connector, assignee) */
	int scope;
	char connector[65];
	char assignee[65];
	size_t len;
	unsigned char buf[];     /* LWS_PRE + len (+1 for a NUL) */
};

/* The events the reader thread hands over, and the ring sessions read. */
struct gw_ring {
	struct gw_frame **slots;
	size_t size;
	uint64_t head;           /* frames ever inserted */
};

struct gateway {
	const struct inbox_config *cfg;
	struct lws_context *lws;
	struct store *store;     /* opened on first use, read-only */
	redisContext *redis;     /* the service thread's own (subscribe) */
	char k_events[128], k_cmd[128];
	char cmd_prefix[64];     /* cmd_ids are <prefix>.<n> */
	uint64_t cmd_seq;
	unsigned char secret[32];
	struct rt_lws_stop stop;

	struct gw_ring ring;

	struct lws_dll2_owner sessions;  /* every open websocket */
	struct inbox_config **reloaded;  /* configs read on SIGHUP (owned) */
	size_t nreloaded;
	/* counters for /metrics (service thread) */
	uint64_t m_frames, m_bytes, m_cut, m_logins_ok, m_logins_failed,
	    m_logins_limited, m_requests;
	struct gw_static **statics;      /* the web client's files */
	size_t nstatic;
	struct gw_login_fail *fails;     /* login rate limits (auth.c) */
	size_t nfails;

	/* presence: open sockets per agent (presence.c) */
	struct gw_agent_socks *socks;
	size_t nsocks;
	lws_sorted_usec_list_t presence_sul;

	/* reader thread */
	pthread_t reader;
	bool reader_started;
	atomic_bool reader_stop;
	pthread_mutex_t lock;    /* guards staged */
	struct gw_frame *staged, *staged_tail;
	char start_id[64];       /* where the reader starts */
};

/* events.c */
bool gw_seq_parse(const char *s, struct gw_seq *out);
int gw_seq_cmp(struct gw_seq a, struct gw_seq b);
struct gw_frame *gw_frame_new(const char *data, size_t len);
/* Builds the push frame of one stream entry. */
struct gw_frame *gw_event_frame(const char *id, const char *event,
    const char *data, const char *to, const char *cmd_id);
/* Whether an event frame may go to the agent `login`. */
bool gw_frame_visible(const struct gw_frame *f, const char *login);
int gw_reader_start(struct gateway *gw);
void gw_reader_stop(struct gateway *gw);
/* Moves staged frames into the ring; returns how many. */
size_t gw_ring_take_staged(struct gateway *gw);
void gw_ring_finish(struct gw_ring *ring);

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
/* POST /api/logout: revokes the token (in Redis, until it expires) and
 * closes its sockets. Sets *status; returns the JSON answer. */
char *gw_logout(struct gateway *gw, const char *token, int *status);
/* gateway.c: closes the sockets opened with the token `nonce`. */
void gw_sessions_revoke(struct gateway *gw, const char *nonce);
/* Answers a login request body from address addr: sets *status (429 with
 * *retry_after seconds when too many logins failed for the account or the
 * address) and returns the JSON answer (malloc'd). */
char *gw_login(struct gateway *gw, const char *body, size_t len,
    const char *addr, int *status, int64_t *retry_after);
void gw_login_finish(struct gateway *gw);

/* query.c: answers one websocket request frame; returns the result frame's
 * JSON (malloc'd). `replay` receives frames to send before the result. */
struct gw_session_view {
	struct gw_seq first_live, last;   /* what the socket was sent */
	bool live_sent;
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
/* Returns NULL when the request became a command: pend is filled and the
 * answer comes with the event that carries pend->cmd_id. */
char *gw_request(struct gateway *gw, const char *frame, size_t len,
    struct gw_session_view *view, struct gw_frame **replay,
    struct gw_pending *pend);
/* The result frame that answers pending request `p` with event frame e
 * (its data, or its error for command.failed). */
struct gw_frame *gw_command_result(const struct gw_pending *p,
    const struct gw_frame *e);
/* Appends a command (JSON) to inbox:cmd: 0, INBOX_EUNAVAIL (Redis down) or
 * INBOX_EIO (refused). */
int gw_cmd_append(struct gateway *gw, const char *json);
/* Opens the store read-only if needed; returns 0 or an INBOX_E code. */
int gw_store(struct gateway *gw);

#endif
