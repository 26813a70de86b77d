/*
 * inboxctl's private header: its context, its argument parser and the
 * commands of each file. inboxctl.c: main, usage, agents, conversations,
 * events, backup, stream tails and time arguments; ctl_call.c: commands to
 * the router and their answers, `cmd`; ctl_contacts.c: contacts export and
 * import; ctl_csv.c: CSV; ctl_agents.c: `agent list` and `agent set`;
 * ctl_sla.c: `sla tail`; ctl_stats.c: `stats`; ctl_connectors.c:
 * `connectors`; ctl_conf.c: `connectors add|disable|enable`;
 * ctl_lists.c: `templates`, `tags`, `teams`, `sla list`; ctl_restore.c:
 * `restore`.
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
	/* redis.shards > 1 without -s: global data (agents, templates,
	 * teams) is read from shard 0 and changes go to shard 0 and as
	 * copies to the other shards; stats read every shard */
	bool all_shards;
};

/* Every shard's store read at once (without -s), or the one store. */
struct ctl_stores {
	struct store **st;
	struct store_txn **txn;
	unsigned n;
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
/* Opens the store read-only (with redis.shards > 1: the -s shard's, or
 * shard 0's for global data). Returns 0, INBOX_ENOTFOUND when there is no
 * store yet (nothing printed), or another code after printing why. */
int ctl__store_open(struct ctl *ctl, struct store **st);
/* Read transactions on every shard's store (ctl->all_shards), else on
 * the one store. Returns 0, INBOX_ENOTFOUND (shard 0's store does not
 * exist yet: nothing printed), or another code after printing why; s is
 * to be finished either way. */
int ctl__stores_read(struct ctl *ctl, struct ctl_stores *s);
void ctl__stores_finish(struct ctl_stores *s);
/* ctl__store_open, then a read transaction in *txn (NULL on failure; the
 * caller closes *st, NULL when the open failed). Returns 0, or the code of
 * ctl__store_open or of store_txn_begin (printed). */
int ctl__store_read(struct ctl *ctl, struct store **st,
    struct store_txn **txn);
/* A number in [min, max]; false when s is not one. */
bool ctl__number_arg(const char *s, double min, double max, double *out);
/* Reads a tail's --count N (*count -1 when absent) and --timeout SEC
 * (*deadline in ms, 0 when absent). Returns 0, or 2 after printing what is
 * wrong. */
int ctl__tail_opts(const char *count_s, const char *timeout_s, long *count,
    int64_t *deadline);
/* Follows `stream` after id `from` (XREAD, blocking at most ctl__block_ms
 * at a time), calling print for each entry (event and data NULL when the
 * entry lacks them), until `count` entries (-1: no limit), the deadline
 * (ms; 0: none), or SIGINT, SIGTERM or SIGHUP (blocked here, then polled).
 * Returns 0, or 1 after printing the Redis error. */
int ctl__tail(struct ctl *ctl, const char *stream, const char *from,
    long count, int64_t deadline, void (*print)(void *arg, const char *id,
    const char *event, const char *data), void *arg);
/* A ctl__tail printer: {"seq", "event", "data"} on one line. */
void ctl__print_entry(void *arg, const char *id, const char *event,
    const char *data);
/* A time argument: ms since the epoch, or "YYYY-MM-DD[ HH:MM[:SS]]" ('T'
 * may stand for the space) in local time; with `ago`, also a duration
 * ("30m", "7d") before now. Returns 0 and *ms, or INBOX_EINVAL. */
int ctl__time_arg(const char *s, int64_t now, bool ago, int64_t *ms);
/* Prints v as one line of JSON. */
void ctl__print_json(const cJSON *v);
/* "YYYY-MM-DD HH:MM:SS" in local time; "-" for 0. */
void ctl__fmt_time(int64_t ms, char *buf, size_t len);
/* "1d2h", "2m10s", "350ms": a duration for people, to the second (under
 * one: in ms), the sign dropped. */
void ctl__fmt_dur(int64_t ms, char *buf, size_t len);

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
/* Sends one command (borrowed) and waits for its answer; prints it as
 * "EVENT: DATA", or with json as {"seq", "event", "data"}. No answer or a
 * refusal prints "inboxctl: WHAT: why" or "inboxctl: WHAT refused: CODE:
 * MESSAGE" on stderr. Returns 0, or 1 (no answer or refused). */
int ctl__call_print(struct ctl *ctl, cJSON *cmd, const char *what,
    bool json);
/* inboxctl cmd TYPE [--as LOGIN] [JSON-OBJECT] */
int ctl__cmd(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_contacts.c ------------------------------------------------------ */

/* inboxctl contacts export|import ... */
int ctl__contacts(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_agents.c -------------------------------------------------------- */

/* inboxctl agent list [--json] */
int ctl__agent_list(struct ctl *ctl, int argc, char **argv);
/* inboxctl agent set LOGIN [--name N] [--teams L] [--skills L]
 * [--capacity N|default] */
int ctl__agent_set(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_sla.c ----------------------------------------------------------- */

/* inboxctl sla tail [--json] [--since ID|DURATION|all] [--count N]
 * [--timeout SEC] */
int ctl__sla(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_stats.c --------------------------------------------------------- */

/* inboxctl stats [--from TIME|DURATION] [--to TIME] [--json] */
int ctl__stats(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_rules.c ---------------------------------------------------------- */

/* inboxctl rules list|test ... */
int ctl__rules(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_connectors.c ---------------------------------------------------- */

/* inboxctl connectors [status] [--json]: each connector's replies stream
 * and last dead letter, and the router's inbound backlog; `connectors
 * add|disable|enable` go to ctl__connectors_edit. */
int ctl__connectors(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_conf.c ----------------------------------------------------------- */

/* inboxctl connectors add ID --channel C [--set KEY=VALUE]... [--dry-run],
 * connectors disable ID, connectors enable ID (argv[0] is the verb): edit
 * the configuration file. */
int ctl__connectors_edit(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_lists.c ---------------------------------------------------------- */

/* inboxctl templates list [--json] | put NAME (--text T | --file F) |
 * delete NAME */
int ctl__templates(struct ctl *ctl, int argc, char **argv);
/* inboxctl tags list [--json] */
int ctl__tags(struct ctl *ctl, int argc, char **argv);
/* inboxctl teams list [--json]: each team's agents and connectors */
int ctl__teams(struct ctl *ctl, int argc, char **argv);
/* inboxctl sla list [--json]: the [sla] policies as the router reads them
 * (argv after "list") */
int ctl__sla_list(struct ctl *ctl, int argc, char **argv);

/* ---- ctl_restore.c ------------------------------------------------------- */

/* inboxctl restore BACKUP [--replay-inbound] [--json] */
int ctl__restore(struct ctl *ctl, int argc, char **argv);

#endif
