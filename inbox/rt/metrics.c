/* A tiny HTTP listener for /metrics and /healthz (metrics.h). One request
 * per connection, answered from the listener's thread. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inbox/inbox.h"
#include "inbox/rt/metrics.h"

struct rt_metrics {
	int fd;
	pthread_t th;
	atomic_bool stop;
	char *(*text)(void *arg);
	void *arg;
};

void
rt_metrics_printf(char **buf, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*buf = xrealloc(*buf, *len + (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len += (size_t)n;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
answer(struct rt_metrics *m, int fd)
{
	char req[1024], hdr[256];
	struct pollfd p = { fd, POLLIN, 0 };
	const char *status = "404 Not Found", *type = "text/plain";
	char *body = NULL;
	size_t got = 0;
	ssize_t n;

	/* the request line is enough; a slow client gets 2 s */
	while (got < sizeof(req) - 1 && poll(&p, 1, 2000) > 0) {
		if ((n = recv(fd, req + got, sizeof(req) - 1 - got, 0)) <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n") != NULL)
			break;
	}
	req[got] = '\0';
	if (strncmp(req, "GET /metrics ", 13) == 0 ||
	    strncmp(req, "GET /metrics?", 13) == 0) {
		body = m->text(m->arg);
		status = "200 OK";
		type = "text/plain; version=0.0.4";
	} else if (strncmp(req, "GET /healthz ", 13) == 0) {
		body = xstrdup("ok\n");
		status = "200 OK";
	} else {
		body = xstrdup("not found\n");
	}
	snprintf(hdr, sizeof(hdr), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type,
	    strlen(body));
	send_all(fd, hdr, strlen(hdr));
	send_all(fd, body, strlen(body));
	free(body);
}

static void *
serve(void *arg)
{
	struct rt_metrics *m = arg;

	while (!atomic_load(&m->stop)) {
		struct pollfd p = { m->fd, POLLIN, 0 };
		int c;

		if (poll(&p, 1, 300) <= 0)
			continue;
		if ((c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		answer(m, c);
		close(c);
	}
	return NULL;
}

struct rt_metrics *
rt_metrics_start(const char *listen_on, char *(*text)(void *arg), void *arg)
{
	struct addrinfo hints, *res = NULL;
	struct rt_metrics *m;
	char host[256], *colon;
	int one = 1, rc;

	if (listen_on == NULL || listen_on[0] == '\0')
		return NULL;
	snprintf(host, sizeof(host), "%s", listen_on);
	if ((colon = strrchr(host, ':')) == NULL) {
		log_warnx("metrics: '%s' is not host:port", listen_on);
		return NULL;
	}
	*colon = '\0';
	if (strcmp(colon + 1, "0") == 0)
		return NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints,
	    &res)) != 0) {
		log_warnx("metrics: %s: %s", listen_on, gai_strerror(rc));
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->text = text;
	m->arg = arg;
	m->fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (m->fd < 0 || setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(m->fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(m->fd, 16) != 0) {
		log_warn("metrics: cannot listen on %s", listen_on);
		if (m->fd >= 0)
			close(m->fd);
		freeaddrinfo(res);
		free(m);
		return NULL;
	}
	freeaddrinfo(res);
	if (pthread_create(&m->th, NULL, serve, m) != 0)
		fatal("metrics: pthread_create");
	log_info("metrics on http://%s/metrics", listen_on);
	return m;
}

void
rt_metrics_stop(struct rt_metrics *m)
{
	if (m == NULL)
		return;
	atomic_store(&m->stop, true);
	pthread_join(m->th, NULL);
	close(m->fd);
	free(m);
}
