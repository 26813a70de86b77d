/*
 * libinbox: the operator's rules ([rule <name>] in the config), matched
 * against a customer's message as pure functions. The router applies the
 * actions (tags, priority, nature, assignment, auto-reply) of every rule
 * that matches, in file order, until one says stop.
 */
#ifndef INBOX_RULES_H
#define INBOX_RULES_H

#include <regex.h>
#include <stdbool.h>

#include "inbox/inbox.h"

enum inbox_rule_when { INBOX_RULE_ANY_TIME, INBOX_RULE_BUSINESS,
	INBOX_RULE_OUTSIDE_BUSINESS };

struct inbox_rule {
	char *name;
	int line;
	/* conditions: every one given must hold */
	char *channels;          /* "telegram, whatsapp": any of */
	char *connectors;        /* any of */
	char *contact_field;     /* "plan=gold": the contact's custom field */
	char *keywords;          /* "refund, возврат": any, in subject or
	                          * text, case-insensitive (Unicode) */
	char *regex;             /* POSIX extended, case-insensitive */
	int when;                /* enum inbox_rule_when */
	bool first_contact;      /* only the message that opens a dialog */
	/* actions */
	char *tags;              /* "billing, vip" */
	char *priority;          /* a priority name */
	char *nature;            /* a nature name */
	char *assign;            /* a login, or "team:<name>" */
	char *auto_reply;        /* a template name */
	bool stop;               /* no later rule is looked at */
	/* compiled */
	bool has_re;
	regex_t re;
	char *keywords_folded;   /* keywords, case-folded */
};

/* What rules look at. */
struct inbox_rule_input {
	const char *channel, *connector;
	const char *subject, *text;        /* may be NULL */
	const char *fields_json;           /* the contact's custom fields (a JSON
	                                    * object) or NULL */
	bool first;                        /* this message opens the dialog */
	bool business;                     /* now is within business hours */
};

/* Checks and compiles a rule read from the config. Returns 0, or
 * INBOX_EINVAL with err naming the key (err->field) and the problem. */
int inbox_rule_prepare(struct inbox_rule *r, struct inbox_err *err);
void inbox_rule_finish(struct inbox_rule *r);
/* True when every condition of r holds for in. */
bool inbox_rule_match(const struct inbox_rule *r,
    const struct inbox_rule_input *in);

#endif
