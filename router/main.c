/* inbox-router: threads envelopes into conversations; the store's writer. */
#include <stdlib.h>

#include "inbox/rt/rt.h"
#include "router/router.h"

int
main(int argc, char **argv)
{
	struct inbox_config cfg;
	struct router *r;
	int argi, rc;

	rc = rt_proc_init(&cfg, "router", argc, argv, &argi);
	if (rc != 0) {
		inbox_config_finish(&cfg);
		return rc > 0 ? 0 : 1;
	}
	rt_sig_block();
	if ((r = router_create(&cfg)) == NULL) {
		inbox_config_finish(&cfg);
		return 1;
	}
	rc = router_run(r);
	router_destroy(r);
	inbox_config_finish(&cfg);
	return rc == 0 ? 0 : 1;
}
