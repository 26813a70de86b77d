/*
 * RFC 4180 CSV for inboxctl's contact export and import (router/ctl_csv.c).
 *
 * The reader takes hostile input: a record that breaks the rules (unbalanced
 * quotes, text after a closing quote, a quote inside an unquoted cell, a NUL
 * byte, invalid UTF-8, too many cells, too long) is rejected with a reason,
 * and the reader steps over it so the caller can go on with the next record.
 * Records end with CRLF, LF or CR; a UTF-8 byte order mark at the start is
 * skipped; empty lines are skipped. The writer quotes what needs quoting.
 */
#ifndef INBOX_ROUTER_CTL_CSV_H
#define INBOX_ROUTER_CTL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "inbox/inbox.h"

#define CTL_CSV_RECORD_MAX (64 * 1024)   /* bytes of one record, as written */
#define CTL_CSV_CELLS_MAX 256            /* cells of one record */

struct ctl_csv {
	const char *buf;
	size_t len, pos;
	size_t line;             /* physical line at pos, 1-based */
	size_t rec_line;         /* first line of the last record read */
	size_t row;              /* records read so far, rejected ones too */
	char *store;             /* the cells of the last record, NUL-ended */
	const char *cells[CTL_CSV_CELLS_MAX];
	size_t ncells;
};

/* Reads buf[0..len) (borrowed: it must outlive the reader). */
void ctl_csv_init(struct ctl_csv *r, const char *buf, size_t len);
void ctl_csv_finish(struct ctl_csv *r);
/* Reads the next record. Returns 1 with r->cells[0..r->ncells) set (valid
 * UTF-8 without NUL bytes; borrowed until the next call), 0 at the end of
 * the input, or INBOX_EINVAL with err->msg saying why the record was
 * rejected (err->line: its first line). r->row and r->rec_line number the
 * record either way. */
int ctl_csv_next(struct ctl_csv *r, struct inbox_err *err);

/* Writes cell s (NULL: empty) as column col of a record: a comma first
 * unless col is 0; quoted (quotes doubled) when it holds a quote, a comma,
 * a line break or leading or trailing white space, when it starts with a
 * byte order mark (the reader skips one at the start of the input), and
 * when it is an empty first cell (a record of one empty cell is not a
 * blank line). */
void ctl_csv_put(FILE *f, size_t col, const char *s);
/* Ends a record (CRLF). */
void ctl_csv_end(FILE *f);

#endif
