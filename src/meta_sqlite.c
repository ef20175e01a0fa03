/* meta_sqlite.c - the metadata store on SQLite 3 (see meta.h).
 *
 * One connection per worker process, in WAL mode so readers never wait for
 * the writer; writers serialise through BEGIN IMMEDIATE (gl_meta_begin).
 * The layout (docs/storage.md):
 *   artifacts   one row per artifact: a real column per base field (plus
 *               the semver sort key of the version as three columns) and
 *               `doc`, the JSON of every other non-blob field;
 *   tags        one row per tag (for the tags / tags-any filters);
 *   properties  one typed row per custom scalar, List element and Dict
 *               entry (and per base `metadata` entry), so filters and
 *               custom sort keys run on an index instead of parsing JSON;
 *   blobs       one row per blob / folder entry, API and internal keys;
 *   quotas, gc_queue, blob_data (the "database" blob store).
 *
 * Fixed statements are prepared once (SQLITE_PREPARE_PERSISTENT) and kept
 * for the life of the connection; listing builds its SQL from the query
 * shape only (values are always bound parameters) and keeps the last few
 * shapes prepared in a small LRU.
 *
 * Listing plan (docs/storage.md; measured in bench/meta_list.c): filters
 * on properties are correlated EXISTS probes, which let SQLite walk the
 * sort index and stop after one page. When one filter matches only a few
 * rows (a bounded count on the property index tells), the query is instead
 * driven from that filter's rows, so a selective filter does not walk the
 * whole type; a custom sort key is walked in value order on its property
 * rows. Counts use membership sets instead of probes.
 *
 * Uses sqlite3, jansson, util.c (time), fault.c (gl_fail).
 */
#include "meta_backend.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

/* A filter matching fewer property/tag rows than this drives the listing
 * query (see the file comment). Measured at 100k artifacts (bench/
 * meta_list.c): a driven page costs ~1.8 us per matching row (4000 rows:
 * ~7 ms), while walking the sort index with EXISTS probes costs 0.5-0.8 us
 * per artifact walked - under 1 ms when matches are common, but the whole
 * type (50-80 ms) when none of them is visible to the caller. */
#ifndef DRIVE_THRESHOLD /* bench/meta_list.c tries other values */
#define DRIVE_THRESHOLD 4000
#endif
/* Listing statements kept prepared, by SQL text. */
#define DYN_CACHE 16
/* Piece size for streaming the database blob store. */
#define DATA_CHUNK (1 << 20)

/* ------------------------------------------------------------------------
 * Schema. Each step moves the database from version i to i + 1 and runs in
 * the same transaction as the PRAGMA user_version that records it; later
 * versions append steps, never edit shipped ones.
 * ---------------------------------------------------------------------- */

static const char schema_v1[] =
	/* base fields as columns; created/updated/activated_at in
	 * microseconds since the epoch; doc: JSON of the other fields */
	"CREATE TABLE artifacts ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" type_name TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" version TEXT NOT NULL,"
	" version_prefix INTEGER NOT NULL,"
	" version_suffix TEXT NOT NULL,"
	" version_meta TEXT NOT NULL,"
	" owner TEXT NOT NULL,"
	" visibility TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" description TEXT,"
	" display_type_name TEXT,"
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL,"
	" activated_at INTEGER,"
	" revision INTEGER NOT NULL,"
	" doc TEXT NOT NULL);"
	"CREATE TABLE tags ("
	" value TEXT NOT NULL,"
	" artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,"
	" PRIMARY KEY (value, artifact_id)) WITHOUT ROWID;"
	"CREATE INDEX tags_artifact ON tags(artifact_id);"
	/* STRICT so that `ANY` keeps every value exactly as bound: in a
	 * non-strict table ANY means NUMERIC affinity and the string "10"
	 * would become the integer 10 */
	"CREATE TABLE properties ("
	" name TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value ANY NOT NULL,"
	" artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL,"
	" PRIMARY KEY (name, key, value, artifact_id, pos)) STRICT, WITHOUT ROWID;"
	"CREATE INDEX properties_artifact ON properties(artifact_id, name, key);"
	/* prev_store/prev_location repeat the replaced record's data key so
	 * reference counting sees data a failed re-upload would restore */
	"CREATE TABLE blobs ("
	" artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,"
	" field TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" url TEXT, size INTEGER, md5 TEXT, sha1 TEXT, sha256 TEXT,"
	" external INTEGER NOT NULL DEFAULT 0,"
	" status TEXT, content_type TEXT,"
	" store TEXT, location TEXT, reserved INTEGER, node TEXT,"
	" prev TEXT, prev_store TEXT, prev_location TEXT, temp TEXT,"
	" verified_at INTEGER, verify_status TEXT, verify_error TEXT,"
	" extra TEXT,"
	" PRIMARY KEY (artifact_id, field, key));"
	"CREATE INDEX blobs_location ON blobs(store, location);"
	"CREATE INDEX blobs_prev_location ON blobs(prev_store, prev_location)"
	" WHERE prev_location IS NOT NULL;"
	"CREATE INDEX blobs_verify ON blobs(verified_at) WHERE external = 1;"
	"CREATE INDEX blobs_saving ON blobs(artifact_id) WHERE status = 'saving';"
	"CREATE TABLE quotas ("
	" project_id TEXT NOT NULL,"
	" quota_name TEXT NOT NULL,"
	" quota_value INTEGER NOT NULL,"
	" PRIMARY KEY (project_id, quota_name)) WITHOUT ROWID;"
	/* a rowid table: incremental blob I/O needs the rowid */
	"CREATE TABLE blob_data ("
	" location TEXT NOT NULL PRIMARY KEY,"
	" data BLOB NOT NULL);"
	"CREATE TABLE gc_queue ("
	" store TEXT NOT NULL,"
	" location TEXT NOT NULL,"
	" queued_at INTEGER NOT NULL,"
	" PRIMARY KEY (store, location)) WITHOUT ROWID;";

/* Listing indexes. IF NOT EXISTS: an operator may have added one by hand.
 *
 * Then planner statistics. Without them SQLite assumes ~10 rows per
 * indexed value, so `type_name = ?` looks as selective as `name = ?` and
 * it walks the created_at index for a name filter (80 ms instead of 0.02
 * ms at 100k artifacts). ANALYZE fixes that on a grown database, but it
 * costs seconds and a sampled one (analysis_limit) under-counts the rows
 * per type by orders of magnitude; so the schema ships sqlite_stat1 rows
 * describing the shape glared is tuned for: 1M artifacts, 100k per type,
 * ~10 versions per name, 8 property rows and 2 tags per artifact. Plans
 * only depend on the ratios; an operator's ANALYZE replaces the rows. */
static const char schema_v2[] =
	/* default sort (created_at) within a type; the scope columns and id
	 * make it covering for the visibility test and the property probes,
	 * so rows that do not match are never read from the table */
	"CREATE INDEX IF NOT EXISTS artifacts_type_created"
	" ON artifacts(type_name, created_at, status, visibility, owner, id);"
	"CREATE INDEX IF NOT EXISTS artifacts_created ON artifacts(created_at);"
	"CREATE INDEX IF NOT EXISTS artifacts_type_updated"
	" ON artifacts(type_name, updated_at);"
	"CREATE INDEX IF NOT EXISTS artifacts_type_version"
	" ON artifacts(type_name, version_prefix, version_suffix);"
	/* uniqueness check, name filters and sort, version=latest */
	"CREATE INDEX IF NOT EXISTS artifacts_type_name_version"
	" ON artifacts(type_name, name, version_prefix, version_suffix,"
	" version_meta);"
	"CREATE INDEX IF NOT EXISTS artifacts_name_version"
	" ON artifacts(name, version_prefix, version_suffix);"
	/* quotas (count per owner) and owner filters */
	"CREATE INDEX IF NOT EXISTS artifacts_owner ON artifacts(owner, type_name);"
	"ANALYZE sqlite_schema;" /* creates sqlite_stat1 */
	"DELETE FROM sqlite_stat1;"
	"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES"
	" ('artifacts', 'sqlite_autoindex_artifacts_1', '1000000 1'),"
	" ('artifacts', 'artifacts_type_created', '1000000 100000 1 1 1 1 1'),"
	" ('artifacts', 'artifacts_created', '1000000 1'),"
	" ('artifacts', 'artifacts_type_updated', '1000000 100000 1'),"
	" ('artifacts', 'artifacts_type_version', '1000000 100000 5000 4000'),"
	" ('artifacts', 'artifacts_type_name_version', '1000000 100000 10 2 1 1'),"
	" ('artifacts', 'artifacts_name_version', '1000000 10 2 1'),"
	" ('artifacts', 'artifacts_owner', '1000000 1000 200'),"
	" ('tags', 'tags', '2000000 100 1'),"
	" ('tags', 'tags_artifact', '2000000 2'),"
	" ('properties', 'properties', '8000000 400000 200000 50 1 1'),"
	" ('properties', 'properties_artifact', '8000000 8 2 1'),"
	" ('blobs', 'sqlite_autoindex_blobs_1', '1000000 2 1 1'),"
	" ('blobs', 'blobs_location', '1000000 300000 1'),"
	" ('blobs', 'blobs_prev_location', '10 5 1'),"
	" ('blobs', 'blobs_verify', '10000 1'),"
	" ('blobs', 'blobs_saving', '10 1');"
	"ANALYZE sqlite_schema;"; /* reloads the statistics */

/* The scrubber's query (gl_meta_deleted): deleted artifacts by age. */
static const char schema_v3[] =
	"CREATE INDEX IF NOT EXISTS artifacts_deleted ON artifacts(updated_at)"
	" WHERE status = 'deleted';"
	"DELETE FROM sqlite_stat1 WHERE idx = 'artifacts_deleted';"
	"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES"
	" ('artifacts', 'artifacts_deleted', '10000 1');"
	"ANALYZE sqlite_schema;";

static const char *const migrations[] = { schema_v1, schema_v2, schema_v3 };
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ------------------------------------------------------------------------
 * Cached statements.
 * ---------------------------------------------------------------------- */

#define ART_COLS                                                              \
	"a.id, a.type_name, a.name, a.version, a.owner, a.visibility,"        \
	" a.status, a.description, a.display_type_name, a.created_at,"        \
	" a.updated_at, a.activated_at, a.revision, a.doc"
enum {
	C_ID, C_TYPE, C_NAME, C_VERSION, C_OWNER, C_VIS, C_STATUS, C_DESC,
	C_DTN, C_CREATED, C_UPDATED, C_ACTIVATED, C_REV, C_DOC
};

#define BLOB_COLS                                                             \
	"b.url, b.size, b.md5, b.sha1, b.sha256, b.external, b.status,"       \
	" b.content_type, b.store, b.location, b.reserved, b.node, b.prev,"   \
	" b.temp, b.verified_at, b.verify_status, b.verify_error, b.extra"
enum {
	B_URL, B_SIZE, B_MD5, B_SHA1, B_SHA256, B_EXTERNAL, B_STATUS, B_CTYPE,
	B_STORE, B_LOCATION, B_RESERVED, B_NODE, B_PREV, B_TEMP, B_VERIFIED,
	B_VSTATUS, B_VERROR, B_EXTRA, B_NCOLS
};

enum stmt_id {
	S_SP_BEGIN, S_SP_RELEASE, S_SP_ROLLBACK, S_BEGIN, S_COMMIT,
	S_ROLLBACK, S_GET, S_GET_TYPED, S_INSERT, S_UPDATE, S_TAGS_DEL,
	S_TAG_INS, S_PROPS_DEL, S_PROP_INS, S_DELETE, S_DELETED, S_SET_STATUS,
	S_SCOPE_PRIVATE, S_SCOPE_PUBLIC, S_COUNT_OWNER, S_COUNT_OWNER_TYPE,
	S_USED_OWNER, S_USED_OWNER_TYPE, S_BLOBS_OF, S_BLOBS_OF_PAGE,
	S_BLOB_SET, S_BLOB_DEL, S_BLOB_REFS, S_SAVING, S_EXTERNAL, S_GC_PUSH,
	S_GC_LIST, S_GC_POP, S_QUOTA_DEL, S_QUOTA_INS, S_QUOTA_ALL,
	S_QUOTA_ONE, S_DATA_INS, S_DATA_FIND, S_DATA_DEL, S_COUNT
};

#define SCOPE_SQL                                                             \
	"SELECT 1 FROM artifacts WHERE type_name = ?1 AND name = ?2"          \
	" AND version_prefix = ?3 AND version_suffix = ?4"                    \
	" AND version_meta = ?5 AND status != 'deleted' AND id != ?6"
#define USED_SQL                                                              \
	"SELECT coalesce(sum(CASE WHEN b.status = 'saving'"                   \
	" THEN coalesce(b.reserved, 0) ELSE coalesce(b.size, 0) END), 0)"     \
	" FROM artifacts a JOIN blobs b ON b.artifact_id = a.id"              \
	" WHERE a.owner = ?1"
#define BLOB_LIST_SQL                                                         \
	"SELECT b.artifact_id, a.type_name, b.field, b.key, " BLOB_COLS       \
	" FROM blobs b JOIN artifacts a ON a.id = b.artifact_id"
#define QUOTA_SQL "SELECT project_id, quota_name, quota_value FROM quotas"

static const char *const stmt_sql[S_COUNT] = {
	[S_SP_BEGIN] = "SAVEPOINT gl_sp",
	[S_SP_RELEASE] = "RELEASE gl_sp",
	[S_SP_ROLLBACK] = "ROLLBACK TO gl_sp",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_GET] = "SELECT " ART_COLS " FROM artifacts a WHERE a.id = ?1",
	[S_GET_TYPED] = "SELECT " ART_COLS " FROM artifacts a"
			" WHERE a.id = ?1 AND a.type_name = ?2",
	[S_INSERT] = "INSERT INTO artifacts (id, type_name, name, version,"
		     " version_prefix, version_suffix, version_meta, owner,"
		     " visibility, status, description, display_type_name,"
		     " created_at, updated_at, activated_at, revision, doc)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
		     " ?12, ?13, ?14, ?15, ?16, ?17)",
	[S_UPDATE] = "UPDATE artifacts SET name = ?3, version = ?4,"
		     " version_prefix = ?5, version_suffix = ?6,"
		     " version_meta = ?7, owner = ?8, visibility = ?9,"
		     " status = ?10, description = ?11,"
		     " display_type_name = ?12, created_at = ?13,"
		     " updated_at = ?14, activated_at = ?15, revision = ?16,"
		     " doc = ?17"
		     " WHERE id = ?1 AND type_name = ?2 AND revision = ?18",
	[S_TAGS_DEL] = "DELETE FROM tags WHERE artifact_id = ?1",
	[S_TAG_INS] = "INSERT OR IGNORE INTO tags (value, artifact_id)"
		      " VALUES (?1, ?2)",
	[S_PROPS_DEL] = "DELETE FROM properties WHERE artifact_id = ?1",
	[S_PROP_INS] = "INSERT INTO properties (name, key, value, artifact_id,"
		       " pos) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_DELETE] = "DELETE FROM artifacts WHERE id = ?1",
	[S_DELETED] = "SELECT id, type_name FROM artifacts"
		      " WHERE status = 'deleted' AND updated_at < ?1"
		      " ORDER BY updated_at, id LIMIT ?2",
	[S_SET_STATUS] = "UPDATE artifacts SET status = ?2, updated_at = ?3,"
			 " revision = revision + 1 WHERE id = ?1",
	[S_SCOPE_PRIVATE] = SCOPE_SQL " AND owner = ?7"
			    " AND visibility = 'private' LIMIT 1",
	[S_SCOPE_PUBLIC] = SCOPE_SQL " AND visibility = 'public' LIMIT 1",
	[S_COUNT_OWNER] = "SELECT count(*) FROM artifacts WHERE owner = ?1",
	[S_COUNT_OWNER_TYPE] = "SELECT count(*) FROM artifacts"
			       " WHERE owner = ?1 AND type_name = ?2",
	[S_USED_OWNER] = USED_SQL,
	[S_USED_OWNER_TYPE] = USED_SQL " AND a.type_name = ?2",
	[S_BLOBS_OF] = "SELECT b.artifact_id, b.field, b.key, " BLOB_COLS
		       " FROM blobs b WHERE b.artifact_id = ?1",
	[S_BLOBS_OF_PAGE] = "SELECT b.artifact_id, b.field, b.key, " BLOB_COLS
			    " FROM blobs b WHERE b.artifact_id IN"
			    " (SELECT value FROM json_each(?1))",
	[S_BLOB_SET] = "INSERT OR REPLACE INTO blobs (artifact_id, field, key,"
		       " url, size, md5, sha1, sha256, external, status,"
		       " content_type, store, location, reserved, node, prev,"
		       " prev_store, prev_location, temp, verified_at,"
		       " verify_status, verify_error, extra) VALUES (?1, ?2,"
		       " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
		       " ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
	[S_BLOB_DEL] = "DELETE FROM blobs WHERE artifact_id = ?1"
		       " AND field = ?2 AND key = ?3",
	[S_BLOB_REFS] = "SELECT (SELECT count(*) FROM blobs"
			" WHERE store = ?1 AND location = ?2)"
			" + (SELECT count(*) FROM blobs"
			" WHERE prev_store = ?1 AND prev_location = ?2)",
	[S_SAVING] = BLOB_LIST_SQL " WHERE b.status = 'saving'"
		     " ORDER BY b.artifact_id, b.field, b.key",
	[S_EXTERNAL] = BLOB_LIST_SQL " WHERE b.external = 1"
		       " ORDER BY b.verified_at LIMIT ?1",
	[S_GC_PUSH] = "INSERT OR IGNORE INTO gc_queue (store, location,"
		      " queued_at) VALUES (?1, ?2, ?3)",
	[S_GC_LIST] = "SELECT store, location FROM gc_queue"
		      " ORDER BY queued_at, store, location LIMIT ?1",
	[S_GC_POP] = "DELETE FROM gc_queue WHERE store = ?1 AND location = ?2",
	[S_QUOTA_DEL] = "DELETE FROM quotas WHERE project_id = ?1",
	[S_QUOTA_INS] = "INSERT OR REPLACE INTO quotas (project_id,"
			" quota_name, quota_value) VALUES (?1, ?2, ?3)",
	[S_QUOTA_ALL] = QUOTA_SQL " ORDER BY project_id, quota_name",
	[S_QUOTA_ONE] = QUOTA_SQL " WHERE project_id = ?1 ORDER BY quota_name",
	[S_DATA_INS] = "INSERT OR REPLACE INTO blob_data (location, data)"
		       " VALUES (?1, zeroblob(?2))",
	[S_DATA_FIND] = "SELECT rowid, length(data) FROM blob_data"
			" WHERE location = ?1",
	[S_DATA_DEL] = "DELETE FROM blob_data WHERE location = ?1",
};

struct dyn_stmt {
	char *sql;
	sqlite3_stmt *st;
	uint64_t used;
};

/* The connection; `base` first, so a gl_meta * is an sq_meta *. */
typedef struct sq_meta {
	struct gl_meta base;
	sqlite3 *db;
	int version;
	sqlite3_stmt *stmts[S_COUNT];
	struct dyn_stmt dyn[DYN_CACHE];
	uint64_t tick;
} sq_meta;

static sq_meta *sq(gl_meta *gm)
{
	return (sq_meta *)gm;
}

/* ops (the table is at the end of the file) that call each other */
static void sq_close(gl_meta *gm);
static void sq_rollback(gl_meta *gm);
static int sq_blob_delete(gl_meta *gm, const char *artifact_id,
			  const char *field, const char *key, gl_err *err);

/* ------------------------------------------------------------------------
 * Memory and small helpers. Out of memory is fatal, as everywhere in
 * glared's core.
 * ---------------------------------------------------------------------- */

__attribute__((noreturn))
static void oom(void)
{
	fputs("glared: meta: out of memory\n", stderr);
	abort();
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		oom();
	return d;
}

/* A growable string. */
typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void sb_addf(sbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	/* only used for aliases, column names and small integers */
	if (n < 0 || (size_t)n >= sizeof tmp)
		abort();
	sb_addn(b, tmp, (size_t)n);
}

static const char *str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const gl_field *type_field(const gl_type *t, const char *name)
{
	for (int i = 0; t && i < t->nfields; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return &t->fields[i];
	return NULL;
}

/* A timestamp from the API shape (ISO-8601 string) or an integer of
 * microseconds. 1 set, 0 null/absent, -1 malformed. */
static int json_time(const json_t *v, int64_t *us)
{
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*us = json_integer_value(v);
		return 1;
	}
	if (json_is_string(v) && gl_parse_iso8601(json_string_value(v), us) == 0)
		return 1;
	return -1;
}

/* Full precision: the engine shows seconds, but sorting, markers and
 * rewrites of the row must keep the microseconds. */
static json_t *time_json(int64_t us)
{
	char buf[40];

	gl_iso8601_us(us, buf);
	return json_string(buf);
}

/* ------------------------------------------------------------------------
 * Errors and statement plumbing.
 * ---------------------------------------------------------------------- */

/* The failure of the last call on m->db, as the engine reports it. Must run
 * before the statement is reset (the message belongs to the failure). */
static int db_fail(sq_meta *m, int rc, gl_err *err)
{
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return gl_fail(err, 409, "Conflict",
			       "The database is busy, try again");
	return gl_fail(err, 500, NULL, "DBError: %s", sqlite3_errmsg(m->db));
}

static sqlite3_stmt *st(sq_meta *m, enum stmt_id id, gl_err *err)
{
	int rc;

	if (m->stmts[id])
		return m->stmts[id];
	rc = sqlite3_prepare_v3(m->db, stmt_sql[id], -1,
				SQLITE_PREPARE_PERSISTENT, &m->stmts[id], NULL);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		return NULL;
	}
	return m->stmts[id];
}

/* Statements are reset right after use: an unreset statement would keep a
 * read transaction open and pin the WAL. */
static void finish(sqlite3_stmt *s)
{
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

/* Step a statement that returns no rows, then reset it. */
static int run(sq_meta *m, sqlite3_stmt *s, gl_err *err)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_fail(m, rc, err);
		finish(s);
		return -1;
	}
	finish(s);
	return 0;
}

static int run_id(sq_meta *m, enum stmt_id id, gl_err *err)
{
	sqlite3_stmt *s = st(m, id, err);

	return s ? run(m, s, err) : -1;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

/* A JSON scalar as an SQL value: integers stay exact (int64), booleans
 * become 0/1, anything else not scalar becomes NULL. */
static void bind_json(sqlite3_stmt *s, int i, const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_INTEGER:
		sqlite3_bind_int64(s, i, json_integer_value(v));
		break;
	case JSON_REAL:
		sqlite3_bind_double(s, i, json_real_value(v));
		break;
	case JSON_TRUE:
		sqlite3_bind_int(s, i, 1);
		break;
	case JSON_FALSE:
		sqlite3_bind_int(s, i, 0);
		break;
	case JSON_STRING:
		sqlite3_bind_text(s, i, json_string_value(v),
				  (int)json_string_length(v), SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_bind_null(s, i);
	}
}

static json_t *col_text(sqlite3_stmt *s, int c)
{
	if (sqlite3_column_type(s, c) == SQLITE_NULL)
		return json_null();
	return json_stringn((const char *)sqlite3_column_text(s, c),
			    (size_t)sqlite3_column_bytes(s, c));
}

static json_t *col_int(sqlite3_stmt *s, int c)
{
	if (sqlite3_column_type(s, c) == SQLITE_NULL)
		return json_null();
	return json_integer(sqlite3_column_int64(s, c));
}

static json_t *col_time(sqlite3_stmt *s, int c)
{
	if (sqlite3_column_type(s, c) == SQLITE_NULL)
		return json_null();
	return time_json(sqlite3_column_int64(s, c));
}

/* A JSON text column, parsed; NULL column -> null. */
static json_t *col_json(sqlite3_stmt *s, int c)
{
	json_error_t jerr;
	json_t *v;

	if (sqlite3_column_type(s, c) == SQLITE_NULL)
		return json_null();
	v = json_loadb((const char *)sqlite3_column_text(s, c),
		       (size_t)sqlite3_column_bytes(s, c), JSON_DECODE_ANY,
		       &jerr);
	return v;
}

/* Savepoints make each multi-statement call atomic on its own, inside the
 * engine's transaction or outside any (then it is a transaction itself). */
static int sp_begin(sq_meta *m, gl_err *err)
{
	return run_id(m, S_SP_BEGIN, err);
}

static int sp_end(sq_meta *m, int ok, gl_err *err)
{
	gl_err ignore;

	if (ok)
		return run_id(m, S_SP_RELEASE, err);
	run_id(m, S_SP_ROLLBACK, &ignore);
	run_id(m, S_SP_RELEASE, &ignore);
	return -1;
}

/* ------------------------------------------------------------------------
 * Opening and schema versioning.
 * ---------------------------------------------------------------------- */

/* The file named by [database] connection (malloc'ed), or NULL + err. */
static char *db_path(const char *conn, gl_err *err)
{
	const char *p;
	size_t n;
	char *path;

	if (!conn || !*conn) {
		gl_fail(err, 500, NULL, "[database] connection is not set");
		return NULL;
	}
	if (strncmp(conn, "sqlite://", 9) == 0) {
		p = conn + 9;
		if (*p == '\0') {
			p = ":memory:"; /* SQLAlchemy's in-memory form */
		} else if (*p == '/') {
			p++; /* "sqlite:///rel" is "rel", "sqlite:////abs" "/abs" */
		} else {
			gl_fail(err, 500, NULL,
				"[database] connection: sqlite URLs have no host"
				" (sqlite:///relative or sqlite:////absolute)");
			return NULL;
		}
	} else if (strstr(conn, "://")) {
		/* never echo the URL: it may carry a password (postgresql://
		 * never gets here: meta.c sends it to meta_pg.c) */
		gl_fail(err, 500, NULL,
			"[database] connection: unsupported database"
			" (use sqlite:///path or postgresql://...)");
		return NULL;
	} else {
		p = conn;
	}
	n = strcspn(p, "?"); /* SQLAlchemy options do not apply here */
	if (n == 0) {
		gl_fail(err, 500, NULL, "[database] connection has no path");
		return NULL;
	}
	path = xrealloc(NULL, n + 1);
	memcpy(path, p, n);
	path[n] = '\0';
	return path;
}

/* mkdir -p of the directory part of path. */
static int make_parent(const char *path, gl_err *err)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int rc = 0;

	if (!slash || slash == dir) {
		free(dir);
		return 0;
	}
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
			rc = gl_fail(err, 500, NULL, "cannot create %s: %s", dir,
				     strerror(errno));
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(dir);
	return rc;
}

static int exec_sql(sq_meta *m, const char *sql, gl_err *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(m->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		if ((rc & 0xff) == SQLITE_BUSY)
			gl_fail(err, 409, "Conflict",
				"The database is busy, try again");
		else
			gl_fail(err, 500, NULL, "DBError: %s",
				msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int query_int(sq_meta *m, const char *sql, int64_t *out, gl_err *err)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(m->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return db_fail(m, rc, err);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE)
		*out = 0;
	else
		db_fail(m, rc, err);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Bring the schema to SCHEMA_VERSION (see meta.h): create it in an empty
 * database, apply missing steps when upgrading, refuse otherwise. The
 * version is re-read under the write lock, since another worker may be
 * doing the same at the same moment. */
static int migrate(sq_meta *m, int upgrade, gl_err *err)
{
	int64_t v, tables;
	char sql[64];

	if (query_int(m, "PRAGMA user_version", &v, err) ||
	    query_int(m, "SELECT count(*) FROM sqlite_schema"
		      " WHERE type = 'table'", &tables, err))
		return -1;
	if (v == SCHEMA_VERSION)
		return 0;
	if (v > SCHEMA_VERSION)
		return gl_fail(err, 500, NULL,
			       "database schema is at version %lld, newer than"
			       " this glared supports (%d)", (long long)v,
			       SCHEMA_VERSION);
	if (v == 0 && tables > 0)
		return gl_fail(err, 500, NULL,
			       "the database has tables but no glared schema"
			       " version: not a glared database");
	if (v > 0 && !upgrade)
		return gl_fail(err, 500, NULL,
			       "database schema is at version %lld, glared"
			       " needs %d: run 'glared db upgrade'",
			       (long long)v, SCHEMA_VERSION);
	if (exec_sql(m, "BEGIN IMMEDIATE", err))
		return -1;
	if (query_int(m, "PRAGMA user_version", &v, err))
		goto fail;
	for (; v < SCHEMA_VERSION; v++)
		if (exec_sql(m, migrations[v], err))
			goto fail;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (exec_sql(m, sql, err) || exec_sql(m, "COMMIT", err))
		goto fail;
	return 0;
fail:
	sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

gl_meta *gl_meta_sqlite_open(const char *conn, int upgrade, gl_err *err)
{
	sq_meta *m;
	char *path = db_path(conn, err);
	int rc;

	if (!path)
		return NULL;
	if (strcmp(path, ":memory:") != 0 && make_parent(path, err)) {
		free(path);
		return NULL;
	}
	m = xrealloc(NULL, sizeof *m);
	memset(m, 0, sizeof *m);
	rc = sqlite3_open_v2(path, &m->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		gl_fail(err, 500, NULL, "cannot open database %s: %s", path,
			m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(m->db, 1);
	/* before journal_mode: switching to WAL needs a lock */
	sqlite3_busy_timeout(m->db, 5000);
	if (exec_sql(m, "PRAGMA journal_mode = WAL;"
		     "PRAGMA synchronous = NORMAL;"
		     "PRAGMA foreign_keys = ON;"
		     "PRAGMA temp_store = MEMORY;"
		     "PRAGMA cache_size = -65536;", err))
		goto fail;
	if (migrate(m, upgrade, err))
		goto fail;
	m->base.ops = &gl_meta_sqlite_ops;
	m->version = SCHEMA_VERSION;
	free(path);
	return &m->base;
fail:
	free(path);
	sq_close(&m->base);
	return NULL;
}

static void sq_close(gl_meta *gm)
{
	sq_meta *m = sq(gm);

	if (!m)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(m->stmts[i]);
	for (int i = 0; i < DYN_CACHE; i++) {
		sqlite3_finalize(m->dyn[i].st);
		free(m->dyn[i].sql);
	}
	/* no PRAGMA optimize: it would replace the shipped statistics with
	 * sampled ones (see schema_v2) */
	sqlite3_close(m->db);
	free(m);
}

static int sq_schema_version(gl_meta *gm)
{
	sq_meta *m = sq(gm);

	return m->version;
}

/* ------------------------------------------------------------------------
 * Transactions.
 * ---------------------------------------------------------------------- */

static int sq_begin(gl_meta *gm, gl_err *err)
{
	sq_meta *m = sq(gm);

	return run_id(m, S_BEGIN, err);
}

/* A failed COMMIT leaves the transaction open; it is rolled back here so
 * the connection is usable again and the caller's error path is simple. */
static int sq_commit(gl_meta *gm, gl_err *err)
{
	sq_meta *m = sq(gm);

	if (run_id(m, S_COMMIT, err) == 0)
		return 0;
	sq_rollback(&m->base);
	return -1;
}

static void sq_rollback(gl_meta *gm)
{
	sq_meta *m = sq(gm);
	gl_err ignore;

	if (!sqlite3_get_autocommit(m->db))
		run_id(m, S_ROLLBACK, &ignore);
}

/* ------------------------------------------------------------------------
 * Rows to the API shape.
 * ---------------------------------------------------------------------- */

/* Base fields that live in artifacts columns (column name = field name);
 * tags and metadata are base fields kept in doc (+ their tables). */
static const char *const base_columns[] = {
	"id", "type_name", "name", "version", "owner", "visibility", "status",
	"description", "display_type_name", "created_at", "updated_at",
	"activated_at",
};

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

/* The blob object of a row whose BLOB_COLS start at column c0. The API
 * keys are always present (null when unset); internal keys only when set. */
static json_t *blob_json(sqlite3_stmt *s, int c0)
{
	json_t *b = json_object();

	json_object_set_new(b, "url", col_text(s, c0 + B_URL));
	json_object_set_new(b, "size", col_int(s, c0 + B_SIZE));
	json_object_set_new(b, "md5", col_text(s, c0 + B_MD5));
	json_object_set_new(b, "sha1", col_text(s, c0 + B_SHA1));
	json_object_set_new(b, "sha256", col_text(s, c0 + B_SHA256));
	json_object_set_new(b, "external",
			    json_boolean(sqlite3_column_int(s, c0 + B_EXTERNAL)));
	json_object_set_new(b, "status", col_text(s, c0 + B_STATUS));
	json_object_set_new(b, "content_type", col_text(s, c0 + B_CTYPE));
	for (int c = B_STORE; c < B_EXTRA; c++) {
		json_t *v;

		if (sqlite3_column_type(s, c0 + c) == SQLITE_NULL)
			continue;
		if (c == B_RESERVED)
			v = col_int(s, c0 + c);
		else if (c == B_PREV)
			v = col_json(s, c0 + c);
		else if (c == B_VERIFIED) /* microseconds, as written */
			v = col_int(s, c0 + c);
		else
			v = col_text(s, c0 + c);
		json_object_set_new(b, blob_keys[c], v);
	}
	if (sqlite3_column_type(s, c0 + B_EXTRA) != SQLITE_NULL) {
		json_t *extra = col_json(s, c0 + B_EXTRA);
		if (json_is_object(extra))
			json_object_update_missing(b, extra);
		json_decref(extra);
	}
	return b;
}

/* The artifact of an ART_COLS row. type NULL: the all view (base fields and
 * type_name); otherwise every field of the type, custom ones from doc
 * (null when unset), blob fields null and folders {} until attached. */
static int row_json(sq_meta *m, sqlite3_stmt *s, const gl_type *type,
		    json_t **out, gl_err *err)
{
	json_t *af = json_object(), *doc;
	json_error_t jerr;

	doc = json_loadb((const char *)sqlite3_column_text(s, C_DOC),
			 (size_t)sqlite3_column_bytes(s, C_DOC), 0, &jerr);
	if (!json_is_object(doc)) {
		gl_fail(err, 500, NULL, "DBError: artifact %s: bad document: %s",
			(const char *)sqlite3_column_text(s, C_ID), jerr.text);
		json_decref(doc);
		json_decref(af);
		return -1;
	}
	json_object_set_new(af, "id", col_text(s, C_ID));
	json_object_set_new(af, "name", col_text(s, C_NAME));
	json_object_set_new(af, "version", col_text(s, C_VERSION));
	json_object_set_new(af, "owner", col_text(s, C_OWNER));
	json_object_set_new(af, "visibility", col_text(s, C_VIS));
	json_object_set_new(af, "status", col_text(s, C_STATUS));
	json_object_set_new(af, "description", col_text(s, C_DESC));
	json_object_set_new(af, "display_type_name", col_text(s, C_DTN));
	json_object_set_new(af, "created_at", col_time(s, C_CREATED));
	json_object_set_new(af, "updated_at", col_time(s, C_UPDATED));
	json_object_set_new(af, "activated_at", col_time(s, C_ACTIVATED));
	json_object_set_new(af, "revision", col_int(s, C_REV));
	if (!type) {
		json_t *v;

		json_object_set_new(af, "type_name", col_text(s, C_TYPE));
		v = json_object_get(doc, "tags");
		json_object_set(af, "tags", v ? v : json_null());
		v = json_object_get(doc, "metadata");
		json_object_set(af, "metadata", v ? v : json_null());
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
			} else {
				v = json_object_get(doc, f->name);
				v = v ? json_incref(v) : json_null();
			}
			json_object_set_new(af, f->name, v);
		}
	}
	json_decref(doc);
	*out = af;
	return 0;
}

/* Attach the blob rows of a statement (artifact_id, field, key, BLOB_COLS)
 * to the artifacts in idx (id -> artifact). Records of fields the type no
 * longer has are left out. */
static int attach_blobs(sq_meta *m, sqlite3_stmt *s, const gl_type *type,
			json_t *idx, gl_err *err)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		const char *field = (const char *)sqlite3_column_text(s, 1);
		const char *key = (const char *)sqlite3_column_text(s, 2);
		const gl_field *f = type_field(type, field);
		json_t *af = json_object_get(idx, id), *folder;

		if (!af || !f)
			continue;
		if (f->kind == GK_FOLDER) {
			folder = json_object_get(af, field);
			if (!json_is_object(folder)) {
				folder = json_object();
				json_object_set_new(af, field, folder);
			}
			json_object_set_new(folder, key, blob_json(s, 3));
		} else if (f->kind == GK_BLOB && key[0] == '\0') {
			json_object_set_new(af, field, blob_json(s, 3));
		}
	}
	if (rc != SQLITE_DONE)
		db_fail(m, rc, err);
	finish(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Artifacts.
 * ---------------------------------------------------------------------- */

static int sq_get(gl_meta *gm, const gl_type *type, const char *id, json_t **af,
		  gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s;
	json_t *a = NULL, *idx;
	int rc, ret = -1;

	if (type && type->is_all)
		type = NULL;
	*af = NULL;
	if (sp_begin(m, err))
		return -1;
	if (!(s = st(m, type ? S_GET_TYPED : S_GET, err)))
		goto out;
	bind_text(s, 1, id);
	if (type)
		bind_text(s, 2, type->name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		ret = 1;
	} else if (rc != SQLITE_ROW) {
		db_fail(m, rc, err);
	} else if (row_json(m, s, type, &a, err) == 0) {
		ret = 0;
	}
	finish(s);
	if (ret == 0 && type) {
		if (!(s = st(m, S_BLOBS_OF, err))) {
			ret = -1;
			goto out;
		}
		bind_text(s, 1, id);
		idx = json_object();
		json_object_set(idx, id, a);
		ret = attach_blobs(m, s, type, idx, err);
		json_decref(idx);
	}
out:
	if (sp_end(m, ret >= 0, err) && ret >= 0)
		ret = -1;
	if (ret == 0)
		*af = a;
	else
		json_decref(a);
	return ret;
}

/* One properties row per scalar; nulls and non-scalars are not stored.
 * DateTime values are stored as microseconds so filters compare numbers. */
static int prop_row(sq_meta *m, sqlite3_stmt *s, const char *id,
		    const char *name, const char *key, const json_t *v, int pos,
		    gl_kind kind, gl_err *err)
{
	int64_t us;

	if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v))
		return 0;
	bind_text(s, 1, name);
	bind_text(s, 2, key);
	if (kind == GK_DATETIME && json_is_string(v) && json_time(v, &us) == 1)
		sqlite3_bind_int64(s, 3, us);
	else
		bind_json(s, 3, v);
	bind_text(s, 4, id);
	sqlite3_bind_int(s, 5, pos);
	return run(m, s, err);
}

static int field_props(sq_meta *m, sqlite3_stmt *s, const char *id,
		       const gl_field *f, const json_t *v, gl_err *err)
{
	const char *k;
	json_t *e;
	size_t i;

	if (f->kind == GK_LIST && json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (prop_row(m, s, id, f->name, "", e, (int)i, f->elem,
				     err))
				return -1;
	} else if (f->kind == GK_DICT && json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
			if (prop_row(m, s, id, f->name, k, e, 0, f->elem, err))
				return -1;
	} else if (f->kind != GK_LIST && f->kind != GK_DICT) {
		return prop_row(m, s, id, f->name, "", v, 0, f->kind, err);
	}
	return 0;
}

/* Bind ?1..?17 of S_INSERT / S_UPDATE from the artifact. */
static int bind_artifact(sqlite3_stmt *s, const gl_type *type,
			 const json_t *af, const gl_vkey *vk, int64_t rev,
			 const char *doc, gl_err *err)
{
	static const char *const tnames[3] = {
		"created_at", "updated_at", "activated_at"
	};
	const char *ver = str_of(af, "version");
	int64_t t[3];
	int set[3];

	for (int i = 0; i < 3; i++) {
		set[i] = json_time(json_object_get(af, tnames[i]), &t[i]);
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
	bind_text(s, 1, str_of(af, "id"));
	bind_text(s, 2, type->name);
	bind_text(s, 3, str_of(af, "name"));
	bind_text(s, 4, ver ? ver : "0.0.0");
	sqlite3_bind_int64(s, 5, vk->prefix);
	bind_text(s, 6, vk->suffix ? vk->suffix : "");
	bind_text(s, 7, vk->meta ? vk->meta : "");
	bind_text(s, 8, str_of(af, "owner"));
	bind_text(s, 9, str_of(af, "visibility") ? str_of(af, "visibility")
						  : "private");
	bind_text(s, 10, str_of(af, "status") ? str_of(af, "status")
					      : "drafted");
	bind_text(s, 11, str_of(af, "description"));
	bind_text(s, 12, str_of(af, "display_type_name"));
	for (int i = 0; i < 3; i++) {
		if (set[i])
			sqlite3_bind_int64(s, 13 + i, t[i]);
		else
			sqlite3_bind_null(s, 13 + i);
	}
	sqlite3_bind_int64(s, 16, rev + 1);
	bind_text(s, 17, doc);
	return 0;
}

static int sq_put(gl_meta *gm, const gl_type *type, json_t *af,
		  const gl_vkey *vk, int insert, gl_err *err)
{
	sq_meta *m = sq(gm);
	const char *id = str_of(af, "id");
	json_t *doc, *tags, *v;
	char *doc_text = NULL;
	sqlite3_stmt *s;
	int64_t rev = json_integer_value(json_object_get(af, "revision"));
	int rc, ret = -1;
	size_t i;

	if (!type || type->is_all || !id || !str_of(af, "name") ||
	    !str_of(af, "owner") || !vk)
		return gl_fail(err, 500, NULL,
			       "DBError: artifact without type, id, name, owner"
			       " or version key");

	/* doc: every field without a column and not a blob */
	doc = json_object();
	for (int f = 0; f < type->nfields; f++) {
		const gl_field *fd = &type->fields[f];

		if ((fd->base && is_base_column(fd->name)) ||
		    fd->kind == GK_BLOB || fd->kind == GK_FOLDER)
			continue;
		v = json_object_get(af, fd->name);
		if (v && !json_is_null(v))
			json_object_set(doc, fd->name, v);
	}
	doc_text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!doc_text)
		oom();

	if (sp_begin(m, err)) {
		free(doc_text);
		return -1;
	}
	if (!(s = st(m, insert ? S_INSERT : S_UPDATE, err)) ||
	    bind_artifact(s, type, af, vk, rev, doc_text, err)) {
		finish(s);
		goto out;
	}
	if (!insert)
		sqlite3_bind_int64(s, 18, rev);
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		if (insert && (rc & 0xff) == SQLITE_CONSTRAINT)
			gl_fail(err, 409, "Conflict",
				"Artifact with this id already exists");
		else
			db_fail(m, rc, err);
		finish(s);
		goto out;
	}
	finish(s);
	if (!insert) {
		if (sqlite3_changes(m->db) == 0) {
			ret = 1; /* changed (or deleted) meanwhile */
			goto out;
		}
		if (!(s = st(m, S_TAGS_DEL, err)))
			goto out;
		bind_text(s, 1, id);
		if (run(m, s, err))
			goto out;
		if (!(s = st(m, S_PROPS_DEL, err)))
			goto out;
		bind_text(s, 1, id);
		if (run(m, s, err))
			goto out;
	}

	tags = json_object_get(af, "tags");
	if (json_array_size(tags)) {
		if (!(s = st(m, S_TAG_INS, err)))
			goto out;
		json_array_foreach(tags, i, v) {
			if (!json_is_string(v))
				continue;
			bind_json(s, 1, v);
			bind_text(s, 2, id);
			if (run(m, s, err))
				goto out;
		}
	}
	if (!(s = st(m, S_PROP_INS, err)))
		goto out;
	for (int f = 0; f < type->nfields; f++) {
		const gl_field *fd = &type->fields[f];

		if (fd->kind == GK_BLOB || fd->kind == GK_FOLDER)
			continue;
		if (fd->base && strcmp(fd->name, "metadata") != 0)
			continue;
		v = json_object_get(af, fd->name);
		if (v && field_props(m, s, id, fd, v, err))
			goto out;
	}
	ret = 0;
out:
	free(doc_text);
	if (sp_end(m, ret >= 0, err) && ret >= 0)
		ret = -1;
	if (ret == 0)
		json_object_set_new(af, "revision", json_integer(rev + 1));
	return ret;
}

static int sq_delete(gl_meta *gm, const char *id, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_DELETE, err);

	if (!s)
		return -1;
	bind_text(s, 1, id);
	return run(m, s, err); /* tags, properties, blobs: ON DELETE CASCADE */
}

static int sq_deleted(gl_meta *gm, int64_t before_us, int limit, json_t **out,
		      gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_DELETED, err);
	json_t *arr;
	int rc;

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, before_us);
	sqlite3_bind_int(s, 2, limit);
	arr = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{s:o, s:o}",
			"id", col_text(s, 0), "type_name", col_text(s, 1)));
	if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
		json_decref(arr);
		arr = NULL;
	}
	finish(s);
	*out = arr;
	return arr ? 0 : -1;
}

static int sq_set_status(gl_meta *gm, const char *id, const char *status,
			 gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_SET_STATUS, err);

	if (!s)
		return -1;
	bind_text(s, 1, id);
	bind_text(s, 2, status);
	sqlite3_bind_int64(s, 3, gl_now_us());
	if (run(m, s, err))
		return -1;
	if (sqlite3_changes(m->db) == 0)
		return gl_fail(err, 404, "ArtifactNotFound",
			       "Artifact with id=%s not found", id);
	return 0;
}

static int sq_scope_taken(gl_meta *gm, const char *type_name, const char *name,
			  const gl_vkey *vk, const char *owner,
			  const char *exclude_id, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, owner ? S_SCOPE_PRIVATE : S_SCOPE_PUBLIC, err);
	int rc;

	if (!s)
		return -1;
	bind_text(s, 1, type_name);
	bind_text(s, 2, name);
	sqlite3_bind_int64(s, 3, vk->prefix);
	bind_text(s, 4, vk->suffix ? vk->suffix : "");
	bind_text(s, 5, vk->meta ? vk->meta : "");
	/* "" is no id: `id != NULL` would be NULL and match nothing */
	bind_text(s, 6, exclude_id ? exclude_id : "");
	if (owner)
		bind_text(s, 7, owner);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(m, rc, err);
	finish(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int count_query(sq_meta *m, enum stmt_id id, const char *a1,
		       const char *a2, int64_t *n, gl_err *err)
{
	sqlite3_stmt *s = st(m, id, err);
	int rc;

	if (!s)
		return -1;
	bind_text(s, 1, a1);
	if (a2)
		bind_text(s, 2, a2);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	else
		db_fail(m, rc, err);
	finish(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int sq_count_artifacts(gl_meta *gm, const char *owner,
			      const char *type_name, int64_t *n, gl_err *err)
{
	sq_meta *m = sq(gm);

	return count_query(m, type_name ? S_COUNT_OWNER_TYPE : S_COUNT_OWNER,
			   owner, type_name, n, err);
}

static int sq_used_bytes(gl_meta *gm, const char *owner, const char *type_name,
			 int64_t *n, gl_err *err)
{
	sq_meta *m = sq(gm);

	return count_query(m, type_name ? S_USED_OWNER_TYPE : S_USED_OWNER,
			   owner, type_name, n, err);
}

/* ------------------------------------------------------------------------
 * Blob records.
 * ---------------------------------------------------------------------- */

static int sq_blob_set(gl_meta *gm, const char *artifact_id, const char *field,
		       const char *key, const json_t *blob, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s;
	json_t *extra, *v;
	const char *k;
	char *text;
	int64_t us;
	int c;

	if (!blob || json_is_null(blob))
		return sq_blob_delete(gm, artifact_id, field, key, err);
	if (!json_is_object(blob))
		return gl_fail(err, 500, NULL, "DBError: blob is not an object");
	if (!(s = st(m, S_BLOB_SET, err)))
		return -1;
	bind_text(s, 1, artifact_id);
	bind_text(s, 2, field);
	bind_text(s, 3, key ? key : "");
	for (c = 0; c < B_EXTRA; c++) {
		int i = 4 + c + (c > B_PREV ? 2 : 0); /* prev_store/location */

		v = json_object_get(blob, blob_keys[c]);
		switch (c) {
		case B_SIZE:
		case B_RESERVED:
			if (json_is_integer(v)) /* exact above 2^53 */
				sqlite3_bind_int64(s, i, json_integer_value(v));
			else if (json_is_real(v))
				sqlite3_bind_int64(s, i,
						   (int64_t)json_real_value(v));
			break;
		case B_EXTERNAL:
			sqlite3_bind_int(s, i, json_is_true(v));
			break;
		case B_PREV:
			if (!json_is_object(v))
				break;
			text = json_dumps(v, JSON_COMPACT);
			if (!text)
				oom();
			sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
			free(text);
			bind_text(s, i + 1, str_of(v, "store"));
			bind_text(s, i + 2, str_of(v, "location"));
			break;
		case B_VERIFIED:
			if (json_time(v, &us) == 1)
				sqlite3_bind_int64(s, i, us);
			break;
		default:
			if (json_is_string(v))
				bind_json(s, i, v);
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
	if (json_object_size(extra)) {
		text = json_dumps(extra, JSON_COMPACT);
		if (!text)
			oom();
		sqlite3_bind_text(s, 23, text, -1, SQLITE_TRANSIENT);
		free(text);
	}
	json_decref(extra);
	return run(m, s, err);
}

static int sq_blob_delete(gl_meta *gm, const char *artifact_id,
			  const char *field, const char *key, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_BLOB_DEL, err);

	if (!s)
		return -1;
	bind_text(s, 1, artifact_id);
	bind_text(s, 2, field);
	bind_text(s, 3, key ? key : "");
	return run(m, s, err);
}

static int sq_blob_refs(gl_meta *gm, const char *store, const char *location,
			int64_t *n, gl_err *err)
{
	sq_meta *m = sq(gm);

	return count_query(m, S_BLOB_REFS, store, location, n, err);
}

/* Rows of BLOB_LIST_SQL as {artifact_id, type_name, field, key, blob}. */
static int blob_list(sq_meta *m, sqlite3_stmt *s, json_t **out, gl_err *err)
{
	json_t *arr = json_array();
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, json_pack(
			"{s:o, s:o, s:o, s:o, s:o}",
			"artifact_id", col_text(s, 0), "type_name",
			col_text(s, 1), "field", col_text(s, 2), "key",
			col_text(s, 3), "blob", blob_json(s, 4)));
	if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
		json_decref(arr);
		arr = NULL;
	}
	finish(s);
	*out = arr;
	return arr ? 0 : -1;
}

static int sq_saving_blobs(gl_meta *gm, json_t **out, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_SAVING, err);

	*out = NULL;
	return s ? blob_list(m, s, out, err) : -1;
}

static int sq_external_blobs(gl_meta *gm, int limit, json_t **out, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_EXTERNAL, err);

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int(s, 1, limit);
	return blob_list(m, s, out, err);
}

static int sq_gc_push(gl_meta *gm, const char *store, const char *location,
		      gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_GC_PUSH, err);

	if (!s)
		return -1;
	bind_text(s, 1, store);
	bind_text(s, 2, location);
	sqlite3_bind_int64(s, 3, gl_now_us());
	return run(m, s, err);
}

static int sq_gc_list(gl_meta *gm, int limit, json_t **out, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_GC_LIST, err);
	json_t *arr;
	int rc;

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int(s, 1, limit);
	arr = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{s:o, s:o}",
			"store", col_text(s, 0), "location", col_text(s, 1)));
	if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
		json_decref(arr);
		arr = NULL;
	}
	finish(s);
	*out = arr;
	return arr ? 0 : -1;
}

static int sq_gc_pop(gl_meta *gm, const char *store, const char *location,
		     gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_GC_POP, err);

	if (!s)
		return -1;
	bind_text(s, 1, store);
	bind_text(s, 2, location);
	return run(m, s, err);
}

/* ------------------------------------------------------------------------
 * Listing: SQL built from fragments, each carrying its own parameters in
 * text order, so a fragment can be reused in the page and count queries.
 * ---------------------------------------------------------------------- */

enum { P_NULL, P_INT, P_REAL, P_TEXT };

typedef struct param {
	int t;
	int owned;       /* s is ours (marker values) */
	int64_t i;
	double d;
	const char *s;   /* borrowed from the query unless owned */
	int len;
} param;

typedef struct frag {
	sbuf sql;
	param *pv;
	int np, cap;
} frag;

static void f_sql(frag *f, const char *s)
{
	sb_add(&f->sql, s);
}

static void f_param(frag *f, const param *p)
{
	if (f->np == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->pv = xrealloc(f->pv, (size_t)f->cap * sizeof *f->pv);
	}
	f->pv[f->np] = *p;
	f->pv[f->np++].owned = 0; /* ownership stays with the source */
	sb_add(&f->sql, "?");
}

static void f_text(frag *f, const char *s)
{
	param p = { .t = P_TEXT, .s = s, .len = -1 };
	f_param(f, &p);
}

static void f_cat(frag *dst, const frag *src)
{
	if (src->sql.p)
		sb_add(&dst->sql, src->sql.p);
	for (int i = 0; i < src->np; i++) {
		if (dst->np == dst->cap) {
			dst->cap = dst->cap ? dst->cap * 2 : 8;
			dst->pv = xrealloc(dst->pv,
					   (size_t)dst->cap * sizeof *dst->pv);
		}
		dst->pv[dst->np++] = src->pv[i];
	}
}

static void f_free(frag *f)
{
	free(f->sql.p);
	free(f->pv);
	memset(f, 0, sizeof *f);
}

/* A filter value as a parameter. DateTime strings become microseconds;
 * booleans 0/1 as they are stored. */
static int value_param(const json_t *v, gl_kind kind, param *p, gl_err *err)
{
	memset(p, 0, sizeof *p);
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_INTEGER:
		p->t = P_INT;
		p->i = json_integer_value(v);
		break;
	case JSON_REAL:
		p->t = P_REAL;
		p->d = json_real_value(v);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		p->t = P_INT;
		p->i = json_is_true(v);
		break;
	case JSON_STRING:
		if (kind == GK_DATETIME) {
			if (gl_parse_iso8601(json_string_value(v), &p->i))
				return gl_fail(err, 400, "BadRequest",
					       "Invalid datetime value %s",
					       json_string_value(v));
			p->t = P_INT;
		} else {
			p->t = P_TEXT;
			p->s = json_string_value(v);
			p->len = (int)json_string_length(v);
		}
		break;
	case JSON_NULL:
		p->t = P_NULL;
		break;
	default:
		return gl_fail(err, 400, "BadRequest",
			       "Filter values must be scalars");
	}
	return 0;
}

static const char *op_sql(unsigned op)
{
	switch (op) {
	case GL_OP_EQ: return " = ";
	case GL_OP_NEQ: return " != ";
	case GL_OP_LT: return " < ";
	case GL_OP_LTE: return " <= ";
	case GL_OP_GT: return " > ";
	case GL_OP_GTE: return " >= ";
	case GL_OP_LIKE: return " LIKE ";
	default: return NULL;
	}
}

/* " OP ?" or " IN (?, ...)" after a column expression. */
static int compare(frag *f, const gl_filter *flt, gl_kind kind, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	param p;

	if (flt->op == GL_OP_IN) {
		f_sql(f, " IN (");
		for (size_t i = 0; i < n; i++) {
			if (value_param(json_array_get(flt->values, i), kind,
					&p, err))
				return -1;
			if (i)
				f_sql(f, ", ");
			f_param(f, &p);
		}
		f_sql(f, ")");
		return 0;
	}
	if (!op_sql(flt->op) || n < 1)
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter on %s",
			       flt->field ? flt->field->name : "tags");
	if (value_param(json_array_get(flt->values, 0), kind, &p, err))
		return -1;
	f_sql(f, op_sql(flt->op));
	f_param(f, &p);
	return 0;
}

/* The semver comparison of a version filter: equality on (prefix, suffix,
 * meta), order on (prefix, suffix) - build metadata does not order. */
static int version_cond(frag *f, const char *al, const gl_filter *flt,
			gl_err *err)
{
	size_t n = json_array_size(flt->values);
	param p = { .t = P_INT };

	if (flt->op == GL_OP_LIKE) {
		sb_addf(&f->sql, "%s.version", al);
		return compare(f, flt, GK_STRING, err);
	}
	if (!flt->vkeys || n < 1)
		return gl_fail(err, 500, NULL,
			       "DBError: version filter without version keys");
	if (flt->op == GL_OP_EQ || flt->op == GL_OP_NEQ ||
	    flt->op == GL_OP_IN) {
		if (flt->op == GL_OP_NEQ)
			f_sql(f, "NOT ");
		f_sql(f, "(");
		for (size_t i = 0; i < (flt->op == GL_OP_IN ? n : 1); i++) {
			const gl_vkey *k = &flt->vkeys[i];

			if (i)
				f_sql(f, " OR ");
			p.i = k->prefix;
			sb_addf(&f->sql, "(%s.version_prefix = ", al);
			f_param(f, &p);
			sb_addf(&f->sql, " AND %s.version_suffix = ", al);
			f_text(f, k->suffix ? k->suffix : "");
			sb_addf(&f->sql, " AND %s.version_meta = ", al);
			f_text(f, k->meta ? k->meta : "");
			f_sql(f, ")");
		}
		f_sql(f, ")");
		return 0;
	}
	if (!op_sql(flt->op))
		return gl_fail(err, 400, "BadRequest", "Unsupported filter on"
			       " version");
	/* a row value compares lexicographically and can use an index */
	sb_addf(&f->sql, "(%s.version_prefix, %s.version_suffix)%s(", al, al,
		op_sql(flt->op));
	p.i = flt->vkeys[0].prefix;
	f_param(f, &p);
	f_sql(f, ", ");
	f_text(f, flt->vkeys[0].suffix ? flt->vkeys[0].suffix : "");
	f_sql(f, ")");
	return 0;
}

/* The property rows a filter is about, without the value test:
 *   "p.name = ? AND p.key = ?" (+ " AND p.value OP ?" when with_value). */
static int prop_match(frag *f, const char *p, const gl_filter *flt,
		      gl_err *err)
{
	const gl_field *fd = flt->field;
	gl_kind kind = fd->kind == GK_LIST || fd->kind == GK_DICT ? fd->elem
								   : fd->kind;
	param kp = { .t = P_TEXT, .len = -1 };

	sb_addf(&f->sql, "%s.name = ", p);
	f_text(f, fd->name);
	switch (flt->kind) {
	case GF_PROP:
		sb_addf(&f->sql, " AND %s.key = '' AND %s.value", p, p);
		return compare(f, flt, kind, err);
	case GF_DICT_KEY:
		if (flt->op != GL_OP_EQ && flt->op != GL_OP_IN)
			return gl_fail(err, 400, "BadRequest",
				       "Only eq and in filter on the keys of %s",
				       fd->name);
		sb_addf(&f->sql, " AND %s.key", p);
		/* keys are strings whatever the element kind */
		return compare(f, flt, GK_STRING, err);
	case GF_DICT_VAL:
		kp.s = flt->key ? flt->key : "";
		sb_addf(&f->sql, " AND %s.key = ", p);
		f_param(f, &kp);
		sb_addf(&f->sql, " AND %s.value", p);
		return compare(f, flt, kind, err);
	default:
		return gl_fail(err, 500, NULL, "DBError: bad filter kind");
	}
}

/* The start of a property or tag test over alias al, closed by ")":
 * a correlated EXISTS probe (walking a sort index, it stops after a page),
 * or, in_form, membership in the uncorrelated set of matching artifacts
 * (SQLite builds that set once: twice as fast for counting everything).
 * The unary + keeps SQLite from turning the set into lookups by id, which
 * for a large set costs more than the scan it replaces. */
static void member_open(frag *f, const char *al, const char *table,
			const char *t, int in_form)
{
	if (in_form)
		sb_addf(&f->sql, "+%s.id IN (SELECT %s.artifact_id FROM %s %s"
			" WHERE ", al, t, table, t);
	else
		sb_addf(&f->sql, "EXISTS (SELECT 1 FROM %s %s WHERE"
			" %s.artifact_id = %s.id AND ", table, t, t, al);
}

/* One filter as a boolean SQL expression over artifact alias al. An
 * artifact without the property never matches a property filter, not
 * even `neq` (Glare's join semantics). */
static int filter_cond(frag *f, const char *al, const gl_filter *flt,
		       int in_form, gl_err *err)
{
	size_t n = json_array_size(flt->values);

	switch (flt->kind) {
	case GF_BASE:
		if (!flt->field || !is_base_column(flt->field->name))
			return gl_fail(err, 400, "BadRequest",
				       "Cannot filter on %s",
				       flt->field ? flt->field->name : "?");
		if (strcmp(flt->field->name, "version") == 0)
			return version_cond(f, al, flt, err);
		sb_addf(&f->sql, "%s.%s", al, flt->field->name);
		return compare(f, flt,
			       is_time_column(flt->field->name) ? GK_DATETIME
								: GK_STRING,
			       err);
	case GF_PROP:
	case GF_DICT_KEY:
	case GF_DICT_VAL:
		if (!flt->field)
			return gl_fail(err, 500, NULL,
				       "DBError: filter without field");
		member_open(f, al, "properties", "p", in_form);
		if (prop_match(f, "p", flt, err))
			return -1;
		f_sql(f, ")");
		return 0;
	case GF_TAGS_ALL:
		if (!n) {
			f_sql(f, "1");
			return 0;
		}
		f_sql(f, "(");
		for (size_t i = 0; i < n; i++) {
			param p;

			if (value_param(json_array_get(flt->values, i),
					GK_STRING, &p, err))
				return -1;
			if (i)
				f_sql(f, " AND ");
			member_open(f, al, "tags", "t", in_form);
			f_sql(f, "t.value = ");
			f_param(f, &p);
			f_sql(f, ")");
		}
		f_sql(f, ")");
		return 0;
	case GF_TAGS_ANY: {
		gl_filter in = *flt;

		if (!n) {
			f_sql(f, "1");
			return 0;
		}
		in.op = GL_OP_IN;
		member_open(f, al, "tags", "t", in_form);
		f_sql(f, "t.value");
		if (compare(f, &in, GK_STRING, err))
			return -1;
		f_sql(f, ")");
		return 0;
	}
	}
	return gl_fail(err, 500, NULL, "DBError: bad filter kind");
}

/* Everything that selects artifacts, over alias al: not deleted, the type,
 * the caller's visibility scope, the AND filters and the OR group. Filter
 * `skip` is left out (the driving filter, already implied by the FROM). */
static int where_sql(frag *f, const gl_list_query *q, const char *al,
		     int skip, int in_form, gl_err *err)
{
	int nor = 0;

	sb_addf(&f->sql, "%s.status != 'deleted'", al);
	if (q->type_name) {
		sb_addf(&f->sql, " AND %s.type_name = ", al);
		f_text(f, q->type_name);
	}
	if (!q->see_all) {
		if (q->public_only || !q->project) {
			sb_addf(&f->sql, " AND %s.visibility = 'public'", al);
		} else {
			sb_addf(&f->sql, " AND (%s.owner = ", al);
			f_text(f, q->project);
			sb_addf(&f->sql, " OR %s.visibility = 'public')", al);
		}
	}
	for (int i = 0; i < q->nfilters; i++) {
		if (q->filters[i].or_group || i == skip)
			continue;
		f_sql(f, " AND ");
		if (filter_cond(f, al, &q->filters[i], in_form, err))
			return -1;
	}
	for (int i = 0; i < q->nfilters; i++) {
		if (!q->filters[i].or_group)
			continue;
		f_sql(f, nor++ ? " OR " : " AND (");
		if (filter_cond(f, al, &q->filters[i], in_form, err))
			return -1;
	}
	if (nor)
		f_sql(f, ")");
	return 0;
}

/* version=latest: no visible match of the same name (and type) has a
 * higher (prefix, suffix). Equivalent to rank() = 1 per name, but as a
 * correlated probe on the name/version index it lets the page query stop
 * early instead of ranking every match. */
static int latest_sql(frag *f, const gl_list_query *q, gl_err *err)
{
	f_sql(f, " AND NOT EXISTS (SELECT 1 FROM artifacts b"
	      " WHERE b.name = a.name AND (b.version_prefix, b.version_suffix)"
	      " > (a.version_prefix, a.version_suffix) AND ");
	if (where_sql(f, q, "b", -1, 0, err))
		return -1;
	f_sql(f, ")");
	return 0;
}

/* How a filter can drive the query (drive_sql). */
enum {
	DRV_DISTINCT = 1, /* an artifact can match with several rows */
	DRV_PARTIAL = 2,  /* the rows imply only part of the filter */
};

/* The artifact_id rows of a filter's property/tag table, uncorrelated,
 * for driving the query. Returns 0 when the filter cannot drive (OR group,
 * neq, like, no values), else 1 + DRV_* flags. */
static int drive_sql(frag *f, const gl_filter *flt, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	param p;

	if (flt->or_group || !n)
		return 0;
	switch (flt->kind) {
	case GF_PROP:
	case GF_DICT_VAL:
	case GF_DICT_KEY:
		if (!flt->field || flt->op == GL_OP_NEQ ||
		    flt->op == GL_OP_LIKE)
			return 0;
		f_sql(f, "SELECT p.artifact_id AS id FROM properties p WHERE ");
		if (prop_match(f, "p", flt, err))
			return -1;
		/* a List has a row per element; a Dict one per key */
		if ((flt->kind == GF_PROP && flt->field->kind == GK_LIST) ||
		    (flt->kind == GF_DICT_KEY && n > 1))
			return 1 + DRV_DISTINCT;
		return 1;
	case GF_TAGS_ALL:
		/* one tag narrows enough; the filter still checks the rest */
		if (value_param(json_array_get(flt->values, 0), GK_STRING, &p,
				err))
			return -1;
		f_sql(f, "SELECT t.artifact_id AS id FROM tags t WHERE t.value = ");
		f_param(f, &p);
		return 1 + (n > 1 ? DRV_PARTIAL : 0);
	case GF_TAGS_ANY: {
		gl_filter in = *flt;

		in.op = GL_OP_IN;
		f_sql(f, "SELECT t.artifact_id AS id FROM tags t WHERE t.value");
		if (compare(f, &in, GK_STRING, err))
			return -1;
		return 1 + (n > 1 ? DRV_DISTINCT : 0);
	}
	default:
		return 0;
	}
}

/* A listing statement from the LRU (prepared on a miss). */
static sqlite3_stmt *dyn_get(sq_meta *m, const char *sql, gl_err *err)
{
	struct dyn_stmt *victim = &m->dyn[0];
	int rc;

	m->tick++;
	for (int i = 0; i < DYN_CACHE; i++) {
		struct dyn_stmt *d = &m->dyn[i];

		if (d->sql && strcmp(d->sql, sql) == 0) {
			d->used = m->tick;
			return d->st;
		}
		if (d->used < victim->used)
			victim = d;
	}
	sqlite3_finalize(victim->st);
	free(victim->sql);
	memset(victim, 0, sizeof *victim);
	rc = sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&victim->st, NULL);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		sqlite3_finalize(victim->st);
		victim->st = NULL;
		return NULL;
	}
	victim->sql = xstrdup(sql);
	victim->used = m->tick;
	return victim->st;
}

/* Prepare (or reuse) and bind a fragment. Text is bound SQLITE_STATIC: the
 * strings outlive the statement's use (reset before the call returns). */
static sqlite3_stmt *frag_stmt(sq_meta *m, const frag *f, gl_err *err)
{
	sqlite3_stmt *s = dyn_get(m, f->sql.p, err);

	if (!s)
		return NULL;
	for (int i = 0; i < f->np; i++) {
		const param *p = &f->pv[i];

		switch (p->t) {
		case P_INT:
			sqlite3_bind_int64(s, i + 1, p->i);
			break;
		case P_REAL:
			sqlite3_bind_double(s, i + 1, p->d);
			break;
		case P_TEXT:
			sqlite3_bind_text(s, i + 1, p->s, p->len, SQLITE_STATIC);
			break;
		default:
			sqlite3_bind_null(s, i + 1);
		}
	}
	return s;
}

static int frag_count(sq_meta *m, const frag *f, int64_t *n, gl_err *err)
{
	sqlite3_stmt *s = frag_stmt(m, f, err);
	int rc;

	if (!s)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	else
		db_fail(m, rc, err);
	finish(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Pick the AND filter with the fewest rows, if under DRIVE_THRESHOLD, and
 * write the FROM clause: driven from its rows, or the plain table. *skip:
 * the filter the driving rows fully imply (-1 if none). Returns 1 driven,
 * 2 walking the first custom sort key (its join is then in the FROM), 0
 * plain, -1 error. */
static int from_sql(sq_meta *m, frag *from, const gl_list_query *q,
		    int *skip, gl_err *err)
{
	frag best = { 0 };
	int64_t best_n = DRIVE_THRESHOLD;
	int best_rc = 0, best_i = -1;

	*skip = -1;
	for (int i = 0; i < q->nfilters; i++) {
		frag d = { 0 }, probe = { 0 };
		int64_t n;
		int rc = drive_sql(&d, &q->filters[i], err), prc;

		if (rc <= 0) {
			f_free(&d);
			if (rc < 0) {
				f_free(&best);
				return -1;
			}
			continue;
		}
		/* bounded: never more than DRIVE_THRESHOLD index entries */
		f_sql(&probe, "SELECT count(*) FROM (");
		f_cat(&probe, &d);
		sb_addf(&probe.sql, " LIMIT %d)", DRIVE_THRESHOLD);
		prc = frag_count(m, &probe, &n, err);
		f_free(&probe);
		if (prc) {
			f_free(&d);
			f_free(&best);
			return -1;
		}
		if (n < best_n) {
			best_n = n;
			f_free(&best);
			best = d;
			best_rc = rc;
			best_i = i;
		} else {
			f_free(&d);
		}
	}
	if (!best.sql.p) {
		const gl_field *custom = NULL;

		for (int i = 0; i < q->nsorts && !custom; i++)
			if (q->sorts[i].field && !q->sorts[i].field->base)
				custom = q->sorts[i].field;
		if (!custom) {
			f_sql(from, " FROM artifacts a");
			return 0;
		}
		/* walk the custom key's rows in value order (the properties
		 * primary key) and stop after a page; left to itself SQLite
		 * sorts every match instead (100 ms vs 2 at 100k) */
		f_sql(from, " FROM properties s0 CROSS JOIN artifacts a"
		      " ON a.id = s0.artifact_id AND s0.name = ");
		f_text(from, custom->name);
		f_sql(from, " AND s0.key = '' AND s0.pos = 0");
		return 2;
	}
	/* CROSS JOIN fixes the join order: SQLite would otherwise prefer
	 * walking the sort index */
	f_sql(from, " FROM (");
	if ((best_rc - 1) & DRV_DISTINCT) {
		f_sql(from, "SELECT DISTINCT id FROM (");
		f_cat(from, &best);
		f_sql(from, ")");
	} else {
		f_cat(from, &best);
	}
	f_sql(from, ") AS drv CROSS JOIN artifacts a");
	if (!((best_rc - 1) & DRV_PARTIAL))
		*skip = best_i;
	f_free(&best);
	return 1;
}

/* One sort column. Version sorts on two columns; a custom key on the
 * value of its property row joined as sN. */
struct skey {
	char expr[48];
	int desc;
	int notnull;     /* the column is never NULL in the result */
};

static int sort_keys(const gl_list_query *q, struct skey **out, int *nout,
		     gl_err *err)
{
	struct skey *k = xrealloc(NULL, (size_t)(q->nsorts * 2 + 1) * sizeof *k);
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
			snprintf(k[n].expr, sizeof k[n].expr, "a.%s", fd->name);
			k[n].desc = desc;
			k[n++].notnull =
				strcmp(fd->name, "description") != 0 &&
				strcmp(fd->name, "display_type_name") != 0 &&
				strcmp(fd->name, "activated_at") != 0;
			has_id |= strcmp(fd->name, "id") == 0;
		} else {
			snprintf(k[n].expr, sizeof k[n].expr, "s%d.value",
				 njoin++);
			k[n].desc = desc;
			k[n++].notnull = 1; /* inner join, see sort_joins */
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

/* The property row of each custom sort key, as sN (numbered as in
 * sort_keys). kw "JOIN" drops artifacts without the value, as Glare does;
 * "LEFT JOIN" is for reading the marker, which keeps its place anyway.
 * from: s0 is already the first table of the FROM (see from_sql). */
static void sort_joins(frag *f, const gl_list_query *q, const char *kw,
		       int from)
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
		sb_addf(&f->sql, " %s properties s%d ON s%d.artifact_id = a.id"
			" AND s%d.name = ", kw, njoin, njoin, njoin);
		f_text(f, fd->name);
		sb_addf(&f->sql, " AND s%d.key = '' AND s%d.pos = 0", njoin,
			njoin);
		njoin++;
	}
}

/* For counting: the custom sort keys' inner joins only drop artifacts
 * without the value, which a probe does without the join. (Not a
 * membership set: the set of every artifact having the field is large.) */
static void sort_exists(frag *f, const gl_list_query *q)
{
	for (int i = 0; i < q->nsorts; i++) {
		const gl_field *fd = q->sorts[i].field;

		if (!fd || fd->base)
			continue;
		f_sql(f, " AND ");
		member_open(f, "a", "properties", "s", 0);
		f_sql(f, "s.name = ");
		f_text(f, fd->name);
		f_sql(f, " AND s.key = '' AND s.pos = 0)");
	}
}

/* The marker's sort values (owned copies), read from its row. */
static int marker_values(sq_meta *m, const gl_list_query *q,
			 const struct skey *k, int n, param **out, gl_err *err)
{
	frag f = { 0 };
	sqlite3_stmt *s;
	param *mv;
	int rc;

	*out = NULL;
	f_sql(&f, "SELECT ");
	for (int i = 0; i < n; i++) {
		if (i)
			f_sql(&f, ", ");
		f_sql(&f, k[i].expr);
	}
	f_sql(&f, " FROM artifacts a");
	sort_joins(&f, q, "LEFT JOIN", 0);
	f_sql(&f, " WHERE a.id = ");
	f_text(&f, q->marker);
	s = frag_stmt(m, &f, err);
	f_free(&f);
	if (!s)
		return -1;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			gl_fail(err, 404, "ArtifactNotFound",
				"Artifact with id=%s not found", q->marker);
		else
			db_fail(m, rc, err);
		finish(s);
		return -1;
	}
	mv = xrealloc(NULL, (size_t)n * sizeof *mv);
	memset(mv, 0, (size_t)n * sizeof *mv);
	for (int i = 0; i < n; i++) {
		switch (sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER:
			mv[i].t = P_INT;
			mv[i].i = sqlite3_column_int64(s, i);
			break;
		case SQLITE_FLOAT:
			mv[i].t = P_REAL;
			mv[i].d = sqlite3_column_double(s, i);
			break;
		case SQLITE_NULL:
			mv[i].t = P_NULL;
			break;
		default:
			mv[i].t = P_TEXT;
			mv[i].s = xstrdup((const char *)sqlite3_column_text(s, i));
			mv[i].len = -1;
			mv[i].owned = 1;
		}
	}
	finish(s);
	*out = mv;
	return 0;
}

/* Rows after the marker in the sort order (keyset pagination):
 *   k1 > m1 OR (k1 = m1 AND k2 > m2) OR ...
 * with > meaning "later" in each key's direction and NULL the smallest
 * value (SQLite's order). A bound on the first key alone comes first so
 * SQLite can start the index range at the marker. */
static void marker_sql(frag *f, const struct skey *k, int n, const param *mv)
{
	int terms = 0;

	f_sql(f, " AND ");
	if (k[0].notnull && mv[0].t != P_NULL) {
		f_sql(f, k[0].expr);
		f_sql(f, k[0].desc ? " <= " : " >= ");
		f_param(f, &mv[0]);
		f_sql(f, " AND ");
	}
	f_sql(f, "(");
	for (int i = 0; i < n; i++) {
		/* nothing sorts after NULL going down */
		if (k[i].desc && mv[i].t == P_NULL)
			continue;
		f_sql(f, terms++ ? " OR (" : "(");
		for (int j = 0; j < i; j++) {
			f_sql(f, k[j].expr);
			if (mv[j].t == P_NULL) {
				f_sql(f, " IS NULL AND ");
			} else {
				f_sql(f, " = ");
				f_param(f, &mv[j]);
				f_sql(f, " AND ");
			}
		}
		if (mv[i].t == P_NULL) {
			f_sql(f, k[i].expr);
			f_sql(f, " IS NOT NULL");
		} else if (k[i].desc && !k[i].notnull) {
			sb_addf(&f->sql, "(%s < ", k[i].expr);
			f_param(f, &mv[i]);
			sb_addf(&f->sql, " OR %s IS NULL)", k[i].expr);
		} else {
			f_sql(f, k[i].expr);
			f_sql(f, k[i].desc ? " < " : " > ");
			f_param(f, &mv[i]);
		}
		f_sql(f, ")");
	}
	if (!terms)
		f_sql(f, "0");
	f_sql(f, ")");
}

static int sq_list(gl_meta *gm, const gl_list_query *q, json_t **artifacts,
		   int64_t *total, gl_err *err)
{
	sq_meta *m = sq(gm);

	const gl_type *view = q->type_name && q->type && !q->type->is_all
				      ? q->type : NULL;
	frag where = { 0 }, cwhere = { 0 }, from = { 0 }, joins = { 0 },
	     page = { 0 }, cnt = { 0 };
	struct skey *keys = NULL;
	param *mv = NULL, lim = { .t = P_INT };
	json_t *arr = NULL, *idx = NULL, *ids = NULL;
	sqlite3_stmt *s;
	int nkeys = 0, driven, skip, rc, ret = -1;
	char *ids_text;

	*artifacts = NULL;
	if (total)
		*total = 0;
	if (sp_begin(m, err)) /* one snapshot for page, count and blobs */
		return -1;
	if (sort_keys(q, &keys, &nkeys, err) ||
	    (driven = from_sql(m, &from, q, &skip, err)) < 0 ||
	    where_sql(&where, q, "a", skip, 0, err) ||
	    (q->latest && latest_sql(&where, q, err)))
		goto out;
	sort_joins(&joins, q, "JOIN", driven == 2);

	arr = json_array();
	if (q->limit != 0) {
		if (q->marker &&
		    marker_values(m, q, keys, nkeys, &mv, err))
			goto out;
		f_sql(&page, "SELECT " ART_COLS);
		f_cat(&page, &from);
		f_cat(&page, &joins);
		f_sql(&page, driven == 1 ? " WHERE a.id = drv.id AND "
					 : " WHERE ");
		f_cat(&page, &where);
		if (mv)
			marker_sql(&page, keys, nkeys, mv);
		f_sql(&page, " ORDER BY ");
		for (int i = 0; i < nkeys; i++)
			sb_addf(&page.sql, "%s%s%s", i ? ", " : "",
				keys[i].expr, keys[i].desc ? " DESC" : "");
		f_sql(&page, " LIMIT ");
		lim.i = q->limit < 0 ? -1 : q->limit;
		f_param(&page, &lim);
		if (!(s = frag_stmt(m, &page, err)))
			goto out;
		idx = json_object();
		ids = json_array();
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			json_t *af;

			if (row_json(m, s, view, &af, err)) {
				finish(s);
				goto out;
			}
			json_array_append_new(arr, af);
			json_object_set(idx, json_string_value(
				json_object_get(af, "id")), af);
			json_array_append(ids, json_object_get(af, "id"));
		}
		if (rc != SQLITE_DONE) {
			db_fail(m, rc, err);
			finish(s);
			goto out;
		}
		finish(s);
		if (view && json_array_size(ids)) {
			if (!(s = st(m, S_BLOBS_OF_PAGE, err)))
				goto out;
			ids_text = json_dumps(ids, JSON_COMPACT);
			if (!ids_text)
				oom();
			sqlite3_bind_text(s, 1, ids_text, -1, SQLITE_TRANSIENT);
			free(ids_text);
			if (attach_blobs(m, s, view, idx, err))
				goto out;
		}
	}
	if (total) {
		/* membership sets when counting everything; probes when the
		 * driving rows already narrowed it down */
		if (where_sql(&cwhere, q, "a", skip, driven != 1, err) ||
		    (q->latest && latest_sql(&cwhere, q, err)))
			goto out;
		sort_exists(&cwhere, q);
		f_sql(&cnt, "SELECT count(*)");
		if (driven == 1)
			f_cat(&cnt, &from);
		else
			f_sql(&cnt, " FROM artifacts a");
		f_sql(&cnt, driven == 1 ? " WHERE a.id = drv.id AND "
					: " WHERE ");
		f_cat(&cnt, &cwhere);
		if (frag_count(m, &cnt, total, err))
			goto out;
	}
	ret = 0;
out:
	if (sp_end(m, ret == 0, err))
		ret = -1;
	for (int i = 0; mv && i < nkeys; i++)
		if (mv[i].owned)
			free((char *)mv[i].s);
	free(mv);
	free(keys);
	f_free(&where);
	f_free(&cwhere);
	f_free(&from);
	f_free(&joins);
	f_free(&page);
	f_free(&cnt);
	json_decref(idx);
	json_decref(ids);
	if (ret == 0)
		*artifacts = arr;
	else
		json_decref(arr);
	return ret;
}

/* ------------------------------------------------------------------------
 * Quotas.
 * ---------------------------------------------------------------------- */

static int sq_quotas_set(gl_meta *gm, const json_t *projects, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *del, *ins;
	json_t *p, *qv;
	size_t i, j;
	int ret = -1;

	if (!json_is_array(projects))
		return gl_fail(err, 500, NULL, "DBError: quotas must be a list");
	if (!(del = st(m, S_QUOTA_DEL, err)) || !(ins = st(m, S_QUOTA_INS, err)))
		return -1;
	if (sp_begin(m, err))
		return -1;
	json_array_foreach(projects, i, p) {
		const char *pid = str_of(p, "project_id");

		if (!pid) {
			gl_fail(err, 500, NULL, "DBError: quota without project_id");
			goto out;
		}
		bind_text(del, 1, pid);
		if (run(m, del, err))
			goto out;
		json_array_foreach(json_object_get(p, "project_quotas"), j, qv) {
			const char *name = str_of(qv, "quota_name");

			if (!name)
				continue;
			bind_text(ins, 1, pid);
			bind_text(ins, 2, name);
			sqlite3_bind_int64(ins, 3, json_integer_value(
				json_object_get(qv, "quota_value")));
			if (run(m, ins, err))
				goto out;
		}
	}
	ret = 0;
out:
	return sp_end(m, ret == 0, err);
}

static int sq_quotas_get(gl_meta *gm, const char *project, json_t **out,
			 gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, project ? S_QUOTA_ONE : S_QUOTA_ALL, err);
	json_t *res;
	int rc;

	*out = NULL;
	if (!s)
		return -1;
	res = json_object();
	/* a named project is always a key, even without overrides */
	if (project) {
		bind_text(s, 1, project);
		json_object_set_new(res, project, json_object());
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *pid = (const char *)sqlite3_column_text(s, 0);
		json_t *o = json_object_get(res, pid);

		if (!o) {
			o = json_object();
			json_object_set_new(res, pid, o);
		}
		json_object_set_new(o, (const char *)sqlite3_column_text(s, 1),
				    json_integer(sqlite3_column_int64(s, 2)));
	}
	if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
		json_decref(res);
		res = NULL;
	}
	finish(s);
	*out = res;
	return res ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * The "database" blob store: bytes in blob_data, streamed with incremental
 * blob I/O so no blob is ever held in memory whole.
 * ---------------------------------------------------------------------- */

static int sq_data_put_file(gl_meta *gm, const char *location, int fd,
			    int64_t size, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s;
	sqlite3_blob *b = NULL;
	char *buf = NULL;
	int64_t off = 0;
	int rc, ret = -1;

	if (size < 0)
		return gl_fail(err, 500, NULL, "DBError: negative blob size");
	if (sp_begin(m, err))
		return -1;
	if (!(s = st(m, S_DATA_INS, err)))
		goto out;
	bind_text(s, 1, location);
	sqlite3_bind_int64(s, 2, size);
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_TOOBIG)
			gl_fail(err, 413, "RequestEntityTooLarge",
				"A blob of %lld bytes is too large for the"
				" database store", (long long)size);
		else
			db_fail(m, rc, err);
		finish(s);
		goto out;
	}
	finish(s);
	rc = sqlite3_blob_open(m->db, "main", "blob_data", "data",
			       sqlite3_last_insert_rowid(m->db), 1, &b);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		goto out;
	}
	buf = xrealloc(NULL, DATA_CHUNK);
	while (off < size) {
		size_t want = size - off < DATA_CHUNK ? (size_t)(size - off)
						      : DATA_CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			gl_fail(err, 500, NULL, "cannot read blob data: %s",
				got < 0 ? strerror(errno) : "file is short");
			goto out;
		}
		rc = sqlite3_blob_write(b, buf, (int)got, (int)off);
		if (rc != SQLITE_OK) {
			db_fail(m, rc, err);
			goto out;
		}
		off += got;
	}
	ret = 0;
out:
	free(buf);
	if (b && sqlite3_blob_close(b) != SQLITE_OK && ret == 0)
		ret = db_fail(m, SQLITE_ERROR, err);
	return sp_end(m, ret == 0, err);
}

/* rowid and size of a stored object: 0, 1 not found, -1 error */
static int data_find(sq_meta *m, const char *location, int64_t *rowid,
		     int64_t *size, gl_err *err)
{
	sqlite3_stmt *s = st(m, S_DATA_FIND, err);
	int rc;

	if (!s)
		return -1;
	bind_text(s, 1, location);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*rowid = sqlite3_column_int64(s, 0);
		*size = sqlite3_column_int64(s, 1);
	} else if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
	}
	finish(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
}

static int64_t sq_data_read(gl_meta *gm, const char *location, int64_t off,
			    void *buf, int64_t len, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_blob *b;
	int64_t rowid, size;
	int rc = data_find(m, location, &rowid, &size, err);

	if (rc < 0)
		return -1;
	if (rc == 1) {
		gl_fail(err, 404, "NotFound", "No data stored at %s", location);
		return -1;
	}
	if (off < 0 || len < 0) {
		gl_fail(err, 500, NULL, "DBError: bad read range");
		return -1;
	}
	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = size - off;
	if (len > INT_MAX)
		len = INT_MAX;
	rc = sqlite3_blob_open(m->db, "main", "blob_data", "data", rowid, 0, &b);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		return -1;
	}
	rc = sqlite3_blob_read(b, buf, (int)len, (int)off);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		sqlite3_blob_close(b);
		return -1;
	}
	sqlite3_blob_close(b);
	return len;
}

static int sq_data_exists(gl_meta *gm, const char *location, gl_err *err)
{
	sq_meta *m = sq(gm);
	int64_t rowid, size;
	int rc = data_find(m, location, &rowid, &size, err);

	return rc < 0 ? -1 : rc == 0;
}

static int sq_data_delete(gl_meta *gm, const char *location, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_DATA_DEL, err);

	if (!s)
		return -1;
	bind_text(s, 1, location);
	return run(m, s, err);
}

const struct gl_meta_ops gl_meta_sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.get = sq_get,
	.put = sq_put,
	.del = sq_delete,
	.deleted = sq_deleted,
	.set_status = sq_set_status,
	.scope_taken = sq_scope_taken,
	.count_artifacts = sq_count_artifacts,
	.used_bytes = sq_used_bytes,
	.blob_set = sq_blob_set,
	.blob_delete = sq_blob_delete,
	.blob_refs = sq_blob_refs,
	.saving_blobs = sq_saving_blobs,
	.external_blobs = sq_external_blobs,
	.gc_push = sq_gc_push,
	.gc_list = sq_gc_list,
	.gc_pop = sq_gc_pop,
	.list = sq_list,
	.quotas_set = sq_quotas_set,
	.quotas_get = sq_quotas_get,
	.data_put_file = sq_data_put_file,
	.data_read = sq_data_read,
	.data_exists = sq_data_exists,
	.data_delete = sq_data_delete,
};
