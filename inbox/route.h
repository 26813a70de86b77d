/*
 * libinbox: who gets a dialog, and when its SLA timers fire. Pure functions
 * (no I/O, no clock: the caller passes `now`); the router calls them inside
 * its write transaction and tests/unit/inbox/route.c drives them with an
 * injected clock.
 */
#ifndef INBOX_ROUTE_H
#define INBOX_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbox/inbox.h"

/* ---- assignment ----------------------------------------------------- */

/* One agent as routing sees it. skills are normalized tags (borrowed). */
struct inbox_route_agent {
	const char *login;
	bool available;          /* online (not away, not offline) */
	uint32_t capacity;       /* most open dialogs at once; 0 takes none */
	uint32_t load;           /* open dialogs assigned now */
	int64_t last_assigned;   /* ms of the last dialog given; 0: never */
	const char *const *skills;
	size_t nskills;
};

/* The dialog's routing tags: those of its tags that are a skill of at least
 * one agent in `agents` (a tag nobody has as a skill does not route). */
bool inbox_route_is_skill(const struct inbox_route_agent *agents, size_t n,
    const char *tag);

/* Picks the agent for a new or reopened dialog with normalized `tags`:
 * `previous` (its last assignee, may be NULL) when available and under
 * capacity; otherwise the available agent under capacity whose skills
 * cover every routing tag, with the lowest load/capacity counting the new
 * dialog ((load + 1) / capacity, so a bigger capacity wins a tie at zero),
 * ties to the one assigned least recently, then by login. Returns the index in `agents`,
 * or -1 when nobody can take it (it waits in the unassigned queue). */
int inbox_route_pick(const struct inbox_route_agent *agents, size_t n,
    const char *const *tags, size_t ntags, const char *previous);

/* ---- business hours --------------------------------------------------- */

/* A weekly calendar at a fixed UTC offset. Day 0 is Monday. A day with
 * open == close has no business hours. */
struct inbox_calendar {
	int utc_offset_min;      /* local time = UTC + offset */
	int16_t open[7], close[7];   /* minutes after local midnight */
};

/* Parses "mon-fri 09:00-18:00, sat 10:00-14:00" (days: mon..sun, single
 * or a range; one interval per day; later items override earlier ones) and
 * an offset "+03:00" / "-05:30" / "UTC". Returns 0 or INBOX_EINVAL with err
 * naming the problem. */
int inbox_calendar_parse(const char *week, const char *offset,
    struct inbox_calendar *cal, struct inbox_err *err);
/* start + dur counted in business time (cal NULL: calendar time). A start
 * outside business hours counts from the next opening. */
int64_t inbox_calendar_add(const struct inbox_calendar *cal, int64_t start,
    int64_t dur_ms);

/* True when `at` falls within business hours (cal NULL: always). */
bool inbox_calendar_open_at(const struct inbox_calendar *cal, int64_t at);

/* Parses a duration: digits and a unit s, m, h or d ("90s", "4h", "3d").
 * Returns 0 and *ms, or INBOX_EINVAL. */
int inbox_duration_parse(const char *s, int64_t *ms);

/* ---- SLA timers ------------------------------------------------------- */

enum inbox_sla_kind { INBOX_SLA_FIRST_RESPONSE, INBOX_SLA_NEXT_RESPONSE,
	INBOX_SLA_RESOLUTION, INBOX_SLA__COUNT };

struct inbox_sla_timer {
	int64_t start, warn_at, due_at;   /* due_at 0: not running */
};

/* A dialog's SLA state. fired has two bits per kind: 1 << (2k) warning
 * sent, 1 << (2k + 1) breach sent. */
struct inbox_sla {
	struct inbox_sla_timer t[INBOX_SLA__COUNT];
	unsigned fired;
};

struct inbox_sla_alert {
	int kind;                /* enum inbox_sla_kind */
	bool breached;           /* false: the warning */
	int64_t due_at;
	int64_t overdue_ms;      /* now - due_at (negative for a warning) */
};

const char *inbox_sla_kind_name(int kind);
/* Starts (or restarts) timer `kind` at `start` for dur_ms (0 stops it); the
 * warning comes at warn_pct percent of the time (both counted in business
 * time when cal is not NULL). Clears the kind's fired bits. */
void inbox_sla_start(struct inbox_sla *s, int kind, int64_t start,
    int64_t dur_ms, int warn_pct, const struct inbox_calendar *cal);
/* Stops timer `kind` (a reply, a close). */
void inbox_sla_stop(struct inbox_sla *s, int kind);
/* The earliest warning or breach not yet sent; 0 when none. */
int64_t inbox_sla_next(const struct inbox_sla *s);
/* Marks what is due at `now` as sent and writes one alert per mark into out
 * (room for INBOX_SLA__COUNT * 2); a warning whose breach is also due is
 * not sent (the breach says more). Returns the number of alerts. */
size_t inbox_sla_fire(struct inbox_sla *s, int64_t now,
    struct inbox_sla_alert *out);

#endif
