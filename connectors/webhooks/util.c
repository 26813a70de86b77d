/* What the channels share: envelope building, JSON and signature helpers
 * (channel.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "connectors/webhooks/channel.h"

#define NAME_MAX_BYTES 256

/* Copies at most max bytes of s, cut back to a UTF-8 character start. */
static char *
cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return xstrdup(s);
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return xstrndup(s, n);
}

static void
add_cut(cJSON *o, const char *name, const char *s, size_t max)
{
	char *c = cut(s ? s : "", max);

	cJSON_AddStringToObject(o, name, c);
	free(c);
}

int64_t
wh_time_ms(double t, double unit_ms, int64_t fallback)
{
	double ms = t * unit_ms;

	/* NaN, not positive, or after the year 5000: not a time */
	if (!(ms >= 1.0 && ms < 95617584000000.0))
		return fallback;
	return (int64_t)ms;
}

cJSON *
wh_env_new(const struct wh_conn *wc, const char *kind, const char *external_id,
    int64_t ts, const char *contact_id, const char *contact_name,
    const char *thread, const char *text)
{
	cJSON *env = cJSON_CreateObject(), *ct;

	if (env == NULL)
		fatalx("webhooks: out of memory");
	cJSON_AddNumberToObject(env, "v", INBOX_ENVELOPE_VERSION);
	cJSON_AddStringToObject(env, "connector", wc->cc->id);
	cJSON_AddStringToObject(env, "channel",
	    inbox_channel_name(wc->cc->channel));
	cJSON_AddStringToObject(env, "kind", kind);
	add_cut(env, "external_id", external_id, INBOX_EXTID_MAX);
	cJSON_AddNumberToObject(env, "ts", (double)(ts > 0 ? ts : 1));
	ct = cJSON_AddObjectToObject(env, "contact");
	add_cut(ct, "external_id", contact_id && *contact_id ? contact_id :
	    "unknown", INBOX_EXTID_MAX);
	add_cut(ct, "name", contact_name, NAME_MAX_BYTES);
	add_cut(env, "thread", thread && *thread ? thread : "unknown",
	    INBOX_EXTID_MAX);
	add_cut(env, "text", text, 1024 * 1024);
	return env;
}

void
wh_env_emit(struct wh_envelopes *out, cJSON *env)
{
	struct inbox_envelope e;
	struct inbox_err err;
	char *raw = cJSON_PrintUnformatted(env);

	if (raw == NULL)
		fatalx("webhooks: out of memory");
	if (inbox_envelope_from_json(&e, env, &err) == 0) {
		free(raw);
		wh_envelopes_add(out, inbox_envelope_encode(&e, NULL),
		    inbox_shard_hash(e.connector, e.thread));
		inbox_envelope_finish(&e);
		return;
	}
	log_warnx("webhooks: envelope refused (%s); passed on to be "
	    "dead-lettered", err.msg);
	wh_envelopes_add(out, raw, 0);  /* no thread: the first shard's */
}

void
wh_env_status(const struct wh_conn *wc, struct wh_envelopes *out,
    const char *platform_id, const char *status, int64_t ts,
    const char *contact_id, const char *thread, const char *error)
{
	char ext[INBOX_EXTID_MAX + 1];
	cJSON *env;

	snprintf(ext, sizeof(ext), "status:%.300s:%s", platform_id, status);
	env = wh_env_new(wc, "status", ext, ts, contact_id, "", thread, "");
	cJSON_AddStringToObject(env, "status", status);
	add_cut(env, "reply_to", platform_id, INBOX_EXTID_MAX);
	if (error != NULL)
		add_cut(env, "error", error, 1000);
	wh_env_emit(out, env);
}

void
wh_env_text(cJSON *env, const struct wh_buf *label, const char *text)
{
	struct wh_buf all = { 0 };

	if (label->len > 0)
		wh_buf_add(&all, label->s);
	if (label->len > 0 && text != NULL)
		wh_buf_add(&all, " ");
	if (text != NULL)
		wh_buf_add(&all, text);
	cJSON_ReplaceItemInObjectCaseSensitive(env, "text",
	    cJSON_CreateString(all.s ? all.s : ""));
	wh_buf_finish(&all);
}

int
wh_item_text(const cJSON *item, const char **thread, const char **text,
    char *why, size_t wlen)
{
	*thread = wh_jstr(item, "thread");
	*text = wh_jstr(item, "text");
	if (*thread == NULL || *text == NULL || **text == '\0') {
		snprintf(why, wlen, "out item has no thread or text");
		return INBOX_EINVAL;
	}
	return 0;
}

/* The length of UTF-8 sequence starting with byte c, and its units. */
static size_t
char_len(unsigned char c)
{
	return c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
	    (c & 0xf8) == 0xf0 ? 4 : 1;
}

static size_t
char_units(size_t len, enum wh_text_units units)
{
	switch (units) {
	case WH_UNITS_BYTES:
		return len;
	case WH_UNITS_UTF16:
		return len == 4 ? 2 : 1;
	case WH_UNITS_CHARS:
		break;
	}
	return 1;
}

size_t
wh_text_split(const char *text, size_t max, enum wh_text_units units,
    char ***parts)
{
	size_t n = 0, len = strlen(text);
	char **out = NULL;

	if (max < 4)
		max = 4;
	while (len > 0 || n == 0) {
		size_t used = 0, end = 0, cut, skip = 0;
		size_t nl = 0, sp = 0;

		/* the longest prefix that fits, remembering the breaks */
		while (end < len) {
			size_t cl = char_len((unsigned char)text[end]);
			size_t u = char_units(cl, units);

			if (cl > len - end)
				cl = len - end;
			if (used + u > max)
				break;
			if (text[end] == '\n')
				nl = end + 1;
			else if (text[end] == ' ')
				sp = end + 1;
			used += u;
			end += cl;
		}
		cut = end;
		if (end < len) {
			/* a break that leaves at least half the part */
			size_t brk = nl > 1 && 2 * (nl - 1) >= end ? nl :
			    sp > 1 && 2 * (sp - 1) >= end ? sp : 0;

			if (brk > 0) {
				cut = brk - 1;
				skip = 1;
			}
		}
		out = xrealloc(out, (n + 1) * sizeof(*out));
		out[n++] = xstrndup(text, cut);
		text += cut + skip;
		len -= cut + skip;
	}
	*parts = out;
	return n;
}

void
wh_env_attach(cJSON *env, const char *type, const char *name,
    const char *mime, double size, const char *url, const char *file_id)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(env, "attachments"), *a;

	if (arr == NULL)
		arr = cJSON_AddArrayToObject(env, "attachments");
	if (cJSON_GetArraySize(arr) >= 100)
		return;
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", type);
	cJSON_AddStringToObject(a, "name", name ? name : type);
	if (mime != NULL)
		cJSON_AddStringToObject(a, "mime", mime);
	if (size >= 0)
		cJSON_AddNumberToObject(a, "size", size);
	if (url != NULL)
		cJSON_AddStringToObject(a, "url", url);
	if (file_id != NULL)
		cJSON_AddStringToObject(a, "file_id", file_id);
	cJSON_AddItemToArray(arr, a);
}

const cJSON *
wh_jobj(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsObject(it) ? it : NULL;
}

const cJSON *
wh_jarr(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsArray(it) ? it : NULL;
}

const char *
wh_jstr(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

bool
wh_jnum(const cJSON *o, const char *name, double *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	if (cJSON_IsNumber(it)) {
		*out = it->valuedouble;
		return true;
	}
	if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
		char *end;
		double d = strtod(it->valuestring, &end);

		if (*end == '\0') {
			*out = d;
			return true;
		}
	}
	return false;
}

const char *
wh_jid(const cJSON *o, const char *name, char *buf, size_t len)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
		snprintf(buf, len, "%s", it->valuestring);
		return buf;
	}
	if (cJSON_IsNumber(it) && it->valuedouble > -9e15 &&
	    it->valuedouble < 9e15) {
		snprintf(buf, len, "%lld", (long long)it->valuedouble);
		return buf;
	}
	return NULL;
}

/* Skips a JSON string starting at s[i] == '"'; returns the index after its
 * closing quote, or len. */
static size_t
skip_string(const char *s, size_t i, size_t len)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

const char *
wh_json_top_int(const char *body, size_t len, const char *name, char *buf,
    size_t blen)
{
	size_t nlen = strlen(name), i = 0;
	int depth = 0;

	while (i < len) {
		char c = body[i];

		if (c == '"') {
			size_t end = skip_string(body, i, len), j;

			if (depth == 1 && end - i == nlen + 2 &&
			    memcmp(body + i + 1, name, nlen) == 0) {
				j = end;
				while (j < len && isspace((unsigned char)body[j]))
					j++;
				if (j < len && body[j] == ':') {
					size_t k = 0;

					j++;
					while (j < len &&
					    isspace((unsigned char)body[j]))
						j++;
					if (j < len && body[j] == '-' && k + 1 < blen)
						buf[k++] = body[j++];
					while (j < len && isdigit((unsigned char)
					    body[j]) && k + 1 < blen)
						buf[k++] = body[j++];
					buf[k] = '\0';
					return k > 0 && isdigit((unsigned char)
					    buf[k - 1]) ? buf : NULL;
				}
			}
			i = end;
			continue;
		}
		if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		i++;
	}
	return NULL;
}

void
wh_json_hash_id(const cJSON *v, const char *prefix, char *buf, size_t len)
{
	unsigned char h[16];
	char hex[33];
	char *s = cJSON_PrintUnformatted(v);

	if (s == NULL)
		fatalx("webhooks: out of memory");
	crypto_generichash(h, sizeof(h), (const unsigned char *)s, strlen(s),
	    NULL, 0);
	free(s);
	inbox_hex(hex, h, sizeof(h));
	snprintf(buf, len, "%s:%s", prefix, hex);
}

bool
wh_hmac_sha256_ok(const char *key, const char *body, size_t len,
    const char *hex)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	unsigned char got[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	size_t glen = 0;
	const char *end;

	if (key == NULL || hex == NULL || strlen(hex) != 2 * sizeof(got))
		return false;
	if (sodium_hex2bin(got, sizeof(got), hex, strlen(hex), NULL, &glen,
	    &end) != 0 || glen != sizeof(got) || *end != '\0')
		return false;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	    strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	return sodium_memcmp(mac, got, sizeof(mac)) == 0;
}

bool
wh_secret_eq(const char *got, const char *want)
{
	unsigned char hg[32], hw[32];

	if (got == NULL || want == NULL)
		return false;
	/* Hash both so the comparison takes the same time for any length. */
	crypto_generichash(hg, sizeof(hg), (const unsigned char *)got,
	    strlen(got), NULL, 0);
	crypto_generichash(hw, sizeof(hw), (const unsigned char *)want,
	    strlen(want), NULL, 0);
	return sodium_memcmp(hg, hw, sizeof(hg)) == 0;
}

void
wh_buf_add(struct wh_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

void
wh_buf_addf(struct wh_buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	wh_buf_add(b, tmp);
}

const char *
wh_buf_str(struct wh_buf *b)
{
	return b->s ? b->s : "";
}

void
wh_buf_finish(struct wh_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

void
wh_buf_urlenc(struct wh_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char t[4];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			t[0] = (char)c;
			t[1] = '\0';
		} else {
			t[0] = '%';
			t[1] = hex[c >> 4];
			t[2] = hex[c & 15];
			t[3] = '\0';
		}
		wh_buf_add(b, t);
	}
}

void
wh_send_http_default(long http_status, const char *body, size_t len,
    int64_t retry_after_ms, struct wh_send_result *res)
{
	if (http_status == 0) {
		res->outcome = WH_SEND_RETRY;
		snprintf(res->error, sizeof(res->error), "network: %.*s",
		    (int)(len > 400 ? 400 : len), body);
	} else if (http_status == 429 || http_status >= 500) {
		res->outcome = WH_SEND_RETRY;
		res->retry_after_ms = retry_after_ms;
		snprintf(res->error, sizeof(res->error), "HTTP %ld", http_status);
	} else if (http_status >= 200 && http_status < 300) {
		res->outcome = WH_SEND_SENT;
	} else {
		res->outcome = WH_SEND_FAILED;
		snprintf(res->error, sizeof(res->error), "HTTP %ld: %.*s",
		    http_status, (int)(len > 400 ? 400 : len), body);
	}
}
