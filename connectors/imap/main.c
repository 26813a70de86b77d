/* inbox-imap: one mailbox to inbox:in, and its replies out by SMTP.
 * Usage: inbox-imap -c FILE [-n] [-v] [CONNECTOR-ID]
 * (the id may be left out when the config has one e-mail connector). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "connectors/imap/imap_int.h"
#include "inbox/rt/metrics.h"
#include "inbox/rt/rt.h"

/* The e-mail connector to run, or NULL after saying why. */
static const struct inbox_connector_conf *
pick(const struct inbox_config *cfg, const char *id)
{
	const struct inbox_connector_conf *found = NULL;
	size_t n = 0;

	if (id != NULL) {
		found = inbox_config_connector(cfg, id);
		if (found == NULL || found->channel != INBOX_CH_EMAIL) {
			fprintf(stderr, "inbox-imap: %s: no [connector %s] with "
			    "channel = email\n", cfg->file, id);
			return NULL;
		}
		return found;
	}
	for (size_t i = 0; i < cfg->nconnectors; i++) {
		if (cfg->connectors[i].channel == INBOX_CH_EMAIL) {
			found = &cfg->connectors[i];
			n++;
		}
	}
	if (n != 1) {
		fprintf(stderr, "inbox-imap: %s has %zu e-mail connectors: name "
		    "the one to run\n", cfg->file, n);
		return NULL;
	}
	return found;
}

/* What the connector needs, with a clear message for what is missing. */
static bool
check(const struct inbox_config *cfg, const struct inbox_connector_conf *cc)
{
	const char *tls[] = { "imaps", "starttls", "none" };
	const char *stls[] = { "smtps", "starttls", "none" };
	bool ok = true, t = false;

#define NEED(k) do { if (cc->k == NULL) { fprintf(stderr, "inbox-imap: %s: " \
	"[connector %s] needs %s\n", cfg->file, cc->id, #k); ok = false; } \
	} while (0)
	NEED(imap_host);
	NEED(imap_user);
	if (cc->imap_password == NULL && cc->imap_password_file == NULL) {
		fprintf(stderr, "inbox-imap: %s: [connector %s] needs "
		    "imap_password or imap_password_file\n", cfg->file, cc->id);
		ok = false;
	}
	for (size_t i = 0; i < 3; i++)
		t |= strcmp(cc->imap_tls, tls[i]) == 0;
	if (!t) {
		fprintf(stderr, "inbox-imap: %s: [connector %s] imap_tls: '%s' "
		    "is not imaps, starttls or none\n", cfg->file, cc->id,
		    cc->imap_tls);
		ok = false;
	}
	if (strcmp(cc->imap_auth, "login") != 0 &&
	    strcmp(cc->imap_auth, "plain") != 0) {
		fprintf(stderr, "inbox-imap: %s: [connector %s] imap_auth: '%s' "
		    "is not login or plain\n", cfg->file, cc->id, cc->imap_auth);
		ok = false;
	}
	if (strcmp(cc->initial_sync, "new") != 0 &&
	    strcmp(cc->initial_sync, "all") != 0 &&
	    (strtol(cc->initial_sync, NULL, 10) <= 0 ||
	    cc->initial_sync[strspn(cc->initial_sync, "0123456789")] != 'd' ||
	    cc->initial_sync[strspn(cc->initial_sync, "0123456789") + 1] !=
	    '\0')) {
		fprintf(stderr, "inbox-imap: %s: [connector %s] initial_sync: "
		    "'%s' is not new, all or <N>d\n", cfg->file, cc->id,
		    cc->initial_sync);
		ok = false;
	}
	if (cc->smtp_host != NULL) {
		NEED(from);
		t = false;
		for (size_t i = 0; i < 3; i++)
			t |= strcmp(cc->smtp_tls, stls[i]) == 0;
		if (!t) {
			fprintf(stderr, "inbox-imap: %s: [connector %s] smtp_tls: "
			    "'%s' is not smtps, starttls or none\n", cfg->file,
			    cc->id, cc->smtp_tls);
			ok = false;
		}
	}
#undef NEED
	return ok;
}

static char *
secret(const char *value, const char *file)
{
	if (value != NULL)
		return xstrdup(value);
	return file != NULL ? connector_read_secret(file) : NULL;
}

static char *
metrics_text(void *arg)
{
	struct imap_counters *n = arg;
	char *b = NULL;
	size_t len = 0;

	rt_metrics_printf(&b, &len,
	    "# TYPE inbox_imap_connected gauge\n"
	    "inbox_imap_connected %d\n"
	    "# TYPE inbox_imap_messages_total counter\n"
	    "inbox_imap_messages_total %llu\n"
	    "# TYPE inbox_imap_dead_letters_total counter\n"
	    "inbox_imap_dead_letters_total %llu\n"
	    "# TYPE inbox_imap_reconnects_total counter\n"
	    "inbox_imap_reconnects_total %llu\n"
	    "# TYPE inbox_imap_replies_total counter\n"
	    "inbox_imap_replies_total{status=\"sent\"} %llu\n"
	    "inbox_imap_replies_total{status=\"failed\"} %llu\n"
	    "# TYPE inbox_imap_reply_retries_total counter\n"
	    "inbox_imap_reply_retries_total %llu\n",
	    atomic_load(&n->connected) ? 1 : 0,
	    (unsigned long long)atomic_load(&n->fetched),
	    (unsigned long long)atomic_load(&n->poison),
	    (unsigned long long)atomic_load(&n->reconnects),
	    (unsigned long long)atomic_load(&n->sent),
	    (unsigned long long)atomic_load(&n->failed),
	    (unsigned long long)atomic_load(&n->retries));
	return b;
}

int
main(int argc, char **argv)
{
	struct imap_counters counters;
	struct rt_metrics *metrics = NULL;
	const struct inbox_connector_conf *cc;
	struct inbox_config cfg;
	struct imapd *d = NULL;
	struct imap_smtp *smtp = NULL;
	char *ipw = NULL, *spw = NULL;
	pthread_t th;
	bool thread = false;
	int argi, rc;

	rc = rt_proc_init(&cfg, "imap", argc, argv, &argi);
	if (rc < 0) {
		inbox_config_finish(&cfg);
		return 1;
	}
	cc = pick(&cfg, argi < argc ? argv[argi] : NULL);
	if (cc == NULL || !check(&cfg, cc)) {
		/* -n of a file without any e-mail connector, naming none, is
		 * a check of the file for the other processes: OK; a named
		 * connector that is missing or incomplete is an error */
		bool any = false;

		for (size_t i = 0; i < cfg.nconnectors; i++)
			any |= cfg.connectors[i].channel == INBOX_CH_EMAIL;
		inbox_config_finish(&cfg);
		return rc > 0 && cc == NULL && !any && argi >= argc ? 0 : 1;
	}
	if (rc > 0) {
		inbox_config_finish(&cfg);
		return 0;
	}
	rt_sig_block();
	if (!cc->enabled) {
		/* idle, so a service manager that restarts an exited
		 * process does not loop */
		log_info("imap: connector %s is disabled (enabled = no): not "
		    "connecting; waiting for SIGTERM", cc->id);
		while (!rt_sig_pending())
			sleep(1);
		inbox_config_finish(&cfg);
		return 0;
	}
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatalx("imap: libsodium or libcurl failed to start");
	if ((ipw = secret(cc->imap_password, cc->imap_password_file)) == NULL ||
	    (cc->smtp_user != NULL && (spw = secret(cc->smtp_password,
	    cc->smtp_password_file)) == NULL && (cc->smtp_password != NULL ||
	    cc->smtp_password_file != NULL))) {
		rc = 1;
		goto out;
	}
	memset(&counters, 0, sizeof(counters));
	if ((d = imapd_create(&cfg, cc, ipw, &counters)) == NULL) {
		rc = 1;
		goto out;
	}
	if (cc->smtp_host != NULL) {
		smtp = imap_smtp_create(&cfg, cc, spw, &counters);
		if (pthread_create(&th, NULL, imap_smtp_run, smtp) != 0)
			fatal("imap: pthread_create");
		thread = true;
	}
	if (cc->metrics != NULL)
		metrics = rt_metrics_start(cc->metrics, metrics_text, &counters);
	rc = imapd_run(d);
	if (thread)
		pthread_join(th, NULL);
out:
	rt_metrics_stop(metrics);
	imap_smtp_destroy(smtp);
	imapd_destroy(d);
	if (ipw != NULL)
		sodium_memzero(ipw, strlen(ipw));
	if (spw != NULL)
		sodium_memzero(spw, strlen(spw));
	free(ipw);
	free(spw);
	curl_global_cleanup();
	inbox_config_finish(&cfg);
	return rc;
}
