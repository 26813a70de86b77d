/* The LMDB environment, its tables and typed records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"

#define REC_VERSION 1

enum { T_META, T_CONV, T_CONV_THREAD, T_CONV_STATE, T_MSG, T_MSG_EXT,
	T_CONV_MSG, T_CONTACT, T_CONTACT_EXT, T_AGENT, T_OUTBOX, T__COUNT };

static const char *const table_names[T__COUNT] = {
	"meta", "conv", "conv_thread", "conv_state", "msg", "msg_ext",
	"conv_msg", "contact", "contact_ext", "agent", "outbox",
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[T__COUNT];
	bool rdonly;
};

struct store_txn {
	struct store *st;
	MDB_txn *txn;
};

static int
lmdb_fail(const char *what, int rc)
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

int
store_open(struct store **out, const char *path, int map_size_mb, int flags)
{
	struct store *st = xcalloc(1, sizeof(*st));
	MDB_txn *txn = NULL;
	unsigned envflags = MDB_NOTLS;
	int rc;

	st->rdonly = (flags & STORE_RDONLY) != 0;
	if (!st->rdonly && mkdirs(path) != 0) {
		log_warn("store: cannot create %s", path);
		rc = INBOX_EIO;
		goto err_alloc;
	}
	if ((rc = mdb_env_create(&st->env)) != 0) {
		rc = lmdb_fail("mdb_env_create", rc);
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
		rc = lmdb_fail("mdb_txn_begin", rc);
		goto err_env;
	}
	for (int i = 0; i < T__COUNT; i++) {
		rc = mdb_dbi_open(txn, table_names[i], st->rdonly ? 0 : MDB_CREATE,
		    &st->dbi[i]);
		if (rc == MDB_NOTFOUND) {
			rc = INBOX_ENOTFOUND;
			goto err_txn;
		}
		if (rc != 0) {
			rc = lmdb_fail("mdb_dbi_open", rc);
			goto err_txn;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		rc = lmdb_fail("mdb_txn_commit", rc);
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
		return lmdb_fail("mdb_txn_begin", rc);
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
		return lmdb_fail("mdb_txn_commit", rc);
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

static int
get(struct store_txn *t, int table, const void *k, size_t klen, MDB_val *v)
{
	MDB_val key = { klen, (void *)k };
	int rc = mdb_get(t->txn, t->st->dbi[table], &key, v);

	if (rc == MDB_NOTFOUND)
		return INBOX_ENOTFOUND;
	if (rc != 0)
		return lmdb_fail("mdb_get", rc);
	return 0;
}

static int
put(struct store_txn *t, int table, const void *k, size_t klen,
    const void *v, size_t vlen, unsigned flags)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc = mdb_put(t->txn, t->st->dbi[table], &key, &val, flags);

	if (rc == MDB_KEYEXIST)
		return INBOX_EEXIST;
	if (rc != 0)
		return lmdb_fail(table_names[table], rc);
	return 0;
}

static int
del(struct store_txn *t, int table, const void *k, size_t klen)
{
	MDB_val key = { klen, (void *)k };
	int rc = mdb_del(t->txn, t->st->dbi[table], &key, NULL);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail("mdb_del", rc);
	return 0;
}

static int
get_id(struct store_txn *t, int table, const void *k, size_t klen, uint64_t *id)
{
	MDB_val v;
	int rc = get(t, table, k, klen, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return INBOX_EINVAL;
	*id = store__get_be64(v.mv_data);
	return 0;
}

static int
put_id(struct store_txn *t, int table, const void *k, size_t klen, uint64_t id)
{
	unsigned char v[8];

	store__be64(v, id);
	return put(t, table, k, klen, v, 8, 0);
}

/* The next id of a table keyed by big-endian u64: last key + 1. */
static int
next_id(struct store_txn *t, int table, uint64_t *id)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[table], &cur)) != 0)
		return lmdb_fail("mdb_cursor_open", rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		*id = 1;
		return 0;
	}
	if (rc != 0)
		return lmdb_fail("mdb_cursor_get", rc);
	if (k.mv_size != 8)
		return INBOX_EINVAL;
	*id = store__get_be64(k.mv_data) + 1;
	return 0;
}

/* key = a "\0" b; returns its length, or 0 when it would not fit. */
static size_t
pair_key(char *buf, size_t cap, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + 1 + lb > cap)
		return 0;
	memcpy(buf, a, la);
	buf[la] = '\0';
	memcpy(buf + la + 1, b, lb);
	return la + 1 + lb;
}

#define PAIR_MAX 511   /* LMDB's default key size limit */

/* ---- conversations ------------------------------------------------- */

static void
state_key(unsigned char *k, int state, int64_t updated, uint64_t id)
{
	k[0] = (unsigned char)state;
	store__be64(k + 1, (uint64_t)updated);
	store__be64(k + 9, id);
}

static int
conv_decode(const MDB_val *v, uint64_t id, struct store_conv *c)
{
	struct rec_r r;

	memset(c, 0, sizeof(*c));
	store__r_init(&r, v->mv_data, v->mv_size, REC_VERSION);
	c->id = id;
	c->contact_id = store__r_u64(&r);
	c->connector = store__r_str(&r, NULL);
	c->channel = store__r_str(&r, NULL);
	c->thread = store__r_str(&r, NULL);
	c->subject = store__r_str(&r, NULL);
	c->assignee = store__r_str(&r, NULL);
	c->priority = store__r_str(&r, NULL);
	c->state = (int)store__r_u8(&r);
	c->created = (int64_t)store__r_u64(&r);
	c->updated = (int64_t)store__r_u64(&r);
	c->last_customer_msg_at = (int64_t)store__r_u64(&r);
	c->snooze_until = (int64_t)store__r_u64(&r);
	c->message_count = store__r_u32(&r);
	if (!store__r_ok(&r) || c->connector == NULL || c->thread == NULL ||
	    c->state >= STORE_STATE__COUNT) {
		log_warnx("store: conversation %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	return 0;
}

int
store_conv_get(struct store_txn *t, uint64_t id, struct store_conv *out)
{
	unsigned char k[8];
	MDB_val v;
	int rc;

	store__be64(k, id);
	if ((rc = get(t, T_CONV, k, 8, &v)) != 0)
		return rc;
	return conv_decode(&v, id, out);
}

int
store_conv_find_thread(struct store_txn *t, const char *connector,
    const char *thread, uint64_t *id)
{
	char k[PAIR_MAX];
	size_t n = pair_key(k, sizeof(k), connector, thread);

	if (n == 0)
		return INBOX_ENOTFOUND;
	return get_id(t, T_CONV_THREAD, k, n, id);
}

int
store_conv_put(struct store_txn *t, struct store_conv *c)
{
	unsigned char k[8], sk[17];
	char pk[PAIR_MAX];
	size_t pklen = 0;
	struct rec_w w;
	int rc;

	if (c->connector == NULL || c->thread == NULL ||
	    c->state < 0 || c->state >= STORE_STATE__COUNT)
		return INBOX_EINVAL;
	if (c->id == 0 && (pklen = pair_key(pk, sizeof(pk), c->connector,
	    c->thread)) == 0)
		return INBOX_ETOOBIG;
	/* Encode first: c's strings may point into pages an update moves. */
	store__w_init(&w, REC_VERSION);
	store__w_u64(&w, c->contact_id);
	store__w_str(&w, c->connector);
	store__w_str(&w, c->channel);
	store__w_str(&w, c->thread);
	store__w_str(&w, c->subject);
	store__w_str(&w, c->assignee);
	store__w_str(&w, c->priority ? c->priority : "normal");
	store__w_u8(&w, (unsigned)c->state);
	store__w_u64(&w, (uint64_t)c->created);
	store__w_u64(&w, (uint64_t)c->updated);
	store__w_u64(&w, (uint64_t)c->last_customer_msg_at);
	store__w_u64(&w, (uint64_t)c->snooze_until);
	store__w_u32(&w, c->message_count);
	if (c->id == 0) {
		if ((rc = next_id(t, T_CONV, &c->id)) != 0 ||
		    (rc = put_id(t, T_CONV_THREAD, pk, pklen, c->id)) != 0)
			goto out;
	} else {
		struct store_conv old;

		if ((rc = store_conv_get(t, c->id, &old)) != 0)
			goto out;
		state_key(sk, old.state, old.updated, old.id);
		if ((rc = del(t, T_CONV_STATE, sk, sizeof(sk))) != 0)
			goto out;
	}
	store__be64(k, c->id);
	if ((rc = put(t, T_CONV, k, 8, w.buf, w.len, 0)) != 0)
		goto out;
	state_key(sk, c->state, c->updated, c->id);
	rc = put(t, T_CONV_STATE, sk, sizeof(sk), "", 0, 0);
out:
	store__w_finish(&w);
	return rc;
}

int
store_feed(struct store_txn *t, int state, int64_t before_updated,
    uint64_t before_id, size_t limit,
    int (*cb)(void *arg, const struct store_conv *conv), void *arg, bool *more)
{
	unsigned char start[17];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t given = 0;
	int rc;

	*more = false;
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONV_STATE], &cur)) != 0)
		return lmdb_fail("mdb_cursor_open", rc);
	/* The walk starts at the greatest key below `start`: the cursor, or the
	 * first key of the next state. */
	if (before_id != 0)
		state_key(start, state, before_updated, before_id);
	else
		state_key(start, state + 1, 0, 0);
	k.mv_size = sizeof(start);
	k.mv_data = start;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		const unsigned char *kp = k.mv_data;
		struct store_conv c;
		int crc;

		if (k.mv_size != 17 || kp[0] != (unsigned char)state)
			break;
		if (given == limit) {
			*more = true;
			break;
		}
		if ((crc = store_conv_get(t, store__get_be64(kp + 9), &c)) != 0) {
			mdb_cursor_close(cur);
			return crc;
		}
		given++;
		if (cb(arg, &c) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail("feed cursor", rc);
	return 0;
}

/* ---- messages ------------------------------------------------------ */

static int
msg_decode(const MDB_val *v, uint64_t id, struct store_msg *m)
{
	struct rec_r r;

	memset(m, 0, sizeof(*m));
	store__r_init(&r, v->mv_data, v->mv_size, REC_VERSION);
	m->id = id;
	m->conv_id = store__r_u64(&r);
	m->contact_id = store__r_u64(&r);
	m->dir = (int)store__r_u8(&r);
	m->ts = (int64_t)store__r_u64(&r);
	m->created = (int64_t)store__r_u64(&r);
	m->connector = store__r_str(&r, NULL);
	m->channel = store__r_str(&r, NULL);
	m->external_id = store__r_str(&r, NULL);
	m->envelope = store__r_str(&r, &m->envelope_len);
	if (!store__r_ok(&r) || m->connector == NULL || m->envelope == NULL) {
		log_warnx("store: message %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	return 0;
}

int
store_msg_find_ext(struct store_txn *t, const char *connector,
    const char *external_id, uint64_t *id)
{
	char k[PAIR_MAX];
	size_t n = pair_key(k, sizeof(k), connector, external_id);

	if (n == 0)
		return INBOX_ENOTFOUND;
	return get_id(t, T_MSG_EXT, k, n, id);
}

int
store_msg_add(struct store_txn *t, struct store_msg *m)
{
	unsigned char k[8], ck[16];
	char pk[PAIR_MAX];
	size_t n = pair_key(pk, sizeof(pk), m->connector, m->external_id);
	struct rec_w w;
	int rc;

	if (n == 0)
		return INBOX_ETOOBIG;
	if ((rc = next_id(t, T_MSG, &m->id)) != 0)
		return rc;
	store__w_init(&w, REC_VERSION);
	store__w_u64(&w, m->conv_id);
	store__w_u64(&w, m->contact_id);
	store__w_u8(&w, (unsigned)m->dir);
	store__w_u64(&w, (uint64_t)m->ts);
	store__w_u64(&w, (uint64_t)m->created);
	store__w_str(&w, m->connector);
	store__w_str(&w, m->channel);
	store__w_str(&w, m->external_id);
	store__w_bytes(&w, m->envelope, m->envelope_len);
	store__be64(k, m->id);
	rc = put(t, T_MSG, k, 8, w.buf, w.len, MDB_APPEND);
	store__w_finish(&w);
	if (rc != 0)
		return rc;
	if ((rc = put(t, T_MSG_EXT, pk, n, k, 8, MDB_NOOVERWRITE)) != 0)
		return rc;
	store__be64(ck, m->conv_id);
	store__be64(ck + 8, m->id);
	return put(t, T_CONV_MSG, ck, 16, "", 0, 0);
}

int
store_msg_get(struct store_txn *t, uint64_t id, struct store_msg *out)
{
	unsigned char k[8];
	MDB_val v;
	int rc;

	store__be64(k, id);
	if ((rc = get(t, T_MSG, k, 8, &v)) != 0)
		return rc;
	return msg_decode(&v, id, out);
}

int
store_conv_messages(struct store_txn *t, uint64_t conv_id,
    int (*cb)(void *arg, const struct store_msg *msg), void *arg)
{
	unsigned char start[16];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONV_MSG], &cur)) != 0)
		return lmdb_fail("mdb_cursor_open", rc);
	store__be64(start, conv_id);
	memset(start + 8, 0, 8);
	k.mv_size = sizeof(start);
	k.mv_data = start;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *kp = k.mv_data;
		struct store_msg m;
		int crc;

		if (k.mv_size != 16 || store__get_be64(kp) != conv_id)
			break;
		if ((crc = store_msg_get(t, store__get_be64(kp + 8), &m)) != 0) {
			mdb_cursor_close(cur);
			return crc;
		}
		if (cb(arg, &m) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail("messages cursor", rc);
	return 0;
}

/* ---- contacts ------------------------------------------------------ */

int
store_contact_get(struct store_txn *t, uint64_t id, struct store_contact *c)
{
	unsigned char k[8];
	struct rec_r r;
	MDB_val v;
	int rc;

	store__be64(k, id);
	if ((rc = get(t, T_CONTACT, k, 8, &v)) != 0)
		return rc;
	memset(c, 0, sizeof(*c));
	store__r_init(&r, v.mv_data, v.mv_size, REC_VERSION);
	c->id = id;
	c->connector = store__r_str(&r, NULL);
	c->channel = store__r_str(&r, NULL);
	c->external_id = store__r_str(&r, NULL);
	c->name = store__r_str(&r, NULL);
	c->email = store__r_str(&r, NULL);
	c->phone = store__r_str(&r, NULL);
	c->username = store__r_str(&r, NULL);
	c->created = (int64_t)store__r_u64(&r);
	if (!store__r_ok(&r)) {
		log_warnx("store: contact %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	return 0;
}

int
store_contact_find_ext(struct store_txn *t, const char *connector,
    const char *external_id, uint64_t *id)
{
	char k[PAIR_MAX];
	size_t n = pair_key(k, sizeof(k), connector, external_id);

	if (n == 0)
		return INBOX_ENOTFOUND;
	return get_id(t, T_CONTACT_EXT, k, n, id);
}

int
store_contact_put(struct store_txn *t, struct store_contact *c)
{
	unsigned char k[8];
	struct rec_w w;
	int rc;

	if (c->id == 0) {
		char pk[PAIR_MAX];
		size_t n = pair_key(pk, sizeof(pk), c->connector,
		    c->external_id);

		if (n == 0)
			return INBOX_ETOOBIG;
		if ((rc = next_id(t, T_CONTACT, &c->id)) != 0 ||
		    (rc = put_id(t, T_CONTACT_EXT, pk, n, c->id)) != 0)
			return rc;
	}
	store__w_init(&w, REC_VERSION);
	store__w_str(&w, c->connector);
	store__w_str(&w, c->channel);
	store__w_str(&w, c->external_id);
	store__w_str(&w, c->name);
	store__w_str(&w, c->email);
	store__w_str(&w, c->phone);
	store__w_str(&w, c->username);
	store__w_u64(&w, (uint64_t)c->created);
	store__be64(k, c->id);
	rc = put(t, T_CONTACT, k, 8, w.buf, w.len, 0);
	store__w_finish(&w);
	return rc;
}

/* ---- agents -------------------------------------------------------- */

int
store_agent_get(struct store_txn *t, const char *login, struct store_agent *a)
{
	struct rec_r r;
	MDB_val v;
	int rc;

	if ((rc = get(t, T_AGENT, login, strlen(login), &v)) != 0)
		return rc;
	memset(a, 0, sizeof(*a));
	store__r_init(&r, v.mv_data, v.mv_size, REC_VERSION);
	a->login = store__r_str(&r, NULL);
	a->name = store__r_str(&r, NULL);
	a->role = store__r_str(&r, NULL);
	a->pwhash = store__r_str(&r, NULL);
	a->created = (int64_t)store__r_u64(&r);
	a->updated = (int64_t)store__r_u64(&r);
	if (!store__r_ok(&r) || a->login == NULL || a->pwhash == NULL) {
		log_warnx("store: agent %s: corrupt record", login);
		return INBOX_EINVAL;
	}
	return 0;
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
	rc = put(t, T_AGENT, a->login, strlen(a->login), w.buf, w.len, 0);
	store__w_finish(&w);
	return rc;
}

/* ---- outbox and meta ------------------------------------------------- */

int
store_outbox_add(struct store_txn *t, const char *stream_id, const char *event,
    const char *data)
{
	unsigned char k[8];
	struct rec_w w;
	uint64_t seq;
	int rc;

	if ((rc = next_id(t, T_OUTBOX, &seq)) != 0)
		return rc;
	store__w_init(&w, REC_VERSION);
	store__w_str(&w, stream_id);
	store__w_str(&w, event);
	store__w_str(&w, data);
	store__be64(k, seq);
	rc = put(t, T_OUTBOX, k, 8, w.buf, w.len, MDB_APPEND);
	store__w_finish(&w);
	return rc;
}

int
store_outbox_foreach(struct store_txn *t,
    int (*cb)(void *arg, const char *stream_id, const char *event,
    const char *data), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_OUTBOX], &cur)) != 0)
		return lmdb_fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct rec_r r;
		const char *id, *ev, *data;

		store__r_init(&r, v.mv_data, v.mv_size, REC_VERSION);
		id = store__r_str(&r, NULL);
		ev = store__r_str(&r, NULL);
		data = store__r_str(&r, NULL);
		if (!store__r_ok(&r) || id == NULL || ev == NULL || data == NULL) {
			log_warnx("store: outbox: corrupt record skipped");
			continue;
		}
		if ((crc = cb(arg, id, ev, data)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail("outbox cursor", rc);
	return crc;
}

int
store_outbox_clear(struct store_txn *t)
{
	int rc = mdb_drop(t->txn, t->st->dbi[T_OUTBOX], 0);

	if (rc != 0)
		return lmdb_fail("mdb_drop outbox", rc);
	return 0;
}

int
store_meta_get(struct store_txn *t, const char *name, uint64_t *v)
{
	return get_id(t, T_META, name, strlen(name), v);
}

int
store_meta_put(struct store_txn *t, const char *name, uint64_t v)
{
	return put_id(t, T_META, name, strlen(name), v);
}
