/*
 * Header values: RFC 2047 encoded words in and out, RFC 2231 parameters.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "connectors/imap/mime.h"
#include "connectors/imap/mime_int.h"

#define EW_MAX 1024     /* longest encoded word we accept (RFC: 75) */

struct ew {
	char charset[64];
	char enc;           /* 'B' or 'Q' */
	const char *text;
	size_t textlen;
	size_t end;         /* offset just past "?=" */
};

/* Parses an encoded word at v[i] ("=?cs?E?text?="). */
static bool
ew_parse(const char *v, size_t len, size_t i, struct ew *w)
{
	size_t j = i + 2, cs = 0;

	if (i + 2 > len || v[i] != '=' || v[i + 1] != '?')
		return false;
	while (j < len && v[j] != '?') {
		unsigned char c = (unsigned char)v[j];

		if (c <= 0x20 || c >= 0x7f || cs + 1 >= sizeof(w->charset))
			return false;
		w->charset[cs++] = (char)c;
		j++;
	}
	w->charset[cs] = '\0';
	{
		char *star = strchr(w->charset, '*');  /* RFC 2231 language */

		if (star != NULL)
			*star = '\0';
	}
	if (cs == 0 || j + 3 > len || v[j + 2] != '?')
		return false;
	w->enc = (char)toupper((unsigned char)v[j + 1]);
	if (w->enc != 'B' && w->enc != 'Q')
		return false;
	j += 3;
	w->text = v + j;
	while (j + 1 < len && !(v[j] == '?' && v[j + 1] == '=')) {
		if (v[j] == '\r' || v[j] == '\n' || j - i > EW_MAX)
			return false;
		j++;
	}
	if (j + 1 >= len)
		return false;
	w->textlen = (size_t)(v + j - w->text);
	w->end = j + 2;
	return true;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
ew_decode(const struct ew *w, struct mime_buf *out)
{
	if (w->enc == 'B') {
		size_t idx = 0, n = 0;
		char *dec = NULL;

		if (mailmime_part_parse(w->text, w->textlen, &idx,
		    MAILMIME_MECHANISM_BASE64, &dec, &n) == MAILIMF_NO_ERROR) {
			mime__buf_add(out, dec, n);
			mailmime_decoded_part_free(dec);
		}
		return;
	}
	for (size_t i = 0; i < w->textlen; i++) {
		int c = (unsigned char)w->text[i];

		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < w->textlen &&
		    hexval(w->text[i + 1]) >= 0 && hexval(w->text[i + 2]) >= 0) {
			c = hexval(w->text[i + 1]) * 16 + hexval(w->text[i + 2]);
			i += 2;
		}
		mime__buf_addc(out, (char)c);
	}
}

/* Converts and appends pending bytes of one charset (NULL: raw header
 * bytes, UTF-8 when valid, else guessed). */
static void
flush(struct mime_buf *out, struct mime_buf *pend, const char *charset,
    const char **note)
{
	const char *n = NULL;
	char *u;

	if (pend->len == 0)
		return;
	u = mail_to_utf8(charset, pend->p, pend->len, &n);
	mime__buf_add(out, u, strlen(u));
	free(u);
	if (n != NULL && note != NULL && *note == NULL)
		*note = n;
	pend->len = 0;
}

char *
mime__header_decode(const char *v, size_t len, size_t max, const char **note)
{
	struct mime_buf out = { .max = max }, pend = { 0 }, ws = { 0 };
	char cur[64] = "";      /* charset of pend; "" for raw bytes */
	bool prev_ew = false;
	char *res;

	if (note != NULL)
		*note = NULL;
	for (size_t i = 0; i < len && !out.truncated;) {
		struct ew w;
		char c = v[i];

		if (c == '=' && ew_parse(v, len, i, &w)) {
			if (!prev_ew || strcasecmp(cur, w.charset) != 0) {
				flush(&out, &pend, cur[0] ? cur : NULL, note);
				/* whitespace between encoded words is dropped */
				if (!prev_ew)
					mime__buf_add(&out, ws.p, ws.len);
				snprintf(cur, sizeof(cur), "%s", w.charset);
			}
			ws.len = 0;
			ew_decode(&w, &pend);
			prev_ew = true;
			i = w.end;
			continue;
		}
		if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			mime__buf_addc(&ws, ' ');
			i++;
			continue;
		}
		if (prev_ew || ws.len > 0) {
			if (prev_ew) {
				flush(&out, &pend, cur[0] ? cur : NULL, note);
				cur[0] = '\0';
			}
			mime__buf_add(&pend, ws.p, ws.len);
			ws.len = 0;
		}
		prev_ew = false;
		mime__buf_addc(&pend, c);
		i++;
	}
	if (!prev_ew)
		mime__buf_add(&pend, ws.p, ws.len);
	flush(&out, &pend, cur[0] ? cur : NULL, note);
	mime__buf_free(&pend);
	mime__buf_free(&ws);
	res = mime__utf8_clean(out.p ? out.p : "", out.len, max, NULL);
	mime__buf_free(&out);
	return res;
}

char *
mail_decode_header(const char *value)
{
	size_t len;

	if (value == NULL)
		return xstrdup("");
	len = strnlen(value, MIME_HEADER_MAX * 4);
	return mime__header_decode(value, len, MIME_HEADER_MAX, NULL);
}

static bool
needs_encoding(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || (p[0] == '=' && p[1] == '?'))
			return true;
	return false;
}

char *
mail_encode_header(const char *utf8)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct mime_buf out = { 0 };
	char *clean;
	size_t len, pos = 0;

	if (utf8 == NULL)
		return xstrdup("");
	if (!needs_encoding(utf8))
		return xstrdup(utf8);
	clean = mime__utf8_clean(utf8, strlen(utf8), 0, NULL);
	len = strlen(clean);
	while (pos < len) {
		/* 45 bytes make 60 base64 characters: a 72-column word */
		size_t n = len - pos > 45 ? 45 : len - pos;

		while (pos + n < len && n > 0 &&
		    ((unsigned char)clean[pos + n] & 0xc0) == 0x80)
			n--;
		if (out.len > 0)
			mime__buf_add(&out, "\r\n ", 3);
		mime__buf_add(&out, "=?UTF-8?B?", 10);
		for (size_t i = 0; i < n; i += 3) {
			const unsigned char *p = (const unsigned char *)clean + pos + i;
			unsigned long v = (unsigned long)p[0] << 16;
			size_t k = n - i;

			if (k > 1)
				v |= (unsigned long)p[1] << 8;
			if (k > 2)
				v |= p[2];
			mime__buf_addc(&out, b64[(v >> 18) & 63]);
			mime__buf_addc(&out, b64[(v >> 12) & 63]);
			mime__buf_addc(&out, k > 1 ? b64[(v >> 6) & 63] : '=');
			mime__buf_addc(&out, k > 2 ? b64[v & 63] : '=');
		}
		mime__buf_add(&out, "?=", 2);
		pos += n;
	}
	free(clean);
	return mime__buf_take(&out);
}

static const char *
find_attr(const char *want, const char *const *attr, const char *const *val,
    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (attr[i] != NULL && val[i] != NULL &&
		    strcasecmp(attr[i], want) == 0)
			return val[i];
	return NULL;
}

static void
pct_decode(const char *s, struct mime_buf *out)
{
	for (; *s; s++) {
		if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			mime__buf_addc(out, (char)(hexval(s[1]) * 16 + hexval(s[2])));
			s += 2;
		} else
			mime__buf_addc(out, *s);
	}
}

/* "charset'lang'rest": copies the charset, returns rest (or s). */
static const char *
split_charset(const char *s, char *cs, size_t cssz)
{
	const char *q1 = strchr(s, '\''), *q2;

	cs[0] = '\0';
	if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL)
		return s;
	snprintf(cs, cssz, "%.*s", (int)(q1 - s), s);
	return q2 + 1;
}

char *
mime__param_2231(const char *name, const char *const *attr,
    const char *const *val, size_t n)
{
	char key[96], cs[64] = "";
	const char *v;
	struct mime_buf raw = { .max = MIME_NAME_MAX * 4 };
	char *res;

	snprintf(key, sizeof(key), "%s*", name);
	if ((v = find_attr(key, attr, val, n)) != NULL) {
		pct_decode(split_charset(v, cs, sizeof(cs)), &raw);
	} else {
		for (int k = 0; k < 64; k++) {
			bool enc = true;

			snprintf(key, sizeof(key), "%s*%d*", name, k);
			if ((v = find_attr(key, attr, val, n)) == NULL) {
				snprintf(key, sizeof(key), "%s*%d", name, k);
				v = find_attr(key, attr, val, n);
				enc = false;
			}
			if (v == NULL)
				break;
			if (k == 0 && enc)
				v = split_charset(v, cs, sizeof(cs));
			if (enc)
				pct_decode(v, &raw);
			else
				mime__buf_add(&raw, v, strlen(v));
		}
		if (raw.len == 0) {
			if ((v = find_attr(name, attr, val, n)) == NULL)
				return NULL;
			return mime__header_decode(v, strlen(v), MIME_NAME_MAX,
			    NULL);
		}
	}
	res = mail_to_utf8(cs[0] ? cs : NULL, raw.p ? raw.p : "", raw.len, NULL);
	mime__buf_free(&raw);
	if (strlen(res) > MIME_NAME_MAX) {
		char *cut = mime__utf8_clean(res, strlen(res), MIME_NAME_MAX, NULL);

		free(res);
		res = cut;
	}
	return res;
}
