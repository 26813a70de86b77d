/*
 * librt's Prometheus endpoint for processes without an HTTP server of their
 * own (router, inbox-imap): a thread that answers GET /metrics with the
 * text its callback builds and GET /healthz with "ok".
 */
#ifndef INBOX_RT_METRICS_H
#define INBOX_RT_METRICS_H

#include <stddef.h>

struct rt_metrics;

/* Listens on "host:port" (port 0: nothing is started, NULL returned with
 * no error). text(arg) returns the exposition text (malloc'd) and is called
 * from the listener's thread: it must only read what is safe to read from
 * another thread (atomics) or open its own connections. Returns NULL and
 * logs when the address cannot be bound. */
struct rt_metrics *rt_metrics_start(const char *listen,
    char *(*text)(void *arg), void *arg);
void rt_metrics_stop(struct rt_metrics *m);

/* Appends printf-style text to a growing buffer (*buf malloc'd). */
void rt_metrics_printf(char **buf, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
