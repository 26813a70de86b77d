/*
 * inboxctl contacts export and import.
 *
 * Export reads the store (read-only): every contact not merged away, as CSV
 * (id, name, email, phone, username, channel, created, then one column
 * "field:KEY" per custom field key any contact has, sorted) or as one JSON
 * array. Import reads a CSV file and sends one contact.upsert per valid row
 * to the router, which matches by e-mail, then phone; the export's own
 * columns (id, channel, created, ...) are ignored, so an export imports
 * back unchanged.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "router/ctl_csv.h"
#include "router/ctl_int.h"

#define IMPORT_MAX (64 * 1024 * 1024)   /* bytes of an import file */
#define NAME_MAX_B 256                   /* the router's limits */
#define EMAIL_MAX_B 320
#define PHONE_MAX_B 64
#define FIELD_MAX_B 1000

/* ---- export --------------------------------------------------------------- */

struct keys {
	char **v;
	size_t n, cap;
};

static void
keys_add(struct keys *k, const char *s)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i], s) == 0)
			return;
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->v = xrealloc(k->v, k->cap * sizeof(*k->v));
	}
	k->v[k->n++] = xstrdup(s);
}

static void
keys_finish(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
collect_keys(void *arg, const struct store_contact *c)
{
	cJSON *f = c->fields != NULL ? cJSON_Parse(c->fields) : NULL;
	const cJSON *it;

	if (cJSON_IsObject(f)) {
		cJSON_ArrayForEach(it, f)
			keys_add(arg, it->string);
	}
	cJSON_Delete(f);
	return 0;
}

struct export {
	FILE *out;
	const struct keys *keys;
	bool json;
	size_t n;
};

static void
put_time(FILE *out, size_t col, int64_t ms)
{
	char buf[32] = "";
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ctl_csv_put(out, col, buf);
}

static int
export_one(void *arg, const struct store_contact *c)
{
	struct export *x = arg;
	char id[32];
	size_t col = 0;
	cJSON *f;

	if (x->json) {
		cJSON *o = store_contact_json(c);
		char *s = cJSON_PrintUnformatted(o);

		fprintf(x->out, "%s%s", x->n > 0 ? ",\n" : "\n", s);
		free(s);
		cJSON_Delete(o);
		x->n++;
		return ferror(x->out) ? INBOX_EIO : 0;
	}
	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);
	ctl_csv_put(x->out, col++, id);
	ctl_csv_put(x->out, col++, c->name);
	ctl_csv_put(x->out, col++, c->email);
	ctl_csv_put(x->out, col++, c->phone);
	ctl_csv_put(x->out, col++, c->username);
	ctl_csv_put(x->out, col++, c->channel);
	put_time(x->out, col++, c->created);
	f = c->fields != NULL ? cJSON_Parse(c->fields) : NULL;
	for (size_t i = 0; i < x->keys->n; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(f,
		    x->keys->v[i]);
		char *s = NULL;

		if (v != NULL && !cJSON_IsString(v) && !cJSON_IsNull(v))
			s = cJSON_PrintUnformatted(v);
		ctl_csv_put(x->out, col++, cJSON_IsString(v) ? v->valuestring :
		    s);
		free(s);
	}
	cJSON_Delete(f);
	ctl_csv_end(x->out);
	x->n++;
	return ferror(x->out) ? INBOX_EIO : 0;
}

static void
put_header(FILE *out, const struct keys *keys)
{
	static const char *const cols[] = { "id", "name", "email", "phone",
	    "username", "channel", "created" };
	size_t col = 0;

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		ctl_csv_put(out, col++, cols[i]);
	for (size_t i = 0; i < keys->n; i++) {
		size_t n = strlen(keys->v[i]) + sizeof("field:");
		char *h = xmalloc(n);

		snprintf(h, n, "field:%s", keys->v[i]);
		ctl_csv_put(out, col++, h);
		free(h);
	}
	ctl_csv_end(out);
}

/* Opens -o FILE for writing, 0600 (contacts are personal data). */
static FILE *
open_out(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f;

	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "inboxctl: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	return f;
}

static int
contacts_export(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--csv", NULL, false, NULL },
		{ "--json", NULL, false, NULL },
		{ "--out", "-o", true, NULL },
	};
	struct keys keys = { 0 };
	struct export x = { 0 };
	struct store *st = NULL;
	struct store_txn *txn = NULL;
	const char *ops[1];
	size_t nops;
	bool werr;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 3, ops, 0, 0, &nops, "")) != 0)
		return rc;
	if (opts[0].val != NULL && opts[1].val != NULL) {
		fprintf(stderr, "inboxctl: contacts export: --csv or --json, "
		    "not both\n");
		return ctl__usage();
	}
	x.json = opts[1].val != NULL;
	x.keys = &keys;
	rc = ctl__store_open(ctl, &st);
	if (rc != 0 && rc != INBOX_ENOTFOUND)
		return 1;
	if (rc == 0 && (rc = store_txn_begin(st, false, &txn)) != 0) {
		fprintf(stderr, "inboxctl: store: %s\n", inbox_strerror(rc));
		goto out;
	}
	/* One read transaction: the keys and the rows see the same store. */
	if (txn != NULL && !x.json &&
	    (rc = store_contacts(txn, collect_keys, &keys)) != 0) {
		fprintf(stderr, "inboxctl: store: %s\n", inbox_strerror(rc));
		goto out;
	}
	if (keys.n > 1)
		qsort(keys.v, keys.n, sizeof(*keys.v), cmp_str);
	x.out = opts[2].val != NULL ? open_out(opts[2].val) : stdout;
	if (x.out == NULL) {
		rc = INBOX_EIO;
		goto out;
	}
	if (x.json)
		fputc('[', x.out);
	else
		put_header(x.out, &keys);
	rc = txn != NULL ? store_contacts(txn, export_one, &x) : 0;
	if (x.json)
		fputs(x.n > 0 ? "\n]\n" : "]\n", x.out);
	werr = ferror(x.out) != 0;
	if ((x.out == stdout ? fflush(x.out) : fclose(x.out)) != 0)
		werr = true;
	if (werr) {
		fprintf(stderr, "inboxctl: writing %s: %s\n", opts[2].val ?
		    opts[2].val : "stdout", strerror(errno));
		rc = INBOX_EIO;
	} else if (rc != 0) {
		fprintf(stderr, "inboxctl: store: %s\n", inbox_strerror(rc));
	}
	if (rc == 0 && opts[2].val != NULL)
		fprintf(stderr, "inboxctl: %zu contacts written to %s\n", x.n,
		    opts[2].val);
out:
	store_txn_abort(txn);
	store_close(st);
	keys_finish(&keys);
	return rc == 0 ? 0 : 1;
}

/* ---- import --------------------------------------------------------------- */

enum col_kind { COL_NAME, COL_EMAIL, COL_PHONE, COL_USERNAME, COL_FIELD,
	COL_IGNORED };

struct column {
	enum col_kind kind;
	char *key;               /* COL_FIELD: the custom field */
	bool known;              /* COL_FIELD: in contacts.fields */
};

enum row_status { ROW_VALID, ROW_CREATED, ROW_UPDATED, ROW_UNCHANGED,
	ROW_REJECTED, ROW_UNANSWERED, ROW__COUNT };

static const char *const status_names[ROW__COUNT] = { "valid", "created",
	"updated", "unchanged", "rejected", "unanswered" };

struct row {
	size_t row, line;
	enum row_status status;
	char *reason;            /* rejected or unanswered: why */
	char *code;              /* refused by the router: its error code */
	cJSON *cmd;              /* valid: the contact.upsert */
	size_t call;             /* its index in the calls */
};

struct import {
	struct ctl *ctl;
	struct column *cols;
	size_t ncols;
	struct row *rows;
	size_t nrows, cap;
	size_t count[ROW__COUNT];
};

/* The header names of the standard columns, as in contact.upsert. */
static const char *const std_cols[] = { [COL_NAME] = "name",
    [COL_EMAIL] = "email", [COL_PHONE] = "phone",
    [COL_USERNAME] = "username" };

static const char *const ignored_cols[] = { "id", "channel", "created",
	"updated", "connector", "external_id" };

/* The custom field a column names: `key` as written when it is one of
 * contacts.fields, else in lower case (header "Company" is field
 * "company"). *known tells whether it is configured. */
static char *
canon_field(const struct inbox_config *cfg, const char *key, bool *known)
{
	char *k = xstrdup(key);

	if ((*known = inbox_config_contact_field(cfg, k)))
		return k;
	for (char *p = k; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	*known = inbox_config_contact_field(cfg, k);
	return k;
}

static char *
trimmed(const char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return xstrndup(s, n);
}

/* Reads the header row into im->cols. Returns 0, or -1 after printing. */
static int
read_header(struct import *im, struct ctl_csv *csv, const char *path)
{
	struct inbox_err err;
	bool match = false;
	int rc = ctl_csv_next(csv, &err);

	if (rc == 0) {
		fprintf(stderr, "inboxctl: %s: empty: a header row is "
		    "required (name, email, phone, ...)\n", path);
		return -1;
	}
	if (rc < 0) {
		fprintf(stderr, "inboxctl: %s: line %d: the header row: %s\n",
		    path, err.line, err.msg);
		return -1;
	}
	im->ncols = csv->ncells;
	im->cols = xcalloc(im->ncols, sizeof(*im->cols));
	for (size_t i = 0; i < im->ncols; i++) {
		struct column *c = &im->cols[i];
		char *h = trimmed(csv->cells[i]);

		c->kind = COL_FIELD;
		for (size_t k = 0; k < sizeof(std_cols) / sizeof(std_cols[0]);
		    k++)
			if (strcasecmp(h, std_cols[k]) == 0)
				c->kind = (enum col_kind)k;
		for (size_t k = 0; k < sizeof(ignored_cols) /
		    sizeof(ignored_cols[0]); k++)
			if (strcasecmp(h, ignored_cols[k]) == 0)
				c->kind = COL_IGNORED;
		if (c->kind == COL_FIELD) {
			const char *key = strncasecmp(h, "field:", 6) == 0 ?
			    h + 6 : h;

			c->key = canon_field(&im->ctl->cfg, key, &c->known);
		}
		match = match || c->kind == COL_EMAIL || c->kind == COL_PHONE;
		for (size_t j = 0; j < i; j++) {
			const struct column *o = &im->cols[j];

			if (o->kind != c->kind || c->kind == COL_IGNORED ||
			    (c->kind == COL_FIELD && (c->key[0] == '\0' ||
			    strcmp(o->key, c->key) != 0)))
				continue;
			fprintf(stderr, "inboxctl: %s: the header names '%s' "
			    "twice (columns %zu and %zu)\n", path, h, j + 1,
			    i + 1);
			free(h);
			return -1;
		}
		free(h);
	}
	if (!match) {
		fprintf(stderr, "inboxctl: %s: the header has neither an "
		    "email nor a phone column (a contact is matched by one of "
		    "them)\n", path);
		return -1;
	}
	return 0;
}

static struct row *
row_add(struct import *im, const struct ctl_csv *csv)
{
	struct row *r;

	if (im->nrows == im->cap) {
		im->cap = im->cap ? 2 * im->cap : 64;
		im->rows = xrealloc(im->rows, im->cap * sizeof(*im->rows));
	}
	r = &im->rows[im->nrows++];
	memset(r, 0, sizeof(*r));
	r->row = csv->row;
	r->line = csv->rec_line;
	return r;
}

static void __attribute__((format(printf, 2, 3)))
row_reject(struct row *r, const char *fmt, ...)
{
	char buf[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(r->reason);
	r->reason = xstrdup(buf);
	r->status = ROW_REJECTED;
	cJSON_Delete(r->cmd);
	r->cmd = NULL;
}

static bool
email_ok(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* Checks one cell of a row and adds it to the command. Returns false after
 * rejecting the row. */
static bool
take_cell(struct row *r, size_t col, const struct column *c, const char *v,
    cJSON *fields)
{
	static const size_t max[] = { [COL_NAME] = NAME_MAX_B,
	    [COL_EMAIL] = EMAIL_MAX_B, [COL_PHONE] = PHONE_MAX_B,
	    [COL_USERNAME] = NAME_MAX_B };
	size_t n = strlen(v);
	char *k;

	if (n == 0 || c->kind == COL_IGNORED)
		return true;
	if (c->kind == COL_FIELD) {
		if (c->key[0] == '\0') {
			row_reject(r, "cell %zu: its column has no name in the "
			    "header", col + 1);
			return false;
		}
		if (!c->known) {
			row_reject(r, "column '%.64s': not a contact field of "
			    "this installation (contacts.fields)", c->key);
			return false;
		}
		if (n > FIELD_MAX_B) {
			row_reject(r, "field:%.64s: too long (%zu bytes, at "
			    "most %d)", c->key, n, FIELD_MAX_B);
			return false;
		}
		cJSON_AddStringToObject(fields, c->key, v);
		return true;
	}
	if (n > max[c->kind]) {
		row_reject(r, "%s: too long (%zu bytes, at most %zu)",
		    std_cols[c->kind], n, max[c->kind]);
		return false;
	}
	if (c->kind == COL_EMAIL && !email_ok(v)) {
		row_reject(r, "email: '%.80s' is not an e-mail address", v);
		return false;
	}
	if (c->kind == COL_PHONE) {
		if ((k = store_phone_key(v)) == NULL) {
			row_reject(r, "phone: '%.80s' has fewer than 5 or more "
			    "than 20 digits", v);
			return false;
		}
		free(k);
	}
	cJSON_AddStringToObject(r->cmd, std_cols[c->kind], v);
	return true;
}

/* Turns one record into a contact.upsert, or rejects it. */
static void
take_row(struct import *im, struct row *r, const struct ctl_csv *csv)
{
	cJSON *fields = cJSON_CreateObject();

	r->cmd = cJSON_CreateObject();
	cJSON_AddNumberToObject(r->cmd, "v", 1);
	cJSON_AddStringToObject(r->cmd, "type", "contact.upsert");
	if (csv->ncells != im->ncols) {
		row_reject(r, "%zu cells where the header has %zu",
		    csv->ncells, im->ncols);
		goto out;
	}
	for (size_t i = 0; i < im->ncols; i++)
		if (!take_cell(r, i, &im->cols[i], csv->cells[i], fields))
			goto out;
	if (!cJSON_HasObjectItem(r->cmd, "email") &&
	    !cJSON_HasObjectItem(r->cmd, "phone")) {
		row_reject(r, "no email and no phone (a contact is matched by "
		    "one of them)");
		goto out;
	}
	if (fields->child != NULL) {
		cJSON_AddItemToObject(r->cmd, "fields", fields);
		fields = NULL;
	}
	r->status = ROW_VALID;
out:
	cJSON_Delete(fields);
}

/* Sends the valid rows and sets each one's outcome from its answer. */
static int
send_rows(struct import *im)
{
	struct ctl_call *calls = xcalloc(im->nrows + 1, sizeof(*calls));
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < im->nrows; i++) {
		if (im->rows[i].status != ROW_VALID)
			continue;
		im->rows[i].call = n;
		calls[n++].cmd = im->rows[i].cmd;
	}
	rc = n > 0 ? ctl__call(im->ctl, calls, n, CTL_ANSWER_TIMEOUT_S) : 0;
	for (size_t i = 0; i < im->nrows; i++) {
		struct row *r = &im->rows[i];
		const struct ctl_call *c = &calls[r->call];
		const cJSON *changed;
		const char *msg, *code;

		if (r->status != ROW_VALID)
			continue;
		if (c->event == NULL) {
			r->status = ROW_UNANSWERED;
			r->reason = xstrdup(c->err);
		} else if ((msg = ctl__call_failure(c, &code)) != NULL) {
			r->code = xstrdup(code);
			row_reject(r, "%s", msg);
		} else if (strcmp(c->event, "contact.updated") != 0) {
			row_reject(r, "unexpected answer '%.64s'", c->event);
		} else {
			changed = cJSON_GetObjectItemCaseSensitive(c->data,
			    "changed");
			r->status = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
			    c->data, "created")) ? ROW_CREATED :
			    cJSON_GetArraySize(changed) > 0 ? ROW_UPDATED :
			    ROW_UNCHANGED;
			/* Keep the answer with the row for the report. */
			cJSON_Delete(r->cmd);
			r->cmd = cJSON_Duplicate(c->data, true);
		}
	}
	ctl__call_finish(calls, n);
	free(calls);
	return rc;
}

static void
report_text(const struct import *im, bool dry)
{
	for (size_t i = 0; i < im->nrows; i++) {
		const struct row *r = &im->rows[i];
		const cJSON *ct = cJSON_GetObjectItemCaseSensitive(r->cmd,
		    "contact");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(ct, "id");
		const cJSON *changed = cJSON_GetObjectItemCaseSensitive(r->cmd,
		    "changed"), *it;

		printf("row %zu", r->row);
		if (r->line != r->row)
			printf(" (line %zu)", r->line);
		printf(": %s", status_names[r->status]);
		if (cJSON_IsNumber(id))
			printf(" contact %.0f", id->valuedouble);
		if (r->status == ROW_UPDATED) {
			const char *sep = ": ";

			cJSON_ArrayForEach(it, changed) {
				if (cJSON_IsString(it))
					printf("%s%s", sep, it->valuestring);
				sep = ", ";
			}
		}
		if (r->reason != NULL)
			printf(": %s%s%s", r->code ? r->code : "",
			    r->code ? ": " : "", r->reason);
		printf("\n");
	}
	if (dry) {
		printf("dry run: %zu valid, %zu rejected (nothing sent)\n",
		    im->count[ROW_VALID], im->count[ROW_REJECTED]);
		return;
	}
	printf("%zu created, %zu updated, %zu unchanged, %zu rejected",
	    im->count[ROW_CREATED], im->count[ROW_UPDATED],
	    im->count[ROW_UNCHANGED], im->count[ROW_REJECTED]);
	if (im->count[ROW_UNANSWERED] > 0)
		printf(", %zu unanswered", im->count[ROW_UNANSWERED]);
	printf("\n");
}

static void
report_json(const struct import *im, bool dry)
{
	cJSON *o = cJSON_CreateObject(), *rows;
	char *s;

	cJSON_AddBoolToObject(o, "dry_run", dry);
	rows = cJSON_AddArrayToObject(o, "rows");
	for (size_t i = 0; i < im->nrows; i++) {
		const struct row *r = &im->rows[i];
		cJSON *j = cJSON_CreateObject();
		const cJSON *ct = cJSON_GetObjectItemCaseSensitive(r->cmd,
		    "contact");

		cJSON_AddNumberToObject(j, "row", (double)r->row);
		cJSON_AddNumberToObject(j, "line", (double)r->line);
		cJSON_AddStringToObject(j, "status", status_names[r->status]);
		if (r->reason != NULL)
			cJSON_AddStringToObject(j, "reason", r->reason);
		if (r->code != NULL)
			cJSON_AddStringToObject(j, "code", r->code);
		if (ct != NULL) {
			cJSON_AddItemToObject(j, "contact",
			    cJSON_Duplicate(ct, true));
			cJSON_AddItemToObject(j, "changed", cJSON_Duplicate(
			    cJSON_GetObjectItemCaseSensitive(r->cmd,
			    "changed"), true));
		}
		cJSON_AddItemToArray(rows, j);
	}
	for (int st = 0; st < ROW__COUNT; st++)
		if (dry ? st == ROW_VALID || st == ROW_REJECTED : st != ROW_VALID)
			cJSON_AddNumberToObject(o, status_names[st],
			    (double)im->count[st]);
	s = cJSON_PrintUnformatted(o);
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
}

static void
import_finish(struct import *im)
{
	for (size_t i = 0; i < im->ncols; i++)
		free(im->cols[i].key);
	free(im->cols);
	for (size_t i = 0; i < im->nrows; i++) {
		free(im->rows[i].reason);
		free(im->rows[i].code);
		cJSON_Delete(im->rows[i].cmd);
	}
	free(im->rows);
}

static int
contacts_import(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--dry-run", NULL, false, NULL },
		{ "--json", NULL, false, NULL },
	};
	struct import im = { .ctl = ctl };
	struct ctl_csv csv;
	struct inbox_err err;
	const char *ops[1], *path;
	char *buf;
	size_t len, nops;
	bool dry;
	int rc;

	if ((rc = ctl__args(argc, argv, opts, 2, ops, 1, 1, &nops, "contacts "
	    "import: which file? (- for stdin)")) != 0)
		return rc;
	dry = opts[0].val != NULL;
	path = ops[0];
	buf = rt_read_file(strcmp(path, "-") == 0 ? "/dev/stdin" : path,
	    IMPORT_MAX, &len);
	if (buf == NULL) {
		if (errno == EFBIG)
			fprintf(stderr, "inboxctl: %s: larger than %d MiB: "
			    "split it\n", path, IMPORT_MAX >> 20);
		else
			fprintf(stderr, "inboxctl: %s: %s\n", path,
			    strerror(errno));
		return 1;
	}
	ctl_csv_init(&csv, buf, len);
	if (read_header(&im, &csv, path) != 0) {
		rc = 1;
		goto out;
	}
	while ((rc = ctl_csv_next(&csv, &err)) != 0) {
		struct row *r = row_add(&im, &csv);

		if (rc < 0)
			row_reject(r, "%s", err.msg);
		else
			take_row(&im, r, &csv);
	}
	rc = dry ? 0 : send_rows(&im);
	for (size_t i = 0; i < im.nrows; i++)
		im.count[im.rows[i].status]++;
	if (opts[1].val != NULL)
		report_json(&im, dry);
	else
		report_text(&im, dry);
	if (im.count[ROW_REJECTED] > 0 || im.count[ROW_UNANSWERED] > 0)
		rc = 1;
out:
	ctl_csv_finish(&csv);
	import_finish(&im);
	free(buf);
	return rc;
}

int
ctl__contacts(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "export") == 0)
		return contacts_export(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "import") == 0)
		return contacts_import(ctl, argc - 1, argv + 1);
	fprintf(stderr, "inboxctl: contacts: export or import?\n");
	return ctl__usage();
}
