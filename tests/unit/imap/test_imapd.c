/*
 * inbox-imap's own parts against real files in a temporary directory:
 * checkpoints (durable, damaged files refused), threads carried in our
 * Message-IDs, the reply message (headers, RFC 2047, quoted-printable,
 * no header injection), content-addressed attachment blobs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "connectors/imap/imap_int.h"

static char dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/inboxd-imapd-XXXXXX");
	if (mkdtemp(dir) == NULL || sodium_init() < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
checkpoints_survive_a_reload_and_damage_is_refused(void **state)
{
	struct imap_state st;
	char path[128];
	struct imap_checkpoint *cp;

	snprintf(path, sizeof(path), "%s/cp.state", dir);
	assert_int_equal(imap_state_load(&st, path), 0);   /* missing: empty */
	assert_null(imap_state_get(&st, "INBOX"));
	assert_int_equal(imap_state_set(&st, "INBOX", 7, 41), 0);
	assert_int_equal(imap_state_set(&st, "Support/Отдел", 9, 3), 0);
	assert_int_equal(imap_state_set(&st, "INBOX", 7, 42), 0);
	assert_int_equal(imap_state_set(&st, "bad\tname", 1, 1), INBOX_EINVAL);
	imap_state_finish(&st);

	assert_int_equal(imap_state_load(&st, path), 0);
	cp = imap_state_get(&st, "INBOX");
	assert_non_null(cp);
	assert_int_equal(cp->uidvalidity, 7);
	assert_int_equal(cp->last_uid, 42);
	cp = imap_state_get(&st, "Support/Отдел");
	assert_non_null(cp);
	assert_int_equal(cp->last_uid, 3);
	imap_state_finish(&st);

	write_file(path, "INBOX\t7\n");
	assert_int_equal(imap_state_load(&st, path), INBOX_EINVAL);
	imap_state_finish(&st);
	write_file(path, "INBOX\t7\t12x\n");
	assert_int_equal(imap_state_load(&st, path), INBOX_EINVAL);
	imap_state_finish(&st);
	write_file(path, "INBOX\t7\t12");                 /* truncated */
	assert_int_equal(imap_state_load(&st, path), INBOX_EINVAL);
	imap_state_finish(&st);
}

static void
our_message_ids_carry_the_thread(void **state)
{
	struct mail_msg m;
	char *id, *t;

	memset(&m, 0, sizeof(m));
	id = imap_reply_message_id("CAF+root@mail.gmail.com", "out:17",
	    "example.com");
	assert_true(strncmp(id, "r.", 2) == 0);
	assert_non_null(strstr(id, ".17."));
	assert_non_null(strstr(id, "@example.com"));
	/* an answer naming only our id joins the thread */
	m.in_reply_to = id;
	t = imap_thread_of(&m, "x");
	assert_string_equal(t, "CAF+root@mail.gmail.com");
	free(t);
	/* ... also when our id is deep in References */
	{
		char *refs[3] = { "other-root@x", "mid@y", id };

		m.in_reply_to = NULL;
		m.references = refs;
		m.nreferences = 3;
		t = imap_thread_of(&m, "x");
		assert_string_equal(t, "CAF+root@mail.gmail.com");
		free(t);
		/* without ours, the first reference is the thread */
		m.nreferences = 2;
		t = imap_thread_of(&m, "x");
		assert_string_equal(t, "other-root@x");
		free(t);
	}
	m.references = NULL;
	m.nreferences = 0;
	m.message_id = "own@z";
	t = imap_thread_of(&m, "x");
	assert_string_equal(t, "own@z");
	free(t);
	m.message_id = NULL;
	t = imap_thread_of(&m, "sha256:abc");
	assert_string_equal(t, "sha256:abc");
	free(t);
	/* something that only looks like ours is not decoded */
	m.in_reply_to = "r.!!!.1.2@x";
	t = imap_thread_of(&m, "x");
	assert_string_equal(t, "r.!!!.1.2@x");
	free(t);
	free(id);
	/* a thread too long to carry: the id still has the message number */
	{
		char longt[400];

		memset(longt, 'a', sizeof(longt) - 1);
		longt[sizeof(longt) - 1] = '\0';
		id = imap_reply_message_id(longt, "out:5", "example.com");
		assert_true(strncmp(id, "n.5.", 4) == 0);
		free(id);
	}
}

static cJSON *
item(const char *to, const char *subject, const char *text)
{
	cJSON *o = cJSON_CreateObject(), *c;

	cJSON_AddStringToObject(o, "thread", "root@customer.example");
	cJSON_AddStringToObject(o, "ref", "out:9");
	cJSON_AddStringToObject(o, "text", text);
	if (subject != NULL)
		cJSON_AddStringToObject(o, "subject", subject);
	c = cJSON_AddObjectToObject(o, "contact");
	if (to != NULL)
		cJSON_AddStringToObject(c, "email", to);
	cJSON_AddStringToObject(c, "name", "Анна \"A\" Петрова");
	return o;
}

static void
the_reply_message_has_threading_headers_and_quoted_printable(void **state)
{
	struct inbox_connector_conf cc;
	struct inbox_err err;
	const char *rcpt = NULL;
	char msgid[600], *msg;
	cJSON *it;

	memset(&cc, 0, sizeof(cc));
	cc.id = "mail1";
	cc.from = "Support <support@example.com>";
	it = item("anna@example.org", "Заказ 17", "Готово.\nline two = "
	    "ok \n.\n");
	msg = imap_smtp_message(&cc, it, 1796000000000LL, &rcpt, msgid,
	    sizeof(msgid), &err);
	assert_non_null(msg);
	assert_string_equal(rcpt, "anna@example.org");
	assert_non_null(strstr(msg, "From: Support <support@example.com>\r\n"));
	assert_non_null(strstr(msg, "<anna@example.org>\r\n"));
	/* a Cyrillic subject is encoded, and "Re: " added once */
	assert_non_null(strstr(msg, "Subject: =?UTF-8?"));
	assert_null(strstr(msg, "Заказ"));
	assert_non_null(strstr(msg, "In-Reply-To: <root@customer.example>\r\n"));
	assert_non_null(strstr(msg, "References: <root@customer.example>\r\n"));
	assert_non_null(strstr(msg, "Message-ID: <r."));
	assert_non_null(strstr(msg, "@example.com>\r\n"));
	assert_non_null(strstr(msg, "Date: Mon, 30 Nov 2026 "));
	assert_non_null(strstr(msg, "Content-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n"));
	/* quoted-printable: '=' encoded, the trailing space kept visible, a
	 * lone dot line escaped, no bare LF */
	assert_non_null(strstr(msg, "line two =3D ok=20\r\n"));
	assert_non_null(strstr(msg, "\r\n=2E\r\n"));
	assert_null(strstr(msg, "\r\n.\r\n"));
	for (const char *p = msg; (p = strchr(p, '\n')) != NULL; p++)
		assert_true(p > msg && p[-1] == '\r');
	assert_null(strstr(msg, "Auto-Submitted"));
	free(msg);
	cJSON_Delete(it);

	/* an auto-reply says so; "Re:" is not doubled */
	it = item("anna@example.org", "Re: hello", "x");
	cJSON_AddBoolToObject(it, "auto", true);
	msg = imap_smtp_message(&cc, it, 1796000000000LL, &rcpt, msgid,
	    sizeof(msgid), &err);
	assert_non_null(strstr(msg, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(msg, "Subject: Re: hello\r\n"));
	free(msg);
	cJSON_Delete(it);

	/* no address: refused; a header with a line break: not a header */
	it = item(NULL, "x", "x");
	assert_null(imap_smtp_message(&cc, it, 1, &rcpt, msgid, sizeof(msgid),
	    &err));
	assert_non_null(strstr(err.msg, "no e-mail address"));
	cJSON_Delete(it);
	it = item("anna@example.org\r\nBcc: evil@x", "x", "x");
	assert_null(imap_smtp_message(&cc, it, 1, &rcpt, msgid, sizeof(msgid),
	    &err));
	cJSON_Delete(it);
	it = item("anna@example.org", "hi\r\nBcc: evil@x", "x");
	msg = imap_smtp_message(&cc, it, 1, &rcpt, msgid, sizeof(msgid), &err);
	assert_non_null(msg);
	assert_null(strstr(msg, "Bcc:"));
	free(msg);
	cJSON_Delete(it);
}

static void
blobs_are_stored_once_by_hash(void **state)
{
	char hex[65], hex2[65], path[256];
	const unsigned char data[] = "%PDF-1.4 some bytes";
	struct stat sb;

	assert_int_equal(imap_blob_put(dir, data, sizeof(data) - 1, hex), 0);
	assert_int_equal(strlen(hex), 64);
	snprintf(path, sizeof(path), "%s/%.2s/%s", dir, hex, hex);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, sizeof(data) - 1);
	assert_int_equal(imap_blob_put(dir, data, sizeof(data) - 1, hex2), 0);
	assert_string_equal(hex, hex2);
	/* sha256("abc") */
	assert_int_equal(imap_blob_put(dir, (const unsigned char *)"abc", 3,
	    hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396"
	    "177a9cb410ff61f20015ad");
	assert_int_equal(imap_blob_put("/proc/no/such/dir", data, 3, hex),
	    INBOX_EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(checkpoints_survive_a_reload_and_damage_is_refused),
		cmocka_unit_test(our_message_ids_carry_the_thread),
		cmocka_unit_test(the_reply_message_has_threading_headers_and_quoted_printable),
		cmocka_unit_test(blobs_are_stored_once_by_hash),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
