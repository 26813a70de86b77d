/* Unit tests of the MIME reader (connectors/imap/mime.h): the corpus in
 * tests/data/mail/ against its NAME.expect.json files, then focused tests
 * of the charset and header functions and of hostile input. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "connectors/imap/mime.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool
utf8_ok(const char *s)
{
	return s == NULL || inbox_utf8_invalid_at(s, strlen(s)) < 0;
}

/* Every string of a parsed message is valid UTF-8 and text_new is the
 * beginning of text. */
static void
check_invariants(const char *name, const struct mail_msg *m)
{
	const char *strs[] = { m->message_id, m->in_reply_to, m->from_name,
		m->from_addr, m->reply_to_addr, m->to, m->subject, m->text,
		m->text_new, m->html, m->automatic_why, m->charset_note };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (!utf8_ok(strs[i]))
			fail_msg("%s: field %zu is not valid UTF-8", name, i);
	assert_non_null(m->text);
	assert_non_null(m->text_new);
	assert_non_null(m->subject);
	assert_non_null(m->from_name);
	if (strncmp(m->text, m->text_new, strlen(m->text_new)) != 0)
		fail_msg("%s: text_new is not the start of text", name);
	assert_true(m->nattachments <= MAIL_ATTACH_MAX);
	for (size_t i = 0; i < m->nattachments; i++) {
		assert_true(utf8_ok(m->attachments[i].name));
		assert_non_null(m->attachments[i].mime);
		assert_true(m->attachments[i].size == 0 ||
		    m->attachments[i].data != NULL);
	}
	for (size_t i = 0; i < m->nreferences; i++)
		assert_true(utf8_ok(m->references[i]));
}

static const char *
first_line(const char *s, size_t *len)
{
	while (*s == '\n' || *s == ' ')
		s++;
	*len = strcspn(s, "\n");
	while (*len > 0 && s[*len - 1] == ' ')
		(*len)--;
	return s;
}

static int nfail;

#define EXPECT(cond, ...) do { \
	if (!(cond)) { \
		nfail++; \
		fprintf(stderr, "%s: ", name); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

static const char *
jstr(const cJSON *e, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool
jhas(const cJSON *e, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(e, key) != NULL;
}

static void
str_field(const char *name, const char *what, const char *got,
    const cJSON *e, const char *key)
{
	const char *want = jstr(e, key);

	if (!jhas(e, key))
		return;
	if (want == NULL)
		EXPECT(got == NULL, "%s: got \"%s\", want null", what, got);
	else
		EXPECT(got != NULL && strcmp(got, want) == 0,
		    "%s: got \"%s\", want \"%s\"", what, got ? got : "(null)", want);
}

static void
check_one(const char *dir, const char *name)
{
	char path[4096];
	char *raw, *js;
	size_t len, jlen, n;
	cJSON *e;
	struct mail_msg m;
	struct inbox_err err = { 0 };
	int rc;
	const char *want, *got;

	snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
	raw = slurp(path, &len);
	assert_non_null(raw);
	snprintf(path, sizeof(path), "%s/%s.expect.json", dir, name);
	js = slurp(path, &jlen);
	if (js == NULL)
		fail_msg("%s: no expect file", name);
	e = cJSON_Parse(js);
	if (e == NULL)
		fail_msg("%s: expect file is not JSON", name);

	rc = mail_parse(raw, len, &m, &err);
	if ((want = jstr(e, "error")) != NULL) {
		EXPECT(rc == (strcmp(want, "ETOOBIG") == 0 ? INBOX_ETOOBIG :
		    INBOX_EINVAL), "rc %d, want %s", rc, want);
		EXPECT(err.msg[0] != '\0', "error without a message");
		goto out;
	}
	EXPECT(rc == 0, "rc %d (%s)", rc, err.msg);
	if (rc != 0)
		goto out;
	check_invariants(name, &m);
	str_field(name, "from_name", m.from_name, e, "from_name");
	str_field(name, "from_addr", m.from_addr, e, "from_addr");
	str_field(name, "subject", m.subject, e, "subject");
	str_field(name, "message_id", m.message_id, e, "message_id");
	str_field(name, "in_reply_to", m.in_reply_to, e, "in_reply_to");
	str_field(name, "reply_to_addr", m.reply_to_addr, e, "reply_to_addr");

	want = jstr(e, "text_new_first_line");
	got = first_line(m.text_new, &n);
	if (cJSON_IsTrue(cJSON_GetObjectItem(e, "first_line_prefix")))
		EXPECT(n >= strlen(want) && strncmp(got, want, strlen(want)) == 0,
		    "first line of text_new does not start with \"%s\"", want);
	else
		EXPECT(n == strlen(want) && strncmp(got, want, n) == 0,
		    "first line of text_new: got \"%.*s\", want \"%s\"", (int)n,
		    got, want);
	if ((want = jstr(e, "text_contains")) != NULL)
		EXPECT(strstr(m.text, want) != NULL, "text lacks \"%s\"", want);
	if ((want = jstr(e, "text_not_contains")) != NULL)
		EXPECT(strstr(m.text, want) == NULL, "text has \"%s\"", want);
	if ((want = jstr(e, "text_new_not_contains")) != NULL)
		EXPECT(strstr(m.text_new, want) == NULL,
		    "text_new keeps the quoted \"%s\"", want);
	if ((want = jstr(e, "charset_note_contains")) != NULL)
		EXPECT(m.charset_note && strstr(m.charset_note, want),
		    "charset_note \"%s\" lacks \"%s\"",
		    m.charset_note ? m.charset_note : "(null)", want);
	if ((want = jstr(e, "automatic_why")) != NULL)
		EXPECT(m.automatic_why && strstr(m.automatic_why, want),
		    "automatic_why \"%s\" lacks \"%s\"",
		    m.automatic_why ? m.automatic_why : "(null)", want);
	EXPECT(m.automatic == cJSON_IsTrue(cJSON_GetObjectItem(e, "automatic")),
	    "automatic is %d", m.automatic);
	if (jhas(e, "html"))
		EXPECT((m.html != NULL) == cJSON_IsTrue(cJSON_GetObjectItem(e,
		    "html")), "html is %s", m.html ? "set" : "NULL");
	if (jhas(e, "date_ms"))
		EXPECT(m.date_ms == (int64_t)cJSON_GetObjectItem(e,
		    "date_ms")->valuedouble, "date_ms %lld", (long long)m.date_ms);
	if (jhas(e, "nreferences"))
		EXPECT(m.nreferences == (size_t)cJSON_GetObjectItem(e,
		    "nreferences")->valueint, "%zu references", m.nreferences);
	{
		const cJSON *atts = cJSON_GetObjectItem(e, "attachments");
		size_t i = 0;
		const cJSON *a;

		EXPECT(m.nattachments == (size_t)cJSON_GetArraySize(atts),
		    "%zu attachments, want %d", m.nattachments,
		    cJSON_GetArraySize(atts));
		cJSON_ArrayForEach(a, atts) {
			const struct mail_attachment *ma;

			if (i >= m.nattachments)
				break;
			ma = &m.attachments[i++];
			EXPECT(strcmp(ma->name, jstr(a, "name")) == 0,
			    "attachment %zu name \"%s\", want \"%s\"", i, ma->name,
			    jstr(a, "name"));
			EXPECT(strcmp(ma->mime, jstr(a, "mime")) == 0,
			    "attachment %zu type %s, want %s", i, ma->mime,
			    jstr(a, "mime"));
			if (jhas(a, "size"))
				EXPECT(ma->size == (size_t)cJSON_GetObjectItem(a,
				    "size")->valueint, "attachment %zu size %zu", i,
				    ma->size);
			EXPECT(ma->inline_part == cJSON_IsTrue(cJSON_GetObjectItem(a,
			    "inline")), "attachment %zu inline %d", i,
			    ma->inline_part);
			if (jhas(a, "content_id"))
				EXPECT(ma->content_id && strcmp(ma->content_id,
				    jstr(a, "content_id")) == 0,
				    "attachment %zu content id %s", i,
				    ma->content_id ? ma->content_id : "(null)");
		}
	}
out:
	mail_msg_finish(&m);
	cJSON_Delete(e);
	free(js);
	free(raw);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names (without .eml) of the corpus, sorted. */
static size_t
corpus_names(char ***out)
{
	DIR *d = opendir(MAIL_CORPUS);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l > 4 && strcmp(de->d_name + l - 4, ".eml") == 0) {
			names = realloc(names, (n + 1) * sizeof(*names));
			assert_non_null(names);
			names[n++] = strndup(de->d_name, l - 4);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	return n;
}

static void
corpus_messages_match_their_expectations(void **state)
{
	char **names;
	size_t n = corpus_names(&names);

	assert_true(n >= 30);
	nfail = 0;
	for (size_t i = 0; i < n; i++) {
		check_one(MAIL_CORPUS, names[i]);
		free(names[i]);
	}
	free(names);
	if (nfail > 0)
		fail_msg("%d expectations failed (listed above)", nfail);
}

/* Each corpus message cut at many lengths, and with bytes flipped, still
 * parses or is refused, never crashes, and yields valid UTF-8. */
static void
truncated_and_damaged_corpus_never_breaks_the_reader(void **state)
{
	char **names;
	size_t n = corpus_names(&names);

	for (size_t i = 0; i < n; i++) {
		char path[4096];
		size_t len;
		char *raw;

		snprintf(path, sizeof(path), "%s/%s.eml", MAIL_CORPUS, names[i]);
		raw = slurp(path, &len);
		for (size_t cut = 0; cut <= len && cut < 20000;
		    cut += 1 + cut / 8) {
			struct mail_msg m;

			if (mail_parse(raw, cut, &m, NULL) == 0)
				check_invariants(names[i], &m);
			mail_msg_finish(&m);
		}
		for (size_t k = 7; k < len && k < 20000; k += 97) {
			struct mail_msg m;

			raw[k] = (char)(raw[k] ^ 0xa5);
			if (mail_parse(raw, len, &m, NULL) == 0)
				check_invariants(names[i], &m);
			mail_msg_finish(&m);
		}
		free(raw);
		free(names[i]);
	}
	free(names);
}

static void
to_utf8_converts_each_charset(void **state)
{
	static const struct {
		const char *cs, *in, *out;
	} cases[] = {
		{ "koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет" },
		{ "KOI8-R", "\xe1\xc2\xd7", "Абв" },
		{ "windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2 \xb8", "Привет ё" },
		{ "cp1251", "\xc0\xe1\xe2", "Абв" },
		{ "iso-8859-5", "\xbf\xe0\xd8\xd2\xd5\xe2", "Привет" },
		{ "ISO-8859-1", "caf\xe9 \xfc", "café ü" },
		{ "latin1", "\x80 \xe9", "€ é" },
		{ "utf-8", "Привет", "Привет" },
		{ "UTF8", "日本", "日本" },
		{ "us-ascii", "plain", "plain" },
		{ "\"utf-8\"", "ok", "ok" },
		{ "iso-8859-2", "\xb3\xf3" "d\xbc", "łódź" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *note = "unset";
		char *s = mail_to_utf8(cases[i].cs, cases[i].in,
		    strlen(cases[i].in), &note);

		if (strcmp(s, cases[i].out) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].cs, s,
			    cases[i].out);
		assert_null(note);
		free(s);
	}
}

static void
to_utf8_falls_back_for_unknown_and_lying_charsets(void **state)
{
	const char *note = NULL;
	char *s;

	/* labelled UTF-8, bytes windows-1251 */
	s = mail_to_utf8("utf-8", "\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0", 11,
	    &note);
	assert_string_equal(s, "Привет, мир");
	assert_non_null(note);
	assert_non_null(strstr(note, "windows-1251"));
	free(s);
	/* labelled UTF-8, bytes KOI8-R (lowercase in 0xc0-0xdf) */
	s = mail_to_utf8("utf-8", "\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2", 10,
	    &note);
	assert_string_equal(s, "Привет мир");
	assert_non_null(strstr(note, "koi8-r"));
	free(s);
	/* labelled UTF-8, Latin-1 accents here and there */
	s = mail_to_utf8("utf-8", "caf\xe9 cr\xe8me", 10, &note);
	assert_string_equal(s, "café crème");
	assert_non_null(strstr(note, "iso-8859-1"));
	free(s);
	/* an unknown label */
	s = mail_to_utf8("x-klingon", "\xc0\xe1\xe2\xe3", 4, &note);
	assert_string_equal(s, "Абвг");
	assert_non_null(strstr(note, "unknown"));
	free(s);
	/* an unknown label on UTF-8 bytes */
	s = mail_to_utf8("x-klingon", "Ёж", strlen("Ёж"), &note);
	assert_string_equal(s, "Ёж");
	assert_non_null(strstr(note, "utf-8"));
	free(s);
	/* no label, ASCII: nothing to say */
	s = mail_to_utf8(NULL, "hello", 5, &note);
	assert_string_equal(s, "hello");
	assert_null(note);
	free(s);
	/* a legacy label on UTF-8 bytes */
	s = mail_to_utf8("windows-1251", "Привет", strlen("Привет"), &note);
	assert_string_equal(s, "Привет");
	assert_non_null(note);
	free(s);
	/* NUL and broken sequences in a multibyte charset become U+FFFD */
	s = mail_to_utf8("shift_jis", "a\x00" "b\x82", 4, &note);
	assert_true(inbox_utf8_invalid_at(s, strlen(s)) < 0);
	assert_non_null(strstr(s, "\xef\xbf\xbd"));
	assert_non_null(note);
	free(s);
	/* NULL and empty input */
	s = mail_to_utf8("utf-8", NULL, 10, NULL);
	assert_string_equal(s, "");
	free(s);
	s = mail_to_utf8(NULL, "", 0, NULL);
	assert_string_equal(s, "");
	free(s);
	/* a label that is not a label */
	s = mail_to_utf8("\xff\xfe;;\"", "x\xe9", 2, NULL);
	assert_true(inbox_utf8_invalid_at(s, strlen(s)) < 0);
	free(s);
}

static void
decode_header_reads_encoded_words(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "=?UTF-8?B?0J/RgNC40LLQtdGC?=", "Привет" },
		{ "=?utf-8?q?=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82_=D0=BC=D0=B8=D1=80?=",
		  "Привет мир" },
		/* split in the middle of a character, folded */
		{ "=?UTF-8?B?0J/R?=\r\n =?UTF-8?B?gNC4?=", "При" },
		/* whitespace between encoded words goes, around them stays */
		{ "Re: =?koi8-r?B?8NLJ18XU?= =?koi8-r?B?IM3J0g==?= !", "Re: Привет мир !" },
		/* mixed charsets */
		{ "=?windows-1251?B?z/Do4uXy?= =?iso-8859-1?Q?caf=E9?=", "Приветcafé" },
		{ "=?UTF-8*ru?B?0JDQsQ==?=", "Аб" },
		{ "plain ASCII", "plain ASCII" },
		{ "", "" },
		/* malformed words stay as they are */
		{ "=?utf-8?B?", "=?utf-8?B?" },
		{ "=?utf-8?X?abc?=", "=?utf-8?X?abc?=" },
		{ "a =?utf-8?Q?b", "a =?utf-8?Q?b" },
		{ "=??B?YQ==?=", "=??B?YQ==?=" },
		/* unknown charset inside a word */
		{ "=?x-unknown?B?z/Do4uXy?=", "Привет" },
		/* raw UTF-8 and raw windows-1251 */
		{ "Заказ", "Заказ" },
		{ "\xc7\xe0\xea\xe0\xe7", "Заказ" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = mail_decode_header(cases[i].in);

		if (strcmp(s, cases[i].out) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, s,
			    cases[i].out);
		free(s);
	}
	{
		char *s = mail_decode_header(NULL);

		assert_string_equal(s, "");
		free(s);
	}
}

static void
encode_header_round_trips_through_decode(void **state)
{
	static const char *const cases[] = {
		"Re: Заказ № 10482 — когда доставка? Очень длинная тема письма, "
		"которая не помещается в одну строку заголовка",
		"😀🎉 emoji at the start, ёлки-палки",
		"Subject\r\nBcc: injected@example.com",
		"=?utf-8?B?looks encoded?=",
		"ü",
	};
	char *s = mail_encode_header("Plain ASCII subject");

	assert_string_equal(s, "Plain ASCII subject");
	free(s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *enc = mail_encode_header(cases[i]);
		char *dec = mail_decode_header(enc);
		const char *line = enc;

		/* no raw CR/LF except folding, every line within 76 columns */
		while (*line) {
			size_t l = strcspn(line, "\r");

			assert_true(l <= 76);
			for (size_t k = 0; k < l; k++)
				assert_true((unsigned char)line[k] >= 0x20 &&
				    (unsigned char)line[k] < 0x7f);
			line += l;
			if (*line == '\r') {
				assert_memory_equal(line, "\r\n ", 3);
				line += 2;
			}
		}
		if (strcmp(dec, cases[i]) != 0)
			fail_msg("case %zu: \"%s\" came back as \"%s\"", i, cases[i],
			    dec);
		free(enc);
		free(dec);
	}
	s = mail_encode_header(NULL);
	assert_string_equal(s, "");
	free(s);
}

static void
parse(const char *raw, size_t len, int want)
{
	struct mail_msg m;
	struct inbox_err err = { 0 };
	int rc = mail_parse(raw, len, &m, &err);

	if (rc != want)
		fail_msg("rc %d (%s), want %d", rc, err.msg, want);
	if (rc == 0)
		check_invariants("generated", &m);
	else
		assert_true(err.msg[0] != '\0');
	mail_msg_finish(&m);
}

static void
invalid_input_is_refused_not_crashed_on(void **state)
{
	static const char bin[] = "\x00\x01\x02\xff\xfe garbage\n\n\x80";
	struct mail_msg m;

	parse(NULL, 0, INBOX_EINVAL);
	parse("", 0, INBOX_EINVAL);
	parse(bin, sizeof(bin) - 1, INBOX_EINVAL);
	parse("no colon here\n\nbody\n", 20, INBOX_EINVAL);
	parse("{\"json\": true}\n", 15, INBOX_EINVAL);
	/* headers only, no body, no empty line */
	parse("From: a@b.example\nSubject: x", 28, 0);
	/* a header block of one unfinished line */
	parse("Subject:", 8, 0);
	/* mail_msg_finish twice and on a zeroed struct */
	memset(&m, 0, sizeof(m));
	mail_msg_finish(&m);
	mail_msg_finish(&m);
	mail_msg_finish(NULL);
}

static char *
nested(int depth, size_t *len)
{
	size_t cap = (size_t)depth * 200 + 256, n = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	n += (size_t)snprintf(s + n, cap - n, "From: a@b.example\r\nSubject: deep\r\n");
	for (int i = 0; i < depth; i++)
		n += (size_t)snprintf(s + n, cap - n,
		    "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n",
		    i, i);
	n += (size_t)snprintf(s + n, cap - n, "Content-Type: text/plain\r\n\r\nhi\r\n");
	for (int i = depth - 1; i >= 0; i--)
		n += (size_t)snprintf(s + n, cap - n, "--b%d--\r\n", i);
	*len = n;
	return s;
}

static char *
many_parts(int parts, size_t *len)
{
	size_t cap = (size_t)parts * 64 + 256, n = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	n += (size_t)snprintf(s + n, cap - n, "From: a@b.example\n"
	    "Content-Type: multipart/mixed; boundary=x\n\n");
	for (int i = 0; i < parts; i++)
		n += (size_t)snprintf(s + n, cap - n,
		    "--x\nContent-Type: image/png\n\n%d\n", i);
	n += (size_t)snprintf(s + n, cap - n, "--x--\n");
	*len = n;
	return s;
}

static void
too_deep_or_too_many_parts_is_etoobig(void **state)
{
	size_t len;
	char *s;

	s = nested(10, &len);
	parse(s, len, 0);
	free(s);
	s = nested(40, &len);
	parse(s, len, INBOX_ETOOBIG);
	free(s);
	s = nested(5000, &len);         /* refused before libetpan recurses */
	parse(s, len, INBOX_ETOOBIG);
	free(s);
	s = many_parts(700, &len);
	parse(s, len, INBOX_ETOOBIG);
	free(s);
	/* 150 parts: read, attachments capped at MAIL_ATTACH_MAX */
	s = many_parts(150, &len);
	{
		struct mail_msg m;

		assert_int_equal(mail_parse(s, len, &m, NULL), 0);
		assert_int_equal(m.nattachments, MAIL_ATTACH_MAX);
		assert_non_null(m.charset_note);
		mail_msg_finish(&m);
	}
	free(s);
}

static void
attachment_bytes_are_decoded(void **state)
{
	char *raw;
	size_t len;
	struct mail_msg m;

	raw = slurp(MAIL_CORPUS "/09-rfc2231-cyrillic-filename.eml", &len);
	assert_non_null(raw);
	assert_int_equal(mail_parse(raw, len, &m, NULL), 0);
	assert_int_equal(m.nattachments, 1);
	assert_memory_equal(m.attachments[0].data, "PK\x03\x04", 4);
	mail_msg_finish(&m);
	free(raw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(corpus_messages_match_their_expectations),
		cmocka_unit_test(truncated_and_damaged_corpus_never_breaks_the_reader),
		cmocka_unit_test(to_utf8_converts_each_charset),
		cmocka_unit_test(to_utf8_falls_back_for_unknown_and_lying_charsets),
		cmocka_unit_test(decode_header_reads_encoded_words),
		cmocka_unit_test(encode_header_round_trips_through_decode),
		cmocka_unit_test(invalid_input_is_refused_not_crashed_on),
		cmocka_unit_test(too_deep_or_too_many_parts_is_etoobig),
		cmocka_unit_test(attachment_bytes_are_decoded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
