/* Shards: which one a dialog belongs to, and the names of a shard's keys
 * and store (docs/sharding.md). */
#include <stdio.h>
#include <string.h>

#include "inbox/inbox.h"

uint32_t
inbox_shard_hash(const char *connector, const char *thread)
{
	/* FNV-1a (32 bits) over connector, a NUL, thread: stable across
	 * builds and machines, since ingress and routers must agree */
	uint32_t h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)connector; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ 0) * 16777619u;
	for (p = (const unsigned char *)thread; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

unsigned
inbox_shard_of(const char *connector, const char *thread, unsigned n)
{
	return n <= 1 ? 0 : inbox_shard_hash(connector, thread) % n;
}

unsigned
inbox_shard_of_id(uint64_t id, unsigned n)
{
	return n <= 1 || id == 0 ? 0 : (unsigned)((id - 1) % n);
}

int
inbox_shard_prefix(char *buf, size_t len, const char *prefix, unsigned k,
    unsigned n)
{
	const char *open = strchr(prefix, '{'), *close;
	int w;

	if (n <= 1)
		w = snprintf(buf, len, "%s", prefix);
	else if (open != NULL && (close = strchr(open + 1, '}')) != NULL &&
	    close > open + 1)
		/* the shard number goes inside the tag: its own slot */
		w = snprintf(buf, len, "%.*s.%u%s", (int)(close - prefix),
		    prefix, k, close);
	else
		w = snprintf(buf, len, "%s.%u", prefix, k);
	return w < 0 || (size_t)w >= len ? INBOX_EINVAL : 0;
}
