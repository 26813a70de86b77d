/* libwebsockets glue: stop on signals from the lws loop, log routing. */
#include <string.h>

#include "inbox/rt/rt.h"
#include "inbox/rt/rt_lws.h"

static void
poll_signals(lws_sorted_usec_list_t *sul)
{
	struct rt_lws_stop *s = lws_container_of(sul, struct rt_lws_stop, sul);

	if (rt_sig_pending()) {
		s->stop = true;
		lws_cancel_service(s->lws);
		return;
	}
	if (rt_sig_hup()) {
		if (s->hup != NULL)
			s->hup(s->hup_arg);
		else
			log_info("SIGHUP: nothing of this process is reloaded; "
			    "restart it to apply a new configuration");
	}
	lws_sul_schedule(s->lws, 0, &s->sul, poll_signals, 100 * LWS_US_PER_MS);
}

void
rt_lws_stop_start(struct rt_lws_stop *s, struct lws_context *lws)
{
	s->lws = lws;
	s->stop = false;
	lws_sul_schedule(lws, 0, &s->sul, poll_signals, 100 * LWS_US_PER_MS);
}

static void
lws_to_log(int level, const char *line)
{
	log_debug("lws: %.*s", (int)strcspn(line, "\n"), line);
}

void
rt_lws_log_init(void)
{
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
}

void
rt_lws_serve(struct rt_lws_stop *s)
{
	while (!s->stop && lws_service(s->lws, 0) >= 0)
		;
}
