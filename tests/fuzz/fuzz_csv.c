/*
 * Fuzz target: inboxctl's CSV reader (router/ctl_csv.h), with its
 * invariants:
 *   - every call moves on (the reader ends on any input);
 *   - rows count up by one, lines never go back, a rejection names its
 *     record's line and a reason;
 *   - a record read holds 1..CTL_CSV_CELLS_MAX cells of valid UTF-8
 *     without NUL bytes;
 *   - the writer's form of a record reads back as that one record.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/ctl_csv.h"

#define INPUT_MAX (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
round_trip(const struct ctl_csv *r)
{
	struct ctl_csv back;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return;
	for (size_t i = 0; i < r->ncells; i++)
		ctl_csv_put(f, i, r->cells[i]);
	ctl_csv_end(f);
	fclose(f);
	ctl_csv_init(&back, text, len);
	/* Quoting can only grow a record past the reader's limit. */
	if (len < CTL_CSV_RECORD_MAX) {
		if (ctl_csv_next(&back, NULL) != 1 ||
		    back.ncells != r->ncells)
			__builtin_trap();
		for (size_t i = 0; i < r->ncells; i++)
			if (strcmp(back.cells[i], r->cells[i]) != 0)
				__builtin_trap();
		if (ctl_csv_next(&back, NULL) != 0)
			__builtin_trap();
	}
	ctl_csv_finish(&back);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_csv r;
	struct inbox_err err;
	size_t last_line = 0, last_pos = 0, last_row = 0;
	int rc;

	if (size > INPUT_MAX)
		return 0;
	ctl_csv_init(&r, (const char *)data, size);
	while ((rc = ctl_csv_next(&r, &err)) != 0) {
		if (r.pos <= last_pos || r.pos > size ||
		    r.rec_line < last_line || r.line < r.rec_line ||
		    r.row != last_row + 1)
			__builtin_trap();
		last_pos = r.pos;
		last_row = r.row;
		last_line = r.rec_line;
		if (rc < 0) {
			if (rc != INBOX_EINVAL || err.line != (int)r.rec_line ||
			    err.msg[0] == '\0')
				__builtin_trap();
			continue;
		}
		if (rc != 1 || r.ncells < 1 || r.ncells > CTL_CSV_CELLS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < r.ncells; i++)
			if (inbox_utf8_invalid_at(r.cells[i],
			    strlen(r.cells[i])) >= 0)
				__builtin_trap();
		round_trip(&r);
	}
	if (r.pos != size)
		__builtin_trap();
	ctl_csv_finish(&r);
	return 0;
}
