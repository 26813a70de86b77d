/* GnuTLS under libetpan (tls.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "connectors/imap/tls.h"
#include "inbox/inbox.h"

#define IO_TIMEOUT_MS 60000

struct tls {
	int fd;
	gnutls_session_t session;
	gnutls_certificate_credentials_t cred;
};

/* Waits until fd is ready for what GnuTLS wants (read or write). */
static int
wait_io(struct tls *t)
{
	struct pollfd p = { t->fd, gnutls_record_get_direction(t->session) ?
	    POLLOUT : POLLIN, 0 };
	int n;

	do {
		n = poll(&p, 1, IO_TIMEOUT_MS);
	} while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -1;
}

static ssize_t
tls_read(mailstream_low *s, void *buf, size_t count)
{
	struct tls *t = s->data;

	for (;;) {
		ssize_t n;

		if (gnutls_record_check_pending(t->session) == 0 &&
		    wait_io(t) != 0)
			return -1;
		n = gnutls_record_recv(t->session, buf, count);
		if (n >= 0)
			return n;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			return -1;
	}
}

static ssize_t
tls_write(mailstream_low *s, const void *buf, size_t count)
{
	struct tls *t = s->data;

	for (;;) {
		ssize_t n = gnutls_record_send(t->session, buf, count);

		if (n >= 0)
			return n;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			return -1;
		if (wait_io(t) != 0)
			return -1;
	}
}

static int
tls_close(mailstream_low *s)
{
	struct tls *t = s->data;

	if (t->fd >= 0) {
		gnutls_bye(t->session, GNUTLS_SHUT_WR);
		close(t->fd);
		t->fd = -1;
	}
	return 0;
}

static int
tls_get_fd(mailstream_low *s)
{
	struct tls *t = s->data;

	/* Decrypted bytes waiting count as "readable" for IDLE's poll: the
	 * caller checks imap_tls_pending first (see imap.c). */
	return t->fd;
}

static void
tls_free(mailstream_low *s)
{
	struct tls *t = s->data;

	tls_close(s);
	gnutls_deinit(t->session);
	gnutls_certificate_free_credentials(t->cred);
	free(t);
	free(s);
}

static mailstream_low_driver tls_driver = {
	.mailstream_read = tls_read,
	.mailstream_write = tls_write,
	.mailstream_close = tls_close,
	.mailstream_get_fd = tls_get_fd,
	.mailstream_free = tls_free,
};

mailstream_low *
imap_tls_open(int fd, const char *host, bool verify, char *err, size_t errlen)
{
	struct tls *t = xcalloc(1, sizeof(*t));
	mailstream_low *low;
	unsigned status = 0;
	int rc;

	t->fd = fd;
	if ((rc = gnutls_certificate_allocate_credentials(&t->cred)) < 0 ||
	    (rc = gnutls_certificate_set_x509_system_trust(t->cred)) < 0 ||
	    (rc = gnutls_init(&t->session, GNUTLS_CLIENT |
	    GNUTLS_NONBLOCK)) < 0) {
		snprintf(err, errlen, "TLS setup: %s", gnutls_strerror(rc));
		goto fail_cred;
	}
	gnutls_set_default_priority(t->session);
	gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, t->cred);
	gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, host, strlen(host));
	if (verify)
		gnutls_session_set_verify_cert(t->session, host, 0);
	gnutls_transport_set_int(t->session, fd);
	do {
		rc = gnutls_handshake(t->session);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			if (wait_io(t) != 0) {
				snprintf(err, errlen, "TLS handshake: timeout");
				goto fail;
			}
		}
	} while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
	if (rc < 0) {
		if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
			gnutls_datum_t out = { NULL, 0 };

			status = gnutls_session_get_verify_cert_status(t->session);
			gnutls_certificate_verification_status_print(status,
			    gnutls_certificate_type_get(t->session), &out, 0);
			snprintf(err, errlen, "certificate of %s not trusted: %s "
			    "(imap_verify = no turns the check off, for a test "
			    "server only)", host, out.data ? (char *)out.data :
			    "?");
			gnutls_free(out.data);
		} else {
			snprintf(err, errlen, "TLS handshake with %s: %s", host,
			    gnutls_strerror(rc));
		}
		goto fail;
	}
	low = mailstream_low_new(t, &tls_driver);
	if (low == NULL)
		fatalx("imap: out of memory");
	return low;

fail:
	gnutls_deinit(t->session);
fail_cred:
	gnutls_certificate_free_credentials(t->cred);
	free(t);
	return NULL;
}
