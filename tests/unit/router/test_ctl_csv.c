/* inboxctl's CSV (router/ctl_csv.c): RFC 4180 records, every broken record
 * rejected with its line and reason while the next ones still read, and a
 * writer whose output reads back to the same cells. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/ctl_csv.h"

/* Reads every record of buf[0..len) and describes them, one a line:
 * "L<line>R<row>:cell|cell" or "L<line>R<row>!reason". */
static char *
describe_n(const char *buf, size_t len)
{
	struct ctl_csv r;
	struct inbox_err err;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	int rc;

	assert_non_null(f);
	ctl_csv_init(&r, buf, len);
	while ((rc = ctl_csv_next(&r, &err)) != 0) {
		fprintf(f, "L%zuR%zu", r.rec_line, r.row);
		if (rc < 0) {
			assert_int_equal(rc, INBOX_EINVAL);
			assert_int_equal(err.line, (int)r.rec_line);
			fprintf(f, "!%s\n", err.msg);
			continue;
		}
		fputc(':', f);
		for (size_t i = 0; i < r.ncells; i++)
			fprintf(f, "%s%s", i ? "|" : "", r.cells[i]);
		fputc('\n', f);
	}
	ctl_csv_finish(&r);
	fclose(f);
	return out;
}

static char *
describe(const char *s)
{
	return describe_n(s, strlen(s));
}

static void
expect(const char *input, const char *want)
{
	char *got = describe(input);

	assert_string_equal(got, want);
	free(got);
}

/* got contains part (for long reasons). */
static void
expect_in(const char *got, const char *part)
{
	if (got == NULL || strstr(got, part) == NULL)
		fail_msg("'%.300s' lacks '%s'", got ? got : "(null)", part);
}

static void
records_end_with_crlf_lf_or_cr(void **state)
{
	(void)state;
	expect("a,b\r\nc,d\ne,f", "L1R1:a|b\nL2R2:c|d\nL3R3:e|f\n");
	expect("a,b\rc,d\r", "L1R1:a|b\nL2R2:c|d\n");
	expect("", "");
}

static void
quoted_cells_hold_commas_quotes_and_line_breaks(void **state)
{
	(void)state;
	expect("\"x, y\",\"he said \"\"hi\"\"\",\"two\r\nlines\"\nnext,row\n",
	    "L1R1:x, y|he said \"hi\"|two\r\nlines\nL3R2:next|row\n");
	expect("\"\",\"\"\"\"\n", "L1R1:|\"\n");
	expect("\" lead\",\"trail \"\n", "L1R1: lead|trail \n");
}

static void
bom_blank_lines_and_empty_cells(void **state)
{
	(void)state;
	expect("\xef\xbb\xbfname,email\n\n\r\nAnn,\n,\n", "L1R1:name|email\n"
	    "L4R2:Ann|\nL5R3:|\n");
	/* A BOM elsewhere is data. */
	expect("a\n\xef\xbb\xbf" "b\n", "L1R1:a\nL2R2:\xef\xbb\xbf" "b\n");
}

static void
utf8_is_kept_as_is(void **state)
{
	(void)state;
	expect("Анна Петрова,\"Иванов, Пётр\"\n",
	    "L1R1:Анна Петрова|Иванов, Пётр\n");
}

static void
an_unclosed_quote_loses_only_its_line(void **state)
{
	char *got;

	(void)state;
	got = describe("a,b\n\"broken,x\nc,d\n");
	expect_in(got, "L2R2!unbalanced quotes: the quoted cell 1 never closes");
	expect_in(got, "L3R3:c|d\n");
	assert_true(strncmp(got, "L1R1:a|b\n", 9) == 0);
	free(got);
}

static void
broken_quoting_is_rejected_and_reading_goes_on(void **state)
{
	(void)state;
	expect("\"a\"b,c\nd,e\n", "L1R1!text after the closing quote of "
	    "cell 1\nL2R2:d|e\n");
	expect("x,ab\"c,d\ne,f\n", "L1R1!a quote inside unquoted cell 2 "
	    "(quote the whole cell and double its quotes)\nL2R2:e|f\n");
	/* After a quoted line break, the error line is the record's first. */
	expect("\"a\nb\"x\nc\n", "L1R1!text after the closing quote of "
	    "cell 1\nL3R2:c\n");
}

static void
invalid_utf8_and_nul_bytes_are_rejected(void **state)
{
	char *got;

	(void)state;
	expect("ok,\xff\nb,c\n", "L1R1!invalid UTF-8 in cell 2 (at byte 1)\n"
	    "L2R2:b|c\n");
	expect("\"\xc3\",x\n", "L1R1!invalid UTF-8 in cell 1 (at byte 1)\n");
	got = describe_n("a\0b,c\nd\n", 8);
	assert_string_equal(got, "L1R1!a NUL byte in cell 1\nL2R2:d\n");
	free(got);
}

static void
too_many_cells_and_too_long_records_are_rejected(void **state)
{
	size_t n = 2 * CTL_CSV_CELLS_MAX + 16, big = CTL_CSV_RECORD_MAX + 10;
	char *s = malloc(n + 8), *got;
	char *l = malloc(big + 16);
	size_t k = 0;

	(void)state;
	for (int i = 0; i <= CTL_CSV_CELLS_MAX; i++) {
		s[k++] = 'x';
		s[k++] = ',';
	}
	s[k - 1] = '\n';
	memcpy(s + k, "ok\n", 4);
	got = describe(s);
	assert_string_equal(got, "L1R1!more than 256 cells\nL2R2:ok\n");
	free(got);

	/* exactly the limit reads */
	memset(s, ',', CTL_CSV_CELLS_MAX - 1);
	s[CTL_CSV_CELLS_MAX - 1] = '\0';
	{
		struct ctl_csv r;

		ctl_csv_init(&r, s, strlen(s));
		assert_int_equal(ctl_csv_next(&r, NULL), 1);
		assert_int_equal(r.ncells, CTL_CSV_CELLS_MAX);
		ctl_csv_finish(&r);
	}

	memset(l, 'a', big);
	memcpy(l + big, "\nok\n", 5);
	got = describe(l);
	expect_in(got, "L1R1!record too long (the limit is 65536 bytes)\n");
	expect_in(got, "L2R2:ok\n");
	free(got);

	/* A quote that never closes within the limit: its line only. */
	l[0] = '"';
	l[100] = '\n';
	got = describe(l);
	expect_in(got, "L1R1!record too long");
	expect_in(got, "L2R2:");
	expect_in(got, "L3R3:ok\n");
	free(got);
	free(l);
	free(s);
}

static char *
write_cells(const char *const *cells, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		ctl_csv_put(f, i, cells[i]);
	ctl_csv_end(f);
	fclose(f);
	return out;
}

static void
the_writer_quotes_what_needs_it(void **state)
{
	const char *cells[] = { "plain", "a,b", "say \"hi\"", "two\nlines",
	    " lead", "trail ", NULL, "", "Ёжик" };
	const char *empty[] = { "" };
	char *got;

	(void)state;
	got = write_cells(cells, sizeof(cells) / sizeof(cells[0]));
	assert_string_equal(got, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\","
	    "\" lead\",\"trail \",,,Ёжик\r\n");
	free(got);
	got = write_cells(empty, 1);
	assert_string_equal(got, "\"\"\r\n");
	free(got);
}

static void
written_records_read_back_the_same(void **state)
{
	const char *cells[] = { "Иван \"Ваня\" Петров", "a,b,,c", "x\r\ny",
	    "  ", "=1+2", "", "\t" };
	size_t n = sizeof(cells) / sizeof(cells[0]);
	char *text = write_cells(cells, n);
	struct ctl_csv r;

	(void)state;
	ctl_csv_init(&r, text, strlen(text));
	assert_int_equal(ctl_csv_next(&r, NULL), 1);
	assert_int_equal(r.ncells, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(r.cells[i], cells[i]);
	assert_int_equal(ctl_csv_next(&r, NULL), 0);
	ctl_csv_finish(&r);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_end_with_crlf_lf_or_cr),
		cmocka_unit_test(quoted_cells_hold_commas_quotes_and_line_breaks),
		cmocka_unit_test(bom_blank_lines_and_empty_cells),
		cmocka_unit_test(utf8_is_kept_as_is),
		cmocka_unit_test(an_unclosed_quote_loses_only_its_line),
		cmocka_unit_test(broken_quoting_is_rejected_and_reading_goes_on),
		cmocka_unit_test(invalid_utf8_and_nul_bytes_are_rejected),
		cmocka_unit_test(too_many_cells_and_too_long_records_are_rejected),
		cmocka_unit_test(the_writer_quotes_what_needs_it),
		cmocka_unit_test(written_records_read_back_the_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
