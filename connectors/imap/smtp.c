/* inbox-imap's replies out: inbox:out:<id> to SMTP with libcurl, retried
 * with backoff, reported sent or failed. Runs in its own thread with its
 * own Redis connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "connectors/imap/imap_int.h"
#include "inbox/rt/rt.h"

#define BATCH 16
#define PENDING_MAX 256

struct pend {
	struct connector_out o;
	int failures;
	int64_t next_at;
	const char *status;      /* the outcome, once known: report it */
	char detail[700];        /* message id when sent, else the error */
};

struct imap_smtp {
	const struct inbox_config *cfg;
	const struct inbox_connector_conf *cc;
	char *password;
	struct connector *conn;
	struct pend pend[PENDING_MAX];
	size_t npend;
	struct imap_counters *n;
};

struct imap_smtp *
imap_smtp_create(const struct inbox_config *cfg,
    const struct inbox_connector_conf *cc, const char *password,
    struct imap_counters *n)
{
	struct imap_smtp *s = xcalloc(1, sizeof(*s));

	s->n = n;

	s->cfg = cfg;
	s->cc = cc;
	s->password = password ? xstrdup(password) : NULL;
	s->conn = connector_create(cfg, cc);
	return s;
}

void
imap_smtp_destroy(struct imap_smtp *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->npend; i++)
		connector_out_finish(&s->pend[i].o);
	connector_destroy(s->conn);
	if (s->password != NULL)
		sodium_memzero(s->password, strlen(s->password));
	free(s->password);
	free(s);
}

/* ---- the message ---------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* text as quoted-printable, CRLF line ends, lines under 77 columns. */
static void
put_qp(struct buf *b, const char *text)
{
	size_t col = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		char enc[4];
		size_t n;

		if (*p == '\r')
			continue;
		if (*p == '\n') {
			put(b, "\r\n", 2);
			col = 0;
			continue;
		}
		if ((*p >= 33 && *p <= 126 && *p != '=') ||
		    ((*p == ' ' || *p == '\t') && p[1] != '\n' &&
		    p[1] != '\r' && p[1] != '\0')) {
			enc[0] = (char)*p;
			n = 1;
		} else {
			snprintf(enc, sizeof(enc), "=%02X", *p);
			n = 3;
		}
		if (col + n > 75) {
			put(b, "=\r\n", 3);
			col = 0;
		}
		/* a line must not start with "." alone for dumb servers */
		if (col == 0 && *p == '.') {
			put(b, "=2E", 3);
			col = 3;
			continue;
		}
		put(b, enc, n);
		col += n;
	}
	put(b, "\r\n", 2);
}

static void
put_header(struct buf *b, const char *name, const char *value)
{
	char *enc = mail_encode_header(value);

	puts_(b, name);
	puts_(b, ": ");
	puts_(b, enc);
	puts_(b, "\r\n");
	free(enc);
}

static bool
header_safe(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

char *
imap_smtp_message(const struct inbox_connector_conf *cc, const cJSON *item,
    int64_t now, const char **rcpt, char *msgid, size_t msgidlen,
    struct inbox_err *err)
{
	const char *to = connector_item_str(item, "contact.email");
	const char *name = connector_item_str(item, "contact.name");
	const char *subject = connector_item_str(item, "subject");
	const char *text = connector_item_str(item, "text");
	const char *thread = connector_item_str(item, "thread");
	const char *ref = connector_item_str(item, "ref");
	const cJSON *autom = cJSON_GetObjectItemCaseSensitive(item, "auto");
	const char *at = cc->from ? strrchr(cc->from, '@') : NULL;
	char domain[256], date[64], *id, *subj;
	struct buf b = { NULL, 0, 0 };
	time_t t = (time_t)(now / 1000);
	struct tm tm;

	if (to == NULL || strchr(to, '@') == NULL || !header_safe(to)) {
		inbox_err_set(err, INBOX_EINVAL, "contact.email", 0,
		    "the contact has no e-mail address to answer");
		return NULL;
	}
	if (text == NULL || thread == NULL) {
		inbox_err_set(err, INBOX_EINVAL, "text", 0, "out item without "
		    "text or thread");
		return NULL;
	}
	snprintf(domain, sizeof(domain), "%s", at ? at + 1 : "inboxd.invalid");
	domain[strcspn(domain, "> \t")] = '\0';
	id = imap_reply_message_id(thread, ref, domain);
	snprintf(msgid, msgidlen, "%s", id);
	free(id);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

	puts_(&b, "From: ");
	puts_(&b, cc->from);
	puts_(&b, "\r\n");
	if (name != NULL && name[0] != '\0' && header_safe(name)) {
		char *n = mail_encode_header(name);
		bool plain = strcmp(n, name) == 0;

		puts_(&b, "To: ");
		if (plain)
			puts_(&b, "\"");
		for (const char *p = n; *p; p++) {
			if (plain && (*p == '"' || *p == '\\'))
				puts_(&b, "\\");
			put(&b, p, 1);
		}
		if (plain)
			puts_(&b, "\"");
		puts_(&b, " <");
		puts_(&b, to);
		puts_(&b, ">\r\n");
		free(n);
	} else {
		puts_(&b, "To: <");
		puts_(&b, to);
		puts_(&b, ">\r\n");
	}
	subject = subject && header_safe(subject) ? subject : "";
	subj = xmalloc(strlen(subject) + 8);
	sprintf(subj, "%s%s", strncasecmp(subject, "re:", 3) == 0 ? "" : "Re: ",
	    subject);
	put_header(&b, "Subject", subj);
	free(subj);
	puts_(&b, "Date: ");
	puts_(&b, date);
	puts_(&b, "\r\nMessage-ID: <");
	puts_(&b, msgid);
	puts_(&b, ">\r\n");
	if (header_safe(thread) && strchr(thread, '@') != NULL &&
	    strpbrk(thread, " <>") == NULL) {
		/* the thread is the first message's id: answer it */
		puts_(&b, "In-Reply-To: <");
		puts_(&b, thread);
		puts_(&b, ">\r\nReferences: <");
		puts_(&b, thread);
		puts_(&b, ">\r\n");
	}
	if (ref != NULL && header_safe(ref)) {
		puts_(&b, "X-Inboxd-Ref: ");
		puts_(&b, ref);
		puts_(&b, "\r\n");
	}
	if (cJSON_IsTrue(autom))
		puts_(&b, "Auto-Submitted: auto-replied\r\n");
	puts_(&b, "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	put_qp(&b, text);
	*rcpt = to;
	return b.p;
}

/* ---- sending ------------------------------------------------------------ */

struct upload {
	const char *p;
	size_t left;
};

static size_t
read_cb(char *out, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb < u->left ? size * nmemb : u->left;

	memcpy(out, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

/* An address without the display name: "Support <a@b>" -> "<a@b>". */
static void
envelope_from(const char *from, char *out, size_t len)
{
	const char *lt = strrchr(from, '<');
	size_t n;

	if (lt == NULL) {
		snprintf(out, len, "<%s>", from);
		return;
	}
	n = strcspn(lt, ">");
	snprintf(out, len, "%.*s>", (int)n, lt);
}

/* Sends one message. Returns 0, 1 for a transient failure, 2 for a
 * permanent one (detail says why). */
static int
smtp_send(struct imap_smtp *s, const char *rcpt, const char *msg,
    char *detail, size_t dlen)
{
	const struct inbox_connector_conf *cc = s->cc;
	char url[512], from[512], to[400], errbuf[CURL_ERROR_SIZE] = "";
	bool smtps = strcmp(cc->smtp_tls, "smtps") == 0;
	int port = cc->smtp_port ? cc->smtp_port : smtps ? 465 : 587;
	struct curl_slist *rcpts = NULL;
	struct upload u = { msg, strlen(msg) };
	long code = 0;
	CURLcode rc;
	CURL *c;

	snprintf(url, sizeof(url), "%s://%s:%d", smtps ? "smtps" : "smtp",
	    cc->smtp_host, port);
	envelope_from(cc->from, from, sizeof(from));
	snprintf(to, sizeof(to), "<%s>", rcpt);
	if ((c = curl_easy_init()) == NULL)
		fatalx("imap: curl_easy_init failed");
	rcpts = curl_slist_append(rcpts, to);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_INFILESIZE, (long)u.left);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(cc->smtp_tls, "starttls") == 0)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (!cc->smtp_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cc->smtp_user != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, cc->smtp_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->password ?
		    s->password : "");
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return 0;
	snprintf(detail, dlen, "SMTP %s:%d: %s%s%ld", cc->smtp_host, port,
	    errbuf[0] ? errbuf : curl_easy_strerror(rc), code ? " (reply " :
	    "", code);
	if (code)
		snprintf(detail + strlen(detail), dlen - strlen(detail), ")");
	else
		detail[strlen(detail) - 1] = '\0';    /* the trailing 0 */
	return code >= 500 && code < 600 ? 2 : 1;
}

static void
attempt(struct imap_smtp *s, struct pend *p, int64_t now)
{
	struct inbox_err err;
	const char *rcpt = NULL;
	char msgid[600], detail[512];
	char *msg;
	int rc;

	msg = imap_smtp_message(s->cc, p->o.item, now, &rcpt, msgid,
	    sizeof(msgid), &err);
	if (msg == NULL) {
		p->status = "failed";
		snprintf(p->detail, sizeof(p->detail), "%s", err.msg);
		return;
	}
	rc = smtp_send(s, rcpt, msg, detail, sizeof(detail));
	free(msg);
	if (rc == 0) {
		p->status = "sent";
		snprintf(p->detail, sizeof(p->detail), "%s", msgid);
		return;
	}
	p->failures++;
	if (rc == 2 || p->failures >= s->cc->send_attempts) {
		p->status = "failed";
		if (rc == 2)
			snprintf(p->detail, sizeof(p->detail), "%s", detail);
		else
			snprintf(p->detail, sizeof(p->detail), "%s (after %d "
			    "attempts)", detail, p->failures);
		return;
	}
	p->next_at = now + connector_backoff_ms(p->failures,
	    randombytes_random());
	atomic_fetch_add(&s->n->retries, 1);
	log_warnx("imap %s: %s %s: %s; attempt %d of %d in %lld ms",
	    s->cc->id, connector_item_str(p->o.item, "ref") ?
	    connector_item_str(p->o.item, "ref") : "?", rcpt, detail,
	    p->failures + 1, s->cc->send_attempts,
	    (long long)(p->next_at - now));
}

void *
imap_smtp_run(void *arg)
{
	struct imap_smtp *s = arg;

	while (!rt_sig_pending()) {
		struct connector_out got[BATCH];
		int64_t now = rt_now_ms(), wait = 1000;
		int n;

		/* report what is known, send what is due */
		for (size_t i = 0; i < s->npend;) {
			struct pend *p = &s->pend[i];

			if (p->status == NULL && p->next_at <= now)
				attempt(s, p, rt_now_ms());
			if (p->status != NULL) {
				bool sent = strcmp(p->status, "sent") == 0;

				if (connector_out_done(s->conn, &p->o, p->status,
				    sent ? p->detail : NULL, sent ? NULL :
				    p->detail) != 0) {
					i++;     /* Redis: report it later */
					continue;
				}
				atomic_fetch_add(sent ? &s->n->sent :
				    &s->n->failed, 1);
				log_info("imap %s: %s %s%s%s", s->cc->id,
				    connector_item_str(p->o.item, "ref") ?
				    connector_item_str(p->o.item, "ref") : "?",
				    p->status, sent ? "" : ": ", sent ? "" :
				    p->detail);
				connector_out_finish(&p->o);
				*p = s->pend[--s->npend];
				continue;
			}
			if (p->next_at - now < wait)
				wait = p->next_at - now;
			i++;
		}
		if (s->npend >= PENDING_MAX - BATCH) {
			struct timespec ts = { 0, 100000000L };

			nanosleep(&ts, NULL);
			continue;
		}
		n = connector_out_read(s->conn, got, BATCH, wait < 1 ? 1 :
		    (int)wait);
		if (n < 0) {
			struct timespec ts = { 1, 0 };

			nanosleep(&ts, NULL);
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct pend *p = &s->pend[s->npend++];

			memset(p, 0, sizeof(*p));
			p->o = got[i];
			/* a reply handed out before (a restart) counts its
			 * earlier attempts */
			p->failures = (int)(got[i].deliveries - 1);
		}
	}
	return NULL;
}
