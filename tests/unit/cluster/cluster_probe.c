/* cluster_probe: drives inbox/rt/cluster.c for
 * tests/integration/cluster_tests.py (not installed).
 *
 * usage: cluster_probe [-v] [-t timeout_ms] SEEDS [COMMAND ARG...]
 *
 * With a command, runs it and exits; without, reads commands from stdin,
 * one a line (words split at blanks), on the same client, and prints one
 * line for each (flushed), so a test can change the cluster between two
 * commands. Commands:
 *   keyslot KEY          the slot rt_cluster_keyslot computes
 *   node KEY             the master the table names for KEY's slot, or -
 *   set KEY VALUE        SET KEY VALUE
 *   get KEY              GET KEY
 *   xadd STREAM F V      XADD STREAM * F V
 *   cmd KEY WORD...      any command WORD..., routed by KEY
 *   append COMMAND...    pipelines one of set, get, xadd, cmd; prints
 *                        "queued"
 *   replies              reads the replies of every appended command, in
 *                        order, and prints them on one line, joined by
 *                        " | "
 * Replies print as: status and string replies as they are (bytes outside
 * 0x21-0x7e as \xNN), integers in decimal, (nil), "(error) text", arrays
 * as [a b ...], and "(no answer)" when the client gave up (NULL).
 * Logs (-v: debug) go to stderr. Exit: 0, 1 when the (last) command got an
 * error or no answer, 2 usage, 3 no seed answered.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inbox/inbox.h"
#include "inbox/rt/cluster.h"

#define MAXWORDS 64

static void
usage(void)
{
	fprintf(stderr, "usage: cluster_probe [-v] [-t timeout_ms] SEEDS "
	    "[keyslot|node|set|get|xadd|cmd|append|replies ARG...]\n");
	exit(2);
}

static void
print_reply(FILE *f, const redisReply *r)
{
	switch (r->type) {
	case REDIS_REPLY_INTEGER:
		fprintf(f, "%lld", r->integer);
		break;
	case REDIS_REPLY_NIL:
		fputs("(nil)", f);
		break;
	case REDIS_REPLY_ARRAY:
		fputc('[', f);
		for (size_t i = 0; i < r->elements; i++) {
			if (i > 0)
				fputc(' ', f);
			print_reply(f, r->element[i]);
		}
		fputc(']', f);
		break;
	case REDIS_REPLY_ERROR:
		fputs("(error) ", f);
		/* FALLTHROUGH */
	default:
		for (size_t i = 0; i < r->len; i++) {
			unsigned char ch = (unsigned char)r->str[i];

			if (ch > 0x20 && ch < 0x7f)
				fputc(ch, f);
			else if (ch == ' ' && r->type != REDIS_REPLY_STRING)
				fputc(ch, f);
			else
				fprintf(f, "\\x%02x", ch);
		}
		break;
	}
}

/* Prints a reply (or "(no answer)" for NULL) without the newline; frees
 * it. Returns 0, or 1 for an error reply or none. */
static int
print_free(redisReply *r)
{
	int rc;

	if (r == NULL) {
		fputs("(no answer)", stdout);
		return 1;
	}
	print_reply(stdout, r);
	rc = r->type == REDIS_REPLY_ERROR;
	freeReplyObject(r);
	return rc;
}

/* The Redis command of a probe command (set, get, xadd, cmd) in a[]:
 * returns its argc and sets *key, or 0 when w is not one. */
static int
command_of(int n, char **w, const char **a, const char **key)
{
	const char *name = n > 0 ? w[0] : "";

	*key = n > 1 ? w[1] : "";
	if (strcmp(name, "set") == 0 && n == 3) {
		a[0] = "SET", a[1] = w[1], a[2] = w[2];
		return 3;
	}
	if (strcmp(name, "get") == 0 && n == 2) {
		a[0] = "GET", a[1] = w[1];
		return 2;
	}
	if (strcmp(name, "xadd") == 0 && n == 4) {
		a[0] = "XADD", a[1] = w[1], a[2] = "*", a[3] = w[2];
		a[4] = w[3];
		return 5;
	}
	if (strcmp(name, "cmd") == 0 && n >= 3 && n - 2 <= MAXWORDS) {
		for (int i = 2; i < n; i++)
			a[i - 2] = w[i];
		return n - 2;
	}
	return 0;
}

/* Runs one command (words[0] is its name) and prints one line. Returns 0,
 * 1 (error reply or none) or 2 (bad command). */
static int
run(struct rt_cluster *cl, int n, char **w)
{
	const char *a[MAXWORDS + 2], *key, *node;
	const char *name = n > 0 ? w[0] : "";
	redisReply *r;
	int argc, rc = 0, got;

	if (strcmp(name, "keyslot") == 0 && n == 2)
		printf("%u\n", rt_cluster_keyslot(w[1], strlen(w[1])));
	else if (strcmp(name, "node") == 0 && n == 2) {
		node = rt_cluster_node_of(cl, rt_cluster_keyslot(w[1],
		    strlen(w[1])));
		puts(node != NULL ? node : "-");
	} else if (strcmp(name, "append") == 0 &&
	    (argc = command_of(n - 1, w + 1, a, &key)) > 0) {
		rt_cluster_append_argv(cl, key, strlen(key), argc, a, NULL);
		puts("queued");
	} else if (strcmp(name, "replies") == 0 && n == 1) {
		for (int i = 0; (got = rt_cluster_get_reply(cl, &r)) !=
		    INBOX_ESTATE; i++) {
			if (i > 0)
				fputs(" | ", stdout);
			rc |= print_free(r);
			if ((got == 0) != (r != NULL))
				fputs(" (probe: bad return)", stdout);
		}
		putchar('\n');
	} else if ((argc = command_of(n, w, a, &key)) > 0) {
		rc = print_free(rt_cluster_command_argv(cl, key, strlen(key),
		    argc, a, NULL));
		putchar('\n');
	} else {
		printf("(probe) bad command '%s' with %d words\n", name, n);
		return 2;
	}
	return rc;
}

/* Reads commands from stdin until EOF. Returns the last command's
 * status. */
static int
run_stdin(struct rt_cluster *cl)
{
	char *line = NULL, *w[MAXWORDS + 2], *save;
	size_t cap = 0;
	int rc = 0;

	while (getline(&line, &cap, stdin) != -1) {
		int n = 0;

		for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL &&
		    n < MAXWORDS + 2; t = strtok_r(NULL, " \t\r\n", &save))
			w[n++] = t;
		if (n == 0)
			continue;
		rc = run(cl, n, w);
		fflush(stdout);
	}
	free(line);
	return rc;
}

int
main(int argc, char **argv)
{
	struct rt_cluster *cl;
	int ch, timeout_ms = 2000, level = INBOX_LOG_INFO, rc;

	while ((ch = getopt(argc, argv, "vt:")) != -1) {
		switch (ch) {
		case 'v':
			level = INBOX_LOG_DEBUG;
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	log_init("cluster_probe", level);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((cl = rt_cluster_open(argv[0], timeout_ms)) == NULL)
		return 3;
	if (argc > 1)
		rc = run(cl, argc - 1, argv + 1);
	else
		rc = run_stdin(cl);
	rt_cluster_close(cl);
	return rc;
}
