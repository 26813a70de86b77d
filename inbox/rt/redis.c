/* The Redis connection and stream helpers. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "inbox/rt/rt.h"

redisContext *
rt_redis_connect(const struct inbox_config *cfg)
{
	struct timeval tv = {
		.tv_sec = cfg->redis_timeout_ms / 1000,
		.tv_usec = (cfg->redis_timeout_ms % 1000) * 1000,
	};
	redisContext *c;

	if (cfg->redis_unix != NULL)
		c = redisConnectUnixWithTimeout(cfg->redis_unix, tv);
	else
		c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
	if (c == NULL) {
		log_warnx("redis: cannot allocate a context");
		return NULL;
	}
	if (c->err) {
		log_warnx("redis %s:%d: %s", cfg->redis_unix ? cfg->redis_unix :
		    cfg->redis_host, cfg->redis_unix ? 0 : cfg->redis_port,
		    c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

void
rt_key(char *buf, size_t len, const struct inbox_config *cfg, const char *name)
{
	snprintf(buf, len, "%s:%s", cfg->redis_prefix, name);
}

bool
rt_reply_is_error(const redisReply *r)
{
	return r == NULL || r->type == REDIS_REPLY_ERROR;
}

int
rt_group_create(redisContext *c, const char *stream, const char *group)
{
	redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM",
	    stream, group);
	int rc = 0;

	if (r == NULL) {
		log_warnx("redis: XGROUP CREATE %s: %s", stream, c->errstr);
		return INBOX_EUNAVAIL;
	}
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
		log_warnx("redis: XGROUP CREATE %s: %s", stream, r->str);
		rc = INBOX_EUNAVAIL;
	}
	freeReplyObject(r);
	return rc;
}

const char *
rt_entry_field(const redisReply *fields, const char *name, size_t *len)
{
	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i];
		const redisReply *v = fields->element[i + 1];

		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, name) == 0) {
			if (len != NULL)
				*len = v->len;
			return v->str;
		}
	}
	return NULL;
}
