/* Fuzz target: the envelope decoder (and encoder on success). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "inbox/inbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inbox_envelope env;
	struct inbox_err err;

	if (inbox_envelope_decode(&env, (const char *)data, size, &err) == 0) {
		size_t len;
		char *out = inbox_envelope_encode(&env, &len);
		struct inbox_envelope again;

		/* what we encode must decode again */
		if (inbox_envelope_decode(&again, out, len, &err) != 0)
			abort();
		inbox_envelope_finish(&again);
		free(out);
		inbox_envelope_finish(&env);
	}
	return 0;
}
