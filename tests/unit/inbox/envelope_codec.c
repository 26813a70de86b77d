/* libinbox: the envelope codec accepts every valid form and rejects each
 * kind of bad input with the field named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "inbox/inbox.h"

#define MINIMAL "{\"v\":1,\"connector\":\"api1\",\"channel\":\"api\"," \
	"\"kind\":\"message\",\"external_id\":\"m1\",\"ts\":1790000000000," \
	"\"contact\":{\"external_id\":\"c1\",\"name\":\"Ann\"}," \
	"\"thread\":\"t1\",\"text\":\"hello\"}"

/* The minimal envelope with field `path` (a.b for contact fields) set to
 * the raw JSON `value`, or removed when value is NULL. */
static char *
with(const char *path, const char *value)
{
	cJSON *root = cJSON_Parse(MINIMAL), *obj = root, *v;
	const char *dot = strchr(path, '.');
	char key[64];
	char *s;

	if (dot != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		obj = cJSON_GetObjectItem(root, key);
		path = dot + 1;
	}
	cJSON_DeleteItemFromObject(obj, path);
	if (value != NULL) {
		v = cJSON_Parse(value);
		assert_non_null(v);
		cJSON_AddItemToObject(obj, path, v);
	}
	s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}

static void
expect_error(const char *json, size_t len, const char *field,
    const char *msg_part)
{
	struct inbox_envelope env;
	struct inbox_err err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(inbox_envelope_decode(&env, json, len, &err),
	    INBOX_EINVAL);
	assert_int_equal(err.code, INBOX_EINVAL);
	assert_string_equal(err.field, field);
	if (strstr(err.msg, msg_part) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, msg_part);
	assert_null(env.json);
}

static void
expect_field_error(const char *path, const char *value, const char *field,
    const char *msg_part)
{
	char *s = with(path, value);

	expect_error(s, strlen(s), field, msg_part);
	free(s);
}

static void
minimal_envelope_decodes_with_every_field(void **state)
{
	struct inbox_envelope env;
	struct inbox_err err;

	(void)state;
	assert_int_equal(inbox_envelope_decode(&env, MINIMAL, strlen(MINIMAL),
	    &err), 0);
	assert_int_equal(env.v, 1);
	assert_string_equal(env.connector, "api1");
	assert_int_equal(env.channel, INBOX_CH_API);
	assert_int_equal(env.kind, INBOX_KIND_MESSAGE);
	assert_string_equal(env.external_id, "m1");
	assert_true(env.ts == 1790000000000LL);
	assert_string_equal(env.contact.external_id, "c1");
	assert_string_equal(env.contact.name, "Ann");
	assert_null(env.contact.email);
	assert_string_equal(env.thread, "t1");
	assert_string_equal(env.text, "hello");
	assert_null(env.subject);
	assert_null(env.html);
	inbox_envelope_finish(&env);
}

static void
optional_and_unknown_fields_are_kept(void **state)
{
	const char *json = "{\"v\":1,\"connector\":\"mail.box-1\","
	    "\"channel\":\"email\",\"kind\":\"edit\",\"external_id\":\"<a@b>\","
	    "\"ts\":1,\"contact\":{\"external_id\":\"ann@example.com\","
	    "\"name\":\"\",\"email\":\"ann@example.com\",\"phone\":\"+1\","
	    "\"username\":\"ann\"},\"thread\":\"<root@b>\",\"text\":\"\","
	    "\"subject\":\"Re: order \\u00e9\",\"html\":\"<p>x</p>\","
	    "\"attachments\":[{\"name\":\"a.pdf\",\"mime\":\"application/pdf\","
	    "\"size\":10,\"url\":\"http://x/a\"}],\"reply_to\":\"<p@b>\","
	    "\"raw_ref\":\"imap:1\",\"x_custom\":{\"deep\":[1,2]}}";
	struct inbox_envelope env, again;
	struct inbox_err err;
	size_t len;
	char *out;

	(void)state;
	assert_int_equal(inbox_envelope_decode(&env, json, strlen(json), &err),
	    0);
	assert_int_equal(env.channel, INBOX_CH_EMAIL);
	assert_int_equal(env.kind, INBOX_KIND_EDIT);
	assert_string_equal(env.contact.email, "ann@example.com");
	assert_string_equal(env.contact.phone, "+1");
	assert_string_equal(env.contact.username, "ann");
	assert_string_equal(env.subject, "Re: order \xc3\xa9");
	assert_string_equal(env.html, "<p>x</p>");
	assert_string_equal(env.reply_to, "<p@b>");
	assert_string_equal(env.raw_ref, "imap:1");
	out = inbox_envelope_encode(&env, &len);
	assert_int_equal(len, strlen(out));
	assert_non_null(strstr(out, "\"x_custom\":{\"deep\":[1,2]}"));
	assert_int_equal(inbox_envelope_decode(&again, out, len, &err), 0);
	assert_string_equal(again.subject, env.subject);
	inbox_envelope_finish(&again);
	free(out);
	inbox_envelope_finish(&env);
	inbox_envelope_finish(NULL);
}

static void
every_channel_and_kind_is_accepted(void **state)
{
	static const char *const kinds[] = { "message", "status", "edit" };
	struct inbox_envelope env;
	struct inbox_err err;

	(void)state;
	for (int ch = 0; ch < INBOX_CH__COUNT; ch++) {
		char v[32];
		char *s;
		enum inbox_channel back;

		snprintf(v, sizeof(v), "\"%s\"", inbox_channel_name(ch));
		s = with("channel", v);
		assert_int_equal(inbox_envelope_decode(&env, s, strlen(s), &err),
		    0);
		assert_int_equal(env.channel, ch);
		assert_int_equal(inbox_channel_parse(inbox_channel_name(ch),
		    &back), 0);
		assert_int_equal(back, ch);
		inbox_envelope_finish(&env);
		free(s);
	}
	for (int k = 0; k < 3; k++) {
		char v[32];
		char *s;

		snprintf(v, sizeof(v), "\"%s\"", kinds[k]);
		s = with("kind", v);
		assert_int_equal(inbox_envelope_decode(&env, s, strlen(s), &err),
		    0);
		assert_int_equal(env.kind, k);
		assert_string_equal(inbox_kind_name(env.kind), kinds[k]);
		inbox_envelope_finish(&env);
		free(s);
	}
}

static char *
quoted_run(char c, size_t n)
{
	char *s = malloc(n + 3);

	s[0] = '"';
	memset(s + 1, c, n);
	s[n + 1] = '"';
	s[n + 2] = '\0';
	return s;
}

static void
lengths_at_the_limits_pass_and_one_more_fails(void **state)
{
	struct { const char *path; size_t max; } lim[] = {
		{ "external_id", 400 }, { "thread", 400 },
		{ "contact.external_id", 400 }, { "contact.name", 256 },
		{ "contact.email", 320 }, { "contact.phone", 64 },
		{ "subject", 1000 }, { "text", 1u << 20 },
	};
	struct inbox_envelope env;
	struct inbox_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		char *v = quoted_run('a', lim[i].max), *s = with(lim[i].path, v);
		char want[96];

		assert_int_equal(inbox_envelope_decode(&env, s, strlen(s), &err),
		    0);
		inbox_envelope_finish(&env);
		free(s);
		free(v);
		v = quoted_run('a', lim[i].max + 1);
		snprintf(want, sizeof(want), "too long (%zu bytes, at most %zu)",
		    lim[i].max + 1, lim[i].max);
		expect_field_error(lim[i].path, v, lim[i].path, want);
		free(v);
	}
	/* a 64-byte connector id passes, 65 fails */
	{
		char *v = quoted_run('c', 64), *s = with("connector", v);

		assert_int_equal(inbox_envelope_decode(&env, s, strlen(s), &err),
		    0);
		inbox_envelope_finish(&env);
		free(s);
		free(v);
		v = quoted_run('c', 65);
		expect_field_error("connector", v, "connector", "too long");
		free(v);
	}
}

static void
each_missing_required_field_is_named(void **state)
{
	static const char *const required[] = {
		"v", "connector", "channel", "kind", "external_id", "ts",
		"contact", "contact.external_id", "contact.name", "thread", "text",
	};
	char want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		snprintf(want, sizeof(want), "%s: missing", required[i]);
		expect_field_error(required[i], NULL, required[i], want);
	}
	/* null counts as missing */
	expect_field_error("thread", "null", "thread", "thread: missing");
}

static void
wrong_types_and_values_are_named(void **state)
{
	(void)state;
	expect_field_error("ts", "\"abc\"", "ts", "wrong type (expected integer)");
	expect_field_error("ts", "0", "ts", "out of range");
	expect_field_error("ts", "-5", "ts", "out of range");
	expect_field_error("ts", "1.5", "ts", "not an integer");
	expect_field_error("ts", "9007199254740993000", "ts", "out of range");
	expect_field_error("v", "2", "v", "unsupported version 2");
	expect_field_error("v", "\"1\"", "v", "wrong type");
	expect_field_error("text", "5", "text", "wrong type (expected string)");
	expect_field_error("contact", "\"ann\"", "contact",
	    "wrong type (expected object)");
	expect_field_error("contact.name", "[]", "contact.name", "wrong type");
	expect_field_error("channel", "\"fax\"", "channel", "unknown channel");
	expect_field_error("kind", "\"poke\"", "kind", "unknown kind");
	expect_field_error("connector", "\"a b\"", "connector", "invalid id");
	expect_field_error("connector", "\"\"", "connector", "empty");
	expect_field_error("external_id", "\"\"", "external_id", "empty");
	expect_field_error("attachments", "{}", "attachments",
	    "expected array");
	expect_field_error("attachments", "[1]", "attachments[0]",
	    "expected object");
	expect_field_error("attachments", "[{\"name\":3}]", "attachments[0].name",
	    "expected string");
	{
		char big[1200] = "[";

		for (int i = 0; i < 101; i++)
			strcat(big, i ? ",{}" : "{}");
		strcat(big, "]");
		expect_field_error("attachments", big, "attachments",
		    "too many (101, at most 100)");
	}
}

static void
invalid_json_and_non_objects_are_rejected(void **state)
{
	(void)state;
	expect_error("{\"v\":1,", 7, "", "invalid JSON at byte");
	expect_error(MINIMAL " x", strlen(MINIMAL) + 2, "", "trailing data");
	expect_error("[1,2]", 5, "", "not a JSON object");
	expect_error("", 0, "", "invalid JSON");
	/* length is respected: the tail after len is not read */
	expect_error(MINIMAL, strlen(MINIMAL) - 1, "", "invalid JSON");
	/* nesting is bounded (and brackets inside strings do not count) */
	{
		char deep[2000], ok[2000];
		size_t n;

		n = (size_t)snprintf(deep, sizeof(deep), "%.*s", (int)strlen(
		    MINIMAL) - 1, MINIMAL);
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, ",\"x\":");
		memcpy(ok, deep, n);
		for (int i = 0; i < 64; i++)
			deep[n + (size_t)i] = '[';
		for (int i = 0; i < 64; i++)
			deep[n + 64 + (size_t)i] = ']';
		snprintf(deep + n + 128, sizeof(deep) - n - 128, "}");
		expect_error(deep, strlen(deep), "", "nested deeper than 64");
		/* 63 levels inside the object: accepted */
		for (int i = 0; i < 63; i++)
			ok[n + (size_t)i] = '[';
		for (int i = 0; i < 63; i++)
			ok[n + 63 + (size_t)i] = ']';
		snprintf(ok + n + 126, sizeof(ok) - n - 126, ",\"y\":\"[[[[\"}");
		{
			struct inbox_envelope env;
			struct inbox_err err;

			assert_int_equal(inbox_envelope_decode(&env, ok, strlen(ok),
			    &err), 0);
			inbox_envelope_finish(&env);
		}
	}
}

static void
invalid_utf8_is_named_by_field_and_byte(void **state)
{
	static const char *const bad[] = {
		"\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80",
		"\xff",
	};
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* splice the raw bytes in place of a placeholder */
		s = with("text", "\"PLACEHOLDER\"");
		{
			char *p = strstr(s, "PLACEHOLDER"), buf[512];

			snprintf(buf, sizeof(buf), "%.*sok %s%s", (int)(p - s), s,
			    bad[i], p + strlen("PLACEHOLDER"));
			expect_error(buf, strlen(buf), "text",
			    "text: invalid UTF-8 at byte 3");
		}
		free(s);
	}
	s = with("contact.name", "\"PLACEHOLDER\"");
	{
		char *p = strstr(s, "PLACEHOLDER"), buf[512];

		snprintf(buf, sizeof(buf), "%.*s\xc3%s", (int)(p - s), s,
		    p + strlen("PLACEHOLDER"));
		expect_error(buf, strlen(buf), "contact.name",
		    "invalid UTF-8 at byte 0");
	}
	free(s);
}

static void
utf8_checker_finds_the_first_bad_byte(void **state)
{
	(void)state;
	assert_int_equal(inbox_utf8_invalid_at("abc", 3), -1);
	assert_int_equal(inbox_utf8_invalid_at("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
	    "\x80", 9), -1);
	assert_int_equal(inbox_utf8_invalid_at("ab\xc0\x80", 4), 2);
	assert_int_equal(inbox_utf8_invalid_at("\xed\xa0\x80", 3), 0);
	assert_int_equal(inbox_utf8_invalid_at("x\xe2\x82", 3), 1);
	assert_int_equal(inbox_utf8_invalid_at("\xf4\x90\x80\x80", 4), 0);
	assert_int_equal(inbox_utf8_invalid_at("\xf4\x8f\xbf\xbf", 4), -1);
	assert_int_equal(inbox_utf8_invalid_at("\x80", 1), 0);
	assert_int_equal(inbox_utf8_invalid_at("", 0), -1);
}

static void
small_helpers_answer_as_documented(void **state)
{
	enum inbox_channel ch;
	struct inbox_err err;
	char hex[9];
	void *j;

	(void)state;
	assert_true(inbox_connector_id_valid("a.b_c-9"));
	assert_false(inbox_connector_id_valid(""));
	assert_false(inbox_connector_id_valid("a/b"));
	assert_int_equal(inbox_channel_parse("pigeon", &ch), INBOX_EINVAL);
	assert_string_equal(inbox_strerror(INBOX_ENOTFOUND), "not found");
	assert_string_equal(inbox_strerror(INBOX_EUNAVAIL),
	    "service unavailable");
	assert_string_equal(inbox_strerror(12345), "unknown error");
	inbox_hex(hex, (const unsigned char *)"\x01\xab\xff\x10", 4);
	assert_string_equal(hex, "01abff10");
	j = inbox_json_parse(" {\"a\":1}\n", 9, &err);
	assert_non_null(j);
	cJSON_Delete(j);
	assert_null(inbox_json_parse("{} {}", 5, &err));
	assert_non_null(strstr(err.msg, "trailing data at byte 3"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_envelope_decodes_with_every_field),
		cmocka_unit_test(optional_and_unknown_fields_are_kept),
		cmocka_unit_test(every_channel_and_kind_is_accepted),
		cmocka_unit_test(lengths_at_the_limits_pass_and_one_more_fails),
		cmocka_unit_test(each_missing_required_field_is_named),
		cmocka_unit_test(wrong_types_and_values_are_named),
		cmocka_unit_test(invalid_json_and_non_objects_are_rejected),
		cmocka_unit_test(invalid_utf8_is_named_by_field_and_byte),
		cmocka_unit_test(utf8_checker_finds_the_first_bad_byte),
		cmocka_unit_test(small_helpers_answer_as_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
