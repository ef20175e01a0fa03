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
 * Row shaping, parameter lists and the listing pieces that do not depend
 * on the dialect are shared with meta_pg.c (meta_sql.c).
 *
 * Uses sqlite3, jansson, meta_sql.c, util.c (time, memory), err.c
 * (gl_fail).
 */
#include "meta_backend.h"
#include "meta_sql.h"
#include "util.h"
#include "walsync.h"

#include <errno.h>
#include <limits.h>
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
/* Piece size for streaming the database blob store. */
#define DATA_CHUNK (1 << 20)

/* ------------------------------------------------------------------------
 * Schema. Each step moves the database from version i to i + 1 and runs in
 * the same transaction as the PRAGMA user_version that records it; later
 * versions append steps, never edit shipped ones.
 * ---------------------------------------------------------------------- */

/* The spellings meta_schema.h leaves to the backend. */
#define MS_CTEXT "TEXT"
#define MS_INT8 "INTEGER"
#define MS_BOOL "INTEGER"
#define MS_FALSE "0"
#define MS_TRUE(c) c " = 1"
#define MS_NULLS_FIRST "" /* SQLite's default */
#define MS_NOROWID " WITHOUT ROWID"
#define MS_SEQ_PK "INTEGER PRIMARY KEY AUTOINCREMENT"
#define MS_TAGS_KEY ", PRIMARY KEY (value, artifact_id)) WITHOUT ROWID;"
#include "meta_schema.h"

/* clang-format off */
static const char schema_v1[] =
	MS_ARTIFACTS
	MS_TAGS
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
	MS_BLOBS
	MS_QUOTAS
	/* a rowid table: incremental blob I/O needs the rowid */
	"CREATE TABLE blob_data ("
	" location TEXT NOT NULL PRIMARY KEY,"
	" data BLOB NOT NULL);"
	MS_GC_QUEUE;

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
	GL_MSQL_LISTING_INDEXES
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

/* The scrubber's query (gl_meta_deleted), and its planner statistics. */
static const char schema_v3[] =
	MS_DELETED_INDEX
	"DELETE FROM sqlite_stat1 WHERE idx = 'artifacts_deleted';"
	"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES"
	" ('artifacts', 'artifacts_deleted', '10000 1');"
	"ANALYZE sqlite_schema;";
/* clang-format on */

/* The cleanup queue (meta_schema.h). */
static const char schema_v4[] = MS_CLEANUP_QUEUE;

/* Events (events.c): webhook subscriptions and the outbox (meta_schema.h;
 * here AUTOINCREMENT keeps a pruned seq from being reused). */
static const char schema_v5[] = MS_EVENTS;

/* Counters kept by triggers in the transaction of every change, so they
 * are exact whatever writes (docs/storage.md, "Counters"):
 *   quota_usage      per project and type: artifacts (every status) and
 *                    blob bytes (sizes, reservations of saving blobs): the
 *                    quota checks read one row instead of counting;
 *   artifact_counts  per type, owner, visibility and status: a listing
 *                    total whose filters are on those columns only is a
 *                    sum over a few rows instead of a scan.
 * A blob's bytes are charged to its artifact's row; an artifact's delete
 * discharges its blobs before the cascade, whose blob triggers then find
 * no artifact and change nothing. The initial values come from the rows
 * already there (`glared db upgrade`). */
#define BLOB_BYTES(r) GL_MSQL_BLOB_BYTES(r)
/* clang-format off */
#define ART_BYTES(id)                                                         \
	"(SELECT coalesce(sum(" BLOB_BYTES("b") "), 0) FROM blobs b"          \
	" WHERE b.artifact_id = " id ")"
/* clang-format on */
#define USAGE_OF(id)                                                          \
	"(project_id, type_name) = (SELECT owner, type_name FROM artifacts"   \
	" WHERE id = " id ")"
#define COUNT_KEY(r)                                                          \
	"(type_name, owner, visibility, status) = (" r ".type_name, " r       \
	".owner, " r ".visibility, " r ".status)"
/* clang-format off */
static const char schema_v6[] =
	MS_COUNTERS
	"CREATE TRIGGER artifacts_counted_insert AFTER INSERT ON artifacts"
	" BEGIN"
	" INSERT INTO quota_usage (project_id, type_name, artifacts, bytes)"
	"  VALUES (NEW.owner, NEW.type_name, 1, 0)"
	"  ON CONFLICT (project_id, type_name)"
	"  DO UPDATE SET artifacts = artifacts + 1;"
	" INSERT INTO artifact_counts (type_name, owner, visibility, status, n)"
	"  VALUES (NEW.type_name, NEW.owner, NEW.visibility, NEW.status, 1)"
	"  ON CONFLICT (type_name, owner, visibility, status)"
	"  DO UPDATE SET n = n + 1;"
	" END;"
	/* BEFORE: the blobs are still there (the cascade runs after the row
	 * is gone) */
	"CREATE TRIGGER artifacts_counted_delete BEFORE DELETE ON artifacts"
	" BEGIN"
	" UPDATE quota_usage SET artifacts = artifacts - 1,"
	"  bytes = bytes - " ART_BYTES("OLD.id")
	"  WHERE (project_id, type_name) = (OLD.owner, OLD.type_name);"
	" UPDATE artifact_counts SET n = n - 1 WHERE " COUNT_KEY("OLD") ";"
	" END;"
	"CREATE TRIGGER artifacts_counted_update"
	" AFTER UPDATE OF type_name, owner, visibility, status ON artifacts"
	" WHEN OLD.type_name != NEW.type_name OR OLD.owner != NEW.owner"
	"  OR OLD.visibility != NEW.visibility OR OLD.status != NEW.status"
	" BEGIN"
	" UPDATE artifact_counts SET n = n - 1 WHERE " COUNT_KEY("OLD") ";"
	" INSERT INTO artifact_counts (type_name, owner, visibility, status, n)"
	"  VALUES (NEW.type_name, NEW.owner, NEW.visibility, NEW.status, 1)"
	"  ON CONFLICT (type_name, owner, visibility, status)"
	"  DO UPDATE SET n = n + 1;"
	" END;"
	/* the engine never moves an artifact to another owner or type; if
	 * something did, its count and bytes move with it */
	"CREATE TRIGGER artifacts_counted_move"
	" AFTER UPDATE OF type_name, owner ON artifacts"
	" WHEN OLD.type_name != NEW.type_name OR OLD.owner != NEW.owner"
	" BEGIN"
	" UPDATE quota_usage SET artifacts = artifacts - 1,"
	"  bytes = bytes - " ART_BYTES("NEW.id")
	"  WHERE (project_id, type_name) = (OLD.owner, OLD.type_name);"
	" INSERT INTO quota_usage (project_id, type_name, artifacts, bytes)"
	"  VALUES (NEW.owner, NEW.type_name, 1, " ART_BYTES("NEW.id") ")"
	"  ON CONFLICT (project_id, type_name) DO UPDATE SET"
	"  artifacts = artifacts + 1, bytes = bytes + excluded.bytes;"
	" END;"
	"CREATE TRIGGER blobs_counted_insert AFTER INSERT ON blobs BEGIN"
	" UPDATE quota_usage SET bytes = bytes + " BLOB_BYTES("NEW")
	"  WHERE " USAGE_OF("NEW.artifact_id") ";"
	" END;"
	"CREATE TRIGGER blobs_counted_delete AFTER DELETE ON blobs BEGIN"
	" UPDATE quota_usage SET bytes = bytes - " BLOB_BYTES("OLD")
	"  WHERE " USAGE_OF("OLD.artifact_id") ";"
	" END;"
	"CREATE TRIGGER blobs_counted_update AFTER UPDATE ON blobs"
	" WHEN OLD.artifact_id != NEW.artifact_id"
	"  OR " BLOB_BYTES("OLD") " != " BLOB_BYTES("NEW")
	" BEGIN"
	" UPDATE quota_usage SET bytes = bytes - " BLOB_BYTES("OLD")
	"  WHERE " USAGE_OF("OLD.artifact_id") ";"
	" UPDATE quota_usage SET bytes = bytes + " BLOB_BYTES("NEW")
	"  WHERE " USAGE_OF("NEW.artifact_id") ";"
	" END;";
/* clang-format on */

/* Scope copies: the property and tag rows repeat their artifact's
 * type_name, owner, visibility and status, so a listing total over one
 * property, dict or tag filter is a range scan of the property key or the
 * tag scope index alone instead of a probe of each match's artifact row
 * (2-7 us per match, 60 ms for 10% of 100k; docs/benchmarks.md). A put
 * writes them with the rows; the trigger keeps them in step when
 * set_status or a put moves the artifact. The version index carries the
 * scope columns for the same reason (a version range's total). */
#define SCOPE_COPY_COLS(t)                                                    \
	"ALTER TABLE " t " ADD COLUMN type_name TEXT NOT NULL DEFAULT '';"    \
	"ALTER TABLE " t " ADD COLUMN owner TEXT NOT NULL DEFAULT '';"        \
	"ALTER TABLE " t " ADD COLUMN visibility TEXT NOT NULL DEFAULT '';"   \
	"ALTER TABLE " t " ADD COLUMN status TEXT NOT NULL DEFAULT '';"       \
	"UPDATE " t " SET (type_name, owner, visibility, status) ="           \
	" (SELECT a.type_name, a.owner, a.visibility, a.status"               \
	" FROM artifacts a WHERE a.id = " t ".artifact_id);"
#define SCOPE_COPY_SET(t)                                                     \
	" UPDATE " t " SET type_name = NEW.type_name, owner = NEW.owner,"     \
	"  visibility = NEW.visibility, status = NEW.status"                  \
	"  WHERE artifact_id = NEW.id;"
/* The property rows are rebuilt keyed by type first: a WITHOUT ROWID
 * table is its primary key's b-tree, so a count reads the copies from the
 * key's range itself, and a put writes no extra index entry per row
 * (a secondary index over the copies cost creates 24% more instructions,
 * bench/cpu.py). Filters and sort walks constrain type_name to use it. */
/* clang-format off */
static const char schema_v7[] =
	"CREATE TABLE properties7 ("
	" name TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value ANY NOT NULL,"
	" artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL,"
	" type_name TEXT NOT NULL,"
	" owner TEXT NOT NULL,"
	" visibility TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" PRIMARY KEY (type_name, name, key, value, artifact_id, pos))"
	" STRICT, WITHOUT ROWID;"
	"INSERT INTO properties7 SELECT p.name, p.key, p.value, p.artifact_id,"
	" p.pos, a.type_name, a.owner, a.visibility, a.status"
	" FROM properties p JOIN artifacts a ON a.id = p.artifact_id;"
	"DROP TABLE properties;"
	"ALTER TABLE properties7 RENAME TO properties;"
	"CREATE INDEX properties_artifact ON properties(artifact_id, name, key);"
	SCOPE_COPY_COLS("tags")
	GL_MSQL_SCOPE_INDEXES
	"CREATE TRIGGER artifacts_scope_copies"
	" AFTER UPDATE OF type_name, owner, visibility, status ON artifacts"
	" WHEN OLD.type_name != NEW.type_name OR OLD.owner != NEW.owner"
	"  OR OLD.visibility != NEW.visibility OR OLD.status != NEW.status"
	" BEGIN"
	SCOPE_COPY_SET("properties")
	SCOPE_COPY_SET("tags")
	" END;"
	"DELETE FROM sqlite_stat1 WHERE idx IN ('artifacts_type_version',"
	" 'artifacts_type_version_scope', 'tags_scope')"
	" OR tbl IN ('properties', 'properties7');"
	"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES"
	" ('artifacts', 'artifacts_type_version_scope',"
	"  '1000000 100000 5000 4000 4000 2000 2000'),"
	" ('properties', 'properties',"
	"  '8000000 800000 40000 20000 50 1 1'),"
	" ('properties', 'properties_artifact', '8000000 8 2 1'),"
	" ('tags', 'tags_scope', '2000000 200000 2000 2000 2000 1000');"
	"ANALYZE sqlite_schema;";

static const char schema_v8[] = MS_CREATED_COPIES;

static const char *const migrations[] = { schema_v1, schema_v2, schema_v3,
					   schema_v4, schema_v5, schema_v6,
					   schema_v7, schema_v8 };
/* clang-format on */
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ------------------------------------------------------------------------
 * Cached statements.
 * ---------------------------------------------------------------------- */

/* clang-format off */
enum stmt_id {
	S_SP_BEGIN, S_SP_RELEASE, S_SP_ROLLBACK, S_BEGIN, S_COMMIT,
	S_BATCH_SP, S_BATCH_RELEASE, S_BATCH_ROLLBACK,
	S_ROLLBACK, S_GET, S_GET_TYPED, S_INSERT, S_UPDATE, S_TAGS_DEL,
	S_TAG_INS, S_PROPS_DEL, S_PROP_INS, S_DELETE, S_DELETED, S_SET_STATUS,
	S_SCOPE_PRIVATE, S_SCOPE_PUBLIC, S_COUNT_OWNER, S_COUNT_OWNER_TYPE,
	S_USED_OWNER, S_USED_OWNER_TYPE, S_BLOBS_OF, S_BLOBS_OF_PAGE,
	S_BLOB_SET, S_BLOB_DEL, S_BLOB_REFS, S_SAVING, S_EXTERNAL, S_GC_PUSH,
	S_GC_LIST, S_GC_POP, S_CLEANUP_PUT, S_CLEANUP_DUE, S_CLEANUP_CLAIM,
	S_CLEANUP_DEL, S_QUOTA_DEL, S_QUOTA_INS, S_QUOTA_ALL,
	S_QUOTA_ONE, S_DATA_INS, S_DATA_FIND, S_DATA_DEL, S_COUNT
};
/* clang-format on */

#define SCOPE_SQL                                                             \
	"SELECT 1 FROM artifacts WHERE type_name = ?1 AND name = ?2"          \
	" AND version_prefix = ?3 AND version_suffix = ?4"                    \
	" AND version_meta = ?5 AND status != 'deleted' AND id != ?6"
#define BLOB_LIST_SQL                                                         \
	"SELECT b.artifact_id, a.type_name, b.field, b.key, " BLOB_COLS       \
	" FROM blobs b JOIN artifacts a ON a.id = b.artifact_id"
#define QUOTA_SQL "SELECT project_id, quota_name, quota_value FROM quotas"

/* clang-format off */
static const char *const stmt_sql[S_COUNT] = {
	[S_SP_BEGIN] = "SAVEPOINT gl_sp",
	[S_SP_RELEASE] = "RELEASE gl_sp",
	[S_SP_ROLLBACK] = "ROLLBACK TO gl_sp",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_BATCH_SP] = "SAVEPOINT gl_batch",
	[S_BATCH_RELEASE] = "RELEASE gl_batch",
	[S_BATCH_ROLLBACK] = "ROLLBACK TO gl_batch",
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
	[S_TAG_INS] = "INSERT OR IGNORE INTO tags (value, artifact_id,"
		      " type_name, owner, visibility, status, created_at)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_PROPS_DEL] = "DELETE FROM properties WHERE artifact_id = ?1",
	[S_PROP_INS] = "INSERT INTO properties (name, key, value, artifact_id,"
		       " pos, type_name, owner, visibility, status, created_at)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_DELETE] = "DELETE FROM artifacts WHERE id = ?1",
	[S_DELETED] = "SELECT id, type_name FROM artifacts"
		      " WHERE status = 'deleted' AND updated_at < ?1"
		      " ORDER BY updated_at, id LIMIT ?2",
	[S_SET_STATUS] = "UPDATE artifacts SET status = ?2, updated_at = ?3,"
			 " revision = revision + 1 WHERE id = ?1",
	[S_SCOPE_PRIVATE] = SCOPE_SQL " AND owner = ?7"
			    " AND visibility = 'private' LIMIT 1",
	[S_SCOPE_PUBLIC] = SCOPE_SQL " AND visibility = 'public' LIMIT 1",
	[S_COUNT_OWNER] = "SELECT coalesce(sum(artifacts), 0) FROM quota_usage"
			  " WHERE project_id = ?1",
	[S_COUNT_OWNER_TYPE] = "SELECT coalesce(sum(artifacts), 0)"
			       " FROM quota_usage"
			       " WHERE project_id = ?1 AND type_name = ?2",
	[S_USED_OWNER] = "SELECT coalesce(sum(bytes), 0) FROM quota_usage"
			 " WHERE project_id = ?1",
	[S_USED_OWNER_TYPE] = "SELECT coalesce(sum(bytes), 0) FROM quota_usage"
			      " WHERE project_id = ?1 AND type_name = ?2",
	[S_BLOBS_OF] = "SELECT b.artifact_id, b.field, b.key, " BLOB_COLS
		       " FROM blobs b WHERE b.artifact_id = ?1",
	[S_BLOBS_OF_PAGE] = "SELECT b.artifact_id, b.field, b.key, " BLOB_COLS
			    " FROM blobs b WHERE b.artifact_id IN"
			    " (SELECT value FROM json_each(?1))",
	/* an upsert, not INSERT OR REPLACE: a replaced row would leave
	 * without its delete trigger (quota_usage) */
	[S_BLOB_SET] = "INSERT INTO blobs (artifact_id, field, key,"
		       " url, size, md5, sha1, sha256, external, status,"
		       " content_type, store, location, reserved, node, prev,"
		       " prev_store, prev_location, temp, verified_at,"
		       " verify_status, verify_error, extra) VALUES (?1, ?2,"
		       " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
		       " ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
		       " ON CONFLICT (artifact_id, field, key) DO UPDATE SET"
		       " url = excluded.url, size = excluded.size,"
		       " md5 = excluded.md5, sha1 = excluded.sha1,"
		       " sha256 = excluded.sha256,"
		       " external = excluded.external,"
		       " status = excluded.status,"
		       " content_type = excluded.content_type,"
		       " store = excluded.store, location = excluded.location,"
		       " reserved = excluded.reserved, node = excluded.node,"
		       " prev = excluded.prev,"
		       " prev_store = excluded.prev_store,"
		       " prev_location = excluded.prev_location,"
		       " temp = excluded.temp,"
		       " verified_at = excluded.verified_at,"
		       " verify_status = excluded.verify_status,"
		       " verify_error = excluded.verify_error,"
		       " extra = excluded.extra",
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
	[S_CLEANUP_PUT] = "INSERT INTO cleanup_queue (kind, target, arg,"
			  " attempts, next_at, queued_at, error)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
			  " ON CONFLICT (kind, target, arg) DO UPDATE SET"
			  " attempts = excluded.attempts,"
			  " next_at = excluded.next_at, error = excluded.error"
			  " WHERE excluded.attempts > 0",
	[S_CLEANUP_DUE] = "SELECT kind, target, arg, attempts, next_at,"
			  " queued_at, error FROM cleanup_queue"
			  " WHERE next_at <= ?1"
			  " ORDER BY next_at, kind, target, arg LIMIT ?2",
	[S_CLEANUP_CLAIM] = "UPDATE cleanup_queue SET next_at = ?5"
			    " WHERE kind = ?1 AND target = ?2 AND arg = ?3"
			    " AND next_at = ?4",
	[S_CLEANUP_DEL] = "DELETE FROM cleanup_queue WHERE kind = ?1"
			  " AND target = ?2 AND arg = ?3",
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
/* clang-format on */

/* The connection; `base` first, so a gl_meta * is an sq_meta *. */
enum durability { DUR_GROUP, DUR_FULL, DUR_NORMAL };

typedef struct sq_meta {
	struct gl_meta base;
	sqlite3 *db;
	char *path;
	enum durability durability;
	gl_walsync *ws; /* group commit, once attached */
	int batch;      /* gl_meta_batch: a transaction open */
	int version;
	sqlite3_stmt *stmts[S_COUNT];
	gl_msql_lru lru;                      /* listing statements, */
	sqlite3_stmt *dyn[GL_MSQL_DYN_CACHE]; /* by slot */
	const char *ext_sql[GL_MSQL_EXT_MAX]; /* gl_meta_exec statements, */
	sqlite3_stmt *ext[GL_MSQL_EXT_MAX]; /* by the address of their text */
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
				SQLITE_PREPARE_PERSISTENT, &m->stmts[id],
				NULL);
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

/* Step a statement that returns one integer (counts and sums), then reset
 * it. */
static int step_int(sq_meta *m, sqlite3_stmt *s, int64_t *n, gl_err *err)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	else
		db_fail(m, rc, err);
	finish(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

/* A value as it is: integers stay exact (int64), booleans are 0/1 already.
 * keep: the text outlives the statement's use (no copy). */
static void bind_val(sqlite3_stmt *s, int i, const gl_msql_val *v, int keep)
{
	switch (v->t) {
	case GL_MSQL_INT:
		sqlite3_bind_int64(s, i, v->i);
		break;
	case GL_MSQL_REAL:
		sqlite3_bind_double(s, i, v->d);
		break;
	case GL_MSQL_TEXT:
		sqlite3_bind_text(s, i, v->s, v->len,
				  keep ? SQLITE_STATIC : SQLITE_TRANSIENT);
		break;
	case GL_MSQL_BIN:
		sqlite3_bind_blob(s, i, v->s, v->len,
				  keep ? SQLITE_STATIC : SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_bind_null(s, i);
	}
}

static void bind_vals(sqlite3_stmt *s, const gl_msql_vals *p)
{
	for (int i = 0; i < p->n; i++)
		bind_val(s, i + 1, &p->v[i], 0);
}

/* Run statement id with n (up to 3) text parameters. */
static int run_texts(sq_meta *m, enum stmt_id id, int n, const char *a1,
		     const char *a2, const char *a3, gl_err *err)
{
	const char *a[3] = { a1, a2, a3 };
	sqlite3_stmt *s = st(m, id, err);

	if (!s)
		return -1;
	for (int i = 0; i < n; i++)
		bind_text(s, i + 1, a[i]);
	return run(m, s, err);
}

/* A JSON scalar as an SQL value (anything not scalar is NULL). */
static void bind_json(sqlite3_stmt *s, int i, const json_t *v)
{
	gl_msql_val mv;

	gl_msql_json_val(v, &mv);
	bind_val(s, i, &mv, 0);
}

/* The current row of a statement, for meta_sql.c's row shaping. */
static int row_null(const gl_msql_row *r, int c)
{
	return sqlite3_column_type((sqlite3_stmt *)r->res, c) == SQLITE_NULL;
}

static int64_t row_i64(const gl_msql_row *r, int c)
{
	return sqlite3_column_int64((sqlite3_stmt *)r->res, c);
}

static int row_truth(const gl_msql_row *r, int c)
{
	return sqlite3_column_int((sqlite3_stmt *)r->res, c) != 0;
}

static const char *row_text(const gl_msql_row *r, int c, size_t *len)
{
	sqlite3_stmt *s = (sqlite3_stmt *)r->res;
	/* text before bytes: the length is that of the converted text */
	const char *t = (const char *)sqlite3_column_text(s, c);

	*len = (size_t)sqlite3_column_bytes(s, c);
	return t ? t : "";
}

/* clang-format off */
static const struct gl_msql_row_ops row_ops = {
	.null = row_null, .i64 = row_i64, .truth = row_truth,
	.text = row_text,
};
/* clang-format on */

static gl_msql_row row_of(sqlite3_stmt *s)
{
	return (gl_msql_row){ .ops = &row_ops, .res = s };
}

/* Every row of a statement, shaped (gl_msql_*_row), as an array; resets s. */
static int rows_json(sq_meta *m, sqlite3_stmt *s, gl_msql_shape_fn shape,
		     json_t **out, gl_err *err)
{
	gl_msql_row r = row_of(s);
	json_t *arr = json_array();
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, shape(&r));
	if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
		json_decref(arr);
		arr = NULL;
	}
	finish(s);
	*out = arr;
	return arr ? 0 : -1;
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
	path = gl_xmalloc(n + 1);
	memcpy(path, p, n);
	path[n] = '\0';
	return path;
}

char *gl_meta_sqlite_path(const char *conn, gl_err *err)
{
	return db_path(conn, err);
}

/* mkdir -p of the directory part of path. */
static int make_parent(const char *path, gl_err *err)
{
	char *dir = gl_xstrdup(path), *slash = strrchr(dir, '/');
	int rc = 0;

	if (!slash || slash == dir) {
		free(dir);
		return 0;
	}
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
			rc = gl_fail(err, 500, NULL, "cannot create %s: %s",
				     dir, strerror(errno));
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
	int rc;

	/* tables first: a migration commits them with the version, so
	 * another process's seen here means its version is seen next */
	if (query_int(m,
		      "SELECT count(*) FROM sqlite_schema"
		      " WHERE type = 'table'",
		      &tables, err) ||
	    query_int(m, "PRAGMA user_version", &v, err))
		return -1;
	rc = gl_msql_schema_check(v, tables, upgrade, SCHEMA_VERSION, err);
	if (rc <= 0)
		return rc;
	if (exec_sql(m, "BEGIN IMMEDIATE", err))
		return -1;
	/* a newer glared may have migrated meanwhile */
	if (query_int(m, "PRAGMA user_version", &v, err) ||
	    gl_msql_schema_check(v, 0, 1, SCHEMA_VERSION, err) < 0)
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

gl_meta *gl_meta_sqlite_open(const char *conn, int upgrade,
			     const char *durability, gl_err *err)
{
	sq_meta *m;
	char *path;
	enum durability dur;
	int rc;

	if (!durability || strcmp(durability, "group") == 0) {
		dur = DUR_GROUP;
	} else if (strcmp(durability, "full") == 0) {
		dur = DUR_FULL;
	} else if (strcmp(durability, "normal") == 0) {
		dur = DUR_NORMAL;
	} else {
		gl_fail(err, 500, NULL,
			"[database] sqlite_durability must be"
			" group, full or normal, not '%s'",
			durability);
		return NULL;
	}
	path = db_path(conn, err);
	if (!path)
		return NULL;
	if (strcmp(path, ":memory:") != 0 && make_parent(path, err)) {
		free(path);
		return NULL;
	}
	m = gl_xcalloc(1, sizeof *m);
	rc = sqlite3_open_v2(path, &m->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		gl_fail(err, 500, NULL, "cannot open database %s: %s", path,
			m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(m->db, 1);
	/* before journal_mode: switching to WAL needs a lock */
	sqlite3_busy_timeout(m->db, 5000);
	/* durable commits: FULL until a loop is attached (group commit,
	 * walsync.c), NORMAL only when asked for */
	if (exec_sql(m,
		     dur == DUR_NORMAL ? "PRAGMA synchronous = NORMAL"
				       : "PRAGMA synchronous = FULL",
		     err) ||
	    exec_sql(m,
		     "PRAGMA journal_mode = WAL;"
		     "PRAGMA foreign_keys = ON;"
		     "PRAGMA temp_store = MEMORY;"
		     "PRAGMA cache_size = -65536;",
		     err))
		goto fail;
	if (migrate(m, upgrade, err))
		goto fail;
	m->base.ops = &gl_meta_sqlite_ops;
	m->version = SCHEMA_VERSION;
	m->durability = dur;
	m->path = path;
	return &m->base;
fail:
	free(path);
	sq_close(&m->base);
	return NULL;
}

/* Group commit from now on (see walsync.h); the other modes, and an
 * in-memory database, keep committing as they do. */
static int sq_attach_loop(gl_meta *gm, struct event_base *base, gl_err *err)
{
	sq_meta *m = sq(gm);

	if (m->durability != DUR_GROUP || m->ws || !m->path ||
	    strcmp(m->path, ":memory:") == 0)
		return 0;
	m->ws = gl_walsync_new(base, m->db, m->path, err);
	return m->ws ? 0 : -1;
}

static int sq_when_durable(gl_meta *gm, void (*fn)(void *arg, int ok),
			   void *arg)
{
	sq_meta *m = sq(gm);

	return m->ws ? gl_walsync_wait(m->ws, fn, arg) : 0;
}

static void sq_durable_cancel(gl_meta *gm, void *arg)
{
	sq_meta *m = sq(gm);

	if (m->ws)
		gl_walsync_cancel(m->ws, arg);
}

static int sq_sync(gl_meta *gm, gl_err *err)
{
	sq_meta *m = sq(gm);

	return m->ws ? gl_walsync_now(m->ws, err) : 0;
}

static void sq_close(gl_meta *gm)
{
	sq_meta *m = sq(gm);

	if (!m)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(m->stmts[i]);
	for (int i = 0; i < GL_MSQL_DYN_CACHE; i++)
		sqlite3_finalize(m->dyn[i]);
	for (int i = 0; i < GL_MSQL_EXT_MAX; i++)
		sqlite3_finalize(m->ext[i]);
	gl_msql_lru_free(&m->lru);
	/* every commit durable, before the connection goes */
	gl_walsync_free(m->ws);
	/* no PRAGMA optimize: it would replace the shipped statistics with
	 * sampled ones (see schema_v2) */
	sqlite3_close(m->db);
	free(m->path);
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

	return run_id(m, m->batch ? S_BATCH_SP : S_BEGIN, err);
}

/* A failed COMMIT leaves the transaction open; it is rolled back here so
 * the connection is usable again and the caller's error path is simple. */
static int sq_commit(gl_meta *gm, gl_err *err)
{
	sq_meta *m = sq(gm);

	if (run_id(m, m->batch ? S_BATCH_RELEASE : S_COMMIT, err) == 0)
		return 0;
	sq_rollback(&m->base);
	return -1;
}

static void sq_rollback(gl_meta *gm)
{
	sq_meta *m = sq(gm);
	gl_err ignore;

	if (m->batch) { /* this write alone; fails if none is open */
		if (run_id(m, S_BATCH_ROLLBACK, &ignore) == 0)
			run_id(m, S_BATCH_RELEASE, &ignore);
	} else if (!sqlite3_get_autocommit(m->db)) {
		run_id(m, S_ROLLBACK, &ignore);
	}
}

static int sq_batch(gl_meta *gm, int on, gl_err *err)
{
	sq_meta *m = sq(gm);
	gl_err ignore;

	if (on < 0) { /* roll the whole batch back */
		if (m->batch && !sqlite3_get_autocommit(m->db))
			run_id(m, S_ROLLBACK, &ignore);
		m->batch = 0;
		return 0;
	}
	if (on) {
		if (m->batch || m->ws) {
			gl_fail(err, 400, NULL,
				m->batch ? "a batch is open"
					   " already"
					 : "no batches on a serving worker");
			return -1;
		}
		if (run_id(m, S_BEGIN, err))
			return -1;
		m->batch = 1;
		return 0;
	}
	if (!m->batch) {
		gl_fail(err, 400, NULL, "no batch is open");
		return -1;
	}
	m->batch = 0;
	if (run_id(m, S_COMMIT, err) == 0)
		return 0;
	if (!sqlite3_get_autocommit(m->db))
		run_id(m, S_ROLLBACK, &ignore);
	return -1;
}

/* ------------------------------------------------------------------------
 * Artifacts.
 * ---------------------------------------------------------------------- */

/* Attach the blob rows of a statement (artifact_id, field, key, BLOB_COLS)
 * to the artifacts in idx (id -> artifact); resets s. */
static int attach_blobs(sq_meta *m, sqlite3_stmt *s, const gl_type *type,
			json_t *idx, gl_err *err)
{
	gl_msql_row r = row_of(s);
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		gl_msql_attach_page_blob(idx, type, &r);
	if (rc != SQLITE_DONE)
		db_fail(m, rc, err);
	finish(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_get(gl_meta *gm, const gl_type *type, const char *id,
		  json_t **af, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s;
	gl_msql_row r;
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
	r = row_of(s);
	if (rc == SQLITE_DONE) {
		ret = 1;
	} else if (rc != SQLITE_ROW) {
		db_fail(m, rc, err);
	} else if (gl_msql_artifact_json(&r, type, &a, err) == 0) {
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

/* The property rows of a put (gl_msql_each_prop), one INSERT each. */
struct prop_ins {
	sq_meta *m;
	sqlite3_stmt *s;
	const char *id;
	const gl_msql_vals *p;
	gl_err *err;
};

/* The scope copies of a property or tag row (schema_v7) and its
 * created_at (schema_v8) from the artifact's own parameters
 * (gl_msql_artifact_vals: ?2, ?8, ?9, ?10, ?13), bound from parameter `at`
 * on. */
static void bind_scope(sqlite3_stmt *s, int at, const gl_msql_vals *p)
{
	static const int from[] = { 1, 7, 8, 9, 12 };

	for (int i = 0; i < 5; i++)
		bind_val(s, at + i, &p->v[from[i]], 1);
}

static int prop_ins(void *ctx, const char *name, const char *key, int pos,
		    const json_t *v)
{
	struct prop_ins *pi = ctx;

	bind_text(pi->s, 1, name);
	bind_text(pi->s, 2, key);
	bind_json(pi->s, 3, v);
	bind_text(pi->s, 4, pi->id);
	sqlite3_bind_int(pi->s, 5, pos);
	bind_scope(pi->s, 6, pi->p);
	return run(pi->m, pi->s, pi->err);
}

static int sq_put(gl_meta *gm, const gl_type *type, json_t *af,
		  const gl_vkey *vk, int insert, gl_err *err)
{
	sq_meta *m = sq(gm);
	const char *id;
	json_t *tags = NULL, *v;
	sqlite3_stmt *s;
	gl_msql_vals p = { 0 };
	struct prop_ins pi;
	int64_t rev = json_integer_value(json_object_get(af, "revision"));
	int rc, ret = -1;
	size_t i;

	if (gl_msql_put_check(type, af, vk, err) ||
	    gl_msql_artifact_vals(&p, type, af, vk, rev, err)) {
		gl_msql_vals_free(&p);
		return -1;
	}
	if (!insert)
		gl_msql_set_int(&p, 18, rev);
	id = p.v[0].s;
	if (sp_begin(m, err)) {
		gl_msql_vals_free(&p);
		return -1;
	}
	if (!(s = st(m, insert ? S_INSERT : S_UPDATE, err)))
		goto out;
	bind_vals(s, &p);
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

	tags = gl_msql_tags(af);
	if (json_array_size(tags)) {
		if (!(s = st(m, S_TAG_INS, err))) /* OR IGNORE: duplicates */
			goto out;
		json_array_foreach(tags, i, v) {
			bind_json(s, 1, v);
			bind_text(s, 2, id);
			bind_scope(s, 3, &p);
			if (run(m, s, err))
				goto out;
		}
	}
	if (!(s = st(m, S_PROP_INS, err)))
		goto out;
	pi = (struct prop_ins){ .m = m, .s = s, .id = id, .p = &p, .err = err };
	if (gl_msql_each_prop(type, af, prop_ins, &pi))
		goto out;
	ret = 0;
out:
	json_decref(tags);
	if (sp_end(m, ret >= 0, err) && ret >= 0)
		ret = -1;
	gl_msql_vals_free(&p);
	if (ret == 0)
		json_object_set_new(af, "revision", json_integer(rev + 1));
	return ret;
}

static int sq_delete(gl_meta *gm, const char *id, gl_err *err)
{
	/* tags, properties, blobs: ON DELETE CASCADE */
	return run_texts(sq(gm), S_DELETE, 1, id, NULL, NULL, err);
}

static int sq_deleted(gl_meta *gm, int64_t before_us, int limit, json_t **out,
		      gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_DELETED, err);

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, before_us);
	sqlite3_bind_int(s, 2, limit);
	return rows_json(m, s, gl_msql_deleted_row, out, err);
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
	gl_msql_vals p = { 0 };
	int rc;

	if (!s)
		return -1;
	gl_msql_scope_vals(&p, type_name, name, vk, owner, exclude_id);
	bind_vals(s, &p);
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

	if (!s)
		return -1;
	bind_text(s, 1, a1);
	if (a2)
		bind_text(s, 2, a2);
	return step_int(m, s, n, err);
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
	gl_msql_vals p = { 0 };
	int rc;

	if (!blob || json_is_null(blob))
		return sq_blob_delete(gm, artifact_id, field, key, err);
	if (gl_msql_blob_vals(&p, artifact_id, field, key, blob, err) ||
	    !(s = st(m, S_BLOB_SET, err))) {
		gl_msql_vals_free(&p);
		return -1;
	}
	bind_vals(s, &p);
	rc = run(m, s, err);
	gl_msql_vals_free(&p);
	return rc;
}

static int sq_blob_delete(gl_meta *gm, const char *artifact_id,
			  const char *field, const char *key, gl_err *err)
{
	return run_texts(sq(gm), S_BLOB_DEL, 3, artifact_id, field,
			 key ? key : "", err);
}

static int sq_blob_refs(gl_meta *gm, const char *store, const char *location,
			int64_t *n, gl_err *err)
{
	sq_meta *m = sq(gm);

	return count_query(m, S_BLOB_REFS, store, location, n, err);
}

static int sq_saving_blobs(gl_meta *gm, json_t **out, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_SAVING, err);

	*out = NULL;
	return s ? rows_json(m, s, gl_msql_blob_row, out, err) : -1;
}

static int sq_external_blobs(gl_meta *gm, int limit, json_t **out, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_EXTERNAL, err);

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int(s, 1, limit);
	return rows_json(m, s, gl_msql_blob_row, out, err);
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

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int(s, 1, limit);
	return rows_json(m, s, gl_msql_gc_row, out, err);
}

static int sq_gc_pop(gl_meta *gm, const char *store, const char *location,
		     gl_err *err)
{
	return run_texts(sq(gm), S_GC_POP, 2, store, location, NULL, err);
}

static int sq_cleanup_put(gl_meta *gm, const char *kind, const char *target,
			  const char *arg, int attempts, int64_t next_at,
			  const char *error, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_CLEANUP_PUT, err);

	if (!s)
		return -1;
	bind_text(s, 1, kind);
	bind_text(s, 2, target);
	bind_text(s, 3, arg ? arg : "");
	sqlite3_bind_int(s, 4, attempts);
	sqlite3_bind_int64(s, 5, next_at);
	sqlite3_bind_int64(s, 6, gl_now_us());
	bind_text(s, 7, error);
	return run(m, s, err);
}

static int sq_cleanup_due(gl_meta *gm, int64_t now_us, int limit, json_t **out,
			  gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_CLEANUP_DUE, err);

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, now_us);
	sqlite3_bind_int(s, 2, limit);
	return rows_json(m, s, gl_msql_cleanup_row, out, err);
}

static int sq_cleanup_claim(gl_meta *gm, const char *kind, const char *target,
			    const char *arg, int64_t seen_next_at,
			    int64_t until_us, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, S_CLEANUP_CLAIM, err);

	if (!s)
		return -1;
	bind_text(s, 1, kind);
	bind_text(s, 2, target);
	bind_text(s, 3, arg ? arg : "");
	sqlite3_bind_int64(s, 4, seen_next_at);
	sqlite3_bind_int64(s, 5, until_us);
	if (run(m, s, err) < 0)
		return -1;
	return sqlite3_changes(m->db) > 0;
}

static int sq_cleanup_del(gl_meta *gm, const char *kind, const char *target,
			  const char *arg, gl_err *err)
{
	return run_texts(sq(gm), S_CLEANUP_DEL, 3, kind, target,
			 arg ? arg : "", err);
}

/* ------------------------------------------------------------------------
 * Listing. The conditions, sort keys and keyset pagination are shared
 * with the PostgreSQL store (meta_sql.c); what is SQLite's own: the
 * value comparisons (typeless `value ANY` columns), driving the query
 * from a selective filter's rows, walking a custom sort key's rows, and
 * counting with membership sets.
 * ---------------------------------------------------------------------- */

static const gl_msql_dialect dialect;

/* The dialect's value test (gl_msql_dialect.cond): a property row has one
 * typeless `value` column, compared as SQLite compares mixed types. */
static int sq_cond(gl_msql_frag *f, const char *expr, const gl_filter *flt,
		   gl_kind kind, enum gl_msql_target tg, gl_err *err)
{
	char col[48];

	if (tg == GL_MSQL_TG_PROP) {
		snprintf(col, sizeof col, "%s.value", expr);
		expr = col;
	}
	return gl_msql_compare(f, &dialect, expr, flt, kind, tg, err);
}

/* SQLite's LIKE: ASCII case-insensitive, as Glare's filters are. */
static int sq_like(gl_msql_frag *f, const char *expr, const json_t *v,
		   gl_kind kind, gl_err *err)
{
	gl_msql_val p;

	if (gl_msql_value(v, kind == GK_DATETIME, &p, err))
		return -1;
	gl_msql_sql(f, expr);
	gl_msql_sql(f, " LIKE ");
	gl_msql_arg(f, &p);
	return 0;
}

static const char *sq_sort_column(const gl_field *fd)
{
	(void)fd;
	return "value";
}

/* clang-format off */
static const gl_msql_dialect dialect = {
	.cond = sq_cond,
	.like = sq_like,
	.sort_column = sq_sort_column,
	.sort_typed = 0,  /* `value` is never NULL */
	.null_order = 0,  /* NULL is the smallest value already */
};
/* clang-format on */

/* How a filter can drive the query (drive_sql). */
enum {
	DRV_DISTINCT = 1, /* an artifact can match with several rows */
	DRV_PARTIAL = 2,  /* the rows imply only part of the filter */
};

/* The artifact_id rows of a filter's property/tag table, uncorrelated,
 * for driving the query. Returns 0 when the filter cannot drive (OR group,
 * neq, like, no values), else 1 + DRV_* flags. */
static int drive_sql(gl_msql_frag *f, const char *type_name,
		     const gl_filter *flt, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	gl_msql_val p;

	if (flt->or_group || !n)
		return 0;
	switch (flt->kind) {
	case GF_PROP:
	case GF_DICT_VAL:
	case GF_DICT_KEY:
		if (!flt->field || flt->op == GL_OP_NEQ ||
		    flt->op == GL_OP_LIKE)
			return 0;
		gl_msql_sql(f,
			    "SELECT p.artifact_id AS id FROM properties p WHERE ");
		if (type_name) { /* the key's first column */
			gl_msql_sql(f, "p.type_name = ");
			gl_msql_arg_text(f, type_name);
			gl_msql_sql(f, " AND ");
		}
		if (gl_msql_prop_match(f, &dialect, "p", flt, err))
			return -1;
		/* a List has a row per element; a Dict one per key */
		if ((flt->kind == GF_PROP && flt->field->kind == GK_LIST) ||
		    (flt->kind == GF_DICT_KEY && n > 1))
			return 1 + DRV_DISTINCT;
		return 1;
	case GF_TAGS_ALL:
		/* one tag narrows enough; the filter still checks the rest */
		if (gl_msql_value(json_array_get(flt->values, 0), 0, &p, err))
			return -1;
		gl_msql_sql(
			f,
			"SELECT t.artifact_id AS id FROM tags t WHERE t.value = ");
		gl_msql_arg(f, &p);
		return 1 + (n > 1 ? DRV_PARTIAL : 0);
	case GF_TAGS_ANY: {
		gl_filter in = *flt;

		in.op = GL_OP_IN;
		gl_msql_sql(f,
			    "SELECT t.artifact_id AS id FROM tags t WHERE ");
		if (gl_msql_compare(f, &dialect, "t.value", &in, GK_STRING,
				    GL_MSQL_TG_TEXT, err))
			return -1;
		return 1 + (n > 1 ? DRV_DISTINCT : 0);
	}
	default:
		return 0;
	}
}

/* A listing statement from the LRU (prepared on a miss). Takes sql. */
static sqlite3_stmt *dyn_get(sq_meta *m, char *sql, gl_err *err)
{
	int hit, i = gl_msql_lru_find(&m->lru, sql, &hit), rc;

	if (hit) {
		free(sql);
		return m->dyn[i];
	}
	sqlite3_finalize(m->dyn[i]);
	m->dyn[i] = NULL;
	rc = sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&m->dyn[i], NULL);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		sqlite3_finalize(m->dyn[i]);
		m->dyn[i] = NULL;
		free(sql);
		return NULL;
	}
	gl_msql_lru_keep(&m->lru, i, sql);
	return m->dyn[i];
}

static void placeholder(gl_sb *out, int k, const gl_msql_val *v)
{
	(void)k;
	(void)v;
	gl_sb_add(out, "?");
}

/* Prepare (or reuse) and bind a fragment. Text is bound without a copy:
 * the strings outlive the statement's use (reset before the call
 * returns). */
static sqlite3_stmt *frag_stmt(sq_meta *m, const gl_msql_frag *f, gl_err *err)
{
	sqlite3_stmt *s = dyn_get(m, gl_msql_frag_render(f, placeholder), err);

	if (!s)
		return NULL;
	for (int i = 0; i < f->np; i++)
		bind_val(s, i + 1, &f->pv[i], 1);
	return s;
}

static int frag_count(sq_meta *m, const gl_msql_frag *f, int64_t *n,
		      gl_err *err)
{
	sqlite3_stmt *s = frag_stmt(m, f, err);

	return s ? step_int(m, s, n, err) : -1;
}

/* Pick the AND filter with the fewest rows, if under DRIVE_THRESHOLD, and
 * write the FROM clause: driven from its rows, or the plain table. *skip:
 * the filter the driving rows fully imply (-1 if none). Returns 1 driven,
 * 2 walking the first custom sort key (its join is then in the FROM), 0
 * plain, -1 error. */
static int from_sql(sq_meta *m, gl_msql_frag *from, const gl_list_query *q,
		    int *skip, gl_err *err)
{
	gl_msql_frag best = { 0 };
	int64_t best_n = DRIVE_THRESHOLD;
	int best_rc = 0, best_i = -1;

	*skip = -1;
	for (int i = 0; i < q->nfilters; i++) {
		gl_msql_frag d = { 0 }, probe = { 0 };
		int64_t n;
		int rc = drive_sql(&d, q->type_name, &q->filters[i], err), prc;

		if (rc <= 0) {
			gl_msql_frag_free(&d);
			if (rc < 0) {
				gl_msql_frag_free(&best);
				return -1;
			}
			continue;
		}
		/* bounded: never more than DRIVE_THRESHOLD index entries */
		gl_msql_sql(&probe, "SELECT count(*) FROM (");
		gl_msql_cat(&probe, &d);
		gl_msql_sqlf(&probe, " LIMIT %d)", DRIVE_THRESHOLD);
		prc = frag_count(m, &probe, &n, err);
		gl_msql_frag_free(&probe);
		if (prc) {
			gl_msql_frag_free(&d);
			gl_msql_frag_free(&best);
			return -1;
		}
		if (n < best_n) {
			best_n = n;
			gl_msql_frag_free(&best);
			best = d;
			best_rc = rc;
			best_i = i;
		} else {
			gl_msql_frag_free(&d);
		}
	}
	if (!best.sql.p) {
		const gl_field *custom = NULL;

		for (int i = 0; i < q->nsorts && !custom; i++)
			if (q->sorts[i].field && !q->sorts[i].field->base)
				custom = q->sorts[i].field;
		if (!custom) {
			gl_msql_sql(from, " FROM artifacts a");
			return 0;
		}
		/* walk the custom key's rows in value order (the properties
		 * primary key) and stop after a page; left to itself SQLite
		 * sorts every match instead (100 ms vs 2 at 100k) */
		gl_msql_sql(from, " FROM properties s0 CROSS JOIN artifacts a"
				  " ON a.id = s0.artifact_id AND ");
		if (q->type_name) {
			gl_msql_sql(from, "s0.type_name = ");
			gl_msql_arg_text(from, q->type_name);
			gl_msql_sql(from, " AND ");
		}
		gl_msql_sql(from, "s0.name = ");
		gl_msql_arg_text(from, custom->name);
		gl_msql_sql(from, " AND s0.key = '' AND s0.pos = 0");
		return 2;
	}
	/* CROSS JOIN fixes the join order: SQLite would otherwise prefer
	 * walking the sort index */
	gl_msql_sql(from, " FROM (");
	if ((best_rc - 1) & DRV_DISTINCT) {
		gl_msql_sql(from, "SELECT DISTINCT id FROM (");
		gl_msql_cat(from, &best);
		gl_msql_sql(from, ")");
	} else {
		gl_msql_cat(from, &best);
	}
	gl_msql_sql(from, ") AS drv CROSS JOIN artifacts a");
	if (!((best_rc - 1) & DRV_PARTIAL))
		*skip = best_i;
	gl_msql_frag_free(&best);
	return 1;
}

/* The marker's sort values (owned copies), read from its row. */
static int marker_values(sq_meta *m, const gl_list_query *q,
			 const gl_msql_skey *k, int n, gl_msql_val **out,
			 gl_err *err)
{
	gl_msql_frag f = { 0 };
	sqlite3_stmt *s;
	gl_msql_val *mv;
	int rc;

	*out = NULL;
	gl_msql_marker_select(&f, &dialect, q, k, n);
	s = frag_stmt(m, &f, err);
	gl_msql_frag_free(&f);
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
	mv = gl_xcalloc((size_t)n, sizeof *mv);
	for (int i = 0; i < n; i++) {
		switch (sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER:
			mv[i].t = GL_MSQL_INT;
			mv[i].i = sqlite3_column_int64(s, i);
			break;
		case SQLITE_FLOAT:
			mv[i].t = GL_MSQL_REAL;
			mv[i].d = sqlite3_column_double(s, i);
			break;
		case SQLITE_NULL:
			mv[i].t = GL_MSQL_NULL;
			break;
		default: {
			/* the exact bytes: a stored value may hold a NUL */
			const char *t = (const char *)sqlite3_column_text(s,
									  i);
			int len = sqlite3_column_bytes(s, i);

			mv[i].t = GL_MSQL_TEXT;
			mv[i].owned = gl_xmalloc((size_t)len + 1);
			memcpy(mv[i].owned, t ? t : "", (size_t)len);
			mv[i].owned[len] = '\0';
			mv[i].s = mv[i].owned;
			mv[i].len = len;
		}
		}
	}
	finish(s);
	*out = mv;
	return 0;
}

/* The page of a custom sort driven by its one selective property or tag
 * filter (with scope filters only; from_sql chose it): the top of the
 * filter's rows by the sort keys, each row's scope and created_at from its
 * copies (schema_v7, _v8) and its sort values from properties_artifact
 * (which holds the primary key's value and pos: covering), then the whole
 * artifact row of the page's ids alone. The plain driven page read every
 * match's artifact row and sorted them whole: 11-13 ms for 1,000 matches
 * at 100k with the rows out of the cache, 5 ms this way
 * (docs/benchmarks.md, "Custom sort from the copies"). Without a marker
 * (counted), each row also carries the total, count(*) OVER () over the
 * joined matches before the LIMIT: every artifact the listing pages
 * through, which the count would visit again. Returns 1 with the statement in page and the outer
 * sort keys (t.kN) in *tkp, 0 when q has another shape, -1 on error. */
static int copies_page(gl_msql_frag *page, const gl_list_query *q,
		       const gl_msql_skey *keys, int nkeys,
		       const gl_msql_frag *joins, const gl_msql_val *mv,
		       const gl_msql_val *lim, int counted, gl_msql_skey **tkp,
		       gl_err *err)
{
	gl_msql_frag rows = { 0 };
	int one_row = 0, custom = 0, rc;

	for (int i = 0; i < nkeys; i++) {
		if (keys[i].expr[0] == 's') /* sN.value, gl_msql_sort_keys */
			custom++;
		else if (strcmp(keys[i].expr, "a.id") != 0 &&
			 strcmp(keys[i].expr, "a.created_at") != 0)
			return 0;
	}
	if (!custom)
		return 0;
	rc = gl_msql_scoped_rows(&rows, &dialect, q, "x", &one_row, err);
	if (rc <= 0) {
		gl_msql_frag_free(&rows);
		return rc;
	}
	gl_msql_sql(page, counted ? "SELECT " ART_COLS ", t.n FROM (SELECT"
				    " a.id AS id, count(*) OVER () AS n"
				  : "SELECT " ART_COLS
				    " FROM (SELECT a.id AS id");
	*tkp = gl_msql_top_keys(page, keys, nkeys);
	gl_msql_sql(page,
		    one_row ? " FROM (SELECT x.artifact_id AS id,"
			      " x.created_at AS created_at"
			    : " FROM (SELECT DISTINCT x.artifact_id AS id,"
			      " x.created_at AS created_at");
	gl_msql_cat(page, &rows);
	gl_msql_sql(page, ") AS a");
	gl_msql_cat(page, joins);
	gl_msql_sql(page, " WHERE 1");
	/* CROSS JOIN: the page's ids first, whatever the estimates */
	gl_msql_top_end(page, &dialect, keys, *tkp, nkeys, mv, lim,
			"CROSS JOIN");
	gl_msql_frag_free(&rows);
	return 1;
}

static int sq_list(gl_meta *gm, const gl_list_query *q, json_t **artifacts,
		   int64_t *total, gl_err *err)
{
	sq_meta *m = sq(gm);

	const gl_type *view = q->type_name && q->type && !q->type->is_all
				      ? q->type
				      : NULL;
	gl_msql_frag where = { 0 }, cwhere = { 0 }, from = { 0 },
		     joins = { 0 }, page = { 0 }, cnt = { 0 };
	gl_msql_skey *keys = NULL, *tk = NULL;
	gl_msql_val *mv = NULL, lim = { .t = GL_MSQL_INT };
	gl_msql_page pg;
	sqlite3_stmt *s;
	gl_msql_row r;
	int nkeys = 0, driven, skip, rc, ret = -1, counted = 0;
	char *ids_text;

	*artifacts = NULL;
	if (total)
		*total = 0;
	if (sp_begin(m, err)) /* one snapshot for page, count and blobs */
		return -1;
	gl_msql_page_init(&pg);
	if (gl_msql_sort_keys(&dialect, q, &keys, &nkeys, err) ||
	    (driven = from_sql(m, &from, q, &skip, err)) < 0 ||
	    gl_msql_where(&where, &dialect, q, "a", skip, 0, err) ||
	    (q->latest && gl_msql_latest(&where, &dialect, q, err)))
		goto out;
	gl_msql_sort_joins(&joins, &dialect, q, "JOIN", driven == 2);

	if (q->limit != 0) {
		if (q->marker && marker_values(m, q, keys, nkeys, &mv, err))
			goto out;
		lim.i = q->limit < 0 ? -1 : q->limit;
		counted = total && !mv;
		if (driven != 1 ||
		    (rc = copies_page(&page, q, keys, nkeys, &joins, mv, &lim,
				      counted, &tk, err)) == 0) {
			counted = 0;
			gl_msql_sql(&page, "SELECT " ART_COLS);
			gl_msql_cat(&page, &from);
			gl_msql_cat(&page, &joins);
			gl_msql_sql(&page, driven == 1 ? " WHERE a.id = drv.id"
							 " AND "
						       : " WHERE ");
			gl_msql_cat(&page, &where);
			gl_msql_page_end(&page, &dialect, keys, nkeys, mv,
					 &lim);
		} else if (rc < 0) {
			goto out;
		}
		if (!(s = frag_stmt(m, &page, err)))
			goto out;
		r = row_of(s);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			json_t *af;

			if (counted && !json_array_size(pg.ids))
				*total = sqlite3_column_int64(s, C_NCOLS);
			if (gl_msql_artifact_json(&r, view, &af, err)) {
				finish(s);
				goto out;
			}
			gl_msql_page_add(&pg, af);
		}
		if (rc != SQLITE_DONE) {
			db_fail(m, rc, err);
			finish(s);
			goto out;
		}
		finish(s);
		if (view && json_array_size(pg.ids)) {
			if (!(s = st(m, S_BLOBS_OF_PAGE, err)))
				goto out;
			ids_text = gl_msql_page_ids(&pg);
			sqlite3_bind_text(s, 1, ids_text, -1,
					  SQLITE_TRANSIENT);
			free(ids_text);
			if (attach_blobs(m, s, view, pg.idx, err))
				goto out;
		}
	}
	if (counted) {
		/* the page's last column (narrow_page) */
	} else if (total && gl_msql_counts_total(q)) {
		/* a sum over the kept counts (schema_v6) */
		gl_msql_sql(&cnt, "SELECT coalesce(sum(a.n), 0)"
				  " FROM artifact_counts a WHERE ");
		if (gl_msql_where(&cnt, &dialect, q, "a", -1, 0, err) ||
		    frag_count(m, &cnt, total, err))
			goto out;
	} else if (total &&
		   (rc = gl_msql_scoped_count(&cnt, &dialect, q, err))) {
		/* one property or tag filter: its rows' scope copies */
		if (rc < 0 || frag_count(m, &cnt, total, err))
			goto out;
	} else if (total) {
		/* membership sets when counting everything; probes when the
		 * driving rows already narrowed it down */
		if (gl_msql_where(&cwhere, &dialect, q, "a", skip, driven != 1,
				  err) ||
		    (q->latest && gl_msql_latest(&cwhere, &dialect, q, err)))
			goto out;
		gl_msql_sort_exists(&cwhere, &dialect, q);
		gl_msql_sql(&cnt, "SELECT count(*)");
		if (driven == 1)
			gl_msql_cat(&cnt, &from);
		else
			gl_msql_sql(&cnt, " FROM artifacts a");
		gl_msql_sql(&cnt, driven == 1 ? " WHERE a.id = drv.id AND "
					      : " WHERE ");
		gl_msql_cat(&cnt, &cwhere);
		if (frag_count(m, &cnt, total, err))
			goto out;
	}
	ret = 0;
out:
	if (sp_end(m, ret == 0, err))
		ret = -1;
	gl_msql_marker_free(mv, nkeys);
	free(keys);
	free(tk);
	gl_msql_frag_free(&where);
	gl_msql_frag_free(&cwhere);
	gl_msql_frag_free(&from);
	gl_msql_frag_free(&joins);
	gl_msql_frag_free(&page);
	gl_msql_frag_free(&cnt);
	*artifacts = gl_msql_page_done(&pg, ret == 0);
	return ret;
}

/* ------------------------------------------------------------------------
 * Quotas.
 * ---------------------------------------------------------------------- */

struct quota_ctx {
	sq_meta *m;
	sqlite3_stmt *del, *ins;
};

static int quota_clear(void *ctx, const char *project, gl_err *err)
{
	struct quota_ctx *c = ctx;

	bind_text(c->del, 1, project);
	return run(c->m, c->del, err);
}

static int quota_add(void *ctx, const char *project, const char *name,
		     int64_t value, gl_err *err)
{
	struct quota_ctx *c = ctx;

	bind_text(c->ins, 1, project);
	bind_text(c->ins, 2, name);
	sqlite3_bind_int64(c->ins, 3, value);
	return run(c->m, c->ins, err);
}

static int sq_quotas_set(gl_meta *gm, const json_t *projects, gl_err *err)
{
	static const gl_msql_quota_ops ops = { quota_clear, quota_add };
	struct quota_ctx c = { .m = sq(gm) };
	int ok;

	if (gl_msql_quotas_check(projects, err) ||
	    !(c.del = st(c.m, S_QUOTA_DEL, err)) ||
	    !(c.ins = st(c.m, S_QUOTA_INS, err)) || sp_begin(c.m, err))
		return -1;
	ok = gl_msql_quotas_each(projects, &ops, &c, err) == 0;
	return sp_end(c.m, ok, err);
}

static int sq_quotas_get(gl_meta *gm, const char *project, json_t **out,
			 gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = st(m, project ? S_QUOTA_ONE : S_QUOTA_ALL, err);
	gl_msql_row r = row_of(s);
	json_t *res;
	int rc;

	*out = NULL;
	if (!s)
		return -1;
	if (project)
		bind_text(s, 1, project);
	res = gl_msql_quotas_new(project);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		gl_msql_quota_row(res, &r);
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
				" database store",
				(long long)size);
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
	buf = gl_xmalloc(DATA_CHUNK);
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
		gl_fail(err, 404, "NotFound", "No data stored at %s",
			location);
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
	rc = sqlite3_blob_open(m->db, "main", "blob_data", "data", rowid, 0,
			       &b);
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
	return run_texts(sq(gm), S_DATA_DEL, 1, location, NULL, NULL, err);
}

/* ------------------------------------------------------------------------
 * Statements of other units (gl_meta_exec): $n are named parameters to
 * SQLite, bound by name, so one text serves both stores.
 * ---------------------------------------------------------------------- */

static sqlite3_stmt *ext_stmt(sq_meta *m, const char *sql, gl_err *err)
{
	int i, rc;

	for (i = 0; i < GL_MSQL_EXT_MAX && m->ext_sql[i]; i++)
		if (m->ext_sql[i] == sql)
			return m->ext[i];
	if (i == GL_MSQL_EXT_MAX) {
		gl_fail(err, 500, NULL, "DBError: too many statement texts");
		return NULL;
	}
	rc = sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&m->ext[i], NULL);
	if (rc != SQLITE_OK) {
		db_fail(m, rc, err);
		return NULL;
	}
	m->ext_sql[i] = sql;
	return m->ext[i];
}

static json_t *ext_col(sqlite3_stmt *s, int c)
{
	switch (sqlite3_column_type(s, c)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(s, c));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(s, c));
	case SQLITE_NULL:
		return json_null();
	default: {
		const char *t = (const char *)sqlite3_column_text(s, c);
		json_t *v = t ? json_stringn(t,
					     (size_t)sqlite3_column_bytes(s,
									  c))
			      : NULL;
		return v ? v : json_null();
	}
	}
}

static int sq_exec(gl_meta *gm, const char *sql, const json_t *args,
		   json_t **rows, int64_t *changed, gl_err *err)
{
	sq_meta *m = sq(gm);
	sqlite3_stmt *s = ext_stmt(m, sql, err);
	json_t *arr = NULL, *v;
	char name[24];
	size_t i;
	int rc;

	if (rows)
		*rows = NULL;
	if (!s)
		return -1;
	json_array_foreach(args, i, v) {
		int k;
		snprintf(name, sizeof name, "$%zu", i + 1);
		k = sqlite3_bind_parameter_index(s, name);
		if (k > 0)
			bind_json(s, k, v);
	}
	if (rows)
		arr = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *row;
		if (!arr)
			continue;
		row = json_array();
		for (int c = 0; c < sqlite3_column_count(s); c++)
			json_array_append_new(row, ext_col(s, c));
		json_array_append_new(arr, row);
	}
	if (rc != SQLITE_DONE) {
		db_fail(m, rc, err);
		finish(s);
		json_decref(arr);
		return -1;
	}
	if (changed)
		*changed = sqlite3_changes64(m->db);
	finish(s);
	if (rows)
		*rows = arr;
	return 0;
}

const struct gl_meta_ops gl_meta_sqlite_ops = {
	.name = "sqlite",
	.attach_loop = sq_attach_loop,
	.when_durable = sq_when_durable,
	.durable_cancel = sq_durable_cancel,
	.sync = sq_sync,
	.close = sq_close,
	.schema_version = sq_schema_version,
	.batch = sq_batch,
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
	.cleanup_put = sq_cleanup_put,
	.cleanup_due = sq_cleanup_due,
	.cleanup_claim = sq_cleanup_claim,
	.cleanup_del = sq_cleanup_del,
	.list = sq_list,
	.quotas_set = sq_quotas_set,
	.quotas_get = sq_quotas_get,
	.data_put_file = sq_data_put_file,
	.data_read = sq_data_read,
	.data_exists = sq_data_exists,
	.data_delete = sq_data_delete,
	.exec = sq_exec,
};
