/* Reading a websocket server frame's header (RFC 6455 5.2), for the
 * benchmarks' minimal clients. */
#include "bench_ws.h"

int
bench_ws_frame(const unsigned char *p, size_t avail, size_t *hdr,
    uint64_t *plen)
{
	if (avail < 2)
		return -1;
	*hdr = 2;
	*plen = p[1] & 0x7f;
	if (*plen == 126) {
		*hdr = 4;
		if (avail < *hdr)
			return -1;
		*plen = ((uint64_t)p[2] << 8) | p[3];
	} else if (*plen == 127) {
		*hdr = 10;
		if (avail < *hdr)
			return -1;
		*plen = 0;
		for (int i = 0; i < 8; i++)
			*plen = (*plen << 8) | p[2 + i];
	}
	if (avail - *hdr < *plen)
		return -1;
	return p[0] & 0x0f;
}
