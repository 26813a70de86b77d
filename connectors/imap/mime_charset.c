/*
 * Charsets: any label (or none, or a wrong one) to valid UTF-8 with iconv.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/imap/mime.h"
#include "connectors/imap/mime_int.h"

void
mime__buf_add(struct mime_buf *b, const void *s, size_t n)
{
	if (b->max != 0 && b->len + n > b->max) {
		n = b->max > b->len ? b->max - b->len : 0;
		b->truncated = true;
	}
	if (n == 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
mime__buf_addc(struct mime_buf *b, char c)
{
	mime__buf_add(b, &c, 1);
}

char *
mime__buf_take(struct mime_buf *b)
{
	char *p = b->p;

	if (p == NULL)
		p = xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void
mime__buf_free(struct mime_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *
mime__utf8_clean(const char *s, size_t len, size_t max, size_t *nrepl)
{
	static const char fffd[] = "\xef\xbf\xbd";
	struct mime_buf b = { 0 };
	size_t pos = 0, repl = 0;

	while (pos < len) {
		long bad = inbox_utf8_invalid_at(s + pos, len - pos);
		size_t good = bad < 0 ? len - pos : (size_t)bad;
		const char *nul = memchr(s + pos, '\0', good);

		if (nul != NULL)
			good = (size_t)(nul - (s + pos));
		mime__buf_add(&b, s + pos, good);
		pos += good;
		if (pos < len) {
			mime__buf_add(&b, fffd, 3);
			repl++;
			pos++;
		}
	}
	if (max != 0 && b.len > max) {
		size_t cut = max;

		while (cut > 0 && ((unsigned char)b.p[cut] & 0xc0) == 0x80)
			cut--;
		b.len = cut;
		b.p[cut] = '\0';
	}
	if (nrepl != NULL)
		*nrepl = repl;
	return mime__buf_take(&b);
}

enum cs_class { CS_UTF8, CS_ASCII, CS_SINGLE, CS_OTHER, CS_UNKNOWN };

struct cs_alias {
	const char *label;
	const char *iconv;
	enum cs_class cls;
};

/* Labels seen in real mail that iconv does not know or that name the
 * wrong table (WHATWG maps latin1 and ascii to windows-1252). */
static const struct cs_alias aliases[] = {
	{ "utf-8", "UTF-8", CS_UTF8 }, { "utf8", "UTF-8", CS_UTF8 },
	{ "unicode-1-1-utf-8", "UTF-8", CS_UTF8 },
	{ "us-ascii", "UTF-8", CS_ASCII }, { "ascii", "UTF-8", CS_ASCII },
	{ "ansi_x3.4-1968", "UTF-8", CS_ASCII }, { "iso646-us", "UTF-8", CS_ASCII },
	{ "iso-8859-1", "WINDOWS-1252", CS_SINGLE },
	{ "iso8859-1", "WINDOWS-1252", CS_SINGLE },
	{ "iso_8859-1", "WINDOWS-1252", CS_SINGLE },
	{ "latin1", "WINDOWS-1252", CS_SINGLE }, { "l1", "WINDOWS-1252", CS_SINGLE },
	{ "cp1251", "WINDOWS-1251", CS_SINGLE },
	{ "win-1251", "WINDOWS-1251", CS_SINGLE },
	{ "x-cp1251", "WINDOWS-1251", CS_SINGLE },
	{ "cp-1251", "WINDOWS-1251", CS_SINGLE },
	{ "koi8r", "KOI8-R", CS_SINGLE },
	{ "gb2312", "GB18030", CS_OTHER }, { "gbk", "GB18030", CS_OTHER },
	{ "x-gbk", "GB18030", CS_OTHER },
	{ "ks_c_5601-1987", "CP949", CS_OTHER },
	{ "iso-8859-8-i", "ISO-8859-8", CS_SINGLE },
	{ "unknown-8bit", NULL, CS_UNKNOWN }, { "x-unknown", NULL, CS_UNKNOWN },
	{ "unknown", NULL, CS_UNKNOWN }, { "x-user-defined", NULL, CS_UNKNOWN },
	{ "8bit", NULL, CS_UNKNOWN }, { "default", NULL, CS_UNKNOWN },
	{ "charset", NULL, CS_UNKNOWN },
};

/* Single-byte families: bytes that are valid UTF-8 under such a label are
 * UTF-8 mislabelled (legacy text is practically never valid UTF-8). */
static const char *const single_prefixes[] = {
	"iso-8859-", "iso8859-", "iso_8859-", "windows-125", "cp125", "koi8",
	"cp866", "ibm866", "macintosh", "mac-cyrillic", "x-mac-cyrillic",
};

static enum cs_class
classify(const char *label, char *norm, size_t normsz, const char **iconv_name)
{
	size_t n = 0;

	*iconv_name = NULL;
	if (label == NULL)
		return CS_UNKNOWN;
	while (*label == ' ' || *label == '\t' || *label == '"' || *label == '\'')
		label++;
	for (; *label != '\0' && n + 1 < normsz; label++) {
		unsigned char c = (unsigned char)*label;

		if (c == '"' || c == '\'' || c == ' ' || c == '\t' || c == ';')
			break;
		if (c < 0x21 || c > 0x7e)
			return CS_UNKNOWN;
		norm[n++] = (char)tolower(c);
	}
	norm[n] = '\0';
	if (n == 0)
		return CS_UNKNOWN;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(norm, aliases[i].label) == 0) {
			*iconv_name = aliases[i].iconv;
			return aliases[i].cls;
		}
	*iconv_name = norm;
	for (size_t i = 0; i < sizeof(single_prefixes) / sizeof(single_prefixes[0]);
	    i++)
		if (strncmp(norm, single_prefixes[i], strlen(single_prefixes[i]))
		    == 0)
			return CS_SINGLE;
	return CS_OTHER;
}

/* iconv from `from` to UTF-8; each undecodable byte becomes U+FFFD.
 * Returns -1 when iconv does not know `from`. */
static int
convert(const char *from, const char *s, size_t len, struct mime_buf *out,
    size_t *nrepl)
{
	iconv_t cd = iconv_open("UTF-8", from);
	char tmp[4096];
	char *in = (char *)(uintptr_t)s;
	size_t inleft = len;

	if (cd == (iconv_t)-1)
		return -1;
	while (inleft > 0) {
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int e = errno;

		mime__buf_add(out, tmp, sizeof(tmp) - oleft);
		if (r != (size_t)-1)
			break;
		if (e == E2BIG)
			continue;
		/* EILSEQ, EINVAL (truncated sequence at the end) or other */
		mime__buf_add(out, "\xef\xbf\xbd", 3);
		(*nrepl)++;
		in++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	{
		char *o = tmp;
		size_t oleft = sizeof(tmp);

		iconv(cd, NULL, NULL, &o, &oleft);
		mime__buf_add(out, tmp, sizeof(tmp) - oleft);
	}
	iconv_close(cd);
	return 0;
}

enum guess { G_CP1251, G_KOI8R, G_LATIN1 };

/* Cyrillic text has its 8-bit bytes in runs (whole words), Latin-1 text
 * has an accented letter here and there. Lowercase letters are
 * 0xe0-0xff in windows-1251 but 0xc0-0xdf in KOI8-R. */
static enum guess
guess_legacy(const unsigned char *s, size_t len)
{
	size_t hi = 0, runs = 0, upper = 0, lower = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x80)
			continue;
		hi++;
		if ((i > 0 && s[i - 1] >= 0x80) || (i + 1 < len && s[i + 1] >= 0x80))
			runs++;
		if (s[i] >= 0xc0 && s[i] <= 0xdf)
			upper++;
		else if (s[i] >= 0xe0)
			lower++;
	}
	if (hi == 0 || runs * 2 < hi)
		return G_LATIN1;
	return upper > lower ? G_KOI8R : G_CP1251;
}

static bool
has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

char *
mail_to_utf8(const char *charset, const char *s, size_t len, const char **note)
{
	static const char *const guessed_lying[] = {
		"windows-1251 assumed (bytes are not valid UTF-8)",
		"koi8-r assumed (bytes are not valid UTF-8)",
		"iso-8859-1 assumed (bytes are not valid UTF-8)",
	};
	static const char *const guessed_unknown[] = {
		"windows-1251 assumed for an unknown charset",
		"koi8-r assumed for an unknown charset",
		"iso-8859-1 assumed for an unknown charset",
	};
	static const char *const guess_iconv[] = {
		"WINDOWS-1251", "KOI8-R", "WINDOWS-1252",
	};
	char norm[64];
	const char *from, *why = NULL;
	struct mime_buf out = { 0 };
	size_t nrepl = 0;
	enum cs_class cls;
	char *res;

	if (s == NULL)
		len = 0;
	cls = classify(charset, norm, sizeof(norm), &from);
	if (cls != CS_OTHER && !has_8bit(s, len))
		cls = CS_UTF8;          /* ASCII reads the same in all of them */
	switch (cls) {
	case CS_UTF8:
	case CS_ASCII:
		if (inbox_utf8_invalid_at(s, len) < 0) {
			from = NULL;
		} else {
			enum guess g = guess_legacy((const unsigned char *)s, len);

			from = guess_iconv[g];
			why = guessed_lying[g];
		}
		break;
	case CS_SINGLE:
		if (inbox_utf8_invalid_at(s, len) < 0) {
			from = NULL;
			why = "utf-8 read despite a legacy charset label";
		}
		break;
	case CS_OTHER:
		break;
	case CS_UNKNOWN:
		from = NULL;
		break;
	}
	if (from != NULL && convert(from, s, len, &out, &nrepl) != 0)
		cls = CS_UNKNOWN;       /* iconv has no such table */
	if (cls == CS_UNKNOWN) {
		mime__buf_free(&out);
		nrepl = 0;
		if (inbox_utf8_invalid_at(s, len) < 0) {
			from = NULL;
			why = "utf-8 assumed for an unknown charset";
		} else {
			enum guess g = guess_legacy((const unsigned char *)s, len);

			from = guess_iconv[g];
			why = guessed_unknown[g];
			if (convert(from, s, len, &out, &nrepl) != 0)
				from = NULL;    /* no iconv tables at all */
		}
	}
	if (from == NULL)
		res = mime__utf8_clean(s, len, 0, &nrepl);
	else {
		size_t more = 0;

		res = mime__utf8_clean(out.p, out.len, 0, &more);
		nrepl += more;
	}
	mime__buf_free(&out);
	if (why == NULL && nrepl > 0)
		why = "invalid bytes replaced with U+FFFD";
	if (note != NULL)
		*note = why;
	return res;
}
