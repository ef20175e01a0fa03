/* meta_list.c - listing benchmark for the SQLite metadata store.
 *
 * Fills a temporary database with N artifacts of one type (default
 * 100,000; each with a handful of custom properties, tags, a dict and a
 * list), then times representative gl_meta_list queries: the page alone
 * (total not requested) and the total count alone (limit 0), median of
 * several warm runs, and prints one table row per query. -p also prints
 * each page query's EXPLAIN QUERY PLAN, -a runs ANALYZE first (what
 * PRAGMA optimize does on a long-lived database), -d DIR keeps the
 * database in DIR and reuses it on the next run.
 *
 * Build and run by hand from the repository root:
 *   cc -std=gnu11 -D_GNU_SOURCE -O2 -Isrc -I/usr/include/postgresql \
 *      -o /tmp/meta_list bench/meta_list.c src/meta.c src/meta_pg.c src/meta_common.c \
 *      src/util.c src/fault.c src/http.c src/log.c \
 *      -lsqlite3 -ljansson -lcrypto -levent -lhttp_parser -lpq
 *   /tmp/meta_list [-n N] [-a] [-p] [-d DIR]
 *
 * meta_sqlite.c is included, not linked, so the benchmark can reach the
 * connection to trace the generated SQL and explain it.
 */
#include "meta_sqlite.c"

#include <ftw.h>
#include <time.h>

/* clang-format off */
static gl_field fields[] = {
	{ .name = "id", .kind = GK_STRING, .base = 1, .sortable = 1 },
	{ .name = "name", .kind = GK_STRING, .base = 1, .sortable = 1 },
	{ .name = "owner", .kind = GK_STRING, .base = 1, .sortable = 1 },
	{ .name = "status", .kind = GK_STRING, .base = 1, .sortable = 1 },
	{ .name = "created_at", .kind = GK_DATETIME, .base = 1, .sortable = 1 },
	{ .name = "updated_at", .kind = GK_DATETIME, .base = 1, .sortable = 1 },
	{ .name = "activated_at", .kind = GK_DATETIME, .base = 1, .sortable = 1 },
	{ .name = "description", .kind = GK_STRING, .base = 1 },
	{ .name = "tags", .kind = GK_LIST, .elem = GK_STRING, .base = 1 },
	{ .name = "metadata", .kind = GK_DICT, .elem = GK_STRING, .base = 1 },
	{ .name = "visibility", .kind = GK_STRING, .base = 1, .sortable = 1 },
	{ .name = "version", .kind = GK_VERSION, .base = 1, .sortable = 1 },
	{ .name = "display_type_name", .kind = GK_STRING, .base = 1 },
	{ .name = "os", .kind = GK_STRING, .sortable = 1 },
	{ .name = "build", .kind = GK_INTEGER, .sortable = 1 },
	{ .name = "score", .kind = GK_FLOAT, .sortable = 1 },
	{ .name = "stable", .kind = GK_BOOLEAN },
	{ .name = "branches", .kind = GK_LIST, .elem = GK_STRING },
	{ .name = "labels", .kind = GK_DICT, .elem = GK_INTEGER },
	{ .name = "image", .kind = GK_BLOB },
};
static const gl_type T = { .name = "images", .fields = fields,
			   .nfields = (int)(sizeof fields / sizeof fields[0]) };
/* clang-format on */

static const gl_field *fld(const char *name)
{
	for (int i = 0; i < T.nfields; i++)
		if (strcmp(T.fields[i].name, name) == 0)
			return &T.fields[i];
	abort();
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, const gl_err *err)
{
	fprintf(stderr, "meta_list: %s: %d %s\n", what, err->status, err->msg);
	exit(1);
}

/* Artifact i: 20 owners, 10% public, 1% deleted; 5000 names with up to
 * 20 versions each; os in 3 values, build unique, branches 1 of 50,
 * labels {arch: 0..3, rev: 0..999}, tags t0..t99 (+ nightly on 10%). */
static void fill(gl_meta *m, int n)
{
	static const char *const os[] = { "linux", "windows", "mac" };
	gl_err err;
	char id[40], name[32], ver[32], owner[16], ts[32], tag[8], br[8];
	int64_t t0 = (int64_t)1600000000 * 1000000;

	if (gl_meta_begin(m, &err))
		die("begin", &err);
	for (int i = 0; i < n; i++) {
		json_t *af;
		gl_vkey vk;

		snprintf(id, sizeof id, "%08x-0000-4000-8000-%012x",
			 i * 2654435761u, i);
		snprintf(name, sizeof name, "art-%d", i % 5000);
		snprintf(ver, sizeof ver, "%d.0.0", i / 5000);
		snprintf(owner, sizeof owner, "p%d", i % 20);
		snprintf(tag, sizeof tag, "t%d", i % 100);
		snprintf(br, sizeof br, "b%d", i % 50);
		gl_iso8601(t0 + (int64_t)i * 1000000, ts);
		af = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
			       " s:s, s:s, s:s, s:i, s:f, s:b, s:[s],"
			       " s:{s:i, s:i}, s:[s], s:{s:s}}",
			       "id", id, "name", name, "version", ver, "owner",
			       owner, "visibility",
			       i % 10 ? "private" : "public", "status",
			       i % 100 == 0 ? "deleted"
			       : i % 3      ? "active"
					    : "drafted",
			       "created_at", ts, "updated_at", ts,
			       "description", "an image", "display_type_name",
			       "Images", "os", os[i % 3], "build", i, "score",
			       (double)(i % 1000) / 10, "stable", i % 2,
			       "branches", br, "labels", "arch", i % 4, "rev",
			       i % 1000, "tags", tag, "metadata", "k", "v");
		if (i % 10 == 0)
			json_array_append_new(json_object_get(af, "tags"),
					      json_string("nightly"));
		vk.prefix = (int64_t)(i / 5000) << 48 | (int64_t)2 << 14;
		vk.suffix = "";
		vk.meta = "";
		if (gl_meta_put(m, &T, af, &vk, 1, &err))
			die("put", &err);
		json_decref(af);
		if (i % 5000 == 4999) {
			if (gl_meta_commit(m, &err) || gl_meta_begin(m, &err))
				die("commit", &err);
		}
	}
	if (gl_meta_commit(m, &err))
		die("commit", &err);
}

/* The last page and count statements run (for EXPLAIN). */
static char last_sql[8192], last_count[8192];

static int trace(unsigned type, void *ctx, void *p, void *x)
{
	const char *sql = sqlite3_sql((sqlite3_stmt *)p);

	if (sql && strstr(sql, " ORDER BY ") && strstr(sql, "LIMIT ?"))
		snprintf(last_sql, sizeof last_sql, "%s", sql);
	if (sql && strncmp(sql, "SELECT count(*) FROM (SELECT", 28) != 0 &&
	    strncmp(sql, "SELECT count(*)", 15) == 0)
		snprintf(last_count, sizeof last_count, "%s", sql);
	return 0;
}

static void explain(gl_meta *m, const char *what)
{
	sqlite3_stmt *s;
	char *sql;

	if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", what) < 0)
		return;
	if (sqlite3_prepare_v2(sq(m)->db, sql, -1, &s, NULL) == SQLITE_OK) {
		while (sqlite3_step(s) == SQLITE_ROW)
			printf("      %s\n", sqlite3_column_text(s, 3));
		sqlite3_finalize(s);
	}
	free(sql);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

typedef struct bq {
	const char *label;
	gl_filter f[3];
	int nf;
	const char *sort; /* NULL: created_at desc */
	int desc;
	int latest, see_all, public_only, page; /* page: follow N markers */
} bq;

static void run_query(gl_meta *m, bq *b, int show_plan)
{
	gl_list_query q = { 0 };
	gl_sort s[3];
	gl_err err;
	json_t *arr;
	int64_t total = 0;
	double tp[15], tc[5];
	int ns = 0, rows = 0;
	char marker[64] = "";

	if (b->sort) {
		s[ns].field = fld(b->sort);
		s[ns++].desc = b->desc;
	}
	s[ns].field = fld("created_at");
	s[ns++].desc = 1;
	s[ns].field = fld("id");
	s[ns++].desc = 0;
	q.type = &T;
	q.type_name = T.name;
	q.see_all = b->see_all;
	q.public_only = b->public_only;
	q.project = "p3";
	q.filters = b->f;
	q.nfilters = b->nf;
	q.sorts = s;
	q.nsorts = ns;
	q.latest = b->latest;
	q.limit = 25;
	/* the marker of page b->page + 1 */
	for (int p = 0; p < b->page; p++) {
		q.marker = marker[0] ? marker : NULL;
		if (gl_meta_list(m, &q, &arr, NULL, &err))
			die(b->label, &err);
		snprintf(marker, sizeof marker, "%s",
			 json_string_value(
				 json_object_get(json_array_get(arr,
								json_array_size(
									arr) -
									1),
						 "id")));
		json_decref(arr);
	}
	q.marker = marker[0] ? marker : NULL;
	for (int r = 0; r < 15; r++) {
		double t = now_ms();
		if (gl_meta_list(m, &q, &arr, NULL, &err))
			die(b->label, &err);
		tp[r] = now_ms() - t;
		rows = (int)json_array_size(arr);
		json_decref(arr);
	}
	q.limit = 0;
	q.marker = NULL;
	for (int r = 0; r < 5; r++) {
		double t = now_ms();
		if (gl_meta_list(m, &q, &arr, &total, &err))
			die(b->label, &err);
		tc[r] = now_ms() - t;
		json_decref(arr);
	}
	printf("%-44s %8.2f %9.2f %5d %8lld\n", b->label, median(tp, 15),
	       median(tc, 5), rows, (long long)total);
	if (show_plan) {
		/* re-run the page once to trace its SQL */
		q.limit = 25;
		q.marker = marker[0] ? marker : NULL;
		if (gl_meta_list(m, &q, &arr, NULL, &err) == 0)
			json_decref(arr);
		explain(m, last_sql);
		printf("    count:\n");
		explain(m, last_count);
	}
}

static int rm_entry(const char *p, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	return remove(p);
}

int main(int argc, char **argv)
{
	int n = 100000, analyze = 0, plans = 0, opt;
	char dir[200] = "", conn[300], path[240];
	const char *keep = NULL;
	gl_conf conf = { 0 };
	gl_meta *m;
	gl_err err;
	struct stat sb;
	double t;

	while ((opt = getopt(argc, argv, "n:apd:")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'a':
			analyze = 1;
			break;
		case 'p':
			plans = 1;
			break;
		case 'd':
			keep = optarg;
			break;
		default:
			fprintf(stderr, "usage: meta_list [-n N] [-a] [-p]"
					" [-d DIR]\n");
			return 2;
		}
	}
	if (keep) {
		snprintf(dir, sizeof dir, "%s", keep);
	} else {
		snprintf(dir, sizeof dir, "/tmp/meta_list.XXXXXX");
		if (!mkdtemp(dir))
			return 1;
	}
	snprintf(path, sizeof path, "%s/bench.db", dir);
	snprintf(conn, sizeof conn, "sqlite:///%s", path);
	conf.db_connection = conn;
	int exists = stat(path, &sb) == 0;
	if (!(m = gl_meta_open(&conf, 1, &err)))
		die("open", &err);
	if (!exists) {
		t = now_ms();
		fill(m, n);
		printf("filled %d artifacts in %.1f s (%.0f us each)\n", n,
		       (now_ms() - t) / 1e3, (now_ms() - t) * 1e3 / n);
	}
	if (analyze)
		sqlite3_exec(sq(m)->db, "ANALYZE", NULL, NULL, NULL);
	sqlite3_trace_v2(sq(m)->db, SQLITE_TRACE_STMT, trace, NULL);

	json_t *v_linux = json_pack("[s]", "linux");
	json_t *v_build = json_pack("[i]", 54323);
	json_t *v_b99 = json_pack("[i]", n - 1000);
	json_t *v_b50 = json_pack("[i]", n / 2);
	json_t *v_b95 = json_pack("[i]", n - 5000);
	json_t *v_b90 = json_pack("[i]", n - 10000);
	json_t *v_t42 = json_pack("[s]", "t42");
	json_t *v_nightly = json_pack("[s]", "nightly");
	json_t *v_tany = json_pack("[s,s]", "t1", "t2");
	json_t *v_b7 = json_pack("[s]", "b7");
	json_t *v_arch = json_pack("[i]", 2);
	json_t *v_name = json_pack("[s]", "art-42");
	json_t *v_score = json_pack("[f]", 1.0);
/* clang-format off */
#define PROP(f_, op_, v_) { .kind = GF_PROP, .field = fld(f_), .op = op_, .values = v_ }
	/* clang-format on */
	bq qs[] = {
		{ .label = "no filter" },
		{ .label = "os=linux (1/3)",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) } },
		{ .label = "build=54323 (1 row)",
		  .nf = 1,
		  .f = { PROP("build", GL_OP_EQ, v_build) } },
		{ .label = "build>N-1000 (1000 rows)",
		  .nf = 1,
		  .f = { PROP("build", GL_OP_GT, v_b99) } },
		{ .label = "build>N-5000 (5000 rows)",
		  .nf = 1,
		  .f = { PROP("build", GL_OP_GT, v_b95) } },
		{ .label = "build>N-10000 (10000 rows)",
		  .nf = 1,
		  .f = { PROP("build", GL_OP_GT, v_b90) } },
		{ .label = "build>=N/2 (1/2)",
		  .nf = 1,
		  .f = { PROP("build", GL_OP_GTE, v_b50) } },
		{ .label = "score<1.0 (1/100)",
		  .nf = 1,
		  .f = { PROP("score", GL_OP_LT, v_score) } },
		{ .label = "branches=b7 (list, 1/50, none visible)",
		  .nf = 1,
		  .f = { PROP("branches", GL_OP_EQ, v_b7) } },
		{ .label = "labels.arch=2 (dict, 1/4)",
		  .nf = 1,
		  .f = { { .kind = GF_DICT_VAL,
			   .field = fld("labels"),
			   .key = "arch",
			   .op = GL_OP_EQ,
			   .values = v_arch } } },
		{ .label = "tags=t42 (1/100, none visible)",
		  .nf = 1,
		  .f = { { .kind = GF_TAGS_ALL,
			   .op = GL_OP_EQ,
			   .values = v_t42 } } },
		{ .label = "tags=nightly (1/10)",
		  .nf = 1,
		  .f = { { .kind = GF_TAGS_ALL,
			   .op = GL_OP_EQ,
			   .values = v_nightly } } },
		{ .label = "tags-any=t1,t2 (1/50, none visible)",
		  .nf = 1,
		  .f = { { .kind = GF_TAGS_ANY,
			   .op = GL_OP_IN,
			   .values = v_tany } } },
		{ .label = "name=art-42 (20 rows)",
		  .nf = 1,
		  .f = { { .kind = GF_BASE,
			   .field = fld("name"),
			   .op = GL_OP_EQ,
			   .values = v_name } } },
		{ .label = "os=linux AND tags=nightly",
		  .nf = 2,
		  .f = { PROP("os", GL_OP_EQ, v_linux),
			 { .kind = GF_TAGS_ALL,
			   .op = GL_OP_EQ,
			   .values = v_nightly } } },
		{ .label = "os=linux sort name asc",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .sort = "name" },
		{ .label = "os=linux sort version desc",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .sort = "version",
		  .desc = 1 },
		{ .label = "os=linux sort updated_at asc",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .sort = "updated_at" },
		{ .label = "os=linux sort build desc (custom)",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .sort = "build",
		  .desc = 1 },
		{ .label = "os=linux sort score asc (custom)",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .sort = "score" },
		{ .label = "os=linux page 5 (marker)",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .page = 4 },
		{ .label = "os=linux sort name, page 5",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .sort = "name",
		  .page = 4 },
		{ .label = "latest", .latest = 1 },
		{ .label = "latest os=linux",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .latest = 1 },
		{ .label = "admin (see_all), no filter", .see_all = 1 },
		{ .label = "admin os=linux",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .see_all = 1 },
		{ .label = "anonymous (public) os=linux",
		  .nf = 1,
		  .f = { PROP("os", GL_OP_EQ, v_linux) },
		  .public_only = 1 },
	};
	printf("%d artifacts, page of 25 as project p3 unless noted%s\n", n,
	       analyze ? ", after ANALYZE" : "");
	printf("%-44s %8s %9s %5s %8s\n", "query", "page ms", "count ms",
	       "rows", "total");
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
		run_query(m, &qs[i], plans);

	json_decref(v_linux);
	json_decref(v_build);
	json_decref(v_b99);
	json_decref(v_b50);
	json_decref(v_b95);
	json_decref(v_b90);
	json_decref(v_t42);
	json_decref(v_nightly);
	json_decref(v_tany);
	json_decref(v_b7);
	json_decref(v_arch);
	json_decref(v_name);
	json_decref(v_score);
	gl_meta_close(m);
	if (!keep)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
