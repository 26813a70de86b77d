/* Clock, files, config loading, process start, signals. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inbox/rt/rt.h"

int64_t
rt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rt_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
rt_fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd, rc, e;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	} else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
		    (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

char *
rt_read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap + 1);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max) {
			free(buf);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		errno = e;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

int
rt_config_load(struct inbox_config *cfg, const char *path)
{
	struct inbox_err err;
	size_t len;
	char *text;
	int rc;

	inbox_config_init(cfg);
	text = rt_read_file(path, 1u << 20, &len);
	if (text == NULL) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		return INBOX_EIO;
	}
	rc = inbox_config_parse(cfg, path, text, len, &err);
	free(text);
	if (rc != 0)
		fprintf(stderr, "%s\n", err.msg);
	return rc;
}

bool
rt_sig_hup(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t pending, hup;

	sigpending(&pending);
	if (sigismember(&pending, SIGHUP) != 1)
		return false;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	return sigtimedwait(&hup, NULL, &zero) == SIGHUP;
}

struct inbox_config *
rt_config_reload(const struct inbox_config *old)
{
	struct inbox_config *cfg = xcalloc(1, sizeof(*cfg));
	char *file = xstrdup(old->file);

	if (rt_config_load(cfg, file) != 0) {
		log_warnx("reload: %s has errors (above); the running "
		    "configuration stays", file);
		inbox_config_finish(cfg);
		free(cfg);
		free(file);
		return NULL;
	}
	free(file);
	/* what the running process is built on stays as it started */
#define KEEP_STR(f) do { if ((old->f == NULL) != (cfg->f == NULL) || \
	(old->f != NULL && strcmp(old->f, cfg->f) != 0)) \
	log_warnx("reload: " #f " changed: it takes effect at the next " \
	"start"); free(cfg->f); cfg->f = old->f ? xstrdup(old->f) : NULL; \
	} while (0)
#define KEEP_INT(f) do { if (old->f != cfg->f) log_warnx("reload: " #f \
	" changed: it takes effect at the next start"); cfg->f = old->f; \
	} while (0)
	KEEP_INT(redis_shards);
	if (old->shard >= 0 && rt_config_shard(cfg, old->shard) != 0) {
		inbox_config_finish(cfg);
		free(cfg);
		return NULL;
	}
	KEEP_STR(store_path);
	KEEP_INT(store_map_size_mb);
	KEEP_STR(redis_prefix);
	KEEP_STR(router_consumer);
	KEEP_STR(gateway_listen);
	KEEP_INT(gateway_port);
	KEEP_STR(webhooks_listen);
	KEEP_INT(webhooks_port);
#undef KEEP_STR
#undef KEEP_INT
	log_setlevel(cfg->log_level);
	log_setjson(cfg->log_format != NULL &&
	    strcmp(cfg->log_format, "json") == 0);
	log_info("reload: %s read", cfg->file);
	return cfg;
}

int
rt_config_shard(struct inbox_config *cfg, int k)
{
	char path[4200];

	if (k < 0 || k >= cfg->redis_shards) {
		log_warnx("shard %d: redis.shards is %d, so a shard is 0 to %d",
		    k, cfg->redis_shards, cfg->redis_shards - 1);
		return INBOX_EINVAL;
	}
	cfg->shard = k;
	if (cfg->redis_shards == 1)
		return 0;
	if (cfg->router_metrics != NULL) {
		/* each shard's router listens on port + k */
		char *colon = strrchr(cfg->router_metrics, ':'), m[320];
		long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;

		if (port <= 0 || port + k > 65535) {
			log_warnx("shard %d: router.metrics %s: no port + %d",
			    k, cfg->router_metrics, k);
			return INBOX_EINVAL;
		}
		snprintf(m, sizeof(m), "%.*s:%ld",
		    (int)(colon - cfg->router_metrics), cfg->router_metrics,
		    port + k);
		free(cfg->router_metrics);
		cfg->router_metrics = xstrdup(m);
	}
	rt_store_path(path, sizeof(path), cfg, (unsigned)k);
	free(cfg->store_path);
	cfg->store_path = xstrdup(path);
	return 0;
}

void
rt_store_path(char *buf, size_t len, const struct inbox_config *cfg,
    unsigned k)
{
	if (cfg->redis_shards > 1)
		snprintf(buf, len, "%s/shard-%u", cfg->store_path, k);
	else
		snprintf(buf, len, "%s", cfg->store_path);
}

int
rt_proc_init(struct inbox_config *cfg, const char *procname, int argc,
    char **argv, int *argi)
{
	const char *file = NULL, *shard = NULL;
	bool check = false, verbose = false;
	/* the processes that serve (router) or act on (inboxctl) one shard */
	bool per_shard = strcmp(procname, "router") == 0 ||
	    strcmp(procname, "inboxctl") == 0;
	int opt;

	inbox_config_init(cfg);
	while ((opt = getopt(argc, argv, per_shard ? "+c:nvhs:" : "+c:nvh")) !=
	    -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'n': check = true; break;
		case 'v': verbose = true; break;
		case 's': shard = optarg; break;
		default:
			fprintf(stderr, "usage: %s -c FILE [-n] [-v]%s ...\n",
			    procname, per_shard ? " [-s SHARD]" : "");
			return -1;
		}
	}
	*argi = optind;
	if (file == NULL) {
		fprintf(stderr, "%s: -c FILE is required\n", procname);
		return -1;
	}
	inbox_config_finish(cfg);
	if (rt_config_load(cfg, file) != 0)
		return -1;
	/* inboxctl decides by command (global data needs no shard) */
	if (strcmp(procname, "router") == 0 && shard == NULL &&
	    cfg->redis_shards > 1 && !check) {
		fprintf(stderr, "%s: %s: redis.shards is %d: start one router "
		    "per shard, each with -s SHARD (0 to %d)\n", procname,
		    file, cfg->redis_shards, cfg->redis_shards - 1);
		return -1;
	}
	if (shard != NULL) {
		char *end;
		long k = strtol(shard, &end, 10);

		if (*shard == '\0' || *end != '\0' || k < 0 ||
		    k >= cfg->redis_shards) {
			fprintf(stderr, "%s: -s %s: a shard is a number from 0 "
			    "to %d (redis.shards - 1)\n", procname, shard,
			    cfg->redis_shards - 1);
			return -1;
		}
		if (rt_config_shard(cfg, (int)k) != 0)
			return -1;
	}
	if (verbose)
		cfg->log_level = INBOX_LOG_DEBUG;
	if (check) {
		if (verbose)
			inbox_config_dump(cfg, stdout);
		printf("configuration OK\n");
		return 1;
	}
	log_init(procname, cfg->log_level);
	log_setjson(cfg->log_format != NULL &&
	    strcmp(cfg->log_format, "json") == 0);
	return 0;
}

static void
sigset_ours(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

void
rt_sig_block(void)
{
	sigset_t set;

	sigset_ours(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool
rt_sig_pending(void)
{
	sigset_t pending, ours;

	sigpending(&pending);
	sigset_ours(&ours);
	sigdelset(&ours, SIGHUP);        /* a reload, not a stop */
	for (int s = 1; s < NSIG; s++) {
		if (sigismember(&ours, s) == 1 && sigismember(&pending, s) == 1)
			return true;
	}
	return false;
}
