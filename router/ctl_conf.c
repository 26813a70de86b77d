/*
 * inboxctl connectors add|disable|enable: edits the [connector <id>]
 * sections of the configuration file. The edited text is parsed as every
 * process parses it before anything is written (an edit that would not
 * load is refused with the parser's message, naming line and key), then
 * replaces the file atomically (a temporary file beside it, fsync, rename),
 * with its mode kept and comments and layout untouched. The processes read
 * connectors when they start (the router and gateways also on SIGHUP):
 * inboxctl says which to restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "router/ctl_int.h"

#define CONF_MAX (4 * 1024 * 1024)

/* Does text parse as a configuration? Prints the parser's message when
 * not. */
static bool
conf_loads(const char *file, const char *text, size_t len, const char *what)
{
	struct inbox_config cfg;
	struct inbox_err err;
	int rc;

	inbox_config_init(&cfg);
	rc = inbox_config_parse(&cfg, file, text, len, &err);
	inbox_config_finish(&cfg);
	if (rc != 0)
		fprintf(stderr, "inboxctl: connectors %s: the file would not "
		    "load: %s (nothing written)\n", what, err.msg);
	return rc == 0;
}

/* Replaces path with text atomically, keeping its mode. Returns 0, or 1
 * after printing why. */
static int
conf_replace(const char *path, const char *text, size_t len)
{
	char tmp[4200];
	struct stat sb;
	size_t off = 0;
	bool ok;
	int fd, e;

	if (stat(path, &sb) != 0) {
		fprintf(stderr, "inboxctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s.inboxctl-new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    sb.st_mode & 07777)) < 0) {
		fprintf(stderr, "inboxctl: %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0)
			break;
		off += (size_t)w;
	}
	ok = off == len && fchmod(fd, sb.st_mode & 07777) == 0 &&
	    fsync(fd) == 0;
	e = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		e = errno;
	}
	if (!ok || rename(tmp, path) != 0) {
		fprintf(stderr, "inboxctl: writing %s: %s (unchanged)\n", path,
		    strerror(ok ? errno : e));
		unlink(tmp);
		return 1;
	}
	rt_fsync_dir_of(path);
	return 0;
}

/* What to restart after connector `cc`'s section changed. */
static void
print_next_steps(const struct inbox_connector_conf *cc, bool email)
{
	if (email)
		printf("then: systemctl restart inbox-imap@%s (a disabled one "
		    "idles), and reload the router and the gateways "
		    "(systemctl reload 'inbox-router@*' inbox-gateway)\n",
		    cc != NULL ? cc->id : "ID");
	else
		printf("then: systemctl restart inbox-webhooks (it reads its "
		    "connectors when it starts), and reload the router and "
		    "the gateways (systemctl reload 'inbox-router@*' "
		    "inbox-gateway)\n");
}

/* inboxctl connectors add ID --channel C [--set KEY=VALUE]... [--dry-run] */
static int
conf_add(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--channel", NULL, true, NULL },
		{ "--dry-run", NULL, false, NULL },
	};
	const char *ops[1], *file = ctl->cfg.file;
	char *text = NULL, *out = NULL, **sets = NULL, **rest = NULL;
	size_t len, n = 0, nsets = 0, nrest = 0, nops, cap;
	int rc = 1, e;

	/* --set may repeat: gathered here, the rest goes to ctl__args */
	rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	sets = xcalloc((size_t)argc + 1, sizeof(*sets));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
			sets[nsets++] = argv[++i];
		else if (strcmp(argv[i], "--set") == 0) {
			fprintf(stderr, "inboxctl: connectors add: --set needs "
			    "KEY=VALUE\n");
			rc = 2;
			goto out;
		} else
			rest[nrest++] = argv[i];
	}
	if ((e = ctl__args((int)nrest, rest, opts, 2, ops, 1, 1, &nops,
	    "connectors add: which id?")) != 0) {
		rc = e;
		goto out;
	}
	if (opts[0].val == NULL) {
		fprintf(stderr, "inboxctl: connectors add: --channel is "
		    "required (api, telegram, whatsapp, messenger, instagram, "
		    "vk, viber or email)\n");
		rc = 2;
		goto out;
	}
	if (inbox_config_connector(&ctl->cfg, ops[0]) != NULL) {
		fprintf(stderr, "inboxctl: connectors add: connector '%s' exists "
		    "already in %s\n", ops[0], file);
		goto out;
	}
	if ((text = rt_read_file(file, CONF_MAX, &len)) == NULL) {
		fprintf(stderr, "inboxctl: %s: %s\n", file, strerror(errno));
		goto out;
	}
	cap = len + 256 + strlen(ops[0]) + strlen(opts[0].val);
	for (size_t i = 0; i < nsets; i++)
		cap += strlen(sets[i]) + 8;
	out = xmalloc(cap);
	n = (size_t)snprintf(out, cap, "%s%s\n[connector %s]\nchannel = %s\n",
	    text, len > 0 && text[len - 1] != '\n' ? "\n" : "", ops[0],
	    opts[0].val);
	for (size_t i = 0; i < nsets; i++) {
		const char *eq = strchr(sets[i], '=');

		if (eq == NULL || eq == sets[i] || strpbrk(sets[i], "\n\r[") !=
		    NULL) {
			fprintf(stderr, "inboxctl: connectors add: --set '%s': "
			    "expected KEY=VALUE on one line\n", sets[i]);
			rc = 2;
			goto out;
		}
		n += (size_t)snprintf(out + n, cap - n, "%.*s = %s\n",
		    (int)(eq - sets[i]), sets[i], eq + 1);
	}
	if (!conf_loads(file, out, n, "add"))
		goto out;
	if (opts[1].val != NULL) {
		printf("would add to %s:\n%s", file, out + len +
		    (len > 0 && text[len - 1] != '\n'));
		rc = 0;
		goto out;
	}
	if (conf_replace(file, out, n) != 0)
		goto out;
	printf("connector %s added to %s\n", ops[0], file);
	print_next_steps(NULL, strcmp(opts[0].val, "email") == 0);
	rc = 0;
out:
	free(text);
	free(out);
	free(sets);
	free(rest);
	return rc;
}

/* The start of the line after p (or the end). */
static const char *
next_line(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl != NULL ? nl + 1 : end;
}

static const char *
skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Finds [connector id] in text: *body is the line after its header, *end
 * the start of the next section (or the end of the text). */
static bool
find_section(const char *text, size_t len, const char *id,
    const char **body, const char **end)
{
	const char *p = text, *e = text + len;

	*body = NULL;
	for (; p < e; p = next_line(p, e)) {
		const char *q = skip_blanks(p, e);

		if (q >= e || *q != '[')
			continue;
		if (*body != NULL) {
			*end = p;
			return true;
		}
		q = skip_blanks(q + 1, e);
		if ((size_t)(e - q) > 9 && strncmp(q, "connector", 9) == 0 &&
		    (q[9] == ' ' || q[9] == '\t')) {
			size_t n = strlen(id);

			q = skip_blanks(q + 9, e);
			if ((size_t)(e - q) > n && strncmp(q, id, n) == 0 &&
			    *skip_blanks(q + n, e) == ']')
				*body = next_line(p, e);
		}
	}
	*end = e;
	return *body != NULL;
}

/* inboxctl connectors disable|enable ID */
static int
conf_enable(struct ctl *ctl, int argc, char **argv, bool on)
{
	const char *what = on ? "enable" : "disable";
	const char *ops[1], *file = ctl->cfg.file, *body, *end, *at = NULL;
	const char *after = NULL;
	const struct inbox_connector_conf *cc;
	char *text = NULL, *out = NULL;
	size_t len, n, nops;
	int rc;

	if ((rc = ctl__args(argc, argv, NULL, 0, ops, 1, 1, &nops, on ?
	    "connectors enable: which id?" : "connectors disable: which id?"))
	    != 0)
		return rc;
	rc = 1;
	if ((cc = inbox_config_connector(&ctl->cfg, ops[0])) == NULL) {
		fprintf(stderr, "inboxctl: connectors %s: no connector '%s' in "
		    "%s\n", what, ops[0], file);
		return 1;
	}
	if (cc->enabled == on) {
		printf("connector %s is %s already\n", cc->id, on ? "enabled" :
		    "disabled");
		return 0;
	}
	if ((text = rt_read_file(file, CONF_MAX, &len)) == NULL) {
		fprintf(stderr, "inboxctl: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (!find_section(text, len, cc->id, &body, &end)) {
		fprintf(stderr, "inboxctl: connectors %s: cannot find the line "
		    "[connector %s] in %s\n", what, cc->id, file);
		goto out;
	}
	/* the section's `enabled = ...` line, replaced; else one added
	 * after the header */
	for (const char *p = body; p < end; p = next_line(p, end)) {
		const char *q = skip_blanks(p, end);

		if ((size_t)(end - q) > 7 && strncmp(q, "enabled", 7) == 0 &&
		    *skip_blanks(q + 7, end) == '=') {
			at = p;
			after = next_line(p, end);
		}
	}
	if (at == NULL)
		at = after = body;
	out = xmalloc(len + 32);
	n = (size_t)(at - text);
	memcpy(out, text, n);
	if (at == after && body > text && body[-1] != '\n')
		out[n++] = '\n';     /* a header on the file's last line */
	n += (size_t)snprintf(out + n, 32, "enabled = %s\n", on ? "yes" :
	    "no");
	memcpy(out + n, after, (size_t)(text + len - after));
	n += (size_t)(text + len - after);
	if (!conf_loads(file, out, n, what) || conf_replace(file, out, n) != 0)
		goto out;
	printf("connector %s %s in %s\n", cc->id, on ? "enabled" :
	    "disabled", file);
	print_next_steps(cc, cc->channel == INBOX_CH_EMAIL);
	rc = 0;
out:
	free(text);
	free(out);
	return rc;
}

int
ctl__connectors_edit(struct ctl *ctl, int argc, char **argv)
{
	if (strcmp(argv[0], "add") == 0)
		return conf_add(ctl, argc - 1, argv + 1);
	if (strcmp(argv[0], "disable") == 0)
		return conf_enable(ctl, argc - 1, argv + 1, false);
	return conf_enable(ctl, argc - 1, argv + 1, true);
}
