/* Rules: conditions on a customer's message (rules.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "inbox/rules.h"

/* Calls fn for each item of a comma-separated list; stops when it returns
 * true, and returns whether one did. */
static bool
any_item(const char *list, bool (*fn)(void *arg, const char *item,
    size_t len), void *arg)
{
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ",");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > 0 && fn(arg, p, len))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static bool
bad_tag(void *arg, const char *item, size_t len)
{
	struct inbox_err *err = arg;
	char buf[INBOX_TAG_MAX * 4 + 1], out[INBOX_TAG_MAX + 1];

	if (len >= sizeof(buf)) {
		inbox_err_set(err, INBOX_EINVAL, "tags", 0, "tags: '%.*s' is "
		    "too long", (int)(len > 40 ? 40 : len), item);
		return true;
	}
	memcpy(buf, item, len);
	buf[len] = '\0';
	return inbox_tag_normalize(buf, out, sizeof(out), err) != 0;
}

static bool
bad_channel(void *arg, const char *item, size_t len)
{
	struct inbox_err *err = arg;
	char buf[32];
	enum inbox_channel ch;

	if (len < sizeof(buf)) {
		memcpy(buf, item, len);
		buf[len] = '\0';
		if (inbox_channel_parse(buf, &ch) == 0)
			return false;
	}
	inbox_err_set(err, INBOX_EINVAL, "channel", 0, "channel: unknown "
	    "channel '%.*s'", (int)(len > 32 ? 32 : len), item);
	return true;
}

int
inbox_rule_prepare(struct inbox_rule *r, struct inbox_err *err)
{
	int v, rc;

	if (r->tags != NULL && any_item(r->tags, bad_tag, err))
		return INBOX_EINVAL;
	if (r->channels != NULL && any_item(r->channels, bad_channel, err))
		return INBOX_EINVAL;
	if (r->priority != NULL && inbox_priority_parse(r->priority, &v) != 0)
		return inbox_err_set(err, INBOX_EINVAL, "priority", 0,
		    "priority: unknown '%s' (low, normal, high, urgent)",
		    r->priority);
	if (r->nature != NULL && inbox_nature_parse(r->nature, &v) != 0)
		return inbox_err_set(err, INBOX_EINVAL, "nature", 0,
		    "nature: unknown '%s' (inquiry, complaint, proposal, "
		    "order, other)", r->nature);
	if (r->assign != NULL && !inbox_login_valid(r->assign) &&
	    (strncmp(r->assign, "team:", 5) != 0 || r->assign[5] == '\0'))
		return inbox_err_set(err, INBOX_EINVAL, "assign", 0,
		    "assign: '%s' is neither a login nor team:<name>",
		    r->assign);
	if (r->contact_field != NULL && (strchr(r->contact_field, '=') ==
	    NULL || r->contact_field[0] == '='))
		return inbox_err_set(err, INBOX_EINVAL, "contact_field", 0,
		    "contact_field: expected key=value");
	if (r->regex != NULL) {
		if ((rc = regcomp(&r->re, r->regex, REG_EXTENDED | REG_ICASE |
		    REG_NOSUB)) != 0) {
			char msg[160];

			regerror(rc, &r->re, msg, sizeof(msg));
			return inbox_err_set(err, INBOX_EINVAL, "regex", 0,
			    "regex: %s", msg);
		}
		r->has_re = true;
	}
	if (r->keywords != NULL)
		r->keywords_folded = inbox_casefold(r->keywords);
	if (r->tags == NULL && r->priority == NULL && r->nature == NULL &&
	    r->assign == NULL && r->auto_reply == NULL)
		return inbox_err_set(err, INBOX_EINVAL, "tags", 0, "rule '%s' "
		    "has no action (tags, priority, nature, assign, "
		    "auto_reply)", r->name);
	return 0;
}

void
inbox_rule_finish(struct inbox_rule *r)
{
	if (r->has_re)
		regfree(&r->re);
	free(r->name);
	free(r->channels);
	free(r->connectors);
	free(r->contact_field);
	free(r->keywords);
	free(r->keywords_folded);
	free(r->regex);
	free(r->tags);
	free(r->priority);
	free(r->nature);
	free(r->assign);
	free(r->auto_reply);
	memset(r, 0, sizeof(*r));
}

struct find {
	const char *s;           /* compared as is */
	const char *folded[2];   /* subject and text, case-folded */
};

static bool
equals(void *arg, const char *item, size_t len)
{
	const struct find *f = arg;

	return f->s != NULL && strlen(f->s) == len &&
	    strncmp(f->s, item, len) == 0;
}

static bool
contains(void *arg, const char *item, size_t len)
{
	const struct find *f = arg;

	for (int i = 0; i < 2; i++) {
		const char *h = f->folded[i];

		for (; h != NULL && *h != '\0'; h++)
			if (strncmp(h, item, len) == 0)
				return true;
	}
	return false;
}

static bool
field_matches(const char *cond, const char *fields_json)
{
	const char *eq = strchr(cond, '=');
	char key[128];
	cJSON *o, *v;
	bool ok;

	if (eq == NULL || fields_json == NULL ||
	    (size_t)(eq - cond) >= sizeof(key))
		return false;
	memcpy(key, cond, (size_t)(eq - cond));
	key[eq - cond] = '\0';
	if ((o = cJSON_Parse(fields_json)) == NULL)
		return false;
	v = cJSON_GetObjectItemCaseSensitive(o, key);
	ok = cJSON_IsString(v) && strcmp(v->valuestring, eq + 1) == 0;
	cJSON_Delete(o);
	return ok;
}

bool
inbox_rule_match(const struct inbox_rule *r, const struct inbox_rule_input *in)
{
	struct find f = { NULL, { NULL, NULL } };
	bool hit;

	if (r->first_contact && !in->first)
		return false;
	if (r->when == INBOX_RULE_BUSINESS && !in->business)
		return false;
	if (r->when == INBOX_RULE_OUTSIDE_BUSINESS && in->business)
		return false;
	f.s = in->channel;
	if (r->channels != NULL && !any_item(r->channels, equals, &f))
		return false;
	f.s = in->connector;
	if (r->connectors != NULL && !any_item(r->connectors, equals, &f))
		return false;
	if (r->contact_field != NULL &&
	    !field_matches(r->contact_field, in->fields_json))
		return false;
	if (r->has_re && !((in->subject != NULL &&
	    regexec(&r->re, in->subject, 0, NULL, 0) == 0) ||
	    (in->text != NULL && regexec(&r->re, in->text, 0, NULL, 0) == 0)))
		return false;
	if (r->keywords_folded == NULL)
		return true;
	f.folded[0] = in->subject ? inbox_casefold(in->subject) : NULL;
	f.folded[1] = in->text ? inbox_casefold(in->text) : NULL;
	hit = any_item(r->keywords_folded, contains, &f);
	free((char *)f.folded[0]);
	free((char *)f.folded[1]);
	return hit;
}
