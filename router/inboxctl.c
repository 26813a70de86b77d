/*
 * inboxctl: the operator's tool. Agents (through the router's command
 * stream: only the router writes the store), conversations (read from the
 * store), events (tail of inbox:events).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "inbox/rt/rt.h"
#include "store/store.h"

struct ctl {
	struct inbox_config cfg;
	redisContext *redis;
	char k_cmd[128], k_events[128];
};

static int
usage(void)
{
	fprintf(stderr,
	    "usage: inboxctl -c FILE agent add LOGIN [--name NAME] [--role ROLE]\n"
	    "                    [--password-stdin | --password PW]\n"
	    "       inboxctl -c FILE agent passwd LOGIN [--password-stdin | --password PW]\n"
	    "       inboxctl -c FILE conversations [--state open|snoozed|closed|all] [--json]\n"
	    "       inboxctl -c FILE events tail [--from ID] [--count N] [--timeout SEC]\n");
	return 2;
}

static const char *
opt_value(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++) {
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	}
	return NULL;
}

static bool
opt_flag(int argc, char **argv, const char *name)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], name) == 0)
			return true;
	}
	return false;
}

static int
connect_redis(struct ctl *ctl)
{
	if ((ctl->redis = rt_redis_connect(&ctl->cfg)) == NULL) {
		fprintf(stderr, "inboxctl: cannot reach redis\n");
		return -1;
	}
	return 0;
}

/* The id of the newest entry of a stream, or "0-0". */
static void
stream_top(redisContext *c, const char *stream, char *out, size_t len)
{
	redisReply *r = redisCommand(c, "XREVRANGE %s + - COUNT 1", stream);

	snprintf(out, len, "0-0");
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->elements >= 1)
		snprintf(out, len, "%s", r->element[0]->element[0]->str);
	if (r != NULL)
		freeReplyObject(r);
}

/* Reads events after `from` until one carries cmd_id; prints the outcome. */
static int
await_answer(struct ctl *ctl, const char *from, const char *cmd_id,
    int timeout_s)
{
	char last[64];
	int64_t deadline = rt_now_ms() + (int64_t)timeout_s * 1000;

	snprintf(last, sizeof(last), "%s", from);
	while (rt_now_ms() < deadline) {
		redisReply *r = redisCommand(ctl->redis,
		    "XREAD COUNT 100 BLOCK 500 STREAMS %s %s", ctl->k_events,
		    last);
		int rc = -2;

		if (r == NULL) {
			fprintf(stderr, "inboxctl: redis: %s\n",
			    ctl->redis->errstr);
			return 1;
		}
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			redisReply *entries = r->element[0]->element[1];

			for (size_t i = 0; i < entries->elements && rc == -2; i++) {
				redisReply *e = entries->element[i];
				const char *ev = rt_entry_field(e->element[1],
				    "event", NULL);
				const char *data = rt_entry_field(e->element[1],
				    "data", NULL);
				cJSON *d;
				const cJSON *id;

				snprintf(last, sizeof(last), "%s",
				    e->element[0]->str);
				if (ev == NULL || data == NULL)
					continue;
				d = cJSON_Parse(data);
				id = cJSON_GetObjectItemCaseSensitive(d, "cmd_id");
				if (cJSON_IsString(id) &&
				    strcmp(id->valuestring, cmd_id) == 0) {
					if (strcmp(ev, "command.failed") == 0) {
						const cJSON *err =
						    cJSON_GetObjectItem(d, "error");
						const cJSON *msg =
						    cJSON_GetObjectItem(err, "message");
						fprintf(stderr, "inboxctl: refused: %s\n",
						    cJSON_IsString(msg) ?
						    msg->valuestring : data);
						rc = 1;
					} else {
						printf("%s: %s\n", ev, data);
						rc = 0;
					}
				}
				cJSON_Delete(d);
			}
		}
		freeReplyObject(r);
		if (rc != -2)
			return rc;
	}
	fprintf(stderr, "inboxctl: no answer from the router within %d s "
	    "(is inbox-router running?)\n", timeout_s);
	return 1;
}

static char *
read_password(int argc, char **argv)
{
	const char *pw = opt_value(argc, argv, "--password");
	char buf[1024];
	size_t n;

	if (pw != NULL)
		return xstrdup(pw);
	if (!opt_flag(argc, argv, "--password-stdin")) {
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
	char hash[crypto_pwhash_STRBYTES];
	unsigned char raw[16];
	char cmd_id[33], top[64];
	const char *name, *role;
	char *pw = NULL, *json = NULL;
	cJSON *cmd = NULL;
	redisReply *r;
	bool add;
	int rc = 1;

	if (argc < 2 || (strcmp(argv[0], "add") != 0 &&
	    strcmp(argv[0], "passwd") != 0))
		return usage();
	add = strcmp(argv[0], "add") == 0;
	if (sodium_init() < 0) {
		fprintf(stderr, "inboxctl: libsodium failed to start\n");
		return 1;
	}
	if ((pw = read_password(argc, argv)) == NULL)
		return 1;
	if (crypto_pwhash_str(hash, pw, strlen(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fprintf(stderr, "inboxctl: password hashing failed (memory)\n");
		goto out;
	}
	sodium_memzero(pw, strlen(pw));
	randombytes_buf(raw, sizeof(raw));
	inbox_hex(cmd_id, raw, sizeof(raw));

	cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", add ? "agent.add" : "agent.passwd");
	cJSON_AddStringToObject(cmd, "cmd_id", cmd_id);
	cJSON_AddStringToObject(cmd, "login", argv[1]);
	cJSON_AddStringToObject(cmd, "pwhash", hash);
	if ((name = opt_value(argc, argv, "--name")) != NULL)
		cJSON_AddStringToObject(cmd, "name", name);
	if ((role = opt_value(argc, argv, "--role")) != NULL)
		cJSON_AddStringToObject(cmd, "role", role);
	json = cJSON_PrintUnformatted(cmd);

	if (connect_redis(ctl) != 0)
		goto out;
	stream_top(ctl->redis, ctl->k_events, top, sizeof(top));
	r = redisCommand(ctl->redis, "XADD %s * cmd %s", ctl->k_cmd, json);
	if (rt_reply_is_error(r)) {
		fprintf(stderr, "inboxctl: XADD %s: %s\n", ctl->k_cmd,
		    r ? r->str : ctl->redis->errstr);
		if (r != NULL)
			freeReplyObject(r);
		goto out;
	}
	freeReplyObject(r);
	rc = await_answer(ctl, top, cmd_id, 15);
out:
	free(pw);
	free(json);
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
	const char *state_opt = opt_value(argc, argv, "--state");
	bool json = opt_flag(argc, argv, "--json");
	struct store *st = NULL;
	struct store_txn *txn = NULL;
	cJSON *arr = cJSON_CreateArray();
	int states[STORE_STATE__COUNT], nstates = 0, rc;

	if (state_opt == NULL) {
		states[nstates++] = STORE_STATE_OPEN;
	} else if (strcmp(state_opt, "all") == 0) {
		for (int i = 0; i < STORE_STATE__COUNT; i++)
			states[nstates++] = i;
	} else if (store_state_parse(state_opt, &states[0]) == 0) {
		nstates = 1;
	} else {
		fprintf(stderr, "inboxctl: unknown state '%s' (open, snoozed, "
		    "closed, all)\n", state_opt);
		cJSON_Delete(arr);
		return 2;
	}
	rc = store_open(&st, ctl->cfg.store_path, ctl->cfg.store_map_size_mb,
	    STORE_RDONLY);
	if (rc == INBOX_ENOTFOUND) {
		rc = 0; /* no store yet: nothing was ever received */
		goto print;
	}
	if (rc != 0 || (rc = store_txn_begin(st, false, &txn)) != 0) {
		fprintf(stderr, "inboxctl: store %s: %s\n", ctl->cfg.store_path,
		    inbox_strerror(rc));
		goto out;
	}
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
	if (json) {
		char *s = cJSON_PrintUnformatted(arr);
		printf("%s\n", s);
		free(s);
	} else {
		print_table(arr);
	}
out:
	store_txn_abort(txn);
	store_close(st);
	cJSON_Delete(arr);
	return rc == 0 ? 0 : 1;
}

static int
cmd_events(struct ctl *ctl, int argc, char **argv)
{
	const char *from = opt_value(argc, argv, "--from");
	const char *count_s = opt_value(argc, argv, "--count");
	const char *timeout_s = opt_value(argc, argv, "--timeout");
	long count = count_s ? strtol(count_s, NULL, 10) : -1;
	int64_t deadline = timeout_s ?
	    rt_now_ms() + (int64_t)(strtod(timeout_s, NULL) * 1000) : 0;
	char last[64];
	long seen = 0;

	if (argc < 1 || strcmp(argv[0], "tail") != 0)
		return usage();
	if (connect_redis(ctl) != 0)
		return 1;
	if (from != NULL)
		snprintf(last, sizeof(last), "%s", from);
	else
		stream_top(ctl->redis, ctl->k_events, last, sizeof(last));
	while (count < 0 || seen < count) {
		redisReply *r;

		if (deadline && rt_now_ms() >= deadline)
			break;
		r = redisCommand(ctl->redis,
		    "XREAD COUNT 1000 BLOCK 500 STREAMS %s %s", ctl->k_events,
		    last);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "inboxctl: XREAD: %s\n",
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
				const char *ev = rt_entry_field(e->element[1],
				    "event", NULL);
				const char *data = rt_entry_field(e->element[1],
				    "data", NULL);

				snprintf(last, sizeof(last), "%s",
				    e->element[0]->str);
				printf("{\"seq\":\"%s\",\"event\":\"%s\","
				    "\"data\":%s}\n", last, ev ? ev : "",
				    data ? data : "null");
				seen++;
			}
			fflush(stdout);
		}
		freeReplyObject(r);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct ctl ctl;
	int argi, rc;

	memset(&ctl, 0, sizeof(ctl));
	rc = rt_proc_init(&ctl.cfg, "inboxctl", argc, argv, &argi);
	if (rc != 0) {
		inbox_config_finish(&ctl.cfg);
		return rc > 0 ? 0 : 2;
	}
	log_setlevel(ctl.cfg.log_level < INBOX_LOG_WARN ? ctl.cfg.log_level :
	    INBOX_LOG_WARN);
	rt_key(ctl.k_cmd, sizeof(ctl.k_cmd), &ctl.cfg, "cmd");
	rt_key(ctl.k_events, sizeof(ctl.k_events), &ctl.cfg, "events");
	argc -= argi;
	argv += argi;
	if (argc < 1)
		rc = usage();
	else if (strcmp(argv[0], "agent") == 0)
		rc = cmd_agent(&ctl, argc - 1, argv + 1);
	else if (strcmp(argv[0], "conversations") == 0)
		rc = cmd_conversations(&ctl, argc - 1, argv + 1);
	else if (strcmp(argv[0], "events") == 0)
		rc = cmd_events(&ctl, argc - 1, argv + 1);
	else
		rc = usage();
	if (ctl.redis != NULL)
		redisFree(ctl.redis);
	inbox_config_finish(&ctl.cfg);
	return rc;
}
