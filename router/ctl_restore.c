/*
 * inboxctl restore BACKUP [--replay-inbound] [--json]: puts a copy made by
 * `inboxctl backup` in place of the store, which no process may have open
 * (LMDB holds a shared lock on lock.mdb while an environment is open: an
 * exclusive one taken here proves none is, and keeps one from opening
 * until the copy is in place). The replaced file is kept beside it. With
 * --replay-inbound the router's group on inbox:in is set back to the last
 * entry the backup holds the effect of, so what came after (and is still
 * in the stream) is applied again when the router starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "router/ctl_int.h"

/* The router's consumer group (router/router.c). */
#define ROUTER_GROUP "router"

/* What the backup holds. Returns 0, or 1 after printing why. */
static int
backup_check(struct ctl *ctl, const char *dir, uint64_t *schema,
    uint64_t *in_ms, uint64_t *in_seq)
{
	struct store *b = NULL;
	struct store_txn *txn = NULL;
	char path[4200];
	struct stat sb;
	int rc;

	*in_ms = *in_seq = 0;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	errno = 0;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "inboxctl: restore: %s: %s (give the directory "
		    "`inboxctl backup` wrote)\n", path, errno != 0 ?
		    strerror(errno) : "not a file");
		return 1;
	}
	if ((rc = store_open(&b, dir, ctl->cfg.store_map_size_mb,
	    STORE_RDONLY)) != 0) {
		fprintf(stderr, "inboxctl: restore: %s is not a readable store: "
		    "%s\n", dir, inbox_strerror(rc));
		return 1;
	}
	if ((rc = store_schema(b, schema)) != 0 ||
	    (rc = store_txn_begin(b, false, &txn)) != 0) {
		fprintf(stderr, "inboxctl: restore: %s: %s\n", dir,
		    inbox_strerror(rc));
		store_close(b);
		return 1;
	}
	store_meta_get(txn, "in_ms", in_ms);
	store_meta_get(txn, "in_seq", in_seq);
	store_txn_abort(txn);
	store_close(b);
	if (*schema > STORE_SCHEMA) {
		fprintf(stderr, "inboxctl: restore: %s has schema %" PRIu64
		    ", newer than this inboxd's %d: upgrade inboxd first\n",
		    dir, *schema, STORE_SCHEMA);
		return 1;
	}
	return 0;
}

/* Copies src to dst (created, fsynced). Returns 0, or -1 with errno. */
static int
copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in, out, e;
	ssize_t n = 0;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0) {
		e = errno;
		close(in);
		errno = e;
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				n = -1;
				goto done;
			}
			off += w;
		}
	}
done:
	e = errno;
	if (n < 0 || fsync(out) != 0) {
		if (n >= 0)
			e = errno;
		close(in);
		close(out);
		unlink(dst);
		errno = e;
		return -1;
	}
	close(in);
	if (close(out) != 0) {
		e = errno;
		unlink(dst);
		errno = e;
		return -1;
	}
	return 0;
}

/* Takes the exclusive lock on the store's lock.mdb (created if missing):
 * returns its descriptor, or -1 after printing why (a process has the
 * store open, or an error). */
static int
store_lock(const char *store)
{
	char path[4200];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	snprintf(path, sizeof(path), "%s/lock.mdb", store);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "inboxctl: restore: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		if (errno == EACCES || errno == EAGAIN)
			fprintf(stderr, "inboxctl: restore: the store %s is open "
			    "by a running process: stop inbox-router (and its "
			    "standbys) and every inbox-gateway first\n", store);
		else
			fprintf(stderr, "inboxctl: restore: locking %s: %s\n",
			    path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Sets the router's group on inbox:in back to id. Returns 0, or 1 after
 * printing why. */
static int
replay_from(struct ctl *ctl, const char *id)
{
	char key[128];
	redisReply *r;
	int rc = 1;

	rt_key(key, sizeof(key), &ctl->cfg, "in");
	if (ctl__connect(ctl) != 0)
		return 1;
	r = redisCommand(ctl->redis, "XGROUP SETID %s %s %s", key,
	    ROUTER_GROUP, id);
	if (r == NULL)
		fprintf(stderr, "inboxctl: restore: redis: %s\n",
		    ctl->redis->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		fprintf(stderr, "inboxctl: restore: XGROUP SETID %s %s: %s\n",
		    key, ROUTER_GROUP, r->str);
	else
		rc = 0;
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

int
ctl__restore(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--replay-inbound", NULL, false, NULL },
		{ "--json", NULL, false, NULL },
	};
	const char *ops[1], *store = ctl->cfg.store_path;
	char src[4200], dst[4200], tmp[4300], kept[4300], stamp[32], id[64];
	uint64_t schema, in_ms, in_seq;
	bool replay, json, had = false;
	struct stat sb;
	size_t nops;
	time_t now = time(NULL);
	int rc, lock = -1;

	if ((rc = ctl__args(argc, argv, opts, 2, ops, 1, 1, &nops,
	    "restore: from which backup? (the directory `inboxctl backup` "
	    "wrote)")) != 0)
		return rc;
	replay = opts[0].val != NULL;
	json = opts[1].val != NULL;
	if (backup_check(ctl, ops[0], &schema, &in_ms, &in_seq) != 0)
		return 1;
	snprintf(id, sizeof(id), "%" PRIu64 "-%" PRIu64, in_ms, in_seq);
	if (replay && in_ms == 0) {
		fprintf(stderr, "inboxctl: restore: %s does not record its "
		    "position in inbox:in (a backup of an older inboxd, or of "
		    "an empty store): --replay-inbound cannot be used\n",
		    ops[0]);
		return 1;
	}
	if (mkdir(store, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "inboxctl: restore: %s: %s\n", store,
		    strerror(errno));
		return 1;
	}
	if ((lock = store_lock(store)) < 0)
		return 1;
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", localtime(&now));
	snprintf(src, sizeof(src), "%s/data.mdb", ops[0]);
	snprintf(dst, sizeof(dst), "%s/data.mdb", store);
	snprintf(tmp, sizeof(tmp), "%s.restoring", dst);
	snprintf(kept, sizeof(kept), "%s.before-restore-%s", dst, stamp);
	rc = 1;
	if (copy_file(src, tmp) != 0) {
		fprintf(stderr, "inboxctl: restore: copying %s to %s: %s\n", src,
		    tmp, strerror(errno));
		goto out;
	}
	if (stat(dst, &sb) == 0) {
		had = true;
		if (rename(dst, kept) != 0) {
			fprintf(stderr, "inboxctl: restore: keeping %s as %s: "
			    "%s\n", dst, kept, strerror(errno));
			unlink(tmp);
			goto out;
		}
	}
	if (rename(tmp, dst) != 0 || rt_fsync_dir_of(dst) != 0) {
		fprintf(stderr, "inboxctl: restore: %s: %s%s%s\n", dst,
		    strerror(errno), had ? "; the previous store is " : "",
		    had ? kept : "");
		goto out;
	}
	if (replay && replay_from(ctl, id) != 0) {
		fprintf(stderr, "inboxctl: restore: the store is restored, but "
		    "inbox:in is not set back: run `redis-cli XGROUP SETID "
		    "<prefix>:in %s %s` before starting the router to replay "
		    "what came after the backup\n", ROUTER_GROUP, id);
		goto out;
	}
	rc = 0;
	if (json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "restored", src);
		cJSON_AddStringToObject(o, "store", dst);
		cJSON_AddNumberToObject(o, "schema", (double)schema);
		cJSON_AddStringToObject(o, "inbound_position", in_ms ? id : "");
		if (had)
			cJSON_AddStringToObject(o, "replaced", kept);
		else
			cJSON_AddNullToObject(o, "replaced");
		cJSON_AddBoolToObject(o, "replay_inbound", replay);
		ctl__print_json(o);
		cJSON_Delete(o);
	} else {
		printf("restored %s into %s (schema %" PRIu64 ")\n", src, dst,
		    schema);
		if (had)
			printf("the replaced store is kept as %s\n", kept);
		if (replay)
			printf("inbox:in set back to %s: the router applies what "
			    "came after the backup when it starts\n", id);
		printf("start the router, then the gateways\n");
	}
out:
	close(lock);             /* releases the lock */
	return rc;
}
