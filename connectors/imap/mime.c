/*
 * mail_parse: one raw message to a struct mail_msg. Headers are split and
 * unfolded here and their values read with mailimf; the MIME structure is
 * read by mailmime_parse and bodies decoded by mailmime_part_parse.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "connectors/imap/mime.h"
#include "connectors/imap/mime_int.h"

#define MAIL_PARTS_MAX 500
#define MAIL_DEPTH_MAX 32
#define MAIL_HEADERS_MAX 1000
#define MAIL_REFS_MAX 100
#define MAIL_ID_MAX 998
#define MAIL_NOTE_MAX 400
#define MAIL_HEADER_IN_MAX (64 * 1024)  /* of a header value we read */
/* multipart or message Content-Type lines: bounds libetpan's recursion
 * before it starts */
#define MAIL_CONTAINERS_MAX 256

struct hdr {
	const char *name, *val;
	size_t nlen, vlen;
};

/* The parse that attachment data points into (m->priv). */
struct mail_priv {
	char *mimebuf;              /* what mailmime_parse read */
	struct mailmime *root;
	char *decoded[MAIL_ATTACH_MAX];
	size_t ndecoded;
};

struct ctx {
	struct mail_msg *m;
	struct mail_priv *priv;
	struct mime_buf plain, html, note;
	size_t nparts;
	size_t dropped;             /* attachments over MAIL_ATTACH_MAX */
	bool toobig;
};

enum walk_mode { WALK_ALL, WALK_NO_PLAIN };

/* ---- header block ---- */

static bool
field_name_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != ':';
}

/* Splits the header block. Returns the offset of the body, or -1 when the
 * input does not start with a header block. */
static long
split_headers(const char *raw, size_t len, struct hdr *h, size_t *nh)
{
	size_t i = 0, n = 0;

	*nh = 0;
	if (len >= 5 && strncmp(raw, "From ", 5) == 0) {   /* mbox */
		const char *e = memchr(raw, '\n', len);

		i = e ? (size_t)(e - raw) + 1 : len;
	}
	while (i < len) {
		size_t ls = i, le, j;
		const char *e = memchr(raw + i, '\n', len - i);

		le = e ? (size_t)(e - raw) : len;
		i = e ? le + 1 : len;
		if (le == ls || (le == ls + 1 && raw[ls] == '\r')) {
			*nh = n;
			return n > 0 ? (long)i : -1;    /* the empty line */
		}
		if (raw[ls] == ' ' || raw[ls] == '\t') {
			if (n > 0 && n <= MAIL_HEADERS_MAX)
				h[n - 1].vlen = le - (size_t)(h[n - 1].val - raw);
			continue;
		}
		for (j = ls; j < le && field_name_char((unsigned char)raw[j]); j++)
			;
		if (j == ls || j - ls > 76) {
			if (n == 0)
				return -1;
			continue;               /* a stray line: skip it */
		}
		{
			size_t c = j;

			while (c < le && (raw[c] == ' ' || raw[c] == '\t'))
				c++;
			if (c >= le || raw[c] != ':') {
				if (n == 0)
					return -1;
				continue;
			}
			if (n >= MAIL_HEADERS_MAX)
				continue;
			h[n].name = raw + ls;
			h[n].nlen = j - ls;
			h[n].val = raw + c + 1;
			h[n].vlen = le - (c + 1);
			n++;
		}
	}
	*nh = n;
	return n > 0 ? (long)len : -1;
}

static const struct hdr *
hdr_get(const struct hdr *h, size_t nh, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < nh; i++)
		if (h[i].nlen == n && strncasecmp(h[i].name, name, n) == 0)
			return &h[i];
	return NULL;
}

/* The value (its first MAIL_HEADER_IN_MAX bytes) with CR/LF dropped and
 * blanks trimmed (malloc'd bytes). */
static char *
hdr_raw(const struct hdr *h)
{
	size_t vlen = h->vlen < MAIL_HEADER_IN_MAX ? h->vlen : MAIL_HEADER_IN_MAX;
	char *s = xmalloc(vlen + 1);
	size_t n = 0, a = 0;

	for (size_t i = 0; i < vlen; i++)
		if (h->val[i] != '\r' && h->val[i] != '\n')
			s[n++] = h->val[i] == '\t' ? ' ' : h->val[i];
	while (n > 0 && s[n - 1] == ' ')
		n--;
	s[n] = '\0';
	while (s[a] == ' ')
		a++;
	memmove(s, s + a, n - a + 1);
	return s;
}

static void
add_note(struct ctx *c, const char *note, const char *label)
{
	char one[200];

	if (note == NULL)
		return;
	if (label != NULL && *label != '\0')
		snprintf(one, sizeof(one), "%s (label '%.40s')", note, label);
	else
		snprintf(one, sizeof(one), "%s", note);
	if (c->note.p != NULL && strstr(c->note.p, one) != NULL)
		return;
	if (c->note.len + strlen(one) + 2 > MAIL_NOTE_MAX)
		return;
	if (c->note.len > 0)
		mime__buf_add(&c->note, "; ", 2);
	mime__buf_add(&c->note, one, strlen(one));
}

static char *
hdr_text(struct ctx *c, const struct hdr *h, const char *what)
{
	const char *note = NULL;
	char *raw, *res;

	if (h == NULL)
		return xstrdup("");
	raw = hdr_raw(h);
	res = mime__header_decode(raw, strlen(raw), MIME_HEADER_MAX, &note);
	if (note != NULL) {
		char lbl[64];

		snprintf(lbl, sizeof(lbl), "%s: %s", what, note);
		add_note(c, lbl, NULL);
	}
	free(raw);
	return res;
}

static bool
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* A message id without <>, printable ASCII, or NULL. */
static char *
id_clean(const char *s, size_t n)
{
	char *r;
	size_t k = 0;

	while (n > 0 && (*s == '<' || *s == ' '))
		s++, n--;
	while (n > 0 && (s[n - 1] == '>' || s[n - 1] == ' '))
		n--;
	if (n == 0)
		return NULL;
	if (n > MAIL_ID_MAX)
		n = MAIL_ID_MAX;
	r = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
			r[k++] = s[i];
	r[k] = '\0';
	if (k == 0) {
		free(r);
		return NULL;
	}
	return r;
}

/* Every <id> in s (or the bare value when it has no <>), at most max. */
static size_t
ids_scan(const char *s, char **out, size_t max)
{
	size_t n = 0;
	const char *p = s;

	while (n < max && (p = strchr(p, '<')) != NULL) {
		const char *e = strchr(p, '>');
		char *id;

		if (e == NULL)
			break;
		if ((id = id_clean(p + 1, (size_t)(e - p - 1))) != NULL)
			out[n++] = id;
		p = e + 1;
	}
	if (n == 0 && max > 0 && strchr(s, '<') == NULL) {
		size_t len = strcspn(s, " \t,;");
		char *id = id_clean(s, len);

		if (id != NULL && strchr(id, '@') != NULL)
			out[n++] = id;
		else
			free(id);
	}
	return n;
}

/* Reads message ids with mailimf, else by scanning for <...>. */
static size_t
ids_get(const struct hdr *h, char **out, size_t max)
{
	char *raw;
	size_t n = 0, idx = 0;
	clist *list = NULL;

	if (h == NULL)
		return 0;
	raw = hdr_raw(h);
	if (!has_8bit(raw) && mailimf_msg_id_list_parse(raw, strlen(raw), &idx,
	    &list) == MAILIMF_NO_ERROR) {
		for (clistiter *it = clist_begin(list); it && n < max;
		    it = clist_next(it)) {
			const char *id = clist_content(it);
			char *c = id ? id_clean(id, strlen(id)) : NULL;

			if (c != NULL)
				out[n++] = c;
		}
		for (clistiter *it = clist_begin(list); it; it = clist_next(it))
			free(clist_content(it));
		clist_free(list);
	}
	if (n == 0)
		n = ids_scan(raw, out, max);
	free(raw);
	return n;
}

static char *
addr_clean(const char *s, size_t n)
{
	char *a;

	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n > 320)
		return NULL;
	a = xstrndup(s, n);
	for (char *p = a; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' ||
		    c == ',') {
			free(a);
			return NULL;
		}
		*p = (char)tolower(c);
	}
	if (strchr(a, '@') == NULL || a[0] == '@' || a[n - 1] == '@' ||
	    inbox_utf8_invalid_at(a, n) >= 0) {
		free(a);
		return NULL;
	}
	return a;
}

/* "a \"b\"" to a "b" in place. */
static void
unquote(char *s)
{
	size_t n, k = 0;

	if (s == NULL || (n = strlen(s)) < 2 || s[0] != '"' || s[n - 1] != '"')
		return;
	for (size_t i = 1; i + 1 < n; i++) {
		if (s[i] == '\\' && i + 2 < n)
			i++;
		s[k++] = s[i];
	}
	s[k] = '\0';
}

/* From-like header: display name (raw, still encoded) and address. */
static void
mailbox_get(struct ctx *c, const struct hdr *h, char **name, char **addr)
{
	char *raw, *dn = NULL;
	struct mailimf_mailbox_list *mbl = NULL;
	size_t idx = 0;

	*addr = NULL;
	if (name != NULL)
		*name = NULL;
	if (h == NULL)
		goto out;
	raw = hdr_raw(h);
	if (!has_8bit(raw) && mailimf_mailbox_list_parse(raw, strlen(raw), &idx,
	    &mbl) == MAILIMF_NO_ERROR) {
		clistiter *it = clist_begin(mbl->mb_list);
		struct mailimf_mailbox *mb = it ? clist_content(it) : NULL;

		if (mb != NULL && mb->mb_addr_spec != NULL) {
			*addr = addr_clean(mb->mb_addr_spec, strlen(mb->mb_addr_spec));
			if (mb->mb_display_name != NULL)
				dn = xstrdup(mb->mb_display_name);
		}
		mailimf_mailbox_list_free(mbl);
	}
	if (*addr == NULL) {
		/* by hand: Name <addr>, "Name" <addr>, addr (Name), addr */
		char *lt = strrchr(raw, '<'), *gt = lt ? strchr(lt, '>') : NULL;

		free(dn);
		dn = NULL;
		if (lt != NULL && gt != NULL) {
			char *q = raw, *e = lt;

			*addr = addr_clean(lt + 1, (size_t)(gt - lt - 1));
			while (*q == ' ')
				q++;
			while (e > q && e[-1] == ' ')
				e--;
			dn = xstrndup(q, (size_t)(e - q));
		} else {
			*addr = addr_clean(raw, strcspn(raw, " ("));
		}
	}
	if ((dn == NULL || *dn == '\0') && *addr != NULL) {
		/* addr (Name) */
		char *po = strchr(raw, '('), *pc = po ? strrchr(po, ')') : NULL;

		if (po != NULL && pc != NULL) {
			free(dn);
			dn = xstrndup(po + 1, (size_t)(pc - po - 1));
		}
	}
	free(raw);
	unquote(dn);
out:
	if (name != NULL) {
		if (dn != NULL) {
			const char *note = NULL;

			*name = mime__header_decode(dn, strlen(dn), MIME_HEADER_MAX,
			    &note);
			if (note != NULL) {
				char lbl[64];

				snprintf(lbl, sizeof(lbl), "From: %s", note);
				add_note(c, lbl, NULL);
			}
		} else
			*name = xstrdup("");
	}
	free(dn);
}

static int64_t
days_from_civil(int64_t y, int64_t mo, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t
date_get(const struct hdr *h)
{
	char *raw;
	struct mailimf_date_time *dt = NULL;
	size_t idx = 0;
	int64_t ms = 0;

	if (h == NULL)
		return 0;
	raw = hdr_raw(h);
	if (mailimf_date_time_parse(raw, strlen(raw), &idx, &dt) ==
	    MAILIMF_NO_ERROR) {
		int y = dt->dt_year;

		if (y < 50)
			y += 2000;
		else if (y < 1000)
			y += 1900;
		if (y >= 1970 && y < 10000 && dt->dt_month >= 1 &&
		    dt->dt_month <= 12 && dt->dt_day >= 1 && dt->dt_day <= 31 &&
		    dt->dt_hour >= 0 && dt->dt_hour < 24 && dt->dt_min >= 0 &&
		    dt->dt_min < 60 && dt->dt_sec >= 0 && dt->dt_sec <= 60 &&
		    dt->dt_zone > -2400 && dt->dt_zone < 2400) {
			int64_t s = days_from_civil(y, dt->dt_month, dt->dt_day) *
			    86400 + dt->dt_hour * 3600 + dt->dt_min * 60 +
			    dt->dt_sec;
			int z = dt->dt_zone < 0 ? -dt->dt_zone : dt->dt_zone;
			int64_t off = (z / 100) * 3600 + (z % 100) * 60;

			s -= dt->dt_zone < 0 ? -off : off;
			ms = s > 0 ? s * 1000 : 0;
		}
		mailimf_date_time_free(dt);
	}
	free(raw);
	return ms;
}

/* ---- MIME structure ---- */

static void
ctype_str(const struct mailmime_content *ct, char *buf, size_t sz)
{
	const char *type = "application";
	const struct mailmime_type *t;

	if (ct == NULL || ct->ct_type == NULL) {
		snprintf(buf, sz, "text/plain");
		return;
	}
	t = ct->ct_type;
	if (t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		switch (t->tp_data.tp_discrete_type->dt_type) {
		case MAILMIME_DISCRETE_TYPE_TEXT: type = "text"; break;
		case MAILMIME_DISCRETE_TYPE_IMAGE: type = "image"; break;
		case MAILMIME_DISCRETE_TYPE_AUDIO: type = "audio"; break;
		case MAILMIME_DISCRETE_TYPE_VIDEO: type = "video"; break;
		case MAILMIME_DISCRETE_TYPE_APPLICATION: type = "application"; break;
		default:
			type = t->tp_data.tp_discrete_type->dt_extension ?
			    t->tp_data.tp_discrete_type->dt_extension : "application";
		}
	} else {
		switch (t->tp_data.tp_composite_type->ct_type) {
		case MAILMIME_COMPOSITE_TYPE_MESSAGE: type = "message"; break;
		case MAILMIME_COMPOSITE_TYPE_MULTIPART: type = "multipart"; break;
		default:
			type = t->tp_data.tp_composite_type->ct_token ?
			    t->tp_data.tp_composite_type->ct_token : "multipart";
		}
	}
	snprintf(buf, sz, "%s/%s", type,
	    ct->ct_subtype ? ct->ct_subtype : "octet-stream");
	for (char *p = buf; *p; p++) {
		*p = (char)tolower((unsigned char)*p);
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			*p = '_';
	}
}

struct part_info {
	char type[128];
	const char *charset;
	int encoding;
	bool attachment, inline_disp;
	char *name;                 /* decoded file name, or NULL */
	const char *content_id;
};

static void
part_info(const struct mailmime *mm, struct part_info *pi)
{
	struct mailmime_single_fields sf;
	const char *attr[64], *val[64];
	size_t n = 0;

	memset(pi, 0, sizeof(*pi));
	mailmime_single_fields_init(&sf, mm->mm_mime_fields, mm->mm_content_type);
	ctype_str(mm->mm_content_type, pi->type, sizeof(pi->type));
	pi->charset = sf.fld_content_charset;
	pi->encoding = sf.fld_encoding ? sf.fld_encoding->enc_type :
	    MAILMIME_MECHANISM_8BIT;
	pi->content_id = sf.fld_id;
	if (sf.fld_disposition != NULL && sf.fld_disposition->dsp_type != NULL) {
		int t = sf.fld_disposition->dsp_type->dsp_type;

		pi->attachment = t == MAILMIME_DISPOSITION_TYPE_ATTACHMENT;
		pi->inline_disp = t == MAILMIME_DISPOSITION_TYPE_INLINE;
		for (clistiter *it = clist_begin(sf.fld_disposition->dsp_parms);
		    it && n < 64; it = clist_next(it)) {
			struct mailmime_disposition_parm *p = clist_content(it);

			if (p->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME) {
				attr[n] = "filename";
				val[n++] = p->pa_data.pa_filename;
			} else if (p->pa_type == MAILMIME_DISPOSITION_PARM_PARAMETER) {
				attr[n] = p->pa_data.pa_parameter->pa_name;
				val[n++] = p->pa_data.pa_parameter->pa_value;
			}
		}
		pi->name = mime__param_2231("filename", attr, val, n);
	}
	if ((pi->name == NULL || *pi->name == '\0') && mm->mm_content_type) {
		free(pi->name);
		n = 0;
		for (clistiter *it = clist_begin(mm->mm_content_type->ct_parameters);
		    it && n < 64; it = clist_next(it)) {
			struct mailmime_parameter *p = clist_content(it);

			attr[n] = p->pa_name;
			val[n++] = p->pa_value;
		}
		pi->name = mime__param_2231("name", attr, val, n);
	}
	if (pi->name != NULL && *pi->name == '\0') {
		free(pi->name);
		pi->name = NULL;
	}
}

/* Decoded bytes of a part (libetpan's buffer, free with
 * mailmime_decoded_part_free), or NULL. */
static char *
part_decode(const struct mailmime_data *d, int encoding, size_t *len)
{
	size_t idx = 0;
	char *res = NULL;

	*len = 0;
	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT)
		return NULL;
	if (encoding == MAILMIME_MECHANISM_TOKEN)
		encoding = MAILMIME_MECHANISM_8BIT;
	if (!d->dt_encoded)
		encoding = MAILMIME_MECHANISM_8BIT;
	if (mailmime_part_parse(d->dt_data.dt_text.dt_data,
	    d->dt_data.dt_text.dt_length, &idx, encoding, &res, len) !=
	    MAILIMF_NO_ERROR)
		return NULL;
	return res;
}

/* Appends text as UTF-8 with LF line ends. */
static void
add_text(struct ctx *c, struct mime_buf *b, const char *charset,
    const char *s, size_t len)
{
	const char *note = NULL;
	char *u = mail_to_utf8(charset, s, len, &note);

	const char *p = u;
	size_t n;

	add_note(c, note, charset);
	while (*p == '\r' || *p == '\n')
		p++;
	n = strlen(p);
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n == 0) {
		free(u);
		return;
	}
	if (b->len > 0)
		mime__buf_add(b, "\n\n", 2);
	for (const char *e = p + n; p < e && !b->truncated; p++) {
		if (*p == '\r') {
			mime__buf_addc(b, '\n');
			if (p[1] == '\n')
				p++;
		} else
			mime__buf_addc(b, *p);
	}
	free(u);
}

static void
add_attachment(struct ctx *c, struct part_info *pi, const struct mailmime_data *d)
{
	struct mail_attachment *a;
	size_t len = 0;
	char *data;

	if (c->m->nattachments >= MAIL_ATTACH_MAX) {
		c->dropped++;
		return;
	}
	data = part_decode(d, pi->encoding, &len);
	a = &c->m->attachments[c->m->nattachments++];
	if (pi->name != NULL) {
		a->name = pi->name;
		pi->name = NULL;
	} else {
		char buf[32];

		snprintf(buf, sizeof(buf), "attachment-%zu", c->m->nattachments);
		a->name = xstrdup(buf);
	}
	a->mime = xstrdup(pi->type);
	a->size = data ? len : 0;
	a->data = (const unsigned char *)(data ? data : "");
	if (data != NULL)
		c->priv->decoded[c->priv->ndecoded++] = data;
	a->inline_part = pi->inline_disp;
	if (pi->content_id != NULL) {
		a->content_id = id_clean(pi->content_id, strlen(pi->content_id));
	}
}

static bool
is_body_text(const struct part_info *pi, const char *sub)
{
	return strncmp(pi->type, "text/", 5) == 0 &&
	    strcmp(pi->type + 5, sub) == 0 && !pi->attachment && pi->name == NULL;
}

/* Whether the subtree has a body part of text/<sub>. */
static bool
has_body(const struct mailmime *mm, const char *sub, int depth)
{
	if (mm == NULL || depth > MAIL_DEPTH_MAX)
		return false;
	if (mm->mm_type == MAILMIME_SINGLE) {
		struct part_info pi;
		bool r;

		part_info(mm, &pi);
		r = is_body_text(&pi, sub);
		free(pi.name);
		return r;
	}
	if (mm->mm_type == MAILMIME_MULTIPLE)
		for (clistiter *it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list);
		    it; it = clist_next(it))
			if (has_body(clist_content(it), sub, depth + 1))
				return true;
	return false;
}

static void walk(struct ctx *c, const struct mailmime *mm, int depth,
    enum walk_mode mode);

/* Counts the parts of an attached message against the limits. */
static void
count_parts(struct ctx *c, const struct mailmime *mm, int depth)
{
	if (mm == NULL || c->toobig)
		return;
	if (depth > MAIL_DEPTH_MAX || ++c->nparts > MAIL_PARTS_MAX) {
		c->toobig = true;
		return;
	}
	if (mm->mm_type == MAILMIME_MULTIPLE)
		for (clistiter *it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list);
		    it; it = clist_next(it))
			count_parts(c, clist_content(it), depth + 1);
	else if (mm->mm_type == MAILMIME_MESSAGE)
		count_parts(c, mm->mm_data.mm_message.mm_msg_mime, depth + 1);
}

static void
walk_multipart(struct ctx *c, const struct mailmime *mm, int depth,
    enum walk_mode mode)
{
	clist *l = mm->mm_data.mm_multipart.mm_mp_list;
	const struct mailmime *textbr = NULL;
	char type[128];

	ctype_str(mm->mm_content_type, type, sizeof(type));
	if (strcmp(type, "multipart/alternative") == 0 && mode == WALK_ALL) {
		/* the first branch with text/plain gives the text; the others
		 * give the HTML and the images it shows */
		for (clistiter *it = clist_begin(l); it && !textbr;
		    it = clist_next(it))
			if (has_body(clist_content(it), "plain", depth + 1))
				textbr = clist_content(it);
	}
	for (clistiter *it = clist_begin(l); it && !c->toobig; it = clist_next(it)) {
		const struct mailmime *child = clist_content(it);

		walk(c, child, depth + 1, textbr == NULL || child == textbr ?
		    mode : WALK_NO_PLAIN);
	}
}

static void
walk(struct ctx *c, const struct mailmime *mm, int depth, enum walk_mode mode)
{
	struct part_info pi;

	if (mm == NULL || c->toobig)
		return;
	if (depth > MAIL_DEPTH_MAX || ++c->nparts > MAIL_PARTS_MAX) {
		c->toobig = true;
		return;
	}
	switch (mm->mm_type) {
	case MAILMIME_MULTIPLE:
		walk_multipart(c, mm, depth, mode);
		return;
	case MAILMIME_MESSAGE:
		/* an attached message: kept whole, its parts counted */
		part_info(mm, &pi);
		count_parts(c, mm->mm_data.mm_message.mm_msg_mime, depth + 1);
		add_attachment(c, &pi, mm->mm_body);
		free(pi.name);
		return;
	case MAILMIME_SINGLE:
		break;
	default:
		return;
	}
	part_info(mm, &pi);
	if (strncmp(pi.type, "multipart/", 10) == 0) {
		/* a multipart whose boundary never appears */
		memcpy(pi.type, "text/plain", 11);
		pi.attachment = false;
		add_note(c, "multipart without a usable boundary read as text",
		    NULL);
	}
	if (is_body_text(&pi, "plain")) {
		if (mode == WALK_ALL) {
			size_t len;
			char *d = part_decode(mm->mm_data.mm_single, pi.encoding, &len);

			if (d != NULL) {
				add_text(c, &c->plain, pi.charset, d, len);
				mailmime_decoded_part_free(d);
			}
		}
	} else if (is_body_text(&pi, "html")) {
		size_t len;
		char *d = part_decode(mm->mm_data.mm_single, pi.encoding, &len);

		if (d != NULL) {
			add_text(c, &c->html, pi.charset, d, len);
			mailmime_decoded_part_free(d);
		}
	} else if (!(pi.name == NULL && strncmp(pi.type, "text/plain", 10) == 0 &&
	    mode == WALK_NO_PLAIN)) {
		add_attachment(c, &pi, mm->mm_data.mm_single);
	}
	free(pi.name);
}

/* Counts multipart and message Content-Type lines (case-insensitive). */
static bool
too_many_containers(const char *raw, size_t len)
{
	size_t n = 0;
	bool in_ct = false;

	for (size_t i = 0; i < len; i++) {
		if (i == 0 || raw[i - 1] == '\n') {
			if (raw[i] != ' ' && raw[i] != '\t')
				in_ct = len - i >= 13 &&
				    strncasecmp(raw + i, "content-type:", 13) == 0;
		}
		if (!in_ct)
			continue;
		if ((len - i >= 9 && strncasecmp(raw + i, "multipart", 9) == 0) ||
		    (len - i >= 8 && strncasecmp(raw + i, "message/", 8) == 0)) {
			if (++n > MAIL_CONTAINERS_MAX)
				return true;
			in_ct = false;
		}
	}
	return false;
}

static bool
has_ci(const char *s, size_t n, const char *what)
{
	size_t w = strlen(what);

	for (size_t i = 0; i + w <= n; i++)
		if (strncasecmp(s + i, what, w) == 0)
			return true;
	return false;
}

/* A multipart Content-Type without a boundary: the first "--x" line of
 * the body names it. */
static bool
guess_boundary(const char *body, size_t len, char *out, size_t sz)
{
	for (size_t i = 0; i + 2 < len;) {
		const char *e = memchr(body + i, '\n', len - i);
		size_t le = e ? (size_t)(e - body) : len, n;

		if (body[i] == '-' && body[i + 1] == '-') {
			n = le - i - 2;
			while (n > 0 && isspace((unsigned char)body[i + 2 + n - 1]))
				n--;
			if (n >= 2 && body[i + 2 + n - 1] == '-' &&
			    body[i + 2 + n - 2] == '-')
				n -= 2;
			if (n == 0 || n >= sz || n > 70)
				return false;
			memcpy(out, body + i + 2, n);
			out[n] = '\0';
			for (size_t k = 0; k < n; k++)
				if (out[k] == '"' || out[k] == '\\' ||
				    (unsigned char)out[k] < 0x20)
					return false;
			return true;
		}
		i = le + 1;
	}
	return false;
}

/* The MIME headers of the top part followed by the body: what
 * mailmime_parse reads, so that odd bytes in other headers cannot make it
 * fail. */
static char *
mime_buffer(const char *raw, size_t len, const struct hdr *h, size_t nh,
    size_t body, bool with_headers, size_t *outlen)
{
	struct mime_buf b = { 0 };

	for (size_t i = 0; i < nh && with_headers; i++) {
		if ((h[i].nlen > 8 && strncasecmp(h[i].name, "content-", 8) == 0) ||
		    (h[i].nlen == 12 && strncasecmp(h[i].name, "mime-version",
		    12) == 0)) {
			mime__buf_add(&b, h[i].name, h[i].nlen);
			mime__buf_addc(&b, ':');
			mime__buf_add(&b, h[i].val, h[i].vlen);
			if (h[i].nlen == 12 && strncasecmp(h[i].name,
			    "content-type", 12) == 0 &&
			    has_ci(h[i].val, h[i].vlen, "multipart") &&
			    !has_ci(h[i].val, h[i].vlen, "boundary")) {
				char bd[80];

				if (h[i].vlen > 0 && h[i].val[h[i].vlen - 1] == '\r')
					b.len--;
				if (guess_boundary(raw + body, len - body, bd,
				    sizeof(bd))) {
					mime__buf_add(&b, "; boundary=\"", 12);
					mime__buf_add(&b, bd, strlen(bd));
					mime__buf_addc(&b, '"');
				}
			}
			if (b.len == 0 || b.p[b.len - 1] != '\r')
				mime__buf_addc(&b, '\r');
			mime__buf_addc(&b, '\n');
		}
	}
	mime__buf_add(&b, "\r\n", 2);
	if (body < len)
		mime__buf_add(&b, raw + body, len - body);
	*outlen = b.len;
	return mime__buf_take(&b);
}

static void
detect_automatic(struct mail_msg *m, const struct hdr *h, size_t nh,
    const char *toptype)
{
	const struct hdr *x;
	char why[160] = "";
	char *v;

	if ((x = hdr_get(h, nh, "Auto-Submitted")) != NULL) {
		v = hdr_raw(x);
		if (*v != '\0' && strncasecmp(v, "no", 2) != 0)
			snprintf(why, sizeof(why), "Auto-Submitted: %.60s", v);
		free(v);
	}
	if (!*why && (x = hdr_get(h, nh, "Precedence")) != NULL) {
		v = hdr_raw(x);
		if (strcasecmp(v, "bulk") == 0 || strcasecmp(v, "junk") == 0 ||
		    strcasecmp(v, "list") == 0 || strcasecmp(v, "auto_reply") == 0)
			snprintf(why, sizeof(why), "Precedence: %s", v);
		free(v);
	}
	if (!*why && ((x = hdr_get(h, nh, "X-Autoreply")) != NULL ||
	    (x = hdr_get(h, nh, "X-Autorespond")) != NULL)) {
		v = hdr_raw(x);
		if (strcasecmp(v, "no") != 0)
			snprintf(why, sizeof(why), "%.*s: %.60s", (int)x->nlen,
			    x->name, v);
		free(v);
	}
	if (!*why && strcmp(toptype, "multipart/report") == 0)
		snprintf(why, sizeof(why), "multipart/report");
	if (!*why && m->from_addr != NULL &&
	    (strncmp(m->from_addr, "mailer-daemon@", 14) == 0 ||
	    strncmp(m->from_addr, "postmaster@", 11) == 0))
		snprintf(why, sizeof(why), "sender %.100s", m->from_addr);
	if (!*why && (x = hdr_get(h, nh, "Return-Path")) != NULL) {
		v = hdr_raw(x);
		if (strcmp(v, "<>") == 0)
			snprintf(why, sizeof(why), "Return-Path: <>");
		free(v);
	}
	m->automatic = *why != '\0';
	m->automatic_why = m->automatic ? xstrdup(why) : NULL;
}

static void
priv_free(struct mail_priv *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ndecoded; i++)
		mailmime_decoded_part_free(p->decoded[i]);
	if (p->root != NULL)
		mailmime_free(p->root);
	free(p->mimebuf);
	free(p);
}

int
mail_parse(const char *raw, size_t len, struct mail_msg *m,
    struct inbox_err *err)
{
	static const char *const known[] = { "From", "To", "Subject", "Date",
		"Message-ID", "Received", "Return-Path", "MIME-Version",
		"Content-Type", "Sender", "Delivered-To", "Reply-To", NULL };
	struct hdr *h;
	size_t nh = 0, mlen = 0, idx = 0;
	long body;
	struct ctx c = { .m = m };
	struct mailmime *root = NULL;
	char toptype[128] = "text/plain";
	int rc = 0;
	bool knows = false;

	memset(m, 0, sizeof(*m));
	if (raw == NULL)
		len = 0;
	h = xcalloc(MAIL_HEADERS_MAX, sizeof(*h));
	body = raw ? split_headers(raw, len, h, &nh) : -1;
	for (const char *const *k = known; *k && body >= 0; k++)
		knows = knows || hdr_get(h, nh, *k) != NULL;
	if (body < 0 || !knows) {
		rc = inbox_err_set(err, INBOX_EINVAL, "header", 0,
		    "not a mail message: no header block");
		goto out;
	}
	if (too_many_containers(raw, len)) {
		rc = inbox_err_set(err, INBOX_ETOOBIG, "mime", 0,
		    "more than %d multipart or message parts",
		    MAIL_CONTAINERS_MAX);
		goto out;
	}
	c.priv = xcalloc(1, sizeof(*c.priv));
	m->priv = c.priv;
	c.plain.max = c.html.max = MIME_TEXT_MAX;

	/* headers */
	{
		char *ids[MAIL_REFS_MAX];
		size_t n;

		if (ids_get(hdr_get(h, nh, "Message-ID"), ids, 1) == 1)
			m->message_id = ids[0];
		if ((n = ids_get(hdr_get(h, nh, "In-Reply-To"), ids, 1)) == 1)
			m->in_reply_to = ids[0];
		n = ids_get(hdr_get(h, nh, "References"), ids, MAIL_REFS_MAX);
		if (n > 0) {
			m->references = xcalloc(n, sizeof(char *));
			memcpy(m->references, ids, n * sizeof(char *));
			m->nreferences = n;
		}
	}
	mailbox_get(&c, hdr_get(h, nh, "From"), &m->from_name, &m->from_addr);
	if (m->from_addr == NULL)
		mailbox_get(&c, hdr_get(h, nh, "Sender"), NULL, &m->from_addr);
	mailbox_get(&c, hdr_get(h, nh, "Reply-To"), NULL, &m->reply_to_addr);
	m->to = hdr_text(&c, hdr_get(h, nh, "To"), "To");
	m->subject = hdr_text(&c, hdr_get(h, nh, "Subject"), "Subject");
	m->date_ms = date_get(hdr_get(h, nh, "Date"));

	/* body */
	c.priv->mimebuf = mime_buffer(raw, len, h, nh, (size_t)body, true, &mlen);
	if (mailmime_parse(c.priv->mimebuf, mlen, &idx, &root) !=
	    MAILIMF_NO_ERROR) {
		add_note(&c, "MIME headers unreadable: body read as text", NULL);
		free(c.priv->mimebuf);
		c.priv->mimebuf = mime_buffer(raw, len, h, nh, (size_t)body,
		    false, &mlen);
		idx = 0;
		root = NULL;
		if (mailmime_parse(c.priv->mimebuf, mlen, &idx, &root) !=
		    MAILIMF_NO_ERROR) {
			rc = inbox_err_set(err, INBOX_EINVAL, "mime", 0,
			    "unparsable MIME structure");
			goto out;
		}
	}
	c.priv->root = root;
	{
		const struct mailmime *top = root;

		if (root->mm_type == MAILMIME_MESSAGE)
			top = root->mm_data.mm_message.mm_msg_mime;
		if (top != NULL)
			ctype_str(top->mm_content_type, toptype, sizeof(toptype));
		walk(&c, top, 0, WALK_ALL);
	}
	if (c.toobig) {
		rc = inbox_err_set(err, INBOX_ETOOBIG, "mime", 0,
		    "more than %d parts or nesting deeper than %d",
		    MAIL_PARTS_MAX, MAIL_DEPTH_MAX);
		goto out;
	}
	if (c.dropped > 0) {
		char buf[80];

		snprintf(buf, sizeof(buf), "%zu attachments over %d dropped",
		    c.dropped, MAIL_ATTACH_MAX);
		add_note(&c, buf, NULL);
	}
	if (c.html.len > 0)
		m->html = mime__utf8_clean(c.html.p, c.html.len, MIME_TEXT_MAX, NULL);
	{
		bool blank = true;

		for (size_t i = 0; i < c.plain.len && blank; i++)
			blank = isspace((unsigned char)c.plain.p[i]);
		if (blank && m->html != NULL) {
			char *t = mime__html_to_text(m->html, strlen(m->html),
			    MIME_TEXT_MAX);

			m->text = mime__utf8_clean(t, strlen(t), MIME_TEXT_MAX, NULL);
			free(t);
		} else {
			size_t n = c.plain.len;

			while (n > 0 && isspace((unsigned char)c.plain.p[n - 1]))
				n--;
			m->text = mime__utf8_clean(c.plain.p ? c.plain.p : "", n,
			    MIME_TEXT_MAX, NULL);
		}
	}
	m->text_new = mime__strip_quoted(m->text);
	detect_automatic(m, h, nh, toptype);
	if (c.note.len > 0)
		m->charset_note = mime__utf8_clean(c.note.p, c.note.len, 0, NULL);
out:
	mime__buf_free(&c.plain);
	mime__buf_free(&c.html);
	mime__buf_free(&c.note);
	free(h);
	if (rc != 0)
		mail_msg_finish(m);
	return rc;
}

void
mail_msg_finish(struct mail_msg *m)
{
	if (m == NULL)
		return;
	free(m->message_id);
	free(m->in_reply_to);
	for (size_t i = 0; i < m->nreferences; i++)
		free(m->references[i]);
	free(m->references);
	free(m->from_name);
	free(m->from_addr);
	free(m->reply_to_addr);
	free(m->to);
	free(m->subject);
	free(m->text);
	free(m->text_new);
	free(m->html);
	for (size_t i = 0; i < m->nattachments; i++) {
		free(m->attachments[i].name);
		free(m->attachments[i].mime);
		free(m->attachments[i].content_id);
	}
	free(m->automatic_why);
	free(m->charset_note);
	priv_free(m->priv);
	memset(m, 0, sizeof(*m));
}
