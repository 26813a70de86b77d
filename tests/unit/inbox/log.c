/* libinbox: log lines in both formats. Each line is read back from a file
 * that stands in for stderr; JSON lines must parse with cJSON and carry the
 * message intact, whatever bytes it holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "inbox/inbox.h"

/* Runs fn with stderr sent to a temporary file; returns what it wrote
 * (caller frees). */
static char *
capture(void (*fn)(void))
{
	char path[] = "/tmp/inbox-log-test-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *buf = calloc(1, 65536);
	FILE *f;

	assert_true(fd >= 0 && saved >= 0 && buf != NULL);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	fn();
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	f = fdopen(fd, "r");
	assert_non_null(f);
	rewind(f);
	buf[fread(buf, 1, 65535, f)] = '\0';
	fclose(f);
	unlink(path);
	return buf;
}

static void
emit(void)
{
	log_info("plain \"quoted\" back\\slash");
	log_warnx("two\nlines\tand a bell \a, bad utf-8 \xff\xfe end, "
	    "ok utf-8 \xc3\xa9");
	log_debug("debug with file");
	log_info("cut in the middle of a character: \xe2\x82");
}

static void
text_lines(void **state)
{
	char *out;

	(void)state;
	log_init("test-log", INBOX_LOG_DEBUG);
	log_setjson(false);
	out = capture(emit);
	assert_non_null(strstr(out, " test-log info: plain \"quoted\" "
	    "back\\slash\n"));
	assert_non_null(strstr(out, " test-log warn: two\nlines"));
	assert_non_null(strstr(out, " test-log debug: ["));
	assert_non_null(strstr(out, "inbox/log.c:"));
	free(out);
}

static void
json_lines(void **state)
{
	const char *want[] = {
		"plain \"quoted\" back\\slash",
		"two\nlines\tand a bell \a, bad utf-8 \xef\xbf\xbd\xef\xbf\xbd "
		    "end, ok utf-8 \xc3\xa9",
		"debug with file",
		"cut in the middle of a character: \xef\xbf\xbd\xef\xbf\xbd",
	};
	const char *levels[] = { "info", "warn", "debug", "info" };
	char *out, *line, *save = NULL;
	int n = 0;

	(void)state;
	log_init("test \"log\"", INBOX_LOG_DEBUG);
	log_setjson(true);
	out = capture(emit);
	log_setjson(false);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		cJSON *o = cJSON_Parse(line);
		const cJSON *t, *file;

		if (o == NULL)
			fail_msg("line %d is not JSON: %s", n, line);
		assert_true(n < 4);
		assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring,
		    want[n]);
		assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring,
		    levels[n]);
		assert_string_equal(cJSON_GetObjectItem(o, "proc")->valuestring,
		    "test \"log\"");
		t = cJSON_GetObjectItem(o, "time");
		assert_true(cJSON_IsString(t) && strlen(t->valuestring) == 24 &&
		    t->valuestring[23] == 'Z');
		file = cJSON_GetObjectItem(o, "file");
		if (n == 2) {
			assert_true(cJSON_IsString(file));
			assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o,
			    "line")));
		} else
			assert_null(file);
		cJSON_Delete(o);
	}
	assert_int_equal(n, 4);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_lines),
		cmocka_unit_test(json_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
