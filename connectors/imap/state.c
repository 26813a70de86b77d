/* Checkpoints of inbox-imap: "folder TAB uidvalidity TAB last_uid" lines,
 * replaced atomically. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/imap/imap_int.h"
#include "inbox/rt/rt.h"

int
imap_state_load(struct imap_state *st, const char *path)
{
	size_t len = 0, pos = 0;
	char *buf;
	int line = 0;

	memset(st, 0, sizeof(*st));
	st->path = xstrdup(path);
	if ((buf = rt_read_file(path, 16 << 20, &len)) == NULL) {
		if (errno == ENOENT)
			return 0;
		log_warn("imap: cannot read the checkpoints in %s", path);
		return INBOX_EIO;
	}
	while (pos < len) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		char *l = buf + pos, *t1, *t2, *end;
		unsigned long v, u;

		line++;
		if (nl == NULL) {
			log_warnx("imap: %s:%d: truncated line (the checkpoints "
			    "file is damaged; remove it to resync)", path, line);
			free(buf);
			return INBOX_EINVAL;
		}
		*nl = '\0';
		pos = (size_t)(nl - buf) + 1;
		if ((t1 = strchr(l, '\t')) == NULL ||
		    (t2 = strchr(t1 + 1, '\t')) == NULL) {
			log_warnx("imap: %s:%d: expected folder, uidvalidity and "
			    "uid separated by tabs", path, line);
			free(buf);
			return INBOX_EINVAL;
		}
		*t1 = *t2 = '\0';
		errno = 0;
		v = strtoul(t1 + 1, &end, 10);
		if (*end != '\0' || errno || v > UINT32_MAX) {
			log_warnx("imap: %s:%d: bad uidvalidity", path, line);
			free(buf);
			return INBOX_EINVAL;
		}
		u = strtoul(t2 + 1, &end, 10);
		if (*end != '\0' || errno || u > UINT32_MAX) {
			log_warnx("imap: %s:%d: bad uid", path, line);
			free(buf);
			return INBOX_EINVAL;
		}
		st->cp = xrealloc(st->cp, (st->n + 1) * sizeof(*st->cp));
		st->cp[st->n].folder = xstrdup(l);
		st->cp[st->n].uidvalidity = (uint32_t)v;
		st->cp[st->n].last_uid = (uint32_t)u;
		st->n++;
	}
	free(buf);
	return 0;
}

struct imap_checkpoint *
imap_state_get(struct imap_state *st, const char *folder)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->cp[i].folder, folder) == 0)
			return &st->cp[i];
	return NULL;
}

static int
save(const struct imap_state *st)
{
	size_t n = strlen(st->path) + 16;
	char *tmp = xmalloc(n);
	FILE *f;
	int rc = INBOX_EIO;

	snprintf(tmp, n, "%s.tmp", st->path);
	if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("imap: cannot write %s", tmp);
		goto out;
	}
	for (size_t i = 0; i < st->n; i++)
		fprintf(f, "%s\t%u\t%u\n", st->cp[i].folder,
		    st->cp[i].uidvalidity, st->cp[i].last_uid);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_warn("imap: cannot write %s", tmp);
		fclose(f);
		goto out;
	}
	fclose(f);
	if (rename(tmp, st->path) != 0) {
		log_warn("imap: cannot rename %s", tmp);
		goto out;
	}
	rt_fsync_dir_of(st->path);
	rc = 0;
out:
	free(tmp);
	return rc;
}

int
imap_state_set(struct imap_state *st, const char *folder,
    uint32_t uidvalidity, uint32_t last_uid)
{
	struct imap_checkpoint *cp = imap_state_get(st, folder);

	if (strchr(folder, '\t') != NULL || strchr(folder, '\n') != NULL)
		return INBOX_EINVAL;
	if (cp == NULL) {
		st->cp = xrealloc(st->cp, (st->n + 1) * sizeof(*st->cp));
		cp = &st->cp[st->n++];
		cp->folder = xstrdup(folder);
	}
	cp->uidvalidity = uidvalidity;
	cp->last_uid = last_uid;
	return save(st);
}

void
imap_state_finish(struct imap_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->cp[i].folder);
	free(st->cp);
	free(st->path);
	memset(st, 0, sizeof(*st));
}
