/*
 * TLS for inbox-imap's IMAP and for nothing else: a GnuTLS session wrapped
 * as a libetpan mailstream_low, so the certificate is verified (system
 * trust store and host name) before a password is sent. libetpan's own TLS
 * does not verify.
 */
#ifndef INBOX_CONNECTORS_IMAP_TLS_H
#define INBOX_CONNECTORS_IMAP_TLS_H

#include <stdbool.h>

#include <libetpan/libetpan.h>

/* Runs a TLS handshake on the connected socket fd for `host`. verify:
 * check the certificate chain and the host name. Returns the stream (it
 * owns fd), or NULL with a reason in err (fd is left to the caller). */
mailstream_low *imap_tls_open(int fd, const char *host, bool verify,
    char *err, size_t errlen);

#endif
