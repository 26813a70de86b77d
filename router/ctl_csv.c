/* RFC 4180 CSV: the reader and the writer of inboxctl's contacts
 * (router/ctl_csv.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "router/ctl_csv.h"

static const char bom[3] = { '\xef', '\xbb', '\xbf' };

void
ctl_csv_init(struct ctl_csv *r, const char *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	r->line = 1;
	/* Unquoted, a record never grows: its bytes and one NUL per cell. */
	r->store = xmalloc(CTL_CSV_RECORD_MAX + CTL_CSV_CELLS_MAX + 1);
	if (len >= sizeof(bom) && memcmp(buf, bom, sizeof(bom)) == 0)
		r->pos = sizeof(bom);
}

void
ctl_csv_finish(struct ctl_csv *r)
{
	free(r->store);
	r->store = NULL;
}

/* The length of the line break at pos (CRLF, LF or CR), 0 when none. */
static size_t
eol_at(const struct ctl_csv *r, size_t pos)
{
	if (pos >= r->len)
		return 0;
	if (r->buf[pos] == '\n')
		return 1;
	if (r->buf[pos] == '\r')
		return pos + 1 < r->len && r->buf[pos + 1] == '\n' ? 2 : 1;
	return 0;
}

/* Goes on after the next line break at or after pos (or at the end). */
static void
skip_line(struct ctl_csv *r, size_t pos)
{
	size_t n = 0;

	while (pos < r->len && (n = eol_at(r, pos)) == 0)
		pos++;
	if (pos < r->len) {
		pos += n;
		r->line++;
	}
	r->pos = pos;
}

/* A quote that never closes swallows the rest of the input: go on with the
 * line after the one the record starts on instead. */
static void
resync(struct ctl_csv *r, size_t start)
{
	r->line = r->rec_line;
	skip_line(r, start);
}

static int __attribute__((format(printf, 3, 4)))
reject(const struct ctl_csv *r, struct inbox_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return INBOX_EINVAL;
	inbox_err_set(err, INBOX_EINVAL, NULL, (int)r->rec_line, "%s", "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return INBOX_EINVAL;
}

int
ctl_csv_next(struct ctl_csv *r, struct inbox_err *err)
{
	char *out = r->store;
	size_t start, pos, n, nul_cell = 0;

	while ((n = eol_at(r, r->pos)) > 0) {
		r->pos += n;
		r->line++;
	}
	if (r->pos >= r->len)
		return 0;
	start = pos = r->pos;
	r->rec_line = r->line;
	r->row++;
	r->ncells = 0;
	for (;;) {
		const char *cell = out;
		size_t col = r->ncells + 1;

		if (r->ncells == CTL_CSV_CELLS_MAX) {
			skip_line(r, pos);
			return reject(r, err, "more than %d cells",
			    CTL_CSV_CELLS_MAX);
		}
		if (pos < r->len && r->buf[pos] == '"') {
			for (pos++;; pos++) {
				if (pos - start >= CTL_CSV_RECORD_MAX) {
					resync(r, start);
					return reject(r, err, "record too long "
					    "(the limit is %d bytes; is the "
					    "quote of cell %zu closed?)",
					    CTL_CSV_RECORD_MAX, col);
				}
				if (pos >= r->len) {
					resync(r, start);
					return reject(r, err, "unbalanced quotes: "
					    "the quoted cell %zu never closes",
					    col);
				}
				if (r->buf[pos] == '"') {
					if (pos + 1 < r->len &&
					    r->buf[pos + 1] == '"') {
						*out++ = '"';
						pos++;
						continue;
					}
					pos++;
					break;
				}
				if (eol_at(r, pos) == 1)   /* LF, CR, or CRLF's LF */
					r->line++;
				if (r->buf[pos] == '\0' && nul_cell == 0)
					nul_cell = col;
				*out++ = r->buf[pos];
			}
			if (pos < r->len && r->buf[pos] != ',' &&
			    eol_at(r, pos) == 0) {
				skip_line(r, pos);
				return reject(r, err, "text after the closing "
				    "quote of cell %zu", col);
			}
		} else {
			while (pos < r->len && r->buf[pos] != ',' &&
			    eol_at(r, pos) == 0) {
				if (r->buf[pos] == '"') {
					skip_line(r, pos);
					return reject(r, err, "a quote inside "
					    "unquoted cell %zu (quote the whole "
					    "cell and double its quotes)", col);
				}
				if (pos - start >= CTL_CSV_RECORD_MAX) {
					skip_line(r, pos);
					return reject(r, err, "record too long "
					    "(the limit is %d bytes)",
					    CTL_CSV_RECORD_MAX);
				}
				if (r->buf[pos] == '\0' && nul_cell == 0)
					nul_cell = col;
				*out++ = r->buf[pos++];
			}
		}
		*out++ = '\0';
		r->cells[r->ncells++] = cell;
		if (pos < r->len && r->buf[pos] == ',') {
			pos++;
			continue;
		}
		break;
	}
	n = eol_at(r, pos);
	r->pos = pos + n;
	if (n > 0)
		r->line++;
	if (nul_cell != 0)
		return reject(r, err, "a NUL byte in cell %zu", nul_cell);
	for (size_t i = 0; i < r->ncells; i++) {
		long bad = inbox_utf8_invalid_at(r->cells[i],
		    strlen(r->cells[i]));

		if (bad >= 0)
			return reject(r, err, "invalid UTF-8 in cell %zu (at "
			    "byte %ld)", i + 1, bad + 1);
	}
	return 1;
}

void
ctl_csv_put(FILE *f, size_t col, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	bool quote = n == 0 ? col == 0 : (strpbrk(s, "\",\r\n") != NULL ||
	    isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]) ||
	    (n >= sizeof(bom) && memcmp(s, bom, sizeof(bom)) == 0));

	if (col > 0)
		fputc(',', f);
	if (!quote) {
		if (n > 0)
			fwrite(s, 1, n, f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			fputc('"', f);
		fputc(s[i], f);
	}
	fputc('"', f);
}

void
ctl_csv_end(FILE *f)
{
	fputs("\r\n", f);
}
