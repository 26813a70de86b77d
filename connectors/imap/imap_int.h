/* inbox-imap's private parts. */
#ifndef INBOX_CONNECTORS_IMAP_IMAP_INT_H
#define INBOX_CONNECTORS_IMAP_IMAP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/common/connector.h"
#include "connectors/imap/mime.h"
#include "inbox/inbox.h"

/* Counters for /metrics (connector key `metrics`), shared by the IMAP and
 * SMTP threads. */
struct imap_counters {
	atomic_uint_fast64_t fetched, poison, reconnects, sent, failed, retries;
	atomic_bool connected;
};

/* ---- state.c: checkpoints, one per folder ------------------------------ */

struct imap_checkpoint {
	char *folder;
	uint32_t uidvalidity;
	uint32_t last_uid;       /* the last UID handed over to inbox:in */
};

struct imap_state {
	char *path;
	struct imap_checkpoint *cp;
	size_t n;
};

/* Loads path (a missing file is an empty state). Returns 0, or INBOX_EIO /
 * INBOX_EINVAL (a damaged file: named, line by line) after logging. */
int imap_state_load(struct imap_state *st, const char *path);
/* The checkpoint of folder, or NULL. */
struct imap_checkpoint *imap_state_get(struct imap_state *st,
    const char *folder);
/* Sets and durably saves (temporary file, fsync, rename, fsync of the
 * directory) the checkpoint of folder. */
int imap_state_set(struct imap_state *st, const char *folder,
    uint32_t uidvalidity, uint32_t last_uid);
void imap_state_finish(struct imap_state *st);

/* ---- env.c: a parsed mail to an envelope -------------------------------- */

struct imap_source {
	const char *folder;
	uint32_t uidvalidity, uid;
};

/* The envelope of m (malloc'd JSON). Attachments are written to blob_dir
 * (content-addressed, fsynced) first; those over max_attachment are listed
 * without bytes. raw/len: the whole message, for its hash when it has no
 * Message-ID. Returns NULL with err filled when a blob cannot be written. */
char *imap_envelope(const struct inbox_connector_conf *cc, const char *blob_dir,
    size_t max_attachment, const struct mail_msg *m, const char *raw,
    size_t len, const struct imap_source *src, int64_t now,
    struct inbox_err *err);
/* The envelope of a message that could not be read (too big, broken): a
 * notice to agents, with what the headers gave. */
char *imap_notice_envelope(const struct inbox_connector_conf *cc,
    const char *raw_headers, size_t len, const struct imap_source *src,
    const char *reason, int64_t now);
/* The dialog key of a message: our own reply's encoded thread when it
 * answers one, else the first reference, In-Reply-To, its Message-ID, or
 * external_id. malloc'd. */
char *imap_thread_of(const struct mail_msg *m, const char *external_id);
/* Our Message-ID for a reply in `thread` (without <>): it carries the
 * thread, so an answer that names it joins the dialog. malloc'd. */
char *imap_reply_message_id(const char *thread, const char *ref,
    const char *domain);
/* Writes bytes under dir as <first 2 hex>/<sha256 hex>; sets hex (65
 * bytes). Returns 0 or INBOX_EIO. */
int imap_blob_put(const char *dir, const unsigned char *data, size_t len,
    char *hex);

/* ---- smtp.c: replies out ------------------------------------------------- */

struct imap_smtp;
struct imap_smtp *imap_smtp_create(const struct inbox_config *cfg,
    const struct inbox_connector_conf *cc, const char *password,
    struct imap_counters *n);
/* Delivers replies until a signal arrives (its own thread). */
void *imap_smtp_run(void *arg);
void imap_smtp_destroy(struct imap_smtp *s);
/* The message for an out item (malloc'd, CRLF lines). Sets *rcpt (the
 * customer's address, borrowed from item) and msgid (our Message-ID). */
char *imap_smtp_message(const struct inbox_connector_conf *cc,
    const cJSON *item, int64_t now, const char **rcpt, char *msgid,
    size_t msgidlen, struct inbox_err *err);

/* ---- imapd.c: mail in ---------------------------------------------------- */

struct imapd;
struct imapd *imapd_create(const struct inbox_config *cfg,
    const struct inbox_connector_conf *cc, const char *password,
    struct imap_counters *n);
int imapd_run(struct imapd *d);
void imapd_destroy(struct imapd *d);

#endif
