/*
 * libinbox: the domain, with no I/O. Envelope type and its JSON codec, error
 * codes, the configuration parser (text to struct), UTF-8 checks, and the log
 * front end (the process sets the sink).
 */
#ifndef INBOX_INBOX_H
#define INBOX_INBOX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- err.c ---------------------------------------------------------- */

enum {
	INBOX_OK = 0,
	INBOX_EINVAL = -1,     /* bad input (parser errors fill struct inbox_err) */
	INBOX_ENOTFOUND = -2,
	INBOX_EEXIST = -3,
	INBOX_ENOMEM = -4,
	INBOX_EIO = -5,        /* file, socket or database failure */
	INBOX_ETOOBIG = -6,
	INBOX_EUNAVAIL = -7,   /* a server (Redis) is unreachable */
	INBOX_ESTATE = -8,     /* operation not allowed in this state */
};

/* What a parser found wrong. `field` names the offending field or key (a
 * dotted path such as "contact.email"), `line` is 1-based for config files
 * (0 elsewhere), `msg` is the whole human-readable message. */
struct inbox_err {
	int code;
	int line;
	char field[64];
	char msg[512];
};

const char *inbox_strerror(int code);
/* Fills err (may be NULL) and returns code. */
int inbox_err_set(struct inbox_err *err, int code, const char *field, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- util.c --------------------------------------------------------- */

/* Allocation that aborts on failure (the process cannot go on without it). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Returns -1 if buf[0..len) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else the offset of the first bad byte. */
long inbox_utf8_invalid_at(const char *buf, size_t len);

/* Hex-encodes n bytes into out (2n+1 bytes). */
void inbox_hex(char *out, const unsigned char *in, size_t n);

/* ---- envelope.c ------------------------------------------------------ */

#define INBOX_ENVELOPE_VERSION 1
#define INBOX_ID_MAX 64          /* connector id */
#define INBOX_EXTID_MAX 400      /* external ids and thread keys */

enum inbox_channel {
	INBOX_CH_EMAIL, INBOX_CH_TELEGRAM, INBOX_CH_WHATSAPP, INBOX_CH_MESSENGER,
	INBOX_CH_INSTAGRAM, INBOX_CH_VK, INBOX_CH_VIBER, INBOX_CH_API,
	INBOX_CH__COUNT
};

enum inbox_kind { INBOX_KIND_MESSAGE, INBOX_KIND_STATUS, INBOX_KIND_EDIT };

const char *inbox_channel_name(enum inbox_channel ch);
/* Returns 0 and sets *out, or INBOX_EINVAL for an unknown name. */
int inbox_channel_parse(const char *name, enum inbox_channel *out);
const char *inbox_kind_name(enum inbox_kind k);

/* True for 1..64 bytes of [A-Za-z0-9._-]. */
bool inbox_connector_id_valid(const char *id);

struct inbox_contact {
	const char *external_id;
	const char *name;
	const char *email;       /* NULL when absent */
	const char *phone;
	const char *username;
};

/* A decoded envelope. Its strings point into `json`, the parsed tree the
 * envelope owns: they are valid until inbox_envelope_finish(). */
struct inbox_envelope {
	int v;
	const char *connector;
	enum inbox_channel channel;
	enum inbox_kind kind;
	const char *external_id;
	int64_t ts;
	struct inbox_contact contact;
	const char *thread;
	const char *text;
	const char *subject;     /* optional fields: NULL when absent */
	const char *html;
	const char *reply_to;
	const char *raw_ref;
	void *json;              /* cJSON tree, owned */
};

/* Parses and validates an envelope. On success returns 0 and env owns a tree
 * (free it with inbox_envelope_finish). On failure returns INBOX_EINVAL, fills
 * err with the field and the problem, and env holds nothing to free. */
int inbox_envelope_decode(struct inbox_envelope *env, const char *buf,
    size_t len, struct inbox_err *err);

/* Parses one JSON value filling all of buf[0..len) (whitespace may follow),
 * nested at most INBOX_JSON_DEPTH_MAX levels. Returns a cJSON tree the
 * caller frees with cJSON_Delete, or NULL with err giving the byte offset
 * of the problem. */
#define INBOX_JSON_DEPTH_MAX 64
void *inbox_json_parse(const char *buf, size_t len, struct inbox_err *err);

/* Validates an already parsed cJSON object (takes ownership of `json` on
 * success and on failure alike). */
int inbox_envelope_from_json(struct inbox_envelope *env, void *json,
    struct inbox_err *err);

/* Prints env's tree (with every unknown field) as compact JSON. Returns a
 * malloc'd string the caller frees, and its length in *len. */
char *inbox_envelope_encode(const struct inbox_envelope *env, size_t *len);

void inbox_envelope_finish(struct inbox_envelope *env);

/* ---- config.c -------------------------------------------------------- */

enum inbox_log_level { INBOX_LOG_ERROR, INBOX_LOG_WARN, INBOX_LOG_INFO,
	INBOX_LOG_DEBUG };

/* A [connector <id>] section. Which keys a channel reads is in
 * docs/operations.md; the parser checks types and bounds, each connector
 * what it needs (an unset key it needs is an error at its start). */
struct inbox_connector_conf {
	char *id;
	enum inbox_channel channel;
	bool channel_set;
	char *secret;            /* NULL: no secret */
	char *team;              /* the team whose agents see its dialogs;
	                          * NULL: everyone */
	bool enabled;            /* no: nothing comes in or goes out (webhooks
	                          * answer 503, replies wait, inbox-imap
	                          * exits) */
	/* messengers (webhooks connector) */
	char *token;             /* bot or access token */
	char *token_file;        /* ... or a file holding it */
	char *app_secret;        /* Meta: X-Hub-Signature-256 key */
	char *verify_token;      /* Meta: the GET hub.verify_token */
	char *confirmation;      /* VK: the answer to `confirmation` */
	char *group_id;          /* VK community id */
	char *phone_number_id;   /* WhatsApp Cloud API sender */
	char *api_base;          /* outbound API base URL (tests point it
	                          * at a local server) */
	/* delivery of replies (every connector) */
	int send_attempts;       /* then the reply is failed and parked */
	int send_concurrency;    /* replies in flight at once */
	/* e-mail (inbox-imap) */
	char *imap_host;
	int imap_port;           /* 0: 993, or 143 for starttls/none */
	char *imap_tls;          /* imaps | starttls | none */
	bool imap_verify;        /* check the server certificate */
	char *imap_user;
	char *imap_password, *imap_password_file;
	char *imap_auth;         /* login | plain */
	char *folders;           /* "INBOX, Support" */
	char *initial_sync;      /* new | all | <N>d */
	int64_t poll_interval_ms;    /* without IDLE */
	int64_t idle_interval_ms;    /* IDLE is re-issued this often */
	int max_message_size;    /* bytes; larger mail is dead-lettered */
	char *state_path;        /* checkpoint file */
	char *smtp_host;
	int smtp_port;           /* 0: 465 for smtps, else 587 */
	char *smtp_tls;          /* smtps | starttls | none */
	bool smtp_verify;
	char *smtp_user;
	char *smtp_password, *smtp_password_file;
	char *from;              /* "Support <support@example.com>" */
	char *metrics;           /* inbox-imap's /metrics "host:port" */
};

/* An SLA policy ([sla <name>]): the first policy, in file order, whose
 * priority and tags conditions hold applies to a dialog. */
struct inbox_sla_policy {
	char *name;
	int64_t first_response_ms, next_response_ms, resolution_ms;  /* 0: none */
	bool business;           /* counted in business hours */
	char *priorities;        /* "high, urgent": any of them; NULL: any */
	char *tags;              /* "vip, billing": any of them; NULL: any */
	int line;                /* where it starts, for errors */
};

struct inbox_rule;

struct inbox_config {
	char *file;              /* the file name errors name */
	int log_level;
	char *log_format;            /* "text" | "json": one object per line */

	char *redis_host;
	int redis_port;
	char *redis_unix;        /* NULL: use host/port */
	char *redis_prefix;
	int redis_timeout_ms;
	char *redis_sentinels;   /* "host:port, ..."; NULL: use host/port */
	char *redis_master_name; /* the master the sentinels monitor */
	char *redis_cluster;     /* "host:port, ...": seeds of a Redis
	                          * Cluster; NULL: none */
	int redis_min_replicas;  /* > 0: WAIT for that many after writes */
	int redis_shards;        /* dialogs spread over this many shards */
	int shard;               /* the one this process serves (a router),
	                          * or -1: all of them */

	char *store_path;
	int store_map_size_mb;

	char *router_consumer;
	int router_batch;
	int router_events_maxlen;
	int router_claim_idle_ms;
	int router_lease_ms;     /* the active router's lease in Redis */
	char *router_metrics;    /* "host:port" of /metrics; NULL: none */

	char *webhooks_listen;
	int webhooks_port;
	int webhooks_max_body;

	char *gateway_listen;
	int gateway_port;
	char *gateway_web_root;
	char *gateway_secret_file;
	int gateway_token_ttl;
	int gateway_ring_size;
	char *gateway_origins;   /* extra allowed websocket Origins */
	char *gateway_visibility;    /* "team" | "all": what agents see */
	int64_t gateway_away_ms; /* no frame this long: away */
	int gateway_max_agent_socks; /* open websockets per agent; 0: no limit */
	char *gateway_tls_cert, *gateway_tls_key;

	char *contact_fields;    /* custom contact fields: "a, b, c"; NULL */
	char *blob_path;         /* attachments' bytes, beside the store */
	int max_attachment;      /* bytes of one attachment kept */

	int router_auto_assign;  /* 1: route new and reopened dialogs */
	int router_default_capacity;
	int router_presence_lease_ms;
	int router_sla_warning_pct;
	char *business_week;     /* "mon-fri 09:00-18:00"; NULL: none */
	char *business_utc_offset;

	struct inbox_sla_policy *sla;
	size_t nsla;
	struct inbox_rule *rules;    /* inbox/rules.h */
	size_t nrules;
	int64_t router_auto_reply_interval_ms;
	char *router_survey_template;
	int64_t router_survey_window_ms;

	struct inbox_connector_conf *connectors;
	size_t nconnectors;
};

/* Sets every key to its default (no connectors). */
void inbox_config_init(struct inbox_config *cfg);
/* Parses text (len bytes; `file` is the name errors carry) over the defaults
 * already in cfg. On error returns INBOX_EINVAL and err names file, line and
 * key in err->msg ("inboxd.conf:12: key 'port': ..."); cfg must still be
 * finished. */
int inbox_config_parse(struct inbox_config *cfg, const char *file,
    const char *text, size_t len, struct inbox_err *err);
void inbox_config_finish(struct inbox_config *cfg);
/* Writes every key with its value as a config file (the `-n -v` dump). */
void inbox_config_dump(const struct inbox_config *cfg, FILE *out);
/* The connector with this id, or NULL. */
const struct inbox_connector_conf *inbox_config_connector(
    const struct inbox_config *cfg, const char *id);
/* Whether an agent (login, role, its teams as "a, b") may see and act on
 * a dialog of `connector` assigned to `assignee` (NULL: nobody):
 * supervisors and admins see all; with gateway.visibility = team an agent
 * sees its own dialogs and those of connectors of its teams (or of no
 * team). */
bool inbox_conv_visible(const struct inbox_config *cfg, const char *connector,
    const char *assignee, const char *login, const char *role,
    const char *teams);
/* True when `name` is one of the items of a comma-separated list. */
bool inbox_list_has(const char *list, const char *name);
/* Item i (from 0) of a comma-separated "host:port" list (redis.sentinels;
 * "[v6addr]:port" too): copies the host into host (NUL-terminated) and sets
 * *port. Returns 1, 0 past the last item, or INBOX_EINVAL for a malformed
 * item (the host does not fit, no port, or a port out of 1..65535). */
int inbox_hostport_nth(const char *list, size_t i, char *host, size_t hostlen,
    int *port);
/* Whether s holds a Redis Cluster hash tag: a '{' with a '}' after it and
 * something between them (the slot is then the tag's). */
bool inbox_key_tagged(const char *s);
/* ---- shard.c ---------------------------------------------------------- */

/* With [redis] shards = n > 1, a dialog (its connector and thread) lives
 * in shard inbox_shard_of(...): a hash of both, mod n; 0 when n <= 1. */
uint32_t inbox_shard_hash(const char *connector, const char *thread);
unsigned inbox_shard_of(const char *connector, const char *thread,
    unsigned n);
/* The shard of an id (conversation, message, contact, task): a shard's
 * store gives out ids k + 1, k + 1 + n, ...; 0 when n <= 1. */
unsigned inbox_shard_of_id(uint64_t id, unsigned n);
/* The key prefix of shard k of n: the prefix itself when n <= 1, else
 * with ".k" inside its hash tag ("{inbox}" -> "{inbox.2}", so each shard
 * has its own slot) or after it ("inbox" -> "inbox.2"). Returns 0, or
 * INBOX_EINVAL when it does not fit. */
int inbox_shard_prefix(char *buf, size_t len, const char *prefix,
    unsigned k, unsigned n);

/* True when `name` is one of the custom contact fields (contacts.fields). */
bool inbox_config_contact_field(const struct inbox_config *cfg,
    const char *name);
/* Returns 0 or INBOX_EINVAL for an unknown level name. */
int inbox_log_level_parse(const char *name, int *out);

/* ---- log.c ----------------------------------------------------------- */

/* The log front end. The process name and level are set once by main();
 * lines go to stderr as "<iso-time> <proc> <level>: <message>", or with
 * log_setjson(true) as one JSON object per line:
 * {"time":"<iso-time>","proc":"..","level":"..","msg":"..."} (debug lines
 * add "file" and "line"). */
void log_init(const char *procname, int level);
void log_setlevel(int level);
void log_setjson(bool json);
bool log_enabled(int level);
void log_msg(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_warnx(...) do { if (log_enabled(INBOX_LOG_WARN)) \
	log_msg(INBOX_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(INBOX_LOG_INFO)) \
	log_msg(INBOX_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(INBOX_LOG_DEBUG)) \
	log_msg(INBOX_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define log_errorx(...) do { if (log_enabled(INBOX_LOG_ERROR)) \
	log_msg(INBOX_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__); } while (0)

#endif
