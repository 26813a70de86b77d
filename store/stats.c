/*
 * Supervisors' views: the agents with their load, and who answered how many
 * dialogs how fast over a period (docs/operations.md, "Supervisor stats").
 *
 * The figures come from one read transaction. A conversation touched in
 * [from, to) has updated >= from, so the open and closed feeds (newest
 * `updated` first) are walked until updated < from: the closed feed stops
 * there; the open feed goes on to its end, counting only what is open now
 * per channel (the open feed is the working set, not the history); the
 * snoozed feed is sorted by snooze_until, so it is read whole (also a
 * working set) and filtered by updated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "store/store.h"

#define PAGE 1000                /* conversations per store_feed call */
#define TEAMS_MAX 32             /* teams of one agent */

struct samples {
	int64_t *v;
	size_t n, cap;
};

/* The figures of one agent, team, channel or of everything. */
struct tally {
	char *name;
	char *display;           /* agents: the agent's name */
	char *role;              /* agents: NULL for an assignee not an agent */
	char *teams[TEAMS_MAX];  /* agents */
	size_t nteams;
	uint64_t members;        /* teams: agents in it */
	uint64_t handled, closed, first_responses, created, open;
	uint64_t ratings, rating_sum;
	uint64_t load;           /* agents: open dialogs assigned; teams: sum */
	struct samples frt, res; /* first-response and resolution times */
};

/* Tallies sorted by name (found by binary search). */
struct tallies {
	struct tally *v;
	size_t n, cap;
};

struct stats {
	struct store_txn *const *txns;   /* every shard's store */
	size_t ntxns;
	struct store_txn *txn;           /* the one walked now */
	int64_t from, to;
	struct tallies agents, teams, channels;
	struct tally total;
	bool stop;               /* the walk passed `from` */
	int err;
};

static void
samples_add(struct samples *s, int64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = v;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least pct percent of the
 * samples at or below it (pct 50: the lower median). s must be sorted. */
static int64_t
percentile(const struct samples *s, unsigned pct)
{
	size_t rank = (s->n * pct + 99) / 100;

	return s->v[rank > 0 ? rank - 1 : 0];
}

/* The tally of `name` in ts, added (zeroed) when missing; valid until the
 * next one is added to ts. */
static struct tally *
tally(struct tallies *ts, const char *name)
{
	size_t lo = 0, hi = ts->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ts->v[mid].name, name);

		if (c == 0)
			return &ts->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 16;
		ts->v = xrealloc(ts->v, ts->cap * sizeof(*ts->v));
	}
	memmove(&ts->v[lo + 1], &ts->v[lo], (ts->n - lo) * sizeof(*ts->v));
	memset(&ts->v[lo], 0, sizeof(*ts->v));
	ts->v[lo].name = xstrdup(name);
	ts->n++;
	return &ts->v[lo];
}

static void
tallies_finish(struct tallies *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		struct tally *t = &ts->v[i];

		free(t->name);
		free(t->display);
		free(t->role);
		for (size_t k = 0; k < t->nteams; k++)
			free(t->teams[k]);
		free(t->frt.v);
		free(t->res.v);
	}
	free(ts->v);
}

/* An agent's open dialogs in every shard. */
static int
agent_load(struct store_txn *const *txns, size_t n, const char *login,
    uint32_t *load)
{
	int rc = 0;

	*load = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint32_t l = 0;

		if ((rc = store_agent_load(txns[i], login, &l)) == 0)
			*load += l;
	}
	return rc;
}

static int
agent_one(void *arg, const struct store_agent *a)
{
	struct stats *s = arg;
	struct tally *t = tally(&s->agents, a->login);
	uint32_t load = 0;
	int rc;

	if ((rc = agent_load(s->txns, s->ntxns, a->login, &load)) != 0)
		return rc;
	t->display = xstrdup(a->name ? a->name : a->login);
	t->role = xstrdup(a->role ? a->role : "agent");
	t->load = load;
	/* "support, tier 2": items between commas, trimmed */
	for (const char *p = a->teams; p != NULL && *p != '\0' &&
	    t->nteams < TEAMS_MAX;) {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ",");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > 0)
			t->teams[t->nteams++] = xstrndup(p, len);
		p += strcspn(p, ",");
	}
	for (size_t k = 0; k < t->nteams; k++) {
		struct tally *team = tally(&s->teams, t->teams[k]);

		team->members++;
		team->load += load;
	}
	return 0;
}

static bool
in_period(const struct stats *s, int64_t t)
{
	return t > 0 && t >= s->from && t < s->to;
}

/* Adds one conversation's share of the period to tally t. */
static void
count(struct tally *t, const struct store_conv *c, bool fr, bool cl,
    bool rated)
{
	if (fr) {
		t->first_responses++;
		samples_add(&t->frt, c->first_response_at - c->created);
	}
	if (cl) {
		t->closed++;
		samples_add(&t->res, c->closed_at - c->created);
	}
	if (fr || cl)
		t->handled++;
	if (rated) {
		t->ratings++;
		t->rating_sum += (uint64_t)c->rating;
	}
}

static int
conv_one(void *arg, const struct store_conv *c)
{
	struct stats *s = arg;
	const char *channel = c->channel ? c->channel : "unknown";
	bool fr, cl, rated;

	if (c->state == STORE_STATE_OPEN) {
		tally(&s->channels, channel)->open++;
		s->total.open++;
	}
	if (c->updated < s->from) {
		if (c->state == STORE_STATE_CLOSED)
			s->stop = true;   /* older ones follow */
		return s->stop;
	}
	if (in_period(s, c->created)) {
		tally(&s->channels, channel)->created++;
		s->total.created++;
	}
	fr = in_period(s, c->first_response_at);
	cl = in_period(s, c->closed_at);
	rated = in_period(s, c->rated_at) && c->rating >= 1 && c->rating <= 5;
	if (!fr && !cl && !rated)
		return 0;
	count(&s->total, c, fr, cl, rated);
	if (c->assignee != NULL) {
		struct tally *ag = tally(&s->agents, c->assignee);

		count(ag, c, fr, cl, rated);
		for (size_t k = 0; k < ag->nteams; k++)
			count(tally(&s->teams, ag->teams[k]), c, fr, cl, rated);
	}
	return 0;
}

static void
add_ms_or_null(cJSON *o, const char *name, struct samples *sm, unsigned pct)
{
	if (sm->n == 0)
		cJSON_AddNullToObject(o, name);
	else
		cJSON_AddNumberToObject(o, name, (double)percentile(sm, pct));
}

/* The figures every row has. */
static void
figures_json(cJSON *o, struct tally *t)
{
	if (t->frt.n > 1)
		qsort(t->frt.v, t->frt.n, sizeof(int64_t), cmp_i64);
	if (t->res.n > 1)
		qsort(t->res.v, t->res.n, sizeof(int64_t), cmp_i64);
	cJSON_AddNumberToObject(o, "handled", (double)t->handled);
	cJSON_AddNumberToObject(o, "closed", (double)t->closed);
	cJSON_AddNumberToObject(o, "first_responses",
	    (double)t->first_responses);
	add_ms_or_null(o, "first_response_median_ms", &t->frt, 50);
	add_ms_or_null(o, "first_response_p90_ms", &t->frt, 90);
	add_ms_or_null(o, "resolution_median_ms", &t->res, 50);
	cJSON_AddNumberToObject(o, "sla_breaches", 0);
	if (t->ratings > 0)
		cJSON_AddNumberToObject(o, "rating_avg",
		    (double)t->rating_sum / (double)t->ratings);
	else
		cJSON_AddNullToObject(o, "rating_avg");
	cJSON_AddNumberToObject(o, "ratings", (double)t->ratings);
}

static cJSON *
stats_json(struct stats *s)
{
	cJSON *root = cJSON_CreateObject(), *arr, *o, *teams;

	cJSON_AddNumberToObject(root, "from", (double)s->from);
	cJSON_AddNumberToObject(root, "to", (double)s->to);
	o = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(o, "created", (double)s->total.created);
	cJSON_AddNumberToObject(o, "open", (double)s->total.open);
	figures_json(o, &s->total);
	arr = cJSON_AddArrayToObject(root, "agents");
	for (size_t i = 0; i < s->agents.n; i++) {
		struct tally *t = &s->agents.v[i];

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "login", t->name);
		cJSON_AddStringToObject(o, "name", t->display ? t->display :
		    t->name);
		if (t->role != NULL)
			cJSON_AddStringToObject(o, "role", t->role);
		else
			cJSON_AddNullToObject(o, "role");
		teams = cJSON_AddArrayToObject(o, "teams");
		for (size_t k = 0; k < t->nteams; k++)
			cJSON_AddItemToArray(teams,
			    cJSON_CreateString(t->teams[k]));
		cJSON_AddNumberToObject(o, "open_load", (double)t->load);
		figures_json(o, t);
		cJSON_AddItemToArray(arr, o);
	}
	arr = cJSON_AddArrayToObject(root, "teams");
	for (size_t i = 0; i < s->teams.n; i++) {
		struct tally *t = &s->teams.v[i];

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "team", t->name);
		cJSON_AddNumberToObject(o, "agents", (double)t->members);
		cJSON_AddNumberToObject(o, "open_load", (double)t->load);
		figures_json(o, t);
		cJSON_AddItemToArray(arr, o);
	}
	arr = cJSON_AddArrayToObject(root, "channels");
	for (size_t i = 0; i < s->channels.n; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "channel", s->channels.v[i].name);
		cJSON_AddNumberToObject(o, "created",
		    (double)s->channels.v[i].created);
		cJSON_AddNumberToObject(o, "open", (double)s->channels.v[i].open);
		cJSON_AddItemToArray(arr, o);
	}
	return root;
}

static int
walk_state(struct stats *s, int state)
{
	struct store_feed_q q = { .state = state, .priority = -1,
	    .limit = PAGE, .scan_max = PAGE };
	bool more = true;
	int rc = 0;

	s->stop = false;
	while (more && !s->stop && rc == 0)
		rc = store_feed(s->txn, &q, conv_one, s, &more, &q.after_key,
		    &q.after_id);
	return rc;
}

int
store_stats(struct store_txn *txn, int64_t from, int64_t to, void **out)
{
	return store_stats_shards(&txn, 1, from, to, out);
}

int
store_stats_shards(struct store_txn *const *txns, size_t n, int64_t from,
    int64_t to, void **out)
{
	static const int states[] = { STORE_STATE_OPEN, STORE_STATE_SNOOZED,
		STORE_STATE_CLOSED };
	struct stats s;
	int rc;

	*out = NULL;
	if (from < 0 || to <= from || n == 0)
		return INBOX_EINVAL;
	memset(&s, 0, sizeof(s));
	s.txns = txns;
	s.ntxns = n;
	s.from = from;
	s.to = to;
	/* agents are global: every shard keeps them; the first is read */
	rc = store_agents(txns[0], agent_one, &s);
	for (size_t k = 0; rc == 0 && k < n; k++) {
		s.txn = txns[k];
		for (size_t i = 0; rc == 0 &&
		    i < sizeof(states) / sizeof(states[0]); i++)
			rc = walk_state(&s, states[i]);
	}
	if (rc == 0)
		*out = stats_json(&s);
	tallies_finish(&s.agents);
	tallies_finish(&s.teams);
	tallies_finish(&s.channels);
	free(s.total.frt.v);
	free(s.total.res.v);
	return rc;
}

static void
bump(cJSON *row)
{
	cJSON *n = cJSON_GetObjectItemCaseSensitive(row, "sla_breaches");

	if (cJSON_IsNumber(n))
		cJSON_SetNumberValue(n, n->valuedouble + 1);
}

/* The row of array `arr` whose `key` is `name`, or NULL. */
static cJSON *
row(const cJSON *root, const char *arr, const char *key, const char *name)
{
	cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, arr)) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, key);

		if (cJSON_IsString(k) && strcmp(k->valuestring, name) == 0)
			return it;
	}
	return NULL;
}

bool
store_stats_alert(void *stats, const char *event, const char *data)
{
	cJSON *root = stats, *d, *agent, *team;
	const cJSON *at, *who;
	double from, to;
	bool counted = false;

	if (event == NULL || data == NULL || strcmp(event, "sla.breached") != 0)
		return false;
	from = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(root,
	    "from"));
	to = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(root, "to"));
	if ((d = cJSON_Parse(data)) == NULL)
		return false;
	at = cJSON_GetObjectItemCaseSensitive(d, "at");
	who = cJSON_GetObjectItemCaseSensitive(d, "assignee");
	if (!cJSON_IsNumber(at) || at->valuedouble < from ||
	    at->valuedouble >= to)
		goto out;
	counted = true;
	bump(cJSON_GetObjectItemCaseSensitive(root, "totals"));
	if (!cJSON_IsString(who) ||
	    (agent = row(root, "agents", "login", who->valuestring)) == NULL)
		goto out;
	bump(agent);
	cJSON_ArrayForEach(team, cJSON_GetObjectItemCaseSensitive(agent,
	    "teams")) {
		if (cJSON_IsString(team))
			bump(row(root, "teams", "team", team->valuestring));
	}
out:
	cJSON_Delete(d);
	return counted;
}

static void
unknown(cJSON *row)
{
	cJSON_ReplaceItemInObjectCaseSensitive(row, "sla_breaches",
	    cJSON_CreateNull());
}

void
store_stats_alerts_unknown(void *stats)
{
	cJSON *root = stats, *it;

	unknown(cJSON_GetObjectItemCaseSensitive(root, "totals"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "agents"))
		unknown(it);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "teams"))
		unknown(it);
}

struct agents_json {
	struct store_txn *const *txns;
	size_t ntxns;
	cJSON *arr;
	int64_t now, lease_ms;
	int default_capacity;
};

static int
agent_json_one(void *arg, const struct store_agent *a)
{
	struct agents_json *aj = arg;
	uint32_t load = 0;
	cJSON *o;
	int rc;

	if ((rc = agent_load(aj->txns, aj->ntxns, a->login, &load)) != 0)
		return rc;
	o = store_agent_json(a, load, aj->now, aj->lease_ms);
	cJSON_AddNumberToObject(o, "effective_capacity", a->capacity >= 0 ?
	    a->capacity : aj->default_capacity);
	cJSON_AddItemToArray(aj->arr, o);
	return 0;
}

int
store_agents_json(struct store_txn *txn, int64_t now, int64_t lease_ms,
    int default_capacity, void **out)
{
	return store_agents_json_shards(&txn, 1, now, lease_ms,
	    default_capacity, out);
}

int
store_agents_json_shards(struct store_txn *const *txns, size_t n,
    int64_t now, int64_t lease_ms, int default_capacity, void **out)
{
	struct agents_json aj = { txns, n, cJSON_CreateArray(), now, lease_ms,
	    default_capacity };
	int rc = store_agents(txns[0], agent_json_one, &aj);

	if (rc != 0) {
		cJSON_Delete(aj.arr);
		aj.arr = NULL;
	}
	*out = aj.arr;
	return rc;
}
