/* The versioned binary record writer and bounds-checked reader. */
#include <stdlib.h>
#include <string.h>

#include "inbox/inbox.h"
#include "store/store_int.h"

void
store__be64(unsigned char *out, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t
store__get_be64(const unsigned char *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

static void
reserve(struct rec_w *w, size_t n)
{
	if (w->cap - w->len >= n)
		return;
	while (w->cap - w->len < n)
		w->cap = w->cap ? w->cap * 2 : 256;
	w->buf = xrealloc(w->buf, w->cap);
}

void
store__w_init(struct rec_w *w, unsigned char version)
{
	memset(w, 0, sizeof(*w));
	store__w_u8(w, version);
}

void
store__w_u8(struct rec_w *w, unsigned v)
{
	reserve(w, 1);
	w->buf[w->len++] = (unsigned char)v;
}

void
store__w_u32(struct rec_w *w, uint32_t v)
{
	reserve(w, 4);
	for (int i = 3; i >= 0; i--)
		w->buf[w->len++] = (unsigned char)(v >> (8 * i));
}

void
store__w_u64(struct rec_w *w, uint64_t v)
{
	reserve(w, 8);
	store__be64(w->buf + w->len, v);
	w->len += 8;
}

void
store__w_bytes(struct rec_w *w, const char *s, size_t n)
{
	if (s == NULL) {
		store__w_u32(w, STORE_REC_NULL);
		return;
	}
	if (n >= STORE_REC_NULL)
		fatalx("store: record string too long (%zu bytes)", n);
	store__w_u32(w, (uint32_t)n);
	reserve(w, n + 1);
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len++] = '\0';
}

void
store__w_str(struct rec_w *w, const char *s)
{
	store__w_bytes(w, s, s ? strlen(s) : 0);
}

void
store__w_finish(struct rec_w *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

void
store__r_init(struct rec_r *r, const void *p, size_t len, unsigned char version)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->bad = false;
	if (store__r_u8(r) != version)
		r->bad = true;
}

static bool
need(struct rec_r *r, size_t n)
{
	if (r->bad || r->len - r->pos < n) {
		r->bad = true;
		return false;
	}
	return true;
}

unsigned
store__r_u8(struct rec_r *r)
{
	if (!need(r, 1))
		return 0;
	return r->p[r->pos++];
}

uint32_t
store__r_u32(struct rec_r *r)
{
	uint32_t v = 0;

	if (!need(r, 4))
		return 0;
	for (int i = 0; i < 4; i++)
		v = (v << 8) | r->p[r->pos++];
	return v;
}

uint64_t
store__r_u64(struct rec_r *r)
{
	uint64_t v;

	if (!need(r, 8))
		return 0;
	v = store__get_be64(r->p + r->pos);
	r->pos += 8;
	return v;
}

const char *
store__r_str(struct rec_r *r, size_t *len)
{
	uint32_t n = store__r_u32(r);
	const char *s;

	if (len != NULL)
		*len = 0;
	if (r->bad || n == STORE_REC_NULL)
		return NULL;
	if (!need(r, (size_t)n + 1) || r->p[r->pos + n] != '\0') {
		r->bad = true;
		return NULL;
	}
	s = (const char *)r->p + r->pos;
	r->pos += (size_t)n + 1;
	if (len != NULL)
		*len = n;
	return s;
}

bool
store__r_more(const struct rec_r *r)
{
	return !r->bad && r->pos < r->len;
}

bool
store__r_ok(const struct rec_r *r)
{
	return !r->bad;
}

unsigned
store__r_version(const void *p, size_t len)
{
	return len > 0 ? *(const unsigned char *)p : 0;
}
