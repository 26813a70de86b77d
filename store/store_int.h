/* libstore private: the record writer and reader (record.c). */
#ifndef INBOX_STORE_STORE_INT_H
#define INBOX_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record layout: one version byte, then fields in a fixed order per record
 * type: u8, u32 and u64 big-endian, strings as u32 length (0xffffffff for
 * NULL), the bytes and a NUL, so a reader can hand out pointers into the
 * database page. Adding a field at the end keeps the version; any other
 * change bumps it. */
#define STORE_REC_NULL 0xffffffffu

struct rec_w {
	unsigned char *buf;
	size_t len, cap;
};

struct rec_r {
	const unsigned char *p;
	size_t len, pos;
	bool bad;
};

void store__w_init(struct rec_w *w, unsigned char version);
void store__w_u8(struct rec_w *w, unsigned v);
void store__w_u32(struct rec_w *w, uint32_t v);
void store__w_u64(struct rec_w *w, uint64_t v);
void store__w_str(struct rec_w *w, const char *s);
void store__w_bytes(struct rec_w *w, const char *s, size_t n);
void store__w_finish(struct rec_w *w);

/* Starts reading; bad is set when the version differs. */
void store__r_init(struct rec_r *r, const void *p, size_t len,
    unsigned char version);
unsigned store__r_u8(struct rec_r *r);
uint32_t store__r_u32(struct rec_r *r);
uint64_t store__r_u64(struct rec_r *r);
const char *store__r_str(struct rec_r *r, size_t *len);
/* True when the record is whole and well-formed after the last read. */
bool store__r_ok(const struct rec_r *r);

void store__be64(unsigned char *out, uint64_t v);
uint64_t store__get_be64(const unsigned char *in);

#endif
