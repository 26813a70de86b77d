/* inbox-webhooks: channel webhooks to envelopes on inbox:in. It holds only its
 * channels' secrets and never opens the store. */
#include "connectors/webhooks/webhooks.h"
#include "inbox/rt/rt.h"

int
main(int argc, char **argv)
{
	struct inbox_config cfg;
	struct webhooks *wh;
	int argi, rc;

	rc = rt_proc_init(&cfg, "webhooks", argc, argv, &argi);
	if (rc != 0) {
		inbox_config_finish(&cfg);
		return rc > 0 ? 0 : 1;
	}
	rt_sig_block();
	if ((wh = webhooks_create(&cfg)) == NULL) {
		inbox_config_finish(&cfg);
		return 1;
	}
	rc = webhooks_run(wh);
	webhooks_destroy(wh);
	inbox_config_finish(&cfg);
	return rc;
}
