/*
 * inbox-bench-feed: feed queries against a large store.
 *
 *   populate DIR N        creates a store in DIR with N conversations (and
 *                         their contacts, the tag registry and 20 agents
 *                         a01..a20, password "benchpw"), 10,000 per write
 *                         transaction. No messages: feeds never read them.
 *   store DIR [K]         the store lookup alone, K times per query (2000),
 *                         each in a fresh read transaction: the index walk
 *                         with a no-op callback, then with the JSON views
 *                         (store_feed_json), then with the answer printed
 *                         as the gateway does.
 *   ws HOST PORT TOKEN [K] the same queries over a gateway websocket, one
 *                         request in flight: request sent to answer read;
 *                         first K pings, the floor of that path.
 *
 * The data is drawn from a fixed seed, so two populates are identical. The
 * websocket side is a minimal RFC 6455 client on a blocking socket (as in
 * ingest.c); it checks the first answer of each query with cJSON and times
 * the others by their "req" prefix only, so client parsing is not counted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "inbox/dialog.h"
#include "store/store.h"

#include "bench_ws.h"

#define BATCH 10000
#define NAGENTS 20
#define NTAGS 50
#define PAGE 50
#define DEEP_PAGE 100
#define BENCH_PASSWORD "benchpw"
#define BENCH_AGENT "a05"

/* ---- shared ------------------------------------------------------------ */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double p50, p99, mean, max;
};

/* Sorts v in place. */
static struct stats
stats_of(double *v, size_t n)
{
	struct stats s = { 0 };
	double sum = 0;

	if (n == 0)
		return s;
	qsort(v, n, sizeof(*v), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	s.p50 = v[n / 2];
	s.p99 = v[(size_t)((double)n * 0.99)];
	s.mean = sum / (double)n;
	s.max = v[n - 1];
	return s;
}

/* xorshift64*: a fixed-seed stream, so populates are reproducible. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static unsigned
rnd_below(uint64_t *s, unsigned n)
{
	return (unsigned)((rnd(s) >> 11) % n);
}

/* The queries both modes run. `deep`: time page DEEP_PAGE, reached through
 * the cursor of the pages before it. */
struct query {
	const char *name;
	const char *tag;         /* normalized, for the store */
	bool mine;               /* assignee BENCH_AGENT ("me" on the ws) */
	bool deep;
	const char *text;        /* a text filter */
};

/* The last two read more than they give: "#payment + me" walks the tag's
 * index and reads each conversation to check the assignee; the text search
 * matches nothing and stops at the store's scan bound (10,000 reads). */
static const struct query queries[] = {
	{ "open",              NULL,      false, false, NULL },
	{ "#payment",          "payment", false, false, NULL },
	{ "assignee me",       NULL,      true,  false, NULL },
	{ "open page 100",     NULL,      false, true,  NULL },
	{ "#payment + me",     "payment", true,  false, NULL },
	{ "text, no match",    NULL,      false, false, "no such words" },
};
#define NQUERIES (sizeof(queries) / sizeof(queries[0]))

/* ---- populate ---------------------------------------------------------- */

static const char *const tag_pool[NTAGS] = {
	"payment", "refund", "billing", "invoice", "shipping", "delivery",
	"returns", "exchange", "warranty", "login", "password", "account",
	"signup", "bug", "crash", "feature", "feedback", "complaint", "vip",
	"urgent", "wholesale", "b2b", "discount", "promo", "coupon", "order",
	"cancel", "tracking", "customs", "address", "size", "stock",
	"preorder", "subscription", "renewal", "trial", "api", "integration",
	"mobile", "web", "ios", "android", "spam", "legal", "gdpr", "press",
	"partner", "hiring", "lang:ru", "lang:en",
};

struct chan {
	const char *channel, *connector;
	unsigned weight;         /* percent */
};

static const struct chan chans[] = {
	{ "email", "mail1", 40 }, { "telegram", "tg1", 20 },
	{ "whatsapp", "wa1", 15 }, { "api", "api1", 10 },
	{ "messenger", "fb1", 5 }, { "instagram", "ig1", 5 },
	{ "vk", "vk1", 3 }, { "viber", "viber1", 2 },
};

static const char *const subjects[] = {
	"Where is my order", "Refund for order", "Cannot log in",
	"Invoice is wrong", "Question about delivery", "Payment failed",
	"Change my address", "Product out of stock",
};

static const char *const previews[] = {
	"Hello, I paid yesterday but the order still shows unpaid.",
	"Hi! When will the parcel arrive? Tracking has not moved for days.",
	"The app says my password is wrong, I reset it twice already.",
	"Please send a corrected invoice with our VAT number.",
	"Thanks, that solved it.", "Can I change the size before it ships?",
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Draws the tags of one conversation: 0-3 distinct, "payment" on about 2%,
 * sorted (the store keeps tags normalized and sorted). */
static size_t
draw_tags(uint64_t *s, const char **tags)
{
	unsigned r = rnd_below(s, 100);
	size_t want = r < 40 ? 0 : r < 70 ? 1 : r < 90 ? 2 : 3, n = 0;

	if (rnd_below(s, 1000) < 20)
		tags[n++] = tag_pool[0];
	while (n < want) {
		const char *t = tag_pool[1 + rnd_below(s, NTAGS - 1)];
		bool dup = false;

		for (size_t i = 0; i < n; i++)
			dup |= tags[i] == t;
		if (!dup)
			tags[n++] = t;
	}
	qsort(tags, n, sizeof(*tags), cmp_str);
	return n;
}

struct gen {
	uint64_t seed;
	int64_t t0, now;
	uint64_t ncontacts;
	char login[NAGENTS][8];
	/* What the queries will find. */
	uint64_t nstate[STORE_STATE__COUNT], open_payment, open_mine,
	    open_payment_mine;
};

/* Writes conversation i (0-based) and, for 60% of them, a new contact. */
static int
put_one(struct gen *g, struct store_txn *txn, uint64_t i)
{
	const char *tags[4];
	char thread[32], subject[80], preview[128], ext[32], name[48],
	    email[48], phone[24];
	unsigned r, w = 0;
	const struct chan *ch = &chans[0];
	struct store_conv c = { 0 };
	int rc;

	r = rnd_below(&g->seed, 100);
	for (size_t k = 0; k < sizeof(chans) / sizeof(chans[0]); k++) {
		w += chans[k].weight;
		if (r < w) {
			ch = &chans[k];
			break;
		}
	}
	if (g->ncontacts == 0 || rnd_below(&g->seed, 100) < 60) {
		struct store_contact ct = { 0 };
		uint64_t n = g->ncontacts + 1;

		snprintf(ext, sizeof(ext), "c%09llu", (unsigned long long)n);
		snprintf(name, sizeof(name), "Customer %llu",
		    (unsigned long long)n);
		ct.connector = ch->connector;
		ct.channel = ch->channel;
		ct.external_id = ext;
		ct.name = name;
		if (strcmp(ch->channel, "email") == 0) {
			snprintf(email, sizeof(email), "c%09llu@example.com",
			    (unsigned long long)n);
			ct.email = email;
		} else if (strcmp(ch->channel, "whatsapp") == 0 ||
		    strcmp(ch->channel, "viber") == 0) {
			snprintf(phone, sizeof(phone), "+7900%09llu",
			    (unsigned long long)n);
			ct.phone = phone;
		}
		ct.created = g->t0 + (int64_t)i * 30000;
		if ((rc = store_contact_put(txn, &ct)) != 0)
			return rc;
		g->ncontacts = ct.id;
		c.contact_id = ct.id;
	} else {
		c.contact_id = 1 + rnd_below(&g->seed, (unsigned)g->ncontacts);
	}
	snprintf(thread, sizeof(thread), "t%09llu", (unsigned long long)i);
	snprintf(subject, sizeof(subject), "%s (#%u)",
	    subjects[rnd_below(&g->seed, sizeof(subjects) / sizeof(subjects[0]))],
	    (unsigned)(i % 100000));
	snprintf(preview, sizeof(preview), "%s (order %u)",
	    previews[rnd_below(&g->seed, sizeof(previews) / sizeof(previews[0]))],
	    (unsigned)(i % 100000));
	c.connector = ch->connector;
	c.channel = ch->channel;
	c.thread = thread;
	c.subject = rnd_below(&g->seed, 100) < 60 ? subject : NULL;
	c.preview = preview;
	r = rnd_below(&g->seed, NAGENTS + 1);
	c.assignee = r == NAGENTS ? NULL : g->login[r];
	r = rnd_below(&g->seed, 100);
	c.priority = r < 10 ? INBOX_PRIO_LOW : r < 80 ? INBOX_PRIO_NORMAL :
	    r < 95 ? INBOX_PRIO_HIGH : INBOX_PRIO_URGENT;
	c.nature = (int)rnd_below(&g->seed, INBOX_NATURE__COUNT);
	/* One conversation every 30 s on average, up to now. */
	c.created = g->t0 + (int64_t)i * 30000 + rnd_below(&g->seed, 30000);
	c.updated = c.created + rnd_below(&g->seed, 3600000);
	if (c.updated > g->now)
		c.updated = g->now;
	c.last_customer_msg_at = c.updated;
	c.message_count = 1 + rnd_below(&g->seed, 12);
	if (c.assignee != NULL && c.message_count > 1)
		c.first_response_at = c.created + 60000;
	r = rnd_below(&g->seed, 100);
	if (r < 70) {
		c.state = STORE_STATE_CLOSED;
		c.closed_at = c.updated;
		c.outcome = rnd_below(&g->seed, 2) ? "answered" : NULL;
	} else if (r < 95) {
		c.state = STORE_STATE_OPEN;
	} else {
		/* In the future, so the router's timers leave them alone. */
		c.state = STORE_STATE_SNOOZED;
		c.snooze_until = g->now + 3600000 +
		    (int64_t)rnd_below(&g->seed, 14 * 86400) * 1000;
	}
	c.reopen_count = rnd_below(&g->seed, 10) == 0;
	c.ntags = draw_tags(&g->seed, tags);
	for (size_t k = 0; k < c.ntags; k++)
		c.tags[k] = tags[k];
	g->nstate[c.state]++;
	if (c.state == STORE_STATE_OPEN) {
		bool pay = false, mine;

		for (size_t k = 0; k < c.ntags; k++)
			pay |= tags[k] == tag_pool[0];
		mine = c.assignee == g->login[4];

		g->open_payment += pay;
		g->open_mine += mine;
		g->open_payment_mine += pay && mine;
	}
	return store_conv_put(txn, &c);
}

static int
put_agents(struct gen *g, struct store_txn *txn)
{
	char hash[crypto_pwhash_STRBYTES], name[32];
	int rc;

	if (crypto_pwhash_str(hash, BENCH_PASSWORD, strlen(BENCH_PASSWORD),
	    crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN) != 0) {
		fprintf(stderr, "crypto_pwhash_str failed\n");
		return INBOX_EIO;
	}
	for (int i = 0; i < NAGENTS; i++) {
		struct store_agent a = { .login = g->login[i], .name = name,
		    .role = "agent", .pwhash = hash, .created = g->now,
		    .updated = g->now };

		snprintf(name, sizeof(name), "Agent %d", i + 1);
		if ((rc = store_agent_put(txn, &a)) != 0)
			return rc;
	}
	for (int i = 0; i < NTAGS; i++) {
		bool created;

		if ((rc = store_tag_touch(txn, tag_pool[i], g->t0, &created)) != 0)
			return rc;
	}
	return 0;
}

static int
cmd_populate(const char *dir, uint64_t n)
{
	struct gen g = { .seed = 0x9e3779b97f4a7c15ULL };
	struct store *st;
	struct store_txn *txn;
	double t0 = now_us(), tb = t0;
	char path[4096];
	int rc;

	if (sodium_init() < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "populate: %s exists: give a new directory\n",
		    path);
		return 1;
	}
	g.now = (int64_t)time(NULL) * 1000;
	g.t0 = g.now - (int64_t)n * 30000 - 3600000;
	for (int i = 0; i < NAGENTS; i++)
		snprintf(g.login[i], sizeof(g.login[i]), "a%02d", i + 1);
	if ((rc = store_open(&st, dir, 8192, 0)) != 0) {
		fprintf(stderr, "store_open %s: %s\n", dir, inbox_strerror(rc));
		return 1;
	}
	if ((rc = store_txn_begin(st, true, &txn)) != 0 ||
	    (rc = put_agents(&g, txn)) != 0 ||
	    (rc = store_txn_commit(txn)) != 0)
		goto fail;
	for (uint64_t i = 0; i < n;) {
		if ((rc = store_txn_begin(st, true, &txn)) != 0)
			goto fail;
		for (uint64_t end = i + BATCH < n ? i + BATCH : n; i < end; i++)
			if ((rc = put_one(&g, txn, i)) != 0) {
				store_txn_abort(txn);
				goto fail;
			}
		if ((rc = store_txn_commit(txn)) != 0)
			goto fail;
		if (i % 100000 == 0 || i == n) {
			double t = now_us();

			fprintf(stderr, "  %llu conversations, %.0f/s in the last "
			    "%llu\n", (unsigned long long)i,
			    (double)((i - 1) % 100000 + 1) / ((t - tb) / 1e6),
			    (unsigned long long)((i - 1) % 100000 + 1));
			tb = t;
		}
	}
	store_close(st);
	printf("populate: %llu conversations, %llu contacts, %d agents in "
	    "%.1f s (%.0f conversations/s)\n", (unsigned long long)n,
	    (unsigned long long)g.ncontacts, NAGENTS, (now_us() - t0) / 1e6,
	    (double)n / ((now_us() - t0) / 1e6));
	printf("populate: open %llu, snoozed %llu, closed %llu; open with "
	    "#payment %llu, open of %s %llu, both %llu\n",
	    (unsigned long long)g.nstate[STORE_STATE_OPEN],
	    (unsigned long long)g.nstate[STORE_STATE_SNOOZED],
	    (unsigned long long)g.nstate[STORE_STATE_CLOSED],
	    (unsigned long long)g.open_payment, BENCH_AGENT,
	    (unsigned long long)g.open_mine,
	    (unsigned long long)g.open_payment_mine);
	return 0;
fail:
	fprintf(stderr, "populate: %s\n", inbox_strerror(rc));
	store_close(st);
	return 1;
}

/* ---- store ------------------------------------------------------------- */

static int
noop(void *arg, const struct store_conv *c)
{
	(*(size_t *)arg)++;
	return 0;
}

static void
query_init(struct store_feed_q *q, const struct query *qu)
{
	memset(q, 0, sizeof(*q));
	q->state = STORE_STATE_OPEN;
	q->priority = -1;
	q->limit = PAGE;
	q->tag = qu->tag;
	q->assignee = qu->mine ? BENCH_AGENT : NULL;
	q->text = qu->text;
}

/* Sets q's cursor to the start of page `page` (1-based). */
static int
seek_page(struct store *st, struct store_feed_q *q, int page)
{
	for (int p = 1; p < page; p++) {
		struct store_txn *txn;
		size_t n = 0;
		bool more;
		int rc;

		if ((rc = store_txn_begin(st, false, &txn)) != 0)
			return rc;
		rc = store_feed(txn, q, noop, &n, &more, &q->after_key,
		    &q->after_id);
		store_txn_abort(txn);
		if (rc != 0)
			return rc;
		if (!more)
			return INBOX_ENOTFOUND;
	}
	return 0;
}

enum mode { M_WALK, M_JSON, M_PRINT, M__COUNT };

/* One timed lookup as the gateway does it: a fresh read txn, the page, and
 * for M_PRINT the answer object printed. */
static int
lookup(struct store *st, const struct store_feed_q *q, enum mode m,
    size_t *given, size_t *bytes)
{
	struct store_txn *txn;
	int64_t nk;
	uint64_t ni;
	bool more;
	int rc;

	if ((rc = store_txn_begin(st, false, &txn)) != 0)
		return rc;
	if (m == M_WALK) {
		*given = 0;
		rc = store_feed(txn, q, noop, given, &more, &nk, &ni);
		store_txn_abort(txn);
		return rc;
	}
	cJSON *arr = cJSON_CreateArray();
	rc = store_feed_json(txn, q, arr, &more, &nk, &ni);
	store_txn_abort(txn);
	*given = (size_t)cJSON_GetArraySize(arr);
	if (m == M_PRINT) {
		cJSON *out = cJSON_CreateObject(), *data;
		char *s;

		cJSON_AddStringToObject(out, "type", "result");
		cJSON_AddNumberToObject(out, "req", 1);
		cJSON_AddBoolToObject(out, "ok", 1);
		data = cJSON_AddObjectToObject(out, "data");
		cJSON_AddItemToObject(data, "conversations", arr);
		cJSON_AddStringToObject(data, "next", "1790000000000:123456");
		s = cJSON_PrintUnformatted(out);
		*bytes = s ? strlen(s) : 0;
		free(s);
		cJSON_Delete(out);
	} else {
		cJSON_Delete(arr);
	}
	return rc;
}

static int
cmd_store(const char *dir, int k)
{
	static const char *const mode_names[M__COUNT] = { "index walk",
	    "+ JSON views", "+ printed" };
	struct store *st;
	double *v = calloc((size_t)k, sizeof(double));
	int rc;

	if ((rc = store_open(&st, dir, 8192, STORE_RDONLY)) != 0) {
		fprintf(stderr, "store_open %s: %s\n", dir, inbox_strerror(rc));
		return 1;
	}
	printf("store lookup, %d runs per query, a fresh read txn each, "
	    "microseconds\n", k);
	printf("%-16s %-13s %8s %8s %8s %8s %6s %8s\n", "query", "work", "p50",
	    "p99", "mean", "max", "given", "bytes");
	for (size_t qi = 0; qi < NQUERIES; qi++) {
		struct store_feed_q q;

		query_init(&q, &queries[qi]);
		if (queries[qi].deep && (rc = seek_page(st, &q, DEEP_PAGE)) != 0) {
			fprintf(stderr, "%s: cannot reach page %d: %s\n",
			    queries[qi].name, DEEP_PAGE, inbox_strerror(rc));
			continue;
		}
		for (int m = 0; m < M__COUNT; m++) {
			size_t given = 0, bytes = 0;
			struct stats s;

			for (int i = 0; i < k / 10 + 1; i++)      /* warm up */
				lookup(st, &q, (enum mode)m, &given, &bytes);
			for (int i = 0; i < k; i++) {
				double t = now_us();

				if ((rc = lookup(st, &q, (enum mode)m, &given,
				    &bytes)) != 0) {
					fprintf(stderr, "%s: %s\n", queries[qi].name,
					    inbox_strerror(rc));
					goto out;
				}
				v[i] = now_us() - t;
			}
			s = stats_of(v, (size_t)k);
			printf("%-16s %-13s %8.1f %8.1f %8.1f %8.1f %6zu %8zu\n",
			    m == 0 ? queries[qi].name : "", mode_names[m], s.p50,
			    s.p99, s.mean, s.max, given, bytes);
		}
	}
	rc = 0;
out:
	store_close(st);
	free(v);
	return rc != 0;
}

/* ---- websocket ----------------------------------------------------------- */

struct ws {
	int fd;
	unsigned char *buf;      /* bytes read, not yet parsed */
	size_t len, cap;
	char *msg;               /* the message being reassembled */
	size_t mlen, mcap;
};

static int
ws_open(struct ws *ws, const char *host, int port, const char *token)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	char req[1024], resp[2048];
	size_t got = 0;
	int one = 1;

	ws->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (ws->fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(ws->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("websocket connect");
		return -1;
	}
	setsockopt(ws->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(req, sizeof(req), "GET /ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: aW5ib3hkLWJlbmNoLWtleQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", token, host, port);
	if (write(ws->fd, req, strlen(req)) != (ssize_t)strlen(req))
		return -1;
	while (got < sizeof(resp) - 1) {
		ssize_t r = read(ws->fd, resp + got, 1);

		if (r <= 0)
			return -1;
		got++;
		resp[got] = '\0';
		if (got >= 4 && memcmp(resp + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	if (strncmp(resp, "HTTP/1.1 101", 12) != 0) {
		fprintf(stderr, "websocket refused: %.80s\n", resp);
		return -1;
	}
	return 0;
}

/* Sends one masked text frame. */
static int
ws_send(struct ws *ws, const char *text)
{
	unsigned char f[1024];
	size_t n = strlen(text), h = 2;
	static const unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };

	if (n + 8 > sizeof(f))
		return -1;
	f[0] = 0x81;
	if (n < 126) {
		f[1] = 0x80 | (unsigned char)n;
	} else {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(n >> 8);
		f[3] = (unsigned char)n;
		h = 4;
	}
	memcpy(f + h, mask, 4);
	for (size_t i = 0; i < n; i++)
		f[h + 4 + i] = (unsigned char)text[i] ^ mask[i & 3];
	return write(ws->fd, f, h + 4 + n) == (ssize_t)(h + 4 + n) ? 0 : -1;
}

/* Reads until a whole text message is there; returns it (NUL-terminated,
 * valid until the next call) or NULL on close, error or 10 s of silence. */
static const char *
ws_message(struct ws *ws)
{
	if (ws->buf == NULL) {
		ws->cap = 262144;
		if ((ws->buf = malloc(ws->cap)) == NULL)
			abort();
	}
	for (;;) {
		/* Parse the whole frames already read. */
		size_t off = 0;
		bool done = false;

		while (!done) {
			unsigned char *p = ws->buf + off;
			size_t hdr;
			uint64_t plen;
			int op = bench_ws_frame(p, ws->len - off, &hdr, &plen);

			if (op < 0)
				break;
			if (op <= 2) {        /* data or continuation */
				if (ws->mlen + plen + 1 > ws->mcap) {
					ws->mcap = (ws->mlen + plen + 1) * 2;
					ws->msg = realloc(ws->msg, ws->mcap);
					if (ws->msg == NULL)
						abort();
				}
				memcpy(ws->msg + ws->mlen, p + hdr, plen);
				ws->mlen += plen;
				done = (p[0] & 0x80) != 0;
			} else if ((p[0] & 0x0f) == 8) {
				fprintf(stderr, "websocket closed by the gateway\n");
				return NULL;
			}
			off += hdr + plen;
		}
		if (off > 0) {
			memmove(ws->buf, ws->buf + off, ws->len - off);
			ws->len -= off;
		}
		if (done) {
			ws->msg[ws->mlen] = '\0';
			ws->mlen = 0;
			return ws->msg;
		}
		if (ws->cap - ws->len < 65536) {
			ws->cap = ws->cap ? ws->cap * 2 : 262144;
			ws->buf = realloc(ws->buf, ws->cap);
			if (ws->buf == NULL)
				abort();
		}
		struct pollfd pfd = { .fd = ws->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 10000) != 1) {
			fprintf(stderr, "websocket: no answer in 10 s\n");
			return NULL;
		}
		n = read(ws->fd, ws->buf + ws->len, ws->cap - ws->len);
		if (n <= 0) {
			fprintf(stderr, "websocket: %s\n", n == 0 ? "closed" :
			    strerror(errno));
			return NULL;
		}
		ws->len += (size_t)n;
	}
}

/* Sends a request and waits for its answer, skipping pushed events. */
static const char *
ws_call(struct ws *ws, const char *req, int id, size_t *len)
{
	char prefix[64];
	size_t pl;

	pl = (size_t)snprintf(prefix, sizeof(prefix),
	    "{\"type\":\"result\",\"req\":%d,", id);
	if (ws_send(ws, req) != 0)
		return NULL;
	for (;;) {
		const char *m = ws_message(ws);

		if (m == NULL)
			return NULL;
		if (strncmp(m, prefix, pl) == 0) {
			*len = strlen(m);
			return m;
		}
	}
}

static void
ws_request(char *buf, size_t cap, const struct query *qu, int id,
    const char *before)
{
	snprintf(buf, cap, "{\"type\":\"feed\",\"req\":%d,\"state\":\"open\""
	    "%s%s%s%s%s%s%s%s%s%s,\"limit\":%d}", id,
	    qu->tag ? ",\"tag\":\"#" : "", qu->tag ? qu->tag : "",
	    qu->tag ? "\"" : "", qu->mine ? ",\"assignee\":\"me\"" : "",
	    qu->text ? ",\"text\":\"" : "", qu->text ? qu->text : "",
	    qu->text ? "\"" : "",
	    before ? ",\"before\":\"" : "", before ? before : "",
	    before ? "\"" : "", PAGE);
}

/* Checks an answer; returns its conversation count (-1: not ok) and copies
 * its "next" cursor ("" when null). */
static int
check_answer(const char *m, char *next, size_t cap)
{
	cJSON *j = cJSON_Parse(m), *data, *arr, *nx;
	int n = -1;

	next[0] = '\0';
	data = cJSON_GetObjectItem(j, "data");
	arr = cJSON_GetObjectItem(data, "conversations");
	if (cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")) && cJSON_IsArray(arr)) {
		n = cJSON_GetArraySize(arr);
		nx = cJSON_GetObjectItem(data, "next");
		if (cJSON_IsString(nx))
			snprintf(next, cap, "%s", nx->valuestring);
	} else {
		fprintf(stderr, "bad answer: %.300s\n", m);
	}
	cJSON_Delete(j);
	return n;
}

static int
cmd_ws(const char *host, int port, const char *token, int k)
{
	struct ws ws = { .fd = -1 };
	double *v = calloc((size_t)k, sizeof(double));
	int id = 0, rc = 1;

	if (ws_open(&ws, host, port, token) != 0)
		goto out;
	printf("websocket feed request to answer, %d runs per query, one in "
	    "flight, microseconds\n", k);
	printf("%-16s %8s %8s %8s %8s %6s %8s\n", "query", "p50", "p99", "mean",
	    "max", "given", "bytes");
	/* The floor: a ping, answered without the store. */
	for (int i = -k / 10; i < k; i++) {
		char req[64];
		size_t len;
		double t;

		snprintf(req, sizeof(req), "{\"type\":\"ping\",\"req\":%d}", ++id);
		t = now_us();
		if (ws_call(&ws, req, id, &len) == NULL)
			goto out;
		if (i >= 0)
			v[i] = now_us() - t;
	}
	{
		struct stats s = stats_of(v, (size_t)k);

		printf("%-16s %8.1f %8.1f %8.1f %8.1f %6s %8s\n", "ping (floor)",
		    s.p50, s.p99, s.mean, s.max, "-", "-");
	}
	for (size_t qi = 0; qi < NQUERIES; qi++) {
		const struct query *qu = &queries[qi];
		char req[512], cursor[64] = "", next[64];
		const char *m;
		size_t len = 0;
		int given = 0;
		struct stats s;

		/* The cursor of the timed page, from the pages before it. */
		for (int p = 1; qu->deep && p < DEEP_PAGE; p++) {
			ws_request(req, sizeof(req), qu, ++id,
			    cursor[0] ? cursor : NULL);
			if ((m = ws_call(&ws, req, id, &len)) == NULL ||
			    check_answer(m, next, sizeof(next)) < 0 ||
			    next[0] == '\0') {
				fprintf(stderr, "%s: cannot reach page %d\n",
				    qu->name, DEEP_PAGE);
				goto out;
			}
			memcpy(cursor, next, sizeof(cursor));
		}
		ws_request(req, sizeof(req), qu, ++id, cursor[0] ? cursor : NULL);
		if ((m = ws_call(&ws, req, id, &len)) == NULL ||
		    (given = check_answer(m, next, sizeof(next))) < 0)
			goto out;
		for (int i = 0; i < k / 10; i++) {           /* warm up */
			ws_request(req, sizeof(req), qu, ++id,
			    cursor[0] ? cursor : NULL);
			if (ws_call(&ws, req, id, &len) == NULL)
				goto out;
		}
		for (int i = 0; i < k; i++) {
			double t;

			ws_request(req, sizeof(req), qu, ++id,
			    cursor[0] ? cursor : NULL);
			t = now_us();
			if (ws_call(&ws, req, id, &len) == NULL)
				goto out;
			v[i] = now_us() - t;
		}
		s = stats_of(v, (size_t)k);
		printf("%-16s %8.1f %8.1f %8.1f %8.1f %6d %8zu\n", qu->name, s.p50,
		    s.p99, s.mean, s.max, given, len);
	}
	rc = 0;
out:
	if (ws.fd >= 0)
		close(ws.fd);
	free(ws.buf);
	free(ws.msg);
	free(v);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int
usage(void)
{
	fprintf(stderr, "usage: inbox-bench-feed populate DIR N\n"
	    "       inbox-bench-feed store DIR [K]\n"
	    "       inbox-bench-feed ws HOST PORT TOKEN [K]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	int k = 2000;

	log_init("bench-feed", INBOX_LOG_WARN);
	if (argc == 4 && strcmp(argv[1], "populate") == 0) {
		char *end;
		unsigned long long n = strtoull(argv[3], &end, 10);

		if (*end != '\0' || n == 0)
			return usage();
		return cmd_populate(argv[2], n);
	}
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "store") == 0) {
		if (argc == 4 && (k = atoi(argv[3])) < 1)
			return usage();
		return cmd_store(argv[2], k);
	}
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "ws") == 0) {
		if (argc == 6 && (k = atoi(argv[5])) < 1)
			return usage();
		return cmd_ws(argv[2], atoi(argv[3]), argv[4], k);
	}
	return usage();
}
