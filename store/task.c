/* Tasks with their due timers, reply templates and the tag registry. */
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"

#define REC_VERSION 1

static int
task_decode(const MDB_val *v, uint64_t id, struct store_task *tk)
{
	struct rec_r r;

	memset(tk, 0, sizeof(*tk));
	store__r_init(&r, v->mv_data, v->mv_size, REC_VERSION);
	tk->id = id;
	tk->conv_id = store__r_u64(&r);
	tk->msg_id = store__r_u64(&r);
	tk->title = store__r_str(&r, NULL);
	tk->assignee = store__r_str(&r, NULL);
	tk->created_by = store__r_str(&r, NULL);
	tk->due = (int64_t)store__r_u64(&r);
	tk->done = store__r_u8(&r) != 0;
	tk->due_fired = store__r_u8(&r) != 0;
	tk->created = (int64_t)store__r_u64(&r);
	tk->updated = (int64_t)store__r_u64(&r);
	if (!store__r_ok(&r) || tk->title == NULL) {
		log_warnx("store: task %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	return 0;
}

int
store_task_get(struct store_txn *t, uint64_t id, struct store_task *out)
{
	MDB_val v;
	int rc;

	if ((rc = store__get_by_id(t, T_TASK, id, &v)) != 0)
		return rc;
	return task_decode(&v, id, out);
}

static bool
timer_armed(const struct store_task *tk)
{
	return tk->due > 0 && !tk->done && !tk->due_fired;
}

int
store_task_put(struct store_txn *t, struct store_task *tk)
{
	unsigned char k[8], dk[17], ck[16];
	bool armed = timer_armed(tk);
	int64_t due = tk->due;
	struct rec_w w;
	int rc;

	if (tk->title == NULL || tk->conv_id == 0)
		return INBOX_EINVAL;
	if (tk->id == 0) {
		if ((rc = store__next_id(t, T_TASK, &tk->id)) != 0)
			return rc;
	}
	store__w_init(&w, REC_VERSION);
	store__w_u64(&w, tk->conv_id);
	store__w_u64(&w, tk->msg_id);
	store__w_str(&w, tk->title);
	store__w_str(&w, tk->assignee);
	store__w_str(&w, tk->created_by);
	store__w_u64(&w, (uint64_t)tk->due);
	store__w_u8(&w, tk->done);
	store__w_u8(&w, tk->due_fired);
	store__w_u64(&w, (uint64_t)tk->created);
	store__w_u64(&w, (uint64_t)tk->updated);
	store__be64(ck, tk->conv_id);
	store__be64(ck + 8, tk->id);
	store__be64(k, tk->id);
	{
		struct store_task old;

		rc = store_task_get(t, tk->id, &old);
		if (rc == 0 && timer_armed(&old)) {
			store__due_key(dk, STORE_DUE_TASK, old.due, old.id);
			rc = store__del(t, T_DUE, dk, sizeof(dk));
		} else if (rc == INBOX_ENOTFOUND) {
			rc = store__put(t, T_CONV_TASK, ck, 16, "", 0, 0);
		}
	}
	if (rc == 0)
		rc = store__put(t, T_TASK, k, 8, w.buf, w.len, 0);
	store__w_finish(&w);
	if (rc == 0 && armed) {
		store__due_key(dk, STORE_DUE_TASK, due, store__get_be64(k));
		rc = store__put(t, T_DUE, dk, sizeof(dk), "", 0, 0);
	}
	return rc;
}

struct each_task {
	struct store_txn *t;
	int (*cb)(void *arg, const struct store_task *tk);
	void *arg;
};

static int
each_task(void *arg, uint64_t id)
{
	struct each_task *e = arg;
	struct store_task tk;
	int rc;

	if ((rc = store_task_get(e->t, id, &tk)) != 0)
		return rc;
	return e->cb(e->arg, &tk);
}

int
store_conv_tasks(struct store_txn *t, uint64_t conv_id,
    int (*cb)(void *arg, const struct store_task *tk), void *arg)
{
	struct each_task e = { t, cb, arg };

	return store__children(t, T_CONV_TASK, conv_id, each_task, &e);
}

int
store_due_tasks(struct store_txn *t, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t task_id), void *arg)
{
	return store__due_walk(t, STORE_DUE_TASK, now, limit, cb, arg);
}

/* ---- templates ---------------------------------------------------------- */

static int
template_decode(const MDB_val *k, const MDB_val *v, char *name, size_t cap,
    struct store_template *tp)
{
	struct rec_r r;

	if (k->mv_size >= cap)
		return INBOX_EINVAL;
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	memset(tp, 0, sizeof(*tp));
	store__r_init(&r, v->mv_data, v->mv_size, REC_VERSION);
	tp->name = name;
	tp->text = store__r_str(&r, NULL);
	tp->updated_by = store__r_str(&r, NULL);
	tp->updated = (int64_t)store__r_u64(&r);
	if (!store__r_ok(&r) || tp->text == NULL) {
		log_warnx("store: template %s: corrupt record", name);
		return INBOX_EINVAL;
	}
	return 0;
}

int
store_template_get(struct store_txn *t, const char *name,
    struct store_template *out)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc;

	if ((rc = store__get(t, T_TEMPLATE, name, strlen(name), &v)) != 0)
		return rc;
	rc = template_decode(&k, &v, (char [STORE_PAIR_MAX]){ 0 },
	    STORE_PAIR_MAX, out);
	out->name = name;
	return rc;
}

int
store_template_put(struct store_txn *t, const struct store_template *tp)
{
	struct rec_w w;
	int rc;

	if (tp->name == NULL || tp->name[0] == '\0' ||
	    strlen(tp->name) >= STORE_PAIR_MAX || tp->text == NULL)
		return INBOX_EINVAL;
	store__w_init(&w, REC_VERSION);
	store__w_str(&w, tp->text);
	store__w_str(&w, tp->updated_by);
	store__w_u64(&w, (uint64_t)tp->updated);
	rc = store__put(t, T_TEMPLATE, tp->name, strlen(tp->name), w.buf, w.len,
	    0);
	store__w_finish(&w);
	return rc;
}

int
store_template_del(struct store_txn *t, const char *name)
{
	MDB_val v;
	int rc;

	if ((rc = store__get(t, T_TEMPLATE, name, strlen(name), &v)) != 0)
		return rc;
	return store__del(t, T_TEMPLATE, name, strlen(name));
}

int
store_templates(struct store_txn *t,
    int (*cb)(void *arg, const struct store_template *tp), void *arg)
{
	char name[STORE_PAIR_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_TEMPLATE], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_template tp;

		if ((crc = template_decode(&k, &v, name, sizeof(name), &tp)) != 0)
			break;
		if ((crc = cb(arg, &tp)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc < 0)
		return crc;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("templates cursor", rc);
	return 0;
}

/* ---- tags ------------------------------------------------------------- */

int
store_tag_touch(struct store_txn *t, const char *tag, int64_t now,
    bool *created)
{
	unsigned char v[8];
	MDB_val cur;
	int rc;

	*created = false;
	rc = store__get(t, T_TAG, tag, strlen(tag), &cur);
	if (rc != INBOX_ENOTFOUND)
		return rc;
	store__be64(v, (uint64_t)now);
	*created = true;
	return store__put(t, T_TAG, tag, strlen(tag), v, 8, 0);
}

int
store_tags(struct store_txn *t,
    int (*cb)(void *arg, const char *tag, int64_t created), void *arg)
{
	char name[STORE_PAIR_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_TAG], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size >= sizeof(name) || v.mv_size != 8)
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if ((crc = cb(arg, name, (int64_t)store__get_be64(v.mv_data)))
		    != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc < 0)
		return crc;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("tags cursor", rc);
	return 0;
}
