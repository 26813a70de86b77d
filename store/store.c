/* The LMDB environment, its schema and migrations, the table helpers, agents,
 * the event outbox and meta values. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"

#define REC_VERSION 1

static const char *const table_names[T__COUNT] = {
	"meta", "conv", "conv_thread", "conv_idx", "msg", "msg_ext",
	"conv_msg", "contact", "contact_ext", "agent", "outbox", "due",
	"contact_email", "contact_phone", "task", "conv_task", "template",
	"tag", "conv_state", "agent_load", "queue",
};

int
store__fail(const char *what, int rc)
{
	log_warnx("store: %s: %s", what, mdb_strerror(rc));
	return INBOX_EIO;
}

static int
mkdirs(const char *path)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (mkdir(p, 0750) != 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* Brings the schema of a read-write environment up to STORE_SCHEMA inside
 * txn. A store without a schema number is either new (no conversations) or
 * of schema 1, the walking skeleton's (one feed index by state). */
static int
migrate(struct store_txn *t, const char *path)
{
	uint64_t schema = 0;
	MDB_stat ms = { 0 };
	int rc;

	rc = store_meta_get(t, "schema", &schema);
	if (rc == INBOX_ENOTFOUND) {
		if ((rc = mdb_stat(t->txn, t->st->dbi[T_CONV], &ms)) != 0)
			return store__fail("mdb_stat", rc);
		schema = ms.ms_entries == 0 ? STORE_SCHEMA : 1;
	} else if (rc != 0) {
		return rc;
	}
	if (schema > STORE_SCHEMA) {
		log_warnx("store: %s has schema %llu, newer than this program's "
		    "%d: refusing to open it (upgrade inboxd)", path,
		    (unsigned long long)schema, STORE_SCHEMA);
		return INBOX_ESTATE;
	}
	if (schema == 1) {
		log_info("store: migrating %s from schema 1 to 2 (feed and "
		    "contact indexes)", path);
		if ((rc = store__contact_reindex_all(t)) != 0)
			return rc;
		if ((rc = mdb_drop(t->txn, t->st->dbi[T_CONV_STATE_V1], 0)) != 0)
			return store__fail("mdb_drop conv_state", rc);
		schema = 2;
	}
	if (schema == 2) {
		/* Schema 3 adds the agent load counters, the unassigned queue
		 * and SLA timers, all kept by store_conv_put: rewrite every
		 * conversation (schema 1's feed indexes come with it). */
		log_info("store: migrating %s from schema 2 to 3 (agent load, "
		    "unassigned queue, SLA timers)", path);
		if ((rc = mdb_drop(t->txn, t->st->dbi[T_AGENT_LOAD], 0)) != 0 ||
		    (rc = mdb_drop(t->txn, t->st->dbi[T_QUEUE], 0)) != 0)
			return store__fail("mdb_drop", rc);
		if ((rc = store__conv_reindex_all(t)) != 0)
			return rc;
		schema = 3;
	}
	return store_meta_put(t, "schema", schema);
}

int
store_open(struct store **out, const char *path, int map_size_mb, int flags)
{
	struct store *st = xcalloc(1, sizeof(*st));
	struct store_txn t;
	MDB_txn *txn = NULL;
	unsigned envflags = MDB_NOTLS;
	int rc;

	st->rdonly = (flags & STORE_RDONLY) != 0;
	st->shards = 1;
	if (!st->rdonly && mkdirs(path) != 0) {
		log_warn("store: cannot create %s", path);
		rc = INBOX_EIO;
		goto err_alloc;
	}
	if ((rc = mdb_env_create(&st->env)) != 0) {
		rc = store__fail("mdb_env_create", rc);
		goto err_alloc;
	}
	mdb_env_set_maxdbs(st->env, T__COUNT + 4);
	mdb_env_set_mapsize(st->env, (size_t)map_size_mb << 20);
	if (st->rdonly)
		envflags |= MDB_RDONLY;
	if ((rc = mdb_env_open(st->env, path, envflags, 0640)) != 0) {
		if (rc == ENOENT) {
			rc = INBOX_ENOTFOUND;
		} else {
			log_warnx("store: open %s: %s", path, mdb_strerror(rc));
			rc = INBOX_EIO;
		}
		goto err_env;
	}
	if ((rc = mdb_txn_begin(st->env, NULL, st->rdonly ? MDB_RDONLY : 0,
	    &txn)) != 0) {
		rc = store__fail("mdb_txn_begin", rc);
		goto err_env;
	}
	for (int i = 0; i < T__COUNT; i++) {
		rc = mdb_dbi_open(txn, table_names[i], st->rdonly ? 0 : MDB_CREATE,
		    &st->dbi[i]);
		if (rc == MDB_NOTFOUND) {
			/* Only a store of an older schema lacks a table. */
			log_warnx("store: %s has no table %s: it is of an older "
			    "schema (the router migrates it on start)", path,
			    table_names[i]);
			rc = INBOX_ESTATE;
			goto err_txn;
		}
		if (rc != 0) {
			rc = store__fail("mdb_dbi_open", rc);
			goto err_txn;
		}
	}
	t.st = st;
	t.txn = txn;
	if (st->rdonly) {
		uint64_t schema = 0;

		if (store_meta_get(&t, "schema", &schema) != 0 ||
		    schema != STORE_SCHEMA) {
			log_warnx("store: %s has schema %llu, this program reads "
			    "%d (the router migrates an older store on start)",
			    path, (unsigned long long)schema, STORE_SCHEMA);
			rc = INBOX_ESTATE;
			goto err_txn;
		}
	} else if ((rc = migrate(&t, path)) != 0) {
		goto err_txn;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		rc = store__fail("mdb_txn_commit", rc);
		goto err_env;
	}
	*out = st;
	return 0;

err_txn:
	mdb_txn_abort(txn);
err_env:
	mdb_env_close(st->env);
err_alloc:
	free(st);
	return rc;
}

int
store_backup(struct store *st, const char *dir)
{
	int rc;

	if (mkdirs(dir) != 0) {
		log_warn("store: backup: cannot create %s", dir);
		return INBOX_EIO;
	}
	if ((rc = mdb_env_copy2(st->env, dir, MDB_CP_COMPACT)) != 0)
		return store__fail("mdb_env_copy2", rc);
	return 0;
}

int
store_schema(struct store *st, uint64_t *out)
{
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(st, false, &t)) != 0)
		return rc;
	rc = store_meta_get(t, "schema", out);
	store_txn_abort(t);
	return rc;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	mdb_env_close(st->env);
	free(st);
}

int
store_txn_begin(struct store *st, bool write, struct store_txn **out)
{
	struct store_txn *t;
	int rc;

	if (write && st->rdonly)
		return INBOX_ESTATE;
	t = xcalloc(1, sizeof(*t));
	t->st = st;
	if ((rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY,
	    &t->txn)) != 0) {
		free(t);
		return store__fail("mdb_txn_begin", rc);
	}
	*out = t;
	return 0;
}

int
store_txn_commit(struct store_txn *t)
{
	int rc = mdb_txn_commit(t->txn);

	free(t);
	if (rc != 0)
		return store__fail("mdb_txn_commit", rc);
	return 0;
}

void
store_txn_abort(struct store_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

/* ---- generic helpers ------------------------------------------------- */

int
store__get(struct store_txn *t, int table, const void *k, size_t klen, MDB_val *v)
{
	MDB_val key = { klen, (void *)k };
	int rc = mdb_get(t->txn, t->st->dbi[table], &key, v);

	if (rc == MDB_NOTFOUND)
		return INBOX_ENOTFOUND;
	if (rc != 0)
		return store__fail("mdb_get", rc);
	return 0;
}

int
store__put(struct store_txn *t, int table, const void *k, size_t klen,
    const void *v, size_t vlen, unsigned flags)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc = mdb_put(t->txn, t->st->dbi[table], &key, &val, flags);

	if (rc == MDB_KEYEXIST)
		return INBOX_EEXIST;
	if (rc != 0)
		return store__fail(table_names[table], rc);
	return 0;
}

int
store__del(struct store_txn *t, int table, const void *k, size_t klen)
{
	MDB_val key = { klen, (void *)k };
	int rc = mdb_del(t->txn, t->st->dbi[table], &key, NULL);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("mdb_del", rc);
	return 0;
}

int
store__get_id(struct store_txn *t, int table, const void *k, size_t klen, uint64_t *id)
{
	MDB_val v;
	int rc = store__get(t, table, k, klen, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return INBOX_EINVAL;
	*id = store__get_be64(v.mv_data);
	return 0;
}

int
store__get_by_id(struct store_txn *t, int table, uint64_t id, MDB_val *v)
{
	unsigned char k[8];

	store__be64(k, id);
	return store__get(t, table, k, 8, v);
}

int
store__children(struct store_txn *t, int table, uint64_t parent,
    int (*cb)(void *arg, uint64_t child), void *arg)
{
	unsigned char start[16];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[table], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	store__be64(start, parent);
	memset(start + 8, 0, 8);
	k.mv_size = sizeof(start);
	k.mv_data = start;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *kp = k.mv_data;

		if (k.mv_size != 16 || store__get_be64(kp) != parent)
			break;
		if ((crc = cb(arg, store__get_be64(kp + 8))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc < 0)
		return crc;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail(table_names[table], rc);
	return 0;
}

int
store__put_id(struct store_txn *t, int table, const void *k, size_t klen, uint64_t id)
{
	unsigned char v[8];

	store__be64(v, id);
	return store__put(t, table, k, klen, v, 8, 0);
}

static int next_key(struct store_txn *t, int table, uint64_t *id);

/* The next id of a table keyed by big-endian u64: last key + 1, and for
 * the records that have ids outside the store (all but the outbox), the
 * next one of this store's shard. */
int
store__next_id(struct store_txn *t, int table, uint64_t *id)
{
	int rc = next_key(t, table, id);
	uint64_t n = t->st->shards, k = t->st->shard;

	if (rc == 0 && table != T_OUTBOX && n > 1)
		*id += (k + n - (*id - 1) % n) % n;
	return rc;
}

int
store_set_shard(struct store *st, unsigned k, unsigned n)
{
	struct store_txn *t;
	uint64_t had_k = 0, had_n = 0, last = 0;
	int rc;

	if (n < 1 || k >= n)
		return INBOX_EINVAL;
	if ((rc = store_txn_begin(st, !st->rdonly, &t)) != 0)
		return rc;
	if ((rc = store_meta_get(t, "shards", &had_n)) == INBOX_ENOTFOUND)
		had_n = 0;
	else if (rc != 0 || (rc = store_meta_get(t, "shard", &had_k)) != 0)
		goto out;
	if (had_n != 0 && (had_n != n || had_k != k)) {
		log_warnx("store: it holds shard %llu of %llu, not shard %u of "
		    "%u (ids decide the shard: the number of shards cannot "
		    "change)", (unsigned long long)had_k,
		    (unsigned long long)had_n, k, n);
		rc = INBOX_ESTATE;
		goto out;
	}
	if (had_n == 0 && n > 1 && ((rc = next_key(t, T_CONV, &last)) != 0 ||
	    last > 1)) {
		if (rc == 0) {
			log_warnx("store: it holds dialogs of a store without "
			    "shards; it cannot become shard %u of %u", k, n);
			rc = INBOX_ESTATE;
		}
		goto out;
	}
	if (had_n == 0 && !st->rdonly && ((rc = store_meta_put(t, "shards",
	    n)) != 0 || (rc = store_meta_put(t, "shard", k)) != 0))
		goto out;
	st->shard = k;
	st->shards = n;
	if (st->rdonly) {
		store_txn_abort(t);
		return 0;
	}
	return store_txn_commit(t);
out:
	store_txn_abort(t);
	return rc;
}

/* The key after a table's last (big-endian u64 keys), 1 when empty. */
static int
next_key(struct store_txn *t, int table, uint64_t *id)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[table], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		*id = 1;
		return 0;
	}
	if (rc != 0)
		return store__fail("mdb_cursor_get", rc);
	if (k.mv_size != 8)
		return INBOX_EINVAL;
	*id = store__get_be64(k.mv_data) + 1;
	return 0;
}

size_t
store__pair_key(char *buf, size_t cap, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + 1 + lb > cap)
		return 0;
	memcpy(buf, a, la);
	buf[la] = '\0';
	memcpy(buf + la + 1, b, lb);
	return la + 1 + lb;
}


void
store__due_key(unsigned char *k, int kind, int64_t when, uint64_t id)
{
	k[0] = (unsigned char)kind;
	store__be64(k + 1, (uint64_t)when);
	store__be64(k + 9, id);
}

int
store__due_walk(struct store_txn *t, int kind, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t id), void *arg)
{
	unsigned char start[17];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n = 0;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_DUE], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	store__due_key(start, kind, 0, 0);
	k.mv_size = sizeof(start);
	k.mv_data = start;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    n < limit; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *kp = k.mv_data;

		if (k.mv_size != 17 || kp[0] != (unsigned char)kind ||
		    (int64_t)store__get_be64(kp + 1) > now)
			break;
		n++;
		if ((crc = cb(arg, store__get_be64(kp + 9))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("due cursor", rc);
	return crc;
}

int
store_next_due(struct store_txn *t, int64_t *when)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*when = 0;
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_DUE], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	/* Each kind's first key is its earliest. */
	for (int kind = STORE_DUE_SNOOZE; kind <= STORE_DUE_SLA; kind++) {
		unsigned char start[17];

		store__due_key(start, kind, 0, 0);
		k.mv_size = sizeof(start);
		k.mv_data = start;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == 17 &&
		    ((const unsigned char *)k.mv_data)[0] == kind) {
			int64_t w = (int64_t)store__get_be64(
			    (const unsigned char *)k.mv_data + 1);

			if (*when == 0 || w < *when)
				*when = w;
		}
	}
	mdb_cursor_close(cur);
	return 0;
}

/* ---- agents -------------------------------------------------------- */

static int
agent_decode(const MDB_val *v, struct store_agent *a)
{
	struct rec_r r;

	memset(a, 0, sizeof(*a));
	store__r_init(&r, v->mv_data, v->mv_size, REC_VERSION);
	a->login = store__r_str(&r, NULL);
	a->name = store__r_str(&r, NULL);
	a->role = store__r_str(&r, NULL);
	a->pwhash = store__r_str(&r, NULL);
	a->created = (int64_t)store__r_u64(&r);
	a->updated = (int64_t)store__r_u64(&r);
	a->capacity = -1;
	if (store__r_more(&r)) {
		a->teams = store__r_str(&r, NULL);
		a->skills = store__r_str(&r, NULL);
		a->capacity = (int32_t)store__r_u32(&r);
		a->presence = (int)store__r_u8(&r);
		a->presence_at = (int64_t)store__r_u64(&r);
		a->last_assigned = (int64_t)store__r_u64(&r);
	}
	if (!store__r_ok(&r) || a->login == NULL || a->pwhash == NULL ||
	    a->presence >= STORE_PRESENCE__COUNT)
		return INBOX_EINVAL;
	return 0;
}

int
store_agent_get(struct store_txn *t, const char *login, struct store_agent *a)
{
	MDB_val v;
	int rc;

	if ((rc = store__get(t, T_AGENT, login, strlen(login), &v)) != 0)
		return rc;
	if ((rc = agent_decode(&v, a)) != 0)
		log_warnx("store: agent %s: corrupt record", login);
	return rc;
}

int
store_agent_put(struct store_txn *t, const struct store_agent *a)
{
	struct rec_w w;
	int rc;

	store__w_init(&w, REC_VERSION);
	store__w_str(&w, a->login);
	store__w_str(&w, a->name);
	store__w_str(&w, a->role);
	store__w_str(&w, a->pwhash);
	store__w_u64(&w, (uint64_t)a->created);
	store__w_u64(&w, (uint64_t)a->updated);
	store__w_str(&w, a->teams);
	store__w_str(&w, a->skills);
	store__w_u32(&w, (uint32_t)a->capacity);
	store__w_u8(&w, (unsigned)a->presence);
	store__w_u64(&w, (uint64_t)a->presence_at);
	store__w_u64(&w, (uint64_t)a->last_assigned);
	rc = store__put(t, T_AGENT, a->login, strlen(a->login), w.buf, w.len, 0);
	store__w_finish(&w);
	return rc;
}

int
store_agents(struct store_txn *t,
    int (*cb)(void *arg, const struct store_agent *a), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_AGENT], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_agent a;

		if ((crc = agent_decode(&v, &a)) != 0) {
			log_warnx("store: agent %.*s: corrupt record",
			    (int)k.mv_size, (const char *)k.mv_data);
			break;
		}
		if ((crc = cb(arg, &a)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc != 0)
		return crc;
	if (rc != MDB_NOTFOUND)
		return store__fail("agents cursor", rc);
	return 0;
}

int
store_agent_presence(const struct store_agent *a, int64_t now,
    int64_t lease_ms)
{
	if (a->presence == STORE_PRESENCE_OFFLINE ||
	    now - a->presence_at > lease_ms)
		return STORE_PRESENCE_OFFLINE;
	return a->presence;
}

static const char *const presence_names[STORE_PRESENCE__COUNT] = {
	"offline", "online", "away",
};

const char *
store_presence_name(int p)
{
	return p >= 0 && p < STORE_PRESENCE__COUNT ? presence_names[p] :
	    "offline";
}

int
store_presence_parse(const char *name, int *p)
{
	for (int i = 0; i < STORE_PRESENCE__COUNT; i++) {
		if (strcmp(name, presence_names[i]) == 0) {
			*p = i;
			return 0;
		}
	}
	return INBOX_EINVAL;
}

/* ---- outbox and meta ------------------------------------------------- */

int
store_outbox_add(struct store_txn *t, const struct store_event *ev)
{
	unsigned char k[8];
	struct rec_w w;
	uint64_t seq;
	int rc;

	if ((rc = store__next_id(t, T_OUTBOX, &seq)) != 0)
		return rc;
	store__w_init(&w, REC_VERSION);
	store__w_str(&w, ev->id);
	store__w_str(&w, ev->name);
	store__w_str(&w, ev->data);
	store__w_str(&w, ev->to);
	store__w_str(&w, ev->cmd_id);
	store__w_str(&w, ev->about);
	store__be64(k, seq);
	rc = store__put(t, T_OUTBOX, k, 8, w.buf, w.len, MDB_APPEND);
	store__w_finish(&w);
	return rc;
}

int
store_outbox_foreach(struct store_txn *t,
    int (*cb)(void *arg, const struct store_event *ev), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_OUTBOX], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_event ev = { 0 };
		struct rec_r r;

		store__r_init(&r, v.mv_data, v.mv_size, REC_VERSION);
		ev.id = store__r_str(&r, NULL);
		ev.name = store__r_str(&r, NULL);
		ev.data = store__r_str(&r, NULL);
		if (r.pos < r.len) {   /* schema 1 records end here */
			ev.to = store__r_str(&r, NULL);
			ev.cmd_id = store__r_str(&r, NULL);
		}
		if (r.pos < r.len)     /* and older routers' here */
			ev.about = store__r_str(&r, NULL);
		if (!store__r_ok(&r) || ev.id == NULL || ev.name == NULL ||
		    ev.data == NULL) {
			log_warnx("store: outbox: corrupt record skipped");
			continue;
		}
		if ((crc = cb(arg, &ev)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("outbox cursor", rc);
	return crc;
}

int
store_outbox_clear(struct store_txn *t)
{
	int rc = mdb_drop(t->txn, t->st->dbi[T_OUTBOX], 0);

	if (rc != 0)
		return store__fail("mdb_drop outbox", rc);
	return 0;
}

int
store_meta_get(struct store_txn *t, const char *name, uint64_t *v)
{
	return store__get_id(t, T_META, name, strlen(name), v);
}

int
store_meta_put(struct store_txn *t, const char *name, uint64_t v)
{
	return store__put_id(t, T_META, name, strlen(name), v);
}
