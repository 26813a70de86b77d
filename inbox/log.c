/*
 * The log front end. The process name and the level are the only state; they
 * are set once by main() before anything else runs (the one exception to "no
 * mutable globals", as in OpenSMTPD's log.c).
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

bool
log_enabled(int level)
{
	return level <= log_level;
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
	if (level == INBOX_LOG_DEBUG && file != NULL)
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
