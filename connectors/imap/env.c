/* A parsed mail to an envelope; threads; attachment blobs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "connectors/imap/imap_int.h"

#define TEXT_MAX (1024 * 1024)
#define HTML_MAX (4 * 1024 * 1024)
#define THREAD_MAX 400
#define SUBJECT_MAX 1000
#define EXTID_MAX 400
#define THREAD_ENC_MAX 225       /* bytes of a thread we encode in an id */

static int
mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int rc = 0;

	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (mkdir(p, 0750) != 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

int
imap_blob_put(const char *dir, const unsigned char *data, size_t len,
    char *hex)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char sub[4096], path[4200], tmp[4220];
	struct stat sb;
	int fd, rc = INBOX_EIO;

	crypto_hash_sha256(h, data, len);
	sodium_bin2hex(hex, 65, h, sizeof(h));
	snprintf(sub, sizeof(sub), "%s/%.2s", dir, hex);
	snprintf(path, sizeof(path), "%s/%s", sub, hex);
	if (stat(path, &sb) == 0 && (size_t)sb.st_size == len)
		return 0;        /* content-addressed: already there */
	if (mkdir_p(sub) != 0) {
		log_warn("imap: cannot create %s", sub);
		return INBOX_EIO;
	}
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640)) < 0) {
		log_warn("imap: cannot write %s", tmp);
		return INBOX_EIO;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("imap: cannot write %s", tmp);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || rename(tmp, path) != 0) {
		log_warn("imap: cannot store %s", path);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* A copy of s cut at max bytes on a UTF-8 boundary. */
static char *
cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return xstrdup(s);
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return xstrndup(s, n);
}

static void
add_cut(cJSON *o, const char *name, const char *s, size_t max)
{
	char *c = cut(s, max);

	cJSON_AddStringToObject(o, name, c);
	free(c);
}

/* Decodes the thread from one of our reply ids ("r.<b64>.<n>.<rand>@d"). */
static char *
our_thread(const char *id)
{
	const char *p, *dot;
	unsigned char bin[THREAD_ENC_MAX + 1];
	size_t n = 0;

	if (id == NULL || strncmp(id, "r.", 2) != 0)
		return NULL;
	p = id + 2;
	if ((dot = strchr(p, '.')) == NULL || dot == p)
		return NULL;
	if (sodium_base642bin(bin, sizeof(bin) - 1, p, (size_t)(dot - p),
	    NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n == 0)
		return NULL;
	bin[n] = '\0';
	if (memchr(bin, '\0', n) != NULL ||
	    inbox_utf8_invalid_at((const char *)bin, n) >= 0)
		return NULL;
	return xstrdup((const char *)bin);
}

char *
imap_thread_of(const struct mail_msg *m, const char *external_id)
{
	char *t;

	if ((t = our_thread(m->in_reply_to)) != NULL)
		return t;
	for (size_t i = m->nreferences; i > 0; i--)
		if ((t = our_thread(m->references[i - 1])) != NULL)
			return t;
	if (m->nreferences > 0 && m->references[0][0] != '\0')
		return cut(m->references[0], THREAD_MAX);
	if (m->in_reply_to != NULL && m->in_reply_to[0] != '\0')
		return cut(m->in_reply_to, THREAD_MAX);
	if (m->message_id != NULL && m->message_id[0] != '\0')
		return cut(m->message_id, THREAD_MAX);
	return cut(external_id, THREAD_MAX);
}

char *
imap_reply_message_id(const char *thread, const char *ref, const char *domain)
{
	char b64[sodium_base64_ENCODED_LEN(THREAD_ENC_MAX,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char num[24] = "0", rnd[17], *out;
	unsigned char r[8];
	size_t n = 0, tl = strlen(thread);

	for (const char *p = ref ? ref : ""; *p && n + 1 < sizeof(num); p++)
		if (*p >= '0' && *p <= '9')
			num[n++] = *p;
	num[n ? n : 1] = '\0';
	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(rnd, sizeof(rnd), r, sizeof(r));
	out = xmalloc(sizeof(b64) + 128 + strlen(domain));
	if (tl > 0 && tl <= THREAD_ENC_MAX) {
		sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)thread,
		    tl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		sprintf(out, "r.%s.%s.%s@%s", b64, num, rnd, domain);
	} else {
		sprintf(out, "n.%s.%s@%s", num, rnd, domain);
	}
	return out;
}

/* The message's own id: its Message-ID, else a hash of the raw bytes (the
 * same message fetched again has the same id). */
static char *
external_id_of(const struct mail_msg *m, const char *raw, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[65], *id;

	if (m->message_id != NULL && m->message_id[0] != '\0' &&
	    strlen(m->message_id) <= EXTID_MAX)
		return xstrdup(m->message_id);
	crypto_hash_sha256(h, (const unsigned char *)raw, len);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	id = xmalloc(80);
	snprintf(id, 80, "sha256:%s", hex);
	return id;
}

static void
add_source(cJSON *env, const struct imap_source *src)
{
	char ref[600];

	snprintf(ref, sizeof(ref), "imap:%.500s:%u:%u", src->folder,
	    src->uidvalidity, src->uid);
	cJSON_AddStringToObject(env, "raw_ref", ref);
}

static cJSON *
base_envelope(const struct inbox_connector_conf *cc, const char *extid,
    const char *thread, int64_t ts)
{
	cJSON *env = cJSON_CreateObject();

	cJSON_AddNumberToObject(env, "v", 1);
	cJSON_AddStringToObject(env, "connector", cc->id);
	cJSON_AddStringToObject(env, "channel", "email");
	cJSON_AddStringToObject(env, "kind", "message");
	cJSON_AddStringToObject(env, "external_id", extid);
	cJSON_AddNumberToObject(env, "ts", (double)ts);
	add_cut(env, "thread", thread, THREAD_MAX);
	return env;
}

static char *
print(cJSON *env)
{
	char *s = cJSON_PrintUnformatted(env);

	cJSON_Delete(env);
	if (s == NULL)
		fatalx("imap: out of memory");
	return s;
}

char *
imap_envelope(const struct inbox_connector_conf *cc, const char *blob_dir,
    size_t max_attachment, const struct mail_msg *m, const char *raw,
    size_t len, const struct imap_source *src, int64_t now,
    struct inbox_err *err)
{
	char *extid = external_id_of(m, raw, len);
	char *thread = imap_thread_of(m, extid);
	cJSON *env, *ct, *atts;
	const char *addr = m->from_addr ? m->from_addr : "unknown@invalid";

	env = base_envelope(cc, extid, thread, m->date_ms > 0 &&
	    m->date_ms < now + 86400000 ? m->date_ms : now);
	ct = cJSON_AddObjectToObject(env, "contact");
	add_cut(ct, "external_id", addr, 400);
	add_cut(ct, "name", m->from_name ? m->from_name : "", 256);
	if (m->from_addr != NULL && strlen(m->from_addr) <= 320)
		cJSON_AddStringToObject(ct, "email", m->from_addr);
	add_cut(env, "text", m->text_new ? m->text_new : m->text ? m->text :
	    "", TEXT_MAX);
	if (m->text != NULL && m->text_new != NULL &&
	    strcmp(m->text, m->text_new) != 0)
		add_cut(env, "text_full", m->text, TEXT_MAX);
	if (m->subject != NULL && m->subject[0] != '\0')
		add_cut(env, "subject", m->subject, SUBJECT_MAX);
	if (m->html != NULL)
		add_cut(env, "html", m->html, HTML_MAX);
	if (m->in_reply_to != NULL && strlen(m->in_reply_to) <= 400)
		cJSON_AddStringToObject(env, "reply_to", m->in_reply_to);
	if (m->automatic) {
		cJSON_AddBoolToObject(env, "auto", true);
		if (m->automatic_why != NULL)
			cJSON_AddStringToObject(env, "auto_why",
			    m->automatic_why);
	}
	if (m->charset_note != NULL)
		cJSON_AddStringToObject(env, "charset_note", m->charset_note);
	atts = m->nattachments ? cJSON_AddArrayToObject(env, "attachments") :
	    NULL;
	for (size_t i = 0; i < m->nattachments; i++) {
		const struct mail_attachment *a = &m->attachments[i];
		cJSON *o = cJSON_CreateObject();
		char hex[65];

		add_cut(o, "name", a->name ? a->name : "attachment", 255);
		cJSON_AddStringToObject(o, "mime", a->mime ? a->mime :
		    "application/octet-stream");
		cJSON_AddNumberToObject(o, "size", (double)a->size);
		if (a->inline_part)
			cJSON_AddBoolToObject(o, "inline", true);
		if (a->size > max_attachment) {
			cJSON_AddBoolToObject(o, "too_large", true);
		} else if (imap_blob_put(blob_dir, a->data, a->size, hex) != 0) {
			cJSON_Delete(o);
			cJSON_Delete(env);
			free(extid);
			free(thread);
			inbox_err_set(err, INBOX_EIO, "attachments", 0,
			    "cannot store an attachment under %s", blob_dir);
			return NULL;
		} else {
			char ref[80];

			snprintf(ref, sizeof(ref), "sha256:%s", hex);
			cJSON_AddStringToObject(o, "blob", ref);
		}
		cJSON_AddItemToArray(atts, o);
	}
	add_source(env, src);
	free(extid);
	free(thread);
	return print(env);
}

char *
imap_notice_envelope(const struct inbox_connector_conf *cc,
    const char *raw_headers, size_t len, const struct imap_source *src,
    const char *reason, int64_t now)
{
	struct mail_msg m;
	struct inbox_err err;
	char extid[600], *thread, text[1200];
	cJSON *env, *ct;
	bool parsed;

	memset(&m, 0, sizeof(m));
	parsed = mail_parse(raw_headers, len, &m, &err) == 0;
	if (parsed && m.message_id != NULL && strlen(m.message_id) <= 400)
		snprintf(extid, sizeof(extid), "%s", m.message_id);
	else
		snprintf(extid, sizeof(extid), "imap:%.300s:%u:%u", src->folder,
		    src->uidvalidity, src->uid);
	thread = parsed ? imap_thread_of(&m, extid) : xstrdup(extid);
	env = base_envelope(cc, extid, thread, now);
	ct = cJSON_AddObjectToObject(env, "contact");
	add_cut(ct, "external_id", parsed && m.from_addr ? m.from_addr :
	    "unknown@invalid", 400);
	add_cut(ct, "name", parsed && m.from_name ? m.from_name : "", 256);
	if (parsed && m.from_addr != NULL && strlen(m.from_addr) <= 320)
		cJSON_AddStringToObject(ct, "email", m.from_addr);
	snprintf(text, sizeof(text), "[inboxd could not import this e-mail: "
	    "%.900s. The original is kept in the dead-letter stream.]",
	    reason);
	cJSON_AddStringToObject(env, "text", text);
	if (parsed && m.subject != NULL && m.subject[0] != '\0')
		add_cut(env, "subject", m.subject, SUBJECT_MAX);
	cJSON_AddStringToObject(env, "import_error", reason);
	add_source(env, src);
	mail_msg_finish(&m);
	free(thread);
	return print(env);
}
