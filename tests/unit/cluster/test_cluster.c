/* The Redis Cluster client's hash slots (inbox/rt/cluster.c): CRC16
 * (XMODEM) mod 16384 with hash tags, against values computed from the
 * cluster specification (and matched by CLUSTER KEYSLOT of redis-server 7;
 * tests/integration/cluster_tests.py checks more keys against a live
 * cluster), and seed lists refused before any connection. Opens no
 * socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "inbox/rt/cluster.h"

static uint16_t
slot(const char *key)
{
	return rt_cluster_keyslot(key, strlen(key));
}

static void
plain_keys_hash_whole(void **state)
{
	(void)state;
	assert_int_equal(slot("foo"), 12182);
	assert_int_equal(slot("bar"), 5061);
	assert_int_equal(slot("hello"), 866);
	assert_int_equal(slot("inbox:events"), 1183);
	/* the spec's check value: CRC16("123456789") = 0x31c3 */
	assert_int_equal(slot("123456789"), 0x31c3 % 16384);
}

static void
the_empty_key_is_slot_0(void **state)
{
	(void)state;
	assert_int_equal(rt_cluster_keyslot("", 0), 0);
	assert_int_equal(rt_cluster_keyslot(NULL, 0), 0);
}

static void
keys_with_the_same_tag_share_a_slot(void **state)
{
	(void)state;
	assert_int_equal(slot("{user1000}.following"), 3443);
	assert_int_equal(slot("{user1000}.followers"), 3443);
	assert_int_equal(slot("user1000"), 3443);
	assert_int_equal(slot("inbox:{3}:in"), 1584);
	assert_int_equal(slot("inbox:{3}:events"), 1584);
	assert_int_equal(slot("3"), 1584);
	/* only the first tag counts */
	assert_int_equal(slot("foo{bar}{zap}"), 5061);
	assert_int_equal(slot("a}b{c}"), 7365);
	assert_int_equal(slot("c"), 7365);
}

static void
an_empty_or_unclosed_tag_hashes_the_whole_key(void **state)
{
	(void)state;
	/* "{}" is empty: the whole key, not "bar" */
	assert_int_equal(slot("foo{}{bar}"), 8363);
	assert_int_not_equal(slot("foo{}{bar}"), slot("bar"));
	assert_int_equal(slot("{}"), 15257);
	assert_int_equal(slot("{}foo"), 9500);
	assert_int_equal(slot("{"), 4092);
	assert_int_equal(slot("}"), 12090);
	assert_int_equal(slot("a{b"), 13340);
	assert_int_equal(slot("foo{"), 7673);
}

static void
the_tag_ends_at_the_first_close_brace(void **state)
{
	(void)state;
	/* first "{", first "}" after it: the tag is "{bar" */
	assert_int_equal(slot("foo{{bar}}zap"), 4015);
	assert_int_equal(slot("{bar"), 4015);
}

static void
keys_are_binary_and_need_no_nul(void **state)
{
	const char bin[] = { '\0', '\xff', '{', '\x01', '}' };
	const char one[] = { '\x01' };

	(void)state;
	assert_int_equal(rt_cluster_keyslot(bin, sizeof(bin)), 4129);
	assert_int_equal(rt_cluster_keyslot(one, sizeof(one)), 4129);
	/* the length counts, not a NUL: "foo" inside "foobar" */
	assert_int_equal(rt_cluster_keyslot("foobar", 3), 12182);
	/* a tag closed past len is not a tag: "a{b" of "a{b}" */
	assert_int_equal(rt_cluster_keyslot("a{b}", 3), 13340);
}

static void
every_slot_is_below_16384(void **state)
{
	char key[32];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(key, sizeof(key), "key:%d", i);

		assert_true(rt_cluster_keyslot(key, (size_t)n) < 16384);
	}
}

static void
malformed_seeds_are_refused_without_connecting(void **state)
{
	(void)state;
	/* each fails in parsing, before any connect (logged at warn) */
	assert_null(rt_cluster_open(NULL, 100));
	assert_null(rt_cluster_open("", 100));
	assert_null(rt_cluster_open(" , ", 100));
	assert_null(rt_cluster_open("127.0.0.1", 100));
	assert_null(rt_cluster_open("127.0.0.1:0", 100));
	assert_null(rt_cluster_open("127.0.0.1:6379, 127.0.0.1:99999", 100));
	rt_cluster_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_keys_hash_whole),
		cmocka_unit_test(the_empty_key_is_slot_0),
		cmocka_unit_test(keys_with_the_same_tag_share_a_slot),
		cmocka_unit_test(an_empty_or_unclosed_tag_hashes_the_whole_key),
		cmocka_unit_test(the_tag_ends_at_the_first_close_brace),
		cmocka_unit_test(keys_are_binary_and_need_no_nul),
		cmocka_unit_test(every_slot_is_below_16384),
		cmocka_unit_test(malformed_seeds_are_refused_without_connecting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
