/*
 * inbox-bench-ingest: posts N envelopes to the webhooks connector over K
 * concurrent keep-alive connections (libcurl multi) and counts the
 * message.created events of this run on an agent's websocket. Prints the
 * messages per second from the first POST to the last message.created seen.
 *
 * With --hook CHANNEL:CONNECTOR:SECRET (repeatable) it posts, round robin
 * over the hooks, the platform's own webhook body for a text message,
 * signed as the platform signs it: telegram (X-Telegram-Bot-Api-Secret-Token),
 * whatsapp and messenger (X-Hub-Signature-256: sha256=HMAC-SHA256 of the
 * body with the app secret), vk (the body's "secret" and group_id 229000001)
 * and viber (X-Viber-Content-Signature: HMAC-SHA256 with the bot token).
 * The signatures are computed per request (libsodium), as a platform would.
 * Without --hook, the generic api channel's envelope goes to --connector.
 *
 * The websocket side is a minimal RFC 6455 reader on a plain socket, polled
 * through curl_multi_poll's extra fd, so one loop drives both. Each
 * message.created is matched to its POST (the text carries the index): the
 * end-to-end latency is from the POST's start to the event's receipt.
 *
 * With --rate R the posts start on a fixed schedule, R a second (open loop,
 * as traffic arrives: a late answer does not delay the next post), instead
 * of each connection posting again as soon as it is answered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "bench_ws.h"

#define HOOKS_MAX 16
#define VK_GROUP "229000001"

enum hook_kind { HOOK_API, HOOK_TELEGRAM, HOOK_WHATSAPP, HOOK_MESSENGER,
	HOOK_VK, HOOK_VIBER };

/* One connector the run posts to, with what signs its requests. */
struct hook {
	enum hook_kind kind;
	const char *connector;
	const char *secret;      /* secret, app secret or bot token */
	char url[256];
};

struct opts {
	const char *webhooks;    /* http://host:port */
	const char *gw_host;
	int gw_port;
	const char *connector, *login, *password;
	long n, k;
	double rate;             /* posts a second; 0: as fast as answered */
	int timeout_s;
	struct hook hooks[HOOKS_MAX];
	int nhooks;              /* 0: the api channel on connector */
};

struct poster {
	CURL *easy;
	struct curl_slist *hdrs;
	char body[2048];
	double started;
	long index;
};

struct ws {
	int fd;
	unsigned char *buf;
	size_t len, cap;
};

struct run {
	struct opts o;
	char tag[32];            /* unique per run: message texts start with it */
	long long base;          /* unique per run: numeric platform ids */
	long next, done, non2xx, seen;
	double first_post, last_event;
	double *lat;
	double *t0;              /* when post i started */
	double *e2e;             /* post start to its message.created */
	long ne2e;
	struct ws ws;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	char *buf = arg;
	size_t have = strlen(buf), add = sz * n;

	if (have + add < 4096) {
		memcpy(buf + have, p, add);
		buf[have + add] = '\0';
	}
	return add;
}

/* POST /api/login; writes the token. */
static int
login(const struct opts *o, char *token, size_t len)
{
	char url[256], body[512], answer[4096] = "";
	struct curl_slist *h = curl_slist_append(NULL,
	    "Content-Type: application/json");
	CURL *c = curl_easy_init();
	cJSON *j, *t;
	long code = 0;
	int rc = -1;

	snprintf(url, sizeof(url), "http://%s:%d/api/login", o->gw_host,
	    o->gw_port);
	snprintf(body, sizeof(body), "{\"login\":\"%s\",\"password\":\"%s\"}",
	    o->login, o->password);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)answer);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	j = cJSON_Parse(answer);
	t = cJSON_GetObjectItem(j, "token");
	if (code == 200 && cJSON_IsString(t)) {
		snprintf(token, len, "%s", t->valuestring);
		rc = 0;
	} else {
		fprintf(stderr, "login failed (%ld): %s\n", code, answer);
	}
	cJSON_Delete(j);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

static int
ws_open(struct ws *ws, const struct opts *o, const char *token)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)o->gw_port) };
	char req[1024], resp[2048];
	size_t got = 0;

	ws->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (ws->fd < 0 || inet_pton(AF_INET, o->gw_host, &sa.sin_addr) != 1 ||
	    connect(ws->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("websocket connect");
		return -1;
	}
	snprintf(req, sizeof(req), "GET /ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: aW5ib3hkLWJlbmNoLWtleQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", token, o->gw_host, o->gw_port);
	if (write(ws->fd, req, strlen(req)) != (ssize_t)strlen(req))
		return -1;
	/* Read the handshake answer only: up to the blank line. */
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
	fcntl(ws->fd, F_SETFL, fcntl(ws->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

/* Reads what is there; counts this run's message.created frames. */
static int
ws_read(struct run *r)
{
	struct ws *ws = &r->ws;
	char needle[64];

	snprintf(needle, sizeof(needle), "\"text\":\"%s ", r->tag);
	for (;;) {
		ssize_t n;

		if (ws->cap - ws->len < 65536) {
			ws->cap = ws->cap ? ws->cap * 2 : 262144;
			ws->buf = realloc(ws->buf, ws->cap);
			if (ws->buf == NULL)
				abort();
		}
		n = read(ws->fd, ws->buf + ws->len, ws->cap - ws->len);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			fprintf(stderr, "websocket closed by the gateway\n");
			return -1;
		}
		ws->len += (size_t)n;
	}
	/* Parse whole frames (server frames are not masked). */
	size_t off = 0;
	for (;;) {
		unsigned char *p = ws->buf + off;
		size_t hdr;
		uint64_t plen;
		int op = bench_ws_frame(p, ws->len - off, &hdr, &plen);

		if (op < 0)
			break;
		if (op == 1 || op == 0) {
			char *text = (char *)p + hdr;
			char save = text[plen];

			text[plen] = '\0';
			const char *at;

			if (strstr(text, "\"event\":\"message.created\"") &&
			    (at = strstr(text, needle)) != NULL) {
				long i = strtol(at + strlen(needle), NULL, 10);

				r->seen++;
				r->last_event = now_s();
				if (i >= 0 && i < r->o.n && r->t0[i] > 0 &&
				    r->ne2e < r->o.n)
					r->e2e[r->ne2e++] = r->last_event -
					    r->t0[i];
			}
			text[plen] = save;
		}
		off += hdr + plen;
	}
	memmove(ws->buf, ws->buf + off, ws->len - off);
	ws->len -= off;
	return 0;
}

/* hex(HMAC-SHA256(key, body)) into hex (65 bytes). */
static void
hmac_hex(const char *key, const char *body, char *hex)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	    strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body,
	    strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, 2 * sizeof(mac) + 1, mac, sizeof(mac));
}

/* Writes message i's body for h into p->body and its headers into p->hdrs:
 * what the platform would POST for one text message. The text is
 * "<tag> <i> ..." (ws_read counts it); thread t is the dialog. */
static void
build_post(const struct run *r, const struct hook *h, struct poster *p,
    long i, long t)
{
	char hdr[160], hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	long long id = r->base + i, uid = r->base + t;
	long long now = (long long)time(NULL);
	size_t blen = sizeof(p->body);

	curl_slist_free_all(p->hdrs);
	p->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	switch (h->kind) {
	case HOOK_API:
		snprintf(p->body, blen,
		    "{\"external_id\":\"%s-%ld\",\"thread\":\"%s-t%ld\","
		    "\"contact\":{\"external_id\":\"%s-c%ld\",\"name\":\"Bench\"},"
		    "\"text\":\"%s %ld bench message\"}", r->tag, i, r->tag, t,
		    r->tag, t, r->tag, i);
		break;
	case HOOK_TELEGRAM:
		snprintf(p->body, blen,
		    "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,"
		    "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":"
		    "\"Bench\",\"last_name\":\"Telegram\",\"language_code\":"
		    "\"en\"},\"chat\":{\"id\":%lld,\"first_name\":\"Bench\","
		    "\"last_name\":\"Telegram\",\"type\":\"private\"},"
		    "\"date\":%lld,\"text\":\"%s %ld where is my order?\"}}",
		    id, id, uid, uid, now, r->tag, i);
		snprintf(hdr, sizeof(hdr), "X-Telegram-Bot-Api-Secret-Token: %s",
		    h->secret);
		p->hdrs = curl_slist_append(p->hdrs, hdr);
		break;
	case HOOK_WHATSAPP:
		snprintf(p->body, blen,
		    "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
		    "\"id\":\"102290129340398\",\"changes\":[{\"value\":{"
		    "\"messaging_product\":\"whatsapp\",\"metadata\":{"
		    "\"display_phone_number\":\"15550783881\","
		    "\"phone_number_id\":\"106540352242922\"},\"contacts\":[{"
		    "\"profile\":{\"name\":\"Bench WhatsApp\"},\"wa_id\":\"%lld\"}],"
		    "\"messages\":[{\"from\":\"%lld\",\"id\":\"wamid.%s.%ld\","
		    "\"timestamp\":\"%lld\",\"type\":\"text\",\"text\":{\"body\":"
		    "\"%s %ld where is my order?\"}}]},\"field\":\"messages\"}]}]}",
		    uid, uid, r->tag, i, now, r->tag, i);
		break;
	case HOOK_MESSENGER:
		snprintf(p->body, blen,
		    "{\"object\":\"page\",\"entry\":[{\"id\":\"PAGE_BENCH\","
		    "\"time\":%lld,\"messaging\":[{\"sender\":{\"id\":\"%lld\"},"
		    "\"recipient\":{\"id\":\"PAGE_BENCH\"},\"timestamp\":%lld,"
		    "\"message\":{\"mid\":\"m_%s.%ld\",\"text\":"
		    "\"%s %ld where is my order?\"}}]}]}",
		    now * 1000, uid, now * 1000, r->tag, i, r->tag, i);
		break;
	case HOOK_VK:
		snprintf(p->body, blen,
		    "{\"group_id\":" VK_GROUP ",\"type\":\"message_new\","
		    "\"event_id\":\"%s.%ld\",\"v\":\"5.199\",\"object\":{"
		    "\"message\":{\"date\":%lld,\"from_id\":%lld,\"id\":%lld,"
		    "\"out\":0,\"attachments\":[],\"conversation_message_id\":%ld,"
		    "\"fwd_messages\":[],\"peer_id\":%lld,\"random_id\":0,"
		    "\"text\":\"%s %ld where is my order?\"},\"client_info\":{"
		    "\"keyboard\":true,\"lang_id\":0}},\"secret\":\"%s\"}",
		    r->tag, i, now, uid, id, i, uid, r->tag, i, h->secret);
		break;
	case HOOK_VIBER:
		snprintf(p->body, blen,
		    "{\"event\":\"message\",\"timestamp\":%lld,"
		    "\"chat_hostname\":\"SN-376_\",\"message_token\":%lld,"
		    "\"sender\":{\"id\":\"%s%lld=\",\"name\":\"Bench Viber\","
		    "\"language\":\"en\",\"country\":\"GB\",\"api_version\":10},"
		    "\"message\":{\"type\":\"text\",\"text\":"
		    "\"%s %ld where is my order?\"},\"silent\":false}",
		    now * 1000, id, r->tag, uid, r->tag, i);
		hmac_hex(h->secret, p->body, hex);
		snprintf(hdr, sizeof(hdr), "X-Viber-Content-Signature: %s", hex);
		p->hdrs = curl_slist_append(p->hdrs, hdr);
		break;
	}
	if (h->kind == HOOK_WHATSAPP || h->kind == HOOK_MESSENGER) {
		hmac_hex(h->secret, p->body, hex);
		snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: sha256=%s", hex);
		p->hdrs = curl_slist_append(p->hdrs, hdr);
	}
}

static void
start_post(struct run *r, CURLM *multi, struct poster *p)
{
	long i = r->next++;
	long threads = r->o.n / 10 > 0 ? r->o.n / 10 : 1;
	const struct hook *h = &r->o.hooks[i % r->o.nhooks];

	p->index = i;
	build_post(r, h, p, i, i % threads);
	curl_easy_setopt(p->easy, CURLOPT_URL, h->url);
	curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->hdrs);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
	p->started = now_s();
	r->t0[i] = p->started;
	if (r->first_post == 0)
		r->first_post = p->started;
	curl_multi_add_handle(multi, p->easy);
}

/* CHANNEL:CONNECTOR:SECRET into the next hook. */
static int
add_hook(struct opts *o, char *spec)
{
	static const struct { const char *name; enum hook_kind kind; } kinds[] = {
		{ "telegram", HOOK_TELEGRAM }, { "whatsapp", HOOK_WHATSAPP },
		{ "messenger", HOOK_MESSENGER }, { "vk", HOOK_VK },
		{ "viber", HOOK_VIBER }, { "api", HOOK_API },
	};
	char *conn = strchr(spec, ':'), *secret;
	struct hook *h;

	if (o->nhooks == HOOKS_MAX || conn == NULL ||
	    (secret = strchr(conn + 1, ':')) == NULL)
		return -1;
	*conn++ = '\0';
	*secret++ = '\0';
	h = &o->hooks[o->nhooks];
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (strcmp(spec, kinds[k].name) == 0) {
			h->kind = kinds[k].kind;
			h->connector = conn;
			h->secret = secret;
			o->nhooks++;
			return 0;
		}
	}
	return -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
usage(void)
{
	fprintf(stderr, "usage: inbox-bench-ingest --webhooks http://H:P "
	    "--gateway H:P (--connector ID | --hook CHANNEL:CONNECTOR:SECRET...) "
	    "--login L --password P [-n N] [-k K] [--rate R] [--timeout S]\n"
	    "  CHANNEL: telegram, whatsapp, messenger, vk, viber or api\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct run r = { .o = { .n = 20000, .k = 16, .timeout_s = 120,
	    .connector = "bench" } };
	struct poster *posters = NULL, **idle = NULL;
	CURLM *multi = NULL;
	char token[512], *colon;
	double deadline, start0;
	long nidle = 0;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return usage();
		if (strcmp(a, "--webhooks") == 0) r.o.webhooks = v;
		else if (strcmp(a, "--gateway") == 0) r.o.gw_host = v;
		else if (strcmp(a, "--connector") == 0) r.o.connector = v;
		else if (strcmp(a, "--login") == 0) r.o.login = v;
		else if (strcmp(a, "--password") == 0) r.o.password = v;
		else if (strcmp(a, "-n") == 0) r.o.n = atol(v);
		else if (strcmp(a, "-k") == 0) r.o.k = atol(v);
		else if (strcmp(a, "--rate") == 0) r.o.rate = atof(v);
		else if (strcmp(a, "--timeout") == 0) r.o.timeout_s = atoi(v);
		else if (strcmp(a, "--hook") == 0) {
			if (add_hook(&r.o, argv[i + 1]) != 0)
				return usage();
		}
		else return usage();
		i++;
	}
	if (!r.o.webhooks || !r.o.gw_host || !r.o.login || !r.o.password ||
	    r.o.n < 1 || r.o.k < 1 || (colon = strchr(r.o.gw_host, ':')) == NULL)
		return usage();
	*colon = '\0';
	r.o.gw_port = atoi(colon + 1);
	snprintf(r.tag, sizeof(r.tag), "b%lx", (long)time(NULL) ^ (long)getpid());
	r.base = ((long long)time(NULL) % 100000) * 1000000;
	if (r.o.nhooks == 0) {
		r.o.hooks[0].kind = HOOK_API;
		r.o.hooks[0].connector = r.o.connector;
		r.o.nhooks = 1;
	}
	for (int i = 0; i < r.o.nhooks; i++)
		snprintf(r.o.hooks[i].url, sizeof(r.o.hooks[i].url),
		    "%s/hooks/%s", r.o.webhooks, r.o.hooks[i].connector);
	if (sodium_init() < 0)
		return 1;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (login(&r.o, token, sizeof(token)) != 0 ||
	    ws_open(&r.ws, &r.o, token) != 0)
		goto out;
	r.lat = calloc((size_t)r.o.n, sizeof(double));
	r.t0 = calloc((size_t)r.o.n, sizeof(double));
	r.e2e = calloc((size_t)r.o.n, sizeof(double));
	posters = calloc((size_t)r.o.k, sizeof(*posters));
	idle = calloc((size_t)r.o.k, sizeof(*idle));
	if (r.lat == NULL || r.t0 == NULL || r.e2e == NULL || posters == NULL ||
	    idle == NULL)
		goto out;
	multi = curl_multi_init();
	for (long i = 0; i < r.o.k; i++) {
		posters[i].easy = curl_easy_init();
		curl_easy_setopt(posters[i].easy, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(posters[i].easy, CURLOPT_PRIVATE, (void *)&posters[i]);
		if (r.o.rate > 0)
			idle[nidle++] = &posters[i];
		else if (r.next < r.o.n)
			start_post(&r, multi, &posters[i]);
	}
	deadline = now_s() + r.o.timeout_s;
	start0 = now_s();
	while ((r.done < r.o.n || r.seen < r.o.n) && now_s() < deadline) {
		struct curl_waitfd wfd = { .fd = r.ws.fd, .events = CURL_WAIT_POLLIN };
		CURLMsg *m;
		int running, left, nfds, wait_ms = 50;

		/* paced: the posts whose time has come, on idle connections
		 * (none idle: K is too small for the rate; it shows as late
		 * starts in the latency) */
		while (r.o.rate > 0 && r.next < r.o.n && nidle > 0 &&
		    now_s() >= start0 + (double)r.next / r.o.rate)
			start_post(&r, multi, idle[--nidle]);
		if (r.o.rate > 0 && r.next < r.o.n) {
			double due = start0 + (double)r.next / r.o.rate - now_s();

			/* at least 1 ms: the posts due meanwhile start
			 * together (their latency counts from their start) */
			wait_ms = due <= 0 ? 0 : due < 0.05 ? 1 + (int)(due *
			    1e3) : 50;
		}
		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			struct poster *p;
			long code = 0;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
			    (char **)&p);
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE,
			    &code);
			if (m->data.result != CURLE_OK || code / 100 != 2)
				r.non2xx++;
			r.lat[r.done++] = now_s() - p->started;
			curl_multi_remove_handle(multi, m->easy_handle);
			if (r.o.rate > 0)
				idle[nidle++] = p;
			else if (r.next < r.o.n)
				start_post(&r, multi, p);
		}
		curl_multi_poll(multi, &wfd, 1, wait_ms, &nfds);
		if (ws_read(&r) != 0)
			break;
	}
	qsort(r.lat, (size_t)r.done, sizeof(double), cmp_double);
	{
		double secs = r.last_event - r.first_post;

		printf("posted %ld (non-2xx %ld) with %ld connections; "
		    "message.created seen %ld\n", r.done, r.non2xx, r.o.k, r.seen);
		if (r.done > 0)
			printf("POST latency p50 %.2f ms, p99 %.2f ms\n",
			    r.lat[r.done / 2] * 1e3,
			    r.lat[(size_t)((double)r.done * 0.99)] * 1e3);
		if (r.seen == r.o.n && secs > 0)
			printf("ingest: %.0f msgs/s (%ld messages in %.3f s, first "
			    "POST to last message.created)%s\n",
			    (double)r.o.n / secs, r.o.n, secs, r.o.rate > 0 ?
			    ", paced" : "");
		if (r.ne2e > 0) {
			qsort(r.e2e, (size_t)r.ne2e, sizeof(double), cmp_double);
			printf("end to end (POST start to message.created at the "
			    "websocket)%s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f "
			    "ms, max %.2f ms\n", r.o.rate > 0 ? "" :
			    " (unpaced: includes queueing)",
			    r.e2e[r.ne2e / 2] * 1e3,
			    r.e2e[(size_t)((double)r.ne2e * 0.99)] * 1e3,
			    r.e2e[(size_t)((double)r.ne2e * 0.999)] * 1e3,
			    r.e2e[r.ne2e - 1] * 1e3);
		}
	}
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("cpu inbox-bench-ingest %.2f s\n",
		    (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		    ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
		    1e6);
	}
	rc = (r.seen == r.o.n && r.non2xx == 0) ? 0 : 1;
	if (rc != 0)
		fprintf(stderr, "incomplete: %ld of %ld announced\n", r.seen,
		    r.o.n);
out:
	if (multi != NULL) {
		for (long i = 0; i < r.o.k; i++) {
			curl_multi_remove_handle(multi, posters[i].easy);
			curl_easy_cleanup(posters[i].easy);
			curl_slist_free_all(posters[i].hdrs);
		}
		curl_multi_cleanup(multi);
	}
	free(posters);
	free(idle);
	free(r.t0);
	free(r.e2e);
	free(r.lat);
	free(r.ws.buf);
	if (r.ws.fd > 0)
		close(r.ws.fd);
	curl_global_cleanup();
	return rc;
}
