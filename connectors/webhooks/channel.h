/*
 * The webhooks connector's channel interface: one const struct per channel
 * (after wlroots' backend_impl), looked up by the connector's channel. A
 * channel verifies and decodes what its platform POSTs (inbound), answers
 * the platform's handshakes, and builds and reads the platform's send API
 * calls (outbound, out.c drives them).
 */
#ifndef INBOX_CONNECTORS_WEBHOOKS_CHANNEL_H
#define INBOX_CONNECTORS_WEBHOOKS_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "inbox/inbox.h"

/* One configured connector as a channel sees it. */
struct wh_conn {
	const struct inbox_connector_conf *cc;
	const char *token;           /* cc->token, or token_file's; may be NULL */
};

/* What a request carries that a channel may need to check. */
struct wh_request {
	const char *authorization;   /* Authorization header or NULL */
	const char *signature;       /* the channel's sig_header, or NULL */
	const char *body;
	size_t len;
	int64_t now_ms;
	/* GET only: a query argument's value (URL-decoded) or NULL; buf holds
	 * it. */
	const char *(*arg)(const struct wh_request *req, const char *name,
	    char *buf, size_t len);
	void *ctx;                   /* for arg */
};

#define WH_ANSWER_MAX 1100

/* The envelopes decoded from one request (a channel may batch several), and
 * how to answer the platform once they are appended. */
struct wh_envelopes {
	char **json;                 /* owned, encoded envelopes */
	uint32_t *hash;              /* each one's inbox_shard_hash */
	size_t n;
	int status;                  /* 0: 202 with the JSON answer */
	char answer[WH_ANSWER_MAX];  /* text/plain body when status != 0 */
};

/* A platform API call (outbound). */
struct wh_call {
	char url[2048];
	char *body;                  /* malloc'd */
	const char *content_type;    /* "application/json" or a form */
	char auth_header[1200];      /* one extra header line, or "" */
};

enum wh_send_outcome {
	WH_SEND_SENT,                /* id set when the platform gave one */
	WH_SEND_RETRY,               /* retry_after_ms > 0 when the platform
	                              * said when */
	WH_SEND_FAILED,              /* final: error names the reason */
};

struct wh_send_result {
	enum wh_send_outcome outcome;
	char id[INBOX_EXTID_MAX + 1];
	char error[512];
	int64_t retry_after_ms;
};

/* How a platform counts the length of a message's text. */
enum wh_text_units {
	WH_UNITS_CHARS,              /* code points */
	WH_UNITS_UTF16,              /* UTF-16 code units (Telegram) */
	WH_UNITS_BYTES,              /* UTF-8 bytes (Instagram) */
};

struct wh_channel_impl {
	enum inbox_channel channel;
	/* The longest text one send call takes (0: no limit); out.c sends a
	 * longer reply as several messages. */
	size_t text_max;
	enum wh_text_units text_units;
	/* The request header that carries the signature or secret (lws custom
	 * header form: lower case, ending in ':'), or NULL. */
	const char *sig_header;
	/* The real platform's API base when api_base is unset. */
	const char *api_default;
	/* Checks the request's authenticity before anything is parsed.
	 * Returns 0, or INBOX_EINVAL with err filled (answered 401). */
	int (*verify)(const struct wh_conn *wc, const struct wh_request *req,
	    struct inbox_err *err);
	/* Turns the body into envelopes. Returns 0 and fills out, or
	 * INBOX_EINVAL with err naming the problem (answered 400). */
	int (*decode)(const struct wh_conn *wc, const struct wh_request *req,
	    struct wh_envelopes *out, struct inbox_err *err);
	/* GET on the hook (a handshake): fills status and a text answer.
	 * NULL: GET is not allowed (405). */
	void (*handshake)(const struct wh_conn *wc, const struct wh_request *req,
	    int *status, char *answer, size_t len);
	/* Outbound: builds the send call for an out item into call. Returns 0,
	 * or INBOX_EINVAL with why (the item cannot be sent: failed at once).
	 * NULL: the channel does not deliver. */
	int (*send_build)(const struct wh_conn *wc, const char *base,
	    const cJSON *item, struct wh_call *call, char *why, size_t wlen);
	/* Reads the platform's answer (HTTP status 0: no answer, with the
	 * transport error in body). */
	void (*send_result)(long http_status, const char *body, size_t len,
	    int64_t retry_after_hdr_ms, struct wh_send_result *res);
};

extern const struct wh_channel_impl wh_channel_api;
extern const struct wh_channel_impl wh_channel_telegram;
extern const struct wh_channel_impl wh_channel_whatsapp;
extern const struct wh_channel_impl wh_channel_messenger;
extern const struct wh_channel_impl wh_channel_instagram;
extern const struct wh_channel_impl wh_channel_vk;
extern const struct wh_channel_impl wh_channel_viber;

/* ---- webhooks.c ------------------------------------------------------- */

/* The implementation for a channel, or NULL when this connector has none. */
const struct wh_channel_impl *wh_channel_find(enum inbox_channel ch);
/* Adds an encoded envelope (owned now) whose connector and thread have
 * inbox_shard_hash `hash`. */
void wh_envelopes_add(struct wh_envelopes *e, char *json, uint32_t hash);
void wh_envelopes_finish(struct wh_envelopes *e);

/* ---- util.c: what the channels share ---------------------------------- */

/* Splits valid UTF-8 text into parts of at most max units: at the last
 * line break of a part, else its last space, else (a break in the part's
 * first half would leave a stub) between two characters; the break itself
 * is dropped. Returns the number of parts (>= 1) with *parts malloc'd
 * strings (free each, then the array). */
size_t wh_text_split(const char *text, size_t max, enum wh_text_units units,
    char ***parts);

/* A platform's time t (in units of unit_ms milliseconds: 1000 for
 * seconds) as ms since the epoch; fallback when it is not a plausible time
 * (negative, NaN, huge: a platform or an attacker sending 1e300). */
int64_t wh_time_ms(double t, double unit_ms, int64_t fallback);
/* Starts an envelope: v, connector, channel, kind ("message", "status",
 * "edit"), external_id, ts, contact {external_id, name}, thread, text.
 * Strings longer than the envelope allows are cut at a UTF-8 boundary;
 * NULL strings become "". Returns the tree (the caller adds to it, then
 * hands it to wh_env_emit). */
cJSON *wh_env_new(const struct wh_conn *wc, const char *kind,
    const char *external_id, int64_t ts, const char *contact_id,
    const char *contact_name, const char *thread, const char *text);
/* Validates env and appends its encoding to out (takes ownership). An
 * envelope that fails validation is appended as it is, so the router
 * dead-letters it with the reason: nothing a platform sent is dropped. */
void wh_env_emit(struct wh_envelopes *out, cJSON *env);
/* A status envelope for one of our replies: reply_to = the platform's id
 * of it, external_id "status:<id>:<status>". error may be NULL. */
void wh_env_status(const struct wh_conn *wc, struct wh_envelopes *out,
    const char *platform_id, const char *status, int64_t ts,
    const char *contact_id, const char *thread, const char *error);
struct wh_buf;
/* Sets env's text to "<label> <text>" (either may be empty). */
void wh_env_text(cJSON *env, const struct wh_buf *label, const char *text);
/* The thread and text of an out item; INBOX_EINVAL with why when either is
 * missing or the text is empty. */
int wh_item_text(const cJSON *item, const char **thread, const char **text,
    char *why, size_t wlen);
/* Appends an attachment {type, name?, mime?, size?, url?, file_id?} to
 * env's attachments (NULL or negative values are left out). */
void wh_env_attach(cJSON *env, const char *type, const char *name,
    const char *mime, double size, const char *url, const char *file_id);

/* JSON helpers: a member by name, or NULL when absent or of another
 * type. wh_jid prints a string or integral number id into buf (ids are
 * strings or numbers, depending on the client) and returns buf, or NULL. */
const cJSON *wh_jobj(const cJSON *o, const char *name);
const cJSON *wh_jarr(const cJSON *o, const char *name);
const char *wh_jstr(const cJSON *o, const char *name);
bool wh_jnum(const cJSON *o, const char *name, double *out);
const char *wh_jid(const cJSON *o, const char *name, char *buf, size_t len);
/* The digits of an integer member of the top-level object, read from the
 * raw text (ids above 2^53 would lose precision as doubles). NULL when
 * absent. */
const char *wh_json_top_int(const char *body, size_t len, const char *name,
    char *buf, size_t blen);
/* A stable id for a JSON value: "<prefix>:" and 32 hex of its hash. */
void wh_json_hash_id(const cJSON *v, const char *prefix, char *buf,
    size_t len);

/* Constant-time check of hex(HMAC-SHA256(key, body)) against `hex` (case
 * insensitive). */
bool wh_hmac_sha256_ok(const char *key, const char *body, size_t len,
    const char *hex);
/* Constant-time equality of two strings (either may be NULL: false). */
bool wh_secret_eq(const char *got, const char *want);

/* Text helpers: appends to a growing malloc'd string. */
struct wh_buf {
	char *s;
	size_t len, cap;
};
void wh_buf_add(struct wh_buf *b, const char *s);
void wh_buf_addf(struct wh_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The string ("" when empty); owned by b until wh_buf_finish. */
const char *wh_buf_str(struct wh_buf *b);
void wh_buf_finish(struct wh_buf *b);

/* Outbound helpers: the common reading of an HTTP outcome (0: transport
 * error, 429, 5xx retry; other 4xx fail) when the body tells nothing
 * better; URL-encodes s onto b. */
void wh_send_http_default(long http_status, const char *body, size_t len,
    int64_t retry_after_ms, struct wh_send_result *res);
void wh_buf_urlenc(struct wh_buf *b, const char *s);

/* ---- meta.c: shared by WhatsApp, Messenger and Instagram -------------- */

int wh_meta_verify(const struct wh_conn *wc, const struct wh_request *req,
    struct inbox_err *err);
void wh_meta_handshake(const struct wh_conn *wc, const struct wh_request *req,
    int *status, char *answer, size_t len);
void wh_meta_send_result(long http_status, const char *body, size_t len,
    int64_t retry_after_ms, struct wh_send_result *res);

#endif
