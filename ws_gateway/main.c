/* inbox-gateway: the web client, agent login and the websocket protocol. It
 * opens the store read-only. */
#include "inbox/rt/rt.h"
#include "ws_gateway/gateway.h"

int
main(int argc, char **argv)
{
	struct inbox_config cfg;
	struct gateway *gw;
	int argi, rc;

	rc = rt_proc_init(&cfg, "gateway", argc, argv, &argi);
	if (rc != 0) {
		inbox_config_finish(&cfg);
		return rc > 0 ? 0 : 1;
	}
	rt_sig_block();
	if ((gw = gateway_create(&cfg)) == NULL) {
		inbox_config_finish(&cfg);
		return 1;
	}
	rc = gateway_run(gw);
	gateway_destroy(gw);
	inbox_config_finish(&cfg);
	return rc;
}
