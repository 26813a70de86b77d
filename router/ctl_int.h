/*
 * inboxctl's private header: its context, its argument parser and the
 * commands of each file. inboxctl.c: main, usage, agents, conversations,
 * events, backup; ctl_call.c: commands to the router and their answers,
 * `cmd`; ctl_contacts.c: contacts export and import; ctl_csv.c: CSV.
 */
#ifndef INBOX_ROUTER_CTL_INT_H
#define INBOX_ROUTER_CTL_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "inbox/rt/rt.h"
#include "store/store.h"

/* How long inboxctl waits for the router: for one answer, and at most
 * between two answers of a batch. */
#define CTL_ANSWER_TIMEOUT_S 15

struct ctl {
	struct inbox_config cfg;
	redisContext *redis;     /* NULL until ctl__connect */
	char k_cmd[128], k_events[128];
};

/* An option of a command: its name ("--out"), an alias ("-o") or NULL, and
 * whether it takes the next argument. ctl__args sets val: the value, the
 * name for a flag, NULL when absent. */
struct ctl_opt {
	const char *name, *alias;
	bool has_arg;
	const char *val;
};

/* ---- inboxctl.c ---------------------------------------------------------- */

/* Prints the usage on stderr; returns 2 (the exit status). */
int ctl__usage(void);
/* Splits argv into the options in opts and min..max operands (ops[],
 * *nops). "--" ends the options; "-" is an operand. Returns 0, or 2 after
 * printing what is wrong (`missing` when there are fewer than min
 * operands) and the usage. */
int ctl__args(int argc, char **argv, struct ctl_opt *opts, size_t nopts,
    const char **ops, size_t min, size_t max, size_t *nops,
    const char *missing);
/* Connects once (ctl->redis). Returns 0, or -1 after printing why. */
int ctl__connect(struct ctl *ctl);
/* Opens the store read-only. Returns 0, INBOX_ENOTFOUND when there is no
 * store yet (nothing printed), or another code after printing why. */
int ctl__store_open(struct ctl *ctl, struct store **st);

/* ---- ctl_call.c ---------------------------------------------------------- */

/* A command for the router and its answer: the first event on inbox:events
 * that carries its cmd_id. */
struct ctl_call {
	cJSON *cmd;              /* in, owned by the caller; cmd_id is set */
	bool sent;               /* XADD succeeded */
	char *event;             /* the answer's event name; NULL: none */
	cJSON *data;             /* its data (NULL when not JSON) */
	char seq[64];            /* its stream id */
	char err[256];           /* no answer: why */
};

/* Writes "<stream>" top id (or "0-0") into out. Returns 0, or -1 after
 * printing the Redis error. */
int ctl__stream_top(struct ctl *ctl, const char *stream, char *out,
    size_t len);
/* Milliseconds an XREAD may block within the configured Redis timeout. */
int ctl__block_ms(const struct ctl *ctl);
/* Gives each command a cmd_id, XADDs them all to inbox:cmd (pipelined, in
 * order), then reads inbox:events from its top before the first XADD until
 * every command sent is answered, or until idle_s seconds pass without an
 * answer. Returns 0 when every command was answered, else 1 (each call
 * without an answer says why in err). */
int ctl__call(struct ctl *ctl, struct ctl_call *calls, size_t n, int idle_s);
/* Frees what ctl__call stored in calls (not the commands). */
void ctl__call_finish(struct ctl_call *calls, size_t n);
/* For a command.failed answer: its message, and its code in *code; NULL
 * for any other answer. Borrowed from call->data. */
const char *ctl__call_failure(const struct ctl_call *call, const char **code);
/* inboxctl cmd TYPE [--as LOGIN] [JSON-OBJECT] */
int ctl__cmd(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_contacts.c ------------------------------------------------------ */

/* inboxctl contacts export|import ... */
int ctl__contacts(struct ctl *ctl, int argc, char **argv);

#endif
