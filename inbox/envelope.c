/* The envelope: decode and validate (naming the offending field), encode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/inbox.h"

#define TS_MAX 9007199254740992.0 /* 2^53 */
#define ATTACHMENTS_MAX 100
#define PATH_MAX_LEN 64

static const char *const channel_names[INBOX_CH__COUNT] = {
	"email", "telegram", "whatsapp", "messenger", "instagram", "vk",
	"viber", "api",
};

static const char *const kind_names[] = { "message", "status", "edit" };

const char *
inbox_channel_name(enum inbox_channel ch)
{
	if ((unsigned)ch >= INBOX_CH__COUNT)
		return "unknown";
	return channel_names[ch];
}

int
inbox_channel_parse(const char *name, enum inbox_channel *out)
{
	for (int i = 0; i < INBOX_CH__COUNT; i++) {
		if (strcmp(name, channel_names[i]) == 0) {
			*out = (enum inbox_channel)i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

const char *
inbox_kind_name(enum inbox_kind k)
{
	if ((unsigned)k > INBOX_KIND_EDIT)
		return "unknown";
	return kind_names[k];
}

bool
inbox_connector_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > INBOX_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Finds the first string (value or key) that is not UTF-8, anywhere in the
 * tree, and names it by its path. */
static int
check_utf8(const cJSON *item, char *path, size_t pathlen, struct inbox_err *err)
{
	size_t base = strlen(path);
	int i = 0;

	if (cJSON_IsString(item) && item->valuestring != NULL) {
		long at = inbox_utf8_invalid_at(item->valuestring,
		    strlen(item->valuestring));
		if (at >= 0)
			return inbox_err_set(err, INBOX_EINVAL, path, 0,
			    "%s: invalid UTF-8 at byte %ld", path, at);
		return 0;
	}
	if (!cJSON_IsArray(item) && !cJSON_IsObject(item))
		return 0;
	for (const cJSON *c = item->child; c != NULL; c = c->next, i++) {
		int rc;

		if (cJSON_IsObject(item)) {
			const char *key = c->string ? c->string : "";
			if (inbox_utf8_invalid_at(key, strlen(key)) >= 0)
				return inbox_err_set(err, INBOX_EINVAL,
				    base ? path : "(key)", 0,
				    "%s: a key is not valid UTF-8",
				    base ? path : "envelope");
			snprintf(path + base, pathlen - base, "%s%s",
			    base ? "." : "", key);
		} else {
			snprintf(path + base, pathlen - base, "[%d]", i);
		}
		rc = check_utf8(c, path, pathlen, err);
		path[base] = '\0';
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
get_string(const cJSON *obj, const char *name, const char *path, bool required,
    size_t min, size_t max, const char **out, struct inbox_err *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
	size_t n;

	*out = NULL;
	if (it == NULL || cJSON_IsNull(it)) {
		if (required)
			return inbox_err_set(err, INBOX_EINVAL, path, 0,
			    "%s: missing", path);
		return 0;
	}
	if (!cJSON_IsString(it) || it->valuestring == NULL)
		return inbox_err_set(err, INBOX_EINVAL, path, 0,
		    "%s: wrong type (expected string)", path);
	n = strlen(it->valuestring);
	if (n < min)
		return inbox_err_set(err, INBOX_EINVAL, path, 0,
		    "%s: empty", path);
	if (n > max)
		return inbox_err_set(err, INBOX_EINVAL, path, 0,
		    "%s: too long (%zu bytes, at most %zu)", path, n, max);
	*out = it->valuestring;
	return 0;
}

static int
get_integer(const cJSON *obj, const char *name, double min, double max,
    int64_t *out, struct inbox_err *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
	double d;

	if (it == NULL || cJSON_IsNull(it))
		return inbox_err_set(err, INBOX_EINVAL, name, 0, "%s: missing",
		    name);
	if (!cJSON_IsNumber(it))
		return inbox_err_set(err, INBOX_EINVAL, name, 0,
		    "%s: wrong type (expected integer)", name);
	d = it->valuedouble;
	if (!isfinite(d) || floor(d) != d)
		return inbox_err_set(err, INBOX_EINVAL, name, 0,
		    "%s: not an integer", name);
	if (d < min || d > max)
		return inbox_err_set(err, INBOX_EINVAL, name, 0,
		    "%s: out of range (%.0f to %.0f)", name, min, max);
	*out = (int64_t)d;
	return 0;
}

static int
check_attachments(const cJSON *root, struct inbox_err *err)
{
	static const char *const strs[] = { "name", "mime", "url", "blob" };
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "attachments");
	char path[PATH_MAX_LEN];
	int i = 0;

	if (a == NULL || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a))
		return inbox_err_set(err, INBOX_EINVAL, "attachments", 0,
		    "attachments: wrong type (expected array)");
	if (cJSON_GetArraySize(a) > ATTACHMENTS_MAX)
		return inbox_err_set(err, INBOX_EINVAL, "attachments", 0,
		    "attachments: too many (%d, at most %d)",
		    cJSON_GetArraySize(a), ATTACHMENTS_MAX);
	for (const cJSON *it = a->child; it != NULL; it = it->next, i++) {
		const cJSON *size;

		snprintf(path, sizeof(path), "attachments[%d]", i);
		if (!cJSON_IsObject(it))
			return inbox_err_set(err, INBOX_EINVAL, path, 0,
			    "%s: wrong type (expected object)", path);
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
			const cJSON *s = cJSON_GetObjectItemCaseSensitive(it,
			    strs[k]);
			if (s != NULL && !cJSON_IsString(s)) {
				snprintf(path, sizeof(path),
				    "attachments[%d].%s", i, strs[k]);
				return inbox_err_set(err, INBOX_EINVAL, path, 0,
				    "%s: wrong type (expected string)", path);
			}
		}
		size = cJSON_GetObjectItemCaseSensitive(it, "size");
		if (size != NULL && (!cJSON_IsNumber(size) ||
		    size->valuedouble < 0)) {
			snprintf(path, sizeof(path), "attachments[%d].size", i);
			return inbox_err_set(err, INBOX_EINVAL, path, 0,
			    "%s: wrong type (expected a non-negative number)",
			    path);
		}
	}
	return 0;
}

static int
validate(struct inbox_envelope *env, const cJSON *root, struct inbox_err *err)
{
	const cJSON *contact;
	const char *s;
	char path[PATH_MAX_LEN] = "";
	int64_t v;
	int rc;

	if (!cJSON_IsObject(root))
		return inbox_err_set(err, INBOX_EINVAL, "", 0,
		    "envelope: not a JSON object");
	if ((rc = check_utf8(root, path, sizeof(path), err)) != 0)
		return rc;

	if ((rc = get_integer(root, "v", -TS_MAX, TS_MAX, &v, err)) != 0)
		return rc;
	if (v != INBOX_ENVELOPE_VERSION)
		return inbox_err_set(err, INBOX_EINVAL, "v", 0,
		    "v: unsupported version %lld (this reader knows %d)",
		    (long long)v, INBOX_ENVELOPE_VERSION);
	env->v = (int)v;

	if ((rc = get_string(root, "connector", "connector", true, 1,
	    INBOX_ID_MAX, &env->connector, err)) != 0)
		return rc;
	if (!inbox_connector_id_valid(env->connector))
		return inbox_err_set(err, INBOX_EINVAL, "connector", 0,
		    "connector: invalid id (1-64 of A-Za-z0-9._-)");

	if ((rc = get_string(root, "channel", "channel", true, 1, 32, &s,
	    err)) != 0)
		return rc;
	if (inbox_channel_parse(s, &env->channel) != 0)
		return inbox_err_set(err, INBOX_EINVAL, "channel", 0,
		    "channel: unknown channel '%s'", s);

	if ((rc = get_string(root, "kind", "kind", true, 1, 32, &s, err)) != 0)
		return rc;
	if (strcmp(s, "message") == 0)
		env->kind = INBOX_KIND_MESSAGE;
	else if (strcmp(s, "status") == 0)
		env->kind = INBOX_KIND_STATUS;
	else if (strcmp(s, "edit") == 0)
		env->kind = INBOX_KIND_EDIT;
	else
		return inbox_err_set(err, INBOX_EINVAL, "kind", 0,
		    "kind: unknown kind '%s' (message, status or edit)", s);

	if ((rc = get_string(root, "external_id", "external_id", true, 1,
	    INBOX_EXTID_MAX, &env->external_id, err)) != 0)
		return rc;
	if ((rc = get_integer(root, "ts", 1, TS_MAX, &env->ts, err)) != 0)
		return rc;

	contact = cJSON_GetObjectItemCaseSensitive(root, "contact");
	if (contact == NULL || cJSON_IsNull(contact))
		return inbox_err_set(err, INBOX_EINVAL, "contact", 0,
		    "contact: missing");
	if (!cJSON_IsObject(contact))
		return inbox_err_set(err, INBOX_EINVAL, "contact", 0,
		    "contact: wrong type (expected object)");
	if ((rc = get_string(contact, "external_id", "contact.external_id",
	    true, 1, INBOX_EXTID_MAX, &env->contact.external_id, err)) != 0 ||
	    (rc = get_string(contact, "name", "contact.name", true, 0, 256,
	    &env->contact.name, err)) != 0 ||
	    (rc = get_string(contact, "email", "contact.email", false, 0, 320,
	    &env->contact.email, err)) != 0 ||
	    (rc = get_string(contact, "phone", "contact.phone", false, 0, 64,
	    &env->contact.phone, err)) != 0 ||
	    (rc = get_string(contact, "username", "contact.username", false, 0,
	    256, &env->contact.username, err)) != 0)
		return rc;

	if ((rc = get_string(root, "thread", "thread", true, 1,
	    INBOX_EXTID_MAX, &env->thread, err)) != 0 ||
	    (rc = get_string(root, "text", "text", true, 0, 1u << 20,
	    &env->text, err)) != 0 ||
	    (rc = get_string(root, "subject", "subject", false, 0, 1000,
	    &env->subject, err)) != 0 ||
	    (rc = get_string(root, "html", "html", false, 0, 4u << 20,
	    &env->html, err)) != 0 ||
	    (rc = get_string(root, "reply_to", "reply_to", false, 1,
	    INBOX_EXTID_MAX, &env->reply_to, err)) != 0 ||
	    (rc = get_string(root, "raw_ref", "raw_ref", false, 0,
	    INBOX_EXTID_MAX, &env->raw_ref, err)) != 0)
		return rc;
	return check_attachments(root, err);
}

int
inbox_envelope_from_json(struct inbox_envelope *env, void *json,
    struct inbox_err *err)
{
	int rc;

	memset(env, 0, sizeof(*env));
	if ((rc = validate(env, json, err)) != 0) {
		cJSON_Delete(json);
		memset(env, 0, sizeof(*env));
		return rc;
	}
	env->json = json;
	return 0;
}

void *
inbox_json_parse(const char *buf, size_t len, struct inbox_err *err)
{
	const char *end = NULL;
	cJSON *root;
	size_t depth = 0;
	bool str = false;

	/* Nesting is bounded before cJSON recurses into it. */
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				str = false;
		} else if (ch == '"') {
			str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > INBOX_JSON_DEPTH_MAX) {
				inbox_err_set(err, INBOX_EINVAL, "", 0,
				    "invalid JSON: nested deeper than %d levels "
				    "at byte %zu", INBOX_JSON_DEPTH_MAX, i);
				return NULL;
			}
		} else if ((ch == '}' || ch == ']') && depth > 0) {
			depth--;
		}
	}
	root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
	if (root == NULL) {
		inbox_err_set(err, INBOX_EINVAL, "", 0,
		    "invalid JSON at byte %zu", end ? (size_t)(end - buf) : 0);
		return NULL;
	}
	while ((size_t)(end - buf) < len &&
	    (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if ((size_t)(end - buf) < len) {
		inbox_err_set(err, INBOX_EINVAL, "", 0,
		    "invalid JSON: trailing data at byte %zu",
		    (size_t)(end - buf));
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

int
inbox_envelope_decode(struct inbox_envelope *env, const char *buf, size_t len,
    struct inbox_err *err)
{
	void *root;

	memset(env, 0, sizeof(*env));
	if ((root = inbox_json_parse(buf, len, err)) == NULL)
		return INBOX_EINVAL;
	return inbox_envelope_from_json(env, root, err);
}

char *
inbox_envelope_encode(const struct inbox_envelope *env, size_t *len)
{
	char *s = cJSON_PrintUnformatted(env->json);

	if (s == NULL)
		fatalx("envelope encode: out of memory");
	if (len != NULL)
		*len = strlen(s);
	return s;
}

void
inbox_envelope_finish(struct inbox_envelope *env)
{
	if (env == NULL)
		return;
	cJSON_Delete(env->json);
	memset(env, 0, sizeof(*env));
}
