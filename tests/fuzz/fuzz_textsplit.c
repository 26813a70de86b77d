/* Fuzz target: wh_text_split (connectors/webhooks/util.c), the cut of a
 * long reply into messages. Byte 0 picks the limit, byte 1 the units; the
 * rest is the text (skipped unless valid UTF-8, as out items are). Aborts
 * unless every part fits, no part is empty, and the parts with the breaks
 * they dropped give back the text. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webhooks/channel.h"

static size_t
units_of(const char *s, enum wh_text_units units)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (units == WH_UNITS_BYTES)
			n++;
		else if ((*p & 0xc0) != 0x80)
			n += units == WH_UNITS_UTF16 && *p >= 0xf0 ? 2 : 1;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum wh_text_units units;
	size_t max, n, len, before = 0;
	char *text, **parts;
	bool *can, *next;           /* can[s]: s breaks dropped so far fits */
	bool whole = false;

	if (size < 2)
		return 0;
	max = 4 + data[0];
	units = (enum wh_text_units)(data[1] % 3);
	if (inbox_utf8_invalid_at((const char *)data + 2, size - 2) >= 0 ||
	    memchr(data + 2, '\0', size - 2) != NULL)
		return 0;
	if ((text = strndup((const char *)data + 2, size - 2)) == NULL)
		return 0;
	len = strlen(text);
	n = wh_text_split(text, max, units, &parts);
	if (n == 0)
		abort();
	can = calloc(n + 1, sizeof(*can));
	next = calloc(n + 1, sizeof(*next));
	if (can == NULL || next == NULL)
		abort();
	can[0] = true;
	/* each part must follow the one before it, directly or past one
	 * dropped line break or space */
	for (size_t i = 0; i < n; i++) {
		size_t pl = strlen(parts[i]);

		if (units_of(parts[i], units) > max || (pl == 0 && len > 0) ||
		    inbox_utf8_invalid_at(parts[i], pl) >= 0)
			abort();
		memset(next, 0, (n + 1) * sizeof(*next));
		for (size_t sk = 0; sk <= i; sk++) {
			size_t p = before + sk;

			if (!can[sk] || p + pl > len ||
			    memcmp(text + p, parts[i], pl) != 0)
				continue;
			if (i + 1 == n)
				whole = whole || p + pl == len;
			else {
				next[sk] = true;
				if (text[p + pl] == '\n' || text[p + pl] == ' ')
					next[sk + 1] = true;
			}
		}
		memcpy(can, next, (n + 1) * sizeof(*can));
		before += pl;
	}
	if (!whole)
		abort();
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
	free(parts);
	free(can);
	free(next);
	free(text);
	return 0;
}
