/*
 * inboxctl: commands to the router. The store has one writer, the router:
 * inboxctl XADDs commands to inbox:cmd (pipelined, in order) and reads
 * inbox:events until each is answered by an event carrying its cmd_id (its
 * own event or command.failed, docs/protocol.md "Commands").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "router/ctl_int.h"

#define CALL_CHUNK 512           /* XADDs in flight at once */

int
ctl__stream_top(struct ctl *ctl, const char *stream, char *out, size_t len)
{
	redisReply *r = redisCommand(ctl->redis, "XREVRANGE %s + - COUNT 1",
	    stream);

	snprintf(out, len, "0-0");
	if (rt_reply_is_error(r)) {
		fprintf(stderr, "inboxctl: XREVRANGE %s: %s\n", stream,
		    r != NULL ? r->str : ctl->redis->errstr);
		if (r != NULL)
			freeReplyObject(r);
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements >= 1)
		snprintf(out, len, "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	return 0;
}

int
ctl__block_ms(const struct ctl *ctl)
{
	int ms = ctl->cfg.redis_timeout_ms / 2;

	return ms > 500 ? 500 : ms < 1 ? 1 : ms;
}

/* The index of the call a cmd_id "<prefix>.<index>" names, or -1. */
static long
call_index(const char *prefix, const char *cmd_id, size_t n)
{
	size_t plen = strlen(prefix);
	unsigned long long idx;
	char *end;

	if (cmd_id == NULL || strncmp(cmd_id, prefix, plen) != 0 ||
	    cmd_id[plen] != '.' || cmd_id[plen + 1] < '0' ||
	    cmd_id[plen + 1] > '9')
		return -1;
	idx = strtoull(cmd_id + plen + 1, &end, 10);
	if (*end != '\0' || idx >= n)
		return -1;
	return (long)idx;
}

/* With ctl->all_shards: the commands shard 0 applied (answered, not with
 * command.failed) go as copies to shards 1.. too, which apply them
 * without announcing them. Returns 0, or -1 after printing which shard
 * missed them. */
static int
send_copies(struct ctl *ctl, struct ctl_call *calls, size_t n)
{
	int rc = 0;

	for (unsigned k = 1; ctl->all_shards &&
	    k < (unsigned)ctl->cfg.redis_shards; k++) {
		redisContext *c = rt_redis_connect_shard(&ctl->cfg, k);
		char key[160];
		size_t sent = 0;
		bool ok = c != NULL;

		rt_key_shard(key, sizeof(key), &ctl->cfg, k, "cmd");
		for (size_t j = 0; ok && j < n; j++) {
			char *json;

			if (calls[j].event == NULL ||
			    strcmp(calls[j].event, "command.failed") == 0)
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(calls[j].cmd,
			    "copy");
			cJSON_AddBoolToObject(calls[j].cmd, "copy", 1);
			json = cJSON_PrintUnformatted(calls[j].cmd);
			cJSON_DeleteItemFromObjectCaseSensitive(calls[j].cmd,
			    "copy");
			redisAppendCommand(c, "XADD %s * cmd %s", key, json);
			free(json);
			sent++;
		}
		for (size_t j = 0; ok && j < sent; j++) {
			redisReply *r = NULL;

			if (redisGetReply(c, (void **)&r) != REDIS_OK ||
			    r->type == REDIS_REPLY_ERROR)
				ok = false;
			if (r != NULL)
				freeReplyObject(r);
		}
		if (!ok) {
			fprintf(stderr, "inboxctl: shard %u did not get its copy "
			    "(redis: %s): run the command again\n", k,
			    c != NULL ? c->errstr : "unreachable");
			rc = -1;
		}
		if (c != NULL)
			redisFree(c);
	}
	return rc;
}

/* XADDs calls[0..n) in chunks; returns how many were sent. */
static size_t
send_calls(struct ctl *ctl, const char *prefix, struct ctl_call *calls,
    size_t n)
{
	size_t sent = 0;

	for (size_t i = 0; i < n; i += CALL_CHUNK) {
		size_t end = n - i > CALL_CHUNK ? i + CALL_CHUNK : n;

		for (size_t j = i; j < end; j++) {
			char id[64], *json;

			snprintf(id, sizeof(id), "%s.%zu", prefix, j);
			cJSON_DeleteItemFromObjectCaseSensitive(calls[j].cmd,
			    "cmd_id");
			cJSON_AddStringToObject(calls[j].cmd, "cmd_id", id);
			json = cJSON_PrintUnformatted(calls[j].cmd);
			redisAppendCommand(ctl->redis, "XADD %s * cmd %s",
			    ctl->k_cmd, json);
			free(json);
		}
		for (size_t j = i; j < end; j++) {
			redisReply *r = NULL;

			if (redisGetReply(ctl->redis, (void **)&r) != REDIS_OK) {
				for (size_t k = j; k < n; k++)
					snprintf(calls[k].err, sizeof(calls[k].err),
					    "not sent: redis: %s",
					    ctl->redis->errstr);
				return sent;
			}
			if (r->type == REDIS_REPLY_ERROR) {
				snprintf(calls[j].err, sizeof(calls[j].err),
				    "not sent: XADD %s: %s", ctl->k_cmd, r->str);
			} else {
				calls[j].sent = true;
				sent++;
			}
			freeReplyObject(r);
		}
	}
	return sent;
}

/* Takes the answers among the entries of one XREAD reply; moves `last` on.
 * Returns how many calls got their answer. */
static size_t
take_answers(const redisReply *entries, const char *prefix,
    struct ctl_call *calls, size_t n, char *last, size_t lastlen)
{
	size_t got = 0;

	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		const char *ev, *data;
		long idx;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
			continue;
		snprintf(last, lastlen, "%s", e->element[0]->str);
		idx = call_index(prefix, rt_entry_field(e->element[1], "cmd_id",
		    NULL), n);
		if (idx < 0 || !calls[idx].sent || calls[idx].event != NULL)
			continue;
		ev = rt_entry_field(e->element[1], "event", NULL);
		data = rt_entry_field(e->element[1], "data", NULL);
		calls[idx].event = xstrdup(ev != NULL ? ev : "");
		calls[idx].data = data != NULL ? cJSON_Parse(data) : NULL;
		snprintf(calls[idx].seq, sizeof(calls[idx].seq), "%s", last);
		got++;
	}
	return got;
}

int
ctl__call(struct ctl *ctl, struct ctl_call *calls, size_t n, int idle_s)
{
	unsigned char raw[12];
	char prefix[2 * sizeof(raw) + 1], last[64];
	size_t sent, answered = 0;
	int64_t deadline;

	if (sodium_init() < 0) {
		fprintf(stderr, "inboxctl: libsodium failed to start\n");
		return 1;
	}
	randombytes_buf(raw, sizeof(raw));
	inbox_hex(prefix, raw, sizeof(raw));
	for (size_t i = 0; i < n; i++)
		snprintf(calls[i].err, sizeof(calls[i].err), "not sent");
	if (ctl__connect(ctl) != 0 ||
	    ctl__stream_top(ctl, ctl->k_events, last, sizeof(last)) != 0)
		return 1;
	sent = send_calls(ctl, prefix, calls, n);
	deadline = rt_now_ms() + (int64_t)idle_s * 1000;
	while (answered < sent && ctl->redis->err == 0 &&
	    rt_now_ms() < deadline) {
		redisReply *r = redisCommand(ctl->redis,
		    "XREAD COUNT 1000 BLOCK %d STREAMS %s %s",
		    ctl__block_ms(ctl), ctl->k_events, last);
		size_t got = 0;

		if (rt_reply_is_error(r)) {
			fprintf(stderr, "inboxctl: XREAD %s: %s\n",
			    ctl->k_events, r != NULL ? r->str :
			    ctl->redis->errstr);
			if (r != NULL)
				freeReplyObject(r);
			break;
		}
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
		    r->element[0]->elements == 2)
			got = take_answers(r->element[0]->element[1], prefix,
			    calls, n, last, sizeof(last));
		freeReplyObject(r);
		if (got > 0)
			deadline = rt_now_ms() + (int64_t)idle_s * 1000;
		answered += got;
	}
	for (size_t i = 0; i < n; i++) {
		if (calls[i].sent && calls[i].event == NULL)
			snprintf(calls[i].err, sizeof(calls[i].err),
			    "no answer from the router within %d s (is "
			    "inbox-router running? the command may still be "
			    "applied)", idle_s);
		else if (calls[i].event != NULL)
			calls[i].err[0] = '\0';
	}
	if (send_copies(ctl, calls, n) != 0)
		return 1;
	return answered == n ? 0 : 1;
}

void
ctl__call_finish(struct ctl_call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(calls[i].event);
		cJSON_Delete(calls[i].data);
		calls[i].event = NULL;
		calls[i].data = NULL;
	}
}

const char *
ctl__call_failure(const struct ctl_call *call, const char **code)
{
	const cJSON *err, *c, *m;

	if (call->event == NULL || strcmp(call->event, "command.failed") != 0)
		return NULL;
	err = cJSON_GetObjectItemCaseSensitive(call->data, "error");
	c = cJSON_GetObjectItemCaseSensitive(err, "code");
	m = cJSON_GetObjectItemCaseSensitive(err, "message");
	*code = cJSON_IsString(c) ? c->valuestring : "unknown";
	return cJSON_IsString(m) ? m->valuestring : "(no message)";
}

/* Prints an answer as `events tail` does: {"seq","event","data"}. */
static void
print_answer(const struct ctl_call *call)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(o, "seq", call->seq);
	cJSON_AddStringToObject(o, "event", call->event);
	cJSON_AddItemToObject(o, "data", call->data != NULL ?
	    cJSON_Duplicate(call->data, true) : cJSON_CreateNull());
	s = cJSON_PrintUnformatted(o);
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
}

int
ctl__call_print(struct ctl *ctl, cJSON *cmd, const char *what, bool json)
{
	const char *code, *msg;
	struct ctl_call call;
	char *data;
	int rc = 1;

	memset(&call, 0, sizeof(call));
	call.cmd = cmd;
	if (ctl__call(ctl, &call, 1, CTL_ANSWER_TIMEOUT_S) != 0) {
		fprintf(stderr, "inboxctl: %s: %s\n", what, call.err);
	} else if ((msg = ctl__call_failure(&call, &code)) != NULL) {
		fprintf(stderr, "inboxctl: %s refused: %s: %s\n", what, code,
		    msg);
	} else if (json) {
		print_answer(&call);
		rc = 0;
	} else {
		data = cJSON_PrintUnformatted(call.data);
		printf("%s: %s\n", call.event, data ? data : "null");
		free(data);
		rc = 0;
	}
	ctl__call_finish(&call, 1);
	return rc;
}

int
ctl__cmd(struct ctl *ctl, int argc, char **argv)
{
	static const char *const reserved[] = { "v", "type", "cmd_id", "actor" };
	struct ctl_opt opts[] = { { "--as", NULL, true, NULL } };
	const char *ops[2];
	cJSON *cmd = NULL, *fields = NULL, *it;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 1, ops, 1, 2, &nops, "cmd: which "
	    "command? (e.g. conversation.close; see docs/protocol.md)")) != 0)
		return rc;
	if (nops == 2) {
		fields = cJSON_Parse(ops[1]);
		if (!cJSON_IsObject(fields)) {
			fprintf(stderr, "inboxctl: cmd: the argument is not a "
			    "JSON object: %s\n", ops[1]);
			cJSON_Delete(fields);
			return 2;
		}
		for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]);
		    i++) {
			if (cJSON_GetObjectItemCaseSensitive(fields,
			    reserved[i]) != NULL) {
				fprintf(stderr, "inboxctl: cmd: \"%s\" is set "
				    "by inboxctl (give the type as TYPE and "
				    "the actor with --as)\n", reserved[i]);
				cJSON_Delete(fields);
				return 2;
			}
		}
	}
	cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(cmd, "v", 1);
	cJSON_AddStringToObject(cmd, "type", ops[0]);
	cJSON_AddStringToObject(cmd, "cmd_id", "");
	if (fields != NULL) {
		while ((it = fields->child) != NULL)
			cJSON_AddItemToObject(cmd, it->string,
			    cJSON_DetachItemViaPointer(fields, it));
	}
	if (opts[0].val != NULL)
		cJSON_AddStringToObject(cmd, "actor", opts[0].val);
	rc = ctl__call_print(ctl, cmd, ops[0], true);
	cJSON_Delete(cmd);
	cJSON_Delete(fields);
	return rc;
}
