/*
 * The configuration parser: text to struct, driven by one table (name, type,
 * bounds, default) that also drives the defaults and the dump. Errors name
 * file, line and key.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "inbox/dialog.h"
#include "inbox/inbox.h"
#include "inbox/route.h"
#include "inbox/rules.h"

enum conf_type { CT_STR, CT_INT, CT_LEVEL, CT_CHANNEL, CT_DURATION, CT_HOURS,
	CT_PRIOS, CT_BOOL, CT_WHEN };

struct conf_key {
	const char *section;     /* NULL: a [connector <id>] key */
	const char *name;
	enum conf_type type;
	size_t off;
	long min, max;
	const char *def;         /* default as text; NULL: unset */
	const char *choices;     /* CT_STR: the words allowed, "a|b"; NULL: any */
};

#define G(sec, key, type, field, min, max, def) \
	{ sec, key, type, offsetof(struct inbox_config, field), min, max, def, \
	NULL }
#define GW(sec, key, field, def, choices) \
	{ sec, key, CT_STR, offsetof(struct inbox_config, field), 1, 64, def, \
	choices }
#define C(key, type, field) \
	{ NULL, key, type, offsetof(struct inbox_connector_conf, field), 0, 0, \
	NULL, NULL }
#define CB(key, type, field, min, max, def) \
	{ NULL, key, type, offsetof(struct inbox_connector_conf, field), min, \
	max, def, NULL }

static const struct conf_key global_keys[] = {
	G("log", "level", CT_LEVEL, log_level, 0, 0, "info"),
	GW("log", "format", log_format, "text", "text|json"),
	G("redis", "host", CT_STR, redis_host, 1, 255, "127.0.0.1"),
	G("redis", "port", CT_INT, redis_port, 1, 65535, "6379"),
	G("redis", "unix", CT_STR, redis_unix, 1, 107, NULL),
	G("redis", "prefix", CT_STR, redis_prefix, 1, 64, "inbox"),
	G("redis", "timeout_ms", CT_INT, redis_timeout_ms, 10, 600000, "2000"),
	G("redis", "sentinels", CT_STR, redis_sentinels, 3, 4096, NULL),
	G("redis", "cluster", CT_STR, redis_cluster, 3, 4096, NULL),
	G("redis", "master_name", CT_STR, redis_master_name, 1, 255, "inbox"),
	G("redis", "min_replicas", CT_INT, redis_min_replicas, 0, 64, "0"),
	G("redis", "shards", CT_INT, redis_shards, 1, 256, "1"),
	G("store", "path", CT_STR, store_path, 1, 4096, "/var/lib/inboxd/db"),
	G("store", "map_size_mb", CT_INT, store_map_size_mb, 1, 1048576, "4096"),
	G("store", "blob_path", CT_STR, blob_path, 1, 4096,
	    "/var/lib/inboxd/blobs"),
	G("store", "max_attachment", CT_INT, max_attachment, 1024, 1 << 30,
	    "26214400"),
	G("router", "consumer", CT_STR, router_consumer, 1, 64, "router-1"),
	G("router", "batch", CT_INT, router_batch, 1, 10000, "256"),
	G("router", "events_maxlen", CT_INT, router_events_maxlen, 1000,
	    1000000000, "1000000"),
	G("router", "claim_idle_ms", CT_INT, router_claim_idle_ms, 0,
	    86400000, "0"),
	G("router", "lease_ms", CT_INT, router_lease_ms, 2000, 600000, "5000"),
	G("router", "metrics", CT_STR, router_metrics, 3, 300, NULL),
	G("router", "auto_reply_interval", CT_DURATION,
	    router_auto_reply_interval_ms, 0, 0, "1d"),
	G("router", "survey_template", CT_STR, router_survey_template, 1, 64,
	    NULL),
	G("router", "survey_window", CT_DURATION, router_survey_window_ms, 0, 0,
	    "7d"),
	G("router", "auto_assign", CT_INT, router_auto_assign, 0, 1, "1"),
	G("router", "default_capacity", CT_INT, router_default_capacity, 0,
	    100000, "10"),
	G("router", "presence_lease_ms", CT_INT, router_presence_lease_ms,
	    1000, 86400000, "90000"),
	G("router", "sla_warning_pct", CT_INT, router_sla_warning_pct, 1, 100,
	    "80"),
	G("webhooks", "listen", CT_STR, webhooks_listen, 1, 255, "127.0.0.1"),
	G("webhooks", "port", CT_INT, webhooks_port, 1, 65535, "8081"),
	G("webhooks", "max_body", CT_INT, webhooks_max_body, 256,
	    64 * 1024 * 1024, "1048576"),
	G("gateway", "listen", CT_STR, gateway_listen, 1, 255, "127.0.0.1"),
	G("gateway", "port", CT_INT, gateway_port, 1, 65535, "8080"),
	G("gateway", "web_root", CT_STR, gateway_web_root, 1, 4096,
	    "/usr/share/inboxd/web"),
	G("gateway", "secret_file", CT_STR, gateway_secret_file, 1, 4096,
	    "/var/lib/inboxd/gateway.secret"),
	G("gateway", "token_ttl", CT_INT, gateway_token_ttl, 60, 31536000,
	    "43200"),
	G("gateway", "ring_size", CT_INT, gateway_ring_size, 16, 1048576,
	    "4096"),
	G("gateway", "origins", CT_STR, gateway_origins, 1, 4096, NULL),
	GW("gateway", "visibility", gateway_visibility, "team", "team|all"),
	G("gateway", "away_after", CT_DURATION, gateway_away_ms, 0, 0, "10m"),
	G("gateway", "max_sockets_per_agent", CT_INT, gateway_max_agent_socks,
	    0, 1000000, "32"),
	G("gateway", "tls_cert", CT_STR, gateway_tls_cert, 1, 4096, NULL),
	G("gateway", "tls_key", CT_STR, gateway_tls_key, 1, 4096, NULL),
	G("contacts", "fields", CT_STR, contact_fields, 1, 4096, NULL),
	G("business_hours", "week", CT_STR, business_week, 1, 1024, NULL),
	G("business_hours", "utc_offset", CT_STR, business_utc_offset, 1, 16,
	    NULL),
};

#define S(key, type, field) \
	{ NULL, key, type, offsetof(struct inbox_sla_policy, field), 0, 0, \
	NULL, NULL }
static const struct conf_key sla_keys[] = {
	S("first_response", CT_DURATION, first_response_ms),
	S("next_response", CT_DURATION, next_response_ms),
	S("resolution", CT_DURATION, resolution_ms),
	S("hours", CT_HOURS, business),
	S("priority", CT_PRIOS, priorities),
	S("tags", CT_STR, tags),
};
#define NSLA (sizeof(sla_keys) / sizeof(sla_keys[0]))

#define R(key, type, field) \
	{ NULL, key, type, offsetof(struct inbox_rule, field), 0, 0, NULL, \
	NULL }
static const struct conf_key rule_keys[] = {
	R("channel", CT_STR, channels),
	R("connector", CT_STR, connectors),
	R("contact_field", CT_STR, contact_field),
	R("keyword", CT_STR, keywords),
	R("regex", CT_STR, regex),
	R("when", CT_WHEN, when),
	R("first_contact", CT_BOOL, first_contact),
	R("tags", CT_STR, tags),
	R("priority", CT_STR, priority),
	R("nature", CT_STR, nature),
	R("assign", CT_STR, assign),
	R("auto_reply", CT_STR, auto_reply),
	R("stop", CT_BOOL, stop),
};
#define NRULE (sizeof(rule_keys) / sizeof(rule_keys[0]))

static const struct conf_key connector_keys[] = {
	C("channel", CT_CHANNEL, channel),
	CB("secret", CT_STR, secret, 1, 1024, NULL),
	CB("team", CT_STR, team, 1, 64, NULL),
	CB("enabled", CT_BOOL, enabled, 0, 0, "yes"),
	CB("token", CT_STR, token, 1, 4096, NULL),
	CB("token_file", CT_STR, token_file, 1, 4096, NULL),
	CB("app_secret", CT_STR, app_secret, 1, 1024, NULL),
	CB("verify_token", CT_STR, verify_token, 1, 1024, NULL),
	CB("confirmation", CT_STR, confirmation, 1, 1024, NULL),
	CB("group_id", CT_STR, group_id, 1, 64, NULL),
	CB("phone_number_id", CT_STR, phone_number_id, 1, 64, NULL),
	CB("api_base", CT_STR, api_base, 1, 1024, NULL),
	CB("send_attempts", CT_INT, send_attempts, 1, 100, "5"),
	CB("send_concurrency", CT_INT, send_concurrency, 1, 1000, "8"),
	CB("imap_host", CT_STR, imap_host, 1, 255, NULL),
	CB("imap_port", CT_INT, imap_port, 0, 65535, "0"),
	CB("imap_tls", CT_STR, imap_tls, 1, 16, "imaps"),
	CB("imap_verify", CT_BOOL, imap_verify, 0, 0, "yes"),
	CB("imap_user", CT_STR, imap_user, 1, 320, NULL),
	CB("imap_password", CT_STR, imap_password, 1, 1024, NULL),
	CB("imap_password_file", CT_STR, imap_password_file, 1, 4096, NULL),
	CB("imap_auth", CT_STR, imap_auth, 1, 16, "login"),
	CB("folders", CT_STR, folders, 1, 4096, "INBOX"),
	CB("initial_sync", CT_STR, initial_sync, 1, 16, "new"),
	CB("poll_interval", CT_DURATION, poll_interval_ms, 0, 0, "60s"),
	CB("idle_interval", CT_DURATION, idle_interval_ms, 0, 0, "25m"),
	CB("max_message_size", CT_INT, max_message_size, 1024, 1 << 30,
	    "26214400"),
	CB("state_path", CT_STR, state_path, 1, 4096, NULL),
	CB("smtp_host", CT_STR, smtp_host, 1, 255, NULL),
	CB("smtp_port", CT_INT, smtp_port, 0, 65535, "0"),
	CB("smtp_tls", CT_STR, smtp_tls, 1, 16, "starttls"),
	CB("smtp_verify", CT_BOOL, smtp_verify, 0, 0, "yes"),
	CB("smtp_user", CT_STR, smtp_user, 1, 320, NULL),
	CB("smtp_password", CT_STR, smtp_password, 1, 1024, NULL),
	CB("smtp_password_file", CT_STR, smtp_password_file, 1, 4096, NULL),
	CB("from", CT_STR, from, 3, 512, NULL),
	CB("metrics", CT_STR, metrics, 3, 300, NULL),
};

#define NGLOBAL (sizeof(global_keys) / sizeof(global_keys[0]))
#define NCONN (sizeof(connector_keys) / sizeof(connector_keys[0]))

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int
inbox_log_level_parse(const char *name, int *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

/* Whether word is one of the "a|b|c" choices. */
static bool
is_choice(const char *choices, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = choices; *p != '\0'; ) {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len + (bar != NULL);
	}
	return false;
}

/* Stores the text value of key k into base. Returns 0 or INBOX_EINVAL with a
 * message (without the file:line prefix) in msg. */
static int
set_value(const struct conf_key *k, void *base, const char *val, char *msg,
    size_t msglen)
{
	char *p = (char *)base + k->off;
	size_t n = strlen(val);

	switch (k->type) {
	case CT_STR: {
		char **sp = (char **)(void *)p;
		if ((long)n < k->min || (k->max && (long)n > k->max)) {
			snprintf(msg, msglen, "length %zu out of bounds (%ld to %ld)",
			    n, k->min, k->max);
			return INBOX_EINVAL;
		}
		if (k->choices != NULL && !is_choice(k->choices, val)) {
			snprintf(msg, msglen, "'%s' is not one of %s", val,
			    k->choices);
			return INBOX_EINVAL;
		}
		free(*sp);
		*sp = xstrdup(val);
		return 0;
	}
	case CT_INT: {
		char *end;
		long v;

		errno = 0;
		v = strtol(val, &end, 10);
		if (n == 0 || *end != '\0' || errno == ERANGE) {
			snprintf(msg, msglen, "'%s' is not an integer", val);
			return INBOX_EINVAL;
		}
		if (v < k->min || v > k->max) {
			snprintf(msg, msglen, "%ld out of bounds (%ld to %ld)", v,
			    k->min, k->max);
			return INBOX_EINVAL;
		}
		*(int *)(void *)p = (int)v;
		return 0;
	}
	case CT_LEVEL:
		if (inbox_log_level_parse(val, (int *)(void *)p) != 0) {
			snprintf(msg, msglen,
			    "unknown level '%s' (error, warn, info, debug)", val);
			return INBOX_EINVAL;
		}
		return 0;
	case CT_CHANNEL: {
		struct inbox_connector_conf *cc = base;
		if (inbox_channel_parse(val, &cc->channel) != 0) {
			snprintf(msg, msglen, "unknown channel '%s'", val);
			return INBOX_EINVAL;
		}
		cc->channel_set = true;
		return 0;
	}
	case CT_DURATION:
		if (inbox_duration_parse(val, (int64_t *)(void *)p) != 0) {
			snprintf(msg, msglen, "'%s' is not a duration (a number "
			    "and s, m, h or d, e.g. 30m, 4h, 2d)", val);
			return INBOX_EINVAL;
		}
		return 0;
	case CT_BOOL:
		if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0) {
			snprintf(msg, msglen, "'%s' is not yes or no", val);
			return INBOX_EINVAL;
		}
		*(bool *)(void *)p = strcmp(val, "yes") == 0;
		return 0;
	case CT_WHEN:
		if (strcmp(val, "any") == 0)
			*(int *)(void *)p = INBOX_RULE_ANY_TIME;
		else if (strcmp(val, "business") == 0)
			*(int *)(void *)p = INBOX_RULE_BUSINESS;
		else if (strcmp(val, "outside_business") == 0)
			*(int *)(void *)p = INBOX_RULE_OUTSIDE_BUSINESS;
		else {
			snprintf(msg, msglen, "'%s' is not any, business or "
			    "outside_business", val);
			return INBOX_EINVAL;
		}
		return 0;
	case CT_HOURS:
		if (strcmp(val, "business") != 0 && strcmp(val, "calendar") != 0) {
			snprintf(msg, msglen, "'%s' is not business or calendar",
			    val);
			return INBOX_EINVAL;
		}
		*(bool *)(void *)p = strcmp(val, "business") == 0;
		return 0;
	case CT_PRIOS: {
		char **sp = (char **)(void *)p;
		char *list = xstrdup(val), *save = NULL;
		int prio;

		for (char *it = strtok_r(list, ", ", &save); it != NULL;
		    it = strtok_r(NULL, ", ", &save)) {
			if (inbox_priority_parse(it, &prio) != 0) {
				snprintf(msg, msglen, "unknown priority '%s' (low, "
				    "normal, high, urgent)", it);
				free(list);
				return INBOX_EINVAL;
			}
		}
		free(list);
		free(*sp);
		*sp = xstrdup(val);
		return 0;
	}
	}
	snprintf(msg, msglen, "bad key type");
	return INBOX_EINVAL;
}

void
inbox_config_init(struct inbox_config *cfg)
{
	char msg[128];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NGLOBAL; i++) {
		if (global_keys[i].def != NULL &&
		    set_value(&global_keys[i], cfg, global_keys[i].def, msg,
		    sizeof(msg)) != 0)
			fatalx("config default of %s.%s: %s",
			    global_keys[i].section, global_keys[i].name, msg);
	}
	cfg->shard = -1;
}

void
inbox_config_finish(struct inbox_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NGLOBAL; i++) {
		if (global_keys[i].type == CT_STR)
			free(*(char **)(void *)((char *)cfg + global_keys[i].off));
	}
	for (size_t i = 0; i < cfg->nconnectors; i++) {
		free(cfg->connectors[i].id);
		for (size_t k = 0; k < NCONN; k++)
			if (connector_keys[k].type == CT_STR)
				free(*(char **)(void *)((char *)&cfg->connectors[i] +
				    connector_keys[k].off));
	}
	free(cfg->connectors);
	for (size_t i = 0; i < cfg->nsla; i++) {
		free(cfg->sla[i].name);
		free(cfg->sla[i].priorities);
		free(cfg->sla[i].tags);
	}
	free(cfg->sla);
	for (size_t i = 0; i < cfg->nrules; i++)
		inbox_rule_finish(&cfg->rules[i]);
	free(cfg->rules);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

const struct inbox_connector_conf *
inbox_config_connector(const struct inbox_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->nconnectors; i++) {
		if (strcmp(cfg->connectors[i].id, id) == 0)
			return &cfg->connectors[i];
	}
	return NULL;
}

static char *
trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		end--;
	*end = '\0';
	return s;
}

/* Cuts a comment: '#' at the start or after whitespace, outside quotes. */
static void
cut_comment(char *s)
{
	bool quoted = false;

	for (char *p = s; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted &&
		    (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

struct parse_state {
	struct inbox_config *cfg;
	const char *file;
	struct inbox_err *err;
	int section;             /* index into sections[], -1 none, -2 connector,
	                          * -3 sla, -4 rule */
	int section_line;
	int cluster_line;        /* where [redis] cluster was set */
	bool seen_global[NGLOBAL];
	bool seen_conn[NCONN];
	bool seen_sla[NSLA];
	bool seen_rule[NRULE];
};

static const char *const sections[] = {
	"log", "redis", "store", "router", "webhooks", "gateway", "contacts",
	"business_hours",
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int fail(struct parse_state *st, int line, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(struct parse_state *st, int line, const char *key, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (key != NULL)
		return inbox_err_set(st->err, INBOX_EINVAL, key, line,
		    "%s:%d: key '%s': %s", st->file, line, key, what);
	return inbox_err_set(st->err, INBOX_EINVAL, "", line, "%s:%d: %s",
	    st->file, line, what);
}

/* Checks the connector section just ended. */
static int
close_section(struct parse_state *st)
{
	struct inbox_connector_conf *cc;

	if (st->section == -4) {
		struct inbox_rule *r = &st->cfg->rules[st->cfg->nrules - 1];
		struct inbox_err e;

		memset(&e, 0, sizeof(e));
		if (inbox_rule_prepare(r, &e) != 0)
			return fail(st, st->section_line, e.field[0] ? e.field :
			    NULL, "rule '%s': %s", r->name, e.msg);
		return 0;
	}
	if (st->section == -3) {
		const struct inbox_sla_policy *p =
		    &st->cfg->sla[st->cfg->nsla - 1];

		if (p->first_response_ms == 0 && p->next_response_ms == 0 &&
		    p->resolution_ms == 0)
			return fail(st, st->section_line, "first_response",
			    "sla '%s' sets none of first_response, "
			    "next_response, resolution", p->name);
		return 0;
	}
	if (st->section != -2)
		return 0;
	cc = &st->cfg->connectors[st->cfg->nconnectors - 1];
	if (!cc->channel_set)
		return fail(st, st->section_line, "channel",
		    "connector '%s' has no channel", cc->id);
	return 0;
}

static int
open_section(struct parse_state *st, int line, char *name)
{
	struct inbox_connector_conf *cc;
	int rc;

	if ((rc = close_section(st)) != 0)
		return rc;
	st->section_line = line;
	if (strncmp(name, "connector", 9) == 0 &&
	    (name[9] == ' ' || name[9] == '\t' || name[9] == '\0')) {
		char *id = trim(name + 9, name + strlen(name));

		if (*id == '\0')
			return fail(st, line, NULL,
			    "section [connector] needs an id: [connector <id>]");
		if (!inbox_connector_id_valid(id))
			return fail(st, line, NULL,
			    "invalid connector id '%s' (1-64 of A-Za-z0-9._-)",
			    id);
		if (inbox_config_connector(st->cfg, id) != NULL)
			return fail(st, line, NULL,
			    "connector '%s' is defined twice", id);
		st->cfg->connectors = xrealloc(st->cfg->connectors,
		    (st->cfg->nconnectors + 1) * sizeof(*cc));
		cc = &st->cfg->connectors[st->cfg->nconnectors++];
		memset(cc, 0, sizeof(*cc));
		cc->id = xstrdup(id);
		for (size_t i = 0; i < NCONN; i++) {
			char msg[128];

			if (connector_keys[i].def != NULL &&
			    set_value(&connector_keys[i], cc,
			    connector_keys[i].def, msg, sizeof(msg)) != 0)
				fatalx("config default of connector %s: %s",
				    connector_keys[i].name, msg);
		}
		memset(st->seen_conn, 0, sizeof(st->seen_conn));
		st->section = -2;
		return 0;
	}
	if (strncmp(name, "rule", 4) == 0 &&
	    (name[4] == ' ' || name[4] == '\t' || name[4] == '\0')) {
		char *id = trim(name + 4, name + strlen(name));
		struct inbox_rule *r;

		if (!inbox_connector_id_valid(id))
			return fail(st, line, NULL, "section [rule <name>] needs "
			    "a name of 1-64 of A-Za-z0-9._-");
		for (size_t i = 0; i < st->cfg->nrules; i++)
			if (strcmp(st->cfg->rules[i].name, id) == 0)
				return fail(st, line, NULL, "rule '%s' is "
				    "defined twice", id);
		st->cfg->rules = xrealloc(st->cfg->rules,
		    (st->cfg->nrules + 1) * sizeof(*r));
		r = &st->cfg->rules[st->cfg->nrules++];
		memset(r, 0, sizeof(*r));
		r->name = xstrdup(id);
		r->line = line;
		memset(st->seen_rule, 0, sizeof(st->seen_rule));
		st->section = -4;
		return 0;
	}
	if (strncmp(name, "sla", 3) == 0 &&
	    (name[3] == ' ' || name[3] == '\t' || name[3] == '\0')) {
		char *id = trim(name + 3, name + strlen(name));
		struct inbox_sla_policy *p;

		if (!inbox_connector_id_valid(id))
			return fail(st, line, NULL, "section [sla <name>] needs "
			    "a name of 1-64 of A-Za-z0-9._-");
		for (size_t i = 0; i < st->cfg->nsla; i++)
			if (strcmp(st->cfg->sla[i].name, id) == 0)
				return fail(st, line, NULL, "sla '%s' is defined "
				    "twice", id);
		st->cfg->sla = xrealloc(st->cfg->sla,
		    (st->cfg->nsla + 1) * sizeof(*p));
		p = &st->cfg->sla[st->cfg->nsla++];
		memset(p, 0, sizeof(*p));
		p->name = xstrdup(id);
		p->line = line;
		memset(st->seen_sla, 0, sizeof(st->seen_sla));
		st->section = -3;
		return 0;
	}
	for (size_t i = 0; i < NSECTIONS; i++) {
		if (strcmp(name, sections[i]) == 0) {
			st->section = (int)i;
			return 0;
		}
	}
	return fail(st, line, NULL, "unknown section [%s]", name);
}

static int
parse_value(struct parse_state *st, int line, const char *key, char *v)
{
	if (*v == '"') {
		char *close = strchr(v + 1, '"');
		char *rest;

		if (close == NULL)
			return fail(st, line, key, "unterminated quote");
		rest = close + 1;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		if (*rest != '\0')
			return fail(st, line, key,
			    "unexpected text after the closing quote: '%s'",
			    rest);
		memmove(v, v + 1, (size_t)(close - v - 1));
		v[close - v - 1] = '\0';
	}
	return 0;
}

static int
parse_line(struct parse_state *st, int line, char *s)
{
	char msg[256];
	char *eq, *key, *val;
	int rc;

	cut_comment(s);
	s = trim(s, s + strlen(s));
	if (*s == '\0')
		return 0;
	if (*s == '[') {
		char *close = strchr(s, ']');

		if (close == NULL || close[1] != '\0')
			return fail(st, line, NULL,
			    "malformed section header '%s'", s);
		return open_section(st, line, trim(s + 1, close));
	}
	eq = strchr(s, '=');
	if (eq == NULL)
		return fail(st, line, NULL, "expected 'key = value', got '%s'", s);
	key = trim(s, eq);
	val = trim(eq + 1, eq + 1 + strlen(eq + 1));
	if (*key == '\0')
		return fail(st, line, NULL, "missing key before '='");
	if ((rc = parse_value(st, line, key, val)) != 0)
		return rc;
	if (st->section == -1)
		return fail(st, line, key, "outside of any [section]");

	if (st->section == -2) {
		struct inbox_connector_conf *cc =
		    &st->cfg->connectors[st->cfg->nconnectors - 1];
		for (size_t i = 0; i < NCONN; i++) {
			if (strcmp(connector_keys[i].name, key) != 0)
				continue;
			if (st->seen_conn[i])
				return fail(st, line, key, "set twice");
			st->seen_conn[i] = true;
			if (set_value(&connector_keys[i], cc, val, msg,
			    sizeof(msg)) != 0)
				return fail(st, line, key, "%s", msg);
			return 0;
		}
		return fail(st, line, key, "unknown key in [connector %s]",
		    cc->id);
	}
	if (st->section == -4) {
		struct inbox_rule *r = &st->cfg->rules[st->cfg->nrules - 1];

		for (size_t i = 0; i < NRULE; i++) {
			if (strcmp(rule_keys[i].name, key) != 0)
				continue;
			if (st->seen_rule[i])
				return fail(st, line, key, "set twice");
			st->seen_rule[i] = true;
			if (set_value(&rule_keys[i], r, val, msg,
			    sizeof(msg)) != 0)
				return fail(st, line, key, "%s", msg);
			return 0;
		}
		return fail(st, line, key, "unknown key in [rule %s]", r->name);
	}
	if (st->section == -3) {
		struct inbox_sla_policy *p = &st->cfg->sla[st->cfg->nsla - 1];

		for (size_t i = 0; i < NSLA; i++) {
			if (strcmp(sla_keys[i].name, key) != 0)
				continue;
			if (st->seen_sla[i])
				return fail(st, line, key, "set twice");
			st->seen_sla[i] = true;
			if (set_value(&sla_keys[i], p, val, msg,
			    sizeof(msg)) != 0)
				return fail(st, line, key, "%s", msg);
			return 0;
		}
		return fail(st, line, key, "unknown key in [sla %s]", p->name);
	}
	if (strcmp(sections[st->section], "redis") == 0 &&
	    (strcmp(key, "sentinels") == 0 || strcmp(key, "cluster") == 0)) {
		char host[256];
		int port, got;

		if (strcmp(key, "cluster") == 0)
			st->cluster_line = line;

		for (size_t i = 0; (got = inbox_hostport_nth(val, i, host,
		    sizeof(host), &port)) != 0; i++)
			if (got < 0)
				return fail(st, line, key, "item %zu of '%s' is "
				    "not host:port", i + 1, val);
		if (inbox_hostport_nth(val, 0, host, sizeof(host), &port) == 0)
			return fail(st, line, key, "no host:port in '%s'", val);
	}
	if (strcmp(sections[st->section], "business_hours") == 0) {
		struct inbox_calendar cal;
		struct inbox_err e;

		if (strcmp(key, "week") == 0 &&
		    inbox_calendar_parse(val, NULL, &cal, &e) != 0)
			return fail(st, line, key, "%s", e.msg);
		if (strcmp(key, "utc_offset") == 0 &&
		    inbox_calendar_parse("mon 00:00-01:00", val, &cal, &e) != 0)
			return fail(st, line, key, "%s", e.msg);
	}
	for (size_t i = 0; i < NGLOBAL; i++) {
		if (strcmp(global_keys[i].section, sections[st->section]) != 0 ||
		    strcmp(global_keys[i].name, key) != 0)
			continue;
		if (st->seen_global[i])
			return fail(st, line, key, "set twice");
		st->seen_global[i] = true;
		if (set_value(&global_keys[i], st->cfg, val, msg,
		    sizeof(msg)) != 0)
			return fail(st, line, key, "%s", msg);
		return 0;
	}
	return fail(st, line, key, "unknown key in [%s]",
	    sections[st->section]);
}

int
inbox_config_parse(struct inbox_config *cfg, const char *file,
    const char *text, size_t len, struct inbox_err *err)
{
	struct parse_state st;
	size_t pos = 0;
	int line = 0, rc = 0;

	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.file = file;
	st.err = err;
	st.section = -1;
	free(cfg->file);
	cfg->file = xstrdup(file);

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *buf;

		line++;
		if (memchr(text + pos, '\0', n) != NULL)
			return fail(&st, line, NULL, "NUL byte in line");
		if (inbox_utf8_invalid_at(text + pos, n) >= 0)
			return fail(&st, line, NULL, "invalid UTF-8");
		if (n > 8192)
			return fail(&st, line, NULL,
			    "line too long (at most 8192 bytes)");
		buf = xstrndup(text + pos, n);
		rc = parse_line(&st, line, buf);
		free(buf);
		if (rc != 0)
			return rc;
		pos += n + (nl ? 1 : 0);
	}
	if ((rc = close_section(&st)) != 0)
		return rc;
	if (cfg->redis_cluster != NULL && cfg->redis_sentinels != NULL)
		return fail(&st, st.cluster_line, "cluster", "[redis] sets both "
		    "cluster and sentinels: a Redis Cluster fails over by "
		    "itself, give one");
	if (cfg->redis_cluster != NULL && !inbox_key_tagged(cfg->redis_prefix))
		return fail(&st, st.cluster_line, "prefix", "with [redis] "
		    "cluster every key must hash to one slot: put a hash tag "
		    "in the prefix, e.g. prefix = {%s}", cfg->redis_prefix);
	for (size_t i = 0; i < cfg->nsla; i++)
		if (cfg->sla[i].business && cfg->business_week == NULL)
			return fail(&st, cfg->sla[i].line, "hours", "sla '%s' "
			    "counts business hours but [business_hours] sets no "
			    "week", cfg->sla[i].name);
	return 0;
}

void
inbox_config_dump(const struct inbox_config *cfg, FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < NGLOBAL; i++) {
		const struct conf_key *k = &global_keys[i];
		const char *p = (const char *)cfg + k->off;

		if (section == NULL || strcmp(section, k->section) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		switch (k->type) {
		case CT_STR: {
			const char *s = *(char *const *)(const void *)p;
			if (s == NULL)
				fprintf(out, "# %s = (unset)\n", k->name);
			else
				fprintf(out, "%s = \"%s\"\n", k->name, s);
			break;
		}
		case CT_INT:
			fprintf(out, "%s = %d\n", k->name,
			    *(const int *)(const void *)p);
			break;
		case CT_LEVEL:
			fprintf(out, "%s = %s\n", k->name,
			    level_names[*(const int *)(const void *)p]);
			break;
		case CT_DURATION:
			fprintf(out, "%s = %llds\n", k->name, (long long)(*(
			    const int64_t *)(const void *)p / 1000));
			break;
		case CT_CHANNEL:
		case CT_HOURS:
		case CT_PRIOS:
		case CT_BOOL:
		case CT_WHEN:
			break;
		}
	}
	for (size_t i = 0; i < cfg->nconnectors; i++) {
		const struct inbox_connector_conf *cc = &cfg->connectors[i];

		fprintf(out, "\n[connector %s]\nchannel = %s\n", cc->id,
		    inbox_channel_name(cc->channel));
		if (cc->secret != NULL)
			fprintf(out, "secret = (set)\n");
	}
	for (size_t i = 0; i < cfg->nsla; i++) {
		const struct inbox_sla_policy *p = &cfg->sla[i];

		fprintf(out, "\n[sla %s]\n", p->name);
		if (p->first_response_ms)
			fprintf(out, "first_response = %llds\n",
			    (long long)(p->first_response_ms / 1000));
		if (p->next_response_ms)
			fprintf(out, "next_response = %llds\n",
			    (long long)(p->next_response_ms / 1000));
		if (p->resolution_ms)
			fprintf(out, "resolution = %llds\n",
			    (long long)(p->resolution_ms / 1000));
		fprintf(out, "hours = %s\n", p->business ? "business" :
		    "calendar");
		if (p->priorities)
			fprintf(out, "priority = %s\n", p->priorities);
		if (p->tags)
			fprintf(out, "tags = %s\n", p->tags);
	}
	for (size_t i = 0; i < cfg->nrules; i++)
		fprintf(out, "\n# [rule %s] (line %d)\n", cfg->rules[i].name,
		    cfg->rules[i].line);
}

bool
inbox_conv_visible(const struct inbox_config *cfg, const char *connector,
    const char *assignee, const char *login, const char *role,
    const char *teams)
{
	const struct inbox_connector_conf *cc;

	if (role != NULL && (strcmp(role, "supervisor") == 0 ||
	    strcmp(role, "admin") == 0))
		return true;
	if (cfg->gateway_visibility == NULL ||
	    strcmp(cfg->gateway_visibility, "all") == 0)
		return true;
	if (assignee != NULL && login != NULL && strcmp(assignee, login) == 0)
		return true;
	cc = connector != NULL ? inbox_config_connector(cfg, connector) : NULL;
	if (cc == NULL || cc->team == NULL)
		return true;
	return inbox_list_has(teams, cc->team);
}

bool
inbox_config_contact_field(const struct inbox_config *cfg, const char *name)
{
	return inbox_list_has(cfg->contact_fields, name);
}

bool
inbox_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (list == NULL || n == 0)
		return false;
	for (const char *p = list; *p != '\0';) {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
	}
	return false;
}

bool
inbox_key_tagged(const char *s)
{
	const char *open = strchr(s, '{'), *close;

	return open != NULL && (close = strchr(open + 1, '}')) != NULL &&
	    close > open + 1;
}

int
inbox_hostport_nth(const char *list, size_t i, char *host, size_t hostlen,
    int *port)
{
	const char *p = list, *end, *colon, *h;
	size_t hl;
	char *stop;
	long v;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		end = p + strcspn(p, ",");
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (i-- == 0)
			break;
		p = end;
	}
	h = p;
	if (*p == '[') {                /* [v6addr]:port */
		h = p + 1;
		colon = memchr(h, ']', (size_t)(end - h));
		if (colon == NULL || colon + 1 >= end || colon[1] != ':')
			return INBOX_EINVAL;
		hl = (size_t)(colon - h);
		colon++;
	} else {
		colon = NULL;
		for (const char *q = p; q < end; q++)
			if (*q == ':')
				colon = q;
		if (colon == NULL)
			return INBOX_EINVAL;
		hl = (size_t)(colon - h);
	}
	if (hl == 0 || hl >= hostlen || colon + 1 >= end)
		return INBOX_EINVAL;
	errno = 0;
	v = strtol(colon + 1, &stop, 10);
	if (errno != 0 || stop != end || v < 1 || v > 65535)
		return INBOX_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)v;
	return 1;
}
