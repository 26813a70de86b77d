/* The Redis Cluster client: slot table, connections per master and
 * redirections (see cluster.h and the Redis Cluster specification). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "inbox/inbox.h"
#include "inbox/rt/cluster.h"

#define HOST_MAX 256
#define DEFAULT_TIMEOUT_MS 2000
/* Sleep before try n (from 1) after -TRYAGAIN, -CLUSTERDOWN or a
 * connection error: n * BACKOFF_MS (at most 500 ms for one command). */
#define BACKOFF_MS 50

/* A master. The slot table points at these; nodes no slot and no
 * pipelined command points at are freed when the table is rebuilt. */
struct node {
	char host[HOST_MAX];
	int port;
	char name[HOST_MAX + 16];  /* "host:port", "[v6addr]:port" */
	redisContext *c;           /* NULL until needed, or after an error */
	unsigned gen;              /* + 1 each time c is dropped */
	size_t unread;             /* pipelined commands on c, reply unread */
	size_t refs;               /* pipelined commands naming this node */
	bool used;                 /* scratch of prune() */
};

/* A pipelined command (rt_cluster_append_argv) until its reply is read.
 * Its reply is read from n->c while n->gen is still gen; a synchronous
 * command on n->c reads it early into r (drain()). */
struct pending {
	char *cmd;                 /* formatted: redisFormatCommandArgv */
	size_t len;
	uint16_t slot;
	struct node *n;            /* NULL: not sent (no master reachable) */
	unsigned gen;
	bool read;                 /* read early (drain()) into r */
	redisReply *r;
};

struct rt_cluster {
	struct timeval tv;
	char *seeds;
	struct node **nodes;
	size_t nnodes;
	size_t cap;
	struct node **slots;       /* RT_CLUSTER_SLOTS; NULL: owner unknown */
	struct pending *q;         /* the pipeline: q[qhead..qlen) */
	size_t qhead;
	size_t qlen;
	size_t qcap;
};

enum redirect {
	REDIRECT_NONE,             /* an answer or the command's own error */
	REDIRECT_MOVED,
	REDIRECT_ASK,
	REDIRECT_RETRY,            /* -TRYAGAIN, -CLUSTERDOWN */
};

/* CRC16-CCITT as XMODEM computes it (polynomial 0x1021, initial value 0,
 * no reflection, no final xor): the checksum the cluster spec names. */
static uint16_t
crc16(const unsigned char *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) :
			    (uint16_t)(crc << 1);
	}
	return crc;
}

uint16_t
rt_cluster_keyslot(const char *key, size_t len)
{
	const char *open, *close;

	if (len == 0)
		return 0;
	if ((open = memchr(key, '{', len)) != NULL) {
		size_t rest = len - (size_t)(open + 1 - key);

		close = memchr(open + 1, '}', rest);
		if (close != NULL && close > open + 1) {
			key = open + 1;
			len = (size_t)(close - key);
		}
	}
	return crc16((const unsigned char *)key, len) & (RT_CLUSTER_SLOTS - 1);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
	    .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- nodes -------------------------------------------------------------- */

static struct node *
node_find(struct rt_cluster *cl, const char *host, int port)
{
	for (size_t i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->port == port &&
		    strcmp(cl->nodes[i]->host, host) == 0)
			return cl->nodes[i];
	return NULL;
}

/* The node at host:port, added when new. NULL when the host is too long. */
static struct node *
node_get(struct rt_cluster *cl, const char *host, int port)
{
	struct node *n;

	if ((n = node_find(cl, host, port)) != NULL)
		return n;
	if (strlen(host) >= sizeof(n->host))
		return NULL;
	n = xcalloc(1, sizeof(*n));
	memcpy(n->host, host, strlen(host) + 1);
	n->port = port;
	snprintf(n->name, sizeof(n->name), strchr(host, ':') != NULL ?
	    "[%s]:%d" : "%s:%d", host, port);
	if (cl->nnodes == cl->cap) {
		cl->cap = cl->cap ? cl->cap * 2 : 8;
		cl->nodes = xrealloc(cl->nodes, cl->cap * sizeof(*cl->nodes));
	}
	cl->nodes[cl->nnodes++] = n;
	return n;
}

/* Closes n's connection: the replies of commands pipelined on it are
 * lost (their gen no longer matches). */
static void
node_drop(struct node *n)
{
	if (n->c != NULL) {
		redisFree(n->c);
		n->c = NULL;
		n->gen++;
		n->unread = 0;
	}
}

/* n's connection, opened when there is none. NULL with the reason in
 * why. */
static redisContext *
node_conn(struct rt_cluster *cl, struct node *n, char *why, size_t len)
{
	redisContext *c;

	if (n->c != NULL)
		return n->c;
	if ((c = redisConnectWithTimeout(n->host, n->port, cl->tv)) == NULL) {
		snprintf(why, len, "%s: cannot allocate a context", n->name);
		return NULL;
	}
	if (c->err || redisSetTimeout(c, cl->tv) != REDIS_OK) {
		snprintf(why, len, "%s: %s", n->name, c->errstr);
		redisFree(c);
		return NULL;
	}
	n->c = c;
	return c;
}

/* Reads the replies of the commands pipelined on n->c into their queue
 * entries, so that n->c can carry a synchronous command. Returns 0, or -1
 * (n dropped) with the reason in why. */
static int
drain(struct rt_cluster *cl, struct node *n, char *why, size_t len)
{
	for (size_t i = cl->qhead; i < cl->qlen && n->unread > 0; i++) {
		struct pending *e = &cl->q[i];
		void *r = NULL;

		if (e->n != n || e->read || e->gen != n->gen)
			continue;
		if (redisGetReply(n->c, &r) != REDIS_OK) {
			snprintf(why, len, "%s: %s", n->name, n->c->errstr);
			node_drop(n);
			return -1;
		}
		e->r = r;
		e->read = true;
		n->unread--;
	}
	return 0;
}

/* node_conn() for a synchronous command: no pipelined reply left unread
 * on the connection. */
static redisContext *
node_conn_sync(struct rt_cluster *cl, struct node *n, char *why, size_t len)
{
	if (n->c != NULL && n->unread > 0 && drain(cl, n, why, len) != 0)
		return NULL;
	return node_conn(cl, n, why, len);
}

/* Frees the nodes the slot table does not name (after a rebuild or
 * redirections to nodes that own nothing now). */
static void
prune(struct rt_cluster *cl)
{
	size_t kept = 0;

	for (size_t i = 0; i < cl->nnodes; i++)
		cl->nodes[i]->used = false;
	for (size_t s = 0; s < RT_CLUSTER_SLOTS; s++)
		if (cl->slots[s] != NULL)
			cl->slots[s]->used = true;
	for (size_t i = 0; i < cl->nnodes; i++) {
		struct node *n = cl->nodes[i];

		if (n->used || n->refs > 0) {
			cl->nodes[kept++] = n;
			continue;
		}
		node_drop(n);
		free(n);
	}
	cl->nnodes = kept;
}

/* ---- the slot map ------------------------------------------------------- */

static bool
is_int(const redisReply *r, long long lo, long long hi)
{
	return r->type == REDIS_REPLY_INTEGER && r->integer >= lo &&
	    r->integer <= hi;
}

/* Fills table from a CLUSTER SLOTS reply of the node at `asked`: ranges
 * [start, end, [host, port, ...], replicas...]. A NULL or empty host means
 * asked's host; "?" (an unknown endpoint) leaves the range out. Returns
 * the number of slots covered, or -1 with the reason in why (table then
 * partly filled). */
static int
parse_slots(struct rt_cluster *cl, const redisReply *r,
    const struct node *asked, struct node **table, char *why, size_t len)
{
	int covered = 0;

	if (r->type != REDIS_REPLY_ARRAY) {
		snprintf(why, len, "%s: CLUSTER SLOTS: %s", asked->name,
		    r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
		return -1;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i], *m, *h;
		char host[HOST_MAX];
		struct node *n;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    !is_int(e->element[0], 0, RT_CLUSTER_SLOTS - 1) ||
		    !is_int(e->element[1], e->element[0]->integer,
		    RT_CLUSTER_SLOTS - 1) ||
		    (m = e->element[2])->type != REDIS_REPLY_ARRAY ||
		    m->elements < 2 || !is_int(m->element[1], 1, 65535) ||
		    ((h = m->element[0])->type != REDIS_REPLY_STRING &&
		    h->type != REDIS_REPLY_NIL)) {
			snprintf(why, len, "%s: CLUSTER SLOTS: malformed range "
			    "%zu", asked->name, i);
			return -1;
		}
		if (h->type == REDIS_REPLY_NIL || h->len == 0)
			snprintf(host, sizeof(host), "%s", asked->host);
		else if (strcmp(h->str, "?") == 0)
			continue;
		else if (h->len < sizeof(host) &&
		    memchr(h->str, '\0', h->len) == NULL)
			memcpy(host, h->str, h->len + 1);
		else
			host[0] = '\0';
		if (host[0] == '\0' || (n = node_get(cl, host,
		    (int)m->element[1]->integer)) == NULL) {
			snprintf(why, len, "%s: CLUSTER SLOTS: bad host in "
			    "range %zu", asked->name, i);
			return -1;
		}
		for (long long s = e->element[0]->integer;
		    s <= e->element[1]->integer; s++) {
			if (table[s] == NULL)
				covered++;
			table[s] = n;
		}
	}
	if (covered == 0) {
		snprintf(why, len, "%s: CLUSTER SLOTS: no slot assigned",
		    asked->name);
		return -1;
	}
	return covered;
}

/* Asks n for CLUSTER SLOTS and, on a good answer, replaces the table.
 * Returns 0, or -1 with the reason in why. */
static int
refresh_from(struct rt_cluster *cl, struct node *n, char *why, size_t len)
{
	struct node **table;
	redisContext *c;
	redisReply *r;
	int covered;

	if ((c = node_conn_sync(cl, n, why, len)) == NULL)
		return -1;
	if ((r = redisCommand(c, "CLUSTER SLOTS")) == NULL) {
		snprintf(why, len, "%s: %s", n->name, c->errstr);
		node_drop(n);
		return -1;
	}
	table = xcalloc(RT_CLUSTER_SLOTS, sizeof(*table));
	covered = parse_slots(cl, r, n, table, why, len);
	freeReplyObject(r);
	if (covered < 0) {
		free(table);
		return -1;
	}
	free(cl->slots);
	cl->slots = table;
	log_debug("redis cluster: map from %s: %d slots", n->name, covered);
	return 0;
}

/* Re-reads the slot map: from the masters with an open connection first,
 * then the other masters, then the seeds. Frees the nodes the new table
 * does not name. Returns 0, or INBOX_EUNAVAIL with the last reason in
 * why. */
static int
refresh(struct rt_cluster *cl, char *why, size_t len)
{
	struct addr {
		char host[HOST_MAX];
		int port;
	} *cand;
	size_t ncand = 0, nseeds = 0, max;
	char host[HOST_MAX];
	int port, rc = INBOX_EUNAVAIL;

	while (inbox_hostport_nth(cl->seeds, nseeds, host, sizeof(host),
	    &port) == 1)
		nseeds++;
	max = cl->nnodes + nseeds;
	cand = xcalloc(max ? max : 1, sizeof(*cand));
	/* Connected nodes, then the others (those that just failed), then
	 * the seeds that are not nodes already. The addresses are copied:
	 * each try may add nodes. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < cl->nnodes; i++) {
			struct node *n = cl->nodes[i];

			if ((n->c != NULL) != (pass == 0))
				continue;
			memcpy(cand[ncand].host, n->host, sizeof(n->host));
			cand[ncand++].port = n->port;
		}
	for (size_t i = 0; i < nseeds; i++) {
		bool dup = false;

		if (inbox_hostport_nth(cl->seeds, i, host, sizeof(host),
		    &port) != 1)
			continue;
		for (size_t j = 0; j < ncand && !dup; j++)
			dup = cand[j].port == port && strcmp(cand[j].host,
			    host) == 0;
		if (dup)
			continue;
		memcpy(cand[ncand].host, host, sizeof(host));
		cand[ncand++].port = port;
	}
	snprintf(why, len, "no master or seed known");
	for (size_t i = 0; i < ncand; i++) {
		struct node *n = node_get(cl, cand[i].host, cand[i].port);

		if (n == NULL)
			continue;
		if (refresh_from(cl, n, why, len) == 0) {
			rc = 0;
			break;
		}
		log_debug("redis cluster: %s", why);
	}
	free(cand);
	prune(cl);
	return rc;
}

struct rt_cluster *
rt_cluster_open(const char *seeds, int timeout_ms)
{
	struct rt_cluster *cl;
	char host[HOST_MAX], why[512];
	size_t n = 0;
	int port, got = 0;

	while (seeds != NULL && (got = inbox_hostport_nth(seeds, n, host,
	    sizeof(host), &port)) == 1)
		n++;
	if (got < 0 || n == 0) {
		log_warnx("redis cluster: seeds '%s': %s", seeds != NULL ?
		    seeds : "", got < 0 ? "an item is not host:port" :
		    "no host:port");
		return NULL;
	}
	if (timeout_ms <= 0)
		timeout_ms = DEFAULT_TIMEOUT_MS;
	cl = xcalloc(1, sizeof(*cl));
	cl->tv.tv_sec = timeout_ms / 1000;
	cl->tv.tv_usec = (timeout_ms % 1000) * 1000;
	cl->seeds = xstrdup(seeds);
	cl->slots = xcalloc(RT_CLUSTER_SLOTS, sizeof(*cl->slots));
	if (refresh(cl, why, sizeof(why)) != 0) {
		log_warnx("redis cluster: no seed of '%s' gave a slot map "
		    "(last: %s)", seeds, why);
		rt_cluster_close(cl);
		return NULL;
	}
	log_info("redis cluster: %zu masters (seeds %s)", cl->nnodes, seeds);
	return cl;
}

void
rt_cluster_close(struct rt_cluster *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->nnodes; i++) {
		node_drop(cl->nodes[i]);
		free(cl->nodes[i]);
	}
	for (size_t i = cl->qhead; i < cl->qlen; i++) {
		redisFreeCommand(cl->q[i].cmd);
		if (cl->q[i].r != NULL)
			freeReplyObject(cl->q[i].r);
	}
	free(cl->q);
	free(cl->nodes);
	free(cl->slots);
	free(cl->seeds);
	free(cl);
}

const char *
rt_cluster_node_of(struct rt_cluster *cl, uint16_t slot)
{
	if (slot >= RT_CLUSTER_SLOTS || cl->slots[slot] == NULL)
		return NULL;
	return cl->slots[slot]->name;
}

/* ---- commands ----------------------------------------------------------- */

/* Classifies an error reply. For MOVED and ASK, fills *slot and the
 * target's address (an empty host is the host of `from`, as Redis 7 says
 * for an unknown endpoint). A malformed redirection counts as the command's
 * own error. */
static enum redirect
redirect_of(const redisReply *r, const struct node *from, int *slot,
    char *host, size_t hostlen, int *port)
{
	enum redirect kind;
	const char *p, *colon;
	char *end;
	long v;
	size_t hl;

	if (r->type != REDIS_REPLY_ERROR)
		return REDIRECT_NONE;
	if (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
	    strncmp(r->str, "CLUSTERDOWN", 11) == 0)
		return REDIRECT_RETRY;
	if (strncmp(r->str, "MOVED ", 6) == 0) {
		kind = REDIRECT_MOVED;
		p = r->str + 6;
	} else if (strncmp(r->str, "ASK ", 4) == 0) {
		kind = REDIRECT_ASK;
		p = r->str + 4;
	} else
		return REDIRECT_NONE;
	errno = 0;
	v = strtol(p, &end, 10);
	if (end == p || *end != ' ' || errno != 0 || v < 0 ||
	    v >= RT_CLUSTER_SLOTS)
		return REDIRECT_NONE;
	*slot = (int)v;
	p = end + 1;
	/* host:port, the host possibly an IPv6 address: the last colon */
	if ((colon = strrchr(p, ':')) == NULL)
		return REDIRECT_NONE;
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || errno != 0 || v < 1 ||
	    v > 65535)
		return REDIRECT_NONE;
	*port = (int)v;
	hl = (size_t)(colon - p);
	if (hl >= 2 && p[0] == '[' && p[hl - 1] == ']') {
		p++;
		hl -= 2;
	}
	if (hl == 0)
		snprintf(host, hostlen, "%s", from->host);
	else if (hl >= hostlen)
		return REDIRECT_NONE;
	else {
		memcpy(host, p, hl);
		host[hl] = '\0';
	}
	return kind;
}

/* Sends the formatted command on c, after ASKING when asking. NULL when
 * the connection failed (c->err says why). */
static redisReply *
send_command(redisContext *c, bool asking, const char *cmd, size_t len)
{
	void *a = NULL, *r = NULL;

	if (asking && redisAppendCommand(c, "ASKING") != REDIS_OK)
		return NULL;
	if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK)
		return NULL;
	if (asking) {
		if (redisGetReply(c, &a) != REDIS_OK)
			return NULL;
		/* +OK; were it an error, the command's reply would show it */
		freeReplyObject(a);
	}
	if (redisGetReply(c, &r) != REDIS_OK)
		return NULL;
	return r;
}

/* The owner of slot, after a refresh when none is known; else any node
 * (its answer redirects). NULL when no node is known at all. */
static struct node *
owner(struct rt_cluster *cl, uint16_t slot, char *why, size_t len)
{
	if (cl->slots[slot] == NULL)
		(void)refresh(cl, why, len);
	if (cl->slots[slot] != NULL)
		return cl->slots[slot];
	for (size_t i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->c != NULL)
			return cl->nodes[i];
	return cl->nnodes > 0 ? cl->nodes[0] : NULL;
}

/* After a try that got r from *np (NULL: the connection failed, the
 * reason in why): returns true when r is the answer; otherwise sets *np
 * (NULL: the slot's owner), *asking and *pause for the next try. */
static bool
next_try(struct rt_cluster *cl, uint16_t slot, const redisReply *r,
    const char *why, struct node **np, bool *asking, bool *pause)
{
	char rwhy[512], host[HOST_MAX];
	enum redirect kind;
	int rslot = 0, port = 0;

	*asking = *pause = false;
	if (r == NULL) {
		/* the map may have changed (a failover) */
		log_debug("redis cluster: slot %u: %s", slot, why);
		if (refresh(cl, rwhy, sizeof(rwhy)) != 0)
			log_debug("redis cluster: no map: %s", rwhy);
		*np = NULL;
		*pause = true;
		return false;
	}
	if ((kind = redirect_of(r, *np, &rslot, host, sizeof(host), &port)) ==
	    REDIRECT_NONE)
		return true;
	log_debug("redis cluster: slot %u: %s (from %s)", slot, r->str,
	    (*np)->name);
	switch (kind) {
	case REDIRECT_MOVED:
		/* The whole map has probably changed (resharding, failover),
		 * but the node asked may not know it yet: the redirection has
		 * the last word on its slot. */
		if (refresh(cl, rwhy, sizeof(rwhy)) != 0)
			log_debug("redis cluster: no map: %s", rwhy);
		if ((*np = node_get(cl, host, port)) != NULL)
			cl->slots[rslot] = *np;
		break;
	case REDIRECT_ASK:
		*np = node_get(cl, host, port);
		*asking = *np != NULL;
		break;
	default:
		*pause = true;
		break;
	}
	return false;
}

/* Runs the formatted command cmd[0..len) of slot to an answer, following
 * redirections and retrying after connection errors, RT_CLUSTER_TRIES
 * sends at most. When tried, it was sent once already (pipelined) to n and
 * r is what came back (NULL: the connection failed, the reason in why).
 * Returns the last reply or NULL (see rt_cluster_command_argv). */
static redisReply *
follow(struct rt_cluster *cl, uint16_t slot, const char *cmd, size_t len,
    bool tried, struct node *n, redisReply *r, char *why, size_t whylen)
{
	int tries = tried ? 1 : 0;
	bool asking = false, pause;
	redisContext *c;

	for (;;) {
		if (tried) {
			if (next_try(cl, slot, r, why, &n, &asking, &pause))
				return r;
			if (tries >= RT_CLUSTER_TRIES)
				break;
			if (r != NULL) {
				freeReplyObject(r);
				r = NULL;
			}
			if (pause)
				sleep_ms(BACKOFF_MS * tries);
		}
		tried = true;
		tries++;
		if (n == NULL && (n = owner(cl, slot, why, whylen)) == NULL)
			break;
		if ((c = node_conn_sync(cl, n, why, whylen)) != NULL &&
		    (r = send_command(c, asking, cmd, len)) == NULL) {
			snprintf(why, whylen, "%s: %s", n->name, c->errstr);
			node_drop(n);
		}
	}
	if (r == NULL)
		log_warnx("redis cluster: slot %u: no answer after %d tries "
		    "(last: %s)", slot, tries, why[0] ? why :
		    "no master known");
	else
		log_warnx("redis cluster: slot %u: gave up after %d tries: %s",
		    slot, tries, r->str);
	return r;
}

/* The command formatted for the wire; the caller frees it with
 * redisFreeCommand. */
static char *
format_argv(int argc, const char **argv, const size_t *argvlen, size_t *len)
{
	char *cmd = NULL;
	int n = redisFormatCommandArgv(&cmd, argc, argv, argvlen);

	if (n < 0 || cmd == NULL)
		fatalx("redis cluster: cannot format a command: out of memory");
	*len = (size_t)n;
	return cmd;
}

redisReply *
rt_cluster_command_argv(struct rt_cluster *cl, const char *key, size_t keylen,
    int argc, const char **argv, const size_t *argvlen)
{
	char why[512] = "";
	size_t len;
	char *cmd = format_argv(argc, argv, argvlen, &len);
	redisReply *r = follow(cl, rt_cluster_keyslot(key, keylen), cmd, len,
	    false, NULL, NULL, why, sizeof(why));

	redisFreeCommand(cmd);
	return r;
}

/* ---- the pipeline ------------------------------------------------------- */

void
rt_cluster_append_argv(struct rt_cluster *cl, const char *key, size_t keylen,
    int argc, const char **argv, const size_t *argvlen)
{
	struct pending *e;
	struct node *n;
	char why[512] = "";

	if (cl->qhead == cl->qlen)
		cl->qhead = cl->qlen = 0;
	else if (cl->qhead > 0 && cl->qlen == cl->qcap) {
		memmove(cl->q, cl->q + cl->qhead, (cl->qlen - cl->qhead) *
		    sizeof(*cl->q));
		cl->qlen -= cl->qhead;
		cl->qhead = 0;
	}
	if (cl->qlen == cl->qcap) {
		cl->qcap = cl->qcap ? cl->qcap * 2 : 16;
		cl->q = xrealloc(cl->q, cl->qcap * sizeof(*cl->q));
	}
	e = &cl->q[cl->qlen++];
	memset(e, 0, sizeof(*e));
	e->cmd = format_argv(argc, argv, argvlen, &e->len);
	e->slot = rt_cluster_keyslot(key, keylen);
	if ((n = owner(cl, e->slot, why, sizeof(why))) == NULL ||
	    node_conn(cl, n, why, sizeof(why)) == NULL) {
		/* rt_cluster_get_reply sends it */
		log_debug("redis cluster: slot %u: not pipelined: %s", e->slot,
		    why[0] ? why : "no master known");
		return;
	}
	if (redisAppendFormattedCommand(n->c, e->cmd, e->len) != REDIS_OK) {
		log_debug("redis cluster: slot %u: not pipelined: %s: %s",
		    e->slot, n->name, n->c->errstr);
		node_drop(n);
		return;
	}
	e->n = n;
	e->gen = n->gen;
	n->refs++;
	n->unread++;
}

int
rt_cluster_get_reply(struct rt_cluster *cl, redisReply **reply)
{
	struct pending e;
	struct node *n;
	void *r = NULL;
	char why[512] = "";

	*reply = NULL;
	if (cl->qhead == cl->qlen)
		return INBOX_ESTATE;
	e = cl->q[cl->qhead++];
	if ((n = e.n) != NULL) {
		if (e.read)
			r = e.r;
		else if (n->c != NULL && e.gen == n->gen) {
			if (redisGetReply(n->c, &r) != REDIS_OK) {
				snprintf(why, sizeof(why), "%s: %s", n->name,
				    n->c->errstr);
				node_drop(n);
				r = NULL;
			} else
				n->unread--;
		} else
			snprintf(why, sizeof(why), "%s: connection lost",
			    n->name);
		if (r == NULL)
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
			    " (the command may have run)");
	}
	/* n stays allocated (refs) while follow() reads the first reply */
	*reply = follow(cl, e.slot, e.cmd, e.len, n != NULL, n, r, why,
	    sizeof(why));
	if (n != NULL)
		n->refs--;
	redisFreeCommand(e.cmd);
	return *reply != NULL ? 0 : INBOX_EUNAVAIL;
}
