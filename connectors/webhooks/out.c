/*
 * Outbound delivery (out.h). Each sender thread loops: report the replies
 * whose outcome is known (connector_out_done: status envelope, dead-letter
 * on failure, XACK), start the calls that are due, read new replies when a
 * slot is free, and let curl make progress. A reply that fails in a way
 * worth retrying (network, 5xx, 429) waits for Retry-After or the backoff
 * and is tried again, up to send_attempts; a 4xx that says the request is
 * wrong fails at once. A text longer than the platform takes (text_max)
 * goes as several messages, one after the other, each part retried on its
 * own; the status names every part's id. An outcome that cannot be
 * reported (Redis down) is kept and reported later, never sent twice by
 * this process.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "connectors/common/connector.h"
#include "connectors/webhooks/out.h"
#include "inbox/rt/rt.h"

#define RESP_MAX (256 * 1024)
#define READ_BLOCK_MS 500
#define RETRY_AFTER_MAX_MS (3600 * 1000)

struct job {
	struct connector_out o;
	int failures;
	int64_t not_before;
	CURL *easy;                  /* non-NULL while in flight */
	struct curl_slist *hdrs;
	struct wh_call call;
	struct wh_buf resp;
	int64_t retry_after_ms;      /* from the Retry-After header */
	char curl_err[CURL_ERROR_SIZE];
	char **parts;                /* the text cut to text_max, or NULL */
	size_t nparts, part;         /* part: the one being sent */
	char **ids;                  /* the platform's ids of parts sent */
	size_t nids;
	bool finished;               /* outcome known, not yet reported */
	char status[16];
	char error[600];
};

struct sender {
	pthread_t th;
	bool started;
	const struct inbox_config *cfg;
	const struct wh_conn *wc;
	const struct wh_channel_impl *impl;
	struct connector *c;
	CURLM *multi;
	struct job **jobs;
	size_t njobs, cap;
	const char *base;
	atomic_bool *stop;
};

struct wh_out {
	atomic_bool stop;
	struct sender *senders;
	size_t n;
};

void
wh__conn_check(const struct wh_conn *wc)
{
	const struct inbox_connector_conf *cc = wc->cc;
	const char *need = NULL;

	switch (cc->channel) {
	case INBOX_CH_TELEGRAM:
	case INBOX_CH_VK:
		if (cc->secret == NULL)
			need = "secret";
		break;
	case INBOX_CH_WHATSAPP:
	case INBOX_CH_MESSENGER:
	case INBOX_CH_INSTAGRAM:
		if (cc->app_secret == NULL)
			need = "app_secret";
		break;
	case INBOX_CH_VIBER:
		if (wc->token == NULL)
			need = "token";
		break;
	default:
		break;
	}
	if (need != NULL)
		log_warnx("connector %s: no %s: its webhook refuses every "
		    "request", cc->id, need);
	if (cc->channel != INBOX_CH_API && cc->channel != INBOX_CH_EMAIL &&
	    wc->token == NULL)
		log_warnx("connector %s: no token or token_file: replies are "
		    "not delivered", cc->id);
	if (cc->channel == INBOX_CH_WHATSAPP && cc->phone_number_id == NULL)
		log_warnx("connector %s: no phone_number_id: replies fail",
		    cc->id);
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct job *j = ud;
	size_t n = size * nmemb;
	char *tmp;

	if (j->resp.len + n > RESP_MAX)
		return n; /* keep the head; the rest is not needed */
	tmp = xstrndup(ptr, n);
	wh_buf_add(&j->resp, tmp);
	free(tmp);
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct job *j = ud;
	size_t n = size * nmemb;

	if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
		long s = strtol(ptr + 12, NULL, 10);

		if (s > 0 && s <= 86400)
			j->retry_after_ms = s * 1000;
	}
	return n;
}

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	connector_out_finish(&j->o);
	curl_slist_free_all(j->hdrs);
	free(j->call.body);
	wh_buf_finish(&j->resp);
	for (size_t i = 0; i < j->nparts; i++)
		free(j->parts[i]);
	free(j->parts);
	for (size_t i = 0; i < j->nids; i++)
		free(j->ids[i]);
	free(j->ids);
	free(j);
}

static void
finish(struct job *j, const char *status, const char *error)
{
	j->finished = true;
	snprintf(j->status, sizeof(j->status), "%s", status);
	snprintf(j->error, sizeof(j->error), "%s", error ? error : "");
}

/* Builds the call for the job's current part: the item itself when the
 * text fits, else a copy with the part's text and number ("part", from 0;
 * VK's random_id uses it) and the reply context on the first part only. */
static int
build(struct sender *s, struct job *j, char *why, size_t wlen)
{
	const char *text = connector_item_str(j->o.item, "text");
	cJSON *copy;
	int rc;

	if (j->parts == NULL && s->impl->text_max > 0 && text != NULL) {
		j->nparts = wh_text_split(text, s->impl->text_max,
		    s->impl->text_units, &j->parts);
		if (j->nparts > 1)
			log_info("connector %s: %s goes as %zu messages (the "
			    "platform takes %zu characters in one)",
			    s->wc->cc->id, j->o.id, j->nparts,
			    s->impl->text_max);
	}
	if (j->nparts <= 1)
		return s->impl->send_build(s->wc, s->base, j->o.item, &j->call,
		    why, wlen);
	if ((copy = cJSON_Duplicate(j->o.item, true)) == NULL)
		fatalx("webhooks: out of memory");
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "text");
	cJSON_AddStringToObject(copy, "text", j->parts[j->part]);
	cJSON_AddNumberToObject(copy, "part", (double)j->part);
	if (j->part > 0)
		cJSON_DeleteItemFromObjectCaseSensitive(copy, "reply_to");
	rc = s->impl->send_build(s->wc, s->base, copy, &j->call, why, wlen);
	cJSON_Delete(copy);
	return rc;
}

/* Starts the platform call for j (builds it on its first attempt). */
static void
start(struct sender *s, struct job *j)
{
	char why[512], ctype[128];

	if (j->call.body == NULL) {
		if (build(s, j, why, sizeof(why)) != 0) {
			finish(j, "failed", why);
			return;
		}
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		    j->call.content_type);
		j->hdrs = curl_slist_append(NULL, ctype);
		if (j->call.auth_header[0] != '\0')
			j->hdrs = curl_slist_append(j->hdrs, j->call.auth_header);
	}
	wh_buf_finish(&j->resp);
	j->retry_after_ms = 0;
	j->curl_err[0] = '\0';
	if ((j->easy = curl_easy_init()) == NULL)
		fatalx("webhooks: curl_easy_init failed");
	curl_easy_setopt(j->easy, CURLOPT_URL, j->call.url);
	curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->call.body);
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE,
	    (long)strlen(j->call.body));
	curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
	curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->curl_err);
	curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(j->easy, CURLOPT_USERAGENT, "inboxd-webhooks");
	curl_multi_add_handle(s->multi, j->easy);
}

/* A call ended: decide sent, failed or retry. */
static void
ended(struct sender *s, struct job *j, CURLcode cc)
{
	const struct inbox_connector_conf *conf = s->wc->cc;
	struct wh_send_result res;
	long http = 0;

	memset(&res, 0, sizeof(res));
	if (cc == CURLE_OK)
		curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &http);
	curl_multi_remove_handle(s->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	if (cc != CURLE_OK) {
		const char *e = j->curl_err[0] ? j->curl_err :
		    curl_easy_strerror(cc);

		s->impl->send_result(0, e, strlen(e), 0, &res);
	} else {
		s->impl->send_result(http, wh_buf_str(&j->resp), j->resp.len,
		    j->retry_after_ms, &res);
	}
	switch (res.outcome) {
	case WH_SEND_SENT:
		log_debug("connector %s: %s sent (%s)", conf->id, j->o.id,
		    res.id);
		j->ids = xrealloc(j->ids, (j->nids + 1) * sizeof(*j->ids));
		j->ids[j->nids++] = xstrdup(res.id);
		if (j->part + 1 < j->nparts) {
			/* the next part, at once, with its own attempts */
			j->part++;
			free(j->call.body);
			j->call.body = NULL;
			curl_slist_free_all(j->hdrs);
			j->hdrs = NULL;
			j->failures = 0;
			j->not_before = 0;
			return;
		}
		finish(j, "sent", NULL);
		return;
	case WH_SEND_FAILED:
		log_warnx("connector %s: %s failed: %s", conf->id, j->o.id,
		    res.error);
		if (j->part > 0) {
			char why[sizeof(j->error)];

			snprintf(why, sizeof(why), "part %zu of %zu (the first %zu "
			    "were sent): %.400s", j->part + 1, j->nparts, j->part,
			    res.error);
			finish(j, "failed", why);
		} else
			finish(j, "failed", res.error);
		return;
	case WH_SEND_RETRY:
		break;
	}
	j->failures++;
	if (j->failures >= conf->send_attempts) {
		char why[sizeof(j->error)];

		if (j->part > 0)
			snprintf(why, sizeof(why), "part %zu of %zu (the first "
			    "%zu were sent): gave up after %d attempts: %.400s",
			    j->part + 1, j->nparts, j->part, j->failures,
			    res.error);
		else
			snprintf(why, sizeof(why), "gave up after %d attempts: "
			    "%.500s", j->failures, res.error);
		log_warnx("connector %s: %s %s", conf->id, j->o.id, why);
		finish(j, "failed", why);
		return;
	}
	{
		int64_t d = connector_backoff_ms(j->failures,
		    (uint32_t)(uintptr_t)j ^ (uint32_t)rt_now_ms());

		if (res.retry_after_ms > 0)
			d = res.retry_after_ms > RETRY_AFTER_MAX_MS ?
			    RETRY_AFTER_MAX_MS : res.retry_after_ms;
		j->not_before = rt_now_ms() + d;
		log_info("connector %s: %s attempt %d: %s; retry in %lld ms",
		    conf->id, j->o.id, j->failures, res.error, (long long)d);
	}
}

static bool
have(const struct sender *s, const char *id)
{
	for (size_t i = 0; i < s->njobs; i++) {
		if (strcmp(s->jobs[i]->o.id, id) == 0)
			return true;
	}
	return false;
}

/* Reports finished jobs; stops at the first Redis failure. */
static void
report(struct sender *s)
{
	size_t k = 0;
	bool redis_ok = true;

	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = s->jobs[i];

		if (j->finished && redis_ok && connector_out_done_ids(s->c,
		    &j->o, j->status, (const char *const *)j->ids, j->nids,
		    j->error[0] ? j->error : NULL) == 0) {
			job_free(j);
			continue;
		}
		if (j->finished)
			redis_ok = false;
		s->jobs[k++] = j;
	}
	s->njobs = k;
}

static int64_t
next_due(const struct sender *s, int64_t now)
{
	int64_t t = READ_BLOCK_MS;

	for (size_t i = 0; i < s->njobs; i++) {
		const struct job *j = s->jobs[i];

		if (j->easy != NULL)
			return 0;
		if (!j->finished && j->not_before - now < t)
			t = j->not_before - now;
	}
	return t < 0 ? 0 : t;
}

static void *
run(void *arg)
{
	struct sender *s = arg;
	struct connector_out *in = xcalloc(s->cap, sizeof(*in));
	int64_t redis_wait_until = 0;

	while (!atomic_load(s->stop)) {
		int64_t now = rt_now_ms();
		int running, left, wait;
		CURLMsg *m;

		report(s);
		for (size_t i = 0; i < s->njobs; i++) {
			struct job *j = s->jobs[i];

			if (!j->finished && j->easy == NULL &&
			    now >= j->not_before)
				start(s, j);
		}
		if (s->njobs < s->cap && now >= redis_wait_until) {
			int block = s->njobs > 0 ? 1 : READ_BLOCK_MS;
			int n = connector_out_read(s->c, in, s->cap - s->njobs,
			    block);

			if (n < 0)
				redis_wait_until = rt_now_ms() + 1000;
			for (int i = 0; i < n; i++) {
				struct job *j;

				if (have(s, in[i].id)) {
					connector_out_finish(&in[i]);
					continue;
				}
				j = xcalloc(1, sizeof(*j));
				j->o = in[i];
				j->failures = (int)(in[i].deliveries - 1);
				if (j->failures >= s->wc->cc->send_attempts)
					j->failures = s->wc->cc->send_attempts - 1;
				s->jobs[s->njobs++] = j;
				start(s, j);
			}
		}
		curl_multi_perform(s->multi, &running);
		while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
			struct job *j = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
			    (char **)&j);
			ended(s, j, m->data.result);
		}
		wait = (int)next_due(s, rt_now_ms());
		if (s->njobs == 0 && rt_now_ms() >= redis_wait_until)
			continue; /* the next read blocks in Redis */
		if (wait == 0 && running > 0)
			wait = 50;
		if (wait > 0 || running > 0)
			curl_multi_poll(s->multi, NULL, 0, wait > 0 ? wait : 1,
			    NULL);
	}
	for (size_t i = 0; i < s->njobs; i++) {
		if (s->jobs[i]->easy != NULL) {
			curl_multi_remove_handle(s->multi, s->jobs[i]->easy);
			curl_easy_cleanup(s->jobs[i]->easy);
		}
		job_free(s->jobs[i]);
	}
	s->njobs = 0;
	free(in);
	return NULL;
}

struct wh_out *
wh_out_start(const struct inbox_config *cfg, const struct wh_conn *conns,
    size_t n)
{
	struct wh_out *o;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct wh_channel_impl *impl =
		    wh_channel_find(conns[i].cc->channel);

		if (impl != NULL && impl->send_build != NULL &&
		    conns[i].token != NULL && conns[i].cc->enabled)
			k++;
		else if (!conns[i].cc->enabled)
			log_info("connector %s is disabled: its replies wait in "
			    "its stream", conns[i].cc->id);
	}
	if (k == 0)
		return NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("webhooks: curl_global_init failed");
	o = xcalloc(1, sizeof(*o));
	atomic_init(&o->stop, false);
	o->senders = xcalloc(k, sizeof(*o->senders));
	for (size_t i = 0; i < n; i++) {
		const struct wh_channel_impl *impl =
		    wh_channel_find(conns[i].cc->channel);
		struct sender *s;

		if (impl == NULL || impl->send_build == NULL ||
		    conns[i].token == NULL || !conns[i].cc->enabled)
			continue;
		s = &o->senders[o->n++];
		s->cfg = cfg;
		s->wc = &conns[i];
		s->impl = impl;
		s->stop = &o->stop;
		s->base = conns[i].cc->api_base ? conns[i].cc->api_base :
		    impl->api_default;
		s->cap = (size_t)conns[i].cc->send_concurrency;
		s->jobs = xcalloc(s->cap, sizeof(*s->jobs));
		s->c = connector_create(cfg, conns[i].cc);
		if ((s->multi = curl_multi_init()) == NULL)
			fatalx("webhooks: curl_multi_init failed");
		if (pthread_create(&s->th, NULL, run, s) != 0)
			fatal("webhooks: pthread_create");
		s->started = true;
		log_info("connector %s: delivering replies through %s",
		    conns[i].cc->id, s->base);
	}
	return o;
}

void
wh_out_stop(struct wh_out *o)
{
	if (o == NULL)
		return;
	atomic_store(&o->stop, true);
	for (size_t i = 0; i < o->n; i++) {
		struct sender *s = &o->senders[i];

		if (s->started)
			pthread_join(s->th, NULL);
		curl_multi_cleanup(s->multi);
		connector_destroy(s->c);
		free(s->jobs);
	}
	free(o->senders);
	free(o);
	curl_global_cleanup();
}
