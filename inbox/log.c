/*
 * The log front end. The process name, the level and the format are the only
 * state; they are set once by main() before anything else runs (the one
 * exception to "no mutable globals", as in OpenSMTPD's log.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inbox/inbox.h"

static const char *log_proc = "inboxd";
static int log_level = INBOX_LOG_INFO;
static bool log_json;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *procname, int level)
{
	log_proc = procname;
	log_level = level;
}

void
log_setlevel(int level)
{
	log_level = level;
}

void
log_setjson(bool json)
{
	log_json = json;
}

bool
log_enabled(int level)
{
	return level <= log_level;
}

/* Writes s as the body of a JSON string: quotes, backslashes and control
 * characters escaped, a byte that is not part of valid UTF-8 (a message cut
 * at 2048 bytes, a raw header quoted in a warning) written as U+FFFD, so
 * every line parses. */
static void
json_put(FILE *f, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		long bad = inbox_utf8_invalid_at(s, len);
		size_t ok = bad < 0 ? len : (size_t)bad;

		for (size_t i = 0; i < ok; i++) {
			unsigned char ch = (unsigned char)s[i];

			if (ch == '"' || ch == '\\')
				fprintf(f, "\\%c", ch);
			else if (ch == '\n')
				fputs("\\n", f);
			else if (ch == '\t')
				fputs("\\t", f);
			else if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\u%04x", ch);
			else
				putc(ch, f);
		}
		if (bad < 0)
			break;
		fputs("\\ufffd", f);
		s += ok + 1;
		len -= ok + 1;
	}
}

/* One JSON object per line, written with one stdio lock so lines from
 * threads do not interleave. */
static void
vlog_json(int level, const char *file, int line, const char *when, long ms,
    const char *msg, const char *suffix)
{
	flockfile(stderr);
	fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"proc\":\"", when, ms);
	json_put(stderr, log_proc);
	fprintf(stderr, "\",\"level\":\"%s\",", level_names[level]);
	if (level == INBOX_LOG_DEBUG && file != NULL) {
		fputs("\"file\":\"", stderr);
		json_put(stderr, file);
		fprintf(stderr, "\",\"line\":%d,", line);
	}
	fputs("\"msg\":\"", stderr);
	json_put(stderr, msg);
	if (suffix != NULL)
		json_put(stderr, suffix);
	fputs("\"}\n", stderr);
	funlockfile(stderr);
}

static void
vlog(int level, const char *file, int line, const char *suffix,
    const char *fmt, va_list ap)
{
	char msg[2048];
	char when[32];
	struct timespec ts;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json)
		vlog_json(level, file, line, when, ts.tv_nsec / 1000000, msg,
		    suffix);
	else if (level == INBOX_LOG_DEBUG && file != NULL)
		fprintf(stderr, "%s.%03ldZ %s %s: [%s:%d] %s%s\n", when,
		    ts.tv_nsec / 1000000, log_proc, level_names[level], file,
		    line, msg, suffix ? suffix : "");
	else
		fprintf(stderr, "%s.%03ldZ %s %s: %s%s\n", when,
		    ts.tv_nsec / 1000000, log_proc, level_names[level], msg,
		    suffix ? suffix : "");
}

void
log_msg(int level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (level < INBOX_LOG_ERROR || level > INBOX_LOG_DEBUG)
		level = INBOX_LOG_ERROR;
	va_start(ap, fmt);
	vlog(level, file, line, NULL, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	char suffix[256];
	va_list ap;

	snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
	if (!log_enabled(INBOX_LOG_WARN))
		return;
	va_start(ap, fmt);
	vlog(INBOX_LOG_WARN, NULL, 0, suffix, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char suffix[256];
	va_list ap;

	snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
	va_start(ap, fmt);
	vlog(INBOX_LOG_ERROR, NULL, 0, suffix, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(INBOX_LOG_ERROR, NULL, 0, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
