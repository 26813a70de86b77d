/* The operator's rules on customer messages ([rule <name>], inbox/rules.h),
 * auto-replies that never loop, and the satisfaction survey after close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "inbox/rules.h"
#include "router/router_int.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
router__conv_add_tag(struct store_txn *txn, struct router_conv *rc,
    const char *tag, int64_t now)
{
	bool created;
	int rv;

	for (size_t j = 0; j < rc->c.ntags; j++)
		if (strcmp(rc->c.tags[j], tag) == 0)
			return 0;
	if (rc->c.ntags == STORE_TAGS_MAX)
		return INBOX_ETOOBIG;
	router__conv_set(rc, &rc->c.tags[rc->c.ntags++], tag);
	if ((rv = store_tag_touch(txn, tag, now, &created)) != 0)
		return rv;
	qsort(rc->c.tags, rc->c.ntags, sizeof(rc->c.tags[0]), cmp_str);
	return 0;
}

static int
add_tags(struct store_txn *txn, struct router_conv *rc, const char *list,
    int64_t now)
{
	char *copy = xstrdup(list), *save = NULL;
	int rv = 0;

	for (char *t = strtok_r(copy, ",", &save); t != NULL && rv == 0;
	    t = strtok_r(NULL, ",", &save)) {
		char norm[INBOX_TAG_MAX + 1];

		if (inbox_tag_normalize(t, norm, sizeof(norm), NULL) != 0)
			continue;        /* checked when the config was read */
		rv = router__conv_add_tag(txn, rc, norm, now);
		if (rv == INBOX_ETOOBIG) {
			log_warnx("router: conversation %llu has %d tags: rule "
			    "tag '%s' not added", (unsigned long long)rc->c.id,
			    STORE_TAGS_MAX, norm);
			rv = 0;
		}
	}
	free(copy);
	return rv;
}

int
router__rules(struct router *r, struct store_txn *txn, struct router_conv *rc,
    const struct inbox_envelope *env, bool first, int64_t now,
    struct router_rules_out *out)
{
	struct inbox_rule_input in;
	struct store_contact ct;
	int rv;

	memset(out, 0, sizeof(*out));
	if (r->cfg->nrules == 0)
		return 0;
	memset(&in, 0, sizeof(in));
	in.channel = inbox_channel_name(env->channel);
	in.connector = env->connector;
	in.subject = env->subject;
	in.text = env->text;
	in.first = first;
	in.business = inbox_calendar_open_at(r->has_calendar ? &r->calendar :
	    NULL, now);
	if (store_contact_get(txn, rc->c.contact_id, &ct) == 0)
		in.fields_json = ct.fields;
	for (size_t i = 0; i < r->cfg->nrules; i++) {
		const struct inbox_rule *rule = &r->cfg->rules[i];
		int v;

		if (!inbox_rule_match(rule, &in))
			continue;
		if (out->nmatched < ROUTER_RULES_MAX)
			out->matched[out->nmatched++] = rule->name;
		if (rule->tags != NULL &&
		    (rv = add_tags(txn, rc, rule->tags, now)) != 0)
			return rv;
		if (rule->priority != NULL &&
		    inbox_priority_parse(rule->priority, &v) == 0)
			rc->c.priority = v;
		if (rule->nature != NULL &&
		    inbox_nature_parse(rule->nature, &v) == 0)
			rc->c.nature = v;
		if (rule->assign != NULL && !out->assigned &&
		    rc->c.assignee == NULL) {
			if (strncmp(rule->assign, "team:", 5) == 0) {
				if ((rv = router__route(r, txn, rc, now,
				    rule->assign + 5, &out->assigned)) != 0)
					return rv;
			} else {
				struct store_agent a;

				rv = store_agent_get(txn, rule->assign, &a);
				if (rv == 0) {
					router__conv_set(rc, &rc->c.assignee,
					    rule->assign);
					out->assigned = true;
				} else if (rv == INBOX_ENOTFOUND) {
					log_warnx("router: rule %s: no agent "
					    "'%s'", rule->name, rule->assign);
				} else {
					return rv;
				}
			}
		}
		if (rule->auto_reply != NULL && out->auto_reply == NULL)
			out->auto_reply = rule->auto_reply;
		if (rule->stop)
			break;
	}
	return 0;
}

/* Renders template tname for rc and queues it with `kind`. Returns 0 (also
 * when the template is missing or broken: logged, nothing sent; *sent
 * false), or a store error. */
static int
send_template(struct router *r, struct store_txn *txn,
    struct router_conv *rc, const char *tname, const char *kind,
    int64_t now, bool *sent)
{
	struct store_template tp;
	struct store_contact ct;
	struct inbox_err err;
	const char *cmd_id;
	char *text = NULL;
	bool have_ct;
	int rv;

	*sent = false;
	rv = store_template_get(txn, tname, &tp);
	if (rv == INBOX_ENOTFOUND) {
		log_warnx("router: %s: no template '%s'", kind, tname);
		return 0;
	}
	if (rv != 0)
		return rv;
	rv = store_contact_get(txn, rc->c.contact_id, &ct);
	if (rv != 0 && rv != INBOX_ENOTFOUND)
		return rv;
	have_ct = rv == 0;
	if (router__render(tp.text, have_ct ? &ct : NULL, &rc->c, NULL, NULL,
	    &text, &err) != 0) {
		log_warnx("router: %s: template '%s': %s", kind, tname, err.msg);
		return 0;
	}
	/* Not the answer to the command being applied (a close): its own
	 * conversation.updated is. */
	cmd_id = r->cmd_id;
	r->cmd_id = NULL;
	rv = router__queue_reply(r, txn, &rc->c, have_ct ? &ct : NULL, text,
	    NULL, tname, kind, now, NULL);
	r->cmd_id = cmd_id;
	free(text);
	if (rv == 0) {
		rc->c.message_count++;
		*sent = true;
	}
	return rv;
}

bool
router__auto_reply_due(const struct router *r, const struct store_conv *c,
    const struct inbox_envelope *env, int64_t now)
{
	if (router__env_automatic(env))
		return false;    /* never answer an auto-responder */
	return c->auto_reply_at == 0 ||
	    now - c->auto_reply_at >= r->cfg->router_auto_reply_interval_ms;
}

int
router__auto_reply(struct router *r, struct store_txn *txn,
    struct router_conv *rc, const char *tname, int64_t now)
{
	bool sent;
	int rv;

	if ((rv = send_template(r, txn, rc, tname, "auto_reply", now,
	    &sent)) != 0 || !sent)
		return rv;
	rc->c.auto_reply_at = now;
	return store_conv_put(txn, &rc->c);
}

void
router__survey(struct router *r, struct store_txn *txn,
    struct router_conv *rc, int64_t now, int *err)
{
	bool sent;

	*err = 0;
	if (r->cfg->router_survey_template == NULL || rc->c.survey_sent_at != 0)
		return;
	if ((*err = send_template(r, txn, rc, r->cfg->router_survey_template,
	    "survey", now, &sent)) == 0 && sent)
		rc->c.survey_sent_at = now;
}

bool
router__env_automatic(const struct inbox_envelope *env)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(env->json, "auto");

	return cJSON_IsTrue(a);
}

/* "4", " 5/5 ", "★★★" or "⭐⭐⭐⭐": 1..5, else 0. */
int
router__rating_of(const char *text)
{
	const char *p = text, *end;
	int n = 0;

	if (text == NULL)
		return 0;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\n' || end[-1] == '\r' || end[-1] == '.' ||
	    end[-1] == '!'))
		end--;
	if (end - p == 1 && *p >= '1' && *p <= '5')
		return *p - '0';
	if (end - p == 3 && *p >= '1' && *p <= '5' && strncmp(p + 1, "/5",
	    2) == 0)
		return *p - '0';
	while (p < end) {
		if (end - p >= 3 && strncmp(p, "\xe2\x98\x85", 3) == 0)
			p += 3;                   /* U+2605 BLACK STAR */
		else if (end - p >= 3 && strncmp(p, "\xe2\xad\x90", 3) == 0)
			p += 3;                   /* U+2B50 WHITE MEDIUM STAR */
		else
			return 0;
		if (end - p >= 3 && strncmp(p, "\xef\xb8\x8f", 3) == 0)
			p += 3;                   /* VS16 after an emoji */
		n++;
	}
	return n >= 1 && n <= 5 ? n : 0;
}
