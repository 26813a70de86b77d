/* Fuzz target: the config parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "inbox/inbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inbox_config cfg;
	struct inbox_err err;

	inbox_config_init(&cfg);
	if (inbox_config_parse(&cfg, "fuzz.conf", (const char *)data, size,
	    &err) == 0) {
		FILE *null = fopen("/dev/null", "w");

		if (null != NULL) {
			inbox_config_dump(&cfg, null);
			fclose(null);
		}
	} else if (err.line < 0) {
		__builtin_trap(); /* errors carry a line */
	}
	inbox_config_finish(&cfg);
	return 0;
}
