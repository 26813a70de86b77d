/*
 * inboxctl: the operator's tool. Agents, contact imports and any router
 * command go through the router's command stream (only the router writes
 * the store; ctl_call.c); conversations, contact exports and backups read
 * the store; events tail inbox:events. See ctl_int.h for the other files.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "router/ctl_int.h"

static void
print_usage(FILE *f)
{
	fprintf(f,
	    "usage: inboxctl -c FILE [-n] [-v] [-s SHARD] COMMAND [ARGS]\n"
	    "      -s SHARD: with redis.shards > 1, the shard to act on\n"
	    "      (agent, templates, teams and stats: every shard without it)\n"
	    "\n"
	    "  agent add LOGIN [--name NAME] [--role agent|supervisor|admin]\n"
	    "                  [--password-stdin | --password PW]\n"
	    "  agent passwd LOGIN [--password-stdin | --password PW]\n"
	    "      create an agent, or set a password (through the router)\n"
	    "  agent list [--json]\n"
	    "      agents with teams, skills, capacity, presence, open load\n"
	    "  agent set LOGIN [--name N] [--teams \"a, b\"] [--skills \"x, y\"]\n"
	    "                  [--capacity N|default]\n"
	    "      change an agent's profile (through the router)\n"
	    "  conversations [--state open|snoozed|closed|all] [--json]\n"
	    "      list conversations (read from the store)\n"
	    "  events tail [--from ID] [--count N] [--timeout SEC]\n"
	    "      print the router's events, one JSON object a line\n"
	    "  sla list [--json]\n"
	    "      the [sla] policies as the router reads them\n"
	    "  templates list [--json]\n"
	    "  templates put NAME (--text TEXT | --file FILE)\n"
	    "  templates delete NAME\n"
	    "      the reply templates (put checks the text renders)\n"
	    "  tags list [--json]\n"
	    "      every tag used, with when it was first used\n"
	    "  teams list [--json]\n"
	    "      each team's agents and connectors\n"
	    "  sla tail [--json] [--since ID|DURATION|all] [--count N]\n"
	    "           [--timeout SEC]\n"
	    "      follow the SLA warnings and breaches, one a line\n"
	    "  stats [--from TIME|DURATION] [--to TIME] [--json]\n"
	    "      dialogs handled, response times, breaches and ratings per\n"
	    "      agent, team and channel (default: the last 7 days)\n"
	    "  rules list [--json]\n"
	    "      the [rule] sections as the router reads them\n"
	    "  rules test [--channel C] [--connector ID] [--subject S]\n"
	    "             [--text T] [--fields JSON] [--first] [--at MS] [--json]\n"
	    "      which rules a message would match, and what they would do\n"
	    "  contacts export [--csv | --json] [-o FILE]\n"
	    "      every contact, as CSV (default) or a JSON array\n"
	    "  contacts import FILE.csv [--dry-run] [--json]\n"
	    "      update or create contacts by e-mail, then phone; a report\n"
	    "      per row (FILE - reads stdin)\n"
	    "  cmd TYPE [--as LOGIN] [JSON-OBJECT]\n"
	    "      send a router command (docs/protocol.md), print its answer\n"
	    "  connectors [status] [--json]\n"
	    "      each connector: replies queued, unread by it, pending, the\n"
	    "      oldest pending, its last dead letter; the inbound backlog\n"
	    "  connectors add ID --channel C [--set KEY=VALUE]... [--dry-run]\n"
	    "      add a [connector ID] section to the configuration file\n"
	    "  connectors disable ID | connectors enable ID\n"
	    "      stop or resume what comes in and goes out through it\n"
	    "  backup PATH\n"
	    "      a consistent, compacted copy of the store into PATH (a new\n"
	    "      or empty directory) while everything runs\n"
	    "  restore BACKUP [--replay-inbound] [--json]\n"
	    "      put a backup in place of the store (the router and the\n"
	    "      gateways stopped; the replaced file is kept); with\n"
	    "      --replay-inbound, what inbox:in received after the backup\n"
	    "      is applied again when the router starts\n"
	    "  help\n"
	    "      this text\n"
	    "\n"
	    "Exit status: 0 done, 1 failed or refused, 2 usage.\n");
}

int
ctl__usage(void)
{
	print_usage(stderr);
	return 2;
}

int
ctl__args(int argc, char **argv, struct ctl_opt *opts, size_t nopts,
    const char **ops, size_t min, size_t max, size_t *nops,
    const char *missing)
{
	bool only_operands = false;

	*nops = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		size_t k;

		if (!only_operands && strcmp(a, "--") == 0) {
			only_operands = true;
			continue;
		}
		if (only_operands || a[0] != '-' || a[1] == '\0') {
			if (*nops == max) {
				fprintf(stderr, "inboxctl: unexpected argument "
				    "'%s'\n", a);
				return ctl__usage();
			}
			ops[(*nops)++] = a;
			continue;
		}
		for (k = 0; k < nopts; k++)
			if (strcmp(a, opts[k].name) == 0 ||
			    (opts[k].alias && strcmp(a, opts[k].alias) == 0))
				break;
		if (k == nopts) {
			fprintf(stderr, "inboxctl: unknown option '%s'\n", a);
			return ctl__usage();
		}
		if (!opts[k].has_arg) {
			opts[k].val = opts[k].name;
			continue;
		}
		if (i + 1 == argc) {
			fprintf(stderr, "inboxctl: option %s needs a value\n", a);
			return ctl__usage();
		}
		opts[k].val = argv[++i];
	}
	if (*nops < min) {
		fprintf(stderr, "inboxctl: %s\n", missing);
		return ctl__usage();
	}
	return 0;
}

int
ctl__connect(struct ctl *ctl)
{
	if (ctl->redis != NULL)
		return 0;
	if ((ctl->redis = rt_redis_connect(&ctl->cfg)) == NULL) {
		fprintf(stderr, "inboxctl: cannot reach redis\n");
		return -1;
	}
	return 0;
}

static int
store_open_shard(struct ctl *ctl, unsigned k, struct store **st)
{
	char path[4200];
	int rc;

	/* -s K made store.path the shard's; global data reads shard 0 */
	if (ctl->cfg.shard >= 0)
		snprintf(path, sizeof(path), "%s", ctl->cfg.store_path);
	else
		rt_store_path(path, sizeof(path), &ctl->cfg, k);
	rc = store_open(st, path, ctl->cfg.store_map_size_mb, STORE_RDONLY);
	if (rc != 0 && rc != INBOX_ENOTFOUND)
		fprintf(stderr, "inboxctl: store %s: %s\n", path,
		    inbox_strerror(rc));
	return rc;
}

int
ctl__store_open(struct ctl *ctl, struct store **st)
{
	return store_open_shard(ctl, 0, st);
}

int
ctl__stores_read(struct ctl *ctl, struct ctl_stores *s)
{
	int rc = 0;

	s->n = ctl->all_shards ? (unsigned)ctl->cfg.redis_shards : 1;
	s->st = xcalloc(s->n, sizeof(*s->st));
	s->txn = xcalloc(s->n, sizeof(*s->txn));
	for (unsigned k = 0; k < s->n && rc == 0; k++) {
		rc = store_open_shard(ctl, k, &s->st[k]);
		if (rc == INBOX_ENOTFOUND && k > 0)
			fprintf(stderr, "inboxctl: shard %u has no store yet\n",
			    k);
		if (rc == 0 && (rc = store_txn_begin(s->st[k], false,
		    &s->txn[k])) != 0)
			fprintf(stderr, "inboxctl: shard %u's store: %s\n", k,
			    inbox_strerror(rc));
	}
	return rc;
}

void
ctl__stores_finish(struct ctl_stores *s)
{
	for (unsigned k = 0; k < s->n; k++) {
		store_txn_abort(s->txn[k]);
		store_close(s->st[k]);
	}
	free(s->st);
	free(s->txn);
	memset(s, 0, sizeof(*s));
}

int
ctl__store_read(struct ctl *ctl, struct store **st, struct store_txn **txn)
{
	int rc;

	*txn = NULL;
	if ((rc = ctl__store_open(ctl, st)) != 0) {
		*st = NULL;
		return rc;
	}
	if ((rc = store_txn_begin(*st, false, txn)) != 0)
		fprintf(stderr, "inboxctl: store %s: %s\n", ctl->cfg.store_path,
		    inbox_strerror(rc));
	return rc;
}

void
ctl__print_json(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);

	printf("%s\n", s != NULL ? s : "null");
	free(s);
}

/* The password of --password, or the first line of stdin. */
static char *
read_password(const char *pw, bool from_stdin)
{
	char buf[1024];
	size_t n;

	if (pw != NULL)
		return xstrdup(pw);
	if (!from_stdin) {
		fprintf(stderr, "inboxctl: give --password-stdin or --password\n");
		return NULL;
	}
	if (fgets(buf, sizeof(buf), stdin) == NULL) {
		fprintf(stderr, "inboxctl: no password on stdin\n");
		return NULL;
	}
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0) {
		fprintf(stderr, "inboxctl: empty password\n");
		return NULL;
	}
	return xstrdup(buf);
}

static int
cmd_agent(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--name", NULL, true, NULL },
		{ "--role", NULL, true, NULL },
		{ "--password", NULL, true, NULL },
		{ "--password-stdin", NULL, false, NULL },
	};
	char hash[crypto_pwhash_STRBYTES], what[32];
	const char *ops[1];
	char *pw = NULL;
	cJSON *cmd = NULL;
	size_t nops;
	bool add;
	int rc;

	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return ctl__agent_list(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "set") == 0)
		return ctl__agent_set(ctl, argc - 1, argv + 1);
	if (argc < 1 || (strcmp(argv[0], "add") != 0 &&
	    strcmp(argv[0], "passwd") != 0)) {
		fprintf(stderr, "inboxctl: agent: add, passwd, list or set?\n");
		return ctl__usage();
	}
	add = strcmp(argv[0], "add") == 0;
	/* passwd takes no --name or --role */
	if ((rc = ctl__args(argc - 1, argv + 1, add ? opts : opts + 2,
	    add ? 4 : 2, ops, 1, 1, &nops, "agent: which login?")) != 0)
		return rc;
	if (sodium_init() < 0) {
		fprintf(stderr, "inboxctl: libsodium failed to start\n");
		return 1;
	}
	if ((pw = read_password(opts[2].val, opts[3].val != NULL)) == NULL)
		return 1;
	rc = 1;
	if (crypto_pwhash_str(hash, pw, strlen(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fprintf(stderr, "inboxctl: password hashing failed (memory)\n");
		goto out;
	}
	cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", add ? "agent.add" : "agent.passwd");
	cJSON_AddStringToObject(cmd, "login", ops[0]);
	cJSON_AddStringToObject(cmd, "pwhash", hash);
	if (opts[0].val != NULL)
		cJSON_AddStringToObject(cmd, "name", opts[0].val);
	if (opts[1].val != NULL)
		cJSON_AddStringToObject(cmd, "role", opts[1].val);
	snprintf(what, sizeof(what), "agent %s", argv[0]);
	rc = ctl__call_print(ctl, cmd, what, false);
out:
	sodium_memzero(pw, strlen(pw));
	free(pw);
	cJSON_Delete(cmd);
	return rc;
}

static void
print_table(const cJSON *arr)
{
	const cJSON *c;

	printf("%-6s %-8s %-10s %-12s %-5s %-20s %s\n", "ID", "STATE",
	    "CHANNEL", "CONNECTOR", "MSGS", "CONTACT", "SUBJECT");
	cJSON_ArrayForEach(c, arr) {
		const cJSON *ct = cJSON_GetObjectItem(c, "contact");
		const cJSON *name = cJSON_GetObjectItem(ct, "name");
		const cJSON *subj = cJSON_GetObjectItem(c, "subject");

		printf("%-6.0f %-8s %-10s %-12s %-5.0f %-20.20s %s\n",
		    cJSON_GetObjectItem(c, "id")->valuedouble,
		    cJSON_GetObjectItem(c, "state")->valuestring,
		    cJSON_IsString(cJSON_GetObjectItem(c, "channel")) ?
		    cJSON_GetObjectItem(c, "channel")->valuestring : "-",
		    cJSON_GetObjectItem(c, "connector")->valuestring,
		    cJSON_GetObjectItem(c, "message_count")->valuedouble,
		    cJSON_IsString(name) ? name->valuestring : "-",
		    cJSON_IsString(subj) ? subj->valuestring : "");
	}
}

static int
cmd_conversations(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--state", NULL, true, NULL },
		{ "--json", NULL, false, NULL },
	};
	struct store *st = NULL;
	struct store_txn *txn = NULL;
	cJSON *arr = NULL;
	const char *ops[1];
	size_t nops;
	int states[STORE_STATE__COUNT], nstates = 0, rc;

	if ((rc = ctl__args(argc, argv, opts, 2, ops, 0, 0, &nops, "")) != 0)
		return rc;
	if (opts[0].val == NULL) {
		states[nstates++] = STORE_STATE_OPEN;
	} else if (strcmp(opts[0].val, "all") == 0) {
		for (int i = 0; i < STORE_STATE__COUNT; i++)
			states[nstates++] = i;
	} else if (store_state_parse(opts[0].val, &states[0]) == 0) {
		nstates = 1;
	} else {
		fprintf(stderr, "inboxctl: unknown state '%s' (open, snoozed, "
		    "closed, all)\n", opts[0].val);
		return 2;
	}
	arr = cJSON_CreateArray();
	rc = ctl__store_read(ctl, &st, &txn);
	if (rc == INBOX_ENOTFOUND) {
		rc = 0; /* no store yet: nothing was ever received */
		goto print;
	}
	if (rc != 0)
		goto out;
	for (int i = 0; i < nstates && rc == 0; i++) {
		struct store_feed_q q = { .state = states[i], .priority = -1,
		    .limit = 500 };
		bool more = true;

		while (more && rc == 0)
			rc = store_feed_json(txn, &q, arr, &more, &q.after_key,
			    &q.after_id);
	}
	if (rc != 0) {
		fprintf(stderr, "inboxctl: store: %s\n", inbox_strerror(rc));
		goto out;
	}
print:
	if (opts[1].val != NULL)
		ctl__print_json(arr);
	else
		print_table(arr);
out:
	store_txn_abort(txn);
	store_close(st);
	cJSON_Delete(arr);
	return rc == 0 ? 0 : 1;
}

bool
ctl__number_arg(const char *s, double min, double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return s[0] != '\0' && *end == '\0' && errno == 0 && *out >= min &&
	    *out <= max;
}

int
ctl__tail_opts(const char *count_s, const char *timeout_s, long *count,
    int64_t *deadline)
{
	double n, sec;

	*count = -1;
	*deadline = 0;
	if (count_s != NULL && (!ctl__number_arg(count_s, 0, 1e9, &n) ||
	    n != (double)(long)n)) {
		fprintf(stderr, "inboxctl: --count: a whole number, please\n");
		return 2;
	}
	if (timeout_s != NULL && !ctl__number_arg(timeout_s, 0, 1e7, &sec)) {
		fprintf(stderr, "inboxctl: --timeout: seconds, please\n");
		return 2;
	}
	if (count_s != NULL)
		*count = (long)n;
	if (timeout_s != NULL)
		*deadline = rt_now_ms() + (int64_t)(sec * 1000);
	return 0;
}

void
ctl__print_entry(void *arg, const char *id, const char *event,
    const char *data)
{
	printf("{\"seq\":\"%s\",\"event\":\"%s\",\"data\":%s}\n", id,
	    event ? event : "", data ? data : "null");
}

int
ctl__tail(struct ctl *ctl, const char *stream, const char *from, long count,
    int64_t deadline, void (*print)(void *arg, const char *id,
    const char *event, const char *data), void *arg)
{
	char last[64];
	long seen = 0;

	rt_sig_block();
	snprintf(last, sizeof(last), "%s", from);
	while ((count < 0 || seen < count) && !rt_sig_pending()) {
		redisReply *r;

		if (deadline && rt_now_ms() >= deadline)
			break;
		r = redisCommand(ctl->redis,
		    "XREAD COUNT 1000 BLOCK %d STREAMS %s %s",
		    ctl__block_ms(ctl), stream, last);
		if (rt_reply_is_error(r)) {
			fprintf(stderr, "inboxctl: XREAD %s: %s\n", stream,
			    r ? r->str : ctl->redis->errstr);
			if (r != NULL)
				freeReplyObject(r);
			return 1;
		}
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			redisReply *entries = r->element[0]->element[1];

			for (size_t i = 0; i < entries->elements &&
			    (count < 0 || seen < count); i++) {
				redisReply *e = entries->element[i];

				snprintf(last, sizeof(last), "%s",
				    e->element[0]->str);
				print(arg, last, rt_entry_field(e->element[1],
				    "event", NULL), rt_entry_field(e->element[1],
				    "data", NULL));
				seen++;
			}
			fflush(stdout);
		}
		freeReplyObject(r);
	}
	return 0;
}

int
ctl__time_arg(const char *s, int64_t now, bool ago, int64_t *ms)
{
	struct tm tm;
	int64_t d;
	double n;
	time_t t;
	char *end;

	if (ago && inbox_duration_parse(s, &d) == 0) {
		*ms = now - d;
		return 0;
	}
	if (ctl__number_arg(s, 0, 9007199254740992.0, &n) &&
	    n == (double)(int64_t)n) {
		*ms = (int64_t)n;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return INBOX_EINVAL;
	if (*end == ' ' || *end == 'T') {
		const char *rest = end + 1;

		if ((end = strptime(rest, "%H:%M:%S", &tm)) == NULL &&
		    (end = strptime(rest, "%H:%M", &tm)) == NULL)
			return INBOX_EINVAL;
	}
	if (*end != '\0')
		return INBOX_EINVAL;
	tm.tm_isdst = -1;
	if ((t = mktime(&tm)) == (time_t)-1)
		return INBOX_EINVAL;
	*ms = (int64_t)t * 1000;
	return 0;
}

void
ctl__fmt_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "-");
}

void
ctl__fmt_dur(int64_t ms, char *buf, size_t len)
{
	static const struct { char unit; int64_t s; } units[] = {
		{ 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
	};
	int64_t sec = (ms < 0 ? -ms : ms) / 1000;	/* whole seconds */
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		int64_t v = sec / units[i].s;

		sec %= units[i].s;
		if (v > 0 && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%lld%c",
			    (long long)v, units[i].unit);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "%lldms", (long long)(ms < 0 ? -ms : ms));
}

static int
cmd_events(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--from", NULL, true, NULL },
		{ "--count", NULL, true, NULL },
		{ "--timeout", NULL, true, NULL },
	};
	const char *ops[1];
	int64_t deadline;
	char last[64];
	size_t nops;
	long count;
	int rc;

	if (argc < 1 || strcmp(argv[0], "tail") != 0) {
		fprintf(stderr, "inboxctl: events: tail?\n");
		return ctl__usage();
	}
	if ((rc = ctl__args(argc - 1, argv + 1, opts, 3, ops, 0, 0, &nops,
	    "")) != 0 ||
	    (rc = ctl__tail_opts(opts[1].val, opts[2].val, &count,
	    &deadline)) != 0)
		return rc;
	if (ctl__connect(ctl) != 0)
		return 1;
	if (opts[0].val != NULL)
		snprintf(last, sizeof(last), "%s", opts[0].val);
	else if (ctl__stream_top(ctl, ctl->k_events, last, sizeof(last)) != 0)
		return 1;
	return ctl__tail(ctl, ctl->k_events, last, count, deadline,
	    ctl__print_entry, NULL);
}

/* 1 when directory path holds nothing, 0 when it holds something, -1 when
 * it cannot be read (errno set). */
static int
dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && empty)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

static int
cmd_backup(struct ctl *ctl, int argc, char **argv)
{
	struct store *st = NULL;
	struct stat sb;
	const char *ops[1], *path;
	char *data = NULL;
	size_t nops, n;
	int rc, e;

	if ((rc = ctl__args(argc, argv, NULL, 0, ops, 1, 1, &nops, "backup: "
	    "where to? (a new or empty directory)")) != 0)
		return rc;
	path = ops[0];
	if (stat(path, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "inboxctl: backup: %s exists and is not "
			    "a directory (give a new or empty directory)\n",
			    path);
			return 1;
		}
		if ((e = dir_empty(path)) != 1) {
			fprintf(stderr, "inboxctl: backup: %s %s (give a new or "
			    "empty directory)\n", path, e == 0 ? "is not empty" :
			    strerror(errno));
			return 1;
		}
	} else if (errno != ENOENT) {
		fprintf(stderr, "inboxctl: backup: %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	rc = ctl__store_open(ctl, &st);
	if (rc == INBOX_ENOTFOUND)
		fprintf(stderr, "inboxctl: backup: no store at %s yet: nothing "
		    "to back up\n", ctl->cfg.store_path);
	if (rc != 0)
		return 1;
	if ((rc = store_backup(st, path)) != 0) {
		fprintf(stderr, "inboxctl: backup to %s failed: %s\n", path,
		    inbox_strerror(rc));
		goto out;
	}
	n = strlen(path) + sizeof("/data.mdb");
	data = xmalloc(n);
	snprintf(data, n, "%s/data.mdb", path);
	if (stat(data, &sb) != 0) {
		fprintf(stderr, "inboxctl: backup: %s: %s\n", data,
		    strerror(errno));
		rc = INBOX_EIO;
		goto out;
	}
	printf("%s: %lld bytes, a compacted copy of %s\n", data,
	    (long long)sb.st_size, ctl->cfg.store_path);
out:
	free(data);
	store_close(st);
	return rc == 0 ? 0 : 1;
}

/* `inboxctl help`, `-h` or `--help`, with or without -c FILE: the first
 * operand decides, before any config is read. */
static bool
wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			i++;
			continue;
		}
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return true;
		if (argv[i][0] != '-')
			return strcmp(argv[i], "help") == 0;
	}
	return false;
}

static const struct {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
} commands[] = {
	{ "agent", cmd_agent },
	{ "conversations", cmd_conversations },
	{ "events", cmd_events },
	{ "contacts", ctl__contacts },
	{ "cmd", ctl__cmd },
	{ "backup", cmd_backup },
	{ "restore", ctl__restore },
	{ "sla", ctl__sla },
	{ "stats", ctl__stats },
	{ "rules", ctl__rules },
	{ "connectors", ctl__connectors },
	{ "templates", ctl__templates },
	{ "tags", ctl__tags },
	{ "teams", ctl__teams },
};

int
main(int argc, char **argv)
{
	struct ctl ctl;
	size_t i;
	int argi, rc;

	if (wants_help(argc, argv)) {
		print_usage(stdout);
		return 0;
	}
	memset(&ctl, 0, sizeof(ctl));
	rc = rt_proc_init(&ctl.cfg, "inboxctl", argc, argv, &argi);
	if (rc != 0) {
		inbox_config_finish(&ctl.cfg);
		return rc > 0 ? 0 : 2;
	}
	log_setlevel(ctl.cfg.log_level < INBOX_LOG_WARN ? ctl.cfg.log_level :
	    INBOX_LOG_WARN);
	argc -= argi;
	argv += argi;
	if (ctl.cfg.redis_shards > 1 && ctl.cfg.shard < 0) {
		/* global data (every shard keeps a copy), and stats over
		 * every shard */
		if (argc >= 1 && (strcmp(argv[0], "agent") == 0 ||
		    strcmp(argv[0], "templates") == 0 ||
		    strcmp(argv[0], "teams") == 0 ||
		    strcmp(argv[0], "stats") == 0)) {
			ctl.all_shards = true;   /* keys: shard 0's (rt_key) */
		} else {
			fprintf(stderr, "inboxctl: %s: redis.shards is %d: say "
			    "which shard with -s SHARD (0 to %d)\n",
			    ctl.cfg.file, ctl.cfg.redis_shards,
			    ctl.cfg.redis_shards - 1);
			rc = 2;
		}
		if (rc != 0) {
			inbox_config_finish(&ctl.cfg);
			return 2;
		}
	}
	rt_key(ctl.k_cmd, sizeof(ctl.k_cmd), &ctl.cfg, "cmd");
	rt_key(ctl.k_events, sizeof(ctl.k_events), &ctl.cfg, "events");
	for (i = 0; argc >= 1 && i < sizeof(commands) / sizeof(commands[0]);
	    i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (argc < 1) {
		rc = ctl__usage();
	} else if (i == sizeof(commands) / sizeof(commands[0])) {
		fprintf(stderr, "inboxctl: unknown command '%s'\n", argv[0]);
		rc = ctl__usage();
	} else {
		rc = commands[i].fn(&ctl, argc - 1, argv + 1);
	}
	if (ctl.redis != NULL)
		redisFree(ctl.redis);
	inbox_config_finish(&ctl.cfg);
	return rc;
}
