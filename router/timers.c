/* Restart-safe timers: snoozes that end and tasks that fall due. Both live
 * in the store's `due` index, written with the change that set them, so a
 * router that starts finds every timer that passed while it was down. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "inbox/dialog.h"
#include "router/router_int.h"

#define TIMERS_PER_PASS 500

struct ids {
	uint64_t v[TIMERS_PER_PASS];
	size_t n;
};

static int
collect(void *arg, uint64_t id)
{
	struct ids *ids = arg;

	ids->v[ids->n++] = id;
	return 0;
}

static int
wake(struct router *r, struct store_txn *txn, uint64_t id, int64_t now)
{
	struct router_conv rc;
	struct inbox_dialog d;
	struct inbox_dtransition t;
	cJSON *ev;
	int rv;

	if ((rv = router__conv_load(txn, id, &rc)) != 0)
		goto out;
	d.state = rc.c.state;
	d.snooze_until = rc.c.snooze_until;
	d.closed_at = rc.c.closed_at;
	d.reopen_count = rc.c.reopen_count;
	if (inbox_dialog_apply(&d, INBOX_DA_TIMER, 0, now, &t, NULL) != 0 ||
	    !t.changed) {
		log_warnx("router: snooze timer of conversation %llu found it "
		    "not due", (unsigned long long)id);
		goto out;
	}
	rc.c.state = d.state;
	rc.c.snooze_until = d.snooze_until;
	rc.c.updated = now;
	if ((rv = store_conv_put(txn, &rc.c)) != 0)
		goto out;
	ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "conversation", store_conv_json(txn, &rc.c));
	cJSON_AddStringToObject(ev, "change", "unsnoozed");
	cJSON_AddStringToObject(ev, "why", t.why);
	router__event(r, txn, "conversation.updated", ev);
	if (rc.c.assignee != NULL)
		router__unsnoozed(r, txn, &rc.c, t.why);
out:
	router__conv_finish(&rc);
	return rv;
}

static int
task_due(struct router *r, struct store_txn *txn, uint64_t id, int64_t now)
{
	struct store_task tk;
	char *assignee = NULL;
	cJSON *ev;
	int rv;

	if ((rv = store_task_get(txn, id, &tk)) != 0)
		return rv;
	tk.due_fired = true;
	tk.updated = now;
	ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "task", store_task_json(&tk));
	assignee = tk.assignee ? xstrdup(tk.assignee) : NULL;
	if ((rv = store_task_put(txn, &tk)) != 0) {
		cJSON_Delete(ev);
		free(assignee);
		return rv;
	}
	router__event_to(r, txn, "task.due", ev, assignee);
	free(assignee);
	return 0;
}

int
router__apply_timers(struct router *r, struct store_txn *txn, int64_t now)
{
	struct ids *ids = xmalloc(sizeof(*ids));
	int rv;

	ids->n = 0;
	if ((rv = store_due_snoozes(txn, now, TIMERS_PER_PASS, collect,
	    ids)) != 0)
		goto out;
	for (size_t i = 0; i < ids->n; i++)
		if ((rv = wake(r, txn, ids->v[i], now)) != 0)
			goto out;
	ids->n = 0;
	if ((rv = store_due_tasks(txn, now, TIMERS_PER_PASS, collect, ids)) != 0)
		goto out;
	for (size_t i = 0; i < ids->n; i++)
		if ((rv = task_due(r, txn, ids->v[i], now)) != 0)
			goto out;
	if ((rv = router__sla_timers(r, txn, now)) != 0)
		goto out;
	rv = store_next_due(txn, &r->next_due);
out:
	free(ids);
	return rv;
}
