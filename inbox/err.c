/* Error codes and the error record parsers fill. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "inbox/inbox.h"

const char *
inbox_strerror(int code)
{
	switch (code) {
	case INBOX_OK: return "success";
	case INBOX_EINVAL: return "invalid input";
	case INBOX_ENOTFOUND: return "not found";
	case INBOX_EEXIST: return "already exists";
	case INBOX_ENOMEM: return "out of memory";
	case INBOX_EIO: return "I/O error";
	case INBOX_ETOOBIG: return "too large";
	case INBOX_EUNAVAIL: return "service unavailable";
	case INBOX_ESTATE: return "not allowed in this state";
	}
	return "unknown error";
}

int
inbox_err_set(struct inbox_err *err, int code, const char *field, int line,
    const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	err->line = line;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}
