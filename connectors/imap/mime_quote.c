/*
 * Where the quoted history of a reply starts: Gmail/Apple "On ... wrote:",
 * Outlook's "-----Original Message-----" and "From:/Sent:" blocks,
 * Thunderbird and Russian clients ("... пишет:"), and a trailing block of
 * "> " lines.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/imap/mime.h"
#include "connectors/imap/mime_int.h"

struct line {
	const char *s;          /* without leading blanks */
	size_t len;             /* without trailing blanks */
	size_t off;             /* where the raw line starts in the text */
};

#define LINES_MAX 20000

static bool
starts(const struct line *l, const char *p)
{
	size_t n = strlen(p);

	return l->len >= n && strncasecmp(l->s, p, n) == 0;
}

static bool
ends(const struct line *l, const char *p)
{
	size_t n = strlen(p);

	return l->len >= n && strncasecmp(l->s + l->len - n, p, n) == 0;
}

static bool
contains(const struct line *l, const char *p)
{
	size_t n = strlen(p);

	for (size_t i = 0; i + n <= l->len; i++)
		if (strncasecmp(l->s + i, p, n) == 0)
			return true;
	return false;
}

static bool
header_line(const struct line *l, const char *const *names)
{
	for (; *names; names++) {
		const char *s = l->s;
		size_t len = l->len;

		while (len > 0 && *s == '*') {      /* "*From:*" in text */
			s++;
			len--;
		}
		if (len >= strlen(*names) &&
		    strncasecmp(s, *names, strlen(*names)) == 0)
			return true;
	}
	return false;
}

static bool
dated(const struct line *l)
{
	for (size_t i = 0; i < l->len; i++)
		if (isdigit((unsigned char)l->s[i]) || l->s[i] == '@')
			return true;
	return false;
}

/* "On <date>, <name> wrote:" carries a date, a time or an address ("what
 * my colleague wrote:" does not); `when` is the line that must. */
static bool
wrote_line(const struct line *l, const struct line *when)
{
	static const char *const tails[] = { "wrote:", "пишет:", "написал:",
		"написала:", "написал(а):", "schrieb:", "a écrit :", "a écrit:",
		"escribió:", "ha scritto:", "escreveu:", "napisał(a):",
		NULL };

	if (!dated(when))
		return false;
	for (const char *const *t = tails; *t; t++)
		if (ends(l, *t))
			return true;
	return false;
}

static bool
is_history(const struct line *ls, size_t n, size_t i)
{
	static const char *const from[] = { "From:", "От:", "От кого:", NULL };
	static const char *const sent[] = { "Sent:", "Date:", "Отправлено:",
		"Дата:", NULL };
	const struct line *l = &ls[i];
	const struct line *next = NULL;

	for (size_t k = i + 1; k < n && k < i + 3; k++)
		if (ls[k].len > 0) {
			next = &ls[k];
			break;
		}
	if (l->len == 0)
		return false;
	if (starts(l, "--") && (contains(l, "Original Message") ||
	    contains(l, "Исходное сообщение") ||
	    contains(l, "Пересылаемое сообщение") ||
	    contains(l, "Forwarded message")))
		return true;
	if (starts(l, "__________") && next != NULL && header_line(next, from))
		return true;
	if (header_line(l, from) && l->s[0] != '>') {
		for (size_t k = i + 1; k < n && k <= i + 4; k++)
			if (header_line(&ls[k], sent))
				return true;
	}
	if (l->s[0] != '>' && wrote_line(l, l))
		return true;
	if (starts(l, "On ") && next != NULL && next->s[0] != '>' &&
	    wrote_line(next, l))
		return true;
	/* Gmail in other languages: "пн, 3 июн. 2024 г. в 10:15, Имя
	 * <addr@example.ru>:" followed by quoted lines */
	if (ends(l, ">:") && memchr(l->s, '@', l->len) != NULL &&
	    next != NULL && next->s[0] == '>')
		return true;
	return false;
}

char *
mime__strip_quoted(const char *text)
{
	struct line *ls;
	size_t n = 0, cut = (size_t)-1;
	const char *p = text;

	for (const char *q = text; *q && n < LINES_MAX; q++)
		n += *q == '\n';
	ls = xcalloc(n + 1, sizeof(*ls));
	n = 0;
	while (*p != '\0' && n < LINES_MAX) {
		const char *e = strchr(p, '\n');
		size_t raw = e ? (size_t)(e - p) : strlen(p);
		struct line *l = &ls[n++];

		l->off = (size_t)(p - text);
		l->s = p;
		l->len = raw;
		while (l->len > 0 && (*l->s == ' ' || *l->s == '\t')) {
			l->s++;
			l->len--;
		}
		while (l->len > 0 && isspace((unsigned char)l->s[l->len - 1]))
			l->len--;
		p += raw + (e ? 1 : 0);
	}
	for (size_t i = 0; i < n && cut == (size_t)-1; i++)
		if (is_history(ls, n, i))
			cut = i;
	if (cut == (size_t)-1 && n < LINES_MAX) {
		/* a trailing block of "> " lines */
		size_t first = (size_t)-1;

		for (size_t i = 0; i < n; i++) {
			if (ls[i].len == 0)
				continue;
			if (ls[i].s[0] == '>') {
				if (first == (size_t)-1)
					first = i;
			} else
				first = (size_t)-1;
		}
		cut = first;
	}
	if (cut != (size_t)-1) {
		size_t end = ls[cut].off;
		char *res;

		while (end > 0 && isspace((unsigned char)text[end - 1]))
			end--;
		free(ls);
		if (end == 0)
			return xstrdup(text);
		res = xstrndup(text, end);
		return res;
	}
	free(ls);
	return xstrdup(text);
}
