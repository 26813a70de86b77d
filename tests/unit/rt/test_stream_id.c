/* librt's stream id parser (rt_stream_id_parse): what the router reads
 * from XREADGROUP and the gateway from XREAD and from a client's
 * `subscribe since`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "inbox/rt/rt.h"

static void
ids_parse_into_ms_and_seq(void **state)
{
	uint64_t ms = 1, seq = 1;

	(void)state;
	assert_true(rt_stream_id_parse("0-0", &ms, &seq));
	assert_int_equal(ms, 0);
	assert_int_equal(seq, 0);
	assert_true(rt_stream_id_parse("1796044132123-42", &ms, &seq));
	assert_int_equal(ms, 1796044132123ULL);
	assert_int_equal(seq, 42);
	assert_true(rt_stream_id_parse("18446744073709551615-7", &ms, &seq));
	assert_int_equal(ms, UINT64_MAX);
}

static void
anything_else_is_refused(void **state)
{
	static const char *const bad[] = { "", "-", "1", "1-", "-1", "-1-0",
	    "1--2", "1-2-3", "1-2 ", " 1-2", "a-1", "1-a", "1-+2", "+1-2",
	    "1.5-2", "$", ">", "1-2x" };
	uint64_t ms, seq;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(rt_stream_id_parse(bad[i], &ms, &seq));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_parse_into_ms_and_seq),
		cmocka_unit_test(anything_else_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
