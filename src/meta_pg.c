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
 * Uses libpq, jansson, util.c (time), fault.c (gl_fail).
 */
#include "meta_backend.h"
#include "util.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Listing statements kept prepared, by SQL text. */
#define DYN_CACHE 16
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
 * one by hand). PostgreSQL keeps its own statistics (autovacuum's
 * ANALYZE), so there is nothing like SQLite's shipped sqlite_stat1. */
static const char schema_v2[] =
	"CREATE INDEX IF NOT EXISTS artifacts_type_created"
	" ON artifacts(type_name, created_at, status, visibility, owner, id);"
	"CREATE INDEX IF NOT EXISTS artifacts_created ON artifacts(created_at);"
	"CREATE INDEX IF NOT EXISTS artifacts_type_updated"
	" ON artifacts(type_name, updated_at);"
	"CREATE INDEX IF NOT EXISTS artifacts_type_version"
	" ON artifacts(type_name, version_prefix, version_suffix);"
	"CREATE INDEX IF NOT EXISTS artifacts_type_name_version"
	" ON artifacts(type_name, name, version_prefix, version_suffix,"
	" version_meta);"
	"CREATE INDEX IF NOT EXISTS artifacts_name_version"
	" ON artifacts(name, version_prefix, version_suffix);"
	"CREATE INDEX IF NOT EXISTS artifacts_owner"
	" ON artifacts(owner, type_name);";

/* The scrubber's query (gl_meta_deleted): deleted artifacts by age. */
static const char schema_v3[] =
	"CREATE INDEX IF NOT EXISTS artifacts_deleted ON artifacts(updated_at)"
	" WHERE status = 'deleted';";

static const char *const migrations[] = { schema_v1, schema_v2, schema_v3 };
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ------------------------------------------------------------------------
 * Prepared statements.
 * ---------------------------------------------------------------------- */

#define ART_COLS                                                              \
	"a.id, a.type_name, a.name, a.version, a.owner, a.visibility,"        \
	" a.status, a.description, a.display_type_name, a.created_at,"        \
	" a.updated_at, a.activated_at, a.revision, a.doc"
enum {
	C_ID, C_TYPE, C_NAME, C_VERSION, C_OWNER, C_VIS, C_STATUS, C_DESC,
	C_DTN, C_CREATED, C_UPDATED, C_ACTIVATED, C_REV, C_DOC, C_NCOLS
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
	S_GET, S_GET_TYPED, S_INSERT, S_UPDATE, S_DELETE, S_DELETED,
	S_SET_STATUS, S_SCOPE_PRIVATE, S_SCOPE_PUBLIC, S_COUNT_OWNER,
	S_COUNT_OWNER_TYPE, S_USED_OWNER, S_USED_OWNER_TYPE, S_BLOBS_OF_PAGE,
	S_BLOB_SET, S_BLOB_DEL, S_BLOB_REFS, S_SAVING, S_EXTERNAL, S_GC_PUSH,
	S_GC_LIST, S_GC_POP, S_QUOTA_DEL, S_QUOTA_INS, S_QUOTA_ALL,
	S_QUOTA_ONE, S_DATA_SET, S_DATA_CLEAR, S_DATA_PIECE, S_DATA_READ,
	S_DATA_FIND, S_DATA_DEL, S_COUNT
};

/* The children of a put, after the CTE `a` that wrote the artifact row
 * (and returns its id only if it did): tags ($18, a JSON array of strings,
 * deduplicated here as SQLite's primary key does) and property rows ($19,
 * a JSON array of {n name, k key, p pos, v number as text, t text}). */
#define PUT_CHILDREN                                                          \
	" t AS (INSERT INTO tags (value, artifact_id)"                        \
	"  SELECT DISTINCT e.v, a.id FROM a,"                                 \
	"  json_array_elements_text($18::json) AS e(v)),"                     \
	" p AS (INSERT INTO properties (artifact_id, name, key, pos,"         \
	"  value_num, value_text) SELECT a.id, x.n, x.k, x.p, x.v, x.t FROM a,"\
	"  json_to_recordset($19::json) AS x(n text, k text, p int,"          \
	"  v numeric, t text))"                                               \
	" SELECT count(*) FROM a"
#define SCOPE_SQL                                                             \
	"SELECT 1 FROM artifacts WHERE type_name = $1 AND name = $2"          \
	" AND version_prefix = $3 AND version_suffix = $4"                    \
	" AND version_meta = $5 AND status <> 'deleted' AND id <> $6"
#define USED_SQL                                                              \
	"SELECT coalesce(sum(CASE WHEN b.status = 'saving'"                   \
	" THEN coalesce(b.reserved, 0) ELSE coalesce(b.size, 0) END),"        \
	" 0)::int8"                                                           \
	" FROM artifacts a JOIN blobs b ON b.artifact_id = a.id"              \
	" WHERE a.owner = $1"
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
	[S_COUNT_OWNER] = "SELECT count(*) FROM artifacts WHERE owner = $1",
	[S_COUNT_OWNER_TYPE] = "SELECT count(*) FROM artifacts"
			       " WHERE owner = $1 AND type_name = $2",
	[S_USED_OWNER] = USED_SQL,
	[S_USED_OWNER_TYPE] = USED_SQL " AND a.type_name = $2",
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

struct dyn_stmt {
	char *sql;
	char name[24];
	uint64_t used;
};

/* The connection; `base` first, so a gl_meta * is a pg_meta *. */
typedef struct pg_meta {
	struct gl_meta base;
	PGconn *conn;
	int version;
	unsigned char prepared[S_COUNT];
	struct dyn_stmt dyn[DYN_CACHE];
	uint64_t tick;
	unsigned dyn_seq;     /* names of listing statements, never reused */
	/* transaction state */
	unsigned txn : 1;     /* the engine's transaction (gl_meta_begin) */
	unsigned inner : 1;   /* a transaction this call opened itself */
	unsigned sp : 1;      /* a savepoint this call opened in the engine's */
	/* the current call */
	unsigned lost : 1;    /* the connection broke */
	unsigned commit_sent : 1; /* its own COMMIT was sent: a rerun could
				   * repeat a write that did commit */
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
	if (json_is_string(v) &&
	    gl_parse_iso8601(json_string_value(v), us) == 0)
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
static int pg_fail(pg_meta *m, const PGresult *r, gl_err *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			    : NULL;
	char line[512];

	/* class 08 is the connection's, except 08P01 (protocol violation:
	 * a bug of ours on a healthy connection); 57P01-57P03: the server
	 * is shutting down or restarting */
	if (PQstatus(m->conn) != CONNECTION_OK ||
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
	one_line(msg ? msg : PQerrorMessage(m->conn), line, sizeof line);
	return gl_fail(err, 500, NULL, "DBError: %s", line);
}

/* Parameters of a fixed statement, by position (1-based); unset ones are
 * NULL. Text format except for bytea pieces. */
#define PV_MAX 24
typedef struct pv {
	int n;
	const char *v[PV_MAX];
	int len[PV_MAX];
	int fmt[PV_MAX];
	char num[PV_MAX][32];
	char *own[PV_MAX];
} pv;

static void pv_text(pv *p, int i, const char *s)
{
	p->v[i - 1] = s;
	if (i > p->n)
		p->n = i;
}

static void pv_int(pv *p, int i, int64_t v)
{
	snprintf(p->num[i - 1], sizeof p->num[i - 1], "%lld", (long long)v);
	pv_text(p, i, p->num[i - 1]);
}

/* takes s (malloc'ed) */
static void pv_own(pv *p, int i, char *s)
{
	free(p->own[i - 1]);
	p->own[i - 1] = s;
	pv_text(p, i, s);
}

static void pv_bin(pv *p, int i, const void *data, int len)
{
	pv_text(p, i, (const char *)data);
	p->len[i - 1] = len;
	p->fmt[i - 1] = 1;
}

static void pv_free(pv *p)
{
	for (int i = 0; i < PV_MAX; i++)
		free(p->own[i]);
}

/* Run statement id (prepared on first use on this connection). The result
 * (to PQclear) or NULL + err. binary: results in binary format. */
static PGresult *stq(pg_meta *m, enum stmt_id id, const pv *p, int binary,
		   gl_err *err)
{
	PGresult *r;
	char name[16];

	snprintf(name, sizeof name, "gl_s%d", (int)id);
	if (!m->prepared[id]) {
		r = PQprepare(m->conn, name, stmt_sql[id], 0, NULL);
		if (!res_ok(r)) {
			pg_fail(m, r, err);
			PQclear(r);
			return NULL;
		}
		PQclear(r);
		m->prepared[id] = 1;
	}
	r = PQexecPrepared(m->conn, name, p ? p->n : 0, p ? p->v : NULL,
			   p ? p->len : NULL, p ? p->fmt : NULL, binary);
	if (!res_ok(r)) {
		pg_fail(m, r, err);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Run a statement that returns no rows; *changed (optional): rows it
 * inserted, updated or deleted. */
static int run(pg_meta *m, enum stmt_id id, const pv *p, int64_t *changed,
	       gl_err *err)
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
static int simple(pg_meta *m, const char *sql, gl_err *err)
{
	PGresult *r = PQexec(m->conn, sql);
	int ok = res_ok(r);

	if (!ok)
		pg_fail(m, r, err);
	PQclear(r);
	return ok ? 0 : -1;
}

/* End a transaction block after a failure, whatever state it is in. */
static void abort_block(pg_meta *m)
{
	if (PQstatus(m->conn) == CONNECTION_OK &&
	    PQtransactionStatus(m->conn) != PQTRANS_IDLE)
		PQclear(PQexec(m->conn, "ROLLBACK"));
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

static json_t *r_text(const PGresult *r, int row, int c)
{
	if (PQgetisnull(r, row, c))
		return json_null();
	return json_stringn(PQgetvalue(r, row, c),
			    (size_t)PQgetlength(r, row, c));
}

static json_t *r_int(const PGresult *r, int row, int c)
{
	if (PQgetisnull(r, row, c))
		return json_null();
	return json_integer(r_i64(r, row, c));
}

static json_t *r_time(const PGresult *r, int row, int c)
{
	if (PQgetisnull(r, row, c))
		return json_null();
	return time_json(r_i64(r, row, c));
}

/* A JSON text column, parsed; NULL column -> null. */
static json_t *r_json(const PGresult *r, int row, int c)
{
	json_error_t jerr;

	if (PQgetisnull(r, row, c))
		return json_null();
	return json_loadb(PQgetvalue(r, row, c),
			  (size_t)PQgetlength(r, row, c), JSON_DECODE_ANY,
			  &jerr);
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
static int session_setup(pg_meta *m, gl_err *err)
{
	memset(m->prepared, 0, sizeof m->prepared);
	for (int i = 0; i < DYN_CACHE; i++) {
		free(m->dyn[i].sql);
		memset(&m->dyn[i], 0, sizeof m->dyn[i]);
	}
	return simple(m, "SET lock_timeout = '5s';"
		      " SET client_encoding = 'UTF8';"
		      " SET standard_conforming_strings = on", err);
}

/* A new session on the same parameters. Transactions of the old one are
 * gone with it; prepared statements are prepared again on use. */
static int reconnect(pg_meta *m, gl_err *err)
{
	char line[512];

	m->txn = m->inner = m->sp = 0;
	PQreset(m->conn);
	if (PQstatus(m->conn) != CONNECTION_OK) {
		one_line(PQerrorMessage(m->conn), line, sizeof line);
		return gl_fail(err, 503, NULL,
			       "database connection lost (reconnecting: %s)",
			       line);
	}
	m->lost = 0;
	return session_setup(m, err);
}

/* Start of every call: a connection known to be broken is re-established
 * now, unless the engine's transaction was on it (then that transaction is
 * lost and only its rollback may run). */
static int call_enter(pg_meta *m, gl_err *err)
{
	m->lost = 0;
	m->commit_sent = 0;
	if (PQstatus(m->conn) == CONNECTION_OK)
		return 0;
	if (m->txn)
		return gl_fail(err, 503, NULL, "database connection lost");
	return reconnect(m, err);
}

/* After a failed call: 1 if it should run again - the connection broke,
 * no transaction of the engine's was open, the call has not run again yet,
 * and no COMMIT of its own was in flight (that write may have landed). */
static int call_again(pg_meta *m, int *tries, gl_err *err)
{
	if (!m->lost || m->txn || m->commit_sent || (*tries)++ > 0)
		return 0;
	return reconnect(m, err) == 0;
}

/* Run expr (an op's body returning < 0 on failure) under the reconnect
 * rules above; rc receives its result. */
#define PG_CALL(m, err, rc, expr)                                             \
	do {                                                                  \
		int tries_ = 0;                                               \
		do {                                                          \
			if (call_enter((m), (err))) {                         \
				(rc) = -1;                                    \
				break;                                        \
			}                                                     \
			(rc) = (expr);                                        \
		} while ((rc) < 0 && call_again((m), &tries_, (err)));        \
	} while (0)

/* The transaction of a write call. Outside the engine's transaction it is
 * the call's own, under the writers' lock (SQLite's autocommit writes take
 * its write lock too, so a call never slips between another node's check
 * and write). Inside, calls with several statements (multi) run in a
 * savepoint, so a failure undoes only the call and the engine's
 * transaction stays usable, as with SQLite. */
static int wr_begin(pg_meta *m, int multi, gl_err *err)
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

static int wr_end(pg_meta *m, int ok, gl_err *err)
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
		r = PQexec(m->conn, "COMMIT");
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
static int rd_begin(pg_meta *m, gl_err *err)
{
	if (m->txn)
		return 0;
	if (simple(m, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
		return -1;
	m->inner = 1;
	return 0;
}

static int rd_end(pg_meta *m, int ok, gl_err *err)
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
static int query_int(pg_meta *m, const char *sql, int64_t *out, gl_err *err)
{
	PGresult *r = PQexec(m->conn, sql);
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
static int read_version(pg_meta *m, int64_t *v, int64_t *tables,
			gl_err *err)
{
	int64_t exists;

	*v = 0;
	if (query_int(m, "SELECT (to_regclass(quote_ident(current_schema())"
		      " || '.glared_schema') IS NOT NULL)::int", &exists,
		      err) ||
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
static int migrate(pg_meta *m, int upgrade, gl_err *err)
{
	int64_t v, tables;
	char sql[128];

	if (read_version(m, &v, &tables, err))
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
	if (simple(m, "BEGIN; SET LOCAL lock_timeout = 0; " WRITE_LOCK_SQL,
		   err) ||
	    simple(m, "CREATE TABLE IF NOT EXISTS glared_schema ("
		   " version INTEGER NOT NULL PRIMARY KEY,"
		   " applied_at BIGINT NOT NULL)", err) ||
	    read_version(m, &v, NULL, err))
		goto fail;
	if (v > SCHEMA_VERSION) {
		gl_fail(err, 500, NULL, "database schema is at version %lld,"
			" newer than this glared supports (%d)", (long long)v,
			SCHEMA_VERSION);
		goto fail;
	}
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

gl_meta *gl_meta_pg_open(const char *conn, int upgrade, gl_err *err)
{
	/* defaults the URL's own parameters override: give up connecting
	 * after 10 s, and notice a server that vanished without closing the
	 * connection (power, network) within about a minute */
	static const char *const keys[] = {
		"connect_timeout", "fallback_application_name", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"dbname", NULL
	};
	const char *vals[] = { "10", "glared", "1", "30", "10", "3", conn,
			       NULL };
	pg_meta *m = xrealloc(NULL, sizeof *m);
	char line[512];

	memset(m, 0, sizeof *m);
	m->base.ops = &gl_meta_pg_ops;
	m->conn = PQconnectdbParams(keys, vals, 1);
	if (!m->conn)
		oom();
	PQsetNoticeProcessor(m->conn, quiet_notices, NULL);
	if (PQstatus(m->conn) != CONNECTION_OK) {
		/* libpq's messages name host and user, never the password */
		one_line(PQerrorMessage(m->conn), line, sizeof line);
		gl_fail(err, 500, NULL, "cannot connect to the database: %s",
			line);
		goto fail;
	}
	if (PQserverVersion(m->conn) < 110000) {
		gl_fail(err, 500, NULL, "PostgreSQL 11 or later is needed"
			" (the server is %d)", PQserverVersion(m->conn));
		goto fail;
	}
	if (session_setup(m, err) || migrate(m, upgrade, err))
		goto fail;
	m->version = SCHEMA_VERSION;
	return &m->base;
fail:
	pg_close(&m->base);
	return NULL;
}

static void pg_close(gl_meta *gm)
{
	pg_meta *m = pg(gm);

	if (!m)
		return;
	for (int i = 0; i < DYN_CACHE; i++)
		free(m->dyn[i].sql);
	PQfinish(m->conn); /* a transaction still open is rolled back */
	free(m);
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

static int begin_impl(pg_meta *m, gl_err *err)
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
	pg_meta *m = pg(gm);
	int rc;

	if (m->txn)
		return gl_fail(err, 500, NULL, "DBError: cannot start a"
			       " transaction within a transaction");
	PG_CALL(m, err, rc, begin_impl(m, err));
	return rc;
}

/* The transaction ends here whatever happens, as SQLite's store rolls back
 * a failed COMMIT. A transaction that a failed statement aborted commits
 * nothing (PostgreSQL answers COMMIT with ROLLBACK): that is an error. */
static int pg_commit(gl_meta *gm, gl_err *err)
{
	pg_meta *m = pg(gm);
	PGresult *r;
	int ok;

	if (!m->txn)
		return gl_fail(err, 500, NULL, "DBError: cannot commit - no"
			       " transaction is active");
	m->txn = 0;
	if (PQstatus(m->conn) != CONNECTION_OK)
		return gl_fail(err, 503, NULL, "database connection lost");
	if (PQtransactionStatus(m->conn) == PQTRANS_INERROR) {
		abort_block(m);
		return gl_fail(err, 500, NULL, "DBError: the transaction was"
			       " aborted by an earlier error");
	}
	r = PQexec(m->conn, "COMMIT");
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
	return ok ? 0 : -1;
}

static void pg_rollback(gl_meta *gm)
{
	pg_meta *m = pg(gm);

	if (!m->txn)
		return;
	m->txn = 0;
	abort_block(m);
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
static json_t *blob_json(const PGresult *r, int row, int c0)
{
	json_t *b = json_object();

	json_object_set_new(b, "url", r_text(r, row, c0 + B_URL));
	json_object_set_new(b, "size", r_int(r, row, c0 + B_SIZE));
	json_object_set_new(b, "md5", r_text(r, row, c0 + B_MD5));
	json_object_set_new(b, "sha1", r_text(r, row, c0 + B_SHA1));
	json_object_set_new(b, "sha256", r_text(r, row, c0 + B_SHA256));
	json_object_set_new(b, "external", json_boolean(
		PQgetvalue(r, row, c0 + B_EXTERNAL)[0] == 't'));
	json_object_set_new(b, "status", r_text(r, row, c0 + B_STATUS));
	json_object_set_new(b, "content_type", r_text(r, row, c0 + B_CTYPE));
	for (int c = B_STORE; c < B_EXTRA; c++) {
		json_t *v;

		if (r_null(r, row, c0 + c))
			continue;
		if (c == B_RESERVED || c == B_VERIFIED) /* microseconds */
			v = r_int(r, row, c0 + c);
		else if (c == B_PREV)
			v = r_json(r, row, c0 + c);
		else
			v = r_text(r, row, c0 + c);
		json_object_set_new(b, blob_keys[c], v);
	}
	if (!r_null(r, row, c0 + B_EXTRA)) {
		json_t *extra = r_json(r, row, c0 + B_EXTRA);

		if (json_is_object(extra))
			json_object_update_missing(b, extra);
		json_decref(extra);
	}
	return b;
}

/* The artifact of an ART_COLS row. type NULL: the all view (base fields and
 * type_name); otherwise every field of the type, custom ones from doc
 * (null when unset), blob fields null and folders {} until attached. */
static int row_json(const PGresult *r, int row, const gl_type *type,
		    json_t **out, gl_err *err)
{
	json_t *af, *doc;
	json_error_t jerr;

	doc = json_loadb(PQgetvalue(r, row, C_DOC),
			 (size_t)PQgetlength(r, row, C_DOC), 0, &jerr);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return gl_fail(err, 500, NULL,
			       "DBError: artifact %s: bad document: %s",
			       PQgetvalue(r, row, C_ID), jerr.text);
	}
	af = json_object();
	json_object_set_new(af, "id", r_text(r, row, C_ID));
	json_object_set_new(af, "name", r_text(r, row, C_NAME));
	json_object_set_new(af, "version", r_text(r, row, C_VERSION));
	json_object_set_new(af, "owner", r_text(r, row, C_OWNER));
	json_object_set_new(af, "visibility", r_text(r, row, C_VIS));
	json_object_set_new(af, "status", r_text(r, row, C_STATUS));
	json_object_set_new(af, "description", r_text(r, row, C_DESC));
	json_object_set_new(af, "display_type_name", r_text(r, row, C_DTN));
	json_object_set_new(af, "created_at", r_time(r, row, C_CREATED));
	json_object_set_new(af, "updated_at", r_time(r, row, C_UPDATED));
	json_object_set_new(af, "activated_at", r_time(r, row, C_ACTIVATED));
	json_object_set_new(af, "revision", r_int(r, row, C_REV));
	if (!type) {
		json_t *v;

		json_object_set_new(af, "type_name", r_text(r, row, C_TYPE));
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

/* Attach the blob record of a row (field at column cf, key at cf + 1, then
 * BLOB_COLS) to its artifact. Records of fields the type no longer has are
 * left out. */
static void attach_blob(json_t *af, const gl_type *type, const PGresult *r,
			int row, int cf)
{
	const char *field = PQgetvalue(r, row, cf);
	const char *key = PQgetvalue(r, row, cf + 1);
	const gl_field *f = type_field(type, field);
	json_t *folder;

	if (!af || !f)
		return;
	if (f->kind == GK_FOLDER) {
		folder = json_object_get(af, field);
		if (!json_is_object(folder)) {
			folder = json_object();
			json_object_set_new(af, field, folder);
		}
		json_object_set_new(folder, key, blob_json(r, row, cf + 2));
	} else if (f->kind == GK_BLOB && key[0] == '\0') {
		json_object_set_new(af, field, blob_json(r, row, cf + 2));
	}
}

/* ------------------------------------------------------------------------
 * Artifacts.
 * ---------------------------------------------------------------------- */

static int get_impl(pg_meta *m, const gl_type *type, const char *id,
		    json_t **af, gl_err *err)
{
	PGresult *r;
	pv p = { 0 };
	json_t *a = NULL;
	int ret;

	*af = NULL;
	pv_text(&p, 1, id);
	if (type)
		pv_text(&p, 2, type->name);
	if (!(r = stq(m, type ? S_GET_TYPED : S_GET, &p, 0, err)))
		return -1;
	if (PQntuples(r) == 0) {
		ret = 1;
	} else {
		ret = row_json(r, 0, type, &a, err);
		for (int i = 0; ret == 0 && type && i < PQntuples(r); i++)
			if (!r_null(r, i, C_NCOLS))
				attach_blob(a, type, r, i, C_NCOLS);
	}
	PQclear(r);
	*af = a;
	return ret;
}

static int pg_get(gl_meta *gm, const gl_type *type, const char *id,
		  json_t **af, gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	if (type && type->is_all)
		type = NULL;
	PG_CALL(m, err, rc, get_impl(m, type, id, af, err));
	return rc;
}

/* One property record per scalar (see PUT_CHILDREN); nulls and
 * non-scalars are not stored. Numbers go to value_num as text (exact);
 * DateTime strings become microseconds so filters compare numbers. */
static void prop_row(json_t *rows, const char *name, const char *key,
		     const json_t *v, int pos, gl_kind kind)
{
	json_t *row;
	char num[40];
	int64_t us;

	if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v))
		return;
	num[0] = '\0';
	if (kind == GK_DATETIME && json_is_string(v) && json_time(v, &us) == 1)
		snprintf(num, sizeof num, "%lld", (long long)us);
	else if (json_is_integer(v))
		snprintf(num, sizeof num, "%lld",
			 (long long)json_integer_value(v));
	else if (json_is_real(v))
		real_text(json_real_value(v), num, sizeof num);
	else if (json_is_boolean(v))
		snprintf(num, sizeof num, "%d", json_is_true(v));
	row = json_pack("{s:s, s:s, s:i}", "n", name, "k", key, "p", pos);
	if (num[0])
		json_object_set_new(row, "v", json_string(num));
	else
		json_object_set(row, "t", (json_t *)v);
	json_array_append_new(rows, row);
}

static void field_props(json_t *rows, const gl_field *f, const json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	if (f->kind == GK_LIST && json_is_array(v)) {
		json_array_foreach(v, i, e)
			prop_row(rows, f->name, "", e, (int)i, f->elem);
	} else if (f->kind == GK_DICT && json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
			prop_row(rows, f->name, k, e, 0, f->elem);
	} else if (f->kind != GK_LIST && f->kind != GK_DICT) {
		prop_row(rows, f->name, "", v, 0, f->kind);
	}
}

static char *dump(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s)
		oom();
	return s;
}

/* Parameters $1..$17 of S_INSERT / S_UPDATE from the artifact. */
static int bind_artifact(pv *p, const gl_type *type, const json_t *af,
			 const gl_vkey *vk, int64_t rev, gl_err *err)
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
	pv_text(p, 1, str_of(af, "id"));
	pv_text(p, 2, type->name);
	pv_text(p, 3, str_of(af, "name"));
	pv_text(p, 4, ver ? ver : "0.0.0");
	pv_int(p, 5, vk->prefix);
	pv_text(p, 6, vk->suffix ? vk->suffix : "");
	pv_text(p, 7, vk->meta ? vk->meta : "");
	pv_text(p, 8, str_of(af, "owner"));
	pv_text(p, 9, str_of(af, "visibility") ? str_of(af, "visibility")
					       : "private");
	pv_text(p, 10, str_of(af, "status") ? str_of(af, "status")
					    : "drafted");
	pv_text(p, 11, str_of(af, "description"));
	pv_text(p, 12, str_of(af, "display_type_name"));
	for (int i = 0; i < 3; i++) {
		if (set[i])
			pv_int(p, 13 + i, t[i]);
		else
			pv_text(p, 13 + i, NULL);
	}
	pv_int(p, 16, rev + 1);
	return 0;
}

static int put_impl(pg_meta *m, const gl_type *type, json_t *af,
		    const gl_vkey *vk, int insert, gl_err *err)
{
	json_t *doc, *tags, *props, *v;
	int64_t rev = json_integer_value(json_object_get(af, "revision"));
	PGresult *r = NULL;
	pv p = { 0 };
	int ret = -1;
	size_t i;

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
	pv_own(&p, 17, dump(doc));
	json_decref(doc);

	tags = json_array();
	json_array_foreach(json_object_get(af, "tags"), i, v)
		if (json_is_string(v))
			json_array_append(tags, v);
	pv_own(&p, 18, dump(tags));
	json_decref(tags);

	props = json_array();
	for (int f = 0; f < type->nfields; f++) {
		const gl_field *fd = &type->fields[f];

		if (fd->kind == GK_BLOB || fd->kind == GK_FOLDER)
			continue;
		if (fd->base && strcmp(fd->name, "metadata") != 0)
			continue;
		v = json_object_get(af, fd->name);
		if (v)
			field_props(props, fd, v);
	}
	pv_own(&p, 19, dump(props));
	json_decref(props);

	if (bind_artifact(&p, type, af, vk, rev, err))
		goto out;
	if (!insert)
		pv_int(&p, 20, rev);
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
	pv_free(&p);
	if (ret == 0)
		json_object_set_new(af, "revision", json_integer(rev + 1));
	return ret;
}

static int pg_put(gl_meta *gm, const gl_type *type, json_t *af,
		  const gl_vkey *vk, int insert, gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	if (!type || type->is_all || !str_of(af, "id") ||
	    !str_of(af, "name") || !str_of(af, "owner") || !vk)
		return gl_fail(err, 500, NULL,
			       "DBError: artifact without type, id, name, owner"
			       " or version key");
	PG_CALL(m, err, rc, put_impl(m, type, af, vk, insert, err));
	return rc;
}

/* A write of one statement (in the call's own transaction, see wr_begin);
 * *changed (optional): rows it touched. */
static int write1(pg_meta *m, enum stmt_id id, const pv *p, int64_t *changed,
		  gl_err *err)
{
	int ok;

	if (wr_begin(m, 0, err))
		return -1;
	ok = run(m, id, p, changed, err) == 0;
	return wr_end(m, ok, err);
}

static int pg_delete(gl_meta *gm, const char *id, gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, id);
	/* tags, properties, blobs: ON DELETE CASCADE */
	PG_CALL(m, err, rc, write1(m, S_DELETE, &p, NULL, err));
	return rc;
}

static int deleted_impl(pg_meta *m, int64_t before_us, int limit,
			json_t **out, gl_err *err)
{
	PGresult *r;
	pv p = { 0 };
	json_t *arr;

	*out = NULL;
	pv_int(&p, 1, before_us);
	pv_int(&p, 2, limit);
	if (!(r = stq(m, S_DELETED, &p, 0, err)))
		return -1;
	arr = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(arr, json_pack("{s:o, s:o}",
			"id", r_text(r, i, 0), "type_name", r_text(r, i, 1)));
	PQclear(r);
	*out = arr;
	return 0;
}

static int pg_deleted(gl_meta *gm, int64_t before_us, int limit,
		      json_t **out, gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	PG_CALL(m, err, rc, deleted_impl(m, before_us, limit, out, err));
	return rc;
}

static int pg_set_status(gl_meta *gm, const char *id, const char *status,
			 gl_err *err)
{
	pg_meta *m = pg(gm);
	int64_t changed = 0;
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, id);
	pv_text(&p, 2, status);
	pv_int(&p, 3, gl_now_us());
	PG_CALL(m, err, rc, write1(m, S_SET_STATUS, &p, &changed, err));
	if (rc == 0 && changed == 0)
		return gl_fail(err, 404, "ArtifactNotFound",
			       "Artifact with id=%s not found", id);
	return rc;
}

/* A query of one row and one integer column (counts and sums). */
static int query1(pg_meta *m, enum stmt_id id, const pv *p, int64_t *n,
		  gl_err *err)
{
	PGresult *r = stq(m, id, p, 0, err);

	if (!r)
		return -1;
	*n = PQntuples(r) && !r_null(r, 0, 0) ? r_i64(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

static int scope_impl(pg_meta *m, const char *owner, const pv *p,
		      gl_err *err)
{
	PGresult *r = stq(m, owner ? S_SCOPE_PRIVATE : S_SCOPE_PUBLIC, p, 0,
			  err);
	int taken;

	if (!r)
		return -1;
	taken = PQntuples(r) > 0;
	PQclear(r);
	return taken;
}

static int pg_scope_taken(gl_meta *gm, const char *type_name,
			  const char *name, const gl_vkey *vk,
			  const char *owner, const char *exclude_id,
			  gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, type_name);
	pv_text(&p, 2, name);
	pv_int(&p, 3, vk->prefix);
	pv_text(&p, 4, vk->suffix ? vk->suffix : "");
	pv_text(&p, 5, vk->meta ? vk->meta : "");
	/* "" is no id: `id <> NULL` would be NULL and match nothing */
	pv_text(&p, 6, exclude_id ? exclude_id : "");
	if (owner)
		pv_text(&p, 7, owner);
	PG_CALL(m, err, rc, scope_impl(m, owner, &p, err));
	return rc;
}

static int count_query(pg_meta *m, enum stmt_id id, const char *a1,
		       const char *a2, int64_t *n, gl_err *err)
{
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, a1);
	if (a2)
		pv_text(&p, 2, a2);
	PG_CALL(m, err, rc, query1(m, id, &p, n, err));
	return rc;
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
	pg_meta *m = pg(gm);
	json_t *extra, *v;
	const char *k;
	int64_t us;
	pv p = { 0 };
	int c, rc;

	if (!blob || json_is_null(blob))
		return pg_blob_delete(gm, artifact_id, field, key, err);
	if (!json_is_object(blob))
		return gl_fail(err, 500, NULL,
			       "DBError: blob is not an object");
	pv_text(&p, 1, artifact_id);
	pv_text(&p, 2, field);
	pv_text(&p, 3, key ? key : "");
	for (c = 0; c < B_EXTRA; c++) {
		int i = 4 + c + (c > B_PREV ? 2 : 0); /* prev_store/location */

		v = json_object_get(blob, blob_keys[c]);
		switch (c) {
		case B_SIZE:
		case B_RESERVED:
			if (json_is_integer(v)) /* exact above 2^53 */
				pv_int(&p, i, json_integer_value(v));
			else if (json_is_real(v))
				pv_int(&p, i, (int64_t)json_real_value(v));
			break;
		case B_EXTERNAL:
			pv_text(&p, i, json_is_true(v) ? "true" : "false");
			break;
		case B_PREV:
			if (!json_is_object(v))
				break;
			pv_own(&p, i, dump(v));
			pv_text(&p, i + 1, str_of(v, "store"));
			pv_text(&p, i + 2, str_of(v, "location"));
			break;
		case B_VERIFIED:
			if (json_time(v, &us) == 1)
				pv_int(&p, i, us);
			break;
		default:
			if (json_is_string(v))
				pv_text(&p, i, json_string_value(v));
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
		pv_own(&p, 23, dump(extra));
	else
		pv_text(&p, 23, NULL);
	json_decref(extra);
	PG_CALL(m, err, rc, write1(m, S_BLOB_SET, &p, NULL, err));
	pv_free(&p);
	return rc;
}

static int pg_blob_delete(gl_meta *gm, const char *artifact_id,
			  const char *field, const char *key, gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, artifact_id);
	pv_text(&p, 2, field);
	pv_text(&p, 3, key ? key : "");
	PG_CALL(m, err, rc, write1(m, S_BLOB_DEL, &p, NULL, err));
	return rc;
}

static int pg_blob_refs(gl_meta *gm, const char *store, const char *location,
			int64_t *n, gl_err *err)
{
	return count_query(pg(gm), S_BLOB_REFS, store, location, n, err);
}

/* Rows of BLOB_LIST_SQL as {artifact_id, type_name, field, key, blob}. */
static int blob_list(pg_meta *m, enum stmt_id id, const pv *p, json_t **out,
		     gl_err *err)
{
	PGresult *r;
	json_t *arr;

	*out = NULL;
	if (!(r = stq(m, id, p, 0, err)))
		return -1;
	arr = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(arr, json_pack(
			"{s:o, s:o, s:o, s:o, s:o}",
			"artifact_id", r_text(r, i, 0), "type_name",
			r_text(r, i, 1), "field", r_text(r, i, 2), "key",
			r_text(r, i, 3), "blob", blob_json(r, i, 4)));
	PQclear(r);
	*out = arr;
	return 0;
}

static int pg_saving_blobs(gl_meta *gm, json_t **out, gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	PG_CALL(m, err, rc, blob_list(m, S_SAVING, NULL, out, err));
	return rc;
}

static int pg_external_blobs(gl_meta *gm, int limit, json_t **out,
			     gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_int(&p, 1, limit);
	PG_CALL(m, err, rc, blob_list(m, S_EXTERNAL, &p, out, err));
	return rc;
}

static int pg_gc_push(gl_meta *gm, const char *store, const char *location,
		      gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, store);
	pv_text(&p, 2, location);
	pv_int(&p, 3, gl_now_us());
	PG_CALL(m, err, rc, write1(m, S_GC_PUSH, &p, NULL, err));
	return rc;
}

static int gc_list_impl(pg_meta *m, const pv *p, json_t **out, gl_err *err)
{
	PGresult *r;
	json_t *arr;

	*out = NULL;
	if (!(r = stq(m, S_GC_LIST, p, 0, err)))
		return -1;
	arr = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(arr, json_pack("{s:o, s:o}",
			"store", r_text(r, i, 0), "location", r_text(r, i, 1)));
	PQclear(r);
	*out = arr;
	return 0;
}

static int pg_gc_list(gl_meta *gm, int limit, json_t **out, gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_int(&p, 1, limit);
	PG_CALL(m, err, rc, gc_list_impl(m, &p, out, err));
	return rc;
}

static int pg_gc_pop(gl_meta *gm, const char *store, const char *location,
		     gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, store);
	pv_text(&p, 2, location);
	PG_CALL(m, err, rc, write1(m, S_GC_POP, &p, NULL, err));
	return rc;
}

/* ------------------------------------------------------------------------
 * Listing: SQL built from fragments, each carrying its own parameters in
 * text order, so a fragment can be reused in the page and count queries.
 * A parameter is written as PH followed by its cast; the final text numbers
 * them $1, $2, ... in order (frag_sql). The cast is part of the text, so
 * one text always means the same parameter types.
 * ---------------------------------------------------------------------- */

#define PH '\x01'

typedef struct param {
	int null;
	const char *s;     /* text value (borrowed), NULL: buf */
	char buf[40];      /* numbers */
	const char *cast;  /* "int8", "numeric", "text" */
	char *owned;       /* marker values: freed by their owner */
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

static void f_push(frag *f, const param *p)
{
	if (f->np == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->pv = xrealloc(f->pv, (size_t)f->cap * sizeof *f->pv);
	}
	f->pv[f->np] = *p;
	f->pv[f->np++].owned = NULL; /* ownership stays with the source */
}

static void f_param(frag *f, const param *p)
{
	char ph[2] = { PH, '\0' };

	f_push(f, p);
	sb_add(&f->sql, ph);
	sb_addf(&f->sql, "::%s", p->cast);
}

static void f_text(frag *f, const char *s)
{
	param p = { .s = s, .cast = "text" };

	f_param(f, &p);
}

static void f_int(frag *f, int64_t v)
{
	param p = { .cast = "int8" };

	snprintf(p.buf, sizeof p.buf, "%lld", (long long)v);
	f_param(f, &p);
}

static void f_cat(frag *dst, const frag *src)
{
	if (src->sql.p)
		sb_add(&dst->sql, src->sql.p);
	for (int i = 0; i < src->np; i++)
		f_push(dst, &src->pv[i]);
}

static void f_free(frag *f)
{
	free(f->sql.p);
	free(f->pv);
	memset(f, 0, sizeof *f);
}

/* What a filter value is compared with: a BIGINT column of artifacts, a
 * TEXT column, or a property row (value_num or value_text by its kind). */
enum target { TG_INT, TG_TEXT, TG_PROP };

/* A filter value as a parameter. DateTime strings become microseconds;
 * booleans 0/1 as they are stored. Against a text column a number is its
 * text, as SQLite's TEXT affinity makes it. */
static int value_param(const json_t *v, gl_kind kind, enum target tg,
		       param *p, gl_err *err)
{
	memset(p, 0, sizeof *p);
	p->cast = tg == TG_INT ? "int8" : tg == TG_TEXT ? "text" : "numeric";
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_INTEGER:
		snprintf(p->buf, sizeof p->buf, "%lld",
			 (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		real_text(json_real_value(v), p->buf, sizeof p->buf);
		if (tg == TG_INT)
			p->cast = "numeric";
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(p->buf, sizeof p->buf, "%d", json_is_true(v));
		break;
	case JSON_STRING:
		if (kind == GK_DATETIME && tg != TG_TEXT) {
			int64_t us;

			if (gl_parse_iso8601(json_string_value(v), &us))
				return gl_fail(err, 400, "BadRequest",
					       "Invalid datetime value %s",
					       json_string_value(v));
			snprintf(p->buf, sizeof p->buf, "%lld", (long long)us);
		} else {
			p->s = json_string_value(v);
			p->cast = "text";
		}
		break;
	case JSON_NULL:
		p->null = 1;
		break;
	default:
		return gl_fail(err, 400, "BadRequest",
			       "Filter values must be scalars");
	}
	return 0;
}

/* A number parameter compares with value_num, a string with value_text. */
static const char *prop_column(const param *p)
{
	return strcmp(p->cast, "text") == 0 ? "value_text" : "value_num";
}

static const char *op_sql(unsigned op)
{
	switch (op) {
	case GL_OP_EQ: return " = ";
	case GL_OP_NEQ: return " <> ";
	case GL_OP_LT: return " < ";
	case GL_OP_LTE: return " <= ";
	case GL_OP_GT: return " > ";
	case GL_OP_GTE: return " >= ";
	default: return NULL;
	}
}

/* LIKE as SQLite's: the user's wildcards, ASCII case-insensitive (ILIKE
 * folds only ASCII under the "C" collation), and no escape character. */
static void like_sql(frag *f, const char *expr, const char *pattern)
{
	f_sql(f, expr);
	f_sql(f, " COLLATE \"C\" ILIKE ");
	f_text(f, pattern);
	f_sql(f, " ESCAPE ''");
}

/* expr compared with the filter's values, for a column of artifacts (tg
 * TG_INT or TG_TEXT) or a dict key: " OP ?" or " IN (?, ...)". */
static int column_cond(frag *f, const char *expr, const gl_filter *flt,
		       gl_kind kind, enum target tg, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	param p;

	if (flt->op == GL_OP_IN) {
		if (n == 0) {
			f_sql(f, "FALSE");
			return 0;
		}
		f_sql(f, expr);
		f_sql(f, " IN (");
		for (size_t i = 0; i < n; i++) {
			if (value_param(json_array_get(flt->values, i), kind,
					tg, &p, err))
				return -1;
			if (i)
				f_sql(f, ", ");
			f_param(f, &p);
		}
		f_sql(f, ")");
		return 0;
	}
	if ((flt->op != GL_OP_LIKE && !op_sql(flt->op)) || n < 1)
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter on %s",
			       flt->field ? flt->field->name : "tags");
	if (value_param(json_array_get(flt->values, 0), kind, TG_TEXT, &p,
			err))
		return -1;
	if (flt->op == GL_OP_LIKE) {
		if (p.null) {
			f_sql(f, "FALSE");
			return 0;
		}
		like_sql(f, expr, p.s ? p.s : p.buf);
		return 0;
	}
	if (value_param(json_array_get(flt->values, 0), kind, tg, &p, err))
		return -1;
	f_sql(f, expr);
	f_sql(f, op_sql(flt->op));
	f_param(f, &p);
	return 0;
}

/* The value test of a property filter over alias al: each value against
 * the column of its kind. `neq` is IS DISTINCT FROM so that, as in SQLite,
 * a row of the other kind is "not equal" (properties are never NULL). A
 * NULL value matches nothing, as in SQL. */
static int prop_cond(frag *f, const char *al, const gl_filter *flt,
		     gl_kind kind, gl_err *err)
{
	size_t n = json_array_size(flt->values);
	char expr[48];
	param p;

	if (flt->op == GL_OP_LIKE) {
		if (n < 1 || value_param(json_array_get(flt->values, 0), kind,
					 TG_TEXT, &p, err))
			return n < 1 ? gl_fail(err, 400, "BadRequest",
					       "Unsupported filter on %s",
					       flt->field->name) : -1;
		if (p.null) {
			f_sql(f, "FALSE");
			return 0;
		}
		/* SQLite matches numbers by their text */
		snprintf(expr, sizeof expr, "coalesce(%s.value_text,"
			 " %s.value_num::text)", al, al);
		like_sql(f, expr, p.s ? p.s : p.buf);
		return 0;
	}
	if (flt->op == GL_OP_IN) {
		int terms = 0;

		f_sql(f, "(");
		/* numbers in one IN list, strings in another */
		for (int text = 0; text < 2; text++) {
			int k = 0;

			for (size_t i = 0; i < n; i++) {
				if (value_param(json_array_get(flt->values, i),
						kind, TG_PROP, &p, err))
					return -1;
				if (p.null ||
				    (strcmp(prop_column(&p), "value_text") == 0)
				    != text)
					continue;
				if (k++ == 0)
					sb_addf(&f->sql, "%s%s.%s IN (",
						terms++ ? " OR " : "", al,
						prop_column(&p));
				else
					f_sql(f, ", ");
				f_param(f, &p);
			}
			if (k)
				f_sql(f, ")");
		}
		f_sql(f, terms ? ")" : "FALSE)");
		return 0;
	}
	if (!op_sql(flt->op) || n < 1)
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter on %s", flt->field->name);
	if (value_param(json_array_get(flt->values, 0), kind, TG_PROP, &p,
			err))
		return -1;
	if (p.null) {
		f_sql(f, "FALSE");
		return 0;
	}
	sb_addf(&f->sql, "%s.%s", al, prop_column(&p));
	f_sql(f, flt->op == GL_OP_NEQ ? " IS DISTINCT FROM " : op_sql(flt->op));
	f_param(f, &p);
	return 0;
}

/* The semver comparison of a version filter: equality on (prefix, suffix,
 * meta), order on (prefix, suffix) - build metadata does not order. The
 * prefix is a signed int8 whose order is the semver order. */
static int version_cond(frag *f, const char *al, const gl_filter *flt,
			gl_err *err)
{
	size_t n = json_array_size(flt->values);
	char expr[48];

	if (flt->op == GL_OP_LIKE) {
		snprintf(expr, sizeof expr, "%s.version", al);
		return column_cond(f, expr, flt, GK_STRING, TG_TEXT, err);
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
			sb_addf(&f->sql, "(%s.version_prefix = ", al);
			f_int(f, k->prefix);
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
	f_int(f, flt->vkeys[0].prefix);
	f_sql(f, ", ");
	f_text(f, flt->vkeys[0].suffix ? flt->vkeys[0].suffix : "");
	f_sql(f, ")");
	return 0;
}

/* The property rows a filter is about, with the value test, over alias p:
 * "p.name = ? AND p.key = ... AND <value test>". */
static int prop_match(frag *f, const char *p, const gl_filter *flt,
		      gl_err *err)
{
	const gl_field *fd = flt->field;
	gl_kind kind = fd->kind == GK_LIST || fd->kind == GK_DICT ? fd->elem
								   : fd->kind;
	char expr[32];

	sb_addf(&f->sql, "%s.name = ", p);
	f_text(f, fd->name);
	switch (flt->kind) {
	case GF_PROP:
		sb_addf(&f->sql, " AND %s.key = '' AND ", p);
		return prop_cond(f, p, flt, kind, err);
	case GF_DICT_KEY:
		if (flt->op != GL_OP_EQ && flt->op != GL_OP_IN)
			return gl_fail(err, 400, "BadRequest",
				       "Only eq and in filter on the keys of %s",
				       fd->name);
		/* keys are strings whatever the element kind */
		f_sql(f, " AND ");
		snprintf(expr, sizeof expr, "%s.key", p);
		return column_cond(f, expr, flt, GK_STRING, TG_TEXT, err);
	case GF_DICT_VAL:
		sb_addf(&f->sql, " AND %s.key = ", p);
		f_text(f, flt->key ? flt->key : "");
		f_sql(f, " AND ");
		return prop_cond(f, p, flt, kind, err);
	default:
		return gl_fail(err, 500, NULL, "DBError: bad filter kind");
	}
}

/* A correlated probe of a property or tag table for artifact alias al,
 * closed by ")"; PostgreSQL plans it as a semi-join, walking the sort
 * index or hashing the matching rows as its statistics say. */
static void member_open(frag *f, const char *al, const char *table,
			const char *t)
{
	sb_addf(&f->sql, "EXISTS (SELECT 1 FROM %s %s WHERE %s.artifact_id"
		" = %s.id AND ", table, t, t, al);
}

/* One filter as a boolean SQL expression over artifact alias al. An
 * artifact without the property never matches a property filter, not
 * even `neq` (Glare's join semantics). */
static int filter_cond(frag *f, const char *al, const gl_filter *flt,
		       gl_err *err)
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
			return version_cond(f, al, flt, err);
		snprintf(expr, sizeof expr, "%s.%s", al, flt->field->name);
		if (is_time_column(flt->field->name))
			return column_cond(f, expr, flt, GK_DATETIME, TG_INT,
					   err);
		return column_cond(f, expr, flt, GK_STRING, TG_TEXT, err);
	case GF_PROP:
	case GF_DICT_KEY:
	case GF_DICT_VAL:
		if (!flt->field)
			return gl_fail(err, 500, NULL,
				       "DBError: filter without field");
		member_open(f, al, "properties", "p");
		if (prop_match(f, "p", flt, err))
			return -1;
		f_sql(f, ")");
		return 0;
	case GF_TAGS_ALL:
		if (!n) {
			f_sql(f, "TRUE");
			return 0;
		}
		f_sql(f, "(");
		for (size_t i = 0; i < n; i++) {
			param p;

			if (value_param(json_array_get(flt->values, i),
					GK_STRING, TG_TEXT, &p, err))
				return -1;
			if (i)
				f_sql(f, " AND ");
			member_open(f, al, "tags", "t");
			f_sql(f, "t.value = ");
			f_param(f, &p);
			f_sql(f, ")");
		}
		f_sql(f, ")");
		return 0;
	case GF_TAGS_ANY: {
		gl_filter in = *flt;

		if (!n) {
			f_sql(f, "TRUE");
			return 0;
		}
		in.op = GL_OP_IN;
		member_open(f, al, "tags", "t");
		if (column_cond(f, "t.value", &in, GK_STRING, TG_TEXT, err))
			return -1;
		f_sql(f, ")");
		return 0;
	}
	}
	return gl_fail(err, 500, NULL, "DBError: bad filter kind");
}

/* Everything that selects artifacts, over alias al: not deleted, the type,
 * the caller's visibility scope, the AND filters and the OR group. */
static int where_sql(frag *f, const gl_list_query *q, const char *al,
		     gl_err *err)
{
	int nor = 0;

	sb_addf(&f->sql, "%s.status <> 'deleted'", al);
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
		if (q->filters[i].or_group)
			continue;
		f_sql(f, " AND ");
		if (filter_cond(f, al, &q->filters[i], err))
			return -1;
	}
	for (int i = 0; i < q->nfilters; i++) {
		if (!q->filters[i].or_group)
			continue;
		f_sql(f, nor++ ? " OR " : " AND (");
		if (filter_cond(f, al, &q->filters[i], err))
			return -1;
	}
	if (nor)
		f_sql(f, ")");
	return 0;
}

/* version=latest: no visible match of the same name (and type) has a
 * higher (prefix, suffix). Equivalent to rank() = 1 per name, as a
 * correlated probe on the name/version index. */
static int latest_sql(frag *f, const gl_list_query *q, gl_err *err)
{
	f_sql(f, " AND NOT EXISTS (SELECT 1 FROM artifacts b"
	      " WHERE b.name = a.name AND (b.version_prefix, b.version_suffix)"
	      " > (a.version_prefix, a.version_suffix) AND ");
	if (where_sql(f, q, "b", err))
		return -1;
	f_sql(f, ")");
	return 0;
}

/* The statement text of a fragment, placeholders numbered in order. */
static char *frag_text(const frag *f)
{
	sbuf out = { 0 };
	int k = 0;

	for (const char *s = f->sql.p; s && *s; s++) {
		if (*s == PH)
			sb_addf(&out, "$%d", ++k);
		else
			sb_addn(&out, s, 1);
	}
	if (!out.p)
		sb_add(&out, "");
	return out.p;
}

/* The prepared statement of a listing text from the LRU (prepared on a
 * miss; the evicted one is deallocated). */
static const char *dyn_get(pg_meta *m, char *sql, gl_err *err)
{
	struct dyn_stmt *victim = &m->dyn[0];
	PGresult *r;
	char dealloc[48];

	m->tick++;
	for (int i = 0; i < DYN_CACHE; i++) {
		struct dyn_stmt *d = &m->dyn[i];

		if (d->sql && strcmp(d->sql, sql) == 0) {
			d->used = m->tick;
			free(sql);
			return d->name;
		}
		if (d->used < victim->used)
			victim = d;
	}
	if (victim->sql) {
		snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s",
			 victim->name);
		PQclear(PQexec(m->conn, dealloc));
		free(victim->sql);
		memset(victim, 0, sizeof *victim);
	}
	snprintf(victim->name, sizeof victim->name, "gl_d%u", ++m->dyn_seq);
	r = PQprepare(m->conn, victim->name, sql, 0, NULL);
	if (!res_ok(r)) {
		pg_fail(m, r, err);
		PQclear(r);
		free(sql);
		victim->name[0] = '\0';
		return NULL;
	}
	PQclear(r);
	victim->sql = sql;
	victim->used = m->tick;
	return victim->name;
}

/* Prepare (or reuse) and run a fragment: the result or NULL + err. */
static PGresult *frag_exec(pg_meta *m, const frag *f, gl_err *err)
{
	const char *name = dyn_get(m, frag_text(f), err);
	const char **vals;
	PGresult *r;

	if (!name)
		return NULL;
	vals = xrealloc(NULL, (size_t)(f->np + 1) * sizeof *vals);
	for (int i = 0; i < f->np; i++) {
		const param *p = &f->pv[i];

		vals[i] = p->null ? NULL : p->s ? p->s : p->buf;
	}
	r = PQexecPrepared(m->conn, name, f->np, vals, NULL, NULL, 0);
	free(vals);
	if (!res_ok(r)) {
		pg_fail(m, r, err);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* One sort column. Version sorts on two columns; a custom key on the
 * typed value of its property row joined as sN. */
struct skey {
	char expr[48];
	int desc;
	int notnull;     /* the column is never NULL in the result */
};

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

static int sort_keys(const gl_list_query *q, struct skey **out, int *nout,
		     gl_err *err)
{
	struct skey *k = xrealloc(NULL,
				  (size_t)(q->nsorts * 2 + 1) * sizeof *k);
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
			snprintf(k[n].expr, sizeof k[n].expr, "s%d.%s",
				 njoin++, sort_column(fd));
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
 * sort_keys), with a value of the key's kind. kw "JOIN" drops artifacts
 * without the value, as Glare does; "LEFT JOIN" is for reading the
 * marker, which keeps its place anyway. */
static void sort_joins(frag *f, const gl_list_query *q, const char *kw)
{
	int njoin = 0;

	for (int i = 0; i < q->nsorts; i++) {
		const gl_field *fd = q->sorts[i].field;

		if (!fd || fd->base)
			continue;
		sb_addf(&f->sql, " %s properties s%d ON s%d.artifact_id = a.id"
			" AND s%d.name = ", kw, njoin, njoin, njoin);
		f_text(f, fd->name);
		sb_addf(&f->sql, " AND s%d.key = '' AND s%d.pos = 0"
			" AND s%d.%s IS NOT NULL", njoin, njoin, njoin,
			sort_column(fd));
		njoin++;
	}
}

/* For counting: the custom sort keys' inner joins only drop artifacts
 * without the value, which a probe does without the join. */
static void sort_exists(frag *f, const gl_list_query *q)
{
	for (int i = 0; i < q->nsorts; i++) {
		const gl_field *fd = q->sorts[i].field;

		if (!fd || fd->base)
			continue;
		f_sql(f, " AND ");
		member_open(f, "a", "properties", "s");
		f_sql(f, "s.name = ");
		f_text(f, fd->name);
		sb_addf(&f->sql, " AND s.key = '' AND s.pos = 0"
			" AND s.%s IS NOT NULL)", sort_column(fd));
	}
}

static void free_marker(param *mv, int n)
{
	for (int i = 0; mv && i < n; i++)
		free(mv[i].owned);
	free(mv);
}

/* The marker's sort values (owned copies, typed as their columns), read
 * from its row. */
static int marker_values(pg_meta *m, const gl_list_query *q,
			 const struct skey *k, int n, param **out,
			 gl_err *err)
{
	frag f = { 0 };
	PGresult *r;
	param *mv;

	*out = NULL;
	f_sql(&f, "SELECT ");
	for (int i = 0; i < n; i++) {
		if (i)
			f_sql(&f, ", ");
		f_sql(&f, k[i].expr);
	}
	f_sql(&f, " FROM artifacts a");
	sort_joins(&f, q, "LEFT JOIN");
	f_sql(&f, " WHERE a.id = ");
	f_text(&f, q->marker);
	r = frag_exec(m, &f, err);
	f_free(&f);
	if (!r)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return gl_fail(err, 404, "ArtifactNotFound",
			       "Artifact with id=%s not found", q->marker);
	}
	mv = xrealloc(NULL, (size_t)n * sizeof *mv);
	memset(mv, 0, (size_t)n * sizeof *mv);
	for (int i = 0; i < n; i++) {
		Oid t = PQftype(r, i);

		/* int8 20, numeric 1700; everything else is text here */
		mv[i].cast = t == 20 ? "int8" : t == 1700 ? "numeric" : "text";
		if (r_null(r, 0, i)) {
			mv[i].null = 1;
			continue;
		}
		mv[i].owned = xstrdup(PQgetvalue(r, 0, i));
		mv[i].s = mv[i].owned;
	}
	PQclear(r);
	*out = mv;
	return 0;
}

/* Rows after the marker in the sort order (keyset pagination):
 *   k1 > m1 OR (k1 = m1 AND k2 > m2) OR ...
 * with > meaning "later" in each key's direction and NULL the smallest
 * value (SQLite's order, which order_sql asks PostgreSQL for). A bound on
 * the first key alone comes first so the index range starts at the
 * marker. */
static void marker_sql(frag *f, const struct skey *k, int n, const param *mv)
{
	int terms = 0;

	f_sql(f, " AND ");
	if (k[0].notnull && !mv[0].null) {
		f_sql(f, k[0].expr);
		f_sql(f, k[0].desc ? " <= " : " >= ");
		f_param(f, &mv[0]);
		f_sql(f, " AND ");
	}
	f_sql(f, "(");
	for (int i = 0; i < n; i++) {
		/* nothing sorts after NULL going down */
		if (k[i].desc && mv[i].null)
			continue;
		f_sql(f, terms++ ? " OR (" : "(");
		for (int j = 0; j < i; j++) {
			f_sql(f, k[j].expr);
			if (mv[j].null) {
				f_sql(f, " IS NULL AND ");
			} else {
				f_sql(f, " = ");
				f_param(f, &mv[j]);
				f_sql(f, " AND ");
			}
		}
		if (mv[i].null) {
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
		f_sql(f, "FALSE");
	f_sql(f, ")");
}

/* ORDER BY with SQLite's NULL order (NULL smallest) on nullable keys;
 * keys that are never NULL keep the plain form an index can serve. */
static void order_sql(frag *f, const struct skey *k, int n)
{
	f_sql(f, " ORDER BY ");
	for (int i = 0; i < n; i++)
		sb_addf(&f->sql, "%s%s%s%s", i ? ", " : "", k[i].expr,
			k[i].desc ? " DESC" : "",
			k[i].notnull ? "" : k[i].desc ? " NULLS LAST"
						      : " NULLS FIRST");
}

static int list_impl(pg_meta *m, const gl_list_query *q, json_t **artifacts,
		     int64_t *total, gl_err *err)
{
	const gl_type *view = q->type_name && q->type && !q->type->is_all
				      ? q->type : NULL;
	frag where = { 0 }, joins = { 0 }, page = { 0 }, cnt = { 0 };
	struct skey *keys = NULL;
	param *mv = NULL;
	json_t *arr = NULL, *idx = NULL, *ids = NULL;
	PGresult *r = NULL;
	pv p = { 0 };
	int nkeys = 0, ret = -1;

	*artifacts = NULL;
	if (total)
		*total = 0;
	if (rd_begin(m, err)) /* one snapshot for page, count and blobs */
		return -1;
	if (sort_keys(q, &keys, &nkeys, err) ||
	    where_sql(&where, q, "a", err) ||
	    (q->latest && latest_sql(&where, q, err)))
		goto out;
	sort_joins(&joins, q, "JOIN");

	arr = json_array();
	if (q->limit != 0) {
		param lim = { .cast = "int8", .null = q->limit < 0 };

		if (q->marker &&
		    marker_values(m, q, keys, nkeys, &mv, err))
			goto out;
		f_sql(&page, "SELECT " ART_COLS " FROM artifacts a");
		f_cat(&page, &joins);
		f_sql(&page, " WHERE ");
		f_cat(&page, &where);
		if (mv)
			marker_sql(&page, keys, nkeys, mv);
		order_sql(&page, keys, nkeys);
		f_sql(&page, " LIMIT ");
		snprintf(lim.buf, sizeof lim.buf, "%d", q->limit);
		f_param(&page, &lim); /* NULL: no limit */
		if (!(r = frag_exec(m, &page, err)))
			goto out;
		idx = json_object();
		ids = json_array();
		for (int i = 0; i < PQntuples(r); i++) {
			json_t *af;

			if (row_json(r, i, view, &af, err))
				goto out;
			json_array_append_new(arr, af);
			json_object_set(idx, json_string_value(
				json_object_get(af, "id")), af);
			json_array_append(ids, json_object_get(af, "id"));
		}
		PQclear(r);
		r = NULL;
		if (view && json_array_size(ids)) {
			pv_own(&p, 1, dump(ids));
			if (!(r = stq(m, S_BLOBS_OF_PAGE, &p, 0, err)))
				goto out;
			for (int i = 0; i < PQntuples(r); i++)
				attach_blob(json_object_get(idx,
						PQgetvalue(r, i, 0)),
					    view, r, i, 1);
			PQclear(r);
			r = NULL;
		}
	}
	if (total) {
		f_sql(&cnt, "SELECT count(*) FROM artifacts a WHERE ");
		f_cat(&cnt, &where);
		sort_exists(&cnt, q);
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
	free_marker(mv, nkeys);
	free(keys);
	pv_free(&p);
	f_free(&where);
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

static int pg_list(gl_meta *gm, const gl_list_query *q, json_t **artifacts,
		   int64_t *total, gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	PG_CALL(m, err, rc, list_impl(m, q, artifacts, total, err));
	return rc;
}

/* ------------------------------------------------------------------------
 * Quotas.
 * ---------------------------------------------------------------------- */

static int quotas_set_impl(pg_meta *m, const json_t *projects, gl_err *err)
{
	json_t *pj, *qv;
	size_t i, j;
	int ret = -1;

	if (wr_begin(m, 1, err))
		return -1;
	json_array_foreach(projects, i, pj) {
		const char *pid = str_of(pj, "project_id");
		pv p = { 0 };

		if (!pid) {
			gl_fail(err, 500, NULL,
				"DBError: quota without project_id");
			goto out;
		}
		pv_text(&p, 1, pid);
		if (run(m, S_QUOTA_DEL, &p, NULL, err))
			goto out;
		json_t *quotas = json_object_get(pj, "project_quotas");

		json_array_foreach(quotas, j, qv) {
			const char *name = str_of(qv, "quota_name");

			if (!name)
				continue;
			pv_text(&p, 2, name);
			pv_int(&p, 3, json_integer_value(
				json_object_get(qv, "quota_value")));
			if (run(m, S_QUOTA_INS, &p, NULL, err))
				goto out;
		}
	}
	ret = 0;
out:
	return wr_end(m, ret == 0, err);
}

static int pg_quotas_set(gl_meta *gm, const json_t *projects, gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	if (!json_is_array(projects))
		return gl_fail(err, 500, NULL,
			       "DBError: quotas must be a list");
	PG_CALL(m, err, rc, quotas_set_impl(m, projects, err));
	return rc;
}

static int quotas_get_impl(pg_meta *m, const char *project, json_t **out,
			   gl_err *err)
{
	PGresult *r;
	pv p = { 0 };
	json_t *res;

	*out = NULL;
	pv_text(&p, 1, project);
	if (!(r = stq(m, project ? S_QUOTA_ONE : S_QUOTA_ALL,
		    project ? &p : NULL, 0, err)))
		return -1;
	res = json_object();
	/* a named project is always a key, even without overrides */
	if (project)
		json_object_set_new(res, project, json_object());
	for (int i = 0; i < PQntuples(r); i++) {
		const char *pid = PQgetvalue(r, i, 0);
		json_t *o = json_object_get(res, pid);

		if (!o) {
			o = json_object();
			json_object_set_new(res, pid, o);
		}
		json_object_set_new(o, PQgetvalue(r, i, 1),
				    json_integer(r_i64(r, i, 2)));
	}
	PQclear(r);
	*out = res;
	return 0;
}

static int pg_quotas_get(gl_meta *gm, const char *project, json_t **out,
			 gl_err *err)
{
	pg_meta *m = pg(gm);
	int rc;

	PG_CALL(m, err, rc, quotas_get_impl(m, project, out, err));
	return rc;
}

/* ------------------------------------------------------------------------
 * The "database" blob store: the size in blob_data, the bytes in
 * DATA_CHUNK pieces in blob_data_chunks, written one piece per statement
 * and read back with server-side substrings, so neither side ever holds
 * more than a piece (or the caller's read) in memory.
 * ---------------------------------------------------------------------- */

static int put_file_impl(pg_meta *m, const char *location, int fd,
			 int64_t size, char *buf, gl_err *err)
{
	int64_t off = 0;
	pv p = { 0 };
	int ret = -1;

	if (wr_begin(m, 1, err))
		return -1;
	pv_text(&p, 1, location);
	pv_int(&p, 2, size);
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
		pv_int(&p, 2, seq);
		pv_bin(&p, 3, buf, (int)have);
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
	pg_meta *m = pg(gm);
	char *buf;
	int rc;

	if (size < 0)
		return gl_fail(err, 500, NULL, "DBError: negative blob size");
	buf = xrealloc(NULL, DATA_CHUNK);
	PG_CALL(m, err, rc, put_file_impl(m, location, fd, size, buf, err));
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

static int64_t data_read_impl(pg_meta *m, const char *location, int64_t off,
			      void *buf, int64_t len, gl_err *err)
{
	PGresult *r;
	int64_t size, want, got = 0;
	pv p = { 0 };

	pv_text(&p, 1, location);
	pv_int(&p, 2, off);
	pv_int(&p, 3, off + len);
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
	pg_meta *m = pg(gm);
	int64_t rc;

	if (off < 0 || len < 0) {
		gl_fail(err, 500, NULL, "DBError: bad read range");
		return -1;
	}
	if (len > INT_MAX)
		len = INT_MAX;
	if (len > INT64_MAX - off) /* off + len is a parameter */
		len = INT64_MAX - off;
	PG_CALL(m, err, rc, data_read_impl(m, location, off, buf, len, err));
	return rc;
}

static int data_exists_impl(pg_meta *m, const pv *p, gl_err *err)
{
	PGresult *r = stq(m, S_DATA_FIND, p, 0, err);
	int found;

	if (!r)
		return -1;
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}

static int pg_data_exists(gl_meta *gm, const char *location, gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, location);
	PG_CALL(m, err, rc, data_exists_impl(m, &p, err));
	return rc;
}

static int pg_data_delete(gl_meta *gm, const char *location, gl_err *err)
{
	pg_meta *m = pg(gm);
	pv p = { 0 };
	int rc;

	pv_text(&p, 1, location);
	/* the pieces: ON DELETE CASCADE */
	PG_CALL(m, err, rc, write1(m, S_DATA_DEL, &p, NULL, err));
	return rc;
}

const struct gl_meta_ops gl_meta_pg_ops = {
	.name = "postgresql",
	.close = pg_close,
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
	.list = pg_list,
	.quotas_set = pg_quotas_set,
	.quotas_get = pg_quotas_get,
	.data_put_file = pg_data_put_file,
	.data_read = pg_data_read,
	.data_exists = pg_data_exists,
	.data_delete = pg_data_delete,
};
