/*
 * inbox-imap's MIME reader: one raw RFC 5322 message (as fetched) to what an
 * envelope needs, with libetpan's parser (mailmime_parse, mailimf) and iconv.
 * Pure apart from iconv: no sockets, no files, no clock.
 */
#ifndef INBOX_CONNECTORS_IMAP_MIME_H
#define INBOX_CONNECTORS_IMAP_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbox/inbox.h"

#define MAIL_ATTACH_MAX 100

struct mail_attachment {
	char *name;              /* UTF-8 (RFC 2231 / RFC 2047 decoded);
	                          * "attachment-N" when the message has none */
	char *mime;              /* "application/pdf", lowercase */
	size_t size;             /* decoded bytes */
	const unsigned char *data;   /* decoded bytes, inside the parse */
	bool inline_part;        /* Content-Disposition: inline (e.g. an
	                          * embedded image) */
	char *content_id;        /* without <>; NULL when none */
};

/* One message, every string UTF-8 and owned by the struct. */
struct mail_msg {
	char *message_id;        /* without <>; NULL when the message has none */
	char *in_reply_to;       /* the first id of In-Reply-To, without <> */
	char **references;       /* References ids in order, without <> */
	size_t nreferences;
	char *from_name;         /* decoded display name ("" when none) */
	char *from_addr;         /* lowercase address; NULL when unparsable */
	char *reply_to_addr;     /* Reply-To address, or NULL */
	char *to;                /* the To header as text, decoded */
	char *subject;           /* decoded; "" when none */
	int64_t date_ms;         /* Date header in ms since the epoch; 0 when
	                          * missing or unparsable */
	char *text;              /* the body as plain text: text/plain preferred
	                          * (multipart/alternative), else text derived
	                          * from text/html (tags dropped, entities and
	                          * <br>/<p> turned into text) */
	char *text_new;          /* text without the quoted history of a reply
	                          * ("On ... wrote:" and following "> " lines,
	                          * Outlook's "-----Original Message-----" /
	                          * "From: ... Sent: ..." blocks, Russian
	                          * "... пишет:"); == text when none found */
	char *html;              /* the text/html part, UTF-8; NULL when none */
	struct mail_attachment attachments[MAIL_ATTACH_MAX];
	size_t nattachments;
	bool automatic;          /* Auto-Submitted other than "no",
	                          * Precedence bulk/junk/list/auto_reply,
	                          * X-Autoreply/X-Autorespond, mailer-daemon or
	                          * postmaster sender, multipart/report, or an
	                          * empty Return-Path (<>) */
	char *automatic_why;     /* which of those, for the log; NULL if not */
	char *charset_note;      /* NULL, or what was done about an unknown or
	                          * lying charset ("windows-1251 assumed for
	                          * 'x-unknown'", "invalid UTF-8 replaced") */
	void *priv;              /* the parse the attachment data points into */
};

/* Parses raw (len bytes). Returns 0 and fills m (free with
 * mail_msg_finish, also after an error), or INBOX_EINVAL with err naming
 * the problem (not a message at all: no header block, unparsable MIME
 * structure), INBOX_ETOOBIG (more than max_parts parts or nesting deeper
 * than 32). A message with odd parts (a wrong charset label, 8-bit bytes in
 * headers, a missing boundary) is read as well as it can be, never
 * rejected for that. */
int mail_parse(const char *raw, size_t len, struct mail_msg *m,
    struct inbox_err *err);
void mail_msg_finish(struct mail_msg *m);

/* Converts len bytes in `charset` to UTF-8 (malloc'd, NUL-terminated).
 * Unknown charsets: windows-1251 is tried when the bytes are not UTF-8,
 * else ISO-8859-1; invalid sequences become U+FFFD. *note (may be NULL) is
 * set to a static description when a fallback was used. Never fails. */
char *mail_to_utf8(const char *charset, const char *s, size_t len,
    const char **note);

/* Decodes RFC 2047 encoded words in a header value (malloc'd UTF-8). */
char *mail_decode_header(const char *value);

/* RFC 2047 "=?UTF-8?B?...?=" encoding of a header value when it is not
 * plain ASCII (malloc'd; folded at 76 columns). */
char *mail_encode_header(const char *utf8);

#endif
