/* meta_sql.h - what the two metadata backends share (private to
 * meta_sqlite.c and meta_pg.c; the engine sees only meta.h).
 *
 * Both stores keep the same tables and answer in the same API shape
 * (docs/storage.md), so everything that does not depend on the database
 * library or the SQL dialect lives once, in meta_sql.c:
 *   - the column lists of artifact and blob rows, and turning a row into
 *     the API shape (artifacts, blob objects, blob lists, quotas), read
 *     through a small row interface each backend implements;
 *   - what a put, a blob write or a scope check writes: the parameter
 *     lists, the doc, the tags and the property rows of an artifact, and
 *     the checks of those inputs;
 *   - listing SQL built from fragments that carry their parameters, and
 *     every listing piece that is the same in both dialects (conditions,
 *     sort keys, keyset pagination); the backend supplies the value
 *     comparisons and the few spellings that differ (gl_msql_dialect).
 *
 * Uses jansson, util.c (memory, strings, time), err.c (gl_fail).
 */
#ifndef GL_META_SQL_H
#define GL_META_SQL_H

#include "meta.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>

/* ---- row columns --------------------------------------------------------- */

/* An artifact row; the enum numbers the columns in the order of the list. */
#define ART_COLS                                                              \
	"a.id, a.type_name, a.name, a.version, a.owner, a.visibility,"        \
	" a.status, a.description, a.display_type_name, a.created_at,"        \
	" a.updated_at, a.activated_at, a.revision, a.doc"
/* clang-format off */
enum {
	C_ID, C_TYPE, C_NAME, C_VERSION, C_OWNER, C_VIS, C_STATUS, C_DESC,
	C_DTN, C_CREATED, C_UPDATED, C_ACTIVATED, C_REV, C_DOC, C_NCOLS
};
/* clang-format on */

/* A blob record (after its artifact_id, field, key where a query has
 * them); the enum numbers the columns from the first. */
#define BLOB_COLS                                                             \
	"b.url, b.size, b.md5, b.sha1, b.sha256, b.external, b.status,"       \
	" b.content_type, b.store, b.location, b.reserved, b.node, b.prev,"   \
	" b.temp, b.verified_at, b.verify_status, b.verify_error, b.extra"
/* clang-format off */
enum {
	B_URL, B_SIZE, B_MD5, B_SHA1, B_SHA256, B_EXTERNAL, B_STATUS, B_CTYPE,
	B_STORE, B_LOCATION, B_RESERVED, B_NODE, B_PREV, B_TEMP, B_VERIFIED,
	B_VSTATUS, B_VERROR, B_EXTRA, B_NCOLS
};
/* clang-format on */

/* ---- reading rows -----------------------------------------------------------
 * One row of a result, read through its backend (an sqlite3_stmt after a
 * step, or row `row` of a PGresult). Columns are 0-based. text: the bytes
 * of a non-NULL column (NUL-terminated) and their length; truth: a
 * boolean column. */
typedef struct gl_msql_row gl_msql_row;
struct gl_msql_row_ops {
	int (*null)(const gl_msql_row *r, int c);
	int64_t (*i64)(const gl_msql_row *r, int c);
	int (*truth)(const gl_msql_row *r, int c);
	const char *(*text)(const gl_msql_row *r, int c, size_t *len);
};
struct gl_msql_row {
	const struct gl_msql_row_ops *ops;
	const void *res;
	int row;
};

/* A column as JSON (new reference; NULL column -> null). text: bytes
 * that are not UTF-8 become U+FFFD; time: ISO-8601 with full precision
 * from microseconds, null out of the years 1-9999; json: a JSON text
 * parsed (U+0000 kept), NULL if it is not JSON. */
json_t *gl_msql_col_text(const gl_msql_row *r, int c);
json_t *gl_msql_col_int(const gl_msql_row *r, int c);
json_t *gl_msql_col_time(const gl_msql_row *r, int c);
json_t *gl_msql_col_json(const gl_msql_row *r, int c);

/* The blob object of a row whose BLOB_COLS start at column c0. */
json_t *gl_msql_blob_json(const gl_msql_row *r, int c0);
/* The artifact of an ART_COLS row (see the file comment of meta_sql.c
 * for the shape). type NULL: the all view. Always 0: what cannot be
 * decoded is left out and logged (reading is total). */
int gl_msql_artifact_json(const gl_msql_row *r, const gl_type *type,
			  json_t **out, gl_err *err);
/* Attach the blob record of a row (field at column cf, key at cf + 1,
 * then BLOB_COLS) to af (NULL: nothing to do). */
void gl_msql_attach_blob(json_t *af, const gl_type *type, const gl_msql_row *r,
			 int cf);
/* The same for a row (artifact_id, field, key, BLOB_COLS) of a page:
 * the artifact is looked up in idx (id -> artifact). */
void gl_msql_attach_page_blob(json_t *idx, const gl_type *type,
			      const gl_msql_row *r);
/* Shapes of list rows (new references):
 *   deleted  (id, type_name)            -> {id, type_name}
 *   gc       (store, location)          -> {store, location}
 *   blob     (artifact_id, type_name, field, key, BLOB_COLS)
 *                                       -> {artifact_id, type_name, field,
 *                                           key, blob} */
json_t *gl_msql_deleted_row(const gl_msql_row *r);
json_t *gl_msql_gc_row(const gl_msql_row *r);
/* kind, target, arg, attempts, next_at, queued_at, error */
json_t *gl_msql_cleanup_row(const gl_msql_row *r);
json_t *gl_msql_blob_row(const gl_msql_row *r);
typedef json_t *(*gl_msql_shape_fn)(const gl_msql_row *r);

/* Quotas: the result object of gl_meta_quotas_get (a named project is
 * always a key), then each (project_id, quota_name, quota_value) row. */
json_t *gl_msql_quotas_new(const char *project);
void gl_msql_quota_row(json_t *res, const gl_msql_row *r);

/* A page of a listing: the artifacts in order, by id, and their ids. */
typedef struct gl_msql_page {
	json_t *arr, *idx, *ids;
} gl_msql_page;
void gl_msql_page_init(gl_msql_page *pg);
void gl_msql_page_add(gl_msql_page *pg, json_t *af); /* takes af */
/* The ids as a JSON array text (for the blobs-of-a-page query). */
char *gl_msql_page_ids(const gl_msql_page *pg);
/* Frees everything but the array, which is returned (or freed, !keep). */
json_t *gl_msql_page_done(gl_msql_page *pg, int keep);

/* ---- values and parameter lists ---------------------------------------------
 * A typed SQL value. SQLite binds it as it is; PostgreSQL sends it as
 * text and writes `cast` (or the type's default: int8, numeric, text)
 * into a listing placeholder, so one SQL text always means the same
 * parameter types. */
enum { GL_MSQL_NULL, GL_MSQL_INT, GL_MSQL_REAL, GL_MSQL_TEXT, GL_MSQL_BIN };

typedef struct gl_msql_val {
	int t;
	int64_t i;     /* GL_MSQL_INT (booleans are 0/1, as stored) */
	double d;      /* GL_MSQL_REAL */
	const char *s; /* GL_MSQL_TEXT, GL_MSQL_BIN: borrowed unless owned */
	int len;       /* bytes of s; -1: NUL-terminated */
	char *owned;   /* s when the value owns it */
	const char *cast; /* PostgreSQL type, NULL: by t */
} gl_msql_val;

/* The numbered parameters of a fixed statement ($1 / ?1 is v[0]); unset
 * ones are NULL, n is the highest set. */
#define GL_MSQL_VALS_MAX 24
typedef struct gl_msql_vals {
	int n;
	gl_msql_val v[GL_MSQL_VALS_MAX];
} gl_msql_vals;

void gl_msql_set_text(gl_msql_vals *p, int i,
		      const char *s); /* NULL: SQL NULL */
void gl_msql_set_int(gl_msql_vals *p, int i, int64_t v);
void gl_msql_set_own(gl_msql_vals *p, int i, char *s); /* takes s */
void gl_msql_set_bin(gl_msql_vals *p, int i, const void *data, int len);
void gl_msql_vals_free(gl_msql_vals *p);

/* A JSON scalar as a value: integers exact, booleans 0/1, strings with
 * their length (borrowed); anything else NULL. */
void gl_msql_json_val(const json_t *v, gl_msql_val *out);

/* ---- what a write stores ------------------------------------------------- */

/* gl_meta_put's required inputs (500 otherwise). */
int gl_msql_put_check(const gl_type *type, const json_t *af, const gl_vkey *vk,
		      gl_err *err);
/* Parameters 1..17 of the artifact insert / update: id, type_name, name,
 * version, the version key (3), owner, visibility, status, description,
 * display_type_name, created/updated/activated_at (microseconds; missing
 * created/updated are now), revision rev + 1, doc. -1 + err: a bad
 * timestamp. */
int gl_msql_artifact_vals(gl_msql_vals *p, const gl_type *type,
			  const json_t *af, const gl_vkey *vk, int64_t rev,
			  gl_err *err);
/* The artifact's tags that are strings (new array). */
json_t *gl_msql_tags(const json_t *af);
/* Each property row of the artifact: custom scalars, List elements, Dict
 * entries and the base metadata's entries; nulls and non-scalars are not
 * stored, DateTime strings come as integers of microseconds. Stops at
 * (and returns) the first non-zero return of fn. */
typedef int (*gl_msql_prop_fn)(void *ctx, const char *name, const char *key,
			       int pos, const json_t *v);
int gl_msql_each_prop(const gl_type *type, const json_t *af,
		      gl_msql_prop_fn fn, void *ctx);
/* Parameters 1..23 of the blob record write: artifact_id, field, key, the
 * blob keys that have columns (prev as JSON text followed by its store and
 * location), extra (keys without a column, JSON text or NULL). blob must
 * be an object (500 otherwise). */
int gl_msql_blob_vals(gl_msql_vals *p, const char *artifact_id,
		      const char *field, const char *key, const json_t *blob,
		      gl_err *err);
/* Parameters 1..7 of the scope check (7, the owner, only if owner). */
void gl_msql_scope_vals(gl_msql_vals *p, const char *type_name,
			const char *name, const gl_vkey *vk, const char *owner,
			const char *exclude_id);
/* gl_meta_quotas_set: projects must be a list; each project's quotas are
 * cleared, then each named quota added. */
int gl_msql_quotas_check(const json_t *projects, gl_err *err);
typedef struct gl_msql_quota_ops {
	int (*clear)(void *ctx, const char *project, gl_err *err);
	int (*add)(void *ctx, const char *project, const char *name,
		   int64_t value, gl_err *err);
} gl_msql_quota_ops;
int gl_msql_quotas_each(const json_t *projects, const gl_msql_quota_ops *ops,
			void *ctx, gl_err *err);

/* Where a store's schema version v stands against the one this glared
 * needs (docs/storage.md, "Schema versions"): 0 current, 1 to migrate
 * (empty, or older and upgrade), -1 + err (newer, older without upgrade,
 * or tables without a version: not a glared database). */
int gl_msql_schema_check(int64_t v, int64_t tables, int upgrade, int need,
			 gl_err *err);

/* JSON text (compact; any value) of v, malloc'ed. */
char *gl_msql_dump(const json_t *v);
/* A timestamp from the API shape (ISO-8601 string) or an integer of
 * microseconds: 1 set, 0 null/absent, -1 malformed. */
int gl_msql_json_time(const json_t *v, int64_t *us);

/* ---- statements of other units (gl_meta_exec) ------------------------------
 * How many distinct statement texts a connection keeps prepared for them
 * (a bug beyond that: the texts are constants). */
#define GL_MSQL_EXT_MAX 48
/* 1 if sql writes: it does not start with SELECT. */
int gl_msql_is_write(const char *sql);

/* ---- listing indexes ---------------------------------------------------------
 * The indexes the listing SQL below relies on, the same in both dialects
 * (schema version 2 of each backend). A migration never changes once
 * shipped: a new index goes into a new schema version of both backends. */
/* clang-format off */
#define GL_MSQL_LISTING_INDEXES                                                    \
	/* default sort (created_at) within a type; the scope columns and id  \
	 * make it covering for the visibility test and the property probes, \
	 * so rows that do not match are never read from the table */        \
	"CREATE INDEX IF NOT EXISTS artifacts_type_created"                   \
	" ON artifacts(type_name, created_at, status, visibility, owner, id);" \
	"CREATE INDEX IF NOT EXISTS artifacts_created ON artifacts(created_at);" \
	"CREATE INDEX IF NOT EXISTS artifacts_type_updated"                   \
	" ON artifacts(type_name, updated_at);"                               \
	"CREATE INDEX IF NOT EXISTS artifacts_type_version"                   \
	" ON artifacts(type_name, version_prefix, version_suffix);"           \
	/* uniqueness check, name filters and sort, version=latest */         \
	"CREATE INDEX IF NOT EXISTS artifacts_type_name_version"              \
	" ON artifacts(type_name, name, version_prefix, version_suffix,"      \
	" version_meta);"                                                     \
	"CREATE INDEX IF NOT EXISTS artifacts_name_version"                   \
	" ON artifacts(name, version_prefix, version_suffix);"                \
	/* quotas (count per owner) and owner filters */                      \
	"CREATE INDEX IF NOT EXISTS artifacts_owner ON artifacts(owner, type_name);"

/* ---- scope copies (schema version 7 of each backend) -------------------------
 * Indexes over the copies of the artifact's scope columns (see
 * gl_msql_scoped_count): tags by type and value, artifacts by type and version
 * (replacing the version-only index, whose prefix they keep), each
 * followed by the scope so a total is counted from the index alone. The
 * property index differs by backend (one typeless `value` column in
 * SQLite, value_num / value_text in PostgreSQL). */
#define GL_MSQL_SCOPE_INDEXES                                                      \
	"CREATE INDEX tags_scope ON tags(type_name, value, status, visibility,"\
	" owner, artifact_id);"                                               \
	"DROP INDEX IF EXISTS artifacts_type_version;"                        \
	"CREATE INDEX artifacts_type_version_scope ON artifacts(type_name,"   \
	" version_prefix, version_suffix, status, visibility, owner);"

/* ---- events (schema version 5 of each backend) -------------------------------
 * The indexes of the subscriptions and the outbox (events.c): the due rows
 * of a sink, a subscription's deliveries, and the pruning of finished
 * rows. */
#define GL_MSQL_EVENTS_INDEXES                                                     \
	"CREATE INDEX subscriptions_owner ON subscriptions(owner);"           \
	"CREATE INDEX outbox_due ON outbox(sink, next_at)"                    \
	" WHERE state = 'pending';"                                           \
	"CREATE INDEX outbox_subscription ON outbox(subscription_id, seq)"    \
	" WHERE subscription_id IS NOT NULL;"                                 \
	"CREATE INDEX outbox_done ON outbox(done_at) WHERE state <> 'pending';"

/* ---- counters (schema version 6 of each backend) -----------------------------
 * Their first values, from the rows already there (the step that creates
 * quota_usage and artifact_counts in both backends). */
#define GL_MSQL_BLOB_BYTES(r)                                                      \
	"(CASE WHEN " r ".status = 'saving' THEN coalesce(" r ".reserved, 0)" \
	" ELSE coalesce(" r ".size, 0) END)"
#define GL_MSQL_COUNTERS_INIT                                                      \
	"INSERT INTO quota_usage (project_id, type_name, artifacts, bytes)"   \
	" SELECT a.owner, a.type_name, count(*), coalesce(sum(ab.bytes), 0)"  \
	" FROM artifacts a LEFT JOIN (SELECT b.artifact_id,"                  \
	" sum(" GL_MSQL_BLOB_BYTES("b") ") AS bytes FROM blobs b"                  \
	" GROUP BY b.artifact_id) ab ON ab.artifact_id = a.id"                \
	" GROUP BY a.owner, a.type_name;"                                     \
	"INSERT INTO artifact_counts (type_name, owner, visibility, status, n)" \
	" SELECT type_name, owner, visibility, status, count(*)"              \
	" FROM artifacts GROUP BY type_name, owner, visibility, status;"
/* clang-format on */

/* ---- listing SQL ------------------------------------------------------------
 * A fragment is SQL text plus its parameters in text order, so fragments
 * can be reused and concatenated (page and count queries share the
 * conditions). A parameter is a marker byte in the text until the backend
 * renders its placeholder (gl_msql_frag_render). */
typedef struct gl_msql_frag {
	gl_sb sql;
	gl_msql_val *pv;
	int np, cap;
} gl_msql_frag;

void gl_msql_sql(gl_msql_frag *f, const char *s);
__attribute__((format(printf, 2, 3))) void gl_msql_sqlf(gl_msql_frag *f,
							const char *fmt, ...);
void gl_msql_arg(gl_msql_frag *f,
		 const gl_msql_val *v); /* copies v, not its ownership */
void gl_msql_arg_text(gl_msql_frag *f, const char *s);
void gl_msql_arg_int(gl_msql_frag *f, int64_t v);
void gl_msql_cat(gl_msql_frag *dst, const gl_msql_frag *src);
void gl_msql_frag_free(gl_msql_frag *f);
/* The statement text (malloc'ed), each parameter written by ph (k: its
 * 1-based number). */
typedef void (*gl_msql_ph_fn)(gl_sb *out, int k, const gl_msql_val *v);
char *gl_msql_frag_render(const gl_msql_frag *f, gl_msql_ph_fn ph);

/* What a filter value is compared with: an integer column of artifacts,
 * a text column, or a property row's value. */
enum gl_msql_target { GL_MSQL_TG_INT, GL_MSQL_TG_TEXT, GL_MSQL_TG_PROP };

/* What differs between the dialects in the shared listing pieces. */
typedef struct gl_msql_dialect {
	/* expr compared with the filter's values: "expr OP ?" or
	 * "expr IN (...)"; for GL_MSQL_TG_PROP expr is the alias of a properties
	 * row, whose value column(s) the backend knows. */
	int (*cond)(gl_msql_frag *f, const char *expr, const gl_filter *flt,
		    gl_kind kind, enum gl_msql_target tg, gl_err *err);
	/* expr LIKE the value v (gl_msql_compare) */
	int (*like)(gl_msql_frag *f, const char *expr, const json_t *v,
		    gl_kind kind, gl_err *err);
	/* the properties column a custom sort key sorts on */
	const char *(*sort_column)(const gl_field *fd);
	/* 1: that column may be NULL in a row (a value of another kind), so
	 * the sort joins ask for IS NOT NULL */
	int sort_typed;
	/* 1: ORDER BY spells out SQLite's NULL order on nullable keys */
	int null_order;
} gl_msql_dialect;

/* A filter value as a parameter; to_us: DateTime strings become
 * microseconds (400 when malformed). Non-scalars are 400. */
int gl_msql_value(const json_t *v, int to_us, gl_msql_val *p, gl_err *err);
/* The same for what it is compared with: DateTime strings become
 * microseconds except against text; the cast is text against text (a
 * number is its text, as SQLite's TEXT affinity makes it) and for
 * strings, numeric for floats and against a property, else int8. */
int gl_msql_filter_value(const json_t *v, gl_kind kind, enum gl_msql_target tg,
			 gl_msql_val *p, gl_err *err);
/* expr compared with the filter's values: "expr OP ?", "expr IN (?, ...)"
 * (FALSE for an empty list), LIKE through the dialect. */
int gl_msql_compare(gl_msql_frag *f, const gl_msql_dialect *d,
		    const char *expr, const gl_filter *flt, gl_kind kind,
		    enum gl_msql_target tg, gl_err *err);
/* " = ", " != ", " < ", ..., " LIKE " for one GL_OP_* bit; NULL for in. */
const char *gl_msql_op_sql(unsigned op);

/* The start of a property or tag test over artifact alias al, closed by
 * ")": a correlated EXISTS probe, or (in_form) membership in the set of
 * matching artifacts (see meta_sqlite.c for when that is faster). */
void gl_msql_member_open(gl_msql_frag *f, const char *al, const char *table,
			 const char *t, int in_form);
/* The property rows a filter is about, over properties alias p, with the
 * value test: "p.name = ? AND p.key ... AND <value test>". */
int gl_msql_prop_match(gl_msql_frag *f, const gl_msql_dialect *d,
		       const char *p, const gl_filter *flt, gl_err *err);
/* Everything that selects artifacts over alias al: not deleted, the type,
 * the caller's scope, the AND filters (but filter skip) and the OR group. */
int gl_msql_where(gl_msql_frag *f, const gl_msql_dialect *d,
		  const gl_list_query *q, const char *al, int skip,
		  int in_form, gl_err *err);
/* 1 when the total of q can be summed from artifact_counts (alias a, the
 * same gl_msql_where): no latest, no custom sort key (its join drops
 * artifacts without the value), and filters on status, visibility and
 * owner only, the columns the counts are kept by. */
int gl_msql_counts_total(const gl_list_query *q);
/* The total of q counted from the scope copies (schema step 7) when q has
 * one property, dict or tag filter, otherwise filters gl_msql_counts_total
 * takes and no latest (custom sort keys are probed): the SELECT over
 * `properties` or `tags` alone (alias a, whose type_name, owner,
 * visibility and status repeat the artifact's), an index-only range scan
 * instead of a probe of each match's artifact row. Returns 1 with the
 * statement in f, 0 when q has another shape (f untouched), -1 on a bad
 * filter. */
int gl_msql_scoped_count(gl_msql_frag *f, const gl_msql_dialect *d,
			 const gl_list_query *q, gl_err *err);
/* The rows gl_msql_scoped_count counts: " FROM properties|tags <al> WHERE
 * ..." (the scope on their copies and the one filter). *one_row: an
 * artifact has at most one of them. Returns 1, 0 when q has another
 * shape (f untouched), -1 on a bad filter. */
int gl_msql_scoped_rows(gl_msql_frag *f, const gl_msql_dialect *d,
			const gl_list_query *q, const char *al, int *one_row,
			gl_err *err);
/* version=latest: " AND NOT EXISTS (a higher version of the name)". */
int gl_msql_latest(gl_msql_frag *f, const gl_msql_dialect *d,
		   const gl_list_query *q, gl_err *err);

/* One sort column: version sorts on two, a custom key on its property row
 * joined as sN; a.id is appended for a total order. */
typedef struct gl_msql_skey {
	char expr[48];
	int desc;
	int notnull; /* the column is never NULL in the result */
} gl_msql_skey;
int gl_msql_sort_keys(const gl_msql_dialect *d, const gl_list_query *q,
		      gl_msql_skey **out, int *nout, gl_err *err);
/* The property row of each custom sort key as sN. kw "JOIN" drops
 * artifacts without the value, as Glare does; "LEFT JOIN" is for reading
 * the marker. from: s0 is already in the FROM clause. */
void gl_msql_sort_joins(gl_msql_frag *f, const gl_msql_dialect *d,
			const gl_list_query *q, const char *kw, int from);
/* For counting: the sort joins' effect as probes. */
void gl_msql_sort_exists(gl_msql_frag *f, const gl_msql_dialect *d,
			 const gl_list_query *q);
/* A page sorted from narrow rows (the stores' driven custom-sort pages):
 * gl_msql_top_keys writes ", <key> AS kN" for each sort key but a.id and
 * returns the keys as the outer query sees them (t.kN; the caller frees);
 * gl_msql_top_end closes the inner query (marker, order, LIMIT), joins the
 * page's ids to their artifact rows with `join` and orders the outer
 * query. */
gl_msql_skey *gl_msql_top_keys(gl_msql_frag *f, const gl_msql_skey *keys,
			       int nkeys);
/* The end of a page query: the marker's bound, the order, the LIMIT. */
void gl_msql_page_end(gl_msql_frag *f, const gl_msql_dialect *d,
		      const gl_msql_skey *keys, int nkeys,
		      const gl_msql_val *mv, const gl_msql_val *lim);
void gl_msql_top_end(gl_msql_frag *f, const gl_msql_dialect *d,
		     const gl_msql_skey *keys, const gl_msql_skey *tk,
		     int nkeys, const gl_msql_val *mv, const gl_msql_val *lim,
		     const char *join);
/* The query reading the marker's sort values. */
void gl_msql_marker_select(gl_msql_frag *f, const gl_msql_dialect *d,
			   const gl_list_query *q, const gl_msql_skey *k,
			   int n);
/* " AND <rows after the marker>" (keyset pagination); mv: its values. */
void gl_msql_marker_cond(gl_msql_frag *f, const gl_msql_skey *k, int n,
			 const gl_msql_val *mv);
void gl_msql_marker_free(gl_msql_val *mv, int n);
void gl_msql_order_by(gl_msql_frag *f, const gl_msql_dialect *d,
		      const gl_msql_skey *k, int n);

/* The listing statements a connection keeps prepared, by SQL text, least
 * recently used out. The backend keeps its statement handles in a
 * parallel array, by slot. */
#define GL_MSQL_DYN_CACHE 16
typedef struct gl_msql_lru {
	char *sql[GL_MSQL_DYN_CACHE];
	uint64_t used[GL_MSQL_DYN_CACHE];
	uint64_t tick;
} gl_msql_lru;
/* The slot of sql. *hit: it holds sql; otherwise it is the slot to reuse,
 * already emptied of its text: release its handle, prepare, and on
 * success gl_msql_lru_keep. */
int gl_msql_lru_find(gl_msql_lru *l, const char *sql, int *hit);
void gl_msql_lru_keep(gl_msql_lru *l, int slot, char *sql); /* takes sql */
void gl_msql_lru_free(gl_msql_lru *l);                      /* empties it */

#endif
