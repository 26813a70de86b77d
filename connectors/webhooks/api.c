/*
 * The generic `api` channel: a custom source POSTs the envelope's own fields
 * (docs/protocol.md, "Webhooks connector"); the connector fills what the URL
 * tells and the defaults, then validates the whole envelope.
 */
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "connectors/webhooks/channel.h"

static int
api_verify(const struct wh_conn *wc, const struct wh_request *req,
    struct inbox_err *err)
{
	const struct inbox_connector_conf *cc = wc->cc;
	const char *auth = req->authorization;
	size_t n;

	if (cc->secret == NULL)
		return 0;
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0)
		return inbox_err_set(err, INBOX_EINVAL, "Authorization", 0,
		    "Authorization: missing bearer token");
	auth += 7;
	n = strlen(cc->secret);
	if (strlen(auth) != n || sodium_memcmp(auth, cc->secret, n) != 0)
		return inbox_err_set(err, INBOX_EINVAL, "Authorization", 0,
		    "Authorization: wrong bearer token");
	return 0;
}

/* A field the URL decides: absent (then set), or equal to it. */
static int
fixed_field(cJSON *root, const char *name, const char *want,
    struct inbox_err *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);

	if (it == NULL) {
		cJSON_AddStringToObject(root, name, want);
		return 0;
	}
	if (!cJSON_IsString(it))
		return inbox_err_set(err, INBOX_EINVAL, name, 0,
		    "%s: wrong type (expected string)", name);
	if (strcmp(it->valuestring, want) != 0)
		return inbox_err_set(err, INBOX_EINVAL, name, 0,
		    "%s: '%.64s' does not match this endpoint ('%s')", name,
		    it->valuestring, want);
	return 0;
}

static int
api_decode(const struct wh_conn *wc, const struct wh_request *req,
    struct wh_envelopes *out, struct inbox_err *err)
{
	const struct inbox_connector_conf *cc = wc->cc;
	struct inbox_envelope env;
	cJSON *root;
	int rc;

	if ((root = inbox_json_parse(req->body, req->len, err)) == NULL)
		return INBOX_EINVAL;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return inbox_err_set(err, INBOX_EINVAL, "", 0,
		    "envelope: not a JSON object");
	}
	if ((rc = fixed_field(root, "connector", cc->id, err)) != 0 ||
	    (rc = fixed_field(root, "channel", "api", err)) != 0) {
		cJSON_Delete(root);
		return rc;
	}
	if (cJSON_GetObjectItemCaseSensitive(root, "v") == NULL)
		cJSON_AddNumberToObject(root, "v", INBOX_ENVELOPE_VERSION);
	if (cJSON_GetObjectItemCaseSensitive(root, "kind") == NULL)
		cJSON_AddStringToObject(root, "kind", "message");
	if (cJSON_GetObjectItemCaseSensitive(root, "ts") == NULL)
		cJSON_AddNumberToObject(root, "ts", (double)req->now_ms);
	if ((rc = inbox_envelope_from_json(&env, root, err)) != 0)
		return rc;
	wh_envelopes_add(out, inbox_envelope_encode(&env, NULL),
	    inbox_shard_hash(env.connector, env.thread));
	inbox_envelope_finish(&env);
	return 0;
}

const struct wh_channel_impl wh_channel_api = {
	.channel = INBOX_CH_API,
	.verify = api_verify,
	.decode = api_decode,
};
