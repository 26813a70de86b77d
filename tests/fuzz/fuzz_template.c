/*
 * Fuzz target: the text rules of inbox/dialog.h that take what people type
 * (reply templates, tags, @mentions), with their invariants:
 *   - any text with its braces doubled renders back to itself;
 *   - a rendered template holds no placeholder the lookup did not know;
 *   - a normalized tag is 1..INBOX_TAG_MAX bytes of UTF-8 and normalizes
 *     to itself;
 *   - every mention is a valid login, given once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbox/dialog.h"

#define INPUT_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Knows every name but those starting with "x"; the value is the name. */
static const char *
lookup(void *arg, const char *name)
{
	(void)arg;
	return name[0] == 'x' ? NULL : name;
}

static const char *
nothing(void *arg, const char *name)
{
	(void)arg;
	(void)name;
	return NULL;
}

static void
templates(const char *s)
{
	size_t n = strlen(s), k = 0;
	char *esc = malloc(2 * n + 1), *out;
	struct inbox_err err;

	if (esc == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		esc[k++] = s[i];
		if (s[i] == '{' || s[i] == '}')
			esc[k++] = s[i];
	}
	esc[k] = '\0';
	if (inbox_template_render(esc, nothing, NULL, &out, &err) != 0 ||
	    strcmp(out, s) != 0)
		__builtin_trap();
	free(out);
	free(esc);

	if (inbox_template_render(s, lookup, NULL, &out, &err) == 0)
		free(out);
	else if (err.code != INBOX_EINVAL || err.msg[0] == '\0' ||
	    err.field[0] == '\0')
		__builtin_trap();
}

static void
tags(const char *s)
{
	char out[INBOX_TAG_MAX + 1], again[INBOX_TAG_MAX + 1];
	struct inbox_err err;
	size_t n;

	if (inbox_tag_normalize(s, out, sizeof(out), &err) != 0)
		return;
	n = strlen(out);
	if (n == 0 || n > INBOX_TAG_MAX || inbox_utf8_invalid_at(out, n) >= 0)
		__builtin_trap();
	if (inbox_tag_normalize(out, again, sizeof(again), &err) != 0 ||
	    strcmp(out, again) != 0)
		__builtin_trap();
}

struct seen {
	char login[64][65];
	size_t n;
};

static int
mention(void *arg, const char *login)
{
	struct seen *m = arg;

	if (!inbox_login_valid(login))
		__builtin_trap();
	for (size_t i = 0; i < m->n && i < 64; i++)
		if (strcmp(m->login[i], login) == 0)
			__builtin_trap();
	if (m->n < 64)
		memcpy(m->login[m->n], login, strlen(login) + 1);
	m->n++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen m = { .n = 0 };
	char *s;

	if (size > INPUT_MAX)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';          /* the functions take C strings */
	templates(s);
	tags(s);
	if (inbox_mentions(s, mention, &m) != m.n)
		__builtin_trap();
	free(s);
	return 0;
}
