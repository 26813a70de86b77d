/*
 * The dialog lifecycle and the value rules of a ticket (inbox/dialog.h):
 * pure functions, the clock comes from the caller.
 */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "inbox/dialog.h"

#define SNOOZE_MAX_MS	(5LL * 365 * 24 * 3600 * 1000)
#define LOGIN_MAX	64
#define PLACEHOLDER_MAX	64

static const char *const dstate_names[INBOX_DS__COUNT] = {
	[INBOX_DS_OPEN] = "open",
	[INBOX_DS_SNOOZED] = "snoozed",
	[INBOX_DS_CLOSED] = "closed",
};

/* Per action: its name in messages and who causes it. */
static const struct {
	const char *name;
	const char *why;
} actions[INBOX_DA__COUNT] = {
	[INBOX_DA_CLOSE] = { "close", "agent" },
	[INBOX_DA_SNOOZE] = { "snooze", "agent" },
	[INBOX_DA_REOPEN] = { "reopen", "agent" },
	[INBOX_DA_CUSTOMER_MSG] = { "customer message", "customer_message" },
	[INBOX_DA_TIMER] = { "timer", "timer" },
};

/* ---- lifecycle ------------------------------------------------------- */

const char *
inbox_dstate_name(int state)
{
	if (state < 0 || state >= INBOX_DS__COUNT)
		return "unknown";
	return dstate_names[state];
}

int
inbox_dstate_parse(const char *name, int *state)
{
	if (name == NULL)
		return INBOX_EINVAL;
	for (int i = 0; i < INBOX_DS__COUNT; i++) {
		if (strcmp(name, dstate_names[i]) == 0) {
			*state = i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

static int
illegal(struct inbox_err *err, int action, int state)
{
	return inbox_err_set(err, INBOX_ESTATE, "state", 0,
	    "illegal transition: %s of a%s %s dialog", actions[action].name,
	    state == INBOX_DS_OPEN ? "n" : "", dstate_names[state]);
}

/*
 * Every (state, action) pair, from the header:
 *
 *               open           snoozed              closed
 *   CLOSE       -> closed      -> closed            ESTATE
 *   SNOOZE      -> snoozed     -> snoozed (moved)   ESTATE
 *   REOPEN      ESTATE         -> open              -> open, reopened
 *   CUSTOMER    no change      -> open, unsnoozed   -> open, reopened
 *   TIMER       no change      due: -> open,        no change
 *                              unsnoozed
 *
 * An agent's own reopen of a snoozed dialog is not an "unsnoozed" (nobody
 * needs to be told). Leaving snoozed clears snooze_until; closing sets
 * closed_at, which reopening keeps (it is the time of the last close).
 */
int
inbox_dialog_apply(struct inbox_dialog *d, int action, int64_t until,
    int64_t now, struct inbox_dtransition *t, struct inbox_err *err)
{
	int from = d->state;

	memset(t, 0, sizeof(*t));
	t->from = t->to = from;
	if (from < 0 || from >= INBOX_DS__COUNT)
		return inbox_err_set(err, INBOX_EINVAL, "state", 0,
		    "unknown dialog state %d", from);
	if (action < 0 || action >= INBOX_DA__COUNT)
		return inbox_err_set(err, INBOX_EINVAL, "action", 0,
		    "unknown dialog action %d", action);
	t->why = actions[action].why;

	switch (action) {
	case INBOX_DA_CLOSE:
		if (from == INBOX_DS_CLOSED)
			return illegal(err, action, from);
		d->state = INBOX_DS_CLOSED;
		d->snooze_until = 0;
		d->closed_at = now;
		break;
	case INBOX_DA_SNOOZE:
		if (from == INBOX_DS_CLOSED)
			return illegal(err, action, from);
		if (until <= now)
			return inbox_err_set(err, INBOX_EINVAL, "until", 0,
			    "until: %lld is not after now (%lld)",
			    (long long)until, (long long)now);
		/* until > now, so the difference fits in 64 unsigned bits */
		if ((uint64_t)until - (uint64_t)now > (uint64_t)SNOOZE_MAX_MS)
			return inbox_err_set(err, INBOX_EINVAL, "until", 0,
			    "until: %lld is more than 5 years ahead",
			    (long long)until);
		d->state = INBOX_DS_SNOOZED;
		d->snooze_until = until;
		break;
	case INBOX_DA_REOPEN:
		if (from == INBOX_DS_OPEN)
			return illegal(err, action, from);
		if (from == INBOX_DS_CLOSED) {
			d->reopen_count++;
			t->reopened = true;
		}
		d->state = INBOX_DS_OPEN;
		d->snooze_until = 0;
		break;
	case INBOX_DA_CUSTOMER_MSG:
		if (from == INBOX_DS_OPEN)
			return 0;
		if (from == INBOX_DS_CLOSED) {
			d->reopen_count++;
			t->reopened = true;
		} else
			t->unsnoozed = true;
		d->state = INBOX_DS_OPEN;
		d->snooze_until = 0;
		break;
	case INBOX_DA_TIMER:
		if (from != INBOX_DS_SNOOZED || now < d->snooze_until)
			return 0;
		d->state = INBOX_DS_OPEN;
		d->snooze_until = 0;
		t->unsnoozed = true;
		break;
	}
	t->to = d->state;
	t->changed = true;
	return 0;
}

/* ---- UTF-8 ------------------------------------------------------------ */

/* Decodes one sequence of text inbox_utf8_invalid_at() has accepted. */
static size_t
utf8_get(const unsigned char *s, wint_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		*cp = ((wint_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0) {
		*cp = ((wint_t)(s[0] & 0x0f) << 12) |
		    ((wint_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		return 3;
	}
	*cp = ((wint_t)(s[0] & 0x07) << 18) | ((wint_t)(s[1] & 0x3f) << 12) |
	    ((wint_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
	return 4;
}

static size_t
utf8_len(wint_t cp)
{
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Writes cp (a Unicode scalar value) and returns its length. */
static size_t
utf8_put(unsigned char *o, wint_t cp)
{
	size_t n = utf8_len(cp);

	switch (n) {
	case 1:
		o[0] = (unsigned char)cp;
		break;
	case 2:
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		break;
	case 3:
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		break;
	default:
		o[0] = (unsigned char)(0xf0 | (cp >> 18));
		o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (unsigned char)(0x80 | (cp & 0x3f));
		break;
	}
	return n;
}

/*
 * Case mapping and character classes come from glibc's C.UTF-8 locale,
 * made per call with newlocale() and used through the *_l functions, so no
 * process-wide locale is read or changed. On glibc 2.36 (Debian 12) its
 * LC_CTYPE carries Unicode's simple case mappings for every script
 * (checked: Ö->ö, П->п, Σ->σ, Ǆ/ǅ->ǆ, İ->i, K (Kelvin)->k, Ⱥ->ⱥ, Ⴀ->ⴀ,
 * Armenian, Cherokee, Deseret), and its alnum class holds the letters and
 * digits of all scripts, so no case table of our own is needed. The
 * locale lives in /usr/lib/locale/C.utf8 (Debian's libc-bin).
 */
static locale_t
utf8_locale(void)
{
	return newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* ---- tags ------------------------------------------------------------- */

static bool
space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v';
}

static bool
tag_punct(wint_t cp)
{
	return cp == '-' || cp == '_' || cp == '.' || cp == '/' || cp == ':';
}

int
inbox_tag_normalize(const char *in, char *out, size_t cap,
    struct inbox_err *err)
{
	const unsigned char *s = (const unsigned char *)(in ? in : "");
	unsigned char tmp[INBOX_TAG_MAX + 1];
	size_t start, end, o = 0;
	locale_t loc;
	long bad;
	int rc = 0;

	for (start = 0; space(s[start]); start++)
		;
	if (s[start] == '#')
		start++;
	end = start + strlen((const char *)s + start);
	while (end > start && space(s[end - 1]))
		end--;
	if (end == start)
		return inbox_err_set(err, INBOX_EINVAL, "tag", 0, "tag: empty");
	if ((bad = inbox_utf8_invalid_at((const char *)s + start,
	    end - start)) >= 0)
		return inbox_err_set(err, INBOX_EINVAL, "tag", 0,
		    "tag: invalid UTF-8 at byte %zu", start + (size_t)bad);
	if ((loc = utf8_locale()) == (locale_t)0)
		return inbox_err_set(err, INBOX_EIO, "tag", 0,
		    "tag: the C.UTF-8 locale is not installed");

	for (size_t i = start; i < end;) {
		wint_t cp, lo;
		size_t len = utf8_get(s + i, &cp);

		if (!iswalnum_l(cp, loc) && !tag_punct(cp)) {
			if (iswprint_l(cp, loc))
				rc = inbox_err_set(err, INBOX_EINVAL, "tag", 0,
				    "tag: character '%.*s' (U+%04X) not allowed "
				    "at byte %zu", (int)len, (const char *)s + i,
				    (unsigned)cp, i);
			else
				rc = inbox_err_set(err, INBOX_EINVAL, "tag", 0,
				    "tag: character U+%04X not allowed at byte "
				    "%zu", (unsigned)cp, i);
			goto out;
		}
		lo = towlower_l(cp, loc);
		if (o + utf8_len(lo) > INBOX_TAG_MAX) {
			rc = inbox_err_set(err, INBOX_EINVAL, "tag", 0,
			    "tag: longer than %d bytes", INBOX_TAG_MAX);
			goto out;
		}
		o += utf8_put(tmp + o, lo);
		i += len;
	}
	if (o + 1 > cap) {
		rc = inbox_err_set(err, INBOX_EINVAL, "tag", 0,
		    "tag: %zu bytes do not fit a buffer of %zu", o, cap);
		goto out;
	}
	memcpy(out, tmp, o);
	out[o] = '\0';
out:
	freelocale(loc);
	return rc;
}

char *
inbox_casefold(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), o = 0;
	unsigned char *out = xmalloc(n * 2 + 1);
	locale_t loc = utf8_locale();

	for (size_t i = 0; i < n;) {
		wint_t cp;
		size_t len;

		if (s[i] < 0x80 || loc == (locale_t)0 ||
		    inbox_utf8_invalid_at((const char *)s + i,
		    n - i < 4 ? n - i : 4) == 0) {
			out[o++] = (unsigned char)(s[i] >= 'A' && s[i] <= 'Z' ?
			    s[i] + 32 : s[i]);
			i++;
			continue;
		}
		len = utf8_get(s + i, &cp);
		o += utf8_put(out + o, towlower_l(cp, loc));
		i += len;
	}
	out[o] = '\0';
	if (loc != (locale_t)0)
		freelocale(loc);
	return (char *)out;
}

/* ---- priority, nature, login ----------------------------------------- */

static const char *const prio_names[INBOX_PRIO__COUNT] = {
	[INBOX_PRIO_LOW] = "low",
	[INBOX_PRIO_NORMAL] = "normal",
	[INBOX_PRIO_HIGH] = "high",
	[INBOX_PRIO_URGENT] = "urgent",
};
static const char *const nature_names[INBOX_NATURE__COUNT] = {
	[INBOX_NATURE_NONE] = NULL,
	[INBOX_NATURE_INQUIRY] = "inquiry",
	[INBOX_NATURE_COMPLAINT] = "complaint",
	[INBOX_NATURE_PROPOSAL] = "proposal",
	[INBOX_NATURE_ORDER] = "order",
	[INBOX_NATURE_OTHER] = "other",
};

static int
name_parse(const char *const *names, int count, const char *name, int *out)
{
	if (name == NULL)
		return INBOX_EINVAL;
	for (int i = 0; i < count; i++) {
		if (names[i] != NULL && strcmp(name, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

const char *
inbox_priority_name(int p)
{
	if (p < 0 || p >= INBOX_PRIO__COUNT)
		return "unknown";
	return prio_names[p];
}

int
inbox_priority_parse(const char *name, int *out)
{
	return name_parse(prio_names, INBOX_PRIO__COUNT, name, out);
}

const char *
inbox_nature_name(int n)
{
	if (n < 0 || n >= INBOX_NATURE__COUNT)
		return NULL;
	return nature_names[n];
}

int
inbox_nature_parse(const char *name, int *out)
{
	return name_parse(nature_names, INBOX_NATURE__COUNT, name, out);
}

static bool
login_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	    c == '_' || c == '-';
}

bool
inbox_login_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++)
		if (n == LOGIN_MAX || !login_char((unsigned char)s[n]))
			return false;
	return n > 0;
}

/* ---- mentions --------------------------------------------------------- */

static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The logins already given to cb: an open-addressing hash set (a note may
 * hold thousands of '@', so no fixed cap and no quadratic search). */
struct seen {
	char (*login)[LOGIN_MAX + 1];
	size_t n, cap;
	size_t *slot;            /* index + 1; 0 is empty */
	size_t nslot;            /* a power of two, >= 2 * cap */
};

static size_t
login_hash(const char *s)
{
	size_t h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void
seen_rehash(struct seen *m)
{
	free(m->slot);
	m->slot = xcalloc(m->nslot, sizeof(*m->slot));
	for (size_t i = 0; i < m->n; i++) {
		size_t k = login_hash(m->login[i]) & (m->nslot - 1);

		while (m->slot[k] != 0)
			k = (k + 1) & (m->nslot - 1);
		m->slot[k] = i + 1;
	}
}

/* Returns true when login was not in the set (and adds it). */
static bool
seen_add(struct seen *m, const char *login)
{
	size_t k;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 16;
		m->login = xrealloc(m->login, m->cap * sizeof(*m->login));
		m->nslot = 2 * m->cap;
		seen_rehash(m);
	}
	k = login_hash(login) & (m->nslot - 1);
	for (; m->slot[k] != 0; k = (k + 1) & (m->nslot - 1))
		if (strcmp(m->login[m->slot[k] - 1], login) == 0)
			return false;
	memcpy(m->login[m->n], login, strlen(login) + 1);
	m->slot[k] = ++m->n;
	return true;
}

/* Is the character that ends just before `at` a letter, a digit or one of
 * "._-"? Anything not ASCII is decoded and asked of the locale (made on
 * first need); text that is not UTF-8 there counts as a letter. */
static bool
word_before(const char *text, const char *at, locale_t *loc)
{
	const unsigned char *b = (const unsigned char *)text;
	const unsigned char *e = (const unsigned char *)at, *p = e - 1;
	wint_t cp;

	if (*p < 0x80)
		return login_char(ascii_lower(*p));
	while (p > b && e - p < 4 && (*p & 0xc0) == 0x80)
		p--;
	if (inbox_utf8_invalid_at((const char *)p, (size_t)(e - p)) >= 0)
		return true;
	if (*loc == (locale_t)0 && (*loc = utf8_locale()) == (locale_t)0)
		return true;
	utf8_get(p, &cp);
	return iswalnum_l(cp, *loc) != 0;
}

size_t
inbox_mentions(const char *text, int (*cb)(void *arg, const char *login),
    void *arg)
{
	struct seen seen = { 0 };
	locale_t loc = (locale_t)0;
	size_t given = 0;
	const char *p = text;

	while ((p = strchr(p, '@')) != NULL) {
		const char *run = ++p;
		char login[LOGIN_MAX + 1];
		size_t n;

		if (run - 1 > text && word_before(text, run - 1, &loc))
			continue;
		while (login_char(ascii_lower((unsigned char)*p)))
			p++;
		n = (size_t)(p - run);
		while (n > 0 && (run[n - 1] == '.' || run[n - 1] == '-' ||
		    run[n - 1] == '_'))
			n--;
		if (n == 0 || n > LOGIN_MAX)
			continue;
		for (size_t i = 0; i < n; i++)
			login[i] = (char)ascii_lower((unsigned char)run[i]);
		login[n] = '\0';
		if (!seen_add(&seen, login))
			continue;
		given++;
		if (cb(arg, login) != 0)
			break;
	}
	if (loc != (locale_t)0)
		freelocale(loc);
	free(seen.login);
	free(seen.slot);
	return given;
}

/* ---- templates -------------------------------------------------------- */

static bool
placeholder_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_';
}

static void
append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap *= 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
}

int
inbox_template_render(const char *tpl,
    const char *(*lookup)(void *arg, const char *name), void *arg,
    char **out, struct inbox_err *err)
{
	size_t len = 0, cap = strlen(tpl) + 1;
	char *buf = xmalloc(cap);
	const char *p = tpl;
	int rc;

	while (*p != '\0') {
		size_t at = (size_t)(p - tpl), n, lit;
		char name[PLACEHOLDER_MAX + 1];
		const char *value;

		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			append(&buf, &len, &cap, p, 1);
			p += 2;
			continue;
		}
		if (p[0] == '}') {
			rc = inbox_err_set(err, INBOX_EINVAL, "template", 0,
			    "template: lone '}' at byte %zu (write '}}' for a "
			    "brace)", at);
			goto fail;
		}
		if (p[0] != '{') {
			lit = strcspn(p, "{}");
			append(&buf, &len, &cap, p, lit);
			p += lit;
			continue;
		}
		for (n = 0; placeholder_char(p[1 + n]); n++)
			;
		if (p[1 + n] == '\0') {
			rc = inbox_err_set(err, INBOX_EINVAL, "template", 0,
			    "template: unclosed '{' at byte %zu", at);
			goto fail;
		}
		if (p[1 + n] != '}') {
			unsigned char c = (unsigned char)p[1 + n];

			if (c >= 0x20 && c < 0x7f)
				rc = inbox_err_set(err, INBOX_EINVAL, "template",
				    0, "template: unclosed '{' at byte %zu: "
				    "character '%c' at byte %zu not allowed in a "
				    "placeholder name", at, c, at + 1 + n);
			else
				rc = inbox_err_set(err, INBOX_EINVAL, "template",
				    0, "template: unclosed '{' at byte %zu: byte "
				    "0x%02x at byte %zu not allowed in a "
				    "placeholder name", at, c, at + 1 + n);
			goto fail;
		}
		if (n == 0) {
			rc = inbox_err_set(err, INBOX_EINVAL, "template", 0,
			    "template: empty '{}' at byte %zu (write '{{' for a "
			    "brace)", at);
			goto fail;
		}
		if (n > PLACEHOLDER_MAX) {
			rc = inbox_err_set(err, INBOX_EINVAL, "template", 0,
			    "template: placeholder at byte %zu is longer than "
			    "%d bytes", at, PLACEHOLDER_MAX);
			goto fail;
		}
		memcpy(name, p + 1, n);
		name[n] = '\0';
		/* err->field holds 63 bytes: a 64-byte name is cut there,
		 * the message keeps it whole */
		if ((value = lookup(arg, name)) == NULL) {
			rc = inbox_err_set(err, INBOX_EINVAL, name, 0,
			    "template: unknown placeholder {%s}", name);
			goto fail;
		}
		append(&buf, &len, &cap, value, strlen(value));
		p += n + 2;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
fail:
	free(buf);
	return rc;
}
