/*
 * Private to the MIME reader (mime*.c): a growable buffer, UTF-8 repair,
 * HTML to text, RFC 2231 parameters and quoted-history detection.
 */
#ifndef INBOX_CONNECTORS_IMAP_MIME_INT_H
#define INBOX_CONNECTORS_IMAP_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_TEXT_MAX (1024 * 1024)      /* text, text_new, html */
#define MIME_HEADER_MAX (16 * 1024)      /* one decoded header value */
#define MIME_NAME_MAX 1024               /* an attachment name */

/* A growable byte buffer; never more than `max` bytes (0: unlimited), the
 * rest is dropped and `truncated` set. */
struct mime_buf {
	char *p;
	size_t len, cap, max;
	bool truncated;
};

/* ---- mime_charset.c ---- */
void mime__buf_add(struct mime_buf *b, const void *s, size_t n);
void mime__buf_addc(struct mime_buf *b, char c);
/* Returns the NUL-terminated contents (malloc'd, "" when empty) and
 * leaves b empty. */
char *mime__buf_take(struct mime_buf *b);
void mime__buf_free(struct mime_buf *b);

/* Copies s[0..len) replacing each invalid UTF-8 byte and NUL with U+FFFD,
 * cut at a character boundary so the result has at most max bytes (0: no
 * limit). *nrepl (may be NULL) counts the replacements. Malloc'd. */
char *mime__utf8_clean(const char *s, size_t len, size_t max, size_t *nrepl);

/* ---- mime_header.c ---- */
/* mail_decode_header for value[0..len), with *note (may be NULL) set as
 * mail_to_utf8 sets it. Output at most max bytes. */
char *mime__header_decode(const char *value, size_t len, size_t max,
    const char **note);
/* The value of an RFC 2231 parameter `name` (e.g. "filename") from the
 * parallel arrays attr[]/val[] (n pairs): name*, name*0*, name*1, ... or a
 * plain name (RFC 2047 decoded). Malloc'd UTF-8, or NULL when absent. */
char *mime__param_2231(const char *name, const char *const *attr,
    const char *const *val, size_t n);

/* ---- mime_html.c ---- */
/* Text of an HTML document: tags dropped, script/style/head skipped,
 * entities decoded, block tags and <br> as line breaks, blockquote lines
 * prefixed with "> ". Input and output UTF-8; output at most max bytes. */
char *mime__html_to_text(const char *html, size_t len, size_t max);

/* ---- mime_quote.c ---- */
/* text without the quoted history of a reply (malloc'd); a copy of text
 * when there is none. */
char *mime__strip_quoted(const char *text);

#endif
