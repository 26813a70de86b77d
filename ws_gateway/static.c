/* The web client's files: cached in memory with their gzip form (the
 * Debian lws has no stream compression), sent with validators and caching
 * headers. A file changed on disk is read again (by size and mtime). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

#define STATIC_MAX (8u << 20)    /* a file larger is not cached */
#define CACHE_MAX 256

struct gw_static {
	char path[4200];
	time_t mtime;
	off_t size;
	char *data, *gz;
	size_t len, gzlen;
	char etag[40];
};

static char *
gzip(const char *data, size_t len, size_t *out_len)
{
	z_stream z;
	size_t cap = compressBound((uLong)len) + 64;
	char *out = xmalloc(cap);

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		fatalx("gateway: zlib deflateInit2 failed");
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		fatalx("gateway: zlib deflate failed");
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

const struct gw_static *
gw_static_get(struct gateway *gw, const char *path)
{
	struct gw_static *e = NULL;
	struct stat sb;
	size_t len;

	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (size_t)sb.st_size > STATIC_MAX)
		return NULL;
	for (size_t i = 0; i < gw->nstatic; i++)
		if (strcmp(gw->statics[i]->path, path) == 0)
			e = gw->statics[i];
	if (e != NULL && e->mtime == sb.st_mtime && e->size == sb.st_size)
		return e;
	if (e == NULL) {
		if (gw->nstatic == CACHE_MAX)
			return NULL;
		e = xcalloc(1, sizeof(*e));
		gw->statics = xrealloc(gw->statics, (gw->nstatic + 1) *
		    sizeof(*gw->statics));
		gw->statics[gw->nstatic++] = e;
		snprintf(e->path, sizeof(e->path), "%s", path);
	}
	free(e->data);
	free(e->gz);
	e->data = e->gz = NULL;
	if ((e->data = rt_read_file(path, STATIC_MAX, &len)) == NULL)
		return NULL;
	e->len = len;
	e->gz = gzip(e->data, len, &e->gzlen);
	e->mtime = sb.st_mtime;
	e->size = sb.st_size;
	snprintf(e->etag, sizeof(e->etag), "\"%llx-%llx\"",
	    (unsigned long long)sb.st_mtime, (unsigned long long)sb.st_size);
	return e;
}

const char *
gw_static_body(const struct gw_static *e, bool gz, size_t *len)
{
	*len = gz ? e->gzlen : e->len;
	return gz ? e->gz : e->data;
}

const char *
gw_static_etag(const struct gw_static *e)
{
	return e->etag;
}

void
gw_static_finish(struct gateway *gw)
{
	for (size_t i = 0; i < gw->nstatic; i++) {
		free(gw->statics[i]->data);
		free(gw->statics[i]->gz);
		free(gw->statics[i]);
	}
	free(gw->statics);
	gw->statics = NULL;
	gw->nstatic = 0;
}
