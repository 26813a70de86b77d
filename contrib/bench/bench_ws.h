/* What the websocket benchmarks share: reading a server frame's header. */
#ifndef INBOX_BENCH_WS_H
#define INBOX_BENCH_WS_H

#include <stddef.h>
#include <stdint.h>

/* The frame at p (avail bytes read; a server's frames are not masked):
 * returns its opcode and sets *hdr (header bytes) and *plen (payload
 * bytes), or -1 when the whole frame is not there yet. */
int bench_ws_frame(const unsigned char *p, size_t avail, size_t *hdr,
    uint64_t *plen);

#endif
