/*
 * inboxctl stats: who answered how many dialogs, how fast, over a period.
 * The figures come from the store (store_stats, one read transaction;
 * with shards and no -s, every shard's store); the SLA breaches are the
 * sla.breached alerts of <prefix>:sla (every shard's) in the period
 * (docs/operations.md, "Supervisor stats").
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "router/ctl_int.h"

#define WEEK_MS (7 * 86400000LL)
#define ALERT_PAGE 1000
/* Alert ids may run ahead of their `at` (the router's event clock):
 * read this far past the period's end. */
#define ALERT_SLACK_MS 60000

/* Counts the breach alerts of the period in `stream` (on c) into stats.
 * Returns 0, or -1 after printing why the stream could not be read. */
static int
count_alerts(redisContext *c, const char *stream, cJSON *stats,
    int64_t from, int64_t to)
{
	char start[80];
	bool more = true;

	snprintf(start, sizeof(start), "%lld", (long long)from);
	while (more) {
		redisReply *r = redisCommand(c, "XRANGE %s %s %lld "
		    "COUNT %d", stream, start, (long long)to + ALERT_SLACK_MS,
		    ALERT_PAGE);

		if (rt_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY) {
			fprintf(stderr, "inboxctl: XRANGE %s: %s\n", stream,
			    r == NULL ? c->errstr :
			    r->type == REDIS_REPLY_ERROR ? r->str :
			    "unexpected reply");
			if (r != NULL)
				freeReplyObject(r);
			return -1;
		}
		more = r->elements == ALERT_PAGE;
		for (size_t i = 0; i < r->elements; i++) {
			const redisReply *e = r->element[i];

			store_stats_alert(stats, rt_entry_field(e->element[1],
			    "event", NULL), rt_entry_field(e->element[1],
			    "data", NULL));
			snprintf(start, sizeof(start), "(%s", e->element[0]->str);
		}
		freeReplyObject(r);
	}
	return 0;
}

/* The breach alerts of every shard read (the -s one, or all). */
static int
count_all_alerts(struct ctl *ctl, unsigned n, cJSON *stats, int64_t from,
    int64_t to)
{
	char stream[160];
	int rc = 0;

	if (ctl__connect(ctl) != 0)
		return -1;
	rt_key(stream, sizeof(stream), &ctl->cfg, "sla");
	rc = count_alerts(ctl->redis, stream, stats, from, to);
	for (unsigned k = 1; k < n && rc == 0; k++) {
		redisContext *c = rt_redis_connect_shard(&ctl->cfg, k);

		if (c == NULL) {
			fprintf(stderr, "inboxctl: cannot reach shard %u's "
			    "redis\n", k);
			return -1;
		}
		rt_key_shard(stream, sizeof(stream), &ctl->cfg, k, "sla");
		rc = count_alerts(c, stream, stats, from, to);
		redisFree(c);
	}
	return rc;
}

static double
num(const cJSON *o, const char *name)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* A duration field for people; "-" for null. */
static const char *
dur(const cJSON *o, const char *name, char *buf, size_t len)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(it))
		return "-";
	ctl__fmt_dur((int64_t)it->valuedouble, buf, len);
	return buf;
}

static void
print_figures(const char *label, const char *teams, const cJSON *o)
{
	const cJSON *br = cJSON_GetObjectItemCaseSensitive(o, "sla_breaches");
	const cJSON *avg = cJSON_GetObjectItemCaseSensitive(o, "rating_avg");
	char med[32], p90[32], res[32], brs[16], rating[32];

	if (cJSON_IsNumber(br))
		snprintf(brs, sizeof(brs), "%.0f", br->valuedouble);
	else
		snprintf(brs, sizeof(brs), "?");
	if (cJSON_IsNumber(avg))
		snprintf(rating, sizeof(rating), "%.2f (%.0f)",
		    avg->valuedouble, num(o, "ratings"));
	else
		snprintf(rating, sizeof(rating), "-");
	printf("%-16.16s %-20.20s %7.0f %6.0f %9s %9s %10s %5.0f %8s  %s\n",
	    label, teams, num(o, "handled"), num(o, "closed"),
	    dur(o, "first_response_median_ms", med, sizeof(med)),
	    dur(o, "first_response_p90_ms", p90, sizeof(p90)),
	    dur(o, "resolution_median_ms", res, sizeof(res)),
	    num(o, cJSON_HasObjectItem(o, "open_load") ? "open_load" : "open"),
	    brs, rating);
}

static void
print_header(const char *what)
{
	printf("\n%-16s %-20s %7s %6s %9s %9s %10s %5s %8s  %s\n", what,
	    strcmp(what, "AGENT") == 0 ? "TEAMS" : "", "HANDLED", "CLOSED", "1ST-MED",
	    "1ST-P90", "RESOL-MED", "OPEN", "BREACHES", "RATING");
}

static void
print_stats(const cJSON *s)
{
	const cJSON *it, *tot = cJSON_GetObjectItemCaseSensitive(s, "totals");
	char from[32], to[32];

	ctl__fmt_time((int64_t)num(s, "from"), from, sizeof(from));
	ctl__fmt_time((int64_t)num(s, "to"), to, sizeof(to));
	printf("Period %s .. %s: %.0f dialogs created, %.0f open now\n", from,
	    to, num(tot, "created"), num(tot, "open"));
	print_header("AGENT");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "agents")) {
		char teams[256] = "";
		const cJSON *t;
		size_t n = 0;

		cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(it,
		    "teams"))
			if (cJSON_IsString(t) && n < sizeof(teams))
				n += (size_t)snprintf(teams + n,
				    sizeof(teams) - n, "%s%s", n ? ", " : "",
				    t->valuestring);
		print_figures(cJSON_GetObjectItemCaseSensitive(it,
		    "login")->valuestring, n ? teams : "-", it);
	}
	print_header("TEAM");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "teams"))
		print_figures(cJSON_GetObjectItemCaseSensitive(it,
		    "team")->valuestring, "", it);
	print_header("ALL");
	print_figures("all dialogs", "", tot);
	printf("\n%-16s %7s %6s\n", "CHANNEL", "CREATED", "OPEN");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s,
	    "channels"))
		printf("%-16.16s %7.0f %6.0f\n",
		    cJSON_GetObjectItemCaseSensitive(it,
		    "channel")->valuestring, num(it, "created"),
		    num(it, "open"));
}

int
ctl__stats(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--from", NULL, true, NULL },
		{ "--to", NULL, true, NULL },
		{ "--json", NULL, false, NULL },
	};
	struct ctl_stores s;
	const char *ops[1];
	int64_t now = rt_now_ms(), from = now - WEEK_MS, to = now;
	void *stats = NULL;
	size_t nops;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 3, ops, 0, 0, &nops, "")) != 0)
		return rc;
	if (opts[0].val != NULL &&
	    ctl__time_arg(opts[0].val, now, true, &from) != 0) {
		fprintf(stderr, "inboxctl: --from: a time (YYYY-MM-DD[ HH:MM"
		    "[:SS]], ms) or a duration ago (30m, 1h, 7d)\n");
		return 2;
	}
	if (opts[1].val != NULL &&
	    ctl__time_arg(opts[1].val, now, false, &to) != 0) {
		fprintf(stderr, "inboxctl: --to: a time (YYYY-MM-DD[ HH:MM"
		    "[:SS]], ms)\n");
		return 2;
	}
	if (from < 0 || to <= from) {
		fprintf(stderr, "inboxctl: stats: the period ends before it "
		    "starts\n");
		return 2;
	}
	rc = ctl__stores_read(ctl, &s);
	if (rc == INBOX_ENOTFOUND && s.st[0] == NULL)
		fprintf(stderr, "inboxctl: stats: no store at %s yet\n",
		    ctl->cfg.store_path);
	if (rc != 0)
		goto out;
	if ((rc = store_stats_shards(s.txn, s.n, from, to, &stats)) != 0) {
		fprintf(stderr, "inboxctl: store %s: %s\n", ctl->cfg.store_path,
		    inbox_strerror(rc));
		goto out;
	}
	if (count_all_alerts(ctl, s.n, stats, from, to) != 0) {
		fprintf(stderr, "inboxctl: stats: SLA breaches unknown\n");
		store_stats_alerts_unknown(stats);
	}
	if (opts[2].val != NULL)
		ctl__print_json(stats);
	else
		print_stats(stats);
out:
	ctl__stores_finish(&s);
	cJSON_Delete(stats);
	return rc == 0 ? 0 : 1;
}
