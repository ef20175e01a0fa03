/* meta_pg.c - the metadata store on PostgreSQL (see meta.h), via libpq.
 *
 * Selected by [database] connection = postgresql://user:pass@host:port/db
 * (or postgres://); the URL goes to libpq as is, so every libpq keyword
 * (sslmode, options, application_name, ...) works as a query parameter.
 * One connection per worker process, like the sqlite store; N API nodes
 * share one database. Same layout and same SQL semantics as meta_sqlite.c
 * (docs/storage.md, "PostgreSQL"); the differences:
 *   - text columns are COLLATE "C", so comparisons and ORDER BY are
 *     bytewise as in SQLite, whatever the database's locale;
 *   - PostgreSQL has no ANY type: a property row keeps a number (integers,
 *     floats, booleans as 0/1, DateTime microseconds) in value_num NUMERIC,
 *     exact for int64 and for doubles alike, so int/real comparisons are
 *     exact as in SQLite, or a string in value_text; a filter compares the
 *     column of its value's kind;
 *   - writers exclude each other with a transaction-scoped advisory lock
 *     (gl_meta_begin = BEGIN + pg_advisory_xact_lock), the equivalent of
 *     SQLite's BEGIN IMMEDIATE across every node; readers never wait (MVCC);
 *     lock waits over 5 s are 409, like SQLite's busy timeout;
 *   - a put is one statement (data-modifying CTEs write the row, its tags
 *     and properties), so it is atomic without a savepoint and costs one
 *     round trip;
 *   - the "database" blob store keeps 1 MiB bytea pieces.
 *
 * Every data statement is prepared once per connection (PQprepare, lazily)
 * and run with PQexecPrepared; listing SQL is built from the query's shape
 * with $n parameters (values are never part of the text) and the last few
 * shapes stay prepared in a small LRU. Transaction control and the schema
 * steps, which have no parameters, run as simple queries.
 *
 * Reconnecting: when a statement fails because the connection broke (the
 * server restarted, the backend was terminated), the connection is reset
 * (PQreset), statements are prepared again on use, and the call is run
 * once more if no transaction of the engine's was open. Inside one, the
 * call fails with 503 "database connection lost" and the engine's rollback
 * path runs; nothing of that transaction was committed, and everything
 * committed before stays.
 *
 * Row shaping, parameter lists and the listing pieces that do not depend
 * on the dialect are shared with meta_sqlite.c (meta_common.c).
 *
 * Uses libpq, jansson, meta_common.c, util.c (time, memory), fault.c
 * (gl_fail).
 */
#include "coro.h"
#include "meta_backend.h"
#include "meta_common.h"
#include "util.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

/* Piece size of the database blob store (both spellings must agree). */
#define DATA_CHUNK (1 << 20)
#define DATA_CHUNK_SQL "1048576"
/* The writers' advisory lock. Two keys: "glar" in ASCII, and the schema
 * the store lives in, so installations sharing a database in different
 * schemas do not serialise each other (a hash collision only costs some
 * waiting). Every node computes the same key on the same server. */
#define WRITE_LOCK_SQL                                                        \
	"SELECT pg_advisory_xact_lock(1735156082, hashtext(current_schema()))"

/* ------------------------------------------------------------------------
 * Schema. Each step moves the database from version i to i + 1 and runs in
 * the same transaction as the glared_schema row that records it; later
 * versions append steps, never edit shipped ones. The steps mirror
 * meta_sqlite.c's, so both stores report the same schema version.
 * ---------------------------------------------------------------------- */

/* bytewise text, as SQLite compares */
#define CTEXT "TEXT COLLATE \"C\""

static const char schema_v1[] =
	/* created/updated/activated_at in microseconds since the epoch;
	 * doc: JSON of the other fields (TEXT: it is never queried, the
	 * properties table is its index, and TEXT returns it byte for byte) */
	"CREATE TABLE artifacts ("
	" id " CTEXT " NOT NULL PRIMARY KEY,"
	" type_name " CTEXT " NOT NULL,"
	" name " CTEXT " NOT NULL,"
	" version " CTEXT " NOT NULL,"
	" version_prefix BIGINT NOT NULL,"
	" version_suffix " CTEXT " NOT NULL,"
	" version_meta " CTEXT " NOT NULL,"
	" owner " CTEXT " NOT NULL,"
	" visibility " CTEXT " NOT NULL,"
	" status " CTEXT " NOT NULL,"
	" description " CTEXT ","
	" display_type_name " CTEXT ","
	" created_at BIGINT NOT NULL,"
	" updated_at BIGINT NOT NULL,"
	" activated_at BIGINT,"
	" revision BIGINT NOT NULL,"
	" doc TEXT NOT NULL);"
	/* no primary keys on tags and properties: a put deletes the old rows
	 * and inserts the new ones in one statement, whose parts cannot see
	 * each other (a unique key would see the old row); the put dedups */
	"CREATE TABLE tags ("
	" value " CTEXT " NOT NULL,"
	" artifact_id " CTEXT " NOT NULL"
	"  REFERENCES artifacts(id) ON DELETE CASCADE);"
	"CREATE INDEX tags_value ON tags(value, artifact_id);"
	"CREATE INDEX tags_artifact ON tags(artifact_id);"
	/* exactly one of value_num / value_text is set */
	"CREATE TABLE properties ("
	" artifact_id " CTEXT " NOT NULL"
	"  REFERENCES artifacts(id) ON DELETE CASCADE,"
	" name " CTEXT " NOT NULL,"
	" key " CTEXT " NOT NULL,"
	" pos INTEGER NOT NULL,"
	" value_num NUMERIC,"
	" value_text " CTEXT ","
	" CHECK ((value_num IS NULL) <> (value_text IS NULL)));"
	"CREATE INDEX properties_artifact"
	" ON properties(artifact_id, name, key);"
	"CREATE INDEX properties_num ON properties(name, key, value_num,"
	" artifact_id) WHERE value_num IS NOT NULL;"
	"CREATE INDEX properties_text ON properties(name, key, value_text,"
	" artifact_id) WHERE value_text IS NOT NULL;"
	/* prev_store/prev_location repeat the replaced record's data key so
	 * reference counting sees data a failed re-upload would restore */
	"CREATE TABLE blobs ("
	" artifact_id " CTEXT " NOT NULL"
	"  REFERENCES artifacts(id) ON DELETE CASCADE,"
	" field " CTEXT " NOT NULL,"
	" key " CTEXT " NOT NULL,"
	" url TEXT, size BIGINT, md5 TEXT, sha1 TEXT, sha256 TEXT,"
	" external BOOLEAN NOT NULL DEFAULT false,"
	" status TEXT, content_type TEXT,"
	" store " CTEXT ", location " CTEXT ", reserved BIGINT, node TEXT,"
	" prev TEXT, prev_store " CTEXT ", prev_location " CTEXT ", temp TEXT,"
	" verified_at BIGINT, verify_status TEXT, verify_error TEXT,"
	" extra TEXT,"
	" PRIMARY KEY (artifact_id, field, key));"
	"CREATE INDEX blobs_location ON blobs(store, location);"
	"CREATE INDEX blobs_prev_location ON blobs(prev_store, prev_location)"
	" WHERE prev_location IS NOT NULL;"
	"CREATE INDEX blobs_verify ON blobs(verified_at NULLS FIRST)"
	" WHERE external;"
	"CREATE INDEX blobs_saving ON blobs(artifact_id)"
	" WHERE status = 'saving';"
	"CREATE TABLE quotas ("
	" project_id " CTEXT " NOT NULL,"
	" quota_name " CTEXT " NOT NULL,"
	" quota_value BIGINT NOT NULL,"
	" PRIMARY KEY (project_id, quota_name));"
	/* the database blob store: the object's size, and its bytes in
	 * DATA_CHUNK pieces, so no statement ever carries a whole blob;
	 * EXTERNAL storage: no pointless compression of blob bytes, and a
	 * substring reads only the TOAST chunks it needs */
	"CREATE TABLE blob_data ("
	" location " CTEXT " NOT NULL PRIMARY KEY,"
	" size BIGINT NOT NULL);"
	"CREATE TABLE blob_data_chunks ("
	" location " CTEXT " NOT NULL"
	"  REFERENCES blob_data(location) ON DELETE CASCADE,"
	" seq INTEGER NOT NULL,"
	" data BYTEA NOT NULL,"
	" PRIMARY KEY (location, seq));"
	"ALTER TABLE blob_data_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
	"CREATE TABLE gc_queue ("
	" store " CTEXT " NOT NULL,"
	" location " CTEXT " NOT NULL,"
	" queued_at BIGINT NOT NULL,"
	" PRIMARY KEY (store, location));";

/* Listing indexes, as in SQLite (IF NOT EXISTS: an operator may have added
 * one by hand; see meta_common.h). PostgreSQL keeps its own statistics
 * (autovacuum's ANALYZE), so there is nothing like SQLite's shipped
 * sqlite_stat1. */
static const char schema_v2[] = MC_LISTING_INDEXES;

/* The scrubber's query (gl_meta_deleted): deleted artifacts by age. */
static const char schema_v3[] =
	"CREATE INDEX IF NOT EXISTS artifacts_deleted ON artifacts(updated_at)"
	" WHERE status = 'deleted';";

/* The cleanup queue (gl_meta_cleanup_*): S3 aborts and deletes retried
 * until they succeed. */
static const char schema_v4[] =
	"CREATE TABLE cleanup_queue ("
	" kind " CTEXT " NOT NULL,"
	" target " CTEXT " NOT NULL,"
	" arg " CTEXT " NOT NULL,"
	" attempts INTEGER NOT NULL,"
	" next_at BIGINT NOT NULL,"
	" queued_at BIGINT NOT NULL,"
	" error TEXT,"
	" PRIMARY KEY (kind, target, arg));"
	"CREATE INDEX cleanup_queue_due ON cleanup_queue(next_at);";

/* Events (events.c): webhook subscriptions and the outbox, as in SQLite
 * (meta_sqlite.c schema_v5). */
static const char schema_v5[] =
	"CREATE TABLE subscriptions ("
	" id " CTEXT " NOT NULL PRIMARY KEY,"
	" owner " CTEXT " NOT NULL,"
	" all_projects INTEGER NOT NULL DEFAULT 0,"
	" url TEXT NOT NULL,"
	" events " CTEXT " NOT NULL,"
	" secret TEXT,"
	" type_name " CTEXT ","
	" artifact_id " CTEXT ","
	" created_at BIGINT NOT NULL);"
	"CREATE TABLE outbox ("
	" seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	" event_id " CTEXT " NOT NULL,"
	" event_type " CTEXT " NOT NULL,"
	" sink " CTEXT " NOT NULL,"
	" subscription_id " CTEXT ","
	" created_at BIGINT NOT NULL,"
	" body TEXT NOT NULL,"
	" state " CTEXT " NOT NULL DEFAULT 'pending',"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_at BIGINT NOT NULL,"
	" claimed_by TEXT, claim_until BIGINT,"
	" last_at BIGINT, last_code INTEGER, last_error TEXT,"
	" done_at BIGINT);"
	MC_EVENTS_INDEXES;

/* The counters of SQLite's step 6 (see there and docs/storage.md,
 * "Counters"), kept by triggers in the transaction of every change. Exact
 * under concurrency: every writer holds the writers' lock, and each
 * change is an atomic increment of one row anyway. The artifact delete
 * trigger runs BEFORE the row goes, while its blobs are there; the
 * cascade deletes them at the end of the statement, when their artifact
 * is gone, so their trigger changes nothing. */
#define BLOB_BYTES(r) MC_BLOB_BYTES(r)
static const char schema_v6[] =
	"CREATE TABLE quota_usage ("
	" project_id " CTEXT " NOT NULL,"
	" type_name " CTEXT " NOT NULL,"
	" artifacts BIGINT NOT NULL,"
	" bytes BIGINT NOT NULL,"
	" PRIMARY KEY (project_id, type_name));"
	"CREATE TABLE artifact_counts ("
	" type_name " CTEXT " NOT NULL,"
	" owner " CTEXT " NOT NULL,"
	" visibility " CTEXT " NOT NULL,"
	" status " CTEXT " NOT NULL,"
	" n BIGINT NOT NULL,"
	" PRIMARY KEY (type_name, owner, visibility, status));"
	MC_COUNTERS_INIT
	"CREATE FUNCTION glared_artifacts_counted() RETURNS trigger"
	" LANGUAGE plpgsql AS $f$ BEGIN"
	" IF TG_OP IN ('UPDATE', 'DELETE') AND"
	"  (TG_OP = 'DELETE' OR (OLD.type_name, OLD.owner, OLD.visibility,"
	"  OLD.status) IS DISTINCT FROM (NEW.type_name, NEW.owner,"
	"  NEW.visibility, NEW.status)) THEN"
	"  UPDATE artifact_counts SET n = n - 1 WHERE type_name = OLD.type_name"
	"  AND owner = OLD.owner AND visibility = OLD.visibility"
	"  AND status = OLD.status;"
	" END IF;"
	" IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.type_name,"
	"  OLD.owner) IS DISTINCT FROM (NEW.type_name, NEW.owner)) THEN"
	"  UPDATE quota_usage SET artifacts = artifacts - 1, bytes = bytes"
	"  - (SELECT coalesce(sum(" BLOB_BYTES("b") "), 0) FROM blobs b"
	"  WHERE b.artifact_id = OLD.id)"
	"  WHERE project_id = OLD.owner AND type_name = OLD.type_name;"
	" END IF;"
	" IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;"
	" IF TG_OP = 'INSERT' OR (OLD.type_name, OLD.owner, OLD.visibility,"
	"  OLD.status) IS DISTINCT FROM (NEW.type_name, NEW.owner,"
	"  NEW.visibility, NEW.status) THEN"
	"  INSERT INTO artifact_counts AS c (type_name, owner, visibility,"
	"  status, n) VALUES (NEW.type_name, NEW.owner, NEW.visibility,"
	"  NEW.status, 1) ON CONFLICT (type_name, owner, visibility, status)"
	"  DO UPDATE SET n = c.n + 1;"
	" END IF;"
	" IF TG_OP = 'INSERT' OR (OLD.type_name, OLD.owner) IS DISTINCT FROM"
	"  (NEW.type_name, NEW.owner) THEN"
	"  INSERT INTO quota_usage AS u (project_id, type_name, artifacts,"
	"  bytes) VALUES (NEW.owner, NEW.type_name, 1,"
	"  (SELECT coalesce(sum(" BLOB_BYTES("b") "), 0) FROM blobs b"
	"  WHERE b.artifact_id = NEW.id))"
	"  ON CONFLICT (project_id, type_name) DO UPDATE SET"
	"  artifacts = u.artifacts + 1, bytes = u.bytes + EXCLUDED.bytes;"
	" END IF;"
	" RETURN NULL;"
	" END $f$;"
	"CREATE TRIGGER artifacts_counted_insert AFTER INSERT ON artifacts"
	" FOR EACH ROW EXECUTE FUNCTION glared_artifacts_counted();"
	"CREATE TRIGGER artifacts_counted_delete BEFORE DELETE ON artifacts"
	" FOR EACH ROW EXECUTE FUNCTION glared_artifacts_counted();"
	"CREATE TRIGGER artifacts_counted_update"
	" AFTER UPDATE OF type_name, owner, visibility, status ON artifacts"
	" FOR EACH ROW EXECUTE FUNCTION glared_artifacts_counted();"
	/* a blob's bytes go to its artifact's row (none while the artifact
	 * is being deleted: see above) */
	"CREATE FUNCTION glared_blobs_counted() RETURNS trigger"
	" LANGUAGE plpgsql AS $f$ BEGIN"
	" IF TG_OP IN ('UPDATE', 'DELETE') THEN"
	"  UPDATE quota_usage u SET bytes = u.bytes - " BLOB_BYTES("OLD")
	"  FROM artifacts a WHERE a.id = OLD.artifact_id"
	"  AND u.project_id = a.owner AND u.type_name = a.type_name;"
	" END IF;"
	" IF TG_OP IN ('UPDATE', 'INSERT') THEN"
	"  UPDATE quota_usage u SET bytes = u.bytes + " BLOB_BYTES("NEW")
	"  FROM artifacts a WHERE a.id = NEW.artifact_id"
	"  AND u.project_id = a.owner AND u.type_name = a.type_name;"
	" END IF;"
	" RETURN NULL;"
	" END $f$;"
	"CREATE TRIGGER blobs_counted_insert AFTER INSERT ON blobs"
	" FOR EACH ROW EXECUTE FUNCTION glared_blobs_counted();"
	"CREATE TRIGGER blobs_counted_delete AFTER DELETE ON blobs"
	" FOR EACH ROW EXECUTE FUNCTION glared_blobs_counted();"
	"CREATE TRIGGER blobs_counted_update AFTER UPDATE ON blobs"
	" FOR EACH ROW WHEN (OLD.artifact_id <> NEW.artifact_id OR "
	BLOB_BYTES("OLD") " <> " BLOB_BYTES("NEW") ")"
	" EXECUTE FUNCTION glared_blobs_counted();";

/* Scope copies (meta_sqlite.c schema_v7 says why): the property and tag
 * rows repeat their artifact's type_name, owner, visibility and status;
 * a put writes them with the rows, the trigger keeps them in step when
 * the artifact moves. */
#define SCOPE_COPY_COLS(t)                                                    \
	"ALTER TABLE " t " ADD COLUMN type_name " CTEXT " NOT NULL DEFAULT '',"\
	" ADD COLUMN owner " CTEXT " NOT NULL DEFAULT '',"                    \
	" ADD COLUMN visibility " CTEXT " NOT NULL DEFAULT '',"               \
	" ADD COLUMN status " CTEXT " NOT NULL DEFAULT '';"                   \
	"UPDATE " t " c SET type_name = a.type_name, owner = a.owner,"        \
	" visibility = a.visibility, status = a.status"                       \
	" FROM artifacts a WHERE a.id = c.artifact_id;"
#define SCOPE_COPY_SET(t)                                                     \
	" UPDATE " t " SET type_name = NEW.type_name, owner = NEW.owner,"     \
	"  visibility = NEW.visibility, status = NEW.status"                  \
	"  WHERE artifact_id = NEW.id;"
static const char schema_v7[] =
	SCOPE_COPY_COLS("properties")
	SCOPE_COPY_COLS("tags")
	MC_SCOPE_INDEXES
	"CREATE INDEX properties_scope_num ON properties(type_name, name, key,"
	" value_num, status, visibility, owner, artifact_id)"
	" WHERE value_num IS NOT NULL;"
	"CREATE INDEX properties_scope_text ON properties(type_name, name,"
	" key, value_text, status, visibility, owner, artifact_id)"
	" WHERE value_text IS NOT NULL;"
	"CREATE FUNCTION glared_scope_copies() RETURNS trigger"
	" LANGUAGE plpgsql AS $f$ BEGIN"
	SCOPE_COPY_SET("properties")
	SCOPE_COPY_SET("tags")
	" RETURN NULL;"
	" END $f$;"
	"CREATE TRIGGER artifacts_scope_copies"
	" AFTER UPDATE OF type_name, owner, visibility, status ON artifacts"
	" FOR EACH ROW WHEN ((OLD.type_name, OLD.owner, OLD.visibility,"
	"  OLD.status) IS DISTINCT FROM (NEW.type_name, NEW.owner,"
	"  NEW.visibility, NEW.status))"
	" EXECUTE FUNCTION glared_scope_copies();"
	/* name, key and value are far from independent (a dict key names
	 * its dict): multiplied as independent, a filter matching a quarter
	 * of a type was estimated at 0.4% and paged by sorting every match
	 * (600 ms at 100k) instead of walking created_at (1 ms) */
	"CREATE STATISTICS properties_values (mcv, dependencies)"
	" ON name, key, value_text, value_num FROM properties;"
	"ANALYZE artifacts; ANALYZE properties; ANALYZE tags;";

static const char *const migrations[] = { schema_v1, schema_v2, schema_v3,
					   schema_v4, schema_v5, schema_v6,
					   schema_v7 };
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ------------------------------------------------------------------------
 * Prepared statements.
 * ---------------------------------------------------------------------- */

enum stmt_id {
	S_GET, S_GET_TYPED, S_INSERT, S_UPDATE, S_DELETE, S_DELETED,
	S_SET_STATUS, S_SCOPE_PRIVATE, S_SCOPE_PUBLIC, S_COUNT_OWNER,
	S_COUNT_OWNER_TYPE, S_USED_OWNER, S_USED_OWNER_TYPE, S_BLOBS_OF_PAGE,
	S_BLOB_SET, S_BLOB_DEL, S_BLOB_REFS, S_SAVING, S_EXTERNAL, S_GC_PUSH,
	S_GC_LIST, S_GC_POP, S_CLEANUP_PUT, S_CLEANUP_DUE, S_CLEANUP_CLAIM,
	S_CLEANUP_DEL, S_QUOTA_DEL, S_QUOTA_INS, S_QUOTA_ALL,
	S_QUOTA_ONE, S_DATA_SET, S_DATA_CLEAR, S_DATA_PIECE, S_DATA_READ,
	S_DATA_FIND, S_DATA_DEL, S_COUNT
};

/* The children of a put, after the CTE `a` that wrote the artifact row
 * (and returns its id only if it did): tags ($18, a JSON array of strings,
 * deduplicated here as SQLite's primary key does) and property rows ($19,
 * a JSON array of {n name, k key, p pos, v number as text, t text}). */
#define PUT_CHILDREN                                                          \
	" t AS (INSERT INTO tags (value, artifact_id, type_name, owner,"       \
	"  visibility, status)"                                               \
	"  SELECT DISTINCT e.v, a.id, $2, $8, $9, $10 FROM a,"                \
	"  json_array_elements_text($18::json) AS e(v)),"                     \
	" p AS (INSERT INTO properties (artifact_id, name, key, pos,"         \
	"  value_num, value_text, type_name, owner, visibility, status)"      \
	"  SELECT a.id, x.n, x.k, x.p, x.v, x.t, $2, $8, $9, $10 FROM a,"     \
	"  json_to_recordset($19::json) AS x(n text, k text, p int,"          \
	"  v numeric, t text))"                                               \
	" SELECT count(*) FROM a"
#define SCOPE_SQL                                                             \
	"SELECT 1 FROM artifacts WHERE type_name = $1 AND name = $2"          \
	" AND version_prefix = $3 AND version_suffix = $4"                    \
	" AND version_meta = $5 AND status <> 'deleted' AND id <> $6"
#define BLOB_LIST_SQL                                                         \
	"SELECT b.artifact_id, a.type_name, b.field, b.key, " BLOB_COLS       \
	" FROM blobs b JOIN artifacts a ON a.id = b.artifact_id"
#define QUOTA_SQL "SELECT project_id, quota_name, quota_value FROM quotas"
/* byte offset of piece c.seq within a read of [$2, $3) */
#define PIECE_START "greatest($2::int8 - c.seq::int8 * " DATA_CHUNK_SQL ", 0)"

static const char *const stmt_sql[S_COUNT] = {
	[S_GET] = "SELECT " ART_COLS " FROM artifacts a WHERE a.id = $1",
	/* the row with its blob records, one round trip and one snapshot */
	[S_GET_TYPED] = "SELECT " ART_COLS ", b.field, b.key, " BLOB_COLS
			" FROM artifacts a LEFT JOIN blobs b"
			" ON b.artifact_id = a.id"
			" WHERE a.id = $1 AND a.type_name = $2",
	[S_INSERT] = "WITH a AS (INSERT INTO artifacts (id, type_name, name,"
		     " version, version_prefix, version_suffix, version_meta,"
		     " owner, visibility, status, description,"
		     " display_type_name, created_at, updated_at,"
		     " activated_at, revision, doc)"
		     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
		     " $12, $13, $14, $15, $16, $17)"
		     " ON CONFLICT (id) DO NOTHING RETURNING id),"
		     PUT_CHILDREN,
	[S_UPDATE] = "WITH a AS (UPDATE artifacts SET name = $3,"
		     " version = $4, version_prefix = $5, version_suffix = $6,"
		     " version_meta = $7, owner = $8, visibility = $9,"
		     " status = $10, description = $11,"
		     " display_type_name = $12, created_at = $13,"
		     " updated_at = $14, activated_at = $15, revision = $16,"
		     " doc = $17"
		     " WHERE id = $1 AND type_name = $2 AND revision = $20"
		     " RETURNING id),"
		     " dt AS (DELETE FROM tags"
		     "  WHERE artifact_id IN (SELECT id FROM a)),"
		     " dp AS (DELETE FROM properties"
		     "  WHERE artifact_id IN (SELECT id FROM a)),"
		     PUT_CHILDREN,
	[S_DELETE] = "DELETE FROM artifacts WHERE id = $1",
	[S_DELETED] = "SELECT id, type_name FROM artifacts"
		      " WHERE status = 'deleted' AND updated_at < $1"
		      " ORDER BY updated_at, id LIMIT $2",
	[S_SET_STATUS] = "UPDATE artifacts SET status = $2, updated_at = $3,"
			 " revision = revision + 1 WHERE id = $1",
	[S_SCOPE_PRIVATE] = SCOPE_SQL " AND owner = $7"
			    " AND visibility = 'private' LIMIT 1",
	[S_SCOPE_PUBLIC] = SCOPE_SQL " AND visibility = 'public' LIMIT 1",
	[S_COUNT_OWNER] = "SELECT coalesce(sum(artifacts), 0)::int8"
			  " FROM quota_usage WHERE project_id = $1",
	[S_COUNT_OWNER_TYPE] = "SELECT coalesce(sum(artifacts), 0)::int8"
			       " FROM quota_usage"
			       " WHERE project_id = $1 AND type_name = $2",
	[S_USED_OWNER] = "SELECT coalesce(sum(bytes), 0)::int8"
			 " FROM quota_usage WHERE project_id = $1",
	[S_USED_OWNER_TYPE] = "SELECT coalesce(sum(bytes), 0)::int8"
			      " FROM quota_usage"
			      " WHERE project_id = $1 AND type_name = $2",
	[S_BLOBS_OF_PAGE] = "SELECT b.artifact_id, b.field, b.key, " BLOB_COLS
			    " FROM blobs b WHERE b.artifact_id IN"
			    " (SELECT json_array_elements_text($1::json))",
	[S_BLOB_SET] = "INSERT INTO blobs (artifact_id, field, key,"
		       " url, size, md5, sha1, sha256, external, status,"
		       " content_type, store, location, reserved, node, prev,"
		       " prev_store, prev_location, temp, verified_at,"
		       " verify_status, verify_error, extra) VALUES ($1, $2,"
		       " $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
		       " $15, $16, $17, $18, $19, $20, $21, $22, $23)"
		       " ON CONFLICT (artifact_id, field, key) DO UPDATE SET"
		       " url = EXCLUDED.url, size = EXCLUDED.size,"
		       " md5 = EXCLUDED.md5, sha1 = EXCLUDED.sha1,"
		       " sha256 = EXCLUDED.sha256,"
		       " external = EXCLUDED.external,"
		       " status = EXCLUDED.status,"
		       " content_type = EXCLUDED.content_type,"
		       " store = EXCLUDED.store, location = EXCLUDED.location,"
		       " reserved = EXCLUDED.reserved, node = EXCLUDED.node,"
		       " prev = EXCLUDED.prev,"
		       " prev_store = EXCLUDED.prev_store,"
		       " prev_location = EXCLUDED.prev_location,"
		       " temp = EXCLUDED.temp,"
		       " verified_at = EXCLUDED.verified_at,"
		       " verify_status = EXCLUDED.verify_status,"
		       " verify_error = EXCLUDED.verify_error,"
		       " extra = EXCLUDED.extra",
	[S_BLOB_DEL] = "DELETE FROM blobs WHERE artifact_id = $1"
		       " AND field = $2 AND key = $3",
	[S_BLOB_REFS] = "SELECT (SELECT count(*) FROM blobs"
			" WHERE store = $1 AND location = $2)"
			" + (SELECT count(*) FROM blobs"
			" WHERE prev_store = $1 AND prev_location = $2)",
	[S_SAVING] = BLOB_LIST_SQL " WHERE b.status = 'saving'"
		     " ORDER BY b.artifact_id, b.field, b.key",
	/* never verified first (SQLite's NULL order) */
	[S_EXTERNAL] = BLOB_LIST_SQL " WHERE b.external"
		       " ORDER BY b.verified_at NULLS FIRST LIMIT $1",
	[S_GC_PUSH] = "INSERT INTO gc_queue (store, location, queued_at)"
		      " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
	[S_GC_LIST] = "SELECT store, location FROM gc_queue"
		      " ORDER BY queued_at, store, location LIMIT $1",
	[S_GC_POP] = "DELETE FROM gc_queue WHERE store = $1 AND location = $2",
	[S_CLEANUP_PUT] = "INSERT INTO cleanup_queue (kind, target, arg,"
			  " attempts, next_at, queued_at, error)"
			  " VALUES ($1, $2, $3, $4, $5, $6, $7)"
			  " ON CONFLICT (kind, target, arg) DO UPDATE SET"
			  " attempts = EXCLUDED.attempts,"
			  " next_at = EXCLUDED.next_at, error = EXCLUDED.error"
			  " WHERE EXCLUDED.attempts > 0",
	[S_CLEANUP_DUE] = "SELECT kind, target, arg, attempts, next_at,"
			  " queued_at, error FROM cleanup_queue"
			  " WHERE next_at <= $1"
			  " ORDER BY next_at, kind, target, arg LIMIT $2",
	[S_CLEANUP_CLAIM] = "UPDATE cleanup_queue SET next_at = $5"
			    " WHERE kind = $1 AND target = $2 AND arg = $3"
			    " AND next_at = $4",
	[S_CLEANUP_DEL] = "DELETE FROM cleanup_queue WHERE kind = $1"
			  " AND target = $2 AND arg = $3",
	[S_QUOTA_DEL] = "DELETE FROM quotas WHERE project_id = $1",
	[S_QUOTA_INS] = "INSERT INTO quotas (project_id, quota_name,"
			" quota_value) VALUES ($1, $2, $3)"
			" ON CONFLICT (project_id, quota_name)"
			" DO UPDATE SET quota_value = EXCLUDED.quota_value",
	[S_QUOTA_ALL] = QUOTA_SQL " ORDER BY project_id, quota_name",
	[S_QUOTA_ONE] = QUOTA_SQL " WHERE project_id = $1 ORDER BY quota_name",
	[S_DATA_SET] = "INSERT INTO blob_data (location, size) VALUES ($1, $2)"
		       " ON CONFLICT (location)"
		       " DO UPDATE SET size = EXCLUDED.size",
	[S_DATA_CLEAR] = "DELETE FROM blob_data_chunks WHERE location = $1",
	[S_DATA_PIECE] = "INSERT INTO blob_data_chunks (location, seq, data)"
			 " VALUES ($1, $2, $3)",
	/* the size (no row: not stored) and the part of each piece that
	 * falls in [$2, $3), pieces in order */
	[S_DATA_READ] = "SELECT d.size, c.seq, substring(c.data FROM"
			" (" PIECE_START " + 1)::int FOR"
			" (least($3::int8 - c.seq::int8 * " DATA_CHUNK_SQL ", "
			DATA_CHUNK_SQL ") - " PIECE_START ")::int)"
			" FROM blob_data d LEFT JOIN blob_data_chunks c"
			" ON c.location = d.location"
			" AND c.seq >= $2::int8 / " DATA_CHUNK_SQL
			" AND c.seq < ($3::int8 + " DATA_CHUNK_SQL " - 1) / "
			DATA_CHUNK_SQL
			" WHERE d.location = $1 ORDER BY c.seq",
	[S_DATA_FIND] = "SELECT size FROM blob_data WHERE location = $1",
	[S_DATA_DEL] = "DELETE FROM blob_data WHERE location = $1",
};

struct pg_meta;

/* One connection of a worker's pool: its session, the statements prepared
 * on it, and the transaction state of whoever holds it. */
typedef struct pg_conn {
	struct pg_meta *pm;
	PGconn *conn;         /* NULL: to be opened on next use */
	const void *owner;    /* holder: a coroutine, or &main_owner; NULL free */
	unsigned char prepared[S_COUNT];
	mc_lru lru;           /* listing statements, */
	char dyn[MC_DYN_CACHE][24]; /* their names by slot ("" none) */
	unsigned dyn_seq;     /* names of listing statements, never reused */
	const char *ext_sql[MC_EXT_MAX]; /* gl_meta_exec statements, by the
					  * address of their text */
	unsigned char ext_prepared[MC_EXT_MAX];
	/* transaction state */
	unsigned txn : 1;     /* the engine's transaction (gl_meta_begin) */
	unsigned inner : 1;   /* a transaction this call opened itself */
	unsigned sp : 1;      /* a savepoint this call opened in the engine's */
	/* the current call */
	unsigned lost : 1;    /* the connection broke */
	unsigned commit_sent : 1; /* its own COMMIT was sent: a rerun could
				   * repeat a write that did commit */
	unsigned dead : 1;    /* left in the middle of a statement (I/O
			       * failed, or shutdown): closed when given back */
	unsigned stopped : 1; /* closed under a waiter by gl_meta_stop */
	/* waiting in a coroutine for the socket */
	struct event *ev;
	evutil_socket_t ev_fd;
	short ev_what;
	gl_coro *waiter;
} pg_conn;

/* The store of a worker: `base` first, so a gl_meta * is a pg_meta *. A
 * pool of connections, opened as concurrency asks for them (up to max),
 * each held by one caller for one statement or for its transaction;
 * coroutines that find none free queue for one. */
typedef struct pg_meta {
	struct gl_meta base;
	int version;
	char *url;            /* for more connections */
	int max;              /* [database] max_pool_size */
	int blocking;         /* [database] blocking_queries */
	int closing;          /* gl_meta_stop: coroutines wait no more */
	pg_conn **pool;
	int n;
	gl_coro **queue;      /* coroutines waiting for a connection, FIFO */
	int nq, qcap;
} pg_meta;

static pg_meta *pg(gl_meta *gm)
{
	return (pg_meta *)gm;
}

/* ops (the table is at the end of the file) that call each other */
static void pg_close(gl_meta *gm);
static int pg_blob_delete(gl_meta *gm, const char *artifact_id,
			  const char *field, const char *key, gl_err *err);

/* ------------------------------------------------------------------------
 * Small helpers.
 * ---------------------------------------------------------------------- */

/* The shortest decimal that reads back as the same double: stored in a
 * NUMERIC it compares exactly with integers and other doubles, and LIKE
 * on it sees "0.1" as SQLite does, not 0.10000000000000001. */
static void real_text(double d, char *buf, size_t n)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/* ------------------------------------------------------------------------
 * Errors, parameters and statement plumbing.
 * ---------------------------------------------------------------------- */

static int res_ok(const PGresult *r)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* ------------------------------------------------------------------------
 * Waiting. Every statement is sent with libpq's asynchronous calls on a
 * non-blocking connection, and its answer awaited here: inside a coroutine
 * of a serving worker the coroutine yields until libevent sees the socket
 * ready, so the worker serves other requests meanwhile; anywhere else (the
 * tools, start-up, [database] blocking_queries) poll() blocks as PQexec
 * would. Nothing waits while a Lua call is running (coro.h asserts it).
 * ---------------------------------------------------------------------- */

static const char main_owner; /* the main stack's token as a holder */

static const void *me(void)
{
	gl_coro *c = gl_coro_self();

	return c ? (const void *)c : &main_owner;
}

/* 1 if this call may yield while it waits: in a coroutine, on a loop
 * that still runs (after gl_meta_stop every wait blocks). */
static int may_yield(const pg_meta *pm)
{
	return !pm->blocking && !pm->closing && gl_coro_self() &&
	       gl_coro_base();
}

static int conn_ok(const pg_conn *m)
{
	return m->conn && !m->dead && PQstatus(m->conn) == CONNECTION_OK;
}

static void io_ready(evutil_socket_t fd, short what, void *arg)
{
	pg_conn *m = arg;

	if (m->waiter)
		gl_coro_resume(m->waiter);
}

/* Until the socket is ready for what (EV_READ / EV_WRITE). -1: it cannot
 * be waited for, or the worker is stopping (gl_meta_stop); the
 * connection is then dead. */
static int wait_io(pg_conn *m, short what)
{
	evutil_socket_t fd = PQsocket(m->conn);

	if (fd < 0) {
		m->dead = 1;
		return -1;
	}
	if (!may_yield(m->pm)) {
		struct pollfd p = { .fd = fd };

		p.events = (short)((what & EV_READ ? POLLIN : 0) |
				   (what & EV_WRITE ? POLLOUT : 0));
		while (poll(&p, 1, -1) < 0)
			if (errno != EINTR) {
				m->dead = 1;
				return -1;
			}
		return 0;
	}
	if (!m->ev || m->ev_fd != fd || m->ev_what != what) {
		if (m->ev)
			event_free(m->ev);
		m->ev = event_new(gl_coro_base(), fd, what, io_ready, m);
		if (!m->ev)
			gl_oom();
		m->ev_fd = fd;
		m->ev_what = what;
	}
	m->waiter = gl_coro_self();
	event_add(m->ev, NULL);
	gl_coro_yield();
	m->waiter = NULL;
	if (m->stopped)
		return -1; /* gl_meta_stop closed the connection */
	return 0;
}

/* The results of what was just sent, as PQexec gives them: the last one,
 * or the first error. NULL (and a dead connection) when sending failed or
 * the connection broke. */
static PGresult *collect(pg_conn *m, int sent)
{
	PGresult *res = NULL, *r;
	int f;

	if (!sent)
		goto dead;
	/* the server may answer while a long message is still going out */
	while ((f = PQflush(m->conn)) == 1)
		if (wait_io(m, EV_READ | EV_WRITE) < 0 ||
		    !PQconsumeInput(m->conn))
			goto dead;
	if (f < 0)
		goto dead;
	for (;;) {
		while (PQisBusy(m->conn))
			if (wait_io(m, EV_READ) < 0 || !PQconsumeInput(m->conn))
				goto dead;
		if (!(r = PQgetResult(m->conn)))
			break;
		if (res && !res_ok(res)) {
			PQclear(r);
			continue;
		}
		PQclear(res);
		res = r;
	}
	return res;
dead:
	PQclear(res);
	m->dead = 1;
	return NULL;
}

static PGresult *q_simple(pg_conn *m, const char *sql)
{
	return collect(m, conn_ok(m) && PQsendQuery(m->conn, sql));
}

static PGresult *q_prepare(pg_conn *m, const char *name, const char *sql)
{
	return collect(m, conn_ok(m) &&
			      PQsendPrepare(m->conn, name, sql, 0, NULL));
}

static PGresult *q_prepared(pg_conn *m, const char *name, int n,
			    const char *const *vals, const int *len,
			    const int *fmt, int binary)
{
	return collect(m, conn_ok(m) &&
			      PQsendQueryPrepared(m->conn, name, n, vals, len,
						  fmt, binary));
}

/* libpq's message on one line, without the trailing newline. */
static void one_line(const char *in, char *out, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; in && in[i] && j + 1 < n; i++) {
		char c = in[i];

		if (c == '\n' || c == '\t' || c == '\r')
			c = ' ';
		if (c == ' ' && (j == 0 || out[j - 1] == ' '))
			continue;
		out[j++] = c;
	}
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

/* The failure of a statement (r may be NULL), as the engine reports it. A
 * broken connection is 503 and marks the call for a rerun (see call_again);
 * lock timeouts and serialisation failures are 409 like SQLite's busy. */
static int pg_fail(pg_conn *m, const PGresult *r, gl_err *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			    : NULL;
	char line[512];

	/* class 08 is the connection's, except 08P01 (protocol violation:
	 * a bug of ours on a healthy connection); 57P01-57P03: the server
	 * is shutting down or restarting */
	if (m->stopped) {
		m->lost = 1;
		return gl_fail(err, 503, NULL, "the server is shutting down");
	}
	if (!conn_ok(m) ||
	    (state && ((strncmp(state, "08", 2) == 0 &&
			strcmp(state, "08P01") != 0) ||
		       strncmp(state, "57P0", 4) == 0))) {
		m->lost = 1;
		return gl_fail(err, 503, NULL, "database connection lost");
	}
	if (state && (strcmp(state, "55P03") == 0 ||
		      strcmp(state, "40001") == 0 ||
		      strcmp(state, "40P01") == 0))
		return gl_fail(err, 409, "Conflict",
			       "The database is busy, try again");
	one_line(msg ? msg : m->conn ? PQerrorMessage(m->conn) : "",
		 line, sizeof line);
	return gl_fail(err, 500, NULL, "DBError: %s", line);
}

/* Parameters go to libpq as text (bytea pieces as binary): a value's
 * text, written into buf for numbers; NULL for SQL NULL. */
#define NUM_LEN 40
static const char *val_text(const mc_val *v, char buf[NUM_LEN])
{
	switch (v->t) {
	case MC_INT:
		snprintf(buf, NUM_LEN, "%lld", (long long)v->i);
		return buf;
	case MC_REAL:
		real_text(v->d, buf, NUM_LEN);
		return buf;
	case MC_TEXT:
	case MC_BIN:
		return v->s;
	default:
		return NULL;
	}
}

/* Prepare name (once per connection: *prepared) and run it with the
 * values. The result (to PQclear) or NULL + err. binary: results in binary
 * format. */
static PGresult *exec_vals(pg_conn *m, const char *name, const char *sql,
			   unsigned char *prepared, const mc_val *v, int n,
			   int binary, gl_err *err)
{
	const char **vals = gl_xcalloc((size_t)n + 1, sizeof *vals);
	int *len = gl_xcalloc((size_t)n + 1, sizeof *len);
	int *fmt = gl_xcalloc((size_t)n + 1, sizeof *fmt);
	char (*num)[NUM_LEN] = gl_xcalloc((size_t)n + 1, sizeof *num);
	PGresult *r = NULL;

	if (prepared && !*prepared) {
		r = q_prepare(m, name, sql);
		if (!res_ok(r)) {
			pg_fail(m, r, err);
			PQclear(r);
			r = NULL;
			goto out;
		}
		PQclear(r);
		*prepared = 1;
	}
	for (int i = 0; i < n; i++) {
		vals[i] = val_text(&v[i], num[i]);
		if (v[i].t == MC_BIN) {
			len[i] = v[i].len;
			fmt[i] = 1;
		}
	}
	r = q_prepared(m, name, n, vals, len, fmt, binary);
	if (!res_ok(r)) {
		pg_fail(m, r, err);
		PQclear(r);
		r = NULL;
	}
out:
	free(vals);
	free(len);
	free(fmt);
	free(num);
	return r;
}

/* Run statement id (prepared on first use on this connection). */
static PGresult *stq(pg_conn *m, enum stmt_id id, const mc_vals *p,
		     int binary, gl_err *err)
{
	char name[16];

	snprintf(name, sizeof name, "gl_s%d", (int)id);
	return exec_vals(m, name, stmt_sql[id], &m->prepared[id],
			 p ? p->v : NULL, p ? p->n : 0, binary, err);
}

/* Run a statement that returns no rows; *changed (optional): rows it
 * inserted, updated or deleted. */
static int run(pg_conn *m, enum stmt_id id, const mc_vals *p,
	       int64_t *changed, gl_err *err)
{
	PGresult *r = stq(m, id, p, 0, err);

	if (!r)
		return -1;
	if (changed)
		*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

/* A statement without parameters, as a simple query (may hold several). */
static int simple(pg_conn *m, const char *sql, gl_err *err)
{
	PGresult *r = q_simple(m, sql);
	int ok = res_ok(r);

	if (!ok)
		pg_fail(m, r, err);
	PQclear(r);
	return ok ? 0 : -1;
}

/* End a transaction block after a failure, whatever state it is in. */
static void abort_block(pg_conn *m)
{
	if (conn_ok(m) && PQtransactionStatus(m->conn) != PQTRANS_IDLE)
		PQclear(q_simple(m, "ROLLBACK"));
}

/* Column values of a text-format result. */
static int r_null(const PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c);
}

static int64_t r_i64(const PGresult *r, int row, int c)
{
	return strtoll(PQgetvalue(r, row, c), NULL, 10);
}

/* A row of a text-format result, for meta_common.c's row shaping. */
static int row_null(const mc_row *r, int c)
{
	return PQgetisnull(r->res, r->row, c);
}

static int64_t row_i64(const mc_row *r, int c)
{
	return r_i64(r->res, r->row, c);
}

static int row_truth(const mc_row *r, int c)
{
	return PQgetvalue(r->res, r->row, c)[0] == 't';
}

static const char *row_text(const mc_row *r, int c, size_t *len)
{
	*len = (size_t)PQgetlength(r->res, r->row, c);
	return PQgetvalue(r->res, r->row, c);
}

static const struct mc_row_ops row_ops = {
	.null = row_null, .i64 = row_i64, .truth = row_truth,
	.text = row_text,
};

static mc_row row_of(const PGresult *r, int row)
{
	return (mc_row){ .ops = &row_ops, .res = r, .row = row };
}

/* Every row of statement id, shaped (mc_*_row), as an array. */
static int rows_json(pg_conn *m, enum stmt_id id, const mc_vals *p,
		     mc_shape_fn shape, json_t **out, gl_err *err)
{
	PGresult *r;
	json_t *arr;

	*out = NULL;
	if (!(r = stq(m, id, p, 0, err)))
		return -1;
	arr = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		mc_row row = row_of(r, i);

		json_array_append_new(arr, shape(&row));
	}
	PQclear(r);
	*out = arr;
	return 0;
}

/* ------------------------------------------------------------------------
 * Connection, reconnecting, and the transactions of single calls.
 * ---------------------------------------------------------------------- */

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* NOTICEs of IF NOT EXISTS and the like */
}

/* Per-session settings, after every (re)connect. lock_timeout: a writer
 * waiting longer for the writers' lock (or a row lock) gets 409, as with
 * SQLite's busy timeout. */
static int session_setup(pg_conn *m, gl_err *err)
{
	memset(m->prepared, 0, sizeof m->prepared);
	memset(m->ext_prepared, 0, sizeof m->ext_prepared);
	mc_lru_free(&m->lru);
	memset(m->dyn, 0, sizeof m->dyn);
	return simple(m, "SET lock_timeout = '5s';"
		      " SET client_encoding = 'UTF8';"
		      " SET standard_conforming_strings = on", err);
}

/* Open m's session (closing what is left of an old one): connect, check
 * the server, set the session up. In a coroutine, the connection is made
 * with PQconnectStartParams / PQconnectPoll and every wait yields. */
static int conn_open(pg_conn *m, gl_err *err)
{
	/* defaults the URL's own parameters override: give up connecting
	 * after 10 s, and notice a server that vanished without closing the
	 * connection (power, network) within about a minute */
	static const char *const keys[] = {
		"connect_timeout", "fallback_application_name", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"dbname", NULL
	};
	const char *vals[] = { "10", "glared", "1", "30", "10", "3",
			       m->pm->url, NULL };
	char line[512];

	if (m->conn)
		PQfinish(m->conn); /* the server rolls back what was open */
	m->conn = NULL;
	m->dead = m->stopped = 0;
	m->txn = m->inner = m->sp = 0;
	if (may_yield(m->pm)) {
		PostgresPollingStatusType st = PGRES_POLLING_WRITING;

		m->conn = PQconnectStartParams(keys, vals, 1);
		if (!m->conn)
			gl_oom();
		while (PQstatus(m->conn) != CONNECTION_BAD &&
		       st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
			if (wait_io(m, st == PGRES_POLLING_READING ? EV_READ
								   : EV_WRITE))
				break;
			st = PQconnectPoll(m->conn);
		}
	} else {
		m->conn = PQconnectdbParams(keys, vals, 1);
		if (!m->conn)
			gl_oom();
	}
	if (m->dead || PQstatus(m->conn) != CONNECTION_OK) {
		/* libpq's messages name host and user, never the password */
		one_line(m->stopped ? "the server is shutting down"
				    : PQerrorMessage(m->conn), line, sizeof line);
		m->dead = 1;
		return gl_fail(err, 503, NULL, "cannot connect to the"
			       " database: %s", line);
	}
	PQsetNoticeProcessor(m->conn, quiet_notices, NULL);
	if (PQserverVersion(m->conn) < 110000) {
		m->dead = 1;
		return gl_fail(err, 500, NULL, "PostgreSQL 11 or later is"
			       " needed (the server is %d)",
			       PQserverVersion(m->conn));
	}
	if (PQsetnonblocking(m->conn, 1) < 0) {
		m->dead = 1;
		return gl_fail(err, 500, NULL, "DBError: cannot make the"
			       " connection non-blocking");
	}
	m->lost = 0;
	return session_setup(m, err);
}

/* A new session on the same parameters. Transactions of the old one are
 * gone with it; prepared statements are prepared again on use. */
static int reconnect(pg_conn *m, gl_err *err)
{
	gl_err why = { 0 };

	if (conn_open(m, &why) == 0)
		return 0;
	return gl_fail(err, 503, NULL,
		       "database connection lost (reconnecting: %s)", why.msg);
}

/* Start of every call: a connection known to be broken is re-established
 * now, unless the engine's transaction was on it (then that transaction is
 * lost and only its rollback may run). */
static int call_enter(pg_conn *m, gl_err *err)
{
	m->lost = 0;
	m->commit_sent = 0;
	if (conn_ok(m))
		return 0;
	if (m->txn)
		return gl_fail(err, 503, NULL, "database connection lost");
	return reconnect(m, err);
}

/* After a failed call: 1 if it should run again - the connection broke,
 * no transaction of the engine's was open, the call has not run again yet,
 * and no COMMIT of its own was in flight (that write may have landed). */
static int call_again(pg_conn *m, int *tries, gl_err *err)
{
	if (!m->lost || m->txn || m->commit_sent || m->stopped ||
	    (*tries)++ > 0)
		return 0;
	return reconnect(m, err) == 0;
}

/* ------------------------------------------------------------------------
 * The pool. A caller (a coroutine, or the main stack) holds a connection
 * for one call, or from gl_meta_begin to its commit or rollback; every
 * call of a holder goes to the connection it holds. Without a free one, a
 * new one is opened while the pool is below max; past that a coroutine
 * waits in line (a connection given back goes straight to the first in
 * line), and the main stack, which cannot wait, opens one more.
 *
 * This cannot deadlock: a coroutine waits for a connection only while it
 * holds none, so every held connection belongs to a caller that can run;
 * and the writers' lock is only ever awaited inside PostgreSQL by a
 * coroutine that yields meanwhile, so its holder, another coroutine of
 * this worker or another node, goes on and commits.
 * ---------------------------------------------------------------------- */

static pg_conn *conn_mine(pg_meta *pm)
{
	const void *who = me();

	for (int i = 0; i < pm->n; i++)
		if (pm->pool[i]->owner == who)
			return pm->pool[i];
	return NULL;
}

static void queue_drop(pg_meta *pm, gl_coro *c)
{
	for (int i = 0; i < pm->nq; i++)
		if (pm->queue[i] == c) {
			memmove(pm->queue + i, pm->queue + i + 1,
				(size_t)(pm->nq - i - 1) * sizeof *pm->queue);
			pm->nq--;
			return;
		}
}

/* Give m back (unless its holder's transaction goes on): to the first
 * coroutine in line, or to the pool. A connection left in the middle of a
 * statement is closed now, so the server ends its session (and whatever
 * locks it held) at once; the next holder opens a new one. */
static void conn_give(pg_conn *m)
{
	pg_meta *pm = m->pm;

	if (m->txn)
		return;
	if (m->dead && m->conn) {
		PQfinish(m->conn);
		m->conn = NULL;
	}
	m->owner = NULL;
	if (pm->nq > 0 && !pm->closing) {
		gl_coro *c = pm->queue[0];

		queue_drop(pm, c);
		m->owner = c;
		gl_coro_wake(c);
	}
}

static pg_conn *conn_take(pg_meta *pm, gl_err *err)
{
	pg_conn *m;

	for (;;) {
		if ((m = conn_mine(pm)))
			return m;
		for (int i = 0; i < pm->n; i++)
			if (!pm->pool[i]->owner) {
				pm->pool[i]->owner = me();
				return pm->pool[i];
			}
		if (pm->n < pm->max || !may_yield(pm)) {
			m = gl_xcalloc(1, sizeof *m);
			m->pm = pm;
			m->owner = me();
			m->ev_fd = -1;
			pm->pool = gl_xrealloc(pm->pool, (size_t)(pm->n + 1) *
							  sizeof *pm->pool);
			pm->pool[pm->n++] = m;
			return m; /* opened by call_enter */
		}
		if (pm->nq == pm->qcap) {
			pm->qcap = pm->qcap ? 2 * pm->qcap : 8;
			pm->queue = gl_xrealloc(pm->queue, (size_t)pm->qcap *
							     sizeof *pm->queue);
		}
		pm->queue[pm->nq++] = gl_coro_self();
		gl_coro_yield(); /* conn_give hands one over, or gl_meta_stop */
		queue_drop(pm, gl_coro_self());
	}
}

/* Run expr (an op's body returning < 0 on failure) on a connection of the
 * pool (m), under the reconnect rules above; rc receives its result. */
#define PG_CALL(pm, m, err, rc, expr)                                         \
	do {                                                                  \
		int tries_ = 0;                                               \
		if (!((m) = conn_take((pm), (err)))) {                        \
			(rc) = -1;                                            \
			break;                                                \
		}                                                             \
		do {                                                          \
			if (call_enter((m), (err))) {                         \
				(rc) = -1;                                    \
				break;                                        \
			}                                                     \
			(rc) = (expr);                                        \
		} while ((rc) < 0 && call_again((m), &tries_, (err)));        \
		conn_give(m);                                                 \
	} while (0)

/* The transaction of a write call. Outside the engine's transaction it is
 * the call's own, under the writers' lock (SQLite's autocommit writes take
 * its write lock too, so a call never slips between another node's check
 * and write). Inside, calls with several statements (multi) run in a
 * savepoint, so a failure undoes only the call and the engine's
 * transaction stays usable, as with SQLite. */
static int wr_begin(pg_conn *m, int multi, gl_err *err)
{
	if (!m->txn) {
		if (simple(m, "BEGIN; " WRITE_LOCK_SQL, err)) {
			abort_block(m);
			return -1;
		}
		m->inner = 1;
	} else if (multi) {
		if (simple(m, "SAVEPOINT gl_sp", err))
			return -1;
		m->sp = 1;
	}
	return 0;
}

static int wr_end(pg_conn *m, int ok, gl_err *err)
{
	gl_err ignore;
	PGresult *r;

	if (m->inner) {
		m->inner = 0;
		if (!ok) {
			abort_block(m);
			return -1;
		}
		m->commit_sent = 1;
		r = q_simple(m, "COMMIT");
		ok = res_ok(r);
		if (!ok) {
			pg_fail(m, r, err);
			abort_block(m);
		}
		PQclear(r);
		return ok ? 0 : -1;
	}
	if (m->sp) {
		m->sp = 0;
		if (ok)
			return simple(m, "RELEASE gl_sp", err);
		if (simple(m, "ROLLBACK TO gl_sp", &ignore) == 0)
			simple(m, "RELEASE gl_sp", &ignore);
		return -1;
	}
	return ok ? 0 : -1;
}

/* A read call of several statements sees one snapshot: outside the
 * engine's transaction, a read-only REPEATABLE READ one of its own; inside,
 * the writers' lock already keeps every other writer out. */
static int rd_begin(pg_conn *m, gl_err *err)
{
	if (m->txn)
		return 0;
	if (simple(m, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
		return -1;
	m->inner = 1;
	return 0;
}

static int rd_end(pg_conn *m, int ok, gl_err *err)
{
	if (!m->inner)
		return ok ? 0 : -1;
	m->inner = 0;
	if (!ok) {
		abort_block(m);
		return -1;
	}
	if (simple(m, "COMMIT", err)) {
		abort_block(m);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Opening and schema versioning.
 * ---------------------------------------------------------------------- */

/* One integer from a simple query (0 when no row). */
static int query_int(pg_conn *m, const char *sql, int64_t *out, gl_err *err)
{
	PGresult *r = q_simple(m, sql);
	int ok = res_ok(r);

	if (!ok)
		pg_fail(m, r, err);
	else
		*out = PQntuples(r) && !r_null(r, 0, 0) ? r_i64(r, 0, 0) : 0;
	PQclear(r);
	return ok ? 0 : -1;
}

/* The schema version: glared_schema's highest step, 0 if the table does
 * not exist; *tables: other tables in the schema (a foreign database). */
static int read_version(pg_conn *m, int64_t *v, int64_t *tables,
			gl_err *err)
{
	int64_t exists;

	*v = 0;
	/* the catalog itself, read in the statement's snapshot: to_regclass
	 * would answer from this session's cache, which may still say "no
	 * such table" after another node created it */
	if (query_int(m, "SELECT count(*) FROM pg_catalog.pg_tables"
		      " WHERE schemaname = current_schema()"
		      " AND tablename = 'glared_schema'", &exists, err) ||
	    (tables && query_int(m, "SELECT count(*) FROM pg_catalog.pg_tables"
				 " WHERE schemaname = current_schema()"
				 " AND tablename <> 'glared_schema'", tables,
				 err)))
		return -1;
	if (!exists)
		return 0;
	return query_int(m, "SELECT coalesce(max(version), 0)"
			 " FROM glared_schema", v, err);
}

/* Bring the schema to SCHEMA_VERSION (see meta.h): create it in an empty
 * database, apply missing steps when upgrading, refuse otherwise. The
 * version is re-read under the writers' lock (no lock timeout here: a
 * long migration of another node is worth waiting for), since another
 * worker or node may be doing the same at the same moment. */
static int migrate(pg_conn *m, int upgrade, gl_err *err)
{
	int64_t v, tables;
	char sql[128];
	gl_err first = { 0 };

	if (read_version(m, &v, &tables, err))
		return -1;
	/* a verdict other than "current" is only a reason to look again
	 * under the lock: it must not leave an error behind when that second
	 * look finds the schema fine (callers read err->status) */
	if (mc_schema_check(v, tables, upgrade, SCHEMA_VERSION, &first) == 0)
		return 0;
	/* judged again under the lock: the two reads above may have seen
	 * another node's migration half (no version yet, then its tables) */
	if (simple(m, "BEGIN; SET LOCAL lock_timeout = 0; " WRITE_LOCK_SQL,
		   err) ||
	    read_version(m, &v, &tables, err) ||
	    mc_schema_check(v, tables, upgrade, SCHEMA_VERSION, err) < 0 ||
	    simple(m, "CREATE TABLE IF NOT EXISTS glared_schema ("
		   " version INTEGER NOT NULL PRIMARY KEY,"
		   " applied_at BIGINT NOT NULL)", err))
		goto fail;
	for (; v < SCHEMA_VERSION; v++) {
		snprintf(sql, sizeof sql, "INSERT INTO glared_schema (version,"
			 " applied_at) VALUES (%d, %lld)", (int)v + 1,
			 (long long)gl_now_us());
		if (simple(m, migrations[v], err) || simple(m, sql, err))
			goto fail;
	}
	if (simple(m, "COMMIT", err))
		goto fail;
	return 0;
fail:
	abort_block(m);
	return -1;
}

gl_meta *gl_meta_pg_open(const char *conn, const gl_conf *conf,
			 int upgrade, gl_err *err)
{
	pg_meta *pm = gl_xcalloc(1, sizeof *pm);
	pg_conn *m;

	pm->base.ops = &gl_meta_pg_ops;
	pm->url = gl_xstrdup(conn);
	pm->max = conf && conf->db_max_pool_size > 0 ? conf->db_max_pool_size
						     : 5;
	pm->blocking = conf && conf->db_blocking_queries;
	m = conn_take(pm, err); /* the main stack: no wait */
	if (conn_open(m, err)) {
		/* as before pools: a failed first connection is no 503 */
		err->status = 500;
		goto fail;
	}
	if (migrate(m, upgrade, err))
		goto fail;
	conn_give(m);
	pm->version = SCHEMA_VERSION;
	return &pm->base;
fail:
	pg_close(&pm->base);
	return NULL;
}

static void pg_close(gl_meta *gm)
{
	pg_meta *pm = pg(gm);

	if (!pm)
		return;
	for (int i = 0; i < pm->n; i++) {
		pg_conn *m = pm->pool[i];

		mc_lru_free(&m->lru);
		if (m->ev)
			event_free(m->ev);
		PQfinish(m->conn); /* a transaction still open is rolled back */
		free(m);
	}
	free(pm->pool);
	free(pm->queue);
	free(pm->url);
	free(pm);
}

/* The loop is ending. Every statement a coroutine waits for is abandoned:
 * its connection is closed first (so the server rolls back and frees the
 * locks it held), then the coroutine resumes with 503 "the server is
 * shutting down". Coroutines waiting for a connection resume too. From
 * here on every call waits blocking, so each coroutine runs to its end
 * (its rollback, its cleanup) without the loop. */
static void pg_stop(gl_meta *gm)
{
	pg_meta *pm = pg(gm);
	gl_coro **wake;
	int n = 0;

	pm->closing = 1;
	wake = gl_xcalloc((size_t)(pm->n + pm->nq) + 1, sizeof *wake);
	for (int i = 0; i < pm->n; i++) {
		pg_conn *m = pm->pool[i];

		if (!m->waiter)
			continue;
		event_del(m->ev);
		PQfinish(m->conn);
		m->conn = NULL;
		m->dead = m->stopped = 1;
		wake[n++] = m->waiter;
	}
	for (int i = 0; i < pm->nq; i++)
		wake[n++] = pm->queue[i];
	for (int i = 0; i < n; i++)
		gl_coro_resume(wake[i]);
	free(wake);
}

static int pg_schema_version(gl_meta *gm)
{
	return pg(gm)->version;
}

/* ------------------------------------------------------------------------
 * Transactions.
 *
 * READ COMMITTED on purpose: each statement after the lock sees what the
 * previous holder committed. (REPEATABLE READ would take its snapshot at
 * the lock statement, before the wait, and miss exactly those writes.)
 * ---------------------------------------------------------------------- */

static int begin_impl(pg_conn *m, gl_err *err)
{
	if (simple(m, "BEGIN; " WRITE_LOCK_SQL, err)) {
		abort_block(m);
		return -1;
	}
	m->txn = 1;
	return 0;
}

static int pg_begin(gl_meta *gm, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m = conn_mine(pm);
	int rc;

	if (m && m->txn)
		return gl_fail(err, 500, NULL, "DBError: cannot start a"
			       " transaction within a transaction");
	PG_CALL(pm, m, err, rc, begin_impl(m, err));
	return rc;
}

/* The transaction ends here whatever happens, as SQLite's store rolls back
 * a failed COMMIT. A transaction that a failed statement aborted commits
 * nothing (PostgreSQL answers COMMIT with ROLLBACK): that is an error. */
static int pg_commit(gl_meta *gm, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m = conn_mine(pm);
	PGresult *r;
	int ok;

	if (!m || !m->txn)
		return gl_fail(err, 500, NULL, "DBError: cannot commit - no"
			       " transaction is active");
	m->txn = 0;
	if (!conn_ok(m)) {
		conn_give(m);
		return gl_fail(err, 503, NULL, "database connection lost");
	}
	if (PQtransactionStatus(m->conn) == PQTRANS_INERROR) {
		abort_block(m);
		conn_give(m);
		return gl_fail(err, 500, NULL, "DBError: the transaction was"
			       " aborted by an earlier error");
	}
	r = q_simple(m, "COMMIT");
	ok = res_ok(r) && strcmp(PQcmdStatus(r), "COMMIT") == 0;
	if (!ok) {
		if (res_ok(r))
			gl_fail(err, 500, NULL, "DBError: the transaction was"
				" rolled back");
		else
			pg_fail(m, r, err);
		abort_block(m);
	}
	PQclear(r);
	conn_give(m);
	return ok ? 0 : -1;
}

static void pg_rollback(gl_meta *gm)
{
	pg_meta *pm = pg(gm);
	pg_conn *m = conn_mine(pm);

	if (!m || !m->txn)
		return;
	m->txn = 0;
	abort_block(m);
	conn_give(m);
}

/* ------------------------------------------------------------------------
 * Artifacts.
 * ---------------------------------------------------------------------- */

static int get_impl(pg_conn *m, const gl_type *type, const char *id,
		    json_t **af, gl_err *err)
{
	PGresult *r;
	mc_vals p = { 0 };
	json_t *a = NULL;
	int ret;

	*af = NULL;
	mc_set_text(&p, 1, id);
	if (type)
		mc_set_text(&p, 2, type->name);
	if (!(r = stq(m, type ? S_GET_TYPED : S_GET, &p, 0, err)))
		return -1;
	if (PQntuples(r) == 0) {
		ret = 1;
	} else {
		mc_row row = row_of(r, 0);

		ret = mc_artifact_json(&row, type, &a, err);
		/* S_GET_TYPED: blob records follow the artifact's columns */
		for (int i = 0; ret == 0 && type && i < PQntuples(r); i++) {
			row = row_of(r, i);
			if (!r_null(r, i, C_NCOLS))
				mc_attach_blob(a, type, &row, C_NCOLS);
		}
	}
	PQclear(r);
	*af = a;
	return ret;
}

static int pg_get(gl_meta *gm, const gl_type *type, const char *id,
		  json_t **af, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int rc;

	if (type && type->is_all)
		type = NULL;
	PG_CALL(pm, m, err, rc, get_impl(m, type, id, af, err));
	return rc;
}

/* One property record of PUT_CHILDREN's recordset (mc_each_prop): numbers
 * go to value_num as text (exact; booleans 0/1, DateTime microseconds),
 * strings to value_text. */
static int prop_rec(void *ctx, const char *name, const char *key, int pos,
		    const json_t *v)
{
	json_t *row = json_pack("{s:s, s:s, s:i}", "n", name, "k", key, "p",
				pos);
	char num[NUM_LEN];
	mc_val mv;

	mc_json_val(v, &mv);
	if (mv.t == MC_INT || mv.t == MC_REAL)
		json_object_set_new(row, "v",
				    json_string(val_text(&mv, num)));
	else
		json_object_set(row, "t", (json_t *)v);
	json_array_append_new(ctx, row);
	return 0;
}

static int put_impl(pg_conn *m, const gl_type *type, json_t *af,
		    const gl_vkey *vk, int insert, gl_err *err)
{
	json_t *tags, *props;
	int64_t rev = json_integer_value(json_object_get(af, "revision"));
	PGresult *r = NULL;
	mc_vals p = { 0 };
	int ret = -1;

	if (mc_artifact_vals(&p, type, af, vk, rev, err))
		goto out;
	tags = mc_tags(af); /* deduplicated by the statement */
	mc_set_own(&p, 18, mc_dump(tags));
	json_decref(tags);
	props = json_array();
	mc_each_prop(type, af, prop_rec, props);
	mc_set_own(&p, 19, mc_dump(props));
	json_decref(props);
	if (!insert)
		mc_set_int(&p, 20, rev);
	if (wr_begin(m, 0, err))
		goto out;
	r = stq(m, insert ? S_INSERT : S_UPDATE, &p, 0, err);
	if (r && r_i64(r, 0, 0) == 0) {
		if (insert)
			gl_fail(err, 409, "Conflict",
				"Artifact with this id already exists");
		else
			ret = 1; /* changed (or deleted) meanwhile */
	} else if (r) {
		ret = 0;
	}
	PQclear(r);
	if (wr_end(m, ret >= 0, err) && ret >= 0)
		ret = -1;
out:
	mc_vals_free(&p);
	if (ret == 0)
		json_object_set_new(af, "revision", json_integer(rev + 1));
	return ret;
}

static int pg_put(gl_meta *gm, const gl_type *type, json_t *af,
		  const gl_vkey *vk, int insert, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int rc;

	if (mc_put_check(type, af, vk, err))
		return -1;
	PG_CALL(pm, m, err, rc, put_impl(m, type, af, vk, insert, err));
	return rc;
}

/* A write of one statement (in the call's own transaction, see wr_begin);
 * *changed (optional): rows it touched. */
static int write1(pg_conn *m, enum stmt_id id, const mc_vals *p,
		  int64_t *changed, gl_err *err)
{
	int ok;

	if (wr_begin(m, 0, err))
		return -1;
	ok = run(m, id, p, changed, err) == 0;
	return wr_end(m, ok, err);
}

/* A write call of one statement with n (up to 3) text parameters. */
static int write_texts(pg_meta *pm, enum stmt_id id, int n, const char *a1,
		       const char *a2, const char *a3, gl_err *err)
{
	const char *a[3] = { a1, a2, a3 };
	mc_vals p = { 0 };
	pg_conn *m;
	int rc;

	for (int i = 0; i < n; i++)
		mc_set_text(&p, i + 1, a[i]);
	PG_CALL(pm, m, err, rc, write1(m, id, &p, NULL, err));
	return rc;
}

static int pg_delete(gl_meta *gm, const char *id, gl_err *err)
{
	/* tags, properties, blobs: ON DELETE CASCADE */
	return write_texts(pg(gm), S_DELETE, 1, id, NULL, NULL, err);
}

static int pg_deleted(gl_meta *gm, int64_t before_us, int limit,
		      json_t **out, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_int(&p, 1, before_us);
	mc_set_int(&p, 2, limit);
	PG_CALL(pm, m, err, rc, rows_json(m, S_DELETED, &p, mc_deleted_row, out,
				      err));
	return rc;
}

static int pg_set_status(gl_meta *gm, const char *id, const char *status,
			 gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int64_t changed = 0;
	mc_vals p = { 0 };
	int rc;

	mc_set_text(&p, 1, id);
	mc_set_text(&p, 2, status);
	mc_set_int(&p, 3, gl_now_us());
	PG_CALL(pm, m, err, rc, write1(m, S_SET_STATUS, &p, &changed, err));
	if (rc == 0 && changed == 0)
		return gl_fail(err, 404, "ArtifactNotFound",
			       "Artifact with id=%s not found", id);
	return rc;
}

/* A query of at most one row: 1 if it returned one, 0 if not, -1 + err.
 * *n (optional): its integer first column (counts and sums; 0 when NULL
 * or no row). Also answers "is there such a row" (scope, data). */
static int query1(pg_conn *m, enum stmt_id id, const mc_vals *p, int64_t *n,
		  gl_err *err)
{
	PGresult *r = stq(m, id, p, 0, err);
	int rows;

	if (!r)
		return -1;
	rows = PQntuples(r) > 0;
	if (n)
		*n = rows && !r_null(r, 0, 0) ? r_i64(r, 0, 0) : 0;
	PQclear(r);
	return rows;
}

static int pg_scope_taken(gl_meta *gm, const char *type_name,
			  const char *name, const gl_vkey *vk,
			  const char *owner, const char *exclude_id,
			  gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_scope_vals(&p, type_name, name, vk, owner, exclude_id);
	PG_CALL(pm, m, err, rc, query1(m, owner ? S_SCOPE_PRIVATE
					    : S_SCOPE_PUBLIC, &p, NULL, err));
	return rc;
}

static int count_query(pg_meta *pm, enum stmt_id id, const char *a1,
		       const char *a2, int64_t *n, gl_err *err)
{
	mc_vals p = { 0 };
	pg_conn *m;
	int rc;

	mc_set_text(&p, 1, a1);
	if (a2)
		mc_set_text(&p, 2, a2);
	PG_CALL(pm, m, err, rc, query1(m, id, &p, n, err));
	return rc < 0 ? -1 : 0;
}

static int pg_count_artifacts(gl_meta *gm, const char *owner,
			      const char *type_name, int64_t *n, gl_err *err)
{
	return count_query(pg(gm), type_name ? S_COUNT_OWNER_TYPE
					     : S_COUNT_OWNER,
			   owner, type_name, n, err);
}

static int pg_used_bytes(gl_meta *gm, const char *owner,
			 const char *type_name, int64_t *n, gl_err *err)
{
	return count_query(pg(gm), type_name ? S_USED_OWNER_TYPE
					     : S_USED_OWNER,
			   owner, type_name, n, err);
}

/* ------------------------------------------------------------------------
 * Blob records.
 * ---------------------------------------------------------------------- */

static int pg_blob_set(gl_meta *gm, const char *artifact_id,
		       const char *field, const char *key, const json_t *blob,
		       gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	if (!blob || json_is_null(blob))
		return pg_blob_delete(gm, artifact_id, field, key, err);
	if (mc_blob_vals(&p, artifact_id, field, key, blob, err)) {
		mc_vals_free(&p);
		return -1;
	}
	PG_CALL(pm, m, err, rc, write1(m, S_BLOB_SET, &p, NULL, err));
	mc_vals_free(&p);
	return rc;
}

static int pg_blob_delete(gl_meta *gm, const char *artifact_id,
			  const char *field, const char *key, gl_err *err)
{
	return write_texts(pg(gm), S_BLOB_DEL, 3, artifact_id, field,
			   key ? key : "", err);
}

static int pg_blob_refs(gl_meta *gm, const char *store, const char *location,
			int64_t *n, gl_err *err)
{
	return count_query(pg(gm), S_BLOB_REFS, store, location, n, err);
}

static int pg_saving_blobs(gl_meta *gm, json_t **out, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int rc;

	PG_CALL(pm, m, err, rc, rows_json(m, S_SAVING, NULL, mc_blob_row, out,
				      err));
	return rc;
}

static int pg_external_blobs(gl_meta *gm, int limit, json_t **out,
			     gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_int(&p, 1, limit);
	PG_CALL(pm, m, err, rc, rows_json(m, S_EXTERNAL, &p, mc_blob_row, out,
				      err));
	return rc;
}

static int pg_gc_push(gl_meta *gm, const char *store, const char *location,
		      gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_text(&p, 1, store);
	mc_set_text(&p, 2, location);
	mc_set_int(&p, 3, gl_now_us());
	PG_CALL(pm, m, err, rc, write1(m, S_GC_PUSH, &p, NULL, err));
	return rc;
}

static int pg_gc_list(gl_meta *gm, int limit, json_t **out, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_int(&p, 1, limit);
	PG_CALL(pm, m, err, rc, rows_json(m, S_GC_LIST, &p, mc_gc_row, out, err));
	return rc;
}

static int pg_gc_pop(gl_meta *gm, const char *store, const char *location,
		     gl_err *err)
{
	return write_texts(pg(gm), S_GC_POP, 2, store, location, NULL, err);
}

static int pg_cleanup_put(gl_meta *gm, const char *kind, const char *target,
			  const char *arg, int attempts, int64_t next_at,
			  const char *error, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_text(&p, 1, kind);
	mc_set_text(&p, 2, target);
	mc_set_text(&p, 3, arg ? arg : "");
	mc_set_int(&p, 4, attempts);
	mc_set_int(&p, 5, next_at);
	mc_set_int(&p, 6, gl_now_us());
	mc_set_text(&p, 7, error);
	PG_CALL(pm, m, err, rc, write1(m, S_CLEANUP_PUT, &p, NULL, err));
	return rc;
}

static int pg_cleanup_due(gl_meta *gm, int64_t now_us, int limit,
			  json_t **out, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_int(&p, 1, now_us);
	mc_set_int(&p, 2, limit);
	PG_CALL(pm, m, err, rc, rows_json(m, S_CLEANUP_DUE, &p, mc_cleanup_row,
				      out, err));
	return rc;
}

static int pg_cleanup_claim(gl_meta *gm, const char *kind, const char *target,
			    const char *arg, int64_t seen_next_at,
			    int64_t until_us, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int64_t changed = 0;
	int rc;

	mc_set_text(&p, 1, kind);
	mc_set_text(&p, 2, target);
	mc_set_text(&p, 3, arg ? arg : "");
	mc_set_int(&p, 4, seen_next_at);
	mc_set_int(&p, 5, until_us);
	PG_CALL(pm, m, err, rc, write1(m, S_CLEANUP_CLAIM, &p, &changed, err));
	return rc < 0 ? -1 : changed > 0;
}

static int pg_cleanup_del(gl_meta *gm, const char *kind, const char *target,
			  const char *arg, gl_err *err)
{
	return write_texts(pg(gm), S_CLEANUP_DEL, 3, kind, target,
			   arg ? arg : "", err);
}

/* ------------------------------------------------------------------------
 * Listing. The conditions, sort keys and keyset pagination are shared
 * with the SQLite store (meta_common.c); what is PostgreSQL's own: the
 * value comparisons (typed value_num / value_text columns, ILIKE), the
 * typed placeholders, and NULL order. No driving: the planner chooses
 * between walking the sort index and a semi-join from its statistics.
 * ---------------------------------------------------------------------- */

/* A number parameter compares with value_num, a string with value_text. */
static const char *prop_column(const mc_val *p)
{
	return strcmp(p->cast, "text") == 0 ? "value_text" : "value_num";
}

/* LIKE as SQLite's: the user's wildcards, ASCII case-insensitive (ILIKE
 * folds only ASCII under the "C" collation), and no escape character. */
static void like_sql(mc_frag *f, const char *expr, const mc_val *pattern)
{
	mc_sql(f, expr);
	mc_sql(f, " COLLATE \"C\" ILIKE ");
	mc_arg(f, pattern);
	mc_sql(f, " ESCAPE ''");
}

static const mc_dialect dialect;

/* The dialect's LIKE on a column (mc_compare): a NULL value matches
 * nothing, as in SQL. */
static int pg_like(mc_frag *f, const char *expr, const json_t *v,
		   gl_kind kind, gl_err *err)
{
	mc_val p;

	if (mc_filter_value(v, kind, MC_TG_TEXT, &p, err))
		return -1;
	if (p.t == MC_NULL)
		mc_sql(f, "FALSE");
	else
		like_sql(f, expr, &p);
	return 0;
}

/* The value test of a property filter over alias al: each value against
 * the column of its kind. `neq` is IS DISTINCT FROM so that, as in SQLite,
 * a row of the other kind is "not equal" (properties are never NULL). A
 * NULL value matches nothing, as in SQL. */
static int prop_cond(mc_frag *f, const char *al, const gl_filter *flt,
		     gl_kind kind, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	char expr[48];
	mc_val p;

	if (flt->op == GL_OP_LIKE) {
		if (n < 1 || mc_filter_value(json_array_get(flt->values, 0),
					     kind, MC_TG_TEXT, &p, err))
			return n < 1 ? gl_fail(err, 400, "BadRequest",
					       "Unsupported filter on %s",
					       flt->field->name) : -1;
		if (p.t == MC_NULL) {
			mc_sql(f, "FALSE");
			return 0;
		}
		/* SQLite matches numbers by their text */
		snprintf(expr, sizeof expr, "coalesce(%s.value_text,"
			 " %s.value_num::text)", al, al);
		like_sql(f, expr, &p);
		return 0;
	}
	if (flt->op == GL_OP_IN) {
		int terms = 0;

		mc_sql(f, "(");
		/* numbers in one IN list, strings in another */
		for (int text = 0; text < 2; text++) {
			int k = 0;

			for (size_t i = 0; i < n; i++) {
				if (mc_filter_value(
					    json_array_get(flt->values, i),
					    kind, MC_TG_PROP, &p, err))
					return -1;
				if (p.t == MC_NULL ||
				    (strcmp(prop_column(&p), "value_text") == 0)
				    != text)
					continue;
				if (k++ == 0)
					mc_sqlf(f, "%s%s.%s IN (",
						terms++ ? " OR " : "", al,
						prop_column(&p));
				else
					mc_sql(f, ", ");
				mc_arg(f, &p);
			}
			if (k)
				mc_sql(f, ")");
		}
		mc_sql(f, terms ? ")" : "FALSE)");
		return 0;
	}
	if (!mc_op_sql(flt->op) || n < 1)
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter on %s", flt->field->name);
	if (mc_filter_value(json_array_get(flt->values, 0), kind, MC_TG_PROP,
			    &p, err))
		return -1;
	if (p.t == MC_NULL) {
		mc_sql(f, "FALSE");
		return 0;
	}
	mc_sqlf(f, "%s.%s", al, prop_column(&p));
	mc_sql(f, flt->op == GL_OP_NEQ ? " IS DISTINCT FROM "
				       : mc_op_sql(flt->op));
	mc_arg(f, &p);
	return 0;
}

/* The dialect's value test (mc_dialect.cond). */
static int pg_cond(mc_frag *f, const char *expr, const gl_filter *flt,
		   gl_kind kind, enum mc_target tg, gl_err *err)
{
	if (tg == MC_TG_PROP)
		return prop_cond(f, expr, flt, kind, err);
	return mc_compare(f, &dialect, expr, flt, kind, tg, err);
}

/* The property column a custom sort key sorts on, by the field's kind. */
static const char *sort_column(const gl_field *fd)
{
	switch (fd->kind) {
	case GK_INTEGER:
	case GK_FLOAT:
	case GK_BOOLEAN:
	case GK_DATETIME:
		return "value_num";
	default:
		return "value_text";
	}
}

static const mc_dialect dialect = {
	.cond = pg_cond,
	.like = pg_like,
	.sort_column = sort_column,
	.sort_typed = 1,  /* a row of the other kind has NULL there */
	.null_order = 1,  /* PostgreSQL sorts NULL as the largest value */
};

/* "$k::cast": the cast is part of the text, so one text always means the
 * same parameter types. */
static void placeholder(gl_sb *out, int k, const mc_val *v)
{
	const char *cast = v->cast ? v->cast
			   : v->t == MC_INT ? "int8"
			   : v->t == MC_REAL ? "numeric" : "text";

	gl_sb_addf(out, "$%d::%s", k, cast);
}

/* The prepared statement of a listing text from the LRU (prepared on a
 * miss; the evicted one is deallocated). Takes sql. */
static const char *dyn_get(pg_conn *m, char *sql, gl_err *err)
{
	int hit, i = mc_lru_find(&m->lru, sql, &hit);
	char *name = m->dyn[i], dealloc[48];
	PGresult *r;

	if (hit) {
		free(sql);
		return name;
	}
	if (name[0]) {
		snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
		PQclear(q_simple(m, dealloc));
	}
	snprintf(name, sizeof m->dyn[i], "gl_d%u", ++m->dyn_seq);
	r = q_prepare(m, name, sql);
	if (!res_ok(r)) {
		pg_fail(m, r, err);
		PQclear(r);
		free(sql);
		name[0] = '\0';
		return NULL;
	}
	PQclear(r);
	mc_lru_keep(&m->lru, i, sql);
	return name;
}

/* Prepare (or reuse) and run a fragment: the result or NULL + err. */
static PGresult *frag_exec(pg_conn *m, const mc_frag *f, gl_err *err)
{
	const char *name = dyn_get(m, mc_frag_render(f, placeholder), err);

	if (!name)
		return NULL;
	return exec_vals(m, name, NULL, NULL, f->pv, f->np, 0, err);
}

/* The marker's sort values (owned copies, typed as their columns), read
 * from its row. */
static int marker_values(pg_conn *m, const gl_list_query *q,
			 const mc_skey *k, int n, mc_val **out, gl_err *err)
{
	mc_frag f = { 0 };
	PGresult *r;
	mc_val *mv;

	*out = NULL;
	mc_marker_select(&f, &dialect, q, k, n);
	r = frag_exec(m, &f, err);
	mc_frag_free(&f);
	if (!r)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return gl_fail(err, 404, "ArtifactNotFound",
			       "Artifact with id=%s not found", q->marker);
	}
	mv = gl_xcalloc((size_t)n, sizeof *mv);
	for (int i = 0; i < n; i++) {
		Oid t = PQftype(r, i);

		/* int8 20, numeric 1700; everything else is text here */
		mv[i].cast = t == 20 ? "int8" : t == 1700 ? "numeric" : "text";
		if (r_null(r, 0, i))
			continue; /* MC_NULL */
		mv[i].t = MC_TEXT;
		mv[i].owned = gl_xstrdup(PQgetvalue(r, 0, i));
		mv[i].s = mv[i].owned;
		mv[i].len = -1;
	}
	PQclear(r);
	*out = mv;
	return 0;
}

static int list_impl(pg_conn *m, const gl_list_query *q, json_t **artifacts,
		     int64_t *total, gl_err *err)
{
	const gl_type *view = q->type_name && q->type && !q->type->is_all
				      ? q->type : NULL;
	mc_frag where = { 0 }, joins = { 0 }, page = { 0 }, cnt = { 0 };
	mc_skey *keys = NULL;
	mc_val *mv = NULL;
	mc_page pg;
	PGresult *r = NULL;
	mc_vals p = { 0 };
	int nkeys = 0, ret = -1, rc;

	*artifacts = NULL;
	if (total)
		*total = 0;
	if (rd_begin(m, err)) /* one snapshot for page, count and blobs */
		return -1;
	mc_page_init(&pg);
	if (mc_sort_keys(&dialect, q, &keys, &nkeys, err) ||
	    mc_where(&where, &dialect, q, "a", -1, 0, err) ||
	    (q->latest && mc_latest(&where, &dialect, q, err)))
		goto out;
	mc_sort_joins(&joins, &dialect, q, "JOIN", 0);

	if (q->limit != 0) {
		/* NULL: no limit */
		mc_val lim = { .t = q->limit < 0 ? MC_NULL : MC_INT,
			       .i = q->limit, .cast = "int8" };

		if (q->marker &&
		    marker_values(m, q, keys, nkeys, &mv, err))
			goto out;
		mc_sql(&page, "SELECT " ART_COLS " FROM artifacts a");
		mc_cat(&page, &joins);
		mc_sql(&page, " WHERE ");
		mc_cat(&page, &where);
		if (mv)
			mc_marker_cond(&page, keys, nkeys, mv);
		mc_order_by(&page, &dialect, keys, nkeys);
		mc_sql(&page, " LIMIT ");
		mc_arg(&page, &lim);
		if (!(r = frag_exec(m, &page, err)))
			goto out;
		for (int i = 0; i < PQntuples(r); i++) {
			mc_row row = row_of(r, i);
			json_t *af;

			if (mc_artifact_json(&row, view, &af, err))
				goto out;
			mc_page_add(&pg, af);
		}
		PQclear(r);
		r = NULL;
		if (view && json_array_size(pg.ids)) {
			mc_set_own(&p, 1, mc_page_ids(&pg));
			if (!(r = stq(m, S_BLOBS_OF_PAGE, &p, 0, err)))
				goto out;
			for (int i = 0; i < PQntuples(r); i++) {
				mc_row row = row_of(r, i);

				mc_attach_page_blob(pg.idx, view, &row);
			}
			PQclear(r);
			r = NULL;
		}
	}
	if (total) {
		if (mc_counts_total(q)) {
			/* a sum over the kept counts (schema_v6) */
			mc_sql(&cnt, "SELECT coalesce(sum(a.n), 0)::int8"
			       " FROM artifact_counts a WHERE ");
			mc_cat(&cnt, &where);
		} else if ((rc = mc_scoped_count(&cnt, &dialect, q, err))) {
			/* one property or tag filter: its rows' scope
			 * copies (schema_v7) */
			if (rc < 0)
				goto out;
		} else {
			mc_sql(&cnt, "SELECT count(*) FROM artifacts a WHERE ");
			mc_cat(&cnt, &where);
			mc_sort_exists(&cnt, &dialect, q);
		}
		if (!(r = frag_exec(m, &cnt, err)))
			goto out;
		*total = r_i64(r, 0, 0);
		PQclear(r);
		r = NULL;
	}
	ret = 0;
out:
	PQclear(r);
	if (rd_end(m, ret == 0, err))
		ret = -1;
	mc_marker_free(mv, nkeys);
	free(keys);
	mc_vals_free(&p);
	mc_frag_free(&where);
	mc_frag_free(&joins);
	mc_frag_free(&page);
	mc_frag_free(&cnt);
	*artifacts = mc_page_done(&pg, ret == 0);
	return ret;
}

static int pg_list(gl_meta *gm, const gl_list_query *q, json_t **artifacts,
		   int64_t *total, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int rc;

	PG_CALL(pm, m, err, rc, list_impl(m, q, artifacts, total, err));
	return rc;
}

/* ------------------------------------------------------------------------
 * Quotas.
 * ---------------------------------------------------------------------- */

static int quota_clear(void *ctx, const char *project, gl_err *err)
{
	mc_vals p = { 0 };

	mc_set_text(&p, 1, project);
	return run(ctx, S_QUOTA_DEL, &p, NULL, err);
}

static int quota_add(void *ctx, const char *project, const char *name,
		     int64_t value, gl_err *err)
{
	mc_vals p = { 0 };

	mc_set_text(&p, 1, project);
	mc_set_text(&p, 2, name);
	mc_set_int(&p, 3, value);
	return run(ctx, S_QUOTA_INS, &p, NULL, err);
}

static int quotas_set_impl(pg_conn *m, const json_t *projects, gl_err *err)
{
	static const mc_quota_ops ops = { quota_clear, quota_add };
	int ok;

	if (wr_begin(m, 1, err))
		return -1;
	ok = mc_quotas_each(projects, &ops, m, err) == 0;
	return wr_end(m, ok, err);
}

static int pg_quotas_set(gl_meta *gm, const json_t *projects, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int rc;

	if (mc_quotas_check(projects, err))
		return -1;
	PG_CALL(pm, m, err, rc, quotas_set_impl(m, projects, err));
	return rc;
}

static int quotas_get_impl(pg_conn *m, const char *project, json_t **out,
			   gl_err *err)
{
	PGresult *r;
	mc_vals p = { 0 };
	json_t *res;

	*out = NULL;
	mc_set_text(&p, 1, project);
	if (!(r = stq(m, project ? S_QUOTA_ONE : S_QUOTA_ALL,
		      project ? &p : NULL, 0, err)))
		return -1;
	res = mc_quotas_new(project);
	for (int i = 0; i < PQntuples(r); i++) {
		mc_row row = row_of(r, i);

		mc_quota_row(res, &row);
	}
	PQclear(r);
	*out = res;
	return 0;
}

static int pg_quotas_get(gl_meta *gm, const char *project, json_t **out,
			 gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int rc;

	PG_CALL(pm, m, err, rc, quotas_get_impl(m, project, out, err));
	return rc;
}

/* ------------------------------------------------------------------------
 * The "database" blob store: the size in blob_data, the bytes in
 * DATA_CHUNK pieces in blob_data_chunks, written one piece per statement
 * and read back with server-side substrings, so neither side ever holds
 * more than a piece (or the caller's read) in memory.
 * ---------------------------------------------------------------------- */

static int put_file_impl(pg_conn *m, const char *location, int fd,
			 int64_t size, char *buf, gl_err *err)
{
	int64_t off = 0;
	mc_vals p = { 0 };
	int ret = -1;

	if (wr_begin(m, 1, err))
		return -1;
	mc_set_text(&p, 1, location);
	mc_set_int(&p, 2, size);
	if (run(m, S_DATA_SET, &p, NULL, err))
		goto out;
	p.n = 1;
	if (run(m, S_DATA_CLEAR, &p, NULL, err)) /* INSERT OR REPLACE */
		goto out;
	for (int seq = 0; off < size; seq++) {
		size_t want = size - off < DATA_CHUNK ? (size_t)(size - off)
						      : DATA_CHUNK;
		size_t have = 0;

		while (have < want) {
			ssize_t got = pread(fd, buf + have, want - have,
					    (off_t)(off + (int64_t)have));

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				gl_fail(err, 500, NULL,
					"cannot read blob data: %s",
					got < 0 ? strerror(errno)
						: "file is short");
				goto out;
			}
			have += (size_t)got;
		}
		mc_set_int(&p, 2, seq);
		mc_set_bin(&p, 3, buf, (int)have);
		if (run(m, S_DATA_PIECE, &p, NULL, err))
			goto out;
		off += (int64_t)have;
	}
	ret = 0;
out:
	return wr_end(m, ret == 0, err);
}

static int pg_data_put_file(gl_meta *gm, const char *location, int fd,
			    int64_t size, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	char *buf;
	int rc;

	if (size < 0)
		return gl_fail(err, 500, NULL, "DBError: negative blob size");
	buf = gl_xmalloc(DATA_CHUNK);
	PG_CALL(pm, m, err, rc, put_file_impl(m, location, fd, size, buf, err));
	free(buf);
	return rc;
}

static int64_t be64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return (int64_t)be64toh(v);
}

static int32_t be32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return (int32_t)be32toh(v);
}

static int64_t data_read_impl(pg_conn *m, const char *location, int64_t off,
			      void *buf, int64_t len, gl_err *err)
{
	PGresult *r;
	int64_t size, want, got = 0;
	mc_vals p = { 0 };

	mc_set_text(&p, 1, location);
	mc_set_int(&p, 2, off);
	mc_set_int(&p, 3, off + len);
	/* binary results: the pieces' bytes as they are */
	if (!(r = stq(m, S_DATA_READ, &p, 1, err)))
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		gl_fail(err, 404, "NotFound", "No data stored at %s", location);
		return -1;
	}
	size = be64(PQgetvalue(r, 0, 0));
	want = off >= size ? 0 : len < size - off ? len : size - off;
	for (int i = 0; i < PQntuples(r) && want > 0; i++) {
		int n = PQgetlength(r, i, 2);

		if (r_null(r, i, 1) ||
		    be32(PQgetvalue(r, i, 1)) != (off + got) / DATA_CHUNK ||
		    n > want - got)
			break;
		memcpy((char *)buf + got, PQgetvalue(r, i, 2), (size_t)n);
		got += n;
	}
	PQclear(r);
	if (got != want) {
		gl_fail(err, 500, NULL, "DBError: stored data at %s is"
			" incomplete", location);
		return -1;
	}
	return got;
}

static int64_t pg_data_read(gl_meta *gm, const char *location, int64_t off,
			    void *buf, int64_t len, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int64_t rc;

	if (off < 0 || len < 0) {
		gl_fail(err, 500, NULL, "DBError: bad read range");
		return -1;
	}
	if (len > INT_MAX)
		len = INT_MAX;
	if (len > INT64_MAX - off) /* off + len is a parameter */
		len = INT64_MAX - off;
	PG_CALL(pm, m, err, rc, data_read_impl(m, location, off, buf, len, err));
	return rc;
}

static int pg_data_exists(gl_meta *gm, const char *location, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	mc_vals p = { 0 };
	int rc;

	mc_set_text(&p, 1, location);
	PG_CALL(pm, m, err, rc, query1(m, S_DATA_FIND, &p, NULL, err));
	return rc;
}

static int pg_data_delete(gl_meta *gm, const char *location, gl_err *err)
{
	/* the pieces: ON DELETE CASCADE */
	return write_texts(pg(gm), S_DATA_DEL, 1, location, NULL, NULL, err);
}

/* ------------------------------------------------------------------------
 * Statements of other units (gl_meta_exec).
 * ---------------------------------------------------------------------- */

static json_t *ext_col(const PGresult *r, int row, int c)
{
	const char *t;

	if (PQgetisnull(r, row, c))
		return json_null();
	t = PQgetvalue(r, row, c);
	switch (PQftype(r, c)) {
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
		return json_integer(strtoll(t, NULL, 10));
	case 16: /* bool */
		return json_integer(t[0] == 't');
	default: {
		json_t *v = json_stringn(t, (size_t)PQgetlength(r, row, c));
		return v ? v : json_null();
	}
	}
}

static int exec_impl(pg_conn *m, const char *sql, const mc_val *v, int n,
		     json_t **rows, int64_t *changed, gl_err *err)
{
	int write = mc_is_write(sql), i, ok;
	char name[16];
	PGresult *r;

	for (i = 0; i < MC_EXT_MAX && m->ext_sql[i]; i++)
		if (m->ext_sql[i] == sql)
			break;
	if (i == MC_EXT_MAX)
		return gl_fail(err, 500, NULL,
			       "DBError: too many statement texts");
	if (!m->ext_sql[i]) {
		m->ext_sql[i] = sql;
		m->ext_prepared[i] = 0;
	}
	snprintf(name, sizeof name, "gl_x%d", i);
	if (write && wr_begin(m, 0, err))
		return -1;
	r = exec_vals(m, name, sql, &m->ext_prepared[i], v, n, 0, err);
	ok = r != NULL;
	if (ok && rows) {
		json_t *arr = json_array();
		for (int k = 0; k < PQntuples(r); k++) {
			json_t *row = json_array();
			for (int c = 0; c < PQnfields(r); c++)
				json_array_append_new(row, ext_col(r, k, c));
			json_array_append_new(arr, row);
		}
		*rows = arr;
	}
	if (ok && changed)
		*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	if (!write)
		return ok ? 0 : -1;
	if (wr_end(m, ok, err) == 0)
		return 0;
	if (ok && rows) {
		json_decref(*rows);
		*rows = NULL;
	}
	return -1;
}

static int pg_exec(gl_meta *gm, const char *sql, const json_t *args,
		   json_t **rows, int64_t *changed, gl_err *err)
{
	pg_meta *pm = pg(gm);
	pg_conn *m;
	int n = (int)json_array_size(args), rc;
	mc_val *v = gl_xcalloc((size_t)n + 1, sizeof *v);

	if (rows)
		*rows = NULL;
	for (int i = 0; i < n; i++)
		mc_json_val(json_array_get(args, (size_t)i), &v[i]);
	PG_CALL(pm, m, err, rc, exec_impl(m, sql, v, n, rows, changed, err));
	free(v);
	return rc;
}

const struct gl_meta_ops gl_meta_pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.stop = pg_stop,
	.schema_version = pg_schema_version,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.get = pg_get,
	.put = pg_put,
	.del = pg_delete,
	.deleted = pg_deleted,
	.set_status = pg_set_status,
	.scope_taken = pg_scope_taken,
	.count_artifacts = pg_count_artifacts,
	.used_bytes = pg_used_bytes,
	.blob_set = pg_blob_set,
	.blob_delete = pg_blob_delete,
	.blob_refs = pg_blob_refs,
	.saving_blobs = pg_saving_blobs,
	.external_blobs = pg_external_blobs,
	.gc_push = pg_gc_push,
	.gc_list = pg_gc_list,
	.gc_pop = pg_gc_pop,
	.cleanup_put = pg_cleanup_put,
	.cleanup_due = pg_cleanup_due,
	.cleanup_claim = pg_cleanup_claim,
	.cleanup_del = pg_cleanup_del,
	.list = pg_list,
	.quotas_set = pg_quotas_set,
	.quotas_get = pg_quotas_get,
	.data_put_file = pg_data_put_file,
	.data_read = pg_data_read,
	.data_exists = pg_data_exists,
	.data_delete = pg_data_delete,
	.exec = pg_exec,
};
