/* meta_sql.c - the parts of the metadata store that do not depend on
 * the database (see meta_sql.h); used by meta_sqlite.c and meta_pg.c.
 *
 * The API shape both backends return (docs/storage.md, "Semantics"): an
 * artifact has every base field (activated_at null if unset) and its
 * revision; a typed view adds every field of the type, custom fields null
 * when unset, Blob fields null or the blob object, Folders {} or key ->
 * blob; the all view adds type_name, tags and metadata instead. Blob
 * objects always carry the API keys (null when unset); internal keys
 * appear only when set; keys without a column come back from `extra`.
 *
 * Reading is total: a row that cannot be decoded (text that is not UTF-8,
 * a doc that is not a JSON object, a timestamp out of range, a value
 * stored before a check existed or written by hand) never fails a get or
 * a listing. What cannot be read is left out (null, or the field's
 * default) and logged once, so the artifact can still be listed, shown
 * and deleted.
 *
 * Uses jansson, util.c (memory, strings, time), err.c (gl_fail), log.c.
 */
#include "meta_sql.h"
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------
 * Fields and keys.
 * ---------------------------------------------------------------------- */

/* Base fields that live in artifacts columns (column name = field name);
 * tags and metadata are base fields kept in doc (+ their tables). */
/* clang-format off */
static const char *const base_columns[] = {
	"id", "type_name", "name", "version", "owner", "visibility", "status",
	"description", "display_type_name", "created_at", "updated_at",
	"activated_at",
};
/* clang-format on */

static int is_base_column(const char *name)
{
	for (size_t i = 0; i < sizeof base_columns / sizeof *base_columns; i++)
		if (strcmp(base_columns[i], name) == 0)
			return 1;
	return 0;
}

static int is_time_column(const char *name)
{
	return strcmp(name, "created_at") == 0 ||
	       strcmp(name, "updated_at") == 0 ||
	       strcmp(name, "activated_at") == 0;
}

/* Blob keys that have columns; any other key goes to `extra`. */
/* clang-format off */
static const char *const blob_keys[B_NCOLS] = {
	[B_URL] = "url", [B_SIZE] = "size", [B_MD5] = "md5",
	[B_SHA1] = "sha1", [B_SHA256] = "sha256", [B_EXTERNAL] = "external",
	[B_STATUS] = "status", [B_CTYPE] = "content_type",
	[B_STORE] = "store", [B_LOCATION] = "location",
	[B_RESERVED] = "reserved", [B_NODE] = "node", [B_PREV] = "prev",
	[B_TEMP] = "temp", [B_VERIFIED] = "verified_at",
	[B_VSTATUS] = "verify_status", [B_VERROR] = "verify_error",
	[B_EXTRA] = NULL,
};
/* clang-format on */

static const gl_field *type_field(const gl_type *t, const char *name)
{
	for (int i = 0; t && i < t->nfields; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return &t->fields[i];
	return NULL;
}

int gl_msql_json_time(const json_t *v, int64_t *us)
{
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*us = json_integer_value(v);
		return 1;
	}
	if (json_is_string(v) &&
	    gl_parse_iso8601(json_string_value(v), us) == 0)
		return 1;
	return -1;
}

int gl_msql_schema_check(int64_t v, int64_t tables, int upgrade, int need,
			 gl_err *err)
{
	if (v == need)
		return 0;
	if (v > need)
		return gl_fail(err, 500, NULL,
			       "database schema is at version %lld, newer than"
			       " this glared supports (%d)",
			       (long long)v, need);
	if (v == 0 && tables > 0)
		return gl_fail(err, 500, NULL,
			       "the database has tables but no glared schema"
			       " version: not a glared database");
	if (v > 0 && !upgrade)
		return gl_fail(err, 500, NULL,
			       "database schema is at version %lld, glared"
			       " needs %d: run 'glared db upgrade'",
			       (long long)v, need);
	return 1;
}

char *gl_msql_dump(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s)
		gl_oom();
	return s;
}

/* ------------------------------------------------------------------------
 * Rows to the API shape.
 * ---------------------------------------------------------------------- */

/* Each damaged (row, part) is logged once per process: listings read the
 * same rows again and again. */
#define DAMAGE_SEEN 256
static uint64_t damage_seen[DAMAGE_SEEN];
static unsigned damage_next;

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void damaged(const char *who, const char *what, const char *detail)
{
	uint64_t h;

	who = who ? who : "?";
	h = fnv1a(fnv1a(14695981039346656037ULL, who), what);
	for (int i = 0; i < DAMAGE_SEEN; i++)
		if (damage_seen[i] == h)
			return;
	damage_seen[damage_next++ % DAMAGE_SEEN] = h;
	gl_warn("artifact %.100s: the stored %s is damaged (%.300s); it is "
		"served repaired or left out",
		who, what, detail);
}

/* A text column as a string that JSON can carry: bytes that are not UTF-8
 * become U+FFFD (reported once as damage of `what`). */
static json_t *text_col(const gl_msql_row *r, int c, const char *who,
			const char *what)
{
	const char *s;
	char *fixed;
	json_t *v;
	size_t n;

	if (r->ops->null(r, c))
		return json_null();
	s = r->ops->text(r, c, &n);
	if ((v = json_stringn(s, n)))
		return v;
	if (!(fixed = gl_utf8_repair(s, n, &n)))
		gl_oom();
	if (what)
		damaged(who, what, "not UTF-8");
	v = json_stringn(fixed, n);
	free(fixed);
	return v ? v : json_null();
}

/* A text column as a C string for a key (malloc'ed, valid UTF-8; cut at
 * an embedded NUL as every key is). */
static char *text_key(const gl_msql_row *r, int c)
{
	size_t n;
	const char *s = r->ops->text(r, c, &n);
	char *k = gl_utf8_repair(s, n, NULL);

	if (!k)
		gl_oom();
	return k;
}

json_t *gl_msql_col_text(const gl_msql_row *r, int c)
{
	return text_col(r, c, NULL, NULL);
}

json_t *gl_msql_col_int(const gl_msql_row *r, int c)
{
	if (r->ops->null(r, c))
		return json_null();
	return json_integer(r->ops->i64(r, c));
}

/* Full precision: the engine shows seconds, but sorting, markers and
 * rewrites of the row must keep the microseconds. */
/* Years 1 to 9999: what ISO-8601 with four digits can say. */
#define TIME_MIN_US (-62135596800LL * 1000000)
#define TIME_MAX_US (253402300800LL * 1000000 - 1)

static json_t *time_col(const gl_msql_row *r, int c, const char *who,
			const char *what)
{
	char buf[40];
	int64_t us;

	if (r->ops->null(r, c))
		return json_null();
	us = r->ops->i64(r, c);
	if (us < TIME_MIN_US || us > TIME_MAX_US) {
		if (what)
			damaged(who, what, "timestamp out of range");
		return json_null();
	}
	gl_iso8601_us(us, buf);
	return json_string(buf);
}

json_t *gl_msql_col_time(const gl_msql_row *r, int c)
{
	return time_col(r, c, NULL, NULL);
}

/* A JSON text column; what was written is read back, U+0000 included.
 * NULL when it is not JSON (reported once as damage of `what`). */
static json_t *json_col(const gl_msql_row *r, int c, const char *who,
			const char *what)
{
	json_error_t jerr;
	const char *s;
	json_t *v;
	size_t n;

	if (r->ops->null(r, c))
		return json_null();
	s = r->ops->text(r, c, &n);
	v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!v && what)
		damaged(who, what, jerr.text);
	return v;
}

json_t *gl_msql_col_json(const gl_msql_row *r, int c)
{
	return json_col(r, c, NULL, NULL);
}

static json_t *blob_json(const gl_msql_row *r, int c0, const char *who)
{
	static const int texts[] = { B_URL,    B_MD5,    B_SHA1,
				     B_SHA256, B_STATUS, B_CTYPE };
	json_t *b = json_object(), *v;

	json_object_set_new(b, "size", gl_msql_col_int(r, c0 + B_SIZE));
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
		json_object_set_new(b, blob_keys[texts[i]],
				    text_col(r, c0 + texts[i], who,
					     "blob record"));
	json_object_set_new(b, "external",
			    json_boolean(r->ops->truth(r, c0 + B_EXTERNAL)));
	for (int c = B_STORE; c < B_EXTRA; c++) {
		if (r->ops->null(r, c0 + c))
			continue;
		if (c == B_RESERVED || c == B_VERIFIED) /* microseconds */
			v = gl_msql_col_int(r, c0 + c);
		else if (c == B_PREV)
			v = json_col(r, c0 + c, who, "blob record (prev)");
		else
			v = text_col(r, c0 + c, who, "blob record");
		if (v)
			json_object_set_new(b, blob_keys[c], v);
	}
	if (!r->ops->null(r, c0 + B_EXTRA)) {
		json_t *extra = json_col(r, c0 + B_EXTRA, who,
					 "blob record (extra)");

		if (json_is_object(extra))
			json_object_update_missing(b, extra);
		json_decref(extra);
	}
	return b;
}

json_t *gl_msql_blob_json(const gl_msql_row *r, int c0)
{
	return blob_json(r, c0, NULL);
}

/* Custom fields come from doc (null when unset); blob fields are null and
 * folders {} until their records are attached. */
int gl_msql_artifact_json(const gl_msql_row *r, const gl_type *type,
			  json_t **out, gl_err *err)
{
	static const struct {
		const char *key;
		int col;
	} texts[] = {
		{ "name", C_NAME }, { "version", C_VERSION },
		{ "owner", C_OWNER }, { "visibility", C_VIS },
		{ "status", C_STATUS }, { "description", C_DESC },
		{ "display_type_name", C_DTN },
	}, times[] = {
		{ "created_at", C_CREATED }, { "updated_at", C_UPDATED },
		{ "activated_at", C_ACTIVATED },
	};
	json_t *af, *doc, *idv;
	const char *id;
	int lost = 0;

	af = json_object();
	idv = text_col(r, C_ID, NULL, NULL);
	json_object_set_new(af, "id", idv);
	id = json_string_value(idv);
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
		json_object_set_new(af, texts[i].key,
				    text_col(r, texts[i].col, id,
					     texts[i].key));
	for (size_t i = 0; i < sizeof times / sizeof *times; i++)
		json_object_set_new(af, times[i].key,
				    time_col(r, times[i].col, id,
					     times[i].key));
	json_object_set_new(af, "revision", gl_msql_col_int(r, C_REV));
	doc = json_col(r, C_DOC, id, "document");
	if (!json_is_object(doc)) {
		if (doc)
			damaged(id, "document", "not a JSON object");
		json_decref(doc);
		doc = json_object();
		lost = 1;
	}
	if (!type) {
		json_t *v;

		json_object_set_new(af, "type_name",
				    text_col(r, C_TYPE, id, "type_name"));
		v = json_object_get(doc, "tags");
		json_object_set_new(af, "tags",
				    v      ? json_incref(v)
				    : lost ? json_array()
					   : json_null());
		v = json_object_get(doc, "metadata");
		json_object_set_new(af, "metadata",
				    v      ? json_incref(v)
				    : lost ? json_object()
					   : json_null());
	} else {
		for (int i = 0; i < type->nfields; i++) {
			const gl_field *f = &type->fields[i];
			json_t *v;

			if (f->base && is_base_column(f->name))
				continue;
			if (f->kind == GK_BLOB) {
				v = json_null();
			} else if (f->kind == GK_FOLDER) {
				v = json_object();
			} else if ((v = json_object_get(doc, f->name))) {
				json_incref(v);
			} else {
				/* a lost document reads as a new one */
				v = lost && f->def ? json_deep_copy(f->def)
						   : json_null();
			}
			json_object_set_new(af, f->name, v);
		}
	}
	json_decref(doc);
	*out = af;
	return 0;
}

/* Records of fields the type no longer has are left out. */
void gl_msql_attach_blob(json_t *af, const gl_type *type, const gl_msql_row *r,
			 int cf)
{
	size_t n;
	const char *field = r->ops->text(r, cf, &n);
	const char *who = json_string_value(json_object_get(af, "id"));
	const gl_field *f = type_field(type, field);
	json_t *folder;
	char *key;

	if (!af || !f)
		return;
	key = text_key(r, cf + 1);
	if (f->kind == GK_FOLDER) {
		folder = json_object_get(af, field);
		if (!json_is_object(folder)) {
			folder = json_object();
			json_object_set_new(af, field, folder);
		}
		json_object_set_new(folder, key, blob_json(r, cf + 2, who));
	} else if (f->kind == GK_BLOB && key[0] == '\0') {
		json_object_set_new(af, field, blob_json(r, cf + 2, who));
	}
	free(key);
}

void gl_msql_attach_page_blob(json_t *idx, const gl_type *type,
			      const gl_msql_row *r)
{
	char *id = text_key(r, 0);

	gl_msql_attach_blob(json_object_get(idx, id), type, r, 1);
	free(id);
}

json_t *gl_msql_deleted_row(const gl_msql_row *r)
{
	return json_pack("{s:o, s:o}", "id", gl_msql_col_text(r, 0),
			 "type_name", gl_msql_col_text(r, 1));
}

json_t *gl_msql_gc_row(const gl_msql_row *r)
{
	return json_pack("{s:o, s:o}", "store", gl_msql_col_text(r, 0),
			 "location", gl_msql_col_text(r, 1));
}

json_t *gl_msql_cleanup_row(const gl_msql_row *r)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "kind",
			 gl_msql_col_text(r, 0), "target",
			 gl_msql_col_text(r, 1), "arg", gl_msql_col_text(r, 2),
			 "attempts", gl_msql_col_int(r, 3), "next_at",
			 gl_msql_col_int(r, 4), "queued_at",
			 gl_msql_col_int(r, 5), "error",
			 gl_msql_col_text(r, 6));
}

json_t *gl_msql_blob_row(const gl_msql_row *r)
{
	json_t *id = gl_msql_col_text(r, 0);

	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "artifact_id", id,
			 "type_name", gl_msql_col_text(r, 1), "field",
			 gl_msql_col_text(r, 2), "key", gl_msql_col_text(r, 3),
			 "blob", blob_json(r, 4, json_string_value(id)));
}

json_t *gl_msql_quotas_new(const char *project)
{
	json_t *res = json_object();

	/* a named project is always a key, even without overrides */
	if (project)
		json_object_set_new(res, project, json_object());
	return res;
}

void gl_msql_quota_row(json_t *res, const gl_msql_row *r)
{
	char *pid = text_key(r, 0), *name = text_key(r, 1);
	json_t *o = json_object_get(res, pid);

	if (!o) {
		o = json_object();
		json_object_set_new(res, pid, o);
	}
	json_object_set_new(o, name, json_integer(r->ops->i64(r, 2)));
	free(pid);
	free(name);
}

void gl_msql_page_init(gl_msql_page *pg)
{
	pg->arr = json_array();
	pg->idx = json_object();
	pg->ids = json_array();
}

void gl_msql_page_add(gl_msql_page *pg, json_t *af)
{
	json_t *id = json_object_get(af, "id");

	json_array_append_new(pg->arr, af);
	json_object_set(pg->idx, json_string_value(id), af);
	json_array_append(pg->ids, id);
}

char *gl_msql_page_ids(const gl_msql_page *pg)
{
	return gl_msql_dump(pg->ids);
}

json_t *gl_msql_page_done(gl_msql_page *pg, int keep)
{
	json_t *arr = pg->arr;

	json_decref(pg->idx);
	json_decref(pg->ids);
	if (!keep)
		json_decref(arr);
	memset(pg, 0, sizeof *pg);
	return keep ? arr : NULL;
}

/* ------------------------------------------------------------------------
 * Values and parameter lists.
 * ---------------------------------------------------------------------- */

static gl_msql_val *slot(gl_msql_vals *p, int i)
{
	gl_msql_val *v;

	if (i < 1 || i > GL_MSQL_VALS_MAX)
		abort(); /* a statement with more parameters: a bug */
	v = &p->v[i - 1];
	free(v->owned);
	memset(v, 0, sizeof *v);
	if (i > p->n)
		p->n = i;
	return v;
}

void gl_msql_set_text(gl_msql_vals *p, int i, const char *s)
{
	gl_msql_val *v = slot(p, i);

	if (s) {
		v->t = GL_MSQL_TEXT;
		v->s = s;
		v->len = -1;
	}
}

void gl_msql_set_int(gl_msql_vals *p, int i, int64_t n)
{
	gl_msql_val *v = slot(p, i);

	v->t = GL_MSQL_INT;
	v->i = n;
}

void gl_msql_set_own(gl_msql_vals *p, int i, char *s)
{
	gl_msql_set_text(p, i, s);
	p->v[i - 1].owned = s;
}

void gl_msql_set_bin(gl_msql_vals *p, int i, const void *data, int len)
{
	gl_msql_val *v = slot(p, i);

	v->t = GL_MSQL_BIN;
	v->s = data;
	v->len = len;
}

void gl_msql_vals_free(gl_msql_vals *p)
{
	for (int i = 0; i < GL_MSQL_VALS_MAX; i++)
		free(p->v[i].owned);
	memset(p, 0, sizeof *p);
}

void gl_msql_json_val(const json_t *v, gl_msql_val *out)
{
	memset(out, 0, sizeof *out);
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_INTEGER:
		out->t = GL_MSQL_INT;
		out->i = json_integer_value(v);
		break;
	case JSON_REAL:
		out->t = GL_MSQL_REAL;
		out->d = json_real_value(v);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		out->t = GL_MSQL_INT;
		out->i = json_is_true(v);
		break;
	case JSON_STRING:
		out->t = GL_MSQL_TEXT;
		out->s = json_string_value(v);
		out->len = (int)json_string_length(v);
		break;
	default:
		out->t = GL_MSQL_NULL;
	}
}

/* ------------------------------------------------------------------------
 * What a write stores.
 * ---------------------------------------------------------------------- */

int gl_msql_put_check(const gl_type *type, const json_t *af, const gl_vkey *vk,
		      gl_err *err)
{
	if (!type || type->is_all || !gl_json_str(af, "id") ||
	    !gl_json_str(af, "name") || !gl_json_str(af, "owner") || !vk)
		return gl_fail(err, 500, NULL,
			       "DBError: artifact without type, id, name, owner"
			       " or version key");
	return 0;
}

/* doc: every field without a column and not a blob; unset/null fields are
 * left out. */
static char *doc_text(const gl_type *type, const json_t *af)
{
	json_t *doc = json_object(), *v;
	char *text;

	for (int f = 0; f < type->nfields; f++) {
		const gl_field *fd = &type->fields[f];

		if ((fd->base && is_base_column(fd->name)) ||
		    fd->kind == GK_BLOB || fd->kind == GK_FOLDER)
			continue;
		v = json_object_get(af, fd->name);
		if (v && !json_is_null(v))
			json_object_set(doc, fd->name, v);
	}
	text = gl_msql_dump(doc);
	json_decref(doc);
	return text;
}

int gl_msql_artifact_vals(gl_msql_vals *p, const gl_type *type,
			  const json_t *af, const gl_vkey *vk, int64_t rev,
			  gl_err *err)
{
	/* clang-format off */
	static const char *const tnames[3] = {
		"created_at", "updated_at", "activated_at"
	};
	/* clang-format on */
	const char *ver = gl_json_str(af, "version");
	int64_t t[3];
	int set[3];

	for (int i = 0; i < 3; i++) {
		set[i] = gl_msql_json_time(json_object_get(af, tnames[i]),
					   &t[i]);
		if (set[i] < 0)
			return gl_fail(err, 500, NULL,
				       "DBError: artifact %s: bad timestamp",
				       tnames[i]);
		/* created/updated are NOT NULL: the engine always sets them,
		 * "now" only keeps a careless caller from failing */
		if (!set[i] && i < 2) {
			t[i] = gl_now_us();
			set[i] = 1;
		}
	}
	gl_msql_set_text(p, 1, gl_json_str(af, "id"));
	gl_msql_set_text(p, 2, type->name);
	gl_msql_set_text(p, 3, gl_json_str(af, "name"));
	gl_msql_set_text(p, 4, ver ? ver : "0.0.0");
	gl_msql_set_int(p, 5, vk->prefix);
	gl_msql_set_text(p, 6, vk->suffix ? vk->suffix : "");
	gl_msql_set_text(p, 7, vk->meta ? vk->meta : "");
	gl_msql_set_text(p, 8, gl_json_str(af, "owner"));
	gl_msql_set_text(p, 9,
			 gl_json_str(af, "visibility")
				 ? gl_json_str(af, "visibility")
				 : "private");
	gl_msql_set_text(p, 10,
			 gl_json_str(af, "status") ? gl_json_str(af, "status")
						   : "drafted");
	gl_msql_set_text(p, 11, gl_json_str(af, "description"));
	gl_msql_set_text(p, 12, gl_json_str(af, "display_type_name"));
	for (int i = 0; i < 3; i++) {
		if (set[i])
			gl_msql_set_int(p, 13 + i, t[i]);
		else
			gl_msql_set_text(p, 13 + i, NULL);
	}
	gl_msql_set_int(p, 16, rev + 1);
	gl_msql_set_own(p, 17, doc_text(type, af));
	return 0;
}

json_t *gl_msql_tags(const json_t *af)
{
	json_t *tags = json_array(), *v;
	size_t i;

	json_array_foreach(json_object_get(af, "tags"), i, v)
		if (json_is_string(v))
			json_array_append(tags, v);
	return tags;
}

/* One row per scalar. DateTime values are stored as microseconds so
 * filters compare numbers. */
static int prop_row(const char *name, const char *key, const json_t *v,
		    int pos, gl_kind kind, gl_msql_prop_fn fn, void *ctx)
{
	json_t *us_v = NULL;
	int64_t us;
	int rc;

	if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v))
		return 0;
	if (kind == GK_DATETIME && json_is_string(v) &&
	    gl_msql_json_time(v, &us) == 1)
		v = us_v = json_integer(us);
	rc = fn(ctx, name, key, pos, v);
	json_decref(us_v);
	return rc;
}

static int field_props(const gl_field *f, const json_t *v, gl_msql_prop_fn fn,
		       void *ctx)
{
	const char *k;
	json_t *e;
	size_t i;
	int rc;

	if (f->kind == GK_LIST && json_is_array(v)) {
		json_array_foreach(v, i, e)
			if ((rc = prop_row(f->name, "", e, (int)i, f->elem, fn,
					   ctx)))
				return rc;
	} else if (f->kind == GK_DICT && json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
			if ((rc = prop_row(f->name, k, e, 0, f->elem, fn,
					   ctx)))
				return rc;
	} else if (f->kind != GK_LIST && f->kind != GK_DICT) {
		return prop_row(f->name, "", v, 0, f->kind, fn, ctx);
	}
	return 0;
}

int gl_msql_each_prop(const gl_type *type, const json_t *af,
		      gl_msql_prop_fn fn, void *ctx)
{
	for (int f = 0; f < type->nfields; f++) {
		const gl_field *fd = &type->fields[f];
		json_t *v;
		int rc;

		if (fd->kind == GK_BLOB || fd->kind == GK_FOLDER)
			continue;
		if (fd->base && strcmp(fd->name, "metadata") != 0)
			continue;
		v = json_object_get(af, fd->name);
		if (v && (rc = field_props(fd, v, fn, ctx)))
			return rc;
	}
	return 0;
}

int gl_msql_blob_vals(gl_msql_vals *p, const char *artifact_id,
		      const char *field, const char *key, const json_t *blob,
		      gl_err *err)
{
	json_t *extra, *v;
	const char *k;
	int64_t us;
	int c;

	if (!json_is_object(blob))
		return gl_fail(err, 500, NULL,
			       "DBError: blob is not an object");
	gl_msql_set_text(p, 1, artifact_id);
	gl_msql_set_text(p, 2, field);
	gl_msql_set_text(p, 3, key ? key : "");
	for (c = 0; c < B_EXTRA; c++) {
		int i = 4 + c + (c > B_PREV ? 2 : 0); /* prev_store/location */

		v = json_object_get(blob, blob_keys[c]);
		switch (c) {
		case B_SIZE:
		case B_RESERVED:
			if (json_is_integer(v)) /* exact above 2^53 */
				gl_msql_set_int(p, i, json_integer_value(v));
			else if (json_is_real(v))
				gl_msql_set_int(p, i,
						(int64_t)json_real_value(v));
			break;
		case B_EXTERNAL:
			gl_msql_set_int(p, i, json_is_true(v));
			break;
		case B_PREV:
			if (!json_is_object(v))
				break;
			gl_msql_set_own(p, i, gl_msql_dump(v));
			gl_msql_set_text(p, i + 1, gl_json_str(v, "store"));
			gl_msql_set_text(p, i + 2, gl_json_str(v, "location"));
			break;
		case B_VERIFIED:
			if (gl_msql_json_time(v, &us) == 1)
				gl_msql_set_int(p, i, us);
			break;
		default:
			if (json_is_string(v)) {
				gl_msql_set_text(p, i, json_string_value(v));
				p->v[i - 1].len = (int)json_string_length(v);
			}
		}
	}
	/* keys without a column survive in `extra` */
	extra = json_object();
	json_object_foreach((json_t *)blob, k, v) {
		int known = 0;

		for (c = 0; c < B_EXTRA && !known; c++)
			known = strcmp(blob_keys[c], k) == 0;
		if (!known)
			json_object_set(extra, k, v);
	}
	if (json_object_size(extra))
		gl_msql_set_own(p, 23, gl_msql_dump(extra));
	else
		gl_msql_set_text(p, 23, NULL);
	json_decref(extra);
	return 0;
}

void gl_msql_scope_vals(gl_msql_vals *p, const char *type_name,
			const char *name, const gl_vkey *vk, const char *owner,
			const char *exclude_id)
{
	gl_msql_set_text(p, 1, type_name);
	gl_msql_set_text(p, 2, name);
	gl_msql_set_int(p, 3, vk->prefix);
	gl_msql_set_text(p, 4, vk->suffix ? vk->suffix : "");
	gl_msql_set_text(p, 5, vk->meta ? vk->meta : "");
	/* "" is no id: `id != NULL` would be NULL and match nothing */
	gl_msql_set_text(p, 6, exclude_id ? exclude_id : "");
	if (owner)
		gl_msql_set_text(p, 7, owner);
}

int gl_msql_quotas_check(const json_t *projects, gl_err *err)
{
	if (!json_is_array(projects))
		return gl_fail(err, 500, NULL,
			       "DBError: quotas must be a list");
	return 0;
}

int gl_msql_quotas_each(const json_t *projects, const gl_msql_quota_ops *ops,
			void *ctx, gl_err *err)
{
	json_t *pj, *qv;
	size_t i, j;

	json_array_foreach(projects, i, pj) {
		const char *pid = gl_json_str(pj, "project_id");

		if (!pid)
			return gl_fail(err, 500, NULL,
				       "DBError: quota without project_id");
		if (ops->clear(ctx, pid, err))
			return -1;
		json_array_foreach(json_object_get(pj, "project_quotas"), j,
				   qv) {
			const char *name = gl_json_str(qv, "quota_name");

			if (!name)
				continue;
			if (ops->add(ctx, pid, name,
				     json_integer_value(
					     json_object_get(qv,
							     "quota_value")),
				     err))
				return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Listing fragments. A parameter is the byte PH in the text; values never
 * appear in the text (field names of custom fields are parameters too,
 * base column names are checked), so PH cannot come from elsewhere.
 * ---------------------------------------------------------------------- */

#define PH '\x01'

void gl_msql_sql(gl_msql_frag *f, const char *s)
{
	gl_sb_add(&f->sql, s);
}

void gl_msql_sqlf(gl_msql_frag *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gl_sb_vaddf(&f->sql, fmt, ap);
	va_end(ap);
}

static void push(gl_msql_frag *f, const gl_msql_val *v)
{
	if (f->np == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->pv = gl_xrealloc(f->pv, (size_t)f->cap * sizeof *f->pv);
	}
	f->pv[f->np] = *v;
	f->pv[f->np++].owned = NULL; /* ownership stays with the source */
}

void gl_msql_arg(gl_msql_frag *f, const gl_msql_val *v)
{
	push(f, v);
	gl_sb_addn(&f->sql, (const char[]){ PH }, 1);
}

void gl_msql_arg_text(gl_msql_frag *f, const char *s)
{
	gl_msql_val v = { .t = GL_MSQL_TEXT, .s = s, .len = -1 };

	gl_msql_arg(f, &v);
}

void gl_msql_arg_int(gl_msql_frag *f, int64_t n)
{
	gl_msql_val v = { .t = GL_MSQL_INT, .i = n };

	gl_msql_arg(f, &v);
}

void gl_msql_cat(gl_msql_frag *dst, const gl_msql_frag *src)
{
	if (src->sql.p)
		gl_sb_add(&dst->sql, src->sql.p);
	for (int i = 0; i < src->np; i++)
		push(dst, &src->pv[i]);
}

void gl_msql_frag_free(gl_msql_frag *f)
{
	gl_sb_free(&f->sql);
	free(f->pv);
	memset(f, 0, sizeof *f);
}

char *gl_msql_frag_render(const gl_msql_frag *f, gl_msql_ph_fn ph)
{
	gl_sb out = { 0 };
	int k = 0;

	for (const char *s = f->sql.p; s && *s; s++) {
		if (*s == PH) {
			ph(&out, k + 1, &f->pv[k]);
			k++;
		} else {
			gl_sb_addn(&out, s, 1);
		}
	}
	if (!out.p)
		gl_sb_add(&out, "");
	return out.p;
}

/* ------------------------------------------------------------------------
 * Listing conditions.
 * ---------------------------------------------------------------------- */

int gl_msql_value(const json_t *v, int to_us, gl_msql_val *p, gl_err *err)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		gl_msql_json_val(v, p);
		return 0;
	case JSON_STRING:
		gl_msql_json_val(v, p);
		if (to_us) {
			if (gl_parse_iso8601(json_string_value(v), &p->i))
				return gl_fail(err, 400, "BadRequest",
					       "Invalid datetime value %s",
					       json_string_value(v));
			p->t = GL_MSQL_INT;
			p->s = NULL;
			p->len = 0;
		}
		return 0;
	default:
		return gl_fail(err, 400, "BadRequest",
			       "Filter values must be scalars");
	}
}

int gl_msql_filter_value(const json_t *v, gl_kind kind, enum gl_msql_target tg,
			 gl_msql_val *p, gl_err *err)
{
	if (gl_msql_value(v, kind == GK_DATETIME && tg != GL_MSQL_TG_TEXT, p,
			  err))
		return -1;
	p->cast = tg == GL_MSQL_TG_TEXT || p->t == GL_MSQL_TEXT   ? "text"
		  : p->t == GL_MSQL_REAL || tg == GL_MSQL_TG_PROP ? "numeric"
								  : "int8";
	return 0;
}

int gl_msql_compare(gl_msql_frag *f, const gl_msql_dialect *d,
		    const char *expr, const gl_filter *flt, gl_kind kind,
		    enum gl_msql_target tg, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	gl_msql_val p;

	if (flt->op == GL_OP_IN) {
		if (n == 0) {
			gl_msql_sql(f, "FALSE");
			return 0;
		}
		gl_msql_sql(f, expr);
		gl_msql_sql(f, " IN (");
		for (size_t i = 0; i < n; i++) {
			if (gl_msql_filter_value(json_array_get(flt->values,
								i),
						 kind, tg, &p, err))
				return -1;
			if (i)
				gl_msql_sql(f, ", ");
			gl_msql_arg(f, &p);
		}
		gl_msql_sql(f, ")");
		return 0;
	}
	if (!gl_msql_op_sql(flt->op) || n < 1)
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter on %s",
			       flt->field ? flt->field->name : "tags");
	if (flt->op == GL_OP_LIKE)
		return d->like(f, expr, json_array_get(flt->values, 0), kind,
			       err);
	if (gl_msql_filter_value(json_array_get(flt->values, 0), kind, tg, &p,
				 err))
		return -1;
	gl_msql_sql(f, expr);
	gl_msql_sql(f, gl_msql_op_sql(flt->op));
	gl_msql_arg(f, &p);
	return 0;
}

const char *gl_msql_op_sql(unsigned op)
{
	switch (op) {
	case GL_OP_EQ:
		return " = ";
	case GL_OP_NEQ:
		return " != ";
	case GL_OP_LT:
		return " < ";
	case GL_OP_LTE:
		return " <= ";
	case GL_OP_GT:
		return " > ";
	case GL_OP_GTE:
		return " >= ";
	case GL_OP_LIKE:
		return " LIKE ";
	default:
		return NULL;
	}
}

void gl_msql_member_open(gl_msql_frag *f, const char *al, const char *table,
			 const char *t, int in_form)
{
	if (in_form)
		gl_msql_sqlf(f,
			     "+%s.id IN (SELECT %s.artifact_id FROM %s %s"
			     " WHERE ",
			     al, t, table, t);
	else
		gl_msql_sqlf(f,
			     "EXISTS (SELECT 1 FROM %s %s WHERE"
			     " %s.artifact_id = %s.id AND ",
			     table, t, t, al);
}

/* The semver comparison of a version filter: equality on (prefix, suffix,
 * meta), order on (prefix, suffix) - build metadata does not order. The
 * prefix is a signed 64-bit integer whose order is the semver order. */
static int version_cond(gl_msql_frag *f, const gl_msql_dialect *d,
			const char *al, const gl_filter *flt, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	char expr[48];

	if (flt->op == GL_OP_LIKE) {
		snprintf(expr, sizeof expr, "%s.version", al);
		return d->cond(f, expr, flt, GK_STRING, GL_MSQL_TG_TEXT, err);
	}
	if (!flt->vkeys || n < 1)
		return gl_fail(err, 500, NULL,
			       "DBError: version filter without version keys");
	if (flt->op == GL_OP_EQ || flt->op == GL_OP_NEQ ||
	    flt->op == GL_OP_IN) {
		if (flt->op == GL_OP_NEQ)
			gl_msql_sql(f, "NOT ");
		gl_msql_sql(f, "(");
		for (size_t i = 0; i < (flt->op == GL_OP_IN ? n : 1); i++) {
			const gl_vkey *k = &flt->vkeys[i];

			if (i)
				gl_msql_sql(f, " OR ");
			gl_msql_sqlf(f, "(%s.version_prefix = ", al);
			gl_msql_arg_int(f, k->prefix);
			gl_msql_sqlf(f, " AND %s.version_suffix = ", al);
			gl_msql_arg_text(f, k->suffix ? k->suffix : "");
			gl_msql_sqlf(f, " AND %s.version_meta = ", al);
			gl_msql_arg_text(f, k->meta ? k->meta : "");
			gl_msql_sql(f, ")");
		}
		gl_msql_sql(f, ")");
		return 0;
	}
	if (!gl_msql_op_sql(flt->op))
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter on"
			       " version");
	/* a row value compares lexicographically and can use an index */
	gl_msql_sqlf(f, "(%s.version_prefix, %s.version_suffix)%s(", al, al,
		     gl_msql_op_sql(flt->op));
	gl_msql_arg_int(f, flt->vkeys[0].prefix);
	gl_msql_sql(f, ", ");
	gl_msql_arg_text(f, flt->vkeys[0].suffix ? flt->vkeys[0].suffix : "");
	gl_msql_sql(f, ")");
	return 0;
}

int gl_msql_prop_match(gl_msql_frag *f, const gl_msql_dialect *d,
		       const char *p, const gl_filter *flt, gl_err *err)
{
	const gl_field *fd = flt->field;
	gl_kind kind = fd->kind == GK_LIST || fd->kind == GK_DICT ? fd->elem
								  : fd->kind;
	char expr[32];

	gl_msql_sqlf(f, "%s.name = ", p);
	gl_msql_arg_text(f, fd->name);
	switch (flt->kind) {
	case GF_PROP:
		gl_msql_sqlf(f, " AND %s.key = '' AND ", p);
		return d->cond(f, p, flt, kind, GL_MSQL_TG_PROP, err);
	case GF_DICT_KEY:
		if (flt->op != GL_OP_EQ && flt->op != GL_OP_IN)
			return gl_fail(err, 400, "BadRequest",
				       "Only eq and in"
				       " filter on the keys of %s",
				       fd->name);
		/* keys are strings whatever the element kind */
		gl_msql_sql(f, " AND ");
		snprintf(expr, sizeof expr, "%s.key", p);
		return d->cond(f, expr, flt, GK_STRING, GL_MSQL_TG_TEXT, err);
	case GF_DICT_VAL:
		gl_msql_sqlf(f, " AND %s.key = ", p);
		gl_msql_arg_text(f, flt->key ? flt->key : "");
		gl_msql_sql(f, " AND ");
		return d->cond(f, p, flt, kind, GL_MSQL_TG_PROP, err);
	default:
		return gl_fail(err, 500, NULL, "DBError: bad filter kind");
	}
}

/* One filter as a boolean SQL expression over artifact alias al. An
 * artifact without the property never matches a property filter, not
 * even `neq` (Glare's join semantics). */
static int filter_cond(gl_msql_frag *f, const gl_msql_dialect *d,
		       const char *al, const char *type_name,
		       const gl_filter *flt, int in_form, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	char expr[48];

	switch (flt->kind) {
	case GF_BASE:
		if (!flt->field || !is_base_column(flt->field->name))
			return gl_fail(err, 400, "BadRequest",
				       "Cannot filter on %s",
				       flt->field ? flt->field->name : "?");
		if (strcmp(flt->field->name, "version") == 0)
			return version_cond(f, d, al, flt, err);
		snprintf(expr, sizeof expr, "%s.%s", al, flt->field->name);
		if (is_time_column(flt->field->name))
			return d->cond(f, expr, flt, GK_DATETIME,
				       GL_MSQL_TG_INT, err);
		return d->cond(f, expr, flt, GK_STRING, GL_MSQL_TG_TEXT, err);
	case GF_PROP:
	case GF_DICT_KEY:
	case GF_DICT_VAL:
		if (!flt->field)
			return gl_fail(err, 500, NULL,
				       "DBError: filter without field");
		gl_msql_member_open(f, al, "properties", "p", in_form);
		/* the uncorrelated set: the type's rows only (the property
		 * key starts with the type's copy, schema step 7) */
		if (in_form && type_name) {
			gl_msql_sql(f, "p.type_name = ");
			gl_msql_arg_text(f, type_name);
			gl_msql_sql(f, " AND ");
		}
		if (gl_msql_prop_match(f, d, "p", flt, err))
			return -1;
		gl_msql_sql(f, ")");
		return 0;
	case GF_TAGS_ALL:
		if (!n) {
			gl_msql_sql(f, "TRUE");
			return 0;
		}
		gl_msql_sql(f, "(");
		for (size_t i = 0; i < n; i++) {
			gl_msql_val p;

			if (gl_msql_value(json_array_get(flt->values, i), 0,
					  &p, err))
				return -1;
			p.cast = "text";
			if (i)
				gl_msql_sql(f, " AND ");
			gl_msql_member_open(f, al, "tags", "t", in_form);
			gl_msql_sql(f, "t.value = ");
			gl_msql_arg(f, &p);
			gl_msql_sql(f, ")");
		}
		gl_msql_sql(f, ")");
		return 0;
	case GF_TAGS_ANY: {
		gl_filter in = *flt;

		if (!n) {
			gl_msql_sql(f, "TRUE");
			return 0;
		}
		in.op = GL_OP_IN;
		gl_msql_member_open(f, al, "tags", "t", in_form);
		if (d->cond(f, "t.value", &in, GK_STRING, GL_MSQL_TG_TEXT,
			    err))
			return -1;
		gl_msql_sql(f, ")");
		return 0;
	}
	}
	return gl_fail(err, 500, NULL, "DBError: bad filter kind");
}

int gl_msql_where(gl_msql_frag *f, const gl_msql_dialect *d,
		  const gl_list_query *q, const char *al, int skip,
		  int in_form, gl_err *err)
{
	int nor = 0;

	gl_msql_sqlf(f, "%s.status != 'deleted'", al);
	if (q->type_name) {
		gl_msql_sqlf(f, " AND %s.type_name = ", al);
		gl_msql_arg_text(f, q->type_name);
	}
	if (!q->see_all) {
		if (q->public_only || !q->project) {
			gl_msql_sqlf(f, " AND %s.visibility = 'public'", al);
		} else {
			gl_msql_sqlf(f, " AND (%s.owner = ", al);
			gl_msql_arg_text(f, q->project);
			gl_msql_sqlf(f, " OR %s.visibility = 'public')", al);
		}
	}
	for (int i = 0; i < q->nfilters; i++) {
		if (q->filters[i].or_group || i == skip)
			continue;
		gl_msql_sql(f, " AND ");
		if (filter_cond(f, d, al, q->type_name, &q->filters[i],
				in_form, err))
			return -1;
	}
	for (int i = 0; i < q->nfilters; i++) {
		if (!q->filters[i].or_group)
			continue;
		gl_msql_sql(f, nor++ ? " OR " : " AND (");
		if (filter_cond(f, d, al, q->type_name, &q->filters[i],
				in_form, err))
			return -1;
	}
	if (nor)
		gl_msql_sql(f, ")");
	return 0;
}

int gl_msql_counts_total(const gl_list_query *q)
{
	if (q->latest)
		return 0;
	for (int i = 0; i < q->nsorts; i++)
		if (q->sorts[i].field && !q->sorts[i].field->base)
			return 0;
	for (int i = 0; i < q->nfilters; i++) {
		const gl_field *fd = q->filters[i].field;

		if (q->filters[i].kind != GF_BASE || !fd ||
		    (strcmp(fd->name, "status") != 0 &&
		     strcmp(fd->name, "visibility") != 0 &&
		     strcmp(fd->name, "owner") != 0))
			return 0;
	}
	return 1;
}

static void sort_exists_on(gl_msql_frag *f, const gl_msql_dialect *d,
			   const gl_list_query *q, const char *id);

static int scope_filter(const gl_filter *flt)
{
	const char *n = flt->field ? flt->field->name : "";

	return flt->kind == GF_BASE &&
	       (strcmp(n, "status") == 0 || strcmp(n, "visibility") == 0 ||
		strcmp(n, "owner") == 0);
}

int gl_msql_scoped_rows(gl_msql_frag *f, const gl_msql_dialect *d,
			const gl_list_query *q, const char *al, int *one_row,
			gl_err *err)
{
	const gl_filter *flt = NULL;
	int skip = -1;
	char expr[48];
	size_t n;

	if (!q->type_name || q->latest)
		return 0;
	for (int i = 0; i < q->nfilters; i++) {
		if (scope_filter(&q->filters[i]))
			continue;
		if (flt || q->filters[i].or_group)
			return 0;
		flt = &q->filters[i];
		skip = i;
	}
	if (!flt)
		return 0;
	n = json_array_size(flt->values);
	/* an artifact matches when one of its rows does: at most one
	 * matching row each, or several */
	switch (flt->kind) {
	case GF_PROP:
		if (!flt->field)
			return 0;
		*one_row = flt->field->kind != GK_LIST;
		break;
	case GF_DICT_VAL:
		*one_row = 1;
		break;
	case GF_DICT_KEY:
		*one_row = flt->op != GL_OP_IN || n < 2;
		break;
	case GF_TAGS_ALL:
		if (n != 1)
			return 0;
		*one_row = 1; /* (value, artifact) is unique */
		break;
	case GF_TAGS_ANY:
		if (!n)
			return 0;
		*one_row = n == 1;
		break;
	default:
		return 0;
	}
	gl_msql_sqlf(f,
		     flt->kind == GF_TAGS_ALL || flt->kind == GF_TAGS_ANY
			     ? " FROM tags %s WHERE "
			     : " FROM properties %s WHERE ",
		     al);
	if (gl_msql_where(f, d, q, al, skip, 0, err))
		return -1;
	gl_msql_sql(f, " AND ");
	if (flt->kind == GF_TAGS_ALL || flt->kind == GF_TAGS_ANY) {
		gl_filter in = *flt;

		in.op = GL_OP_IN;
		snprintf(expr, sizeof expr, "%s.value", al);
		if (d->cond(f, expr, &in, GK_STRING, GL_MSQL_TG_TEXT, err))
			return -1;
	} else if (gl_msql_prop_match(f, d, al, flt, err)) {
		return -1;
	}
	return 1;
}

int gl_msql_scoped_count(gl_msql_frag *f, const gl_msql_dialect *d,
			 const gl_list_query *q, gl_err *err)
{
	gl_msql_frag rows = { 0 };
	int one_row = 0,
	    rc = gl_msql_scoped_rows(&rows, d, q, "a", &one_row, err);

	if (rc == 1) {
		gl_msql_sql(f, one_row ? "SELECT count(*)"
				       : "SELECT count(DISTINCT"
					 " a.artifact_id)");
		gl_msql_cat(f, &rows);
		/* a custom sort key's join drops artifacts without its
		 * value */
		sort_exists_on(f, d, q, "a.artifact_id");
	}
	gl_msql_frag_free(&rows);
	return rc;
}

/* No visible match of the same name (and type) has a higher (prefix,
 * suffix). Equivalent to rank() = 1 per name, but as a correlated probe
 * on the name/version index it lets the page query stop early instead of
 * ranking every match. */
int gl_msql_latest(gl_msql_frag *f, const gl_msql_dialect *d,
		   const gl_list_query *q, gl_err *err)
{
	gl_msql_sql(f,
		    " AND NOT EXISTS (SELECT 1 FROM artifacts b"
		    " WHERE b.name = a.name AND (b.version_prefix, b.version_suffix)"
		    " > (a.version_prefix, a.version_suffix) AND ");
	if (gl_msql_where(f, d, q, "b", -1, 0, err))
		return -1;
	gl_msql_sql(f, ")");
	return 0;
}

/* ------------------------------------------------------------------------
 * Sorting and keyset pagination.
 * ---------------------------------------------------------------------- */

int gl_msql_sort_keys(const gl_msql_dialect *d, const gl_list_query *q,
		      gl_msql_skey **out, int *nout, gl_err *err)
{
	gl_msql_skey *k = gl_xmalloc((size_t)(q->nsorts * 2 + 1) * sizeof *k);
	int n = 0, njoin = 0, has_id = 0;

	for (int i = 0; i < q->nsorts; i++) {
		const gl_field *fd = q->sorts[i].field;
		int desc = q->sorts[i].desc;

		if (!fd)
			continue;
		if (fd->base && strcmp(fd->name, "version") == 0) {
			snprintf(k[n].expr, sizeof k[n].expr,
				 "a.version_prefix");
			k[n].desc = desc;
			k[n++].notnull = 1;
			snprintf(k[n].expr, sizeof k[n].expr,
				 "a.version_suffix");
			k[n].desc = desc;
			k[n++].notnull = 1;
		} else if (fd->base) {
			if (!is_base_column(fd->name)) {
				free(k);
				return gl_fail(err, 400, "BadRequest",
					       "Cannot sort on %s", fd->name);
			}
			snprintf(k[n].expr, sizeof k[n].expr, "a.%s",
				 fd->name);
			k[n].desc = desc;
			k[n++].notnull = strcmp(fd->name, "description") !=
						 0 &&
					 strcmp(fd->name,
						"display_type_name") != 0 &&
					 strcmp(fd->name, "activated_at") != 0;
			has_id |= strcmp(fd->name, "id") == 0;
		} else {
			snprintf(k[n].expr, sizeof k[n].expr, "s%d.%s",
				 njoin++, d->sort_column(fd));
			k[n].desc = desc;
			k[n++].notnull =
				1; /* inner join, see gl_msql_sort_joins */
		}
	}
	/* a total order, whatever the caller appended */
	if (!has_id) {
		snprintf(k[n].expr, sizeof k[n].expr, "a.id");
		k[n].desc = 0;
		k[n++].notnull = 1;
	}
	*out = k;
	*nout = n;
	return 0;
}

void gl_msql_sort_joins(gl_msql_frag *f, const gl_msql_dialect *d,
			const gl_list_query *q, const char *kw, int from)
{
	int njoin = 0;

	for (int i = 0; i < q->nsorts; i++) {
		const gl_field *fd = q->sorts[i].field;

		if (!fd || fd->base)
			continue;
		if (from && njoin == 0) {
			njoin++;
			continue;
		}
		gl_msql_sqlf(f,
			     " %s properties s%d ON s%d.artifact_id = a.id"
			     " AND s%d.name = ",
			     kw, njoin, njoin, njoin);
		gl_msql_arg_text(f, fd->name);
		gl_msql_sqlf(f, " AND s%d.key = '' AND s%d.pos = 0", njoin,
			     njoin);
		if (d->sort_typed)
			gl_msql_sqlf(f, " AND s%d.%s IS NOT NULL", njoin,
				     d->sort_column(fd));
		njoin++;
	}
}

/* The custom sort keys' inner joins only drop artifacts without the
 * value, which a probe does without the join. (Not a membership set: the
 * set of every artifact having the field is large.) */
static void sort_exists_on(gl_msql_frag *f, const gl_msql_dialect *d,
			   const gl_list_query *q, const char *id)
{
	for (int i = 0; i < q->nsorts; i++) {
		const gl_field *fd = q->sorts[i].field;

		if (!fd || fd->base)
			continue;
		gl_msql_sqlf(f,
			     " AND EXISTS (SELECT 1 FROM properties s WHERE"
			     " s.artifact_id = %s AND s.name = ",
			     id);
		gl_msql_arg_text(f, fd->name);
		gl_msql_sql(f, " AND s.key = '' AND s.pos = 0");
		if (d->sort_typed)
			gl_msql_sqlf(f, " AND s.%s IS NOT NULL",
				     d->sort_column(fd));
		gl_msql_sql(f, ")");
	}
}

void gl_msql_sort_exists(gl_msql_frag *f, const gl_msql_dialect *d,
			 const gl_list_query *q)
{
	sort_exists_on(f, d, q, "a.id");
}

void gl_msql_page_end(gl_msql_frag *f, const gl_msql_dialect *d,
		      const gl_msql_skey *keys, int nkeys,
		      const gl_msql_val *mv, const gl_msql_val *lim)
{
	if (mv)
		gl_msql_marker_cond(f, keys, nkeys, mv);
	gl_msql_order_by(f, d, keys, nkeys);
	gl_msql_sql(f, " LIMIT ");
	gl_msql_arg(f, lim);
}

gl_msql_skey *gl_msql_top_keys(gl_msql_frag *f, const gl_msql_skey *keys,
			       int nkeys)
{
	gl_msql_skey *tk = gl_xmalloc((size_t)nkeys * sizeof *tk);
	int nk = 0;

	for (int i = 0; i < nkeys; i++) {
		tk[i] = keys[i];
		if (strcmp(keys[i].expr, "a.id") == 0)
			continue;
		gl_msql_sqlf(f, ", %s AS k%d", keys[i].expr, nk);
		snprintf(tk[i].expr, sizeof tk[i].expr, "t.k%d", nk++);
	}
	return tk;
}

void gl_msql_top_end(gl_msql_frag *f, const gl_msql_dialect *d,
		     const gl_msql_skey *keys, const gl_msql_skey *tk,
		     int nkeys, const gl_msql_val *mv, const gl_msql_val *lim,
		     const char *join)
{
	gl_msql_page_end(f, d, keys, nkeys, mv, lim);
	gl_msql_sqlf(f, ") t %s artifacts a ON a.id = t.id", join);
	gl_msql_order_by(f, d, tk, nkeys);
}

void gl_msql_marker_select(gl_msql_frag *f, const gl_msql_dialect *d,
			   const gl_list_query *q, const gl_msql_skey *k,
			   int n)
{
	gl_msql_sql(f, "SELECT ");
	for (int i = 0; i < n; i++) {
		if (i)
			gl_msql_sql(f, ", ");
		gl_msql_sql(f, k[i].expr);
	}
	gl_msql_sql(f, " FROM artifacts a");
	gl_msql_sort_joins(f, d, q, "LEFT JOIN", 0);
	gl_msql_sql(f, " WHERE a.id = ");
	gl_msql_arg_text(f, q->marker);
}

/* Rows after the marker in the sort order:
 *   k1 > m1 OR (k1 = m1 AND k2 > m2) OR ...
 * with > meaning "later" in each key's direction and NULL the smallest
 * value (SQLite's order, which PostgreSQL is asked for, gl_msql_order_by). A
 * bound on the first key alone comes first so the index range starts at
 * the marker. */
void gl_msql_marker_cond(gl_msql_frag *f, const gl_msql_skey *k, int n,
			 const gl_msql_val *mv)
{
	int terms = 0;

	gl_msql_sql(f, " AND ");
	if (k[0].notnull && mv[0].t != GL_MSQL_NULL) {
		gl_msql_sql(f, k[0].expr);
		gl_msql_sql(f, k[0].desc ? " <= " : " >= ");
		gl_msql_arg(f, &mv[0]);
		gl_msql_sql(f, " AND ");
	}
	gl_msql_sql(f, "(");
	for (int i = 0; i < n; i++) {
		/* nothing sorts after NULL going down */
		if (k[i].desc && mv[i].t == GL_MSQL_NULL)
			continue;
		gl_msql_sql(f, terms++ ? " OR (" : "(");
		for (int j = 0; j < i; j++) {
			gl_msql_sql(f, k[j].expr);
			if (mv[j].t == GL_MSQL_NULL) {
				gl_msql_sql(f, " IS NULL AND ");
			} else {
				gl_msql_sql(f, " = ");
				gl_msql_arg(f, &mv[j]);
				gl_msql_sql(f, " AND ");
			}
		}
		if (mv[i].t == GL_MSQL_NULL) {
			gl_msql_sql(f, k[i].expr);
			gl_msql_sql(f, " IS NOT NULL");
		} else if (k[i].desc && !k[i].notnull) {
			gl_msql_sqlf(f, "(%s < ", k[i].expr);
			gl_msql_arg(f, &mv[i]);
			gl_msql_sqlf(f, " OR %s IS NULL)", k[i].expr);
		} else {
			gl_msql_sql(f, k[i].expr);
			gl_msql_sql(f, k[i].desc ? " < " : " > ");
			gl_msql_arg(f, &mv[i]);
		}
		gl_msql_sql(f, ")");
	}
	if (!terms)
		gl_msql_sql(f, "FALSE");
	gl_msql_sql(f, ")");
}

void gl_msql_marker_free(gl_msql_val *mv, int n)
{
	for (int i = 0; mv && i < n; i++)
		free(mv[i].owned);
	free(mv);
}

/* Keys that are never NULL keep the plain form an index can serve. */
void gl_msql_order_by(gl_msql_frag *f, const gl_msql_dialect *d,
		      const gl_msql_skey *k, int n)
{
	gl_msql_sql(f, " ORDER BY ");
	for (int i = 0; i < n; i++)
		gl_msql_sqlf(f, "%s%s%s%s", i ? ", " : "", k[i].expr,
			     k[i].desc ? " DESC" : "",
			     !d->null_order || k[i].notnull ? ""
			     : k[i].desc                    ? " NULLS LAST"
							    : " NULLS FIRST");
}

/* ------------------------------------------------------------------------
 * The listing statements' LRU.
 * ---------------------------------------------------------------------- */

int gl_msql_lru_find(gl_msql_lru *l, const char *sql, int *hit)
{
	int victim = 0;

	l->tick++;
	for (int i = 0; i < GL_MSQL_DYN_CACHE; i++) {
		if (l->sql[i] && strcmp(l->sql[i], sql) == 0) {
			l->used[i] = l->tick;
			*hit = 1;
			return i;
		}
		if (l->used[i] < l->used[victim])
			victim = i;
	}
	*hit = 0;
	free(l->sql[victim]);
	l->sql[victim] = NULL;
	l->used[victim] = 0;
	return victim;
}

void gl_msql_lru_keep(gl_msql_lru *l, int slot, char *sql)
{
	l->sql[slot] = sql;
	l->used[slot] = l->tick;
}

void gl_msql_lru_free(gl_msql_lru *l)
{
	for (int i = 0; i < GL_MSQL_DYN_CACHE; i++)
		free(l->sql[i]);
	memset(l, 0, sizeof *l);
}

int gl_msql_is_write(const char *sql)
{
	while (*sql == ' ' || *sql == '\n' || *sql == '\t')
		sql++;
	return strncasecmp(sql, "SELECT", 6) != 0;
}
