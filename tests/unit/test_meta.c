/* test_meta.c - unit tests for meta_sqlite.c: schema creation and
 * versioning (here), and the scenarios every metadata backend must pass
 * (meta_scenarios.h): artifact rows, blob records, quotas, the gc queue,
 * the database blob store and every listing feature (filters, OR group,
 * tags, dicts, lists, sorting, keyset pagination, latest, visibility,
 * counts). test_meta_pg.c runs the same scenarios on PostgreSQL.
 *
 * Each case works in its own temporary directory.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "meta.h"
#include "util.h"

/* ---- fixture (see meta_scenarios.h) ------------------------------------- */

/* the property table's value column, for raw checks */
#define PROP_VALUE "value"
#define PROP_IS_NUMBER "SELECT typeof(value) = 'integer'"

typedef struct fx {
	char dir[64];
	char conn[160];
	char path[128];
	gl_meta *m;
	gl_err err;
} fx;

/* sqlite is always there */
static const char *fx_skip(void)
{
	return NULL;
}

/* A store in a fresh temp dir, at a path whose parent does not exist yet. */
static gl_meta *fx_open(fx *f)
{
	gl_conf conf;

	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/glmeta.XXXXXX");
	if (!mkdtemp(f->dir))
		return NULL;
	snprintf(f->path, sizeof f->path, "%s/sub/dir/glare.db", f->dir);
	snprintf(f->conn, sizeof f->conn, "sqlite:///%s", f->path);
	memset(&conf, 0, sizeof conf);
	conf.db_connection = f->conn;
	f->m = gl_meta_open(&conf, 0, &f->err);
	return f->m;
}

static void fx_close(fx *f)
{
	gl_meta_close(f->m);
	f->m = NULL;
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

/* A raw second connection, for checks the interface does not expose. */
static int64_t raw_int_path(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -2;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

static int64_t raw_int(fx *f, const char *sql)
{
	return raw_int_path(f->path, sql);
}

static int raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int raw_sql(fx *f, const char *sql)
{
	return raw_exec(f->path, sql);
}

#include "meta_scenarios.h"

/* ========================================================================
 * sqlite-only cases
 * ====================================================================== */

UNIT_TEST(open_creates_schema)
{
	fx f;
	gl_conf conf;
	gl_meta *m2;
	char cwd[512], rel[160], p[192];
	struct stat sb;

	CHECK(fx_open(&f));
	CHECK_INT(gl_meta_schema_version(f.m), 8);
	CHECK(stat(f.path, &sb) == 0);
	CHECK_INT(raw_int_path(f.path,
			       "SELECT count(*) FROM sqlite_schema WHERE"
			       " type = 'table' AND name IN ('artifacts', 'tags',"
			       " 'properties', 'blobs', 'quotas', 'blob_data',"
			       " 'gc_queue', 'cleanup_queue', 'subscriptions',"
			       " 'outbox', 'quota_usage', 'artifact_counts')"),
		  12);
	CHECK_INT(raw_int_path(f.path, "PRAGMA user_version"), 8);
	/* WAL is persistent in the file */
	{
		sqlite3 *db;
		sqlite3_stmt *s;
		CHECK(sqlite3_open(f.path, &db) == SQLITE_OK);
		CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s,
					 NULL) == SQLITE_OK);
		CHECK(sqlite3_step(s) == SQLITE_ROW);
		int wal = strcmp((const char *)sqlite3_column_text(s, 0),
				 "wal") == 0;
		sqlite3_finalize(s);
		sqlite3_close(db);
		CHECK(wal);
	}
	/* reopening an up-to-date database is fine */
	m2 = reopen(&f, 0);
	CHECK(m2);
	gl_meta_close(m2);

	memset(&conf, 0, sizeof conf);
	/* sqlite:///relative is relative to the working directory */
	CHECK(getcwd(cwd, sizeof cwd));
	CHECK(chdir(f.dir) == 0);
	snprintf(rel, sizeof rel, "sqlite:///rel/x.db");
	conf.db_connection = rel;
	m2 = gl_meta_open(&conf, 0, &f.err);
	CHECK(chdir(cwd) == 0);
	CHECK(m2);
	gl_meta_close(m2);
	snprintf(p, sizeof p, "%s/rel/x.db", f.dir);
	CHECK(stat(p, &sb) == 0);
	/* a bare path */
	snprintf(p, sizeof p, "%s/bare.db", f.dir);
	conf.db_connection = p;
	m2 = gl_meta_open(&conf, 0, &f.err);
	CHECK(m2);
	gl_meta_close(m2);
	CHECK(stat(p, &sb) == 0);
	/* other databases: postgresql:// goes to meta_pg.c (nothing listens
	 * on port 1); unknown schemes are refused; neither error repeats the
	 * URL's password */
	conf.db_connection = "postgresql://u:secret@127.0.0.1:1/glare";
	CHECK(gl_meta_open(&conf, 0, &f.err) == NULL);
	CHECK(strncmp(f.err.msg, "cannot connect to the database", 30) == 0);
	CHECK(strstr(f.err.msg, "secret") == NULL);
	conf.db_connection = "mysql://u:secret@db/glare";
	CHECK(gl_meta_open(&conf, 0, &f.err) == NULL);
	CHECK(strstr(f.err.msg, "secret") == NULL);
	fx_close(&f);
}

/* What steps 2.. added, gone: a version 1 database. */
static const char to_v1[] =
	"DROP INDEX artifacts_owner;"
	" DROP INDEX artifacts_deleted;"
	" DROP TABLE cleanup_queue;"
	" DROP TABLE outbox; DROP TABLE subscriptions;"
	" DROP TABLE quota_usage; DROP TABLE artifact_counts;"
	" DROP TRIGGER artifacts_counted_insert;"
	" DROP TRIGGER artifacts_counted_delete;"
	" DROP TRIGGER artifacts_counted_update;"
	" DROP TRIGGER artifacts_counted_move;"
	" DROP TRIGGER blobs_counted_insert;"
	" DROP TRIGGER blobs_counted_delete;"
	" DROP TRIGGER blobs_counted_update;"
	" DROP TRIGGER artifacts_scope_copies;"
	" DROP INDEX tags_scope;"
	" DROP INDEX artifacts_type_version_scope;"
	" CREATE TABLE properties1 (name TEXT NOT NULL, key TEXT NOT NULL,"
	"  value ANY NOT NULL, artifact_id TEXT NOT NULL REFERENCES"
	"  artifacts(id) ON DELETE CASCADE, pos INTEGER NOT NULL,"
	"  PRIMARY KEY (name, key, value, artifact_id, pos)) STRICT,"
	"  WITHOUT ROWID;"
	" INSERT INTO properties1 SELECT name, key, value, artifact_id, pos"
	"  FROM properties;"
	" DROP TABLE properties;"
	" ALTER TABLE properties1 RENAME TO properties;"
	" CREATE INDEX properties_artifact ON properties(artifact_id, name, key);"
	" ALTER TABLE tags DROP COLUMN type_name;"
	" ALTER TABLE tags DROP COLUMN owner;"
	" ALTER TABLE tags DROP COLUMN visibility;"
	" ALTER TABLE tags DROP COLUMN status;"
	" ALTER TABLE tags DROP COLUMN created_at;"
	" PRAGMA user_version = 1";

UNIT_TEST(schema_version_mismatch)
{
	fx f;
	gl_meta *m;
	char p[160], want[160];
	gl_conf conf;
	int cur;

	CHECK(fx_open(&f));
	cur = gl_meta_schema_version(f.m);
	/* rows from before the counters (step 6): the upgrade counts them */
	CHECK(counters_seed(f.m, &f.err) == 0);
	gl_meta_close(f.m);
	f.m = NULL;
	/* newer than this build */
	CHECK(raw_exec(f.path, "PRAGMA user_version = 99") == 0);
	CHECK(reopen(&f, 0) == NULL);
	snprintf(want, sizeof want,
		 "database schema is at version 99, newer"
		 " than this glared supports (%d)",
		 cur);
	CHECK_EQS(f.err.msg, want);
	CHECK(reopen(&f, 1) == NULL);
	/* older: version 1 lacks the listing indexes (steps 2..) */
	CHECK(raw_exec(f.path, to_v1) == 0);
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
	CHECK_INT(raw_int_path(f.path, "PRAGMA user_version"), cur);
	CHECK_INT(raw_int_path(f.path,
			       "SELECT count(*) FROM sqlite_schema WHERE"
			       " name IN ('artifacts_owner', 'artifacts_deleted',"
			       " 'outbox', 'subscriptions')"),
		  4);
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
	/* the planner statistics came back with the steps */
	CHECK_INT(raw_int_path(f.path,
			       "SELECT count(*) FROM sqlite_stat1 WHERE"
			       " idx IN ('artifacts_owner', 'artifacts_deleted')"),
		  2);
	/* somebody else's database */
	snprintf(p, sizeof p, "%s/foreign.db", f.dir);
	CHECK(raw_exec(p, "CREATE TABLE foo (x)") == 0);
	memset(&conf, 0, sizeof conf);
	conf.db_connection = p;
	CHECK(gl_meta_open(&conf, 1, &f.err) == NULL);
	CHECK(strstr(f.err.msg, "not a glared database"));
	fx_close(&f);
}

/* ---- group commit (walsync.c) ------------------------------------------- */

struct durable_wait {
	struct event_base *base;
	int calls, ok;
};

static void durable_cb(void *arg, int ok)
{
	struct durable_wait *d = arg;

	d->calls++;
	d->ok = ok;
	event_base_loopbreak(d->base);
}

/* Attached to a loop, commits are not waited for in the commit; a wait is
 * answered from the loop once a sync covered it, and not before. The
 * thread checkpoints: the WAL does not keep every page. */
UNIT_TEST(group_commit)
{
	fx f;
	struct event_base *base = event_base_new();
	struct durable_wait d = { .base = base };
	struct timeval tmo = { 5, 0 };
	struct stat sb;
	char id[32];

	CHECK(fx_open(&f));
	/* not attached: durable when the commit returns */
	CHECK(add(f.m, &T, mkaf("g0", "a", "1.0.0", "p1", 0), &f.err) == 0);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 0);
	CHECK(gl_meta_attach_loop(f.m, base, &f.err) == 0);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 0);
	CHECK(add(f.m, &T, mkaf("g1", "b", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 1);
	CHECK_INT(d.calls, 0); /* only from the loop */
	event_base_loopexit(base, &tmo);
	event_base_dispatch(base);
	CHECK_INT(d.calls, 1);
	CHECK_INT(d.ok, 1);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 0);
	/* a cancelled wait is never called */
	CHECK(add(f.m, &T, mkaf("g2", "c", "1.0.0", "p1", 2), &f.err) == 0);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 1);
	gl_meta_durable_cancel(f.m, &d);
	CHECK(gl_meta_sync(f.m, &f.err) == 0);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 0);
	tmo.tv_sec = 0;
	tmo.tv_usec = 100000;
	event_base_loopexit(base, &tmo);
	event_base_dispatch(base);
	CHECK_INT(d.calls, 1);
	/* many commits: the thread's checkpoints copy them into the database
	 * file, so it grows past its first pages */
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "m%d", i);
		CHECK(add(f.m, &T,
			  set(mkaf(id, id, "1.0.0", "p1", i), "description",
			      json_string("a description long enough"
					  " to take some room in a"
					  " page of the database")),
			  &f.err) == 0);
		if (i % 50 == 49) {
			CHECK(gl_meta_commit(f.m, &f.err) == 0);
			CHECK(gl_meta_begin(f.m, &f.err) == 0);
		}
	}
	CHECK(gl_meta_commit(f.m, &f.err) == 0);
	CHECK_INT(gl_meta_when_durable(f.m, durable_cb, &d), 1);
	tmo.tv_sec = 5;
	tmo.tv_usec = 0;
	for (int i = 0; i < 50 && d.calls < 2; i++) {
		event_base_loopexit(base, &tmo);
		event_base_dispatch(base);
	}
	CHECK_INT(d.calls, 2);
	/* the database file itself grew: pages were copied out of the WAL
	 * while the store was open (SQLite's own auto-checkpoint is off) */
	tmo.tv_sec = 0;
	tmo.tv_usec = 50000;
	for (int i = 0; i < 100; i++) {
		CHECK(stat(f.path, &sb) == 0);
		if (sb.st_size > 512 * 1024)
			break;
		event_base_loopexit(base, &tmo);
		event_base_dispatch(base);
	}
	CHECK(sb.st_size > 512 * 1024);
	gl_meta_close(f.m);
	f.m = NULL;
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM artifacts"), 3003);
	fx_close(&f);
	event_base_free(base);
}

/* What only sqlite can hold: text that is not UTF-8 and NUL bytes, in
 * base columns, documents, blob keys and quota rows. Reads repair or
 * leave out, never fail; the artifact can still be deleted. */
UNIT_TEST(read_damaged_text)
{
	fx f;
	json_t *got, *q, *b, *arr;
	const char *s;
	char ids[64];
	int64_t total;
	lq l;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("s1", "a", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("s2", "b", "1.0.0", "p1", 2), &f.err) == 0);
	b = json_pack("{s:s, s:s, s:s}", "status", "active", "store", "file",
		      "location", "L1");
	CHECK(gl_meta_blob_set(f.m, "s1", "folder1", "k", b, &f.err) == 0);
	json_decref(b);
	q = json_pack("[{s:s, s:[{s:s, s:i}]}]", "project_id", "p9",
		      "project_quotas", "quota_name", "max_artifact_number",
		      "quota_value", 5);
	CHECK(gl_meta_quotas_set(f.m, q, &f.err) == 0);
	json_decref(q);
	CHECK(raw_exec(f.path,
		       "UPDATE artifacts SET name = CAST(x'61ff62' AS TEXT),"
		       " description = CAST(x'610062' AS TEXT),"
		       " doc = CAST(x'7b2273747231223a2261ff62227d' AS TEXT)"
		       " WHERE id = 's1';"
		       "UPDATE artifacts SET owner = CAST(x'70c0' AS TEXT)"
		       " WHERE id = 's2';"
		       "UPDATE blobs SET key = CAST(x'6bff' AS TEXT),"
		       " url = CAST(x'2fff' AS TEXT) WHERE artifact_id = 's1';"
		       "UPDATE quotas SET project_id = CAST(x'70ff' AS TEXT),"
		       " quota_name = CAST(x'71ff' AS TEXT);") == 0);

	CHECK(gl_meta_get(f.m, &T, "s1", &got, &f.err) == 0);
	CHECK_EQS(json_string_value(json_object_get(got, "name")),
		  "a\xef\xbf\xbd"
		  "b");
	CHECK_INT(json_string_length(json_object_get(got, "description")), 3);
	s = json_string_value(json_object_get(got, "description"));
	CHECK(s && s[1] == '\0');
	CHECK(json_is_null(json_object_get(got, "str1"))); /* lost doc */
	b = json_object_get(json_object_get(got, "folder1"), "k\xef\xbf\xbd");
	CHECK_EQS(json_string_value(json_object_get(b, "url")),
		  "/\xef\xbf\xbd");
	json_decref(got);

	lq_init(&l, &T);
	CHECK_EQS(run_ids(f.m, &l.q, ids, sizeof ids, &total, &f.err),
		  "s2,s1");
	lq_init(&l, &TALL);
	CHECK(gl_meta_list(f.m, &l.q, &arr, &total, &f.err) == 0);
	CHECK_INT(json_array_size(arr), 2);
	json_decref(arr);
	CHECK(gl_meta_quotas_get(f.m, NULL, &q, &f.err) == 0);
	CHECK(json_integer_value(
		      json_object_get(json_object_get(q, "p\xef\xbf\xbd"),
				      "q\xef\xbf\xbd")) == 5);
	json_decref(q);

	CHECK(gl_meta_delete(f.m, "s1", &f.err) == 0);
	CHECK_INT(gl_meta_get(f.m, &T, "s1", &got, &f.err), 1);
	fx_close(&f);
}

/* clang-format off */
UNIT_SUITE(meta,
	UNIT_CASE(open_creates_schema),
	UNIT_CASE(schema_version_mismatch),
	UNIT_CASE(group_commit),
	UNIT_CASE(read_damaged_text),
	META_SCENARIOS);
/* clang-format on */
