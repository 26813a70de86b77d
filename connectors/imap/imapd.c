/* inbox-imap's mail in: IMAP (libetpan) to inbox:in, exactly once per
 * folder checkpoint. One session; IDLE on a single folder when the server
 * offers it, polling otherwise; reconnect with backoff after any drop. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libetpan/libetpan.h>
#include <sodium.h>

#include "connectors/imap/imap_int.h"
#include "connectors/imap/tls.h"
#include "inbox/rt/rt.h"

#define FETCH_BATCH 25           /* messages per XADD round trip */
#define LIST_MAX 5000            /* UIDs looked at per pass */
#define DEAD_DATA_MAX (8u << 20) /* raw bytes kept in a dead letter */

struct imapd {
	const struct inbox_config *cfg;
	const struct inbox_connector_conf *cc;
	char *password;
	struct connector *pub;
	struct imap_state state;
	char *folders[64];
	size_t nfolders;
	char source[400];        /* "imap:<id>" for dead letters */
	mailimap *imap;
	bool idle_ok;
	int failures;
	struct imap_counters *n;
};

struct imapd *
imapd_create(const struct inbox_config *cfg,
    const struct inbox_connector_conf *cc, const char *password,
    struct imap_counters *n)
{
	struct imapd *d = xcalloc(1, sizeof(*d));
	char path[4200], *list, *save = NULL;

	d->cfg = cfg;
	d->cc = cc;
	d->n = n;
	d->password = password ? xstrdup(password) : NULL;
	d->pub = connector_create(cfg, cc);
	snprintf(d->source, sizeof(d->source), "imap:%s", cc->id);
	list = xstrdup(cc->folders);
	for (char *f = strtok_r(list, ",", &save); f != NULL &&
	    d->nfolders < 64; f = strtok_r(NULL, ",", &save)) {
		while (*f == ' ')
			f++;
		for (size_t k = strlen(f); k > 0 && f[k - 1] == ' '; k--)
			f[k - 1] = '\0';
		if (*f != '\0')
			d->folders[d->nfolders++] = xstrdup(f);
	}
	free(list);
	if (cc->state_path != NULL)
		snprintf(path, sizeof(path), "%s", cc->state_path);
	else
		snprintf(path, sizeof(path), "%s/imap-%s.state",
		    cfg->store_path, cc->id);
	if (imap_state_load(&d->state, path) != 0) {
		imapd_destroy(d);
		return NULL;
	}
	return d;
}

static void
session_close(struct imapd *d)
{
	if (d->imap != NULL) {
		mailimap_free(d->imap);
		d->imap = NULL;
	}
}

void
imapd_destroy(struct imapd *d)
{
	if (d == NULL)
		return;
	session_close(d);
	for (size_t i = 0; i < d->nfolders; i++)
		free(d->folders[i]);
	imap_state_finish(&d->state);
	connector_destroy(d->pub);
	if (d->password != NULL)
		sodium_memzero(d->password, strlen(d->password));
	free(d->password);
	free(d);
}

/* ---- the session --------------------------------------------------------- */

static int
tcp_connect(const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	char ports[8];
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ports, sizeof(ports), "%d", port);
	if ((rc = getaddrinfo(host, ports, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol)) < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(err, errlen, "connect %s:%d: %s", host, port,
		    strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static bool
ok(int rc)
{
	return rc == MAILIMAP_NO_ERROR || rc == MAILIMAP_NO_ERROR_AUTHENTICATED ||
	    rc == MAILIMAP_NO_ERROR_NON_AUTHENTICATED;
}

static int
session_open(struct imapd *d, char *err, size_t errlen)
{
	const struct inbox_connector_conf *cc = d->cc;
	bool imaps = strcmp(cc->imap_tls, "imaps") == 0;
	bool starttls = strcmp(cc->imap_tls, "starttls") == 0;
	int port = cc->imap_port ? cc->imap_port : imaps ? 993 : 143;
	mailstream_low *low;
	clist *caps = NULL;
	int rc, fd;

	d->imap = mailimap_new(0, NULL);
	if (d->imap == NULL)
		fatalx("imap: out of memory");
	mailimap_set_timeout(d->imap, 60);
	if (imaps) {
		if ((fd = tcp_connect(cc->imap_host, port, err, errlen)) < 0)
			return INBOX_EUNAVAIL;
		if ((low = imap_tls_open(fd, cc->imap_host, cc->imap_verify, err,
		    errlen)) == NULL) {
			close(fd);
			return INBOX_EUNAVAIL;
		}
		rc = mailimap_connect(d->imap, mailstream_new(low, 8192));
	} else {
		rc = mailimap_socket_connect(d->imap, cc->imap_host,
		    (uint16_t)port);
	}
	if (!ok(rc)) {
		if (err[0] == '\0')
			snprintf(err, errlen, "connect %s:%d: libetpan error %d",
			    cc->imap_host, port, rc);
		return INBOX_EUNAVAIL;
	}
	if (starttls) {
		mailstream_low *plain;

		if ((rc = mailimap_starttls(d->imap)) != MAILIMAP_NO_ERROR) {
			snprintf(err, errlen, "%s refused STARTTLS (error %d)",
			    cc->imap_host, rc);
			return INBOX_EUNAVAIL;
		}
		plain = mailstream_get_low(d->imap->imap_stream);
		fd = mailstream_low_get_fd(plain);
		if ((low = imap_tls_open(fd, cc->imap_host, cc->imap_verify, err,
		    errlen)) == NULL)
			return INBOX_EUNAVAIL;
		mailstream_low_free(plain);
		mailstream_set_low(d->imap->imap_stream, low);
	}
	if (strcmp(cc->imap_auth, "plain") == 0)
		rc = mailimap_authenticate(d->imap, "PLAIN", cc->imap_host, NULL,
		    NULL, cc->imap_user, cc->imap_user, d->password ?
		    d->password : "", NULL);
	else
		rc = mailimap_login(d->imap, cc->imap_user, d->password ?
		    d->password : "");
	if (rc != MAILIMAP_NO_ERROR) {
		snprintf(err, errlen, "login as %s refused: %s", cc->imap_user,
		    d->imap->imap_response ? d->imap->imap_response :
		    "no answer");
		return INBOX_EINVAL;
	}
	if (mailimap_capability(d->imap, (struct mailimap_capability_data **)
	    &caps) == MAILIMAP_NO_ERROR && caps != NULL)
		mailimap_capability_data_free(
		    (struct mailimap_capability_data *)caps);
	d->idle_ok = mailimap_has_idle(d->imap) != 0;
	return 0;
}

/* ---- fetching ---------------------------------------------------------- */

struct uid_size {
	uint32_t uid, size;
};

static int
cmp_uid(const void *a, const void *b)
{
	const struct uid_size *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* UIDs above `after` with their sizes, ascending, at most LIST_MAX. */
static int
list_new(struct imapd *d, uint32_t after, struct uid_size **out, size_t *n)
{
	struct mailimap_fetch_type *ft =
	    mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_interval(after + 1, 0);
	clist *res = NULL;
	clistiter *it;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_rfc822_size());
	rc = mailimap_uid_fetch(d->imap, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (rc != MAILIMAP_NO_ERROR)
		return rc;
	for (it = clist_begin(res); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att *ma = clist_content(it);
		struct uid_size us = { 0, 0 };

		for (clistiter *j = clist_begin(ma->att_list); j != NULL;
		    j = clist_next(j)) {
			struct mailimap_msg_att_item *item = clist_content(j);

			if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
				continue;
			if (item->att_data.att_static->att_type ==
			    MAILIMAP_MSG_ATT_UID)
				us.uid = item->att_data.att_static->att_data.att_uid;
			else if (item->att_data.att_static->att_type ==
			    MAILIMAP_MSG_ATT_RFC822_SIZE)
				us.size = item->att_data.att_static->att_data.
				    att_rfc822_size;
		}
		/* "n:*" names the last message even below n */
		if (us.uid <= after)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = us;
	}
	mailimap_fetch_list_free(res);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), cmp_uid);
	if (*n > LIST_MAX)
		*n = LIST_MAX;
	return MAILIMAP_NO_ERROR;
}

/* The whole message (or only its header) of uid: malloc'd, *len set. */
static int
fetch_one(struct imapd *d, uint32_t uid, bool header_only, char **out,
    size_t *len)
{
	struct mailimap_fetch_type *ft =
	    mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_single(uid);
	clist *res = NULL;
	int rc;

	*out = NULL;
	*len = 0;
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section(header_only ?
	    mailimap_section_new_header() : mailimap_section_new(NULL)));
	rc = mailimap_uid_fetch(d->imap, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (rc != MAILIMAP_NO_ERROR)
		return rc;
	for (clistiter *it = clist_begin(res); it != NULL && *out == NULL;
	    it = clist_next(it)) {
		struct mailimap_msg_att *ma = clist_content(it);

		for (clistiter *j = clist_begin(ma->att_list); j != NULL;
		    j = clist_next(j)) {
			struct mailimap_msg_att_item *item = clist_content(j);
			struct mailimap_msg_att_body_section *bs;

			if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
			    item->att_data.att_static->att_type !=
			    MAILIMAP_MSG_ATT_BODY_SECTION)
				continue;
			bs = item->att_data.att_static->att_data.att_body_section;
			if (bs->sec_body_part == NULL)
				continue;
			*out = xmalloc(bs->sec_length + 1);
			memcpy(*out, bs->sec_body_part, bs->sec_length);
			(*out)[bs->sec_length] = '\0';
			*len = bs->sec_length;
			break;
		}
	}
	mailimap_fetch_list_free(res);
	if (*out == NULL) {
		/* the message went away between the listing and the fetch */
		*out = xstrdup("");
		*len = 0;
	}
	return MAILIMAP_NO_ERROR;
}

struct batch {
	char *env[FETCH_BATCH];
	size_t len[FETCH_BATCH];
	size_t n;
	uint32_t last_uid;
};

static void
batch_finish(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->env[i]);
	b->n = 0;
}

/* A message that cannot be imported: kept raw in the dead stream, a notice
 * for agents in the batch. */
static int
poison(struct imapd *d, struct batch *b, const struct imap_source *src,
    const char *raw, size_t len, const char *reason)
{
	char sid[600];
	int rc;

	snprintf(sid, sizeof(sid), "%.400s:%u:%u", src->folder,
	    src->uidvalidity, src->uid);
	rc = connector_dead(d->pub, d->source, sid, reason, raw,
	    len > DEAD_DATA_MAX ? DEAD_DATA_MAX : len);
	if (rc != 0)
		return rc;
	atomic_fetch_add(&d->n->poison, 1);
	b->env[b->n] = imap_notice_envelope(d->cc, raw, len, src, reason,
	    rt_now_ms());
	b->len[b->n] = strlen(b->env[b->n]);
	b->n++;
	return 0;
}

/* Fetches and converts one message into the batch. Returns a libetpan
 * error (the session is gone), INBOX_EUNAVAIL (Redis) or 0. */
static int
take(struct imapd *d, struct batch *b, const char *folder,
    uint32_t uidvalidity, const struct uid_size *us)
{
	struct imap_source src = { folder, uidvalidity, us->uid };
	struct mail_msg m;
	struct inbox_err err;
	char *raw = NULL, reason[700];
	size_t len;
	int rc;

	if (us->size > (uint32_t)d->cc->max_message_size) {
		if ((rc = fetch_one(d, us->uid, true, &raw, &len)) != 0)
			return rc;
		snprintf(reason, sizeof(reason), "message of %u bytes is over "
		    "max_message_size (%d)", us->size, d->cc->max_message_size);
		rc = poison(d, b, &src, raw, len, reason);
		free(raw);
		return rc;
	}
	if ((rc = fetch_one(d, us->uid, false, &raw, &len)) != 0)
		return rc;
	memset(&m, 0, sizeof(m));
	memset(&err, 0, sizeof(err));
	if (mail_parse(raw, len, &m, &err) != 0) {
		snprintf(reason, sizeof(reason), "unreadable e-mail: %s",
		    err.msg);
		rc = poison(d, b, &src, raw, len, reason);
	} else if ((b->env[b->n] = imap_envelope(d->cc, d->cfg->blob_path,
	    (size_t)d->cfg->max_attachment, &m, raw, len, &src, rt_now_ms(),
	    &err)) == NULL) {
		log_warnx("imap %s: %s", d->cc->id, err.msg);
		rc = INBOX_EIO;  /* a disk problem: retried, never skipped */
	} else {
		b->len[b->n] = strlen(b->env[b->n]);
		b->n++;
		rc = 0;
	}
	mail_msg_finish(&m);
	free(raw);
	return rc;
}

static int
flush(struct imapd *d, struct batch *b, const char *folder,
    uint32_t uidvalidity)
{
	int rc;

	if (b->n > 0 && (rc = connector_publish(d->pub,
	    (const char *const *)b->env, b->len, b->n)) != 0)
		return rc;
	atomic_fetch_add(&d->n->fetched, b->n);
	/* durable in Redis: only now does the checkpoint move */
	if ((rc = imap_state_set(&d->state, folder, uidvalidity,
	    b->last_uid)) != 0)
		return rc;
	if (b->n > 0)
		log_debug("imap %s: %s: %zu messages up to uid %u handed over",
		    d->cc->id, folder, b->n, b->last_uid);
	batch_finish(b);
	return 0;
}

/* Where a folder without a checkpoint starts (the initial sync policy). */
static int
start_uid(struct imapd *d, uint32_t uidnext, uint32_t *last)
{
	const char *p = d->cc->initial_sync;

	*last = 0;
	if (strcmp(p, "all") == 0)
		return MAILIMAP_NO_ERROR;
	if (strcmp(p, "new") != 0) {
		long days = strtol(p, NULL, 10);
		time_t since = time(NULL) - days * 86400;
		struct tm tm;
		struct mailimap_search_key *key;
		clist *res = NULL;
		int rc;

		gmtime_r(&since, &tm);
		key = mailimap_search_key_new_since(mailimap_date_new(tm.tm_mday,
		    tm.tm_mon + 1, tm.tm_year + 1900));
		rc = mailimap_uid_search(d->imap, NULL, key, &res);
		mailimap_search_key_free(key);
		if (rc != MAILIMAP_NO_ERROR)
			return rc;
		*last = uidnext > 0 ? uidnext - 1 : 0;
		for (clistiter *it = clist_begin(res); it != NULL;
		    it = clist_next(it)) {
			uint32_t u = *(uint32_t *)clist_content(it);

			if (u > 0 && u - 1 < *last)
				*last = u - 1;
		}
		mailimap_search_result_free(res);
		return MAILIMAP_NO_ERROR;
	}
	*last = uidnext > 0 ? uidnext - 1 : 0;
	return MAILIMAP_NO_ERROR;
}

/* Hands over every new message of folder. Returns 0, a libetpan error, or
 * an INBOX_E code. */
static int
sync_folder(struct imapd *d, const char *folder)
{
	struct imap_checkpoint *cp;
	struct uid_size *list = NULL;
	struct batch b;
	uint32_t uidvalidity, last;
	size_t n = 0;
	int rc;

	if ((rc = mailimap_select(d->imap, folder)) != MAILIMAP_NO_ERROR) {
		log_warnx("imap %s: SELECT %s: %s", d->cc->id, folder,
		    d->imap->imap_response ? d->imap->imap_response : "failed");
		return rc;
	}
	uidvalidity = d->imap->imap_selection_info->sel_uidvalidity;
	cp = imap_state_get(&d->state, folder);
	if (cp == NULL) {
		if ((rc = start_uid(d, d->imap->imap_selection_info->sel_uidnext,
		    &last)) != MAILIMAP_NO_ERROR)
			return rc;
		log_info("imap %s: %s: first sync (%s) after uid %u", d->cc->id,
		    folder, d->cc->initial_sync, last);
		if ((rc = imap_state_set(&d->state, folder, uidvalidity,
		    last)) != 0)
			return rc;
	} else if (cp->uidvalidity != uidvalidity) {
		log_warnx("imap %s: %s: UIDVALIDITY changed from %u to %u: "
		    "fetching the folder again (messages already in inboxd "
		    "are recognized by Message-ID)", d->cc->id, folder,
		    cp->uidvalidity, uidvalidity);
		last = 0;
	} else {
		last = cp->last_uid;
	}
	memset(&b, 0, sizeof(b));
	do {
		if ((rc = list_new(d, last, &list, &n)) != MAILIMAP_NO_ERROR)
			return rc;
		for (size_t i = 0; i < n && rc == 0; i++) {
			rc = take(d, &b, folder, uidvalidity, &list[i]);
			if (rc != 0)
				break;
			b.last_uid = list[i].uid;
			if (b.n == FETCH_BATCH || i + 1 == n)
				rc = flush(d, &b, folder, uidvalidity);
			if (rt_sig_pending())
				break;
		}
		if (rc == 0 && b.last_uid > last)
			last = b.last_uid;
		batch_finish(&b);
		free(list);
		list = NULL;
	} while (rc == 0 && n == LIST_MAX && !rt_sig_pending());
	return rc;
}

/* ---- waiting ------------------------------------------------------------ */

static bool
nap(int64_t ms)
{
	int64_t end = rt_now_ms() + ms;

	while (rt_now_ms() < end) {
		struct timespec ts = { 0, 200000000L };

		if (rt_sig_pending())
			return false;
		nanosleep(&ts, NULL);
	}
	return !rt_sig_pending();
}

/* IDLE on the selected folder until the server says something, the idle
 * interval passes or a signal comes. Returns a libetpan error or 0. */
static int
idle(struct imapd *d)
{
	int64_t end = rt_now_ms() + d->cc->idle_interval_ms;
	int rc, fd;

	if ((rc = mailimap_idle(d->imap)) != MAILIMAP_NO_ERROR)
		return rc;
	fd = mailimap_idle_get_fd(d->imap);
	while (!rt_sig_pending() && rt_now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (d->imap->imap_stream->read_buffer_len > 0)
			break;
		if (poll(&p, 1, 500) > 0)
			break;
	}
	return mailimap_idle_done(d->imap);
}

int
imapd_run(struct imapd *d)
{
	bool ready = false;

	while (!rt_sig_pending()) {
		char err[600] = "";
		int rc = 0;

		if (d->imap == NULL) {
			if ((rc = session_open(d, err, sizeof(err))) != 0) {
				int64_t wait = connector_backoff_ms(++d->failures,
				    randombytes_random());

				log_warnx("imap %s: %s; again in %lld ms",
				    d->cc->id, err, (long long)wait);
				session_close(d);
				nap(wait);
				continue;
			}
			atomic_store(&d->n->connected, true);
			log_info("%s: imap %s: %s@%s, %zu folder(s), %s",
			    ready ? "reconnected" : "imap ready", d->cc->id,
			    d->cc->imap_user, d->cc->imap_host, d->nfolders,
			    d->idle_ok && d->nfolders == 1 ? "IDLE" :
			    "polling");
			ready = true;
		}
		for (size_t i = 0; i < d->nfolders && rc == 0; i++)
			rc = sync_folder(d, d->folders[i]);
		if (rc == 0 && d->idle_ok && d->nfolders == 1 &&
		    !rt_sig_pending())
			rc = idle(d);
		else if (rc == 0)
			nap(d->cc->poll_interval_ms);
		if (rc != 0) {
			int64_t wait = connector_backoff_ms(++d->failures,
			    randombytes_random());

			log_warnx("imap %s: %s (error %d); reconnecting in %lld "
			    "ms", d->cc->id, rc == INBOX_EUNAVAIL ?
			    "redis unavailable" : rc < 0 ? inbox_strerror(rc) :
			    "IMAP connection lost", rc, (long long)wait);
			session_close(d);
			atomic_store(&d->n->connected, false);
			atomic_fetch_add(&d->n->reconnects, 1);
			nap(wait);
		} else {
			d->failures = 0;
		}
	}
	log_info("imap %s: stopping", d->cc->id);
	return 0;
}
