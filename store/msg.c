/* Messages: customer messages, agent replies and private notes. */
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"

#define REC_V1 1
#define REC_V2 2

static int
msg_decode(const MDB_val *v, uint64_t id, struct store_msg *m)
{
	unsigned ver = store__r_version(v->mv_data, v->mv_size);
	struct rec_r r;

	memset(m, 0, sizeof(*m));
	store__r_init(&r, v->mv_data, v->mv_size, ver == REC_V1 ? REC_V1 :
	    REC_V2);
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
	if (ver != REC_V1) {
		m->status = (int)store__r_u8(&r);
		m->status_at = (int64_t)store__r_u64(&r);
		m->author = store__r_str(&r, NULL);
		m->status_error = store__r_str(&r, NULL);
	}
	if (!store__r_ok(&r) || m->connector == NULL || m->envelope == NULL ||
	    m->status >= STORE_MS__COUNT) {
		log_warnx("store: message %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	return 0;
}

static void
msg_encode(struct rec_w *w, const struct store_msg *m)
{
	store__w_init(w, REC_V2);
	store__w_u64(w, m->conv_id);
	store__w_u64(w, m->contact_id);
	store__w_u8(w, (unsigned)m->dir);
	store__w_u64(w, (uint64_t)m->ts);
	store__w_u64(w, (uint64_t)m->created);
	store__w_str(w, m->connector);
	store__w_str(w, m->channel);
	store__w_str(w, m->external_id);
	store__w_bytes(w, m->envelope, m->envelope_len);
	store__w_u8(w, (unsigned)m->status);
	store__w_u64(w, (uint64_t)m->status_at);
	store__w_str(w, m->author);
	store__w_str(w, m->status_error);
}

int
store_msg_find_ext(struct store_txn *t, const char *connector,
    const char *external_id, uint64_t *id)
{
	char k[STORE_PAIR_MAX];
	size_t n = store__pair_key(k, sizeof(k), connector, external_id);

	if (n == 0)
		return INBOX_ENOTFOUND;
	return store__get_id(t, T_MSG_EXT, k, n, id);
}

int
store_msg_link_ext(struct store_txn *t, const char *connector,
    const char *external_id, uint64_t id)
{
	char k[STORE_PAIR_MAX];
	size_t n = store__pair_key(k, sizeof(k), connector, external_id);
	unsigned char v[8];

	if (n == 0)
		return INBOX_ETOOBIG;
	store__be64(v, id);
	return store__put(t, T_MSG_EXT, k, n, v, 8, MDB_NOOVERWRITE);
}

int
store_msg_add(struct store_txn *t, struct store_msg *m)
{
	unsigned char k[8], ck[16];
	char pk[STORE_PAIR_MAX];
	size_t n = 0;
	struct rec_w w;
	int rc;

	if (m->connector == NULL || m->envelope == NULL ||
	    m->status < 0 || m->status >= STORE_MS__COUNT)
		return INBOX_EINVAL;
	if (m->external_id != NULL && (n = store__pair_key(pk, sizeof(pk),
	    m->connector, m->external_id)) == 0)
		return INBOX_ETOOBIG;
	if ((rc = store__next_id(t, T_MSG, &m->id)) != 0)
		return rc;
	msg_encode(&w, m);
	store__be64(k, m->id);
	rc = store__put(t, T_MSG, k, 8, w.buf, w.len, MDB_APPEND);
	store__w_finish(&w);
	if (rc != 0)
		return rc;
	if (n != 0 && (rc = store__put(t, T_MSG_EXT, pk, n, k, 8,
	    MDB_NOOVERWRITE)) != 0)
		return rc;
	store__be64(ck, m->conv_id);
	store__be64(ck + 8, m->id);
	return store__put(t, T_CONV_MSG, ck, 16, "", 0, 0);
}

int
store_msg_update(struct store_txn *t, const struct store_msg *m)
{
	unsigned char k[8];
	struct rec_w w;
	MDB_val v;
	int rc;

	store__be64(k, m->id);
	if ((rc = store__get(t, T_MSG, k, 8, &v)) != 0)
		return rc;
	msg_encode(&w, m);
	rc = store__put(t, T_MSG, k, 8, w.buf, w.len, 0);
	store__w_finish(&w);
	return rc;
}

int
store_msg_get(struct store_txn *t, uint64_t id, struct store_msg *out)
{
	MDB_val v;
	int rc;

	if ((rc = store__get_by_id(t, T_MSG, id, &v)) != 0)
		return rc;
	return msg_decode(&v, id, out);
}

struct each_msg {
	struct store_txn *t;
	int (*cb)(void *arg, const struct store_msg *msg);
	void *arg;
};

static int
each_msg(void *arg, uint64_t id)
{
	struct each_msg *e = arg;
	struct store_msg m;
	int rc;

	if ((rc = store_msg_get(e->t, id, &m)) != 0)
		return rc;
	return e->cb(e->arg, &m);
}

int
store_conv_messages(struct store_txn *t, uint64_t conv_id,
    int (*cb)(void *arg, const struct store_msg *msg), void *arg)
{
	struct each_msg e = { t, cb, arg };

	return store__children(t, T_CONV_MSG, conv_id, each_msg, &e);
}
