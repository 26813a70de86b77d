/* The body of the channel fuzz targets (fuzz_<channel>.c): a webhook body
 * through the channel's verify (with and without a bad signature) and
 * decode; every envelope it produces must be valid JSON. Included once
 * per target with FUZZ_IMPL set. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "connectors/webhooks/channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
no_arg(const struct wh_request *req, const char *name, char *buf, size_t len)
{
	(void)req;
	(void)name;
	(void)buf;
	(void)len;
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct wh_channel_impl *impl = &FUZZ_IMPL;
	struct inbox_connector_conf cc = {
		.id = (char *)"fz1", .channel = impl->channel,
		.secret = (char *)"vk-secret-abc", .app_secret = (char *)"s",
		.verify_token = (char *)"v", .confirmation = (char *)"c",
		.send_attempts = 3, .send_concurrency = 1,
	};
	struct wh_conn wc = { .cc = &cc, .token = "t" };
	struct wh_request req = {
		.signature = "sha256=00", .body = (const char *)data,
		.len = size, .now_ms = 1790000000000, .arg = no_arg,
	};
	struct wh_envelopes out;
	struct inbox_err err;
	int status;
	char answer[64];

	log_init("fuzz", INBOX_LOG_ERROR);
	memset(&out, 0, sizeof(out));
	(void)impl->verify(&wc, &req, &err);
	if (impl->handshake != NULL)
		impl->handshake(&wc, &req, &status, answer, sizeof(answer));
	if (impl->decode(&wc, &req, &out, &err) == 0) {
		for (size_t i = 0; i < out.n; i++) {
			cJSON *j = cJSON_Parse(out.json[i]);

			if (j == NULL)
				abort();
			cJSON_Delete(j);
		}
	}
	wh_envelopes_finish(&out);
	return 0;
}
