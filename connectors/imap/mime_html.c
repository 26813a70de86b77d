/*
 * HTML to plain text, for mail that has no text/plain part. Not a browser:
 * enough to read what a customer wrote and to find the quoted history.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/imap/mime.h"
#include "connectors/imap/mime_int.h"

struct h2t {
	struct mime_buf out;
	int depth;              /* blockquote nesting */
	int newlines;           /* line breaks owed before the next text */
	bool space;             /* a space owed before the next text */
	bool line_start;
};

static void
emit(struct h2t *h, const char *s, size_t n)
{
	if (h->out.len > 0 && h->newlines > 0) {
		int k = h->newlines > 2 ? 2 : h->newlines;

		for (int i = 0; i < k; i++) {
			mime__buf_addc(&h->out, '\n');
		}
		h->line_start = true;
		h->space = false;
	}
	h->newlines = 0;
	if (h->line_start) {
		for (int i = 0; i < h->depth && i < 16; i++)
			mime__buf_add(&h->out, "> ", 2);
		h->line_start = false;
		h->space = false;
	}
	if (h->space)
		mime__buf_addc(&h->out, ' ');
	h->space = false;
	mime__buf_add(&h->out, s, n);
}

static void
need_lines(struct h2t *h, int n)
{
	if (h->newlines < n)
		h->newlines = n;
}

static size_t
put_utf8(char *o, unsigned long cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp == 0xa0)
		cp = ' ';
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static const struct {
	const char *name;
	unsigned long cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", ' ' }, { "copy", 0xa9 }, { "reg", 0xae },
	{ "laquo", 0xab }, { "raquo", 0xbb }, { "mdash", 0x2014 },
	{ "ndash", 0x2013 }, { "hellip", 0x2026 }, { "rsquo", 0x2019 },
	{ "lsquo", 0x2018 }, { "ldquo", 0x201c }, { "rdquo", 0x201d },
	{ "bdquo", 0x201e }, { "euro", 0x20ac }, { "trade", 0x2122 },
	{ "middot", 0xb7 }, { "bull", 0x2022 }, { "deg", 0xb0 },
	{ "times", 0xd7 }, { "shy", 0xad }, { "zwnj", 0x200c },
};

/* Decodes the entity at s[0] == '&'; returns bytes consumed (0: none). */
static size_t
entity(const char *s, size_t len, char *o, size_t *olen)
{
	size_t i = 1;
	unsigned long cp = 0;

	if (i < len && s[i] == '#') {
		bool hex = i + 1 < len && (s[i + 1] == 'x' || s[i + 1] == 'X');
		size_t start;

		i += hex ? 2 : 1;
		start = i;
		while (i < len && i - start < 8 &&
		    (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i]))) {
			int d = (unsigned char)s[i];

			cp = cp * (hex ? 16 : 10) + (unsigned long)(isdigit(d) ?
			    d - '0' : tolower(d) - 'a' + 10);
			i++;
		}
		if (i == start)
			return 0;
		if (i < len && s[i] == ';')
			i++;
		*olen = put_utf8(o, cp);
		return i;
	}
	for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
		size_t n = strlen(entities[k].name);

		if (len > n && strncmp(s + 1, entities[k].name, n) == 0) {
			i = 1 + n;
			if (i < len && s[i] == ';')
				i++;
			*olen = put_utf8(o, entities[k].cp);
			return i;
		}
	}
	return 0;
}

static bool
name_is(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcasecmp(name, *list) == 0)
			return true;
	return false;
}

/* Skips past the closing </tag> of a raw-text element; returns the new
 * offset (len when there is none). */
static size_t
skip_element(const char *s, size_t len, size_t i, const char *tag)
{
	size_t n = strlen(tag);

	for (; i + n + 2 <= len; i++)
		if (s[i] == '<' && s[i + 1] == '/' &&
		    strncasecmp(s + i + 2, tag, n) == 0) {
			const char *gt = memchr(s + i, '>', len - i);

			return gt ? (size_t)(gt - s) + 1 : len;
		}
	return len;
}

char *
mime__html_to_text(const char *s, size_t len, size_t max)
{
	static const char *const skip[] = { "script", "style", "head", "title",
		NULL };
	static const char *const para[] = { "p", "h1", "h2", "h3", "h4", "h5",
		"h6", "table", NULL };
	static const char *const line[] = { "div", "tr", "li", "ul", "ol", "hr",
		"dt", "dd", "pre", "center", "address", "section", "article",
		"header", "footer", NULL };
	struct h2t h = { .out = { .max = max }, .line_start = true };
	size_t i = 0;
	char *res;

	while (i < len && !h.out.truncated) {
		unsigned char c = (unsigned char)s[i];

		if (c == '<' && i + 1 < len && (isalpha((unsigned char)s[i + 1]) ||
		    s[i + 1] == '/' || s[i + 1] == '!' || s[i + 1] == '?')) {
			char name[16];
			size_t n = 0, j = i + 1;
			bool closing = false;
			char q = 0;

			if (len - i >= 4 && strncmp(s + i, "<!--", 4) == 0) {
				const char *end = memmem(s + i + 4, len - i - 4,
				    "-->", 3);

				i = end ? (size_t)(end - s) + 3 : len;
				continue;
			}
			if (s[j] == '/') {
				closing = true;
				j++;
			}
			while (j < len && n + 1 < sizeof(name) &&
			    isalnum((unsigned char)s[j]))
				name[n++] = s[j++];
			name[n] = '\0';
			for (; j < len; j++) {      /* to the '>' outside quotes */
				if (q != 0) {
					if (s[j] == q)
						q = 0;
				} else if (s[j] == '"' || s[j] == '\'')
					q = s[j];
				else if (s[j] == '>')
					break;
			}
			i = j < len ? j + 1 : len;
			if (!closing && name_is(name, skip)) {
				i = skip_element(s, len, i, name);
				continue;
			}
			if (strcasecmp(name, "br") == 0)
				h.newlines++;
			else if (strcasecmp(name, "blockquote") == 0) {
				h.depth += closing ? -1 : 1;
				if (h.depth < 0)
					h.depth = 0;
				need_lines(&h, 1);
				h.line_start = true;
			} else if (name_is(name, para))
				need_lines(&h, 2);
			else if (name_is(name, line)) {
				need_lines(&h, 1);
				if (!closing && strcasecmp(name, "li") == 0)
					emit(&h, "- ", 2);
			} else if (strcasecmp(name, "td") == 0 ||
			    strcasecmp(name, "th") == 0)
				h.space = true;
			continue;
		}
		if (c == '&') {
			char o[4];
			size_t olen = 0, used = entity(s + i, len - i, o, &olen);

			if (used > 0) {
				if (olen == 1 && o[0] == ' ')
					h.space = h.out.len > 0;
				else
					emit(&h, o, olen);
				i += used;
				continue;
			}
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
			if (h.out.len > 0)
				h.space = true;
			i++;
			continue;
		}
		{
			size_t j = i + 1;

			while (j < len && s[j] != '<' && s[j] != '&' && s[j] != ' ' &&
			    s[j] != '\t' && s[j] != '\r' && s[j] != '\n' &&
			    s[j] != '\f')
				j++;
			emit(&h, s + i, j - i);
			i = j;
		}
	}
	res = mime__buf_take(&h.out);
	{
		size_t n = strlen(res);

		while (n > 0 && isspace((unsigned char)res[n - 1]))
			res[--n] = '\0';
	}
	return res;
}
