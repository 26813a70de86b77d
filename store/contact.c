/* Contacts ("the client base"), found by channel id, e-mail or phone. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"

#define REC_V1 1
#define REC_V2 2
#define MERGE_DEPTH 16

char *
store_email_key(const char *email)
{
	char *k;

	if (email == NULL || strchr(email, '@') == NULL)
		return NULL;
	while (isspace((unsigned char)*email))
		email++;
	k = xstrdup(email);
	for (char *p = k; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t n = strlen(k); n > 0 && isspace((unsigned char)k[n - 1]);
	    n--)
		k[n - 1] = '\0';
	if (k[0] == '\0' || strlen(k) > 320) {
		free(k);
		return NULL;
	}
	return k;
}

char *
store_phone_key(const char *phone)
{
	char *k, *o;
	size_t digits = 0;

	if (phone == NULL)
		return NULL;
	k = o = xmalloc(strlen(phone) + 1);
	for (const char *p = phone; *p; p++) {
		if (isdigit((unsigned char)*p)) {
			*o++ = *p;
			digits++;
		}
	}
	*o = '\0';
	if (digits < 5 || digits > 20) {
		free(k);
		return NULL;
	}
	return k;
}

static int
contact_decode(const MDB_val *v, uint64_t id, struct store_contact *c)
{
	unsigned ver = store__r_version(v->mv_data, v->mv_size);
	struct rec_r r;

	memset(c, 0, sizeof(*c));
	store__r_init(&r, v->mv_data, v->mv_size, ver == REC_V1 ? REC_V1 :
	    REC_V2);
	c->id = id;
	c->connector = store__r_str(&r, NULL);
	c->channel = store__r_str(&r, NULL);
	c->external_id = store__r_str(&r, NULL);
	c->name = store__r_str(&r, NULL);
	c->email = store__r_str(&r, NULL);
	c->phone = store__r_str(&r, NULL);
	c->username = store__r_str(&r, NULL);
	c->created = (int64_t)store__r_u64(&r);
	if (ver != REC_V1) {
		c->fields = store__r_str(&r, NULL);
		c->merged_into = store__r_u64(&r);
		c->updated = (int64_t)store__r_u64(&r);
	}
	if (!store__r_ok(&r)) {
		log_warnx("store: contact %llu: corrupt record",
		    (unsigned long long)id);
		return INBOX_EINVAL;
	}
	return 0;
}

int
store_contact_get(struct store_txn *t, uint64_t id, struct store_contact *c)
{
	MDB_val v;
	int rc;

	if ((rc = store__get_by_id(t, T_CONTACT, id, &v)) != 0)
		return rc;
	return contact_decode(&v, id, c);
}

/* Follows merges from *id to the surviving contact. */
static int
resolve(struct store_txn *t, uint64_t *id)
{
	for (int i = 0; i < MERGE_DEPTH; i++) {
		struct store_contact c;
		int rc;

		if ((rc = store_contact_get(t, *id, &c)) != 0)
			return rc;
		if (c.merged_into == 0)
			return 0;
		*id = c.merged_into;
	}
	log_warnx("store: contact %llu: merge chain too long",
	    (unsigned long long)*id);
	return INBOX_EINVAL;
}

int
store_contact_find_ext(struct store_txn *t, const char *connector,
    const char *external_id, uint64_t *id)
{
	char k[STORE_PAIR_MAX];
	size_t n = store__pair_key(k, sizeof(k), connector, external_id);
	int rc;

	if (n == 0)
		return INBOX_ENOTFOUND;
	if ((rc = store__get_id(t, T_CONTACT_EXT, k, n, id)) != 0)
		return rc;
	return resolve(t, id);
}

static int
find_keyed(struct store_txn *t, int table, char *key, uint64_t *id)
{
	int rc;

	if (key == NULL)
		return INBOX_ENOTFOUND;
	rc = store__get_id(t, table, key, strlen(key), id);
	free(key);
	if (rc != 0)
		return rc;
	return resolve(t, id);
}

int
store_contact_find_email(struct store_txn *t, const char *email, uint64_t *id)
{
	return find_keyed(t, T_CONTACT_EMAIL, store_email_key(email), id);
}

int
store_contact_find_phone(struct store_txn *t, const char *phone, uint64_t *id)
{
	return find_keyed(t, T_CONTACT_PHONE, store_phone_key(phone), id);
}

int
store_contact_link_ext(struct store_txn *t, const char *connector,
    const char *external_id, uint64_t id)
{
	char k[STORE_PAIR_MAX];
	size_t n = store__pair_key(k, sizeof(k), connector, external_id);

	if (n == 0)
		return INBOX_ETOOBIG;
	return store__put_id(t, T_CONTACT_EXT, k, n, id);
}

/* Points the e-mail or phone index at id (a merged contact's keys move to
 * the survivor; a key another live contact holds is left to it). */
static int
index_key(struct store_txn *t, int table, char *key, uint64_t id)
{
	uint64_t cur;
	int rc;

	if (key == NULL)
		return 0;
	rc = store__get_id(t, table, key, strlen(key), &cur);
	if (rc == INBOX_ENOTFOUND || (rc == 0 && cur != id &&
	    resolve(t, &cur) == 0 && cur == id))
		rc = store__put_id(t, table, key, strlen(key), id);
	free(key);
	return rc;
}

int
store_contact_put(struct store_txn *t, struct store_contact *c)
{
	unsigned char k[8];
	char *ekey, *pkey;
	struct rec_w w;
	uint64_t id = c->id;
	int rc;

	if (id == 0) {
		if ((rc = store__next_id(t, T_CONTACT, &id)) != 0)
			return rc;
		if (c->external_id != NULL && c->connector != NULL &&
		    (rc = store_contact_link_ext(t, c->connector,
		    c->external_id, id)) != 0)
			return rc;
	}
	/* Everything from c before the first write. */
	ekey = c->merged_into ? NULL : store_email_key(c->email);
	pkey = c->merged_into ? NULL : store_phone_key(c->phone);
	store__w_init(&w, REC_V2);
	store__w_str(&w, c->connector);
	store__w_str(&w, c->channel);
	store__w_str(&w, c->external_id);
	store__w_str(&w, c->name);
	store__w_str(&w, c->email);
	store__w_str(&w, c->phone);
	store__w_str(&w, c->username);
	store__w_u64(&w, (uint64_t)c->created);
	store__w_str(&w, c->fields);
	store__w_u64(&w, c->merged_into);
	store__w_u64(&w, (uint64_t)c->updated);
	c->id = id;
	store__be64(k, id);
	rc = store__put(t, T_CONTACT, k, 8, w.buf, w.len, 0);
	store__w_finish(&w);
	if (rc == 0)
		rc = index_key(t, T_CONTACT_EMAIL, ekey, id);
	else
		free(ekey);
	if (rc == 0)
		rc = index_key(t, T_CONTACT_PHONE, pkey, id);
	else
		free(pkey);
	return rc;
}

/* Indexes every live contact by e-mail and phone (the migration from
 * schema 1, whose contacts had no such index). Writes no contact record, so
 * the cursor walks the table undisturbed. */
int
store__contact_reindex_all(struct store_txn *t)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, frc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONTACT], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_contact c;
		char *ekey, *pkey;

		if (k.mv_size != 8) {
			frc = INBOX_EINVAL;
			break;
		}
		if ((frc = contact_decode(&v, store__get_be64(k.mv_data),
		    &c)) != 0)
			break;
		if (c.merged_into != 0)
			continue;
		ekey = store_email_key(c.email);
		pkey = store_phone_key(c.phone);
		frc = index_key(t, T_CONTACT_EMAIL, ekey, c.id);
		if (frc == 0)
			frc = index_key(t, T_CONTACT_PHONE, pkey, c.id);
		else
			free(pkey);
		if (frc != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (frc != 0)
		return frc;
	if (rc != MDB_NOTFOUND)
		return store__fail("contact reindex cursor", rc);
	return 0;
}

int
store_contacts(struct store_txn *t,
    int (*cb)(void *arg, const struct store_contact *c), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, crc = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[T_CONTACT], &cur)) != 0)
		return store__fail("mdb_cursor_open", rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_contact c;

		if (k.mv_size != 8 || (crc = contact_decode(&v,
		    store__get_be64(k.mv_data), &c)) != 0)
			break;
		if (c.merged_into != 0)
			continue;
		if ((crc = cb(arg, &c)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (crc < 0)
		return crc;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__fail("contacts cursor", rc);
	return 0;
}
