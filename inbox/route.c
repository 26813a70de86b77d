/* Assignment by skills and load, business hours, SLA timers (route.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inbox/route.h"

#define DAY_MS 86400000LL
#define MIN_MS 60000LL

/* ---- assignment ----------------------------------------------------- */

static bool
has_skill(const struct inbox_route_agent *a, const char *tag)
{
	for (size_t i = 0; i < a->nskills; i++)
		if (strcmp(a->skills[i], tag) == 0)
			return true;
	return false;
}

bool
inbox_route_is_skill(const struct inbox_route_agent *agents, size_t n,
    const char *tag)
{
	for (size_t i = 0; i < n; i++)
		if (has_skill(&agents[i], tag))
			return true;
	return false;
}

static bool
has_room(const struct inbox_route_agent *a)
{
	return a->available && a->load < a->capacity;
}

/* Is a a better choice than b (both eligible)? */
static bool
better(const struct inbox_route_agent *a, const struct inbox_route_agent *b)
{
	/* the load each would have with the dialog, (load + 1) / capacity,
	 * compared without division: over agents of unequal capacity this
	 * keeps everyone within one dialog of its share (D'Hondt) */
	uint64_t la = ((uint64_t)a->load + 1) * b->capacity;
	uint64_t lb = ((uint64_t)b->load + 1) * a->capacity;

	if (la != lb)
		return la < lb;
	if (a->last_assigned != b->last_assigned)
		return a->last_assigned < b->last_assigned;
	return strcmp(a->login, b->login) < 0;
}

int
inbox_route_pick(const struct inbox_route_agent *agents, size_t n,
    const char *const *tags, size_t ntags, const char *previous)
{
	int best = -1;

	if (previous != NULL) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(agents[i].login, previous) == 0 &&
			    has_room(&agents[i]))
				return (int)i;
	}
	for (size_t i = 0; i < n; i++) {
		const struct inbox_route_agent *a = &agents[i];
		bool covers = true;

		if (!has_room(a))
			continue;
		for (size_t t = 0; t < ntags && covers; t++)
			if (inbox_route_is_skill(agents, n, tags[t]) &&
			    !has_skill(a, tags[t]))
				covers = false;
		if (!covers)
			continue;
		if (best < 0 || better(a, &agents[best]))
			best = (int)i;
	}
	return best;
}

/* ---- business hours --------------------------------------------------- */

static const char *const day_names[7] = { "mon", "tue", "wed", "thu", "fri",
	"sat", "sun" };

static int
day_index(const char *s, size_t n)
{
	for (int i = 0; i < 7; i++)
		if (n == 3 && strncasecmp(s, day_names[i], 3) == 0)
			return i;
	return -1;
}

/* "HH:MM" at s (5 chars) to minutes, or -1. 24:00 is allowed. */
static int
hhmm(const char *s)
{
	int h, m;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) ||
	    !isdigit((unsigned char)s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	return h * 60 + m;
}

static int
parse_offset(const char *s, int *min, struct inbox_err *err)
{
	int v;

	if (s == NULL || strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
		*min = 0;
		return 0;
	}
	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 ||
	    (v = hhmm(s + 1)) < 0 || v > 14 * 60)
		return inbox_err_set(err, INBOX_EINVAL, "utc_offset", 0,
		    "utc_offset: '%s' is not UTC or +HH:MM / -HH:MM (at most "
		    "14 hours)", s);
	*min = s[0] == '-' ? -v : v;
	return 0;
}

int
inbox_calendar_parse(const char *week, const char *offset,
    struct inbox_calendar *cal, struct inbox_err *err)
{
	const char *p = week;
	bool any = false;

	memset(cal, 0, sizeof(*cal));
	if (parse_offset(offset, &cal->utc_offset_min, err) != 0)
		return INBOX_EINVAL;
	if (week == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "week", 0,
		    "week: missing");
	while (*p != '\0') {
		int d0, d1, o, c;
		size_t n;

		while (*p == ' ' || *p == ',' || *p == ';')
			p++;
		if (*p == '\0')
			break;
		n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
		if ((d0 = day_index(p, n)) < 0)
			goto bad;
		p += n;
		d1 = d0;
		if (*p == '-') {
			p++;
			n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
			if ((d1 = day_index(p, n)) < 0 || d1 < d0)
				goto bad;
			p += n;
		}
		if (*p != ' ')
			goto bad;
		while (*p == ' ')
			p++;
		if (strlen(p) < 11 || (o = hhmm(p)) < 0 || p[5] != '-' ||
		    (c = hhmm(p + 6)) < 0 || c <= o)
			goto bad;
		p += 11;
		if (*p != '\0' && *p != ',' && *p != ';' && *p != ' ')
			goto bad;
		for (int d = d0; d <= d1; d++) {
			cal->open[d] = (int16_t)o;
			cal->close[d] = (int16_t)c;
		}
		any = true;
	}
	if (!any)
		return inbox_err_set(err, INBOX_EINVAL, "week", 0,
		    "week: no business hours given");
	return 0;
bad:
	return inbox_err_set(err, INBOX_EINVAL, "week", (int)(p - week),
	    "week: expected 'mon-fri 09:00-18:00, sat 10:00-14:00' at "
	    "'%.40s'", p);
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t
inbox_calendar_add(const struct inbox_calendar *cal, int64_t start,
    int64_t dur_ms)
{
	int64_t off, t, left = dur_ms;
	bool open_any = false;

	if (cal == NULL || dur_ms <= 0)
		return start + (dur_ms > 0 ? dur_ms : 0);
	for (int d = 0; d < 7; d++)
		open_any |= cal->open[d] < cal->close[d];
	if (!open_any)
		return start + dur_ms;
	off = (int64_t)cal->utc_offset_min * MIN_MS;
	t = start + off;         /* local time in ms */
	for (;;) {
		int64_t day = floor_div(t, DAY_MS);
		int wd = (int)(((day + 3) % 7 + 7) % 7); /* 1970-01-01: Thu */
		int64_t d0 = day * DAY_MS;
		int64_t o = d0 + cal->open[wd] * MIN_MS;
		int64_t c = d0 + cal->close[wd] * MIN_MS;

		if (cal->open[wd] < cal->close[wd] && t < c) {
			if (t < o)
				t = o;
			if (t + left <= c)
				return t + left - off;
			left -= c - t;
		}
		t = d0 + DAY_MS;
	}
}

bool
inbox_calendar_open_at(const struct inbox_calendar *cal, int64_t at)
{
	int64_t t, day, min;
	int wd;

	if (cal == NULL)
		return true;
	t = at + (int64_t)cal->utc_offset_min * MIN_MS;
	day = floor_div(t, DAY_MS);
	wd = (int)(((day + 3) % 7 + 7) % 7);
	min = (t - day * DAY_MS) / MIN_MS;
	return min >= cal->open[wd] && min < cal->close[wd];
}

int
inbox_duration_parse(const char *s, int64_t *ms)
{
	char *end;
	long long v;
	int64_t unit;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return INBOX_EINVAL;
	v = strtoll(s, &end, 10);
	switch (*end) {
	case 's': unit = 1000; break;
	case 'm': unit = MIN_MS; break;
	case 'h': unit = 60 * MIN_MS; break;
	case 'd': unit = DAY_MS; break;
	default: return INBOX_EINVAL;
	}
	if (end[1] != '\0' || v < 0 || v > 3650LL * DAY_MS / unit)
		return INBOX_EINVAL;
	*ms = v * unit;
	return 0;
}

/* ---- SLA timers ------------------------------------------------------- */

const char *
inbox_sla_kind_name(int kind)
{
	static const char *const names[] = { "first_response",
		"next_response", "resolution" };

	return kind >= 0 && kind < INBOX_SLA__COUNT ? names[kind] : "?";
}

void
inbox_sla_start(struct inbox_sla *s, int kind, int64_t start, int64_t dur_ms,
    int warn_pct, const struct inbox_calendar *cal)
{
	struct inbox_sla_timer *t = &s->t[kind];

	s->fired &= ~(3u << (2 * kind));
	if (dur_ms <= 0) {
		memset(t, 0, sizeof(*t));
		return;
	}
	if (warn_pct < 1 || warn_pct > 100)
		warn_pct = 80;
	t->start = start;
	t->due_at = inbox_calendar_add(cal, start, dur_ms);
	t->warn_at = inbox_calendar_add(cal, start, dur_ms * warn_pct / 100);
}

void
inbox_sla_stop(struct inbox_sla *s, int kind)
{
	memset(&s->t[kind], 0, sizeof(s->t[kind]));
	s->fired &= ~(3u << (2 * kind));
}

int64_t
inbox_sla_next(const struct inbox_sla *s)
{
	int64_t next = 0;

	for (int k = 0; k < INBOX_SLA__COUNT; k++) {
		const struct inbox_sla_timer *t = &s->t[k];

		if (t->due_at == 0)
			continue;
		if (!(s->fired & (1u << (2 * k))) &&
		    (next == 0 || t->warn_at < next))
			next = t->warn_at;
		if (!(s->fired & (2u << (2 * k))) &&
		    (next == 0 || t->due_at < next))
			next = t->due_at;
	}
	return next;
}

size_t
inbox_sla_fire(struct inbox_sla *s, int64_t now, struct inbox_sla_alert *out)
{
	size_t n = 0;

	for (int k = 0; k < INBOX_SLA__COUNT; k++) {
		const struct inbox_sla_timer *t = &s->t[k];
		unsigned wbit = 1u << (2 * k), bbit = 2u << (2 * k);

		if (t->due_at == 0)
			continue;
		if (!(s->fired & bbit) && now >= t->due_at) {
			s->fired |= wbit | bbit;
			out[n++] = (struct inbox_sla_alert){ k, true, t->due_at,
			    now - t->due_at };
		} else if (!(s->fired & wbit) && now >= t->warn_at) {
			s->fired |= wbit;
			out[n++] = (struct inbox_sla_alert){ k, false, t->due_at,
			    now - t->due_at };
		}
	}
	return n;
}
