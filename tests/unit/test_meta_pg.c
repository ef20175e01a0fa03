/* test_meta_pg.c - unit tests for meta_pg.c against a real PostgreSQL: the
 * scenarios every metadata backend must pass (meta_scenarios.h, the same
 * ones test_meta.c runs on sqlite), plus schema creation and versioning,
 * the schema compared with SQLite's (tables, columns, indexes),
 * two nodes racing on one name/version scope or one artifact (exactly one
 * commits, the other gets its 409), the data store's pieces, and
 * reconnecting after the server dropped the connection.
 *
 * Needs GLARED_PG_URL, e.g.
 *   scripts/pg.sh start && GLARED_PG_URL=$(scripts/pg.sh url) \
 *       build/unit-tests meta_pg
 * Without it every case is reported as skipped.
 *
 * Each case gets a fresh schema (glared_t<pid>) in that database, chosen
 * through the URL (options=-csearch_path=...), so cases never see each
 * other's rows; its backends carry the schema as application_name, which
 * is how the reconnect cases find the one to terminate.
 */
#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "coro.h"
#include "meta.h"
#include "util.h"

#include <event2/event.h>

/* ---- fixture (see meta_scenarios.h) ------------------------------------- */

#define PROP_VALUE "value_num"
#define PROP_IS_NUMBER "SELECT (value_num IS NOT NULL)::int"

typedef struct fx {
	char dir[64];
	char schema[64];
	char conn[1024];
	gl_meta *m;
	gl_err err;
} fx;

static const char *pg_url(void)
{
	const char *u = getenv("GLARED_PG_URL");

	return u && *u ? u : NULL;
}

static const char *fx_skip(void)
{
	return pg_url() ? NULL : "GLARED_PG_URL is not set (scripts/pg.sh)";
}

/* A raw connection beside the store (search_path: schema, if given). */
static PGconn *raw_conn(const char *schema)
{
	PGconn *c = PQconnectdb(pg_url());
	char sql[128];

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "meta_pg: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	if (schema) {
		snprintf(sql, sizeof sql, "SET search_path TO %s", schema);
		PQclear(PQexec(c, sql));
	}
	return c;
}

static int raw_exec_in(const char *schema, const char *sql)
{
	PGconn *c = raw_conn(schema);
	PGresult *r;
	int ok;

	if (!c)
		return -1;
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
	     PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "meta_pg: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

static int raw_exec(fx *f, const char *sql)
{
	return raw_exec_in(f->schema, sql);
}

/* One integer; -1 no row or NULL, -2 error. */
static int64_t raw_int(fx *f, const char *sql)
{
	PGconn *c = raw_conn(f->schema);
	PGresult *r;
	int64_t v = -2;

	if (!c)
		return -2;
	r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		v = PQntuples(r) && !PQgetisnull(r, 0, 0)
			    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
			    : -1;
	else
		fprintf(stderr, "meta_pg: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* The store URL for a schema: the base URL plus search_path and
 * application_name (libpq takes its keywords as URL parameters). */
static void schema_url(char *out, size_t n, const char *schema)
{
	const char *base = pg_url();

	snprintf(out, n, "%s%coptions=-csearch_path%%3D%s&application_name=%s",
		 base, strchr(base, '?') ? '&' : '?', schema, schema);
}

/* A case that failed a CHECK returns without fx_close; its connection
 * would keep its transaction (and the writers' lock) and make every later
 * case wait. The next fx_open closes it. */
static gl_meta *leaked, *leaked_pool;

/* A store in a fresh schema, and a temp dir for files. */
static gl_meta *fx_open(fx *f)
{
	gl_conf conf;
	char sql[192];

	if (leaked) {
		gl_meta_close(leaked);
		leaked = NULL;
	}
	if (leaked_pool) { /* a coroutine case's (cfx) */
		gl_meta_close(leaked_pool);
		leaked_pool = NULL;
	}
	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/glmetapg.XXXXXX");
	if (!mkdtemp(f->dir))
		return NULL;
	snprintf(f->schema, sizeof f->schema, "glared_t%d", (int)getpid());
	snprintf(sql, sizeof sql,
		 "DROP SCHEMA IF EXISTS %s CASCADE;"
		 " CREATE SCHEMA %s",
		 f->schema, f->schema);
	if (raw_exec_in(NULL, sql))
		return NULL;
	schema_url(f->conn, sizeof f->conn, f->schema);
	memset(&conf, 0, sizeof conf);
	conf.db_connection = f->conn;
	f->m = gl_meta_open(&conf, 0, &f->err);
	if (!f->m)
		fprintf(stderr, "meta_pg: open: %s\n", f->err.msg);
	leaked = f->m;
	return f->m;
}

static void fx_close(fx *f)
{
	char sql[128];

	gl_meta_close(f->m);
	if (leaked == f->m)
		leaked = NULL;
	f->m = NULL;
	/* bounded: a failed case may have left a transaction behind */
	snprintf(sql, sizeof sql,
		 "SET lock_timeout = '10s';"
		 " DROP SCHEMA IF EXISTS %s CASCADE",
		 f->schema);
	raw_exec_in(NULL, sql);
	if (f->dir[0])
		unit_rm_tree(f->dir);
}

static gl_meta *reopen(fx *f, int upgrade)
{
	gl_conf conf;

	memset(&conf, 0, sizeof conf);
	conf.db_connection = f->conn;
	return gl_meta_open(&conf, upgrade, &f->err);
}

static int raw_sql(fx *f, const char *sql)
{
	return raw_exec(f, sql);
}

#include "meta_scenarios.h"

/* Terminate the store's backend(s) from another session, as a server
 * restart or an admin would, and wait until they are gone. */
static int64_t terminate_store(fx *f)
{
	char sql[256];
	int64_t n;

	snprintf(sql, sizeof sql,
		 "SELECT count(pg_terminate_backend(pid))"
		 " FROM pg_stat_activity WHERE application_name = '%s'"
		 " AND pid <> pg_backend_pid()",
		 f->schema);
	n = raw_int(f, sql);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM pg_stat_activity"
		 " WHERE application_name = '%s' AND pid <> pg_backend_pid()",
		 f->schema);
	for (int i = 0; i < 200 && raw_int(f, sql) > 0; i++)
		usleep(10000);
	return n;
}

/* ========================================================================
 * PostgreSQL-only cases
 * ====================================================================== */

/* The version a fresh open creates (one per step of the migrations). */
#define SCHEMA_NOW 8

UNIT_TEST(open_creates_schema)
{
	fx f;
	gl_conf conf;
	gl_meta *m2;
	char url[sizeof f.conn];

	FX_START(f);
	CHECK_INT(gl_meta_schema_version(f.m), SCHEMA_NOW);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM pg_tables WHERE"
			      " schemaname = current_schema() AND tablename IN"
			      " ('artifacts', 'tags', 'properties', 'blobs',"
			      " 'quotas', 'blob_data', 'blob_data_chunks',"
			      " 'gc_queue', 'cleanup_queue', 'glared_schema',"
			      " 'subscriptions', 'outbox', 'quota_usage',"
			      " 'artifact_counts')"),
		  14);
	CHECK_INT(raw_int(&f, "SELECT max(version) FROM glared_schema"),
		  SCHEMA_NOW);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM glared_schema"),
		  SCHEMA_NOW);
	/* text compares bytewise, as in SQLite, whatever the locale */
	CHECK_INT(raw_int(&f,
			  "SELECT count(*) FROM information_schema.columns"
			  " WHERE table_schema = current_schema()"
			  " AND table_name = 'artifacts'"
			  " AND column_name IN ('name', 'id', 'version_suffix')"
			  " AND collation_name = 'C'"),
		  3);
	/* reopening an up-to-date database is fine; postgres:// too */
	m2 = reopen(&f, 0);
	CHECK(m2);
	gl_meta_close(m2);
	CHECK(strncmp(f.conn, "postgresql://", 13) == 0);
	/* "postgresql://..." -> "postgres://..." */
	memcpy(url, f.conn, sizeof f.conn);
	memmove(url + 8, url + 10, strlen(url + 10) + 1);
	memset(&conf, 0, sizeof conf);
	conf.db_connection = url;
	m2 = gl_meta_open(&conf, 0, &f.err);
	CHECK(m2);
	gl_meta_close(m2);
	/* no server: the error names no password */
	conf.db_connection = "postgresql://u:secret@127.0.0.1:1/glare";
	CHECK(gl_meta_open(&conf, 0, &f.err) == NULL);
	CHECK_INT(f.err.status, 500);
	CHECK(strncmp(f.err.msg, "cannot connect to the database", 30) == 0);
	CHECK(strstr(f.err.msg, "secret") == NULL);
	fx_close(&f);
}

/* What steps 2.. added, gone: a version 1 schema. */
static const char to_v1[] =
	"DELETE FROM glared_schema WHERE version > 1;"
	" DROP INDEX artifacts_owner;"
	" DROP INDEX artifacts_deleted;"
	" DROP TABLE cleanup_queue;"
	" DROP TABLE outbox; DROP TABLE subscriptions;"
	" DROP TABLE quota_usage; DROP TABLE artifact_counts;"
	" DROP FUNCTION glared_artifacts_counted() CASCADE;"
	" DROP FUNCTION glared_blobs_counted() CASCADE;"
	" DROP FUNCTION glared_scope_copies() CASCADE;"
	" DROP STATISTICS properties_values;"
	" DROP INDEX artifacts_type_version_scope;"
	" ALTER TABLE properties DROP COLUMN type_name,"
	"  DROP COLUMN owner, DROP COLUMN visibility,"
	"  DROP COLUMN status, DROP COLUMN created_at;"
	" ALTER TABLE tags DROP COLUMN type_name,"
	"  DROP COLUMN owner, DROP COLUMN visibility,"
	"  DROP COLUMN status, DROP COLUMN created_at";

UNIT_TEST(schema_version_mismatch)
{
	fx f;
	gl_meta *m;
	gl_conf conf;
	char want[160], sql[512], url[1100], foreign[80];
	int cur;

	FX_START(f);
	cur = gl_meta_schema_version(f.m);
	/* rows from before the counters (step 6): the upgrade counts them */
	CHECK(counters_seed(f.m, &f.err) == 0);
	gl_meta_close(f.m);
	leaked = f.m = NULL;
	/* newer than this build */
	CHECK(raw_exec(&f, "INSERT INTO glared_schema VALUES (99, 0)") == 0);
	CHECK(reopen(&f, 0) == NULL);
	snprintf(want, sizeof want,
		 "database schema is at version 99, newer"
		 " than this glared supports (%d)",
		 cur);
	CHECK_EQS(f.err.msg, want);
	CHECK(reopen(&f, 1) == NULL);
	/* older: version 1 lacks the listing indexes (steps 2..) */
	CHECK(raw_exec(&f, to_v1) == 0);
	CHECK(reopen(&f, 0) == NULL);
	snprintf(want, sizeof want,
		 "database schema is at version 1, glared"
		 " needs %d: run 'glared db upgrade'",
		 cur);
	CHECK_EQS(f.err.msg, want);
	m = reopen(&f, 1);
	CHECK(m);
	CHECK_INT(gl_meta_schema_version(m), cur);
	gl_meta_close(m);
	CHECK_INT(raw_int(&f, "SELECT max(version) FROM glared_schema"), cur);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM pg_indexes WHERE"
			      " schemaname = current_schema() AND indexname IN"
			      " ('artifacts_owner', 'artifacts_deleted')"),
		  2);
	/* the counters start from the rows that were there */
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK_INT(raw_int(&f, "SELECT sum(bytes) FROM quota_usage"), 48);
	/* the scope copies (steps 7, 8) come from the artifacts */
	CHECK_INT(scope_diff(&f), 0);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM properties WHERE"
			      " type_name = 'tests' AND owner = 'p1'"),
		  1);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM tags WHERE"
			      " type_name = 'tests' AND status = 'drafted'"),
		  1);
	/* somebody else's tables */
	snprintf(foreign, sizeof foreign, "%s_foreign", f.schema);
	snprintf(sql, sizeof sql,
		 "DROP SCHEMA IF EXISTS %s CASCADE;"
		 " CREATE SCHEMA %s; CREATE TABLE %s.foo (x int)",
		 foreign, foreign, foreign);
	CHECK(raw_exec_in(NULL, sql) == 0);
	schema_url(url, sizeof url, foreign);
	memset(&conf, 0, sizeof conf);
	conf.db_connection = url;
	m = gl_meta_open(&conf, 1, &f.err);
	snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", foreign);
	raw_exec_in(NULL, sql);
	CHECK(m == NULL);
	CHECK(strstr(f.err.msg, "not a glared database"));
	fx_close(&f);
}

/* ---- the two schemas side by side -------------------------------------------
 * Each store's schema as sorted lines:
 *   table T
 *   column T.C KIND null|not null   (KIND: int, text, or the type itself)
 *   pk T (C,...)
 *   index T NAME (C,...) [unique] [partial]
 * (PostgreSQL's booleans are SQLite's 0/1 integers: both are int.) */
/* clang-format off */
#define SCHEMA_LINES_PG                                                       \
	"SELECT string_agg(l, E'\\n' ORDER BY l) FROM ("                      \
	" SELECT 'table ' || tablename FROM pg_tables"                        \
	"  WHERE schemaname = current_schema()"                               \
	" UNION ALL SELECT 'column ' || table_name || '.' || column_name"      \
	"  || ' ' || CASE WHEN data_type IN ('bigint', 'integer', 'boolean')" \
	"  THEN 'int' ELSE data_type END || ' '"                              \
	"  || CASE is_nullable WHEN 'YES' THEN 'null' ELSE 'not null' END"    \
	"  FROM information_schema.columns"                                   \
	"  WHERE table_schema = current_schema()"                             \
	" UNION ALL SELECT CASE WHEN ix.indisprimary THEN 'pk ' || t.relname" \
	"  ELSE 'index ' || t.relname || ' ' || i.relname END || ' ('"        \
	"  || (SELECT string_agg(a.attname, ',' ORDER BY k.n)"                \
	"   FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n)"              \
	"   JOIN pg_attribute a ON a.attrelid = t.oid"                        \
	"   AND a.attnum = k.attnum) || ')'"                                  \
	"  || CASE WHEN ix.indisunique AND NOT ix.indisprimary"               \
	"  THEN ' unique' ELSE '' END"                                        \
	"  || CASE WHEN ix.indpred IS NOT NULL THEN ' partial' ELSE '' END"   \
	"  FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid"         \
	"  JOIN pg_class t ON t.oid = ix.indrelid"                            \
	"  WHERE t.relnamespace = current_schema()::regnamespace"             \
	") x(l)"
#define SCHEMA_LINES_SQLITE                                                   \
	"SELECT group_concat(l, char(10)) FROM (SELECT l FROM ("              \
	" SELECT 'table ' || name AS l FROM sqlite_schema"                    \
	"  WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"                 \
	" UNION ALL SELECT 'column ' || m.name || '.' || p.name || ' '"       \
	"  || CASE upper(p.type) WHEN 'INTEGER' THEN 'int'"                   \
	"  WHEN 'TEXT' THEN 'text' ELSE lower(p.type) END || ' '"             \
	"  || CASE WHEN p.\"notnull\" OR p.pk THEN 'not null' ELSE 'null' END"\
	"  FROM sqlite_schema m, pragma_table_info(m.name) p"                 \
	"  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"             \
	" UNION ALL SELECT 'pk ' || m.name || ' (' || (SELECT"                \
	"  group_concat(name, ',') FROM (SELECT name FROM"                    \
	"  pragma_table_info(m.name) WHERE pk ORDER BY pk)) || ')'"           \
	"  FROM sqlite_schema m WHERE m.type = 'table'"                       \
	"  AND m.name NOT LIKE 'sqlite_%'"                                    \
	"  AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE pk)"     \
	" UNION ALL SELECT 'index ' || m.tbl_name || ' ' || m.name || ' ('"   \
	"  || (SELECT group_concat(name, ',') FROM (SELECT name FROM"         \
	"  pragma_index_info(m.name) ORDER BY seqno)) || ')'"                 \
	"  || CASE WHEN il.\"unique\" THEN ' unique' ELSE '' END"             \
	"  || CASE WHEN il.partial THEN ' partial' ELSE '' END"               \
	"  FROM sqlite_schema m JOIN pragma_index_list(m.tbl_name) il"        \
	"  ON il.name = m.name WHERE m.type = 'index' AND m.sql IS NOT NULL"  \
	") ORDER BY l)"

/* The differences by design (meta_sqlite.c, meta_pg.c): SQLite keeps a
 * property's value in one typeless column keyed by a primary key and a
 * blob's bytes in one row; PostgreSQL keeps a number and a text column
 * with an index each, tags without a primary key (a put's statement could
 * not replace them), blob bytes in pieces, and the schema version in a
 * table (SQLite: PRAGMA user_version). Any other line on one side only is
 * drift. */
static const char *const sqlite_only[] = {
	"column blob_data.data blob not null",
	"column properties.value any not null",
	"pk properties (type_name,name,key,value,artifact_id,pos)",
	"pk tags (value,artifact_id)",
	NULL
};
/* clang-format on */
static const char *const pg_only[] = {
	"column blob_data.size int not null",
	"column blob_data_chunks.data bytea not null",
	"column blob_data_chunks.location text not null",
	"column blob_data_chunks.seq int not null",
	"column glared_schema.applied_at int not null",
	"column glared_schema.version int not null",
	"column properties.value_num numeric null",
	"column properties.value_text text null",
	"index properties properties_num (name,key,value_num,artifact_id)"
	" partial",
	"index properties properties_text (name,key,value_text,artifact_id)"
	" partial",
	"index properties properties_scope_num (type_name,name,key,value_num,"
	"status,visibility,owner,artifact_id) partial",
	"index properties properties_scope_text (type_name,name,key,value_text,"
	"status,visibility,owner,artifact_id) partial",
	"index tags tags_value (value,artifact_id)",
	"pk blob_data_chunks (location,seq)",
	"pk glared_schema (version)",
	"table blob_data_chunks",
	"table glared_schema",
	NULL
};

static int listed(const char *const *list, const char *line)
{
	for (; *list; list++)
		if (strcmp(*list, line) == 0)
			return 1;
	return 0;
}

/* The first line of text a (sorted lines) that is not in b nor in the
 * allowed list, copied to out; 0 if there is none. Every such line goes
 * to stderr too (side names a), so one run shows the whole drift. */
static int first_extra(const char *a, const char *b,
		       const char *const *allowed, const char *side, char *out,
		       size_t n)
{
	const char *p = a;
	char line[200];
	int extra = 0;

	while (*p) {
		size_t len = strcspn(p, "\n");
		const char *q = b;
		int found = 0;

		snprintf(line, sizeof line, "%.*s", (int)len, p);
		while (*q && !found) {
			size_t ql = strcspn(q, "\n");
			found = ql == len && memcmp(q, p, len) == 0;
			q += ql + (q[ql] == '\n');
		}
		if (!found && !listed(allowed, line)) {
			fprintf(stderr, "meta_pg: only in %s: %s\n", side,
				line);
			if (!extra++)
				snprintf(out, n, "%s", line);
		}
		p += len + (p[len] == '\n');
	}
	return extra > 0;
}

/* A fresh SQLite store's schema lines (malloc'd), or NULL. */
static char *sqlite_schema_lines(const char *dir)
{
	char path[128], url[160];
	gl_conf conf;
	gl_meta *m;
	gl_err err;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *out = NULL;

	snprintf(path, sizeof path, "%s/glare.db", dir);
	snprintf(url, sizeof url, "sqlite:///%s", path);
	memset(&conf, 0, sizeof conf);
	conf.db_connection = url;
	m = gl_meta_open(&conf, 0, &err);
	if (!m)
		return NULL;
	gl_meta_close(m);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		    SQLITE_OK &&
	    sqlite3_prepare_v2(db, SCHEMA_LINES_SQLITE, -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	else
		fprintf(stderr, "meta_pg: sqlite: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* The PostgreSQL store's schema lines (malloc'd), or NULL. */
static char *pg_schema_lines(fx *f)
{
	PGconn *c = raw_conn(f->schema);
	PGresult *r;
	char *out = NULL;

	if (!c)
		return NULL;
	r = PQexec(c, SCHEMA_LINES_PG);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		out = strdup(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "meta_pg: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return out;
}

/* The line of `lines` (sorted, '\n'-separated) equal to line, or NULL. */
static int has_line(const char *lines, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = lines; *p;) {
		size_t len = strcspn(p, "\n");
		if (len == n && memcmp(p, line, n) == 0)
			return 1;
		p += len + (p[len] == '\n');
	}
	return 0;
}

/* What is wrong with the pair of schemas (into msg), or 0: a line of one
 * side missing on the other and not listed, or a listed difference that
 * is gone (a stale entry would hide the drift it was written for). */
static int schema_diff(const char *sq, const char *pg, char *msg, size_t n)
{
	char line[200] = "", line2[200] = "";

	if (first_extra(sq, pg, sqlite_only, "SQLite", line, sizeof line) |
	    first_extra(pg, sq, pg_only, "PostgreSQL", line2, sizeof line2))
		return snprintf(msg, n, "only in %s: %s",
				line[0] ? "SQLite" : "PostgreSQL",
				line[0] ? line : line2);
	for (int i = 0; sqlite_only[i]; i++)
		if (!has_line(sq, sqlite_only[i]) ||
		    has_line(pg, sqlite_only[i]))
			return snprintf(msg, n, "not SQLite's alone: %s",
					sqlite_only[i]);
	for (int i = 0; pg_only[i]; i++)
		if (!has_line(pg, pg_only[i]) || has_line(sq, pg_only[i]))
			return snprintf(msg, n, "not PostgreSQL's alone: %s",
					pg_only[i]);
	/* the lists were read whole, not empty */
	if (!has_line(sq, "index artifacts artifacts_owner (owner,type_name)"))
		return snprintf(msg, n, "no listing index in SQLite's");
	return 0;
}

/* Both stores create the same tables, columns (names, kinds, nullability),
 * primary keys and indexes, but for the listed differences by design: the
 * shared DDL (meta_schema.h) keeps them so, this keeps it honest. */
UNIT_TEST(schema_same_as_sqlite)
{
	fx f;
	char *sq, *pg, msg[300];
	int bad;

	FX_START(f);
	sq = sqlite_schema_lines(f.dir);
	pg = pg_schema_lines(&f);
	fx_close(&f);
	bad = !sq || !pg ? snprintf(msg, sizeof msg, "a schema was not read")
			 : schema_diff(sq, pg, msg, sizeof msg);
	free(sq);
	free(pg);
	if (bad) {
		unit_failed = 1;
		snprintf(unit_msg, sizeof unit_msg, "%s:%d: %s", __FILE__,
			 __LINE__, msg);
	}
}

/* The blob store keeps 1 MiB pieces and reads across their edges. */
UNIT_TEST(data_pieces)
{
	fx f;
	char p[160];
	const int64_t size = 2 * 1024 * 1024 + 512 * 1024;
	unsigned char *data = malloc((size_t)size), *buf = malloc(8192);
	int fd;

	CHECK(data && buf);
	FX_START(f);
	for (int64_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 13 + (i >> 10));
	snprintf(p, sizeof p, "%s/blob.bin", f.dir);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, (size_t)size) == size);
	CHECK(gl_meta_data_put_file(f.m, "loc", fd, size, &f.err) == 0);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM blob_data_chunks"
			      " WHERE location = 'loc'"),
		  3);
	CHECK_INT(raw_int(&f,
			  "SELECT max(length(data)) FROM blob_data_chunks"),
		  1 << 20);
	CHECK_INT(raw_int(&f, "SELECT size FROM blob_data"), size);
	/* across the first and the second edge */
	CHECK_INT(gl_meta_data_read(f.m, "loc", (1 << 20) - 100, buf, 8192,
				    &f.err),
		  8192);
	CHECK(memcmp(buf, data + (1 << 20) - 100, 8192) == 0);
	CHECK_INT(gl_meta_data_read(f.m, "loc", (2 << 20) - 1, buf, 2, &f.err),
		  2);
	CHECK(memcmp(buf, data + (2 << 20) - 1, 2) == 0);
	/* replacing keeps no old piece; an empty object has none */
	CHECK(gl_meta_data_put_file(f.m, "loc", fd, 10, &f.err) == 0);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM blob_data_chunks"), 1);
	CHECK(gl_meta_data_put_file(f.m, "empty", fd, 0, &f.err) == 0);
	CHECK_INT(gl_meta_data_exists(f.m, "empty", &f.err), 1);
	CHECK_INT(gl_meta_data_read(f.m, "empty", 0, buf, 10, &f.err), 0);
	/* inside a transaction a failed put leaves the transaction usable */
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(gl_meta_gc_push(f.m, "database", "x", &f.err) == 0);
	CHECK(gl_meta_data_put_file(f.m, "short", fd, size + 1, &f.err) == -1);
	CHECK(gl_meta_commit(f.m, &f.err) == 0);
	CHECK_INT(gl_meta_data_exists(f.m, "short", &f.err), 0);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM gc_queue"), 1);
	close(fd);
	free(data);
	free(buf);
	fx_close(&f);
}

/* Two worker processes (or nodes) racing through the engine's sequence:
 * begin, check, write, commit. child() returns the exit status: 0
 * committed, 2 lost (the engine's 409), 3 other failure. */
typedef int (*race_fn)(gl_meta *m, gl_err *err);

static int race(fx *f, race_fn child, int *wins, int *losses)
{
	int go[2], st;
	pid_t pid[2];

	*wins = *losses = 0;
	if (pipe(go))
		return -1;
	fflush(NULL);
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			return -1;
		if (pid[i] == 0) {
			/* the child never touches the parent's connection:
			 * its own store, and _exit */
			gl_err err;
			gl_meta *m = reopen(f, 0);
			char c;
			int rc;

			close(go[1]);
			if (!m || read(go[0], &c, 1) != 1)
				_exit(3);
			rc = child(m, &err);
			if (rc == 3)
				fprintf(stderr, "race: %d %s\n", err.status,
					err.msg);
			gl_meta_close(m);
			_exit(rc);
		}
	}
	close(go[0]);
	usleep(100000); /* both connected */
	if (write(go[1], "gg", 2) != 2)
		return -1;
	close(go[1]);
	for (int i = 0; i < 2; i++) {
		if (waitpid(pid[i], &st, 0) != pid[i] || !WIFEXITED(st))
			return -1;
		if (WEXITSTATUS(st) == 0)
			(*wins)++;
		else if (WEXITSTATUS(st) == 2)
			(*losses)++;
	}
	return 0;
}

/* create "race" 1.0.0 for p1 unless its scope is taken */
static int race_create(gl_meta *m, gl_err *err)
{
	tvk k;
	char id[32];
	json_t *af;
	int taken;

	vkey("1.0.0", &k);
	if (gl_meta_begin(m, err))
		return err->status == 409 ? 2 : 3;
	taken = gl_meta_scope_taken(m, "tests", "race", &k.k, "p1", NULL, err);
	if (taken != 0) {
		gl_meta_rollback(m);
		return taken == 1 ? 2 : 3;
	}
	usleep(300000); /* the other one is at its check now */
	snprintf(id, sizeof id, "race-%d", (int)getpid());
	af = mkaf(id, "race", "1.0.0", "p1", 1);
	if (add(m, &T, af, err) || gl_meta_commit(m, err)) {
		gl_meta_rollback(m);
		return 3;
	}
	return 0;
}

UNIT_TEST(race_name_version_scope)
{
	fx f;
	int wins, losses;
	char o[256];
	lq l;

	FX_START(f);
	CHECK(race(&f, race_create, &wins, &losses) == 0);
	CHECK_INT(wins, 1);
	CHECK_INT(losses, 1);
	lq_init(&l, &T);
	lq_f(&l, GF_BASE, "name", GL_OP_EQ, "[\"race\"]");
	CHECK(strncmp(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err), "race-",
		      5) == 0);
	CHECK(strchr(o, ',') == NULL);
	lq_free(&l);
	fx_close(&f);
}

/* update "r1" from the revision read before the race */
static int race_update(gl_meta *m, gl_err *err)
{
	json_t *af;
	int rc;

	if (gl_meta_get(m, &T, "r1", &af, err))
		return 3;
	usleep(200000); /* both have read revision 1 */
	if (gl_meta_begin(m, err)) {
		json_decref(af);
		return err->status == 409 ? 2 : 3;
	}
	json_object_set_new(af, "int1", json_integer(getpid()));
	rc = put(m, &T, af, 0, err);
	json_decref(af);
	if (rc < 0 && err->status == 409) { /* the revision moved on */
		gl_meta_rollback(m);
		return 2;
	}
	if (rc || gl_meta_commit(m, err)) {
		gl_meta_rollback(m);
		return 3;
	}
	return 0;
}

UNIT_TEST(race_one_artifact)
{
	fx f;
	int wins, losses;
	json_t *got;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("r1", "n", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(race(&f, race_update, &wins, &losses) == 0);
	CHECK_INT(wins, 1);
	CHECK_INT(losses, 1);
	CHECK(gl_meta_get(f.m, &T, "r1", &got, &f.err) == 0);
	CHECK_INT(json_integer_value(json_object_get(got, "revision")), 2);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM properties"
			      " WHERE artifact_id = 'r1' AND name = 'int1'"),
		  1);
	json_decref(got);
	fx_close(&f);
}

/* The server drops the connection between calls: the next call
 * reconnects and succeeds, reads and writes alike. */
UNIT_TEST(reconnect_between_calls)
{
	fx f;
	json_t *got;
	int64_t n;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("k1", "n", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK_INT(terminate_store(&f), 1);
	CHECK(gl_meta_get(f.m, &T, "k1", &got, &f.err) == 0);
	json_decref(got);
	CHECK_INT(terminate_store(&f), 1);
	CHECK(add(f.m, &T, mkaf("k2", "n", "2.0.0", "p1", 2), &f.err) == 0);
	CHECK_INT(terminate_store(&f), 1);
	CHECK(gl_meta_count_artifacts(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 2);
	/* statements were prepared again: a listing too */
	CHECK_INT(terminate_store(&f), 1);
	{
		lq l;
		char o[128];

		lq_init(&l, &T);
		CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
			  "k2,k1");
		lq_free(&l);
	}
	fx_close(&f);
}

/* Several processes (nodes, workers, the start-up recovery) opening one
 * fresh database at the same moment: every one of them opens it, at the
 * current version, and none carries an error out of a successful open
 * (the start-up recovery once judged by err->status and failed with the
 * stale "has tables but no glared schema version" of a check made
 * without the lock). Bounded: OPEN_ROUNDS rounds of OPEN_PROCS. */
#define OPEN_ROUNDS 12

/* In a child: open the store, exit 0 if it is current and err stayed
 * clean, 1 (with the error on stderr) if not. */
static void child_open(fx *f, const char *what)
{
	gl_meta *m;
	int ok;

	memset(&f->err, 0, sizeof f->err);
	m = reopen(f, 0);
	ok = m && f->err.status == 0 &&
	     gl_meta_schema_version(m) == SCHEMA_NOW;
	if (!ok)
		fprintf(stderr, "%s: %s (%d)\n", what, f->err.msg,
			f->err.status);
	gl_meta_close(m);
	_exit(ok ? 0 : 1);
}
#define OPEN_PROCS 4
UNIT_TEST(open_race_fresh_database)
{
	fx f;
	char sql[192];
	int bad = 0;

	FX_START(f);
	for (int round = 0; round < OPEN_ROUNDS; round++) {
		pid_t pid[OPEN_PROCS];
		int go[2], st, n = 0;

		snprintf(sql, sizeof sql,
			 "DROP SCHEMA %s CASCADE;"
			 " CREATE SCHEMA %s",
			 f.schema, f.schema);
		CHECK(raw_exec_in(NULL, sql) == 0);
		CHECK(pipe(go) == 0);
		fflush(NULL);
		for (int i = 0; i < OPEN_PROCS; i++) {
			pid[i] = fork();
			CHECK(pid[i] >= 0);
			if (pid[i] == 0) {
				char c;

				close(go[1]);
				if (read(go[0], &c, 1) != 1)
					_exit(3);
				child_open(&f, "open race");
			}
		}
		close(go[0]);
		/* all at once */
		if (write(go[1], "gggggggg", OPEN_PROCS) != OPEN_PROCS)
			bad++;
		close(go[1]);
		for (int i = 0; i < OPEN_PROCS; i++)
			if (waitpid(pid[i], &st, 0) == pid[i] &&
			    WIFEXITED(st) && WEXITSTATUS(st) == 0)
				n++;
		bad += OPEN_PROCS - n;
		CHECK_INT(raw_int(&f,
				  "SELECT max(version) FROM glared_schema"),
			  SCHEMA_NOW);
	}
	CHECK_INT(bad, 0);
	fx_close(&f);
}

/* The same race made certain: the open's first look (without the lock)
 * sees a table and no version, as it would in the middle of another
 * node's migration; by the time it holds the lock the table is gone and
 * it creates the schema. The open succeeds with its err untouched. */
UNIT_TEST(open_judged_under_the_lock)
{
	fx f;
	PGconn *holder;
	PGresult *r;
	char sql[256];
	pid_t pid;
	int st = -1, waiting = 0;

	FX_START(f);
	snprintf(sql, sizeof sql,
		 "DROP SCHEMA %s CASCADE; CREATE SCHEMA %s;"
		 " CREATE TABLE %s.half (x int)",
		 f.schema, f.schema, f.schema);
	CHECK(raw_exec_in(NULL, sql) == 0);
	holder = raw_conn(f.schema);
	CHECK(holder);
	r = PQexec(holder, "BEGIN; SELECT pg_advisory_xact_lock(1735156082,"
			   " hashtext(current_schema()))");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
	PQclear(r);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		child_open(&f, "open under the lock");
	/* until the child waits for the lock (bounded: 10 s) */
	for (int i = 0; i < 1000 && !waiting; i++) {
		if (raw_int(&f, "SELECT count(*) FROM pg_locks WHERE"
				" locktype = 'advisory' AND NOT granted") > 0)
			waiting = 1;
		else
			usleep(10000);
	}
	CHECK(waiting);
	r = PQexec(holder, "DROP TABLE half; COMMIT");
	CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(holder);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_INT(raw_int(&f, "SELECT max(version) FROM glared_schema"),
		  SCHEMA_NOW);
	fx_close(&f);
}

/* Dropped inside the engine's transaction: 503, the rollback path runs,
 * nothing of the transaction was committed and everything before it
 * stays; then the store works again. */
UNIT_TEST(reconnect_in_transaction)
{
	fx f;
	json_t *got;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("k1", "n", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("k2", "n", "2.0.0", "p1", 2), &f.err) == 0);
	CHECK_INT(terminate_store(&f), 1);
	CHECK(add(f.m, &T, mkaf("k3", "n", "3.0.0", "p1", 3), &f.err) == -1);
	CHECK_INT(f.err.status, 503);
	CHECK_EQS(f.err.msg, "database connection lost");
	/* still inside: calls fail until the rollback */
	CHECK(gl_meta_get(f.m, &T, "k1", &got, &f.err) == -1);
	CHECK_INT(f.err.status, 503);
	gl_meta_rollback(f.m);
	CHECK(gl_meta_get(f.m, &T, "k1", &got, &f.err) == 0);
	json_decref(got);
	CHECK(gl_meta_get(f.m, &T, "k2", &got, &f.err) == 1);
	/* a commit that finds the connection gone fails too, and ends the
	 * transaction */
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("k4", "n", "4.0.0", "p1", 4), &f.err) == 0);
	CHECK_INT(terminate_store(&f), 1);
	CHECK(gl_meta_commit(f.m, &f.err) == -1);
	CHECK_INT(f.err.status, 503);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(gl_meta_commit(f.m, &f.err) == 0);
	CHECK(gl_meta_get(f.m, &T, "k4", &got, &f.err) == 1);
	fx_close(&f);
}

/* ========================================================================
 * In coroutines (a serving worker): waits yield to the loop
 * ====================================================================== */

/* A coroutine case: the fixture, a loop with coroutines enabled on it,
 * a second store on f's schema with a pool of its own (m), and the trace
 * and count its jobs share. */
typedef struct cfx {
	fx f;
	struct event_base *base;
	gl_meta *m;
	char trace[32];
	int done;
	int live0; /* coroutines a failed case left suspended */
} cfx;

static gl_meta *open_pool(fx *f, int pool, int blocking)
{
	gl_conf conf;

	memset(&conf, 0, sizeof conf);
	conf.db_connection = f->conn;
	conf.db_max_pool_size = pool;
	conf.db_blocking_queries = blocking;
	return gl_meta_open(&conf, 0, &f->err);
}

#define CFX_START(c, pool, blocking)                                          \
	do {                                                                  \
		memset(&(c), 0, sizeof(c));                                   \
		FX_START((c).f);                                              \
		(c).base = event_base_new();                                  \
		CHECK((c).base);                                              \
		leaked_pool = (c).m = open_pool(&(c).f, pool, blocking);      \
		CHECK((c).m);                                                 \
		gl_coro_enable((c).base);                                     \
		(c).live0 = gl_coro_live();                                   \
	} while (0)

static void cfx_close(cfx *c)
{
	gl_meta_close(c->m);
	if (leaked_pool == c->m)
		leaked_pool = NULL;
	gl_coro_enable(NULL);
	event_base_free(c->base);
	fx_close(&c->f);
}

/* Backends of f's schema (its store's pool), from another session. */
static int64_t backends(fx *f)
{
	char sql[256];

	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM pg_stat_activity"
		 " WHERE application_name = '%s' AND pid <> pg_backend_pid()",
		 f->schema);
	return raw_int(f, sql);
}

/* Run the loop until *done reaches want (bounded: 20 s). */
static int drive(struct event_base *base, const int *done, int want)
{
	for (int i = 0; i < 20000 && *done < want; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (*done < want)
			usleep(1000);
	}
	return *done >= want;
}

typedef struct job {
	gl_meta *m;
	const char *id;
	int pause; /* writer: stop after the write */
	int step;  /* how far it got */
	int rc;
	gl_err err;
	int *done;
	char *trace; /* shared: who finished what, in order */
} job;

static void trace_add(char *t, char c)
{
	size_t n = strlen(t);

	t[n] = c;
	t[n + 1] = '\0';
}

/* A writer: the writers' lock, a write, a commit. With pause (A) it
 * stops after the write (a slow round trip, holding the lock) until the
 * test resumes it; without (B) it notes when it got the lock, which may
 * mean waiting for A's inside PostgreSQL. */
static void writer(void *arg)
{
	job *j = arg;

	j->rc = gl_meta_begin(j->m, &j->err);
	if (!j->pause)
		trace_add(j->trace, 'b'); /* has the lock */
	if (!j->rc)
		j->rc = add(j->m, &T, mkaf(j->id, j->id, "1.0.0", "p1", 1),
			    &j->err);
	j->step = 1;
	if (j->pause)
		gl_coro_yield();
	if (!j->rc)
		j->rc = gl_meta_commit(j->m, &j->err);
	else
		gl_meta_rollback(j->m);
	trace_add(j->trace, j->pause ? 'A' : 'B');
	(*j->done)++;
}

/* C: a reader; never waits for writers. */
static void reader_c(void *arg)
{
	job *j = arg;
	json_t *got = NULL;

	j->rc = gl_meta_get(j->m, &T, j->id, &got, &j->err);
	json_decref(got);
	trace_add(j->trace, 'C');
	(*j->done)++;
}

/* Start a pausing writer (A) in a coroutine and run the loop until it holds the
 * writers' lock (bounded: 10 s); its coroutine, or NULL. */
static gl_coro *start_holder(struct event_base *base, job *a)
{
	gl_coro *ca = gl_coro_new(writer, a, 0);

	if (!ca || gl_coro_resume(ca) != 1)
		return NULL;
	for (int i = 0; i < 10000 && a->step < 1; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	return a->step == 1 ? ca : NULL;
}

/* While a coroutine holds the writers' lock and waits, the loop goes on:
 * a reader finishes, a second writer waits for the lock inside
 * PostgreSQL (yielding, not blocking), and gets it once the first one
 * commits; no deadlock, and the pool stays within its size. */
UNIT_TEST(coro_interleave_under_the_writers_lock)
{
	cfx x;
	gl_coro *ca;

	CFX_START(x, 3, 0);
	job a = { .m = x.m,
		  .id = "wa",
		  .pause = 1,
		  .trace = x.trace,
		  .done = &x.done };
	job b = { .m = x.m, .id = "wb", .trace = x.trace, .done = &x.done };
	job c = { .m = x.m, .id = "k0", .trace = x.trace, .done = &x.done };
	CHECK(add(x.f.m, &T, mkaf("k0", "n", "0.1.0", "p1", 1), &x.f.err) ==
	      0);
	ca = start_holder(x.base, &a);
	CHECK(ca);
	CHECK_INT(a.rc, 0);
	gl_coro_go(writer, &b);
	gl_coro_go(reader_c, &c);
	CHECK(drive(x.base, &x.done,
		    1)); /* the reader, while A holds the lock */
	CHECK_STR(x.trace, "C");
	CHECK_INT(c.rc, 0);
	/* B still waits for the lock, and the loop is not blocked by it */
	for (int i = 0; i < 200; i++) {
		event_base_loop(x.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	CHECK_STR(x.trace, "C");
	CHECK(backends(&x.f) <= 3 + 1);   /* + the fixture's own store */
	CHECK_INT(gl_coro_resume(ca), 1); /* A commits: a wait again */
	CHECK(drive(x.base, &x.done, 3));
	/* PostgreSQL releases the lock as it commits, before it answers A:
	 * B's grant and A's answer may reach the loop in one turn, in either
	 * order. Either way B got the lock only now (the trace stayed "C"
	 * while A held it). */
	if (strcmp(x.trace, "CbAB"))
		CHECK_STR(x.trace, "CAbB");
	CHECK_INT(a.rc, 0);
	CHECK_INT(b.rc, 0);
	CHECK_INT(gl_coro_live(), x.live0);
	cfx_close(&x);
}

/* More coroutines than connections: the others wait in line for one,
 * all of them commit, and no more than max_pool_size sessions exist. */
UNIT_TEST(coro_pool_queue)
{
	cfx x;
	char ids[8][16];
	job jobs[8];
	int64_t n = -1;

	CFX_START(x, 2, 0);
	for (int i = 0; i < 8; i++) {
		snprintf(ids[i], sizeof ids[i], "q%d", i);
		jobs[i] = (job){ .m = x.m,
				 .id = ids[i],
				 .done = &x.done,
				 .trace = x.trace };
		gl_coro_go(writer, &jobs[i]);
	}
	CHECK(x.done < 8); /* they wait */
	CHECK(drive(x.base, &x.done, 8));
	for (int i = 0; i < 8; i++)
		CHECK_INT(jobs[i].rc, 0);
	CHECK(backends(&x.f) <= 2 + 1); /* + the fixture's own store */
	CHECK(gl_meta_count_artifacts(x.m, "p1", NULL, &n, &x.f.err) == 0);
	CHECK_INT(n, 8);
	cfx_close(&x);
}

/* Stopping the loop (SIGTERM past shutdown_timeout): a coroutine waiting
 * for PostgreSQL (here for the writers' lock) gets 503 at once, its
 * session closed; from then on calls block, so the holder of the lock
 * still commits when it runs, and the main stack's calls work. */
UNIT_TEST(coro_stop_ends_the_waits)
{
	cfx x;
	gl_coro *ca;
	json_t *got = NULL;

	CFX_START(x, 3, 0);
	gl_meta *m = x.m;
	job a = { .m = m,
		  .id = "sa",
		  .pause = 1,
		  .trace = x.trace,
		  .done = &x.done };
	job b = { .m = m, .id = "sb", .trace = x.trace, .done = &x.done };
	ca = start_holder(x.base, &a);
	CHECK(ca);
	gl_coro_go(writer, &b); /* waits for A's lock */
	for (int i = 0; i < 100; i++) {
		event_base_loop(x.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	CHECK_STR(x.trace, "");
	gl_meta_stop(m);
	CHECK_STR(x.trace, "bB"); /* B failed and ended */
	CHECK_INT(b.rc, -1);
	CHECK_INT(b.err.status, 503);
	CHECK_STR(b.err.msg, "the server is shutting down");
	CHECK_INT(gl_coro_resume(ca), 0); /* A commits, blocking */
	CHECK_INT(a.rc, 0);
	CHECK_STR(x.trace, "bBA");
	CHECK_INT(gl_coro_live(), x.live0);
	gl_coro_enable(NULL);
	/* the main stack: blocking calls work; A's write stays, B's is gone */
	CHECK(gl_meta_get(m, &T, "sa", &got, &x.f.err) == 0);
	json_decref(got);
	CHECK(gl_meta_get(m, &T, "sb", &got, &x.f.err) == 1);
	CHECK(gl_meta_begin(m, &x.f.err) == 0);
	CHECK(gl_meta_commit(m, &x.f.err) == 0);
	cfx_close(&x);
}

/* The connection dropped inside a coroutine's transaction: 503, the
 * rollback ends it, and the next call reconnects (without blocking). */
static void lost_in_txn(void *arg)
{
	job *j = arg;
	fx *f = (fx *)j->trace;
	json_t *got = NULL;

	j->rc = gl_meta_begin(j->m, &j->err);
	if (!j->rc)
		j->rc = add(j->m, &T, mkaf("l1", "n", "1.0.0", "p1", 1),
			    &j->err);
	if (!j->rc && terminate_store(f) >= 1 &&
	    add(j->m, &T, mkaf("l2", "n", "2.0.0", "p1", 2), &j->err) == -1 &&
	    j->err.status == 503) {
		gl_meta_rollback(j->m);
		j->step = gl_meta_get(j->m, &T, "l1", &got, &j->err) == 1 &&
			  add(j->m, &T, mkaf("l3", "n", "3.0.0", "p1", 3),
			      &j->err) == 0;
	}
	json_decref(got);
	(*j->done)++;
}

UNIT_TEST(coro_connection_lost_in_transaction)
{
	cfx x;
	json_t *got = NULL;

	CFX_START(x, 2, 0);
	job j = { .m = x.m, .id = "l", .done = &x.done, .trace = (char *)&x.f };
	gl_coro_go(lost_in_txn, &j);
	CHECK(drive(x.base, &x.done, 1));
	CHECK_INT(j.rc, 0);
	CHECK_INT(j.step, 1);
	gl_coro_enable(NULL);
	CHECK(gl_meta_get(x.m, &T, "l3", &got, &x.f.err) == 0);
	json_decref(got);
	cfx_close(&x);
}

/* [database] blocking_queries: a coroutine's call never yields. */
UNIT_TEST(coro_blocking_queries_never_yield)
{
	cfx x;
	gl_coro *c;

	CFX_START(x, 2, 1);
	job j = { .m = x.m, .id = "none", .trace = x.trace, .done = &x.done };
	c = gl_coro_new(reader_c, &j, 0);
	CHECK(c);
	CHECK_INT(gl_coro_resume(c), 0); /* done without the loop */
	CHECK_INT(j.rc, 1);
	cfx_close(&x);
}

/* clang-format off */
UNIT_SUITE(meta_pg,
	UNIT_CASE(open_creates_schema),
	UNIT_CASE(schema_same_as_sqlite),
	UNIT_CASE(schema_version_mismatch),
	UNIT_CASE(data_pieces),
	UNIT_CASE(race_name_version_scope),
	UNIT_CASE(race_one_artifact),
	UNIT_CASE(open_race_fresh_database),
	UNIT_CASE(open_judged_under_the_lock),
	UNIT_CASE(reconnect_between_calls),
	UNIT_CASE(reconnect_in_transaction),
	UNIT_CASE(coro_interleave_under_the_writers_lock),
	UNIT_CASE(coro_pool_queue),
	UNIT_CASE(coro_stop_ends_the_waits),
	UNIT_CASE(coro_connection_lost_in_transaction),
	UNIT_CASE(coro_blocking_queries_never_yield),
	META_SCENARIOS);
/* clang-format on */
