/* Agent login (argon2id hashes from the store) and signed tokens
 * ("login.expires.hmac", HMAC-SHA256 with the gateway secret). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "inbox/rt/rt.h"
#include "ws_gateway/gateway_int.h"

int
gw_secret_load(struct gateway *gw)
{
	const char *path = gw->cfg->gateway_secret_file;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0 && errno == ENOENT) {
		randombytes_buf(gw->secret, sizeof(gw->secret));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			n = write(fd, gw->secret, sizeof(gw->secret));
			if (close(fd) != 0 || n != (ssize_t)sizeof(gw->secret)) {
				log_warn("gateway: writing %s", path);
				unlink(path);
				return INBOX_EIO;
			}
			log_info("gateway: created token secret %s", path);
			return 0;
		}
		if (errno != EEXIST) {
			log_warn("gateway: creating %s", path);
			return INBOX_EIO;
		}
		fd = open(path, O_RDONLY); /* another gateway made it */
	}
	if (fd < 0) {
		log_warn("gateway: opening %s", path);
		return INBOX_EIO;
	}
	n = read(fd, gw->secret, sizeof(gw->secret));
	close(fd);
	if (n != (ssize_t)sizeof(gw->secret)) {
		log_warnx("gateway: %s must hold %zu bytes", path,
		    sizeof(gw->secret));
		return INBOX_EIO;
	}
	return 0;
}

static void
mac_hex(const struct gateway *gw, const char *msg, size_t len, char *out)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256(mac, (const unsigned char *)msg, len, gw->secret);
	inbox_hex(out, mac, sizeof(mac));
}

void
gw_token_make(const struct gateway *gw, const char *login, int64_t expires,
    char *out, size_t outlen)
{
	char payload[128], hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	int n;

	n = snprintf(payload, sizeof(payload), "%s.%lld", login,
	    (long long)expires);
	mac_hex(gw, payload, (size_t)n, hex);
	snprintf(out, outlen, "%s.%s", payload, hex);
}

bool
gw_token_check(const struct gateway *gw, const char *token, char *login,
    size_t loginlen)
{
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	const char *mac = strrchr(token, '.');
	const char *dot;
	char *end;
	long long expires;
	size_t plen;

	if (mac == NULL || strlen(mac + 1) != sizeof(hex) - 1)
		return false;
	plen = (size_t)(mac - token);
	mac_hex(gw, token, plen, hex);
	if (sodium_memcmp(hex, mac + 1, sizeof(hex) - 1) != 0)
		return false;
	/* payload = login "." expires */
	for (dot = mac - 1; dot > token && *dot != '.'; dot--)
		;
	if (dot <= token || (size_t)(dot - token) >= loginlen)
		return false;
	expires = strtoll(dot + 1, &end, 10);
	if (end != mac || expires < rt_now_ms())
		return false;
	memcpy(login, token, (size_t)(dot - token));
	login[dot - token] = '\0';
	return true;
}

static char *
error_json(const char *code, const char *message)
{
	cJSON *o = cJSON_CreateObject(), *e;
	char *s;

	cJSON_AddBoolToObject(o, "ok", 0);
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

char *
gw_login(struct gateway *gw, const char *body, size_t len, int *status)
{
	struct inbox_err err;
	struct store_txn *txn = NULL;
	struct store_agent a;
	const cJSON *login, *pw;
	cJSON *req, *o, *ag;
	char token[256], *s;
	int64_t expires;
	int rc;

	if ((req = inbox_json_parse(body, len, &err)) == NULL) {
		*status = 400;
		return error_json("bad_request", err.msg);
	}
	login = cJSON_GetObjectItemCaseSensitive(req, "login");
	pw = cJSON_GetObjectItemCaseSensitive(req, "password");
	if (!cJSON_IsString(login) || !cJSON_IsString(pw) ||
	    strlen(login->valuestring) > 64) {
		cJSON_Delete(req);
		*status = 400;
		return error_json("bad_request",
		    "expected {\"login\": string, \"password\": string}");
	}
	if ((rc = gw_store(gw)) != 0 ||
	    (rc = store_txn_begin(gw->store, false, &txn)) != 0) {
		cJSON_Delete(req);
		*status = 503;
		return error_json("store_unavailable", inbox_strerror(rc));
	}
	rc = store_agent_get(txn, login->valuestring, &a);
	if (rc != 0 || crypto_pwhash_str_verify(a.pwhash, pw->valuestring,
	    strlen(pw->valuestring)) != 0) {
		store_txn_abort(txn);
		log_info("gateway: failed login for '%.64s'", login->valuestring);
		cJSON_Delete(req);
		*status = 401;
		return error_json("bad_credentials", "wrong login or password");
	}
	expires = rt_now_ms() + (int64_t)gw->cfg->gateway_token_ttl * 1000;
	gw_token_make(gw, a.login, expires, token, sizeof(token));
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "token", token);
	cJSON_AddNumberToObject(o, "expires", (double)expires);
	ag = cJSON_AddObjectToObject(o, "agent");
	cJSON_AddStringToObject(ag, "login", a.login);
	cJSON_AddStringToObject(ag, "name", a.name ? a.name : a.login);
	cJSON_AddStringToObject(ag, "role", a.role ? a.role : "agent");
	store_txn_abort(txn);
	log_info("gateway: agent '%s' logged in", login->valuestring);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON_Delete(req);
	*status = 200;
	return s;
}
