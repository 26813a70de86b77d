/* Conversations, their feed indexes and the snooze timer index.
 *
 * T_CONV_IDX keys: facet (u8), value, NUL, state (u8), sort key (be64), id
 * (be64). Every conversation has one key in the ALL facet (empty value) and
 * one per assignee (the login, "" when unassigned), tag, channel, priority
 * and contact (decimal id). The sort key is `updated`, or `snooze_until`
 * for a snoozed conversation. A feed walks one facet's range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "inbox/dialog.h"
#include "store/store.h"
#include "store/store_int.h"

#define REC_V1 1                 /* walking skeleton */
#define REC_V2 2

enum { F_ALL, F_ASSIGNEE, F_TAG, F_CHANNEL, F_PRIORITY, F_CONTACT };

#define IDX_KEYS_MAX (5 + STORE_TAGS_MAX)
#define IDX_KEY_MAX 400

/* Every key derived from one version of a conversation. */
struct idx_keys {
	size_t n;
	size_t len[IDX_KEYS_MAX];
	unsigned char key[IDX_KEYS_MAX][IDX_KEY_MAX];
	bool snoozed, queued, sla;
	unsigned char snooze_key[17], queue_key[17], sla_key[17];
	char load_login[65];     /* a login (at most 64); "": nobody */
};

/* The prefix facet, value, NUL, state; returns its length or 0 when the
 * value is too long. */
static size_t
idx_prefix(unsigned char *k, int facet, const char *value, int state)
{
	size_t vl = strlen(value);

	if (vl + 3 + 16 > IDX_KEY_MAX)
		return 0;
	k[0] = (unsigned char)facet;
	memcpy(k + 1, value, vl);
	k[1 + vl] = '\0';
	k[2 + vl] = (unsigned char)state;
	return vl + 3;
}

static void
idx_add(struct idx_keys *ks, int facet, const char *value,
    const struct store_conv *c)
{
	size_t n;

	if (ks->n == IDX_KEYS_MAX)
		return;
	n = idx_prefix(ks->key[ks->n], facet, value, c->state);
	if (n == 0)
		return;
	store__be64(ks->key[ks->n] + n, (uint64_t)store_feed_key(c));
	store__be64(ks->key[ks->n] + n + 8, c->id);
	ks->len[ks->n++] = n + 16;
}

static void
idx_keys_of(struct idx_keys *ks, const struct store_conv *c)
{
	char num[24];

	ks->n = 0;
	idx_add(ks, F_ALL, "", c);
	idx_add(ks, F_ASSIGNEE, c->assignee ? c->assignee : "", c);
	idx_add(ks, F_CHANNEL, c->channel ? c->channel : "", c);
	idx_add(ks, F_PRIORITY, inbox_priority_name(c->priority), c);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)c->contact_id);
	idx_add(ks, F_CONTACT, num, c);
	for (size_t i = 0; i < c->ntags; i++)
		idx_add(ks, F_TAG, c->tags[i], c);

	ks->snoozed = c->state == STORE_STATE_SNOOZED;
	store__due_key(ks->snooze_key, STORE_DUE_SNOOZE, c->snooze_until, c->id);
	/* the queue: most urgent first, then oldest */
	ks->queued = c->state == STORE_STATE_OPEN && c->assignee == NULL;
	ks->queue_key[0] = (unsigned char)(INBOX_PRIO__COUNT - 1 - c->priority);
	store__be64(ks->queue_key + 1, (uint64_t)c->created);
	store__be64(ks->queue_key + 9, c->id);
	ks->sla = inbox_sla_next(&c->sla) != 0;
	store__due_key(ks->sla_key, STORE_DUE_SLA, inbox_sla_next(&c->sla),
	    c->id);
	ks->load_login[0] = '\0';
	if (c->state == STORE_STATE_OPEN && c->assignee != NULL &&
	    strlen(c->assignee) <= 64)
		snprintf(ks->load_login, sizeof(ks->load_login), "%s",
		    c->assignee);
}

/* Adds delta to the open dialogs counted for login. */
static int
load_add(struct store_txn *t, const char *login, int delta)
{
	unsigned char v[4];
	uint32_t n = 0;
	MDB_val cur;
	int rc;

	rc = store__get(t, T_AGENT_LOAD, login, strlen(login), &cur);
	if (rc == 0 && cur.mv_size == 4) {
		const unsigned char *p = cur.mv_data;

		n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
	} else if (rc != 0 && rc != INBOX_ENOTFOUND) {
		return rc;
	}
	if (delta < 0 && n < (uint32_t)-delta)
		n = 0;
	else
		n = (uint32_t)((int64_t)n + delta);
	if (n == 0)
		return store__del(t, T_AGENT_LOAD, login, strlen(login));
	v[0] = (unsigned char)(n >> 24);
	v[1] = (unsigned char)(n >> 16);
	v[2] = (unsigned char)(n >> 8);
	v[3] = (unsigned char)n;
	return store__put(t, T_AGENT_LOAD, login, strlen(login), v, 4, 0);
}

int
store_agent_load(struct store_txn *t, const char *login, uint32_t *open)
{
	MDB_val v;
	int rc;

	*open = 0;
	rc = store__get(t, T_AGENT_LOAD, login, strlen(login), &v);
	if (rc == INBOX_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size == 4) {
		const unsigned char *p = v.mv_data;

		*open = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
	}
	return 0;
}

int64_t
store_feed_key(const struct store_conv *c)
{
	return c->state == STORE_STATE_SNOOZED ? c->snooze_until : c->updated;
}

static int
conv_decode(const MDB_val *v, uint64_t id, struct store_conv *c)
{
	unsigned ver = store__r_version(v->mv_data, v->mv_size);
	struct rec_r r;

	memset(c, 0, sizeof(*c));
	store__r_init(&r, v->mv_data, v->mv_size, ver == REC_V1 ? REC_V1 :
	    REC_V2);
	c->id = id;
	c->contact_id = store__r_u64(&r);
	c->connector = store__r_str(&r, NULL);
	c->channel = store__r_str(&r, NULL);
	c->thread = store__r_str(&r, NULL);
	c->subject = store__r_str(&r, NULL);
	c->assignee = store__r_str(&r, NULL);
	if (ver == REC_V1) {
		const char *p = store__r_str(&r, NULL);

		if (p == NULL || inbox_priority_parse(p, &c->priority) != 0)
			c->priority = INBOX_PRIO_NORMAL;
	} else {
		c->priority = (int)store__r_u8(&r);
		c->nature = (int)store__r_u8(&r);
	}
	c->state = (int)store__r_u8(&r);
	c->created = (int64_t)store__r_u64(&r);
	c->updated = (int64_t)store__r_u64(&r);
	c->last_customer_msg_at = (int64_t)store__r_u64(&r);
	c->snooze_until = (int64_t)store__r_u64(&r);
	c->message_count = store__r_u32(&r);
	if (ver != REC_V1) {
		c->outcome = store__r_str(&r, NULL);
		c->preview = store__r_str(&r, NULL);
		c->closed_at = (int64_t)store__r_u64(&r);
		c->first_response_at = (int64_t)store__r_u64(&r);
		c->last_agent_msg_at = (int64_t)store__r_u64(&r);
		c->reopen_count = store__r_u32(&r);
		c->ntags = store__r_u8(&r);
		for (size_t i = 0; i < c->ntags && i < STORE_TAGS_MAX; i++)
			c->tags[i] = store__r_str(&r, NULL);
		if (store__r_more(&r)) {
			c->sla_policy = store__r_str(&r, NULL);
			for (int k = 0; k < INBOX_SLA__COUNT; k++) {
				c->sla.t[k].start = (int64_t)store__r_u64(&r);
				c->sla.t[k].warn_at = (int64_t)store__r_u64(&r);
				c->sla.t[k].due_at = (int64_t)store__r_u64(&r);
			}
			c->sla.fired = store__r_u8(&r);
		}
		if (store__r_more(&r)) {
			c->survey_sent_at = (int64_t)store__r_u64(&r);
			c->rating = (int)store__r_u8(&r);
			c->rated_at = (int64_t)store__r_u64(&r);
			c->auto_reply_at = (int64_t)store__r_u64(&r);
		}
	}
	if (!store__r_ok(&r) || c->connector == NULL || c->thread == NULL ||
	    c->state >= STORE_STATE__COUNT || c->ntags > STORE_TAGS_MAX ||
	    c->priority >= INBOX_PRIO__COUNT ||
	    c->nature >= INBOX_NATURE__COUNT || c->rating > 5) {
		log_warnx("store: conversation %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	for (size_t i = 0; i < c->ntags; i++)
		if (c->tags[i] == NULL)
			return INBOX_EINVAL;
	return 0;
}

int
store_conv_get(struct store_txn *t, uint64_t id, struct store_conv *out)
{
	MDB_val v;
	int rc;

	if ((rc = store__get_by_id(t, T_CONV, id, &v)) != 0)
		return rc;
	return conv_decode(&v, id, out);
}

int
store_conv_find_thread(struct store_txn *t, const char *connector,
    const char *thread, uint64_t *id)
{
	char k[STORE_PAIR_MAX];
	size_t n = store__pair_key(k, sizeof(k), connector, thread);

	if (n == 0)
		return INBOX_ENOTFOUND;
	return store__get_id(t, T_CONV_THREAD, k, n, id);
}

static void
conv_encode(struct rec_w *w, const struct store_conv *c)
{
	store__w_init(w, REC_V2);
	store__w_u64(w, c->contact_id);
	store__w_str(w, c->connector);
	store__w_str(w, c->channel);
	store__w_str(w, c->thread);
	store__w_str(w, c->subject);
	store__w_str(w, c->assignee);
	store__w_u8(w, (unsigned)c->priority);
	store__w_u8(w, (unsigned)c->nature);
	store__w_u8(w, (unsigned)c->state);
	store__w_u64(w, (uint64_t)c->created);
	store__w_u64(w, (uint64_t)c->updated);
	store__w_u64(w, (uint64_t)c->last_customer_msg_at);
	store__w_u64(w, (uint64_t)c->snooze_until);
	store__w_u32(w, c->message_count);
	store__w_str(w, c->outcome);
	store__w_str(w, c->preview);
	store__w_u64(w, (uint64_t)c->closed_at);
	store__w_u64(w, (uint64_t)c->first_response_at);
	store__w_u64(w, (uint64_t)c->last_agent_msg_at);
	store__w_u32(w, c->reopen_count);
	store__w_u8(w, (unsigned)c->ntags);
	for (size_t i = 0; i < c->ntags; i++)
		store__w_str(w, c->tags[i]);
	store__w_str(w, c->sla_policy);
	for (int k = 0; k < INBOX_SLA__COUNT; k++) {
		store__w_u64(w, (uint64_t)c->sla.t[k].start);
		store__w_u64(w, (uint64_t)c->sla.t[k].warn_at);
		store__w_u64(w, (uint64_t)c->sla.t[k].due_at);
	}
	store__w_u8(w, c->sla.fired & 0xff);
	store__w_u64(w, (uint64_t)c->survey_sent_at);
	store__w_u8(w, (unsigned)c->rating);
	store__w_u64(w, (uint64_t)c->rated_at);
	store__w_u64(w, (uint64_t)c->auto_reply_at);
}

/* Deletes the index and timer keys of the stored version of conversation id
 * (none when it is new). */
static int
unindex(struct store_txn *t, uint64_t id, struct idx_keys *ks)
{
	struct store_conv old;
	int rc;

	if ((rc = store_conv_get(t, id, &old)) != 0)
		return rc;
	idx_keys_of(ks, &old);
	if (ks->snoozed && (rc = store__del(t, T_DUE, ks->snooze_key,
	    sizeof(ks->snooze_key))) != 0)
		return rc;
	if (ks->queued && (rc = store__del(t, T_QUEUE, ks->queue_key,
	    sizeof(ks->queue_key))) != 0)
		return rc;
	if (ks->sla && (rc = store__del(t, T_DUE, ks->sla_key,
	    sizeof(ks->sla_key))) != 0)
		return rc;
	if (ks->load_login[0] != '\0' &&
	    (rc = load_add(t, ks->load_login, -1)) != 0)
		return rc;
	for (size_t i = 0; i < ks->n; i++)
		if ((rc = store__del(t, T_CONV_IDX, ks->key[i], ks->len[i])) != 0)
			return rc;
	return 0;
}

static int
index_conv(struct store_txn *t, const struct idx_keys *ks)
{
	int rc;

	for (size_t i = 0; i < ks->n; i++)
		if ((rc = store__put(t, T_CONV_IDX, ks->key[i], ks->len[i], "", 0,
		    0)) != 0)
			return rc;
	if (ks->snoozed && (rc = store__put(t, T_DUE, ks->snooze_key,
	    sizeof(ks->snooze_key), "", 0, 0)) != 0)
		return rc;
	if (ks->queued && (rc = store__put(t, T_QUEUE, ks->queue_key,
	    sizeof(ks->queue_key), "", 0, 0)) != 0)
		return rc;
	if (ks->sla && (rc = store__put(t, T_DUE, ks->sla_key,
	    sizeof(ks->sla_key), "", 0, 0)) != 0)
		return rc;
	if (ks->load_login[0] != '\0')
		return load_add(t, ks->load_login, 1);
	return 0;
}

int
store_conv_put(struct store_txn *t, struct store_conv *c)
{
	unsigned char k[8];
	char pk[STORE_PAIR_MAX];
	size_t pklen = 0;
	struct idx_keys *ks, *old;
	bool isnew = c->id == 0;
	struct rec_w w;
	int rc;

	if (c->connector == NULL || c->thread == NULL ||
	    c->state < 0 || c->state >= STORE_STATE__COUNT ||
	    c->ntags > STORE_TAGS_MAX || c->priority < 0 ||
	    c->priority >= INBOX_PRIO__COUNT || c->nature < 0 ||
	    c->nature >= INBOX_NATURE__COUNT)
		return INBOX_EINVAL;
	if (isnew && (pklen = store__pair_key(pk, sizeof(pk), c->connector,
	    c->thread)) == 0)
		return INBOX_ETOOBIG;
	if (isnew && (rc = store__next_id(t, T_CONV, &c->id)) != 0)
		return rc;
	/* Encode the record and its keys before the first update: c's strings
	 * may point into pages an update moves. */
	conv_encode(&w, c);
	ks = xmalloc(sizeof(*ks));
	old = xmalloc(sizeof(*old));
	idx_keys_of(ks, c);
	if (!isnew && (rc = unindex(t, c->id, old)) != 0)
		goto out;
	if (isnew && (rc = store__put_id(t, T_CONV_THREAD, pk, pklen,
	    c->id)) != 0)
		goto out;
	store__be64(k, c->id);
	if ((rc = store__put(t, T_CONV, k, 8, w.buf, w.len, 0)) != 0)
		goto out;
	rc = index_conv(t, ks);
out:
	free(old);
	free(ks);
	store__w_finish(&w);
	return rc;
}

int
store__conv_reindex_all(struct store_txn *t)
{
	struct idx_keys *ks = xmalloc(sizeof(*ks));
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, frc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONV], &cur)) != 0) {
		free(ks);
		return store__fail("mdb_cursor_open", rc);
	}
	/* Each record is rewritten with mdb_put and the cursor is positioned
	 * again by key after it: a put of another size moves the record (and
	 * may split its page), so the cursor is not stepped past a write. */
	for (uint64_t next = 0;;) {
		unsigned char kb[8];
		struct store_conv c;
		struct rec_w w;
		uint64_t id;

		store__be64(kb, next);
		k = (MDB_val){ sizeof(kb), kb };
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size != 8) {
			frc = INBOX_EINVAL;
			break;
		}
		id = store__get_be64(k.mv_data);
		if ((frc = conv_decode(&v, id, &c)) != 0)
			break;
		/* Encode before the write: c's strings point into the page. */
		conv_encode(&w, &c);
		idx_keys_of(ks, &c);
		store__be64(kb, id);
		k = (MDB_val){ sizeof(kb), kb };
		frc = mdb_put(t->txn, t->st->dbi[T_CONV], &k,
		    &(MDB_val){ w.len, w.buf }, 0);
		store__w_finish(&w);
		if (frc != 0) {
			frc = store__fail("reindex put", frc);
			break;
		}
		if ((frc = index_conv(t, ks)) != 0)
			break;
		if (id == UINT64_MAX) {
			rc = MDB_NOTFOUND;
			break;
		}
		next = id + 1;
	}
	mdb_cursor_close(cur);
	free(ks);
	if (frc != 0)
		return frc;
	if (rc != MDB_NOTFOUND)
		return store__fail("reindex cursor", rc);
	return 0;
}

/* ---- feeds ------------------------------------------------------------ */

static bool
has_tag(const struct store_conv *c, const char *tag)
{
	for (size_t i = 0; i < c->ntags; i++)
		if (strcmp(c->tags[i], tag) == 0)
			return true;
	return false;
}

static bool
matches(const struct store_conv *c, const struct store_feed_q *q)
{
	if (q->visible != NULL && !q->visible(q->visible_arg, c))
		return false;
	if (q->assignee != NULL) {
		const char *a = c->assignee ? c->assignee : "";

		if (strcmp(a, q->assignee) != 0)
			return false;
	}
	if (q->tag != NULL && !has_tag(c, q->tag))
		return false;
	if (q->channel != NULL && (c->channel == NULL ||
	    strcmp(c->channel, q->channel) != 0))
		return false;
	if (q->priority >= 0 && c->priority != q->priority)
		return false;
	if (q->contact_id != 0 && c->contact_id != q->contact_id)
		return false;
	if (q->text != NULL && q->text[0] != '\0' &&
	    (c->subject == NULL || strcasestr(c->subject, q->text) == NULL) &&
	    (c->preview == NULL || strcasestr(c->preview, q->text) == NULL))
		return false;
	return true;
}

int
store_feed(struct store_txn *t, const struct store_feed_q *q,
    int (*cb)(void *arg, const struct store_conv *conv), void *arg,
    bool *more, int64_t *next_key, uint64_t *next_id)
{
	unsigned char start[IDX_KEY_MAX];
	char num[24];
	const char *value = "";
	int facet = F_ALL;
	bool asc = q->state == STORE_STATE_SNOOZED;
	size_t plen, given = 0, scanned = 0;
	size_t scan_max = q->scan_max ? q->scan_max : 10000;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	*more = false;
	*next_key = q->after_key;
	*next_id = q->after_id;
	if (q->contact_id != 0) {
		snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)q->contact_id);
		facet = F_CONTACT;
		value = num;
	} else if (q->tag != NULL) {
		facet = F_TAG;
		value = q->tag;
	} else if (q->assignee != NULL) {
		facet = F_ASSIGNEE;
		value = q->assignee;
	} else if (q->channel != NULL) {
		facet = F_CHANNEL;
		value = q->channel;
	} else if (q->priority >= 0) {
		facet = F_PRIORITY;
		value = inbox_priority_name(q->priority);
	}
	if ((plen = idx_prefix(start, facet, value, q->state)) == 0)
		return 0; /* a value no index key can hold matches nothing */
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONV_IDX], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	if (q->after_id != 0) {
		store__be64(start + plen, (uint64_t)q->after_key);
		store__be64(start + plen + 8, q->after_id);
	} else {
		memset(start + plen, asc ? 0x00 : 0xff, 16);
	}
	k.mv_size = plen + 16;
	k.mv_data = start;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (asc) {
		/* Strictly after the cursor. */
		if (rc == 0 && q->after_id != 0 && k.mv_size == plen + 16 &&
		    memcmp(k.mv_data, start, plen + 16) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else if (rc == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	} else if (rc == MDB_NOTFOUND) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, asc ? MDB_NEXT :
	    MDB_PREV)) {
		const unsigned char *kp = k.mv_data;
		struct store_conv c;

		if (k.mv_size != plen + 16 || memcmp(kp, start, plen) != 0)
			break;
		if (given == q->limit || scanned == scan_max) {
			*more = true;
			break;
		}
		scanned++;
		if ((crc = store_conv_get(t, store__get_be64(kp + plen + 8),
		    &c)) != 0)
			break;
		*next_key = (int64_t)store__get_be64(kp + plen);
		*next_id = c.id;
		if (!matches(&c, q))
			continue;
		given++;
		if (cb(arg, &c) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc != 0)
		return crc;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("feed cursor", rc);
	return 0;
}

/* ---- timers ------------------------------------------------------------ */

int
store_due_snoozes(struct store_txn *t, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t conv_id), void *arg)
{
	return store__due_walk(t, STORE_DUE_SNOOZE, now, limit, cb, arg);
}

int
store_due_sla(struct store_txn *t, int64_t now, size_t limit,
    int (*cb)(void *arg, uint64_t conv_id), void *arg)
{
	return store__due_walk(t, STORE_DUE_SLA, now, limit, cb, arg);
}

int
store_queue(struct store_txn *t, size_t limit,
    int (*cb)(void *arg, uint64_t conv_id), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n = 0;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_QUEUE], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < limit;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 17)
			continue;
		n++;
		if ((crc = cb(arg, store__get_be64(
		    (const unsigned char *)k.mv_data + 9))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc != 0)
		return crc;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("queue cursor", rc);
	return 0;
}

/* ---- a contact's conversations ------------------------------------------ */

struct idlist {
	uint64_t *ids;
	size_t n, cap;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
store_contact_convs(struct store_txn *t, uint64_t contact_id,
    int (*cb)(void *arg, uint64_t conv_id), void *arg)
{
	struct idlist l = { 0 };
	char num[24];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = 0, crc = 0;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)contact_id);
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONV_IDX], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (int state = 0; state < STORE_STATE__COUNT; state++) {
		unsigned char start[IDX_KEY_MAX];
		size_t plen = idx_prefix(start, F_CONTACT, num, state);

		k.mv_size = plen;
		k.mv_data = start;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
		    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (k.mv_size != plen + 16 ||
			    memcmp(k.mv_data, start, plen) != 0)
				break;
			if (l.n == l.cap) {
				l.cap = l.cap ? l.cap * 2 : 16;
				l.ids = xrealloc(l.ids, l.cap * sizeof(*l.ids));
			}
			l.ids[l.n++] = store__get_be64(
			    (const unsigned char *)k.mv_data + plen + 8);
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		rc = 0;
	}
	mdb_cursor_close(cur);
	if (rc != 0) {
		free(l.ids);
		return store__fail("contact conversations", rc);
	}
	if (l.n > 1)
		qsort(l.ids, l.n, sizeof(*l.ids), cmp_u64);
	for (size_t i = 0; i < l.n && crc == 0; i++)
		crc = cb(arg, l.ids[i]);
	free(l.ids);
	return crc;
}
