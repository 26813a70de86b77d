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

/* The tag of a password hash a token carries: a new password (a new
 * hash) invalidates every token issued before. */
static void
pw_tag(const char *pwhash, char *out)
{
	unsigned char h[8];

	crypto_generichash(h, sizeof(h), (const unsigned char *)pwhash,
	    strlen(pwhash), NULL, 0);
	inbox_hex(out, h, sizeof(h));
}

/* Token: login "." expires "." nonce "." pwtag "." mac, where mac is the
 * HMAC-SHA256 of everything before it with the gateway secret. */
void
gw_token_make(const struct gateway *gw, const char *login, const char *pwhash,
    int64_t expires, char *out, size_t outlen)
{
	char payload[200], hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	char nonce[17], tag[17];
	unsigned char rnd[8];
	int n;

	randombytes_buf(rnd, sizeof(rnd));
	inbox_hex(nonce, rnd, sizeof(rnd));
	pw_tag(pwhash, tag);
	n = snprintf(payload, sizeof(payload), "%s.%lld.%s.%s", login,
	    (long long)expires, nonce, tag);
	mac_hex(gw, payload, (size_t)n, hex);
	snprintf(out, outlen, "%s.%s", payload, hex);
}

/* The field before `end` (a pointer to a '.'), whose start is written to
 * *start. Returns its length, 0 when there is none. */
static size_t
field_before(const char *token, const char *end, const char **start)
{
	const char *p = end;

	while (p > token && p[-1] != '.')
		p--;
	*start = p;
	return p > token ? (size_t)(end - p) : 0;
}

bool
gw_token_parse(const struct gateway *gw, const char *token,
    struct gw_token *t)
{
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	const char *mac = strrchr(token, '.');
	const char *f, *tag, *nonce, *exp;
	char *end;
	long long expires;

	memset(t, 0, sizeof(*t));
	if (mac == NULL || strlen(mac + 1) != sizeof(hex) - 1 ||
	    strlen(token) > 400)
		return false;
	mac_hex(gw, token, (size_t)(mac - token), hex);
	if (sodium_memcmp(hex, mac + 1, sizeof(hex) - 1) != 0)
		return false;
	if (field_before(token, mac, &tag) != 16 ||
	    field_before(token, tag - 1, &nonce) != 16 ||
	    field_before(token, nonce - 1, &exp) == 0)
		return false;
	f = exp - 1;             /* the '.' after the login */
	if (f <= token || (size_t)(f - token) >= sizeof(t->login))
		return false;
	expires = strtoll(exp, &end, 10);
	if (end != nonce - 1 || expires < rt_now_ms())
		return false;
	memcpy(t->login, token, (size_t)(f - token));
	t->login[f - token] = '\0';
	memcpy(t->nonce, nonce, 16);
	memcpy(t->pwtag, tag, 16);
	t->expires = expires;
	return true;
}

/* ---- revocations ------------------------------------------------------
 * A logout adds the token's nonce to the sorted set <prefix>:revoked
 * (score: when the token expires) and announces it on inbox:events as
 * token.revoked, so every gateway knows it without asking Redis at each
 * handshake: the set is loaded when the request link comes up, and the
 * events keep it current. */

/* Drops the entries whose tokens have expired anyway. */
static void
revoked_prune(struct gateway *gw, int64_t now)
{
	for (size_t i = 0; i < gw->nrevoked;) {
		if (gw->revoked[i].expires < now)
			gw->revoked[i] = gw->revoked[--gw->nrevoked];
		else
			i++;
	}
}

static bool
revoked_has(const struct gateway *gw, const char *nonce)
{
	for (size_t i = 0; i < gw->nrevoked; i++)
		if (memcmp(gw->revoked[i].nonce, nonce, 16) == 0)
			return true;
	return false;
}

void
gw_revoked_add(struct gateway *gw, const char *nonce, int64_t expires)
{
	int64_t now = rt_now_ms();

	if (expires >= now && !revoked_has(gw, nonce)) {
		revoked_prune(gw, now);
		gw->revoked = xrealloc(gw->revoked, (gw->nrevoked + 1) *
		    sizeof(*gw->revoked));
		memcpy(gw->revoked[gw->nrevoked].nonce, nonce, 16);
		gw->revoked[gw->nrevoked].nonce[16] = '\0';
		gw->revoked[gw->nrevoked++].expires = expires;
	}
	gw_sessions_revoke(gw, nonce);
}

void
gw_revocations_finish(struct gateway *gw)
{
	free(gw->revoked);
	gw->revoked = NULL;
	gw->nrevoked = 0;
}

static void
revocations_loaded(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	free(call);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		log_warnx("gateway: cannot load the revoked tokens: %s",
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str :
		    "redis went away (loaded when it is back)");
		return;
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *n = r->element[i], *x = r->element[i + 1];

		if (n->type == REDIS_REPLY_STRING && n->len == 16 &&
		    x->type == REDIS_REPLY_STRING)
			gw_revoked_add(gw, n->str, strtoll(x->str, NULL, 10));
	}
	if (!gw->revocations_known)
		log_info("gateway: %zu revoked tokens known", gw->nrevoked);
	gw->revocations_known = true;
	gw_ready(gw);
}

void
gw_revocations_load(struct gateway *gw)
{
	struct gw_call *call = xcalloc(1, sizeof(*call));
	char now[32];
	const char *argv[] = { "ZRANGEBYSCORE", gw->k_revoked, now, "+inf",
	    "WITHSCORES" };

	snprintf(now, sizeof(now), "%lld", (long long)rt_now_ms());
	if (gw_call_send(gw, 0, call, NULL, revocations_loaded, 5, argv,
	    NULL) != 0)
		free(call);
}

/* Is the token revoked (logout)? Before the list could be loaded (Redis
 * down since the start) it is not known to be. */
static bool
revoked(struct gateway *gw, const struct gw_token *t)
{
	if (!gw->revocations_known)
		log_warnx("gateway: token revocations not known yet (redis "
		    "down): %s's token accepted", t->login);
	return revoked_has(gw, t->nonce);
}

bool
gw_token_check(struct gateway *gw, const char *token, char *login,
    size_t loginlen, struct gw_token *out)
{
	struct store_txn *txn = NULL;
	struct store_agent a;
	struct gw_token t;
	char tag[17];
	bool ok = false;

	if (!gw_token_parse(gw, token, &t) || strlen(t.login) >= loginlen)
		return false;
	/* the agent still exists, with the password the token was given for */
	if (gw_txn(gw, 0, &txn) != 0)
		return false;
	if (store_agent_get(txn, t.login, &a) == 0) {
		pw_tag(a.pwhash, tag);
		ok = sodium_memcmp(tag, t.pwtag, 16) == 0;
	}
	store_txn_abort(txn);
	if (!ok || revoked(gw, &t))
		return false;
	snprintf(login, loginlen, "%s", t.login);
	if (out != NULL)
		*out = t;
	return true;
}

/* A logout waiting for Redis to keep the revocation. */
struct logout_call {
	struct gw_call call;
	struct gw_token t;
};

static void
logout_done(struct gateway *gw, struct gw_call *call, redisReply *r)
{
	struct logout_call *lc = (struct logout_call *)call;
	char expires[32], data[96];
	const char *argv[] = { "XADD", gw->shards[0].k_events, "*", "event",
	    "token.revoked", "data", data };

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		log_warnx("gateway: logout of '%s' not kept: %s", lc->t.login,
		    r != NULL ? r->str : "redis went away");
		if (call->sock != NULL)
			gw_sock_http(call->sock, 503, xstrdup("{\"ok\":false,"
			    "\"error\":{\"code\":\"unavailable\",\"message\":"
			    "\"redis unreachable: the token stays valid\"}}"));
		free(lc);
		return;
	}
	/* the other gateways close its sockets and refuse it from now on */
	snprintf(data, sizeof(data), "{\"nonce\":\"%s\",\"expires\":%lld}",
	    lc->t.nonce, (long long)lc->t.expires);
	if (gw_redis_send(gw, 0, 7, argv) != 0)
		log_warnx("gateway: logout of '%s': other gateways not told "
		    "(they learn it when they restart)", lc->t.login);
	snprintf(expires, sizeof(expires), "(%lld", (long long)rt_now_ms());
	{
		const char *prune[] = { "ZREMRANGEBYSCORE", gw->k_revoked,
		    "-inf", expires };

		gw_redis_send(gw, 0, 4, prune);
	}
	gw_revoked_add(gw, lc->t.nonce, lc->t.expires);
	log_info("gateway: agent '%s' logged out", lc->t.login);
	if (call->sock != NULL)
		gw_sock_http(call->sock, 200, xstrdup("{\"ok\":true}"));
	free(lc);
}

bool
gw_logout(struct gateway *gw, struct gw_sock *sock, const char *token,
    int *status, char **json)
{
	struct logout_call *lc;
	char score[32];
	const char *argv[4];

	lc = xcalloc(1, sizeof(*lc));
	if (token == NULL || !gw_token_parse(gw, token, &lc->t)) {
		free(lc);
		*status = 401;
		*json = xstrdup("{\"ok\":false,\"error\":{\"code\":"
		    "\"bad_token\",\"message\":\"invalid or expired token\"}}");
		return false;
	}
	snprintf(score, sizeof(score), "%lld", (long long)lc->t.expires);
	argv[0] = "ZADD";
	argv[1] = gw->k_revoked;
	argv[2] = score;
	argv[3] = lc->t.nonce;
	if (gw_call_send(gw, 0, &lc->call, sock, logout_done, 4, argv,
	    NULL) != 0) {
		free(lc);
		*status = 503;
		*json = xstrdup("{\"ok\":false,\"error\":{\"code\":"
		    "\"unavailable\",\"message\":\"redis unreachable: the "
		    "token stays valid\"}}");
		return false;
	}
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

/* ---- failed logins -------------------------------------------------
 * An account with FAIL_PER_LOGIN failures, or an address with
 * FAIL_PER_ADDR, within FAIL_WINDOW_MS is refused (429) until the window
 * started by its first failure ends. Kept in memory per gateway. */

#define FAIL_WINDOW_MS (15 * 60 * 1000)
#define FAIL_PER_LOGIN 5
#define FAIL_PER_ADDR 30
#define FAIL_TABLE 4096

struct gw_login_fail {
	char key[80];            /* "l:<login>" or "a:<address>" */
	int64_t since;
	int n;
};

static struct gw_login_fail *
fail_find(struct gateway *gw, const char *key, int64_t now, bool create)
{
	struct gw_login_fail *oldest = NULL;

	for (size_t i = 0; i < gw->nfails; i++) {
		struct gw_login_fail *f = &gw->fails[i];

		if (now - f->since > FAIL_WINDOW_MS)
			f->n = 0;
		if (f->n > 0 && strcmp(f->key, key) == 0)
			return f;
		if (oldest == NULL || f->n == 0 || (oldest->n > 0 &&
		    f->since < oldest->since))
			oldest = f;
	}
	if (!create)
		return NULL;
	if (gw->nfails < FAIL_TABLE) {
		if (gw->fails == NULL)
			gw->fails = xcalloc(FAIL_TABLE, sizeof(*gw->fails));
		oldest = &gw->fails[gw->nfails++];
	}
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->since = now;
	oldest->n = 0;
	return oldest;
}

static int64_t
blocked_for(struct gateway *gw, const char *key, int limit, int64_t now)
{
	struct gw_login_fail *f = fail_find(gw, key, now, false);

	if (f == NULL || f->n < limit)
		return 0;
	return (f->since + FAIL_WINDOW_MS - now) / 1000 + 1;
}

static void
fail_note(struct gateway *gw, const char *key, int64_t now)
{
	fail_find(gw, key, now, true)->n++;
}

void
gw_login_finish(struct gateway *gw)
{
	free(gw->fails);
	gw->fails = NULL;
	gw->nfails = 0;
}

char *
gw_login(struct gateway *gw, const char *body, size_t len, const char *addr,
    int *status, int64_t *retry_after)
{
	char lkey[80], akey[80];
	int64_t now = rt_now_ms(), wait;
	struct inbox_err err;
	struct store_txn *txn = NULL;
	struct store_agent a;
	const cJSON *login, *pw;
	cJSON *req, *o, *ag;
	char token[400], *s;
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
	snprintf(lkey, sizeof(lkey), "l:%s", login->valuestring);
	snprintf(akey, sizeof(akey), "a:%.70s", addr ? addr : "");
	*retry_after = 0;
	wait = blocked_for(gw, lkey, FAIL_PER_LOGIN, now);
	if (blocked_for(gw, akey, FAIL_PER_ADDR, now) > wait)
		wait = blocked_for(gw, akey, FAIL_PER_ADDR, now);
	if (wait > 0) {
		char msg[160];

		cJSON_Delete(req);
		snprintf(msg, sizeof(msg), "too many failed logins; try again "
		    "in %lld s", (long long)wait);
		*status = 429;
		*retry_after = wait;
		return error_json("rate_limited", msg);
	}
	if ((rc = gw_txn(gw, 0, &txn)) != 0) {
		cJSON_Delete(req);
		*status = 503;
		return error_json("store_unavailable", inbox_strerror(rc));
	}
	rc = store_agent_get(txn, login->valuestring, &a);
	if (rc != 0 || crypto_pwhash_str_verify(a.pwhash, pw->valuestring,
	    strlen(pw->valuestring)) != 0) {
		store_txn_abort(txn);
		log_info("gateway: failed login for '%.64s' from %s",
		    login->valuestring, addr ? addr : "?");
		fail_note(gw, lkey, now);
		fail_note(gw, akey, now);
		cJSON_Delete(req);
		*status = 401;
		return error_json("bad_credentials", "wrong login or password");
	}
	expires = rt_now_ms() + (int64_t)gw->cfg->gateway_token_ttl * 1000;
	gw_token_make(gw, a.login, a.pwhash, expires, token, sizeof(token));
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
