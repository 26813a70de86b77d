/*
 * inbox-bench-ws: C concurrent authenticated websockets on one inbox-gateway,
 * then events fanned out to all of them.
 *
 *  1. setup: A agents (ws00001...) are created through the router: the bench
 *     XADDs agent.add (a libsodium hash with MIN limits, so that logins are
 *     cheap) and agent.update (teams) to inbox:cmd and waits for the
 *     router's answering events. Each agent logs in (POST /api/login).
 *  2. connect: C websockets /ws?token=..., socket i as agent i % A, with at
 *     most --inflight handshakes at a time; one epoll loop, raw sockets, a
 *     minimal RFC 6455 reader (pings are answered). The gateway's VmRSS is
 *     read before the first and after the last handshake.
 *  3. singles: S events one at a time, each when every socket has the one
 *     before: the latency of one isolated sweep over C sockets.
 *  4. burst: B events XADDed at once (one pipelined write): the delivery
 *     rate (events x sockets / time from the first XADD to the last
 *     receipt) and the latency of each receipt.
 *
 * Events are XADDed straight to inbox:events in the router's format
 * (fields event, data; MAXLEN ~), so the figures are the gateway's alone;
 * the send time (CLOCK_MONOTONIC, this process) is the data's first member
 * "bench_t", taken just before the XADD is queued. Each event is a
 * conversation.updated of about --size bytes about a dialog of connector
 * --connector, so the gateway applies its visibility rule for every socket.
 *
 * Usage: inbox-bench-ws --gateway HOST:PORT --redis HOST:PORT [options]
 * (see usage() below).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <sodium.h>

#include "bench_ws.h"

#define BENCH_PASSWORD "benchpw"
#define RBUF_SIZE (256 * 1024)
#define PIDS_MAX 8

enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED,
	C_FAILED };

struct client {
	int fd;
	uint8_t state;
	uint16_t agent;
	uint16_t close_code;
	uint32_t sent;           /* handshake bytes written */
	uint32_t got;            /* bench events received */
	int64_t next_i;          /* the bench_i expected next */
	uint32_t gaps;           /* events missed or out of order */
	unsigned char *part;     /* bytes of an incomplete frame (or header) */
	uint32_t plen, pcap;
};

struct lat {
	uint32_t *v;             /* µs */
	size_t n, cap;
};

struct proc {
	const char *name;
	int pid;
	double user0, sys0;
};

struct bench {
	/* options */
	char ghost[64], rhost[64], prefix[64], role[16], team[64];
	char connector[65];
	int gport, rport;
	int nclients, nagents, inflight, singles, burst, size;
	int gw_pid;
	struct proc procs[PIDS_MAX];
	int nprocs;
	bool setup;

	/* state */
	redisContext *redis;
	char k_events[96], k_cmd[96];
	char **tokens;
	struct client *c;
	int ep;
	unsigned char *rbuf;
	struct lat *lat;         /* where receipts go now */
	int64_t base_i;          /* bench_i of the first event of this run */
	uint64_t last_rx_us;     /* time of the last bench receipt */
	size_t target;           /* receipts each open socket should have */
	size_t nopen, nfailed, nclosed, other;
	char fail_why[8][160];
	size_t fail_n[8], nwhy;
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL) {
		fprintf(stderr, "out of memory\n");
		abort();
	}
	return p;
}

static void
lat_add(struct lat *l, uint64_t us)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const struct lat *l, double p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)l->n);
	if (i >= l->n)
		i = l->n - 1;
	return l->v[i] / 1000.0;
}

static void
lat_print(const char *what, struct lat *l)
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
	printf("%s latency XADD -> receipt (%zu receipts), ms: p50 %.2f  "
	    "p99 %.2f  p99.9 %.2f  max %.2f\n", what, l->n, pct(l, 50),
	    pct(l, 99), pct(l, 99.9), l->n ? l->v[l->n - 1] / 1000.0 : 0.0);
}

/* user and system seconds of a process, from /proc/PID/stat; -1 if gone */
static int
proc_cpu(int pid, double *user, double *sys)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	double tick = (double)sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	*user = *sys = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		return -1;
	*user = (double)ut / tick;
	*sys = (double)st / tick;
	return 0;
}

/* a field of /proc/PID/status in kB ("VmRSS:"), or -1 */
static long
proc_kb(int pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0) {
			kb = strtol(line + strlen(field), NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static void
note_fail(struct bench *b, const char *why)
{
	size_t i;

	b->nfailed++;
	for (i = 0; i < b->nwhy; i++)
		if (strcmp(b->fail_why[i], why) == 0) {
			b->fail_n[i]++;
			return;
		}
	if (b->nwhy < 8) {
		snprintf(b->fail_why[b->nwhy], sizeof(b->fail_why[0]), "%s", why);
		b->fail_n[b->nwhy++] = 1;
	}
}

/* ---- setup: agents through the router, logins through the gateway ------- */

static int
setup_agents(struct bench *b)
{
	char hash[crypto_pwhash_STRBYTES], last[64] = "0-0", prefix[32];
	redisReply *r;
	int want = 0, answered = 0;
	uint64_t deadline;

	if (crypto_pwhash_str(hash, BENCH_PASSWORD, strlen(BENCH_PASSWORD),
	    crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN) != 0) {
		fprintf(stderr, "crypto_pwhash_str failed\n");
		return -1;
	}
	r = redisCommand(b->redis, "XREVRANGE %s + - COUNT 1", b->k_events);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
		snprintf(last, sizeof(last), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	snprintf(prefix, sizeof(prefix), "wsbench%ld.", (long)getpid());
	for (int i = 0; i < b->nagents; i++) {
		char cmd[1024], login[32];

		snprintf(login, sizeof(login), "ws%05d", i + 1);
		snprintf(cmd, sizeof(cmd), "{\"v\":1,\"type\":\"agent.add\","
		    "\"cmd_id\":\"%sa%d\",\"login\":\"%s\",\"name\":\"Bench %d\","
		    "\"role\":\"%s\",\"pwhash\":\"%s\"}", prefix, i, login, i + 1,
		    b->role, hash);
		redisAppendCommand(b->redis, "XADD %s * cmd %s", b->k_cmd, cmd);
		want++;
		if (b->team[0] != '\0') {
			snprintf(cmd, sizeof(cmd), "{\"v\":1,\"type\":"
			    "\"agent.update\",\"cmd_id\":\"%su%d\",\"login\":"
			    "\"%s\",\"teams\":\"%s\"}", prefix, i, login, b->team);
			redisAppendCommand(b->redis, "XADD %s * cmd %s", b->k_cmd,
			    cmd);
			want++;
		}
	}
	for (int i = 0; i < want; i++) {
		if (redisGetReply(b->redis, (void **)&r) != REDIS_OK ||
		    r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "XADD %s failed\n", b->k_cmd);
			return -1;
		}
		freeReplyObject(r);
	}
	/* wait for the router's answers (events carrying our cmd_ids) */
	deadline = now_us() + 120 * 1000000ull;
	while (answered < want && now_us() < deadline) {
		r = redisCommand(b->redis, "XREAD COUNT 1000 BLOCK 1000 STREAMS "
		    "%s %s", b->k_events, last);
		if (r == NULL) {
			fprintf(stderr, "XREAD: %s\n", b->redis->errstr);
			return -1;
		}
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			redisReply *es = r->element[0]->element[1];

			for (size_t i = 0; i < es->elements; i++) {
				redisReply *f = es->element[i]->element[1];
				const char *ev = NULL, *id = NULL, *data = NULL;

				snprintf(last, sizeof(last), "%s",
				    es->element[i]->element[0]->str);
				for (size_t j = 0; j + 1 < f->elements; j += 2) {
					if (strcmp(f->element[j]->str, "cmd_id") == 0)
						id = f->element[j + 1]->str;
					else if (strcmp(f->element[j]->str,
					    "event") == 0)
						ev = f->element[j + 1]->str;
					else if (strcmp(f->element[j]->str,
					    "data") == 0)
						data = f->element[j + 1]->str;
				}
				if (id == NULL || strncmp(id, prefix,
				    strlen(prefix)) != 0)
					continue;
				if (ev != NULL && strcmp(ev, "command.failed") == 0)
					fprintf(stderr, "router refused %s: %s\n",
					    id, data ? data : "");
				answered++;
			}
		}
		freeReplyObject(r);
	}
	if (answered < want) {
		fprintf(stderr, "the router answered %d of %d agent commands "
		    "in 120 s\n", answered, want);
		return -1;
	}
	return 0;
}

/* Connects a blocking TCP socket; -1 on failure. */
static int
tcp_connect(const char *host, int port, bool nonblock)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0),
	    0);

	if (fd < 0)
		return -1;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    !(nonblock && errno == EINPROGRESS))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* POST /api/login for ws<i>; returns the token (malloc'd) or NULL. */
static char *
login(struct bench *b, int i)
{
	char body[128], req[512], *resp = NULL, *tok = NULL;
	size_t len = 0, cap = 0;
	const char *json;
	cJSON *o;
	int fd;

	snprintf(body, sizeof(body), "{\"login\":\"ws%05d\",\"password\":\"%s\"}",
	    i + 1, BENCH_PASSWORD);
	snprintf(req, sizeof(req), "POST /api/login HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", b->ghost, b->gport, strlen(body),
	    body);
	if ((fd = tcp_connect(b->ghost, b->gport, false)) < 0)
		return NULL;
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			resp = xrealloc(resp, cap);
		}
		if ((n = read(fd, resp + len, cap - len - 1)) <= 0)
			break;
		len += (size_t)n;
	}
	if (resp == NULL)
		goto out;
	resp[len] = '\0';
	if (strncmp(resp, "HTTP/1.1 200", 12) != 0 ||
	    (json = strstr(resp, "\r\n\r\n")) == NULL) {
		fprintf(stderr, "login ws%05d: %.80s\n", i + 1, resp);
		goto out;
	}
	if ((o = cJSON_Parse(json + 4)) != NULL) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "token");

		if (cJSON_IsString(t))
			tok = strdup(t->valuestring);
		cJSON_Delete(o);
	}
out:
	free(resp);
	close(fd);
	return tok;
}

/* ---- the websocket clients ------------------------------------------ */

static int
handshake_req(const struct bench *b, const struct client *c, char *out,
    size_t len)
{
	return snprintf(out, len, "GET /ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: aW5ib3hkLWJlbmNoLWtleQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", b->tokens[c->agent],
	    b->ghost, b->gport);
}

static void
client_close(struct bench *b, struct client *c, enum cstate st,
    const char *why)
{
	if (c->state == C_OPEN)
		b->nopen--;
	if (st == C_FAILED)
		note_fail(b, why);
	else
		b->nclosed++;
	c->state = (uint8_t)st;
	if (c->fd >= 0) {
		epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free(c->part);
	c->part = NULL;
	c->plen = c->pcap = 0;
}

static void
client_start(struct bench *b, size_t idx)
{
	struct client *c = &b->c[idx];
	struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = idx };

	c->state = C_CONNECTING;
	c->next_i = -1;
	if ((c->fd = tcp_connect(b->ghost, b->gport, true)) < 0) {
		char why[160];

		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		c->state = C_IDLE;
		client_close(b, c, C_FAILED, why);
		return;
	}
	epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Sends a pong (masked, as a client must) for a ping's payload. */
static void
send_pong(struct client *c, const unsigned char *p, size_t n)
{
	unsigned char f[6 + 125];
	static const unsigned char mask[4] = { 0x5a, 0x17, 0xc3, 0x2e };

	if (n > 125)
		n = 125;
	f[0] = 0x8a;
	f[1] = 0x80 | (unsigned char)n;
	memcpy(f + 2, mask, 4);
	for (size_t i = 0; i < n; i++)
		f[6 + i] = p[i] ^ mask[i & 3];
	if (write(c->fd, f, 6 + n) < 0)
		return;          /* the close comes by read */
}

static uint64_t
num_after(const unsigned char *p, size_t n, const char *key, bool *ok)
{
	size_t kl = strlen(key);
	const unsigned char *q = memmem(p, n, key, kl), *end = p + n;
	uint64_t v = 0;

	*ok = false;
	if (q == NULL)
		return 0;
	for (q += kl; q < end && *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (uint64_t)(*q - '0');
		*ok = true;
	}
	return v;
}

/* Handles the whole frames of p[0..n); returns the bytes consumed, or -1
 * when the socket was closed. */
static ssize_t
frames(struct bench *b, struct client *c, unsigned char *p, size_t n,
    uint64_t now)
{
	size_t off = 0;

	while (n - off >= 2) {
		unsigned char *f = p + off;
		size_t hdr;
		uint64_t plen;
		int op = bench_ws_frame(f, n - off, &hdr, &plen);

		if (op < 0)
			break;
		if (op == 1 || op == 0) {
			/* the bench fields are at the start of the data */
			size_t look = plen < 256 ? plen : 256;
			bool ok1, ok2;
			uint64_t t = num_after(f + hdr, look, "\"bench_t\":", &ok1);
			uint64_t i = num_after(f + hdr, look, "\"bench_i\":", &ok2);

			if (ok1 && ok2 && (int64_t)i >= b->base_i) {
				lat_add(b->lat, now > t ? now - t : 0);
				if (c->next_i >= 0 && (int64_t)i != c->next_i)
					c->gaps++;
				c->next_i = (int64_t)i + 1;
				c->got++;
				b->last_rx_us = now;
			} else {
				b->other++;
			}
		} else if (op == 8) {
			c->close_code = plen >= 2 ? (uint16_t)(f[hdr] << 8 |
			    f[hdr + 1]) : 1005;
			client_close(b, c, C_CLOSED, NULL);
			return -1;
		} else if (op == 9) {
			send_pong(c, f + hdr, plen);
		}
		off += hdr + plen;
	}
	return (ssize_t)off;
}

static void
keep_part(struct client *c, const unsigned char *p, size_t n)
{
	if (n > c->pcap) {
		c->pcap = (uint32_t)(n < 1024 ? 1024 : n);
		c->part = xrealloc(c->part, c->pcap);
	}
	memmove(c->part, p, n);
	c->plen = (uint32_t)n;
}

static void
on_readable(struct bench *b, struct client *c)
{
	for (;;) {
		size_t have = c->plen;
		ssize_t n, used;
		uint64_t now;

		memcpy(b->rbuf, c->part, have);
		n = read(c->fd, b->rbuf + have, RBUF_SIZE - have);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			char why[160];

			snprintf(why, sizeof(why), "%s %s", c->state == C_OPEN ?
			    "dropped:" : "handshake:", n == 0 ? "EOF" :
			    strerror(errno));
			client_close(b, c, c->state == C_OPEN ? C_CLOSED :
			    C_FAILED, why);
			return;
		}
		now = now_us();
		have += (size_t)n;
		if (c->state == C_HANDSHAKE) {
			unsigned char *e = memmem(b->rbuf, have, "\r\n\r\n", 4);

			if (e == NULL) {
				if (have > 4096)
					client_close(b, c, C_FAILED,
					    "handshake: answer too long");
				else
					keep_part(c, b->rbuf, have);
				continue;
			}
			if (have < 12 || memcmp(b->rbuf, "HTTP/1.1 101", 12) != 0) {
				char why[160];

				snprintf(why, sizeof(why), "refused: %.*s",
				    (int)strcspn((char *)b->rbuf, "\r\n"),
				    (char *)b->rbuf);
				client_close(b, c, C_FAILED, why);
				return;
			}
			c->state = C_OPEN;
			b->nopen++;
			e += 4;
			have -= (size_t)(e - b->rbuf);
			memmove(b->rbuf, e, have);
		}
		used = frames(b, c, b->rbuf, have, now);
		if (used < 0)
			return;
		keep_part(c, b->rbuf + used, have - (size_t)used);
		if ((size_t)n < RBUF_SIZE - c->plen - 1)
			return;          /* read all there was */
	}
}

static void
on_writable(struct bench *b, size_t idx)
{
	struct client *c = &b->c[idx];
	char req[1024];
	int err = 0, len;
	socklen_t el = sizeof(err);
	ssize_t n;

	if (c->state == C_CONNECTING) {
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			char why[160];

			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			client_close(b, c, C_FAILED, why);
			return;
		}
		c->state = C_HANDSHAKE;
	}
	len = handshake_req(b, c, req, sizeof(req));
	n = write(c->fd, req + c->sent, (size_t)len - c->sent);
	if (n < 0) {
		if (errno != EAGAIN)
			client_close(b, c, C_FAILED, "handshake: write failed");
		return;
	}
	c->sent += (uint32_t)n;
	if (c->sent == (uint32_t)len) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = idx };

		epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

/* Runs the loop for up to ms milliseconds (or until done(b) says so). */
static void
pump(struct bench *b, int ms, bool (*done)(struct bench *))
{
	struct epoll_event evs[512];
	uint64_t end = now_us() + (uint64_t)ms * 1000;

	while (!(done != NULL && done(b))) {
		uint64_t now = now_us();
		int n, wait;

		if (now >= end)
			break;
		wait = (int)((end - now) / 1000) + 1;
		n = epoll_wait(b->ep, evs, 512, wait > 100 ? 100 : wait);
		for (int i = 0; i < n; i++) {
			size_t idx = (size_t)evs[i].data.u64;
			struct client *c = &b->c[idx];

			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				on_writable(b, idx);
			else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(b, c);
		}
	}
}

/* ---- phases ---------------------------------------------------------- */

static bool
all_have(struct bench *b)
{
	for (int i = 0; i < b->nclients; i++)
		if (b->c[i].state == C_OPEN && b->c[i].got < b->target)
			return false;
	return true;
}

static int
connect_all(struct bench *b)
{
	struct epoll_event evs[512];
	size_t next = 0, started = 0;
	uint64_t t0 = now_us(), deadline = t0 + 300 * 1000000ull;
	double secs;

	while (now_us() < deadline) {
		size_t busy = 0;
		int n;

		/* handshakes in flight = started - open - failed - closed */
		busy = started - b->nopen - b->nfailed - b->nclosed;
		while (next < (size_t)b->nclients && busy < (size_t)b->inflight) {
			client_start(b, next++);
			started++;
			busy++;
		}
		if (next == (size_t)b->nclients && busy == 0)
			break;
		n = epoll_wait(b->ep, evs, 512, 100);
		for (int i = 0; i < n; i++) {
			size_t idx = (size_t)evs[i].data.u64;
			struct client *c = &b->c[idx];

			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				on_writable(b, idx);
			else
				on_readable(b, c);
		}
	}
	secs = (double)(now_us() - t0) / 1e6;
	printf("connect: %zu of %d websockets open in %.2f s (%.0f "
	    "handshakes/s, %d in flight at most); %zu failed, %zu closed\n",
	    b->nopen, b->nclients, secs, (double)b->nopen / secs, b->inflight,
	    b->nfailed, b->nclosed);
	for (size_t i = 0; i < b->nwhy; i++)
		printf("  failed x%zu: %s\n", b->fail_n[i], b->fail_why[i]);
	return b->nopen > 0 ? 0 : -1;
}

/* The data of event i: {"bench_t":..,"bench_i":..,"conversation":{...}}
 * padded to about b->size bytes of frame. */
static int
event_data(const struct bench *b, char *out, size_t len, int64_t i)
{
	char pad[4096];
	int n, want;

	n = snprintf(out, len, "{\"bench_t\":%" PRIu64 ",\"bench_i\":%" PRId64
	    ",\"change\":\"message\",\"conversation\":{\"id\":%" PRId64 ","
	    "\"contact\":{\"id\":%" PRId64 ",\"name\":\"Bench Contact\","
	    "\"email\":\"bench@example.com\"},\"channel\":\"api\",\"connector\":"
	    "\"%s\",\"thread\":\"t-%" PRId64 "\",\"state\":\"open\","
	    "\"snooze_until\":null,\"assignee\":null,\"tags\":[\"payment\"],"
	    "\"priority\":\"normal\",\"nature\":null,\"subject\":\"Order %"
	    PRId64 "\",\"outcome\":null,\"created\":1790000000000,\"updated\":"
	    "1790000000000,\"message_count\":2,\"preview\":\"",
	    now_us(), i, i + 1, i + 1, b->connector, i + 1, i + 1);
	/* the frame adds about 90 bytes (type, seq, event) */
	want = b->size - 90 - n - 3;
	if (want < 0)
		want = 0;
	if (want > (int)sizeof(pad) - 1)
		want = (int)sizeof(pad) - 1;
	memset(pad, 'x', (size_t)want);
	pad[want] = '\0';
	return n + snprintf(out + n, len - (size_t)n, "%s\"}}", pad);
}

static void
xadd_append(struct bench *b, int64_t i)
{
	char data[8192];

	event_data(b, data, sizeof(data), i);
	redisAppendCommand(b->redis, "XADD %s MAXLEN ~ 100000 * event %s data %s",
	    b->k_events, "conversation.updated", data);
}

static int
xadd_replies(struct bench *b, int n)
{
	for (int i = 0; i < n; i++) {
		redisReply *r;

		if (redisGetReply(b->redis, (void **)&r) != REDIS_OK ||
		    r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "XADD %s: %s\n", b->k_events,
			    r ? r->str : b->redis->errstr);
			return -1;
		}
		freeReplyObject(r);
	}
	return 0;
}

static void
reset_counts(struct bench *b)
{
	for (int i = 0; i < b->nclients; i++) {
		b->c[i].got = 0;
		b->c[i].gaps = 0;
		b->c[i].next_i = -1;
	}
	b->target = 0;
}

static void
phase_report(struct bench *b, const char *what, size_t events)
{
	size_t short_of = 0, gaps = 0, closed = 0;

	for (int i = 0; i < b->nclients; i++) {
		struct client *c = &b->c[i];

		if (c->state == C_CLOSED)
			closed++;
		if (c->state == C_OPEN && c->got < events)
			short_of++;
		gaps += c->gaps;
	}
	printf("%s: %zu open sockets, %zu short of %zu events, %zu gaps, "
	    "%zu closed so far\n", what, b->nopen, short_of, events, gaps,
	    closed);
}

static void
cpu_mark(struct bench *b)
{
	for (int i = 0; i < b->nprocs; i++)
		proc_cpu(b->procs[i].pid, &b->procs[i].user0, &b->procs[i].sys0);
}

static void
cpu_print(struct bench *b, double frames, double secs)
{
	for (int i = 0; i < b->nprocs; i++) {
		struct proc *p = &b->procs[i];
		double u, s, d;

		proc_cpu(p->pid, &u, &s);
		u -= p->user0;
		s -= p->sys0;
		d = u + s;
		printf("  cpu %-22s %6.2f s = %3.0f%% of a core (user %.2f, sys "
		    "%.2f): %.2f µs per frame\n", p->name, d, secs > 0 ?
		    100 * d / secs : 0, u, s, frames > 0 ? d * 1e6 / frames : 0);
	}
}

static void
run_singles(struct bench *b, int64_t *seq)
{
	struct lat l = { 0 };

	if (b->singles <= 0)
		return;
	reset_counts(b);
	b->lat = &l;
	b->base_i = *seq;
	printf("singles: XADD to first / last receipt of each event, ms:");
	for (int k = 0; k < b->singles; k++) {
		size_t n0 = l.n;
		uint64_t t0 = now_us(), first;

		b->target = (size_t)k + 1;
		xadd_append(b, (*seq)++);
		if (xadd_replies(b, 1) != 0)
			break;
		pump(b, 10000, all_have);
		first = UINT32_MAX;
		for (size_t j = n0; j < l.n; j++)
			if (l.v[j] < first)
				first = l.v[j];
		printf(" %.1f/%.1f", l.n > n0 ? (double)first / 1000 : 0.0,
		    (double)(b->last_rx_us - t0) / 1000);
		fflush(stdout);
		pump(b, 20, NULL);       /* a pause between sweeps */
	}
	printf("\n");
	phase_report(b, "singles", (size_t)b->singles);
	lat_print("singles: one event at a time,", &l);
	free(l.v);
}

static void
run_burst(struct bench *b, int64_t *seq)
{
	struct lat l = { 0 };
	uint64_t t0, last = 0;
	size_t frames, prev = 0;
	double secs;

	reset_counts(b);
	b->lat = &l;
	b->base_i = *seq;
	b->target = (size_t)b->burst;
	b->last_rx_us = 0;
	cpu_mark(b);
	t0 = now_us();
	for (int k = 0; k < b->burst; k++)
		xadd_append(b, (*seq)++);
	/* one pipelined write of every XADD; replies are read afterwards */
	for (int done = 0; !done;)
		if (redisBufferWrite(b->redis, &done) != REDIS_OK) {
			fprintf(stderr, "redis write: %s\n", b->redis->errstr);
			return;
		}
	/* until every socket has every event, or 10 s without progress */
	while (!all_have(b)) {
		pump(b, 1000, all_have);
		if (l.n == prev) {
			if (last == 0)
				last = now_us();
			else if (now_us() - last > 10 * 1000000ull)
				break;
		} else {
			last = 0;
		}
		prev = l.n;
	}
	xadd_replies(b, b->burst);
	frames = l.n;
	secs = (double)(b->last_rx_us - t0) / 1e6;
	phase_report(b, "burst", (size_t)b->burst);
	printf("burst: %d events x %zu sockets: %zu frames in %.3f s (first XADD "
	    "to last receipt) = %.0f frames/s (events x clients per second), "
	    "%.1f events/s to all\n", b->burst, b->nopen, frames, secs,
	    secs > 0 ? (double)frames / secs : 0, secs > 0 ?
	    (double)b->burst / secs : 0);
	lat_print("burst:", &l);
	printf("burst: CPU seconds during the burst\n");
	cpu_print(b, (double)frames, secs);
	free(l.v);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: inbox-bench-ws --gateway HOST:PORT --redis HOST:PORT\n"
	    "    [--prefix inbox] [--clients 10000] [--agents 100]\n"
	    "    [--role agent|supervisor] [--team support] [--connector bench]\n"
	    "    [--inflight 200] [--singles 10] [--burst 100] [--size 600]\n"
	    "    [--no-setup] [--gateway-pid PID] [--cpu NAME=PID]...\n");
	exit(2);
}

static void
host_port(const char *s, char *host, size_t len, int *port)
{
	const char *colon = strrchr(s, ':');

	if (colon == NULL)
		usage();
	snprintf(host, len, "%.*s", (int)(colon - s), s);
	*port = atoi(colon + 1);
}

int
main(int argc, char **argv)
{
	struct bench b = { .nclients = 10000, .nagents = 100, .inflight = 200,
	    .singles = 10, .burst = 100, .size = 600, .setup = true };
	struct rlimit rl;
	long rss0 = -1, rss1 = -1, rss2 = -1;
	int64_t seq = 0;

	snprintf(b.prefix, sizeof(b.prefix), "inbox");
	snprintf(b.role, sizeof(b.role), "agent");
	snprintf(b.team, sizeof(b.team), "support");
	snprintf(b.connector, sizeof(b.connector), "bench");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-setup") == 0) {
			b.setup = false;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--gateway") == 0)
			host_port(v, b.ghost, sizeof(b.ghost), &b.gport);
		else if (strcmp(a, "--redis") == 0)
			host_port(v, b.rhost, sizeof(b.rhost), &b.rport);
		else if (strcmp(a, "--prefix") == 0)
			snprintf(b.prefix, sizeof(b.prefix), "%s", v);
		else if (strcmp(a, "--clients") == 0)
			b.nclients = atoi(v);
		else if (strcmp(a, "--agents") == 0)
			b.nagents = atoi(v);
		else if (strcmp(a, "--role") == 0)
			snprintf(b.role, sizeof(b.role), "%s", v);
		else if (strcmp(a, "--team") == 0)
			snprintf(b.team, sizeof(b.team), "%s", v);
		else if (strcmp(a, "--connector") == 0)
			snprintf(b.connector, sizeof(b.connector), "%s", v);
		else if (strcmp(a, "--inflight") == 0)
			b.inflight = atoi(v);
		else if (strcmp(a, "--singles") == 0)
			b.singles = atoi(v);
		else if (strcmp(a, "--burst") == 0)
			b.burst = atoi(v);
		else if (strcmp(a, "--size") == 0)
			b.size = atoi(v);
		else if (strcmp(a, "--gateway-pid") == 0)
			b.gw_pid = atoi(v);
		else if (strcmp(a, "--cpu") == 0 && strchr(v, '=') != NULL &&
		    b.nprocs < PIDS_MAX - 1) {
			b.procs[b.nprocs].name = v;
			*strchr(v, '=') = '\0';
			b.procs[b.nprocs++].pid = atoi(v + strlen(v) + 1);
		} else
			usage();
	}
	if (b.gport == 0 || b.rport == 0 || b.nclients < 1 || b.nagents < 1 ||
	    b.nagents > 65535 || b.inflight < 1 || b.burst < 1)
		usage();
	b.procs[b.nprocs].name = "inbox-bench-ws (this)";
	b.procs[b.nprocs++].pid = (int)getpid();

	/* one descriptor per socket: raise the soft limit to the hard one */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)b.nclients + 32) {
			fprintf(stderr, "RLIMIT_NOFILE is %llu: too low for %d "
			    "sockets (raise the hard limit)\n",
			    (unsigned long long)rl.rlim_cur, b.nclients);
			return 1;
		}
	}
	if (sodium_init() < 0)
		return 1;
	snprintf(b.k_events, sizeof(b.k_events), "%s:events", b.prefix);
	snprintf(b.k_cmd, sizeof(b.k_cmd), "%s:cmd", b.prefix);
	if ((b.redis = redisConnect(b.rhost, b.rport)) == NULL || b.redis->err) {
		fprintf(stderr, "redis %s:%d: %s\n", b.rhost, b.rport,
		    b.redis ? b.redis->errstr : "out of memory");
		return 1;
	}
	if (b.setup && setup_agents(&b) != 0)
		return 1;
	b.tokens = calloc((size_t)b.nagents, sizeof(*b.tokens));
	for (int i = 0; i < b.nagents; i++)
		if ((b.tokens[i] = login(&b, i)) == NULL) {
			fprintf(stderr, "login of ws%05d failed\n", i + 1);
			return 1;
		}
	printf("setup: %d agents (role %s%s%s), %d logins; socket i is agent "
	    "i %% %d\n", b.nagents, b.role, b.team[0] ? ", team " : "", b.team,
	    b.nagents, b.nagents);

	b.c = calloc((size_t)b.nclients, sizeof(*b.c));
	b.rbuf = malloc(RBUF_SIZE);
	if (b.c == NULL || b.rbuf == NULL || (b.ep = epoll_create1(0)) < 0)
		return 1;
	for (int i = 0; i < b.nclients; i++) {
		b.c[i].fd = -1;
		b.c[i].agent = (uint16_t)(i % b.nagents);
	}
	{
		struct lat l = { 0 };

		b.lat = &l;      /* nothing of ours is sent yet */
		b.base_i = INT64_MAX;
		if (b.gw_pid > 0)
			rss0 = proc_kb(b.gw_pid, "VmRSS:");
		if (connect_all(&b) != 0)
			return 1;
		pump(&b, 2000, NULL);    /* presence events settle */
		if (b.gw_pid > 0)
			rss1 = proc_kb(b.gw_pid, "VmRSS:");
		free(l.v);
	}
	if (rss0 > 0 && rss1 > 0)
		printf("gateway VmRSS: %ld kB before connecting, %ld kB with %zu "
		    "sockets: %.1f kB per connection\n", rss0, rss1, b.nopen,
		    (double)(rss1 - rss0) / (double)b.nopen);
	run_singles(&b, &seq);
	run_burst(&b, &seq);
	if (b.gw_pid > 0) {
		rss2 = proc_kb(b.gw_pid, "VmRSS:");
		printf("gateway VmRSS after the burst: %ld kB (VmHWM %ld kB)\n",
		    rss2, proc_kb(b.gw_pid, "VmHWM:"));
	}
	printf("frames that were not bench events: %zu\n", b.other);
	redisFree(b.redis);
	return 0;
}
