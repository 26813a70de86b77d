/*
 * libinbox: the dialog lifecycle and the small value rules of a ticket, as
 * pure functions (no I/O, no clock: the caller passes `now`). The router
 * applies them inside its write transaction; tests/unit/inbox/dialog.c tries
 * every state against every action.
 */
#ifndef INBOX_DIALOG_H
#define INBOX_DIALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbox/inbox.h"

/* Same numbers as store's enum store_state. */
enum inbox_dstate { INBOX_DS_OPEN, INBOX_DS_SNOOZED, INBOX_DS_CLOSED,
	INBOX_DS__COUNT };

enum inbox_daction {
	INBOX_DA_CLOSE,          /* agent closes */
	INBOX_DA_SNOOZE,         /* agent snoozes until `until` */
	INBOX_DA_REOPEN,         /* agent reopens */
	INBOX_DA_CUSTOMER_MSG,   /* the customer wrote */
	INBOX_DA_TIMER,          /* the snooze timer fired at `now` */
	INBOX_DA__COUNT
};

/* The part of a dialog the lifecycle reads and writes. */
struct inbox_dialog {
	int state;               /* enum inbox_dstate */
	int64_t snooze_until;    /* ms; 0 unless snoozed */
	int64_t closed_at;       /* ms of the last close; 0 when never closed */
	uint32_t reopen_count;   /* times a closed dialog was reopened */
};

/* What a transition did, for the events the router emits. */
struct inbox_dtransition {
	int from, to;            /* states */
	bool changed;            /* false: nothing to store or announce */
	bool reopened;           /* closed -> open */
	bool unsnoozed;          /* snoozed -> open: notify the assignee */
	const char *why;         /* "agent", "customer_message", "timer" */
};

/* Applies `action` to d at time `now` (ms); `until` is read for SNOOZE only.
 * Returns 0 and fills *t (t->changed false when the action is harmless
 * but does nothing, e.g. a customer message to an open dialog, or a timer
 * that is not yet due or finds the dialog no longer snoozed), or:
 *   INBOX_ESTATE  illegal transition (close a closed dialog, snooze a closed
 *                 one, reopen an open one); d unchanged, err says which
 *   INBOX_EINVAL  bad argument (snooze until a time not after `now`, or
 *                 more than 5 years ahead; unknown action or state)
 * err may be NULL. Snoozing a snoozed dialog moves its time. */
int inbox_dialog_apply(struct inbox_dialog *d, int action, int64_t until,
    int64_t now, struct inbox_dtransition *t, struct inbox_err *err);

const char *inbox_dstate_name(int state);
/* Returns 0 and sets *state, or INBOX_EINVAL. */
int inbox_dstate_parse(const char *name, int *state);

/* ---- values -------------------------------------------------------- */

#define INBOX_TAG_MAX 64         /* bytes of a normalized tag */

/* Normalizes a tag as typed ("#Payment ", "ОПЛАТА") to its stored form: one
 * leading '#' and surrounding white space removed, letters lowercased over
 * all of Unicode's simple case mappings (not only ASCII), NFC not applied.
 * A tag is 1..INBOX_TAG_MAX bytes of letters, digits (any script), and
 * '-', '_', '.', '/', ':'. Writes a NUL-terminated string to out
 * (cap >= INBOX_TAG_MAX + 1). Returns 0 or INBOX_EINVAL with err naming
 * the problem (empty, too long, invalid UTF-8, a character not allowed),
 * or INBOX_EIO when the C.UTF-8 locale (the case tables) is not installed. */
int inbox_tag_normalize(const char *in, char *out, size_t cap,
    struct inbox_err *err);

/* A lowercased copy of UTF-8 text (all of Unicode's simple mappings, as
 * tags; ASCII only when the C.UTF-8 locale is missing), for matching
 * keywords. Returns a malloc'd string. */
char *inbox_casefold(const char *s);

/* Priorities low < normal < high < urgent, and a request's nature. */
enum inbox_priority { INBOX_PRIO_LOW, INBOX_PRIO_NORMAL, INBOX_PRIO_HIGH,
	INBOX_PRIO_URGENT, INBOX_PRIO__COUNT };
enum inbox_nature { INBOX_NATURE_NONE, INBOX_NATURE_INQUIRY,
	INBOX_NATURE_COMPLAINT, INBOX_NATURE_PROPOSAL, INBOX_NATURE_ORDER,
	INBOX_NATURE_OTHER, INBOX_NATURE__COUNT };
const char *inbox_priority_name(int p);
int inbox_priority_parse(const char *name, int *out);   /* 0 or INBOX_EINVAL */
const char *inbox_nature_name(int n);                    /* NONE: NULL */
int inbox_nature_parse(const char *name, int *out);     /* 0 or INBOX_EINVAL */

/* True for an agent login: 1..64 bytes of [a-z0-9._-]. */
bool inbox_login_valid(const char *s);

/* Calls cb once per distinct @login in a note's text, in order of first
 * appearance. A mention is '@' not preceded by a letter, digit or one of
 * "._-" (so "ann@example.com" is not one), followed by 1..64 of [a-z0-9._-]
 * (ASCII letters are lowercased first); trailing '.', '-', '_' are not part
 * of it ("@ann." mentions ann). cb returning nonzero stops the walk. Returns
 * the number of mentions given to cb. */
size_t inbox_mentions(const char *text,
    int (*cb)(void *arg, const char *login), void *arg);

/* Renders a reply template. Placeholders are {name} where name is 1..64 of
 * [A-Za-z0-9._]; "{{" and "}}" stand for literal braces. lookup(arg, name)
 * returns the value (borrowed) or NULL for a name it does not know. Returns
 * 0 and a malloc'd string in *out, or INBOX_EINVAL with err naming the
 * problem: an unknown placeholder (err->field is its name), an unclosed or
 * empty '{', a lone '}'. */
int inbox_template_render(const char *tpl,
    const char *(*lookup)(void *arg, const char *name), void *arg,
    char **out, struct inbox_err *err);

#endif
