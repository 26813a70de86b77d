/*
 * inboxctl sla tail: follows the router's SLA alert stream (<prefix>:sla,
 * entries `event` = sla.warning | sla.breached and `data`, see
 * router/assign.c) like `tail -f`: one line an alert for people, or with
 * --json the {"seq", "event", "data"} lines of `events tail`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "router/ctl_int.h"

static const char *
str(const cJSON *o, const char *name, const char *none)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(it) && it->valuestring[0] != '\0' ?
	    it->valuestring : none;
}

/* One alert for people:
 * 2026-11-30 10:02:03 BREACHED first_response  #42 (urgent) ann
 *     policy=fast  overdue 2m10s  "Subject"  (one line) */
static void
print_human(void *arg, const char *id, const char *event, const char *data)
{
	cJSON *d = data != NULL ? cJSON_Parse(data) : NULL;
	bool breach = event != NULL && strcmp(event, "sla.breached") == 0;
	double over = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d,
	    "overdue_ms"));
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(d, "at");
	const char *subject = str(d, "subject", NULL);
	char when[32], dur[32];

	if (!cJSON_IsObject(d)) {
		printf("%s %s (unreadable data)\n", id, event ? event : "?");
		cJSON_Delete(d);
		return;
	}
	ctl__fmt_time(cJSON_IsNumber(at) ? (int64_t)at->valuedouble :
	    strtoll(id, NULL, 10), when, sizeof(when));
	ctl__fmt_dur(over == over ? (int64_t)over : 0, dur, sizeof(dur));
	printf("%s %-8s %s  #%.0f (%s) %s  policy=%s  %s %s", when,
	    breach ? "BREACHED" : "WARNING", str(d, "timer", "?"),
	    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d,
	    "conversation_id")), str(d, "priority", "?"),
	    str(d, "assignee", "unassigned"), str(d, "policy", "-"),
	    breach ? "overdue" : "due in", dur);
	if (subject != NULL) {
		/* one alert, one line: control characters become spaces */
		printf("  \"");
		for (const unsigned char *p = (const unsigned char *)subject;
		    *p != '\0'; p++)
			putchar(*p < 0x20 || *p == 0x7f ? ' ' : *p);
		putchar('"');
	}
	putchar('\n');
	cJSON_Delete(d);
}

/* Where --since starts: the entries after the id written to out. Returns
 * 0, or 2 after printing what is wrong. */
static int
since_id(const char *since, char *out, size_t len)
{
	unsigned long long ms, seq;
	int64_t t, d;
	char tail;

	if (strcmp(since, "all") == 0) {
		snprintf(out, len, "0-0");
	} else if (sscanf(since, "%llu-%llu%c", &ms, &seq, &tail) == 2) {
		snprintf(out, len, "%llu-%llu", ms, seq);
	} else if (inbox_duration_parse(since, &d) == 0) {
		/* the last id of the millisecond before */
		t = rt_now_ms() - d;
		if (t <= 0)
			snprintf(out, len, "0-0");
		else
			snprintf(out, len, "%lld-18446744073709551615",
			    (long long)t - 1);
	} else {
		fprintf(stderr, "inboxctl: --since: a stream id (ms-n), a "
		    "duration (30m, 1h, 2d) or all\n");
		return 2;
	}
	return 0;
}

int
ctl__sla(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--json", NULL, false, NULL },
		{ "--since", NULL, true, NULL },
		{ "--count", NULL, true, NULL },
		{ "--timeout", NULL, true, NULL },
	};
	const char *ops[1];
	char stream[128], from[64];
	int64_t deadline;
	size_t nops;
	long count;
	int rc;

	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return ctl__sla_list(ctl, argc - 1, argv + 1);
	if (argc < 1 || strcmp(argv[0], "tail") != 0) {
		fprintf(stderr, "inboxctl: sla: tail or list?\n");
		return ctl__usage();
	}
	if ((rc = ctl__args(argc - 1, argv + 1, opts, 4, ops, 0, 0, &nops,
	    "")) != 0 ||
	    (rc = ctl__tail_opts(opts[2].val, opts[3].val, &count,
	    &deadline)) != 0)
		return rc;
	rt_key(stream, sizeof(stream), &ctl->cfg, "sla");
	if (opts[1].val != NULL &&
	    (rc = since_id(opts[1].val, from, sizeof(from))) != 0)
		return rc;
	/* without --since: only what comes from now on */
	if (ctl__connect(ctl) != 0 || (opts[1].val == NULL &&
	    ctl__stream_top(ctl, stream, from, sizeof(from)) != 0))
		return 1;
	return ctl__tail(ctl, stream, from, count, deadline,
	    opts[0].val != NULL ? ctl__print_entry : print_human, NULL);
}
