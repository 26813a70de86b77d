/* libinbox: the config parser keeps defaults, reads every documented form,
 * and names file, line and key of each error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inbox/inbox.h"

static int
parse(struct inbox_config *cfg, const char *text, struct inbox_err *err)
{
	inbox_config_init(cfg);
	memset(err, 0, sizeof(*err));
	return inbox_config_parse(cfg, "t.conf", text, strlen(text), err);
}

/* Parses text, expects an error at `line` naming `key` (NULL: no key) with
 * `part` in the message. */
static void
expect_error(const char *text, int line, const char *key, const char *part)
{
	struct inbox_config cfg;
	struct inbox_err err;
	char prefix[64];

	assert_int_equal(parse(&cfg, text, &err), INBOX_EINVAL);
	snprintf(prefix, sizeof(prefix), "t.conf:%d: ", line);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
	assert_int_equal(err.line, line);
	if (key != NULL) {
		char k[80];

		snprintf(k, sizeof(k), "key '%s'", key);
		assert_string_equal(err.field, key);
		if (strstr(err.msg, k) == NULL)
			fail_msg("message '%s' lacks %s", err.msg, k);
	}
	if (strstr(err.msg, part) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, part);
	inbox_config_finish(&cfg);
}

static void
defaults_hold_when_a_key_is_absent(void **state)
{
	struct inbox_config cfg;
	struct inbox_err err;

	(void)state;
	assert_int_equal(parse(&cfg, "", &err), 0);
	assert_string_equal(cfg.redis_host, "127.0.0.1");
	assert_int_equal(cfg.redis_port, 6379);
	assert_null(cfg.redis_unix);
	assert_string_equal(cfg.redis_prefix, "inbox");
	assert_int_equal(cfg.router_batch, 256);
	assert_int_equal(cfg.webhooks_max_body, 1048576);
	assert_int_equal(cfg.gateway_port, 8080);
	assert_int_equal(cfg.log_level, INBOX_LOG_INFO);
	assert_int_equal(cfg.nconnectors, 0);
	inbox_config_finish(&cfg);
}

static void
every_documented_form_is_read(void **state)
{
	const char *text =
	    "# comment\n"
	    "\n"
	    "  [redis]  \n"
	    "port=7000\n"
	    "host = \"  spaced host # not a comment\"   # a comment\n"
	    "unix = /run/r.sock\r\n"
	    "[log]\n"
	    "level = debug\n"
	    "[connector api1]\n"
	    "channel = api\n"
	    "[connector tg.main-2]\n"
	    "channel = telegram\n"
	    "secret = s3#cret\n";
	struct inbox_config cfg;
	struct inbox_err err;
	const struct inbox_connector_conf *cc;

	(void)state;
	assert_int_equal(parse(&cfg, text, &err), 0);
	assert_int_equal(cfg.redis_port, 7000);
	assert_string_equal(cfg.redis_host, "  spaced host # not a comment");
	assert_string_equal(cfg.redis_unix, "/run/r.sock");
	assert_int_equal(cfg.log_level, INBOX_LOG_DEBUG);
	assert_int_equal(cfg.nconnectors, 2);
	cc = inbox_config_connector(&cfg, "api1");
	assert_non_null(cc);
	assert_int_equal(cc->channel, INBOX_CH_API);
	assert_null(cc->secret);
	cc = inbox_config_connector(&cfg, "tg.main-2");
	assert_non_null(cc);
	assert_int_equal(cc->channel, INBOX_CH_TELEGRAM);
	/* '#' not after whitespace is part of the value */
	assert_string_equal(cc->secret, "s3#cret");
	assert_null(inbox_config_connector(&cfg, "nope"));
	inbox_config_finish(&cfg);
}

static void
the_example_config_parses(void **state)
{
	struct inbox_config cfg;
	struct inbox_err err;
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	(void)state;
	snprintf(path, sizeof(path), "%s/contrib/inboxd.conf.example",
	    INBOXD_SRC);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	inbox_config_init(&cfg);
	if (inbox_config_parse(&cfg, path, buf, (size_t)n, &err) != 0)
		fail_msg("%s", err.msg);
	assert_non_null(inbox_config_connector(&cfg, "api1"));
	inbox_config_finish(&cfg);
	free(buf);
}

static void
each_error_names_file_line_and_key(void **state)
{
	(void)state;
	expect_error("[nope]\n", 1, NULL, "unknown section [nope]");
	expect_error("[redis]\nbogus = 1\n", 2, "bogus", "unknown key in [redis]");
	expect_error("[redis]\nport = abc\n", 2, "port", "'abc' is not an integer");
	expect_error("[redis]\nport = 12x\n", 2, "port", "not an integer");
	expect_error("[redis]\n\nport = 70000\n", 3, "port",
	    "70000 out of bounds (1 to 65535)");
	expect_error("[redis]\nport = 1\nport = 2\n", 3, "port", "set twice");
	expect_error("[redis]\njust words\n", 2, NULL, "expected 'key = value'");
	expect_error("[redis]\nhost = \"open\n", 2, "host", "unterminated quote");
	expect_error("[redis]\nhost = \"a\" b\n", 2, "host",
	    "unexpected text after the closing quote");
	expect_error("port = 1\n", 1, "port", "outside of any [section]");
	expect_error("[log]\nlevel = loud\n", 2, "level", "unknown level 'loud'");
	expect_error("[log]\nformat = xml\n", 2, "format",
	    "'xml' is not one of text|json");
	expect_error("[log]\nformat = jsonl\n", 2, "format", "not one of");
	expect_error("[gateway]\nvisibility = tea\n", 2, "visibility",
	    "'tea' is not one of team|all");
	expect_error("[connector a/b]\nchannel = api\n", 1, NULL,
	    "invalid connector id 'a/b'");
	expect_error("[connector]\n", 1, NULL, "needs an id");
	expect_error("[connector x]\nsecret = s\n[redis]\n", 1, "channel",
	    "connector 'x' has no channel");
	expect_error("[connector x]\n", 1, "channel", "has no channel");
	expect_error("[connector x]\nchannel = fax\n", 2, "channel",
	    "unknown channel 'fax'");
	expect_error("[connector x]\nchannel = api\nchannel = api\n", 3,
	    "channel", "set twice");
	expect_error("[connector x]\nchannel = api\n[connector x]\n", 3, NULL,
	    "defined twice");
	expect_error("[connector x]\nchannel = api\ncolor = red\n", 3, "color",
	    "unknown key in [connector x]");
	expect_error("[redis\n", 1, NULL, "malformed section header");
	expect_error("[store]\npath =\n", 2, "path", "out of bounds");
	expect_error("[redis]\n = 5\n", 2, NULL, "missing key");
}

static void
nul_bytes_and_bad_utf8_are_errors(void **state)
{
	struct inbox_config cfg;
	struct inbox_err err;
	const char text[] = "[redis]\nhost = a\0b\n";

	(void)state;
	inbox_config_init(&cfg);
	assert_int_equal(inbox_config_parse(&cfg, "t.conf", text,
	    sizeof(text) - 1, &err), INBOX_EINVAL);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "t.conf:2: NUL byte"));
	inbox_config_finish(&cfg);
	expect_error("[redis]\nhost = \xff\n", 2, NULL, "invalid UTF-8");
}

static void
sentinels_are_host_port_lists(void **state)
{
	struct inbox_config cfg;
	struct inbox_err err;
	char host[64];
	int port = 0;

	(void)state;
	assert_int_equal(parse(&cfg, "[redis]\nsentinels = 10.0.0.1:26379, "
	    "[::1]:26380 ,s3.example:26381\nmin_replicas = 1\n", &err), 0);
	assert_string_equal(cfg.redis_master_name, "inbox");
	assert_int_equal(cfg.redis_min_replicas, 1);
	for (size_t i = 0; i < 3; i++) {
		static const char *const hosts[] = { "10.0.0.1", "::1",
		    "s3.example" };

		assert_int_equal(inbox_hostport_nth(cfg.redis_sentinels, i,
		    host, sizeof(host), &port), 1);
		assert_string_equal(host, hosts[i]);
		assert_int_equal(port, 26379 + (int)i);
	}
	assert_int_equal(inbox_hostport_nth(cfg.redis_sentinels, 3, host,
	    sizeof(host), &port), 0);
	assert_int_equal(inbox_hostport_nth("hh:1", 0, host, 2, &port),
	    INBOX_EINVAL);
	inbox_config_finish(&cfg);
	assert_int_equal(parse(&cfg, "", &err), 0);
	assert_null(cfg.redis_sentinels);
	assert_int_equal(cfg.redis_min_replicas, 0);
	inbox_config_finish(&cfg);
	expect_error("[redis]\nsentinels = a:1, b\n", 2, "sentinels",
	    "item 2 of 'a:1, b' is not host:port");
	expect_error("[redis]\nsentinels = a:70000\n", 2, "sentinels",
	    "is not host:port");
	expect_error("[redis]\nsentinels = , ,\n", 2, "sentinels",
	    "no host:port");
	expect_error("[redis]\nmin_replicas = -1\n", 2, "min_replicas", "");
}

static void
cluster_needs_a_hash_tag_and_no_sentinels(void **state)
{
	struct inbox_config cfg;
	struct inbox_err err;

	(void)state;
	assert_int_equal(parse(&cfg, "[redis]\ncluster = 10.0.0.1:7000, "
	    "10.0.0.2:7000\nprefix = {inbox}\n", &err), 0);
	assert_string_equal(cfg.redis_cluster, "10.0.0.1:7000, 10.0.0.2:7000");
	inbox_config_finish(&cfg);
	assert_true(inbox_key_tagged("{inbox}"));
	assert_true(inbox_key_tagged("app:{x}"));
	assert_false(inbox_key_tagged("inbox"));
	assert_false(inbox_key_tagged("{}inbox"));
	assert_false(inbox_key_tagged("in{box"));
	expect_error("[redis]\ncluster = a:1\n", 2, "prefix",
	    "put a hash tag in the prefix, e.g. prefix = {inbox}");
	expect_error("[redis]\nprefix = {i}\nsentinels = s:1\ncluster = "
	    "a:1\n", 4, "cluster", "both cluster and sentinels");
	expect_error("[redis]\ncluster = a:1, b\n", 2, "cluster",
	    "item 2 of 'a:1, b' is not host:port");
}

static void
shards_name_their_keys_and_own_their_dialogs_and_ids(void **state)
{
	struct inbox_config cfg;
	struct inbox_err err;
	char buf[80];
	unsigned seen[3] = { 0, 0, 0 };

	(void)state;
	assert_int_equal(parse(&cfg, "[redis]\nprefix = inbox\n", &err), 0);
	assert_int_equal(cfg.redis_shards, 1);
	assert_int_equal(cfg.shard, -1);
	inbox_config_finish(&cfg);
	assert_int_equal(parse(&cfg, "[redis]\nshards = 3\ncluster = a:1\n"
	    "prefix = {inbox}\n", &err), 0);
	assert_int_equal(cfg.redis_shards, 3);
	inbox_config_finish(&cfg);
	expect_error("[redis]\nshards = 0\n", 2, "shards", "");
	expect_error("[redis]\nshards = 257\n", 2, "shards", "");

	/* one shard: the keys are today's */
	assert_int_equal(inbox_shard_prefix(buf, sizeof(buf), "{inbox}", 0,
	    1), 0);
	assert_string_equal(buf, "{inbox}");
	/* the shard goes inside the tag, so each has its own slot */
	assert_int_equal(inbox_shard_prefix(buf, sizeof(buf), "app:{inbox}x",
	    2, 3), 0);
	assert_string_equal(buf, "app:{inbox.2}x");
	assert_int_equal(inbox_shard_prefix(buf, sizeof(buf), "inbox", 1, 3),
	    0);
	assert_string_equal(buf, "inbox.1");
	assert_int_equal(inbox_shard_prefix(buf, 6, "inbox", 1, 3),
	    INBOX_EINVAL);

	/* a dialog's shard is stable (ingress and routers agree, across
	 * builds: FNV-1a of "connector\0thread") and spreads */
	assert_int_equal(inbox_shard_hash("", ""), 0x050c5d1fu);
	assert_int_equal(inbox_shard_of("tg1", "chat-1", 1), 0);
	assert_true(inbox_shard_of("tg1", "chat-1", 3) ==
	    inbox_shard_of("tg1", "chat-1", 3));
	assert_true(inbox_shard_hash("tg1", "chat-1") !=
	    inbox_shard_hash("tg1c", "hat-1"));
	for (int i = 0; i < 300; i++) {
		char t[16];

		snprintf(t, sizeof(t), "chat-%d", i);
		seen[inbox_shard_of("tg1", t, 3)]++;
	}
	for (int k = 0; k < 3; k++)
		assert_in_range(seen[k], 70, 130);

	/* ids: shard k gives k + 1, k + 1 + n, ... */
	assert_int_equal(inbox_shard_of_id(1, 3), 0);
	assert_int_equal(inbox_shard_of_id(5, 3), 1);
	assert_int_equal(inbox_shard_of_id(9, 3), 2);
	assert_int_equal(inbox_shard_of_id(9, 1), 0);
	assert_int_equal(inbox_shard_of_id(0, 3), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_hold_when_a_key_is_absent),
		cmocka_unit_test(every_documented_form_is_read),
		cmocka_unit_test(the_example_config_parses),
		cmocka_unit_test(each_error_names_file_line_and_key),
		cmocka_unit_test(nul_bytes_and_bad_utf8_are_errors),
		cmocka_unit_test(sentinels_are_host_port_lists),
		cmocka_unit_test(cluster_needs_a_hash_tag_and_no_sentinels),
		cmocka_unit_test(
		    shards_name_their_keys_and_own_their_dialogs_and_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
