/* meta_scenarios.h - the metadata store scenarios every backend must pass
 * (see meta.h): artifact rows, revisions, transactions, blob records,
 * quotas, the gc and cleanup queues, the database blob store and every
 * listing feature (filters, OR group, tags, dicts, lists, sorting, keyset
 * pagination, latest, visibility, counts).
 *
 * Included by test_meta.c (sqlite) and test_meta_pg.c (PostgreSQL), each
 * of which first defines its fixture:
 *   typedef struct fx { ...; gl_meta *m; gl_err err; char dir[64]; } fx;
 *     (dir: a temp directory for files the case writes)
 *   static const char *fx_skip(void);     why the backend is not available,
 *                                         or NULL when it is
 *   static gl_meta *fx_open(fx *f);       a fresh, empty store
 *   static void fx_close(fx *f);
 *   static gl_meta *reopen(fx *f, int upgrade);  a second connection
 *   static int64_t raw_int(fx *f, const char *sql);  one integer, read
 *                                         beside the interface
 *   static int raw_sql(fx *f, const char *sql);  statements run beside
 *                                         the interface (0 on success)
 *   PROP_VALUE       the column of a numeric property value
 *   PROP_IS_NUMBER   "SELECT <1 if the property row is a number>"
 * and ends its suite with META_SCENARIOS (the list of the cases below).
 *
 * Types are built by hand as the type runtime would copy them out of Lua.
 */
#ifndef GL_META_SCENARIOS_H
#define GL_META_SCENARIOS_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "meta.h"
#include "unit.h"
#include "util.h"

/* The start of a case: a fresh store, or a skip without the backend. */
#define FX_START(f)                                                           \
	do {                                                                  \
		const char *why_ = fx_skip();                                 \
		if (why_)                                                     \
			UNIT_SKIP("%s", why_);                                \
		CHECK(fx_open(&(f)));                                         \
	} while (0)

/* CHECK_STR with bounded quoting: listings and messages can be longer than
 * unit_msg, and gcc rightly warns about unit.h's unbounded %s there. */
#define CHECK_EQS(a, b)                                                       \
	do {                                                                  \
		const char *a_ = (a), *b_ = (b);                              \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                      \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg,                   \
				 "%s:%d: \"%.180s\" vs \"%.180s\"", __FILE__, \
				 __LINE__, a_ ? a_ : "(null)",                \
				 b_ ? b_ : "(null)");                         \
			return;                                               \
		}                                                             \
	} while (0)
/* ---- types ----------------------------------------------------------------- */

#define OPS_STR (GL_OP_EQ | GL_OP_NEQ | GL_OP_IN | GL_OP_LIKE)
#define OPS_NUM                                                               \
	(GL_OP_EQ | GL_OP_NEQ | GL_OP_IN | GL_OP_LT | GL_OP_LTE | GL_OP_GT |  \
	 GL_OP_GTE | GL_OP_LIKE)
#define OPS_BOOL (GL_OP_EQ | GL_OP_NEQ)
#define OPS_TIME (GL_OP_LT | GL_OP_GT)

#define BASE_FIELDS                                                           \
	{ .name = "id",                                                       \
	  .kind = GK_STRING,                                                  \
	  .base = 1,                                                          \
	  .sortable = 1,                                                      \
	  .filter_ops = GL_OP_EQ | GL_OP_NEQ | GL_OP_IN },                    \
		{ .name = "name",                                             \
		  .kind = GK_STRING,                                          \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_STR },                                    \
		{ .name = "owner",                                            \
		  .kind = GK_STRING,                                          \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_STR },                                    \
		{ .name = "status",                                           \
		  .kind = GK_STRING,                                          \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_STR },                                    \
		{ .name = "created_at",                                       \
		  .kind = GK_DATETIME,                                        \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_TIME },                                   \
		{ .name = "updated_at",                                       \
		  .kind = GK_DATETIME,                                        \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_TIME },                                   \
		{ .name = "activated_at",                                     \
		  .kind = GK_DATETIME,                                        \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_TIME },                                   \
		{ .name = "description", .kind = GK_STRING, .base = 1 },      \
		{ .name = "tags",                                             \
		  .kind = GK_LIST,                                            \
		  .elem = GK_STRING,                                          \
		  .base = 1 },                                                \
		{ .name = "metadata",                                         \
		  .kind = GK_DICT,                                            \
		  .elem = GK_STRING,                                          \
		  .base = 1,                                                  \
		  .filter_ops = GL_OP_EQ | GL_OP_NEQ | GL_OP_IN },            \
		{ .name = "visibility",                                       \
		  .kind = GK_STRING,                                          \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_STR },                                    \
		{ .name = "version",                                          \
		  .kind = GK_VERSION,                                         \
		  .base = 1,                                                  \
		  .sortable = 1,                                              \
		  .filter_ops = OPS_NUM },                                    \
	{                                                                     \
		.name = "display_type_name", .kind = GK_STRING, .base = 1,    \
		.sortable = 1, .filter_ops = OPS_STR                          \
	}

static gl_field test_fields[] = {
	BASE_FIELDS,
	{ .name = "str1",
	  .kind = GK_STRING,
	  .sortable = 1,
	  .filter_ops = OPS_STR },
	{ .name = "int1",
	  .kind = GK_INTEGER,
	  .sortable = 1,
	  .filter_ops = OPS_NUM },
	{ .name = "float1",
	  .kind = GK_FLOAT,
	  .sortable = 1,
	  .filter_ops = OPS_NUM },
	{ .name = "bool1", .kind = GK_BOOLEAN, .filter_ops = OPS_BOOL },
	{ .name = "list1",
	  .kind = GK_LIST,
	  .elem = GK_STRING,
	  .filter_ops = OPS_STR },
	{ .name = "dict1",
	  .kind = GK_DICT,
	  .elem = GK_INTEGER,
	  .filter_ops = OPS_NUM },
	{ .name = "blob1", .kind = GK_BLOB },
	{ .name = "folder1", .kind = GK_FOLDER },
};

static gl_field all_fields[] = {
	BASE_FIELDS,
	{ .name = "type_name",
	  .kind = GK_STRING,
	  .base = 1,
	  .sortable = 1,
	  .filter_ops = OPS_STR },
};

#define NFIELDS(a) ((int)(sizeof a / sizeof a[0]))
/* clang-format off */
static const gl_type T = { .name = "tests", .fields = test_fields,
			   .nfields = NFIELDS(test_fields) };
/* a second type with the same layout */
static const gl_type T2 = { .name = "others", .fields = test_fields,
			    .nfields = NFIELDS(test_fields) };
static const gl_type TALL = { .name = "all", .fields = all_fields,
			      .nfields = NFIELDS(all_fields), .is_all = 1 };
/* clang-format on */

static const gl_field *fld(const gl_type *t, const char *name)
{
	for (int i = 0; i < t->nfields; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return &t->fields[i];
	abort();
}
/* ---- versions: the engine's semver key, for canonical strings ------------ */

typedef struct tvk {
	gl_vkey k;
	char suffix[64];
	char meta[64];
} tvk;

static void vkey(const char *v, tvk *out)
{
	long long maj = 0, min = 0, pat = 0;
	const char *p = v, *pre = NULL, *build = NULL;
	char *o = out->suffix;

	sscanf(v, "%lld.%lld.%lld", &maj, &min, &pat);
	while (*p && *p != '-' && *p != '+')
		p++;
	if (*p == '-')
		pre = p + 1;
	build = strchr(v, '+');
	out->meta[0] = '\0';
	if (build)
		snprintf(out->meta, sizeof out->meta, "%s", build + 1);
	out->suffix[0] = '\0';
	if (pre) {
		/* identifiers, numeric ones zero-padded to 6 */
		const char *e = build ? build : pre + strlen(pre);
		while (pre < e) {
			const char *dot = memchr(pre, '.', (size_t)(e - pre));
			size_t n = (size_t)((dot ? dot : e) - pre);
			int num = n > 0;
			for (size_t i = 0; i < n; i++)
				num &= pre[i] >= '0' && pre[i] <= '9';
			if (num)
				for (size_t i = n; i < 6; i++)
					*o++ = '0';
			memcpy(o, pre, n);
			o += n;
			if (dot)
				*o++ = '.';
			pre += n + (dot ? 1 : 0);
		}
		*o = '\0';
	}
	out->k.prefix = maj << 48 | min << 32 | pat << 16 |
			(int64_t)(pre ? 0 : 2) << 14;
	out->k.suffix = out->suffix;
	out->k.meta = out->meta;
}

/* ---- artifacts ------------------------------------------------------------ */

/* The base fields of an artifact created `sec` seconds after a fixed time. */
static json_t *mkaf(const char *id, const char *name, const char *version,
		    const char *owner, int sec)
{
	char ts[32];

	gl_iso8601((int64_t)(1500000000 + sec) * 1000000, ts);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
			 " s:s, s:n, s:[], s:{}, s:s}",
			 "id", id, "name", name, "version", version, "owner",
			 owner, "visibility", "private", "status", "drafted",
			 "created_at", ts, "updated_at", ts, "description", "",
			 "display_type_name", "Tests", "activated_at", "tags",
			 "metadata", "type_hint", "x");
}

static int put(gl_meta *m, const gl_type *t, json_t *af, int insert,
	       gl_err *err)
{
	tvk k;

	vkey(json_string_value(json_object_get(af, "version")), &k);
	return gl_meta_put(m, t, af, &k.k, insert, err);
}

/* Insert and release. */
static int add(gl_meta *m, const gl_type *t, json_t *af, gl_err *err)
{
	int rc = put(m, t, af, 1, err);

	json_decref(af);
	return rc;
}

static json_t *set(json_t *af, const char *key, json_t *v)
{
	json_object_set_new(af, key, v);
	return af;
}

/* ---- listing helpers ---------------------------------------------------------- */

#define MAXF 8

typedef struct lq {
	gl_list_query q;
	gl_filter f[MAXF];
	tvk vk[MAXF][4];
	gl_vkey vkeys[MAXF][4];
	gl_sort s[4];
} lq;

/* A query on type t seen by an admin, default sort (created_at desc, id). */
static void lq_init(lq *l, const gl_type *t)
{
	memset(l, 0, sizeof *l);
	l->q.type = t;
	l->q.type_name = t->is_all ? NULL : t->name;
	l->q.see_all = 1;
	l->q.limit = 100;
	l->q.filters = l->f;
	l->q.sorts = l->s;
	l->s[0].field = fld(t, "created_at");
	l->s[0].desc = 1;
	l->s[1].field = fld(t, "id");
	l->q.nsorts = 2;
}

/* Add a filter; values as JSON text. */
static gl_filter *lq_f(lq *l, enum gl_filter_kind kind, const char *field,
		       unsigned op, const char *values)
{
	gl_filter *f = &l->f[l->q.nfilters++];

	f->kind = kind;
	f->field = field ? fld(l->q.type, field) : NULL;
	f->op = op;
	f->values = json_loads(values, JSON_DECODE_ANY, NULL);
	if (field && strcmp(field, "version") == 0) {
		int i = (int)(f - l->f);
		for (size_t j = 0; j < json_array_size(f->values) && j < 4;
		     j++) {
			vkey(json_string_value(json_array_get(f->values, j)),
			     &l->vk[i][j]);
			l->vkeys[i][j] = l->vk[i][j].k;
		}
		f->vkeys = l->vkeys[i];
	}
	return f;
}

/* Replace the sort with key (plus the engine's tie-breakers). */
static void lq_sort(lq *l, const char *field, int desc)
{
	l->s[0].field = fld(l->q.type, field);
	l->s[0].desc = desc;
	l->s[1].field = fld(l->q.type, "created_at");
	l->s[1].desc = 1;
	l->s[2].field = fld(l->q.type, "id");
	l->s[2].desc = 0;
	l->q.nsorts = 3;
}

static void lq_free(lq *l)
{
	for (int i = 0; i < l->q.nfilters; i++)
		json_decref(l->f[i].values);
}

/* Run the query; ids of the page, comma separated, into out ("ERR" on
 * failure, with err filled). */
static const char *run_ids(gl_meta *m, const gl_list_query *q, char *out,
			   size_t n, int64_t *total, gl_err *err)
{
	json_t *arr, *af;
	size_t i, len = 0;

	int64_t all;

	out[0] = '\0';
	if (gl_meta_list(m, q, &arr, &all, err)) {
		snprintf(out, n, "ERR %d %s", err->status, err->msg);
		return out;
	}
	if (total)
		*total = all;
	json_array_foreach(arr, i, af)
		len += (size_t)snprintf(out + len, n - len, "%s%s",
					i ? "," : "",
					json_string_value(
						json_object_get(af, "id")));
	/* every count path (kept counts, scope copies, the scan) agrees
	 * with the rows whenever the page holds them all */
	if (!q->marker && q->limit > 0 &&
	    json_array_size(arr) < (size_t)q->limit &&
	    all != (int64_t)json_array_size(arr))
		snprintf(out, n, "TOTAL %lld for %zu rows", (long long)all,
			 json_array_size(arr));
	json_decref(arr);
	return out;
}

/* The list fixture:
 *   id   name   version     owner vis     status  str1    int1 float1 bool1 list1   dict1      tags
 *   a01  alpha  1.0.0       p1    private drafted linux   10   1.5    true  [x,y]   {k1:1,k2:2} [t1,t2]
 *   a02  alpha  2.0.0       p1    private active  windows 20   2.5    false [y]     {k1:5}      [t2]
 *   a03  alpha  2.0.0-beta  p1    private drafted linux   30   -      true  []      -           [t3]
 *   a04  beta   1.0.0       p2    public  active  mac     40   4.5    -     [z]     {k2:7}      [t1]
 *   a05  beta   1.1.0       p2    private drafted linux   50   -      -     -       -           []
 *   a06  gamma  0.1.0       p1    private deleted linux   60   -      -     -       -           []
 *   a07  gamma  0.2.0       p1    public  drafted Linux%x 70   -      -     -       -           []
 * created_at = index seconds (a07 newest); metadata {"m": "v"} on a01 only.
 */
static int fill(gl_meta *m, gl_err *err)
{
	json_t *af;

	af = mkaf("a01", "alpha", "1.0.0", "p1", 1);
	set(af, "str1", json_string("linux"));
	set(af, "int1", json_integer(10));
	set(af, "float1", json_real(1.5));
	set(af, "bool1", json_true());
	set(af, "list1", json_pack("[s,s]", "x", "y"));
	set(af, "dict1", json_pack("{s:i,s:i}", "k1", 1, "k2", 2));
	set(af, "tags", json_pack("[s,s]", "t1", "t2"));
	set(af, "metadata", json_pack("{s:s}", "m", "v"));
	if (add(m, &T, af, err))
		return -1;
	af = mkaf("a02", "alpha", "2.0.0", "p1", 2);
	set(af, "status", json_string("active"));
	set(af, "str1", json_string("windows"));
	set(af, "int1", json_integer(20));
	set(af, "float1", json_real(2.5));
	set(af, "bool1", json_false());
	set(af, "list1", json_pack("[s]", "y"));
	set(af, "dict1", json_pack("{s:i}", "k1", 5));
	set(af, "tags", json_pack("[s]", "t2"));
	if (add(m, &T, af, err))
		return -1;
	af = mkaf("a03", "alpha", "2.0.0-beta", "p1", 3);
	set(af, "str1", json_string("linux"));
	set(af, "int1", json_integer(30));
	set(af, "bool1", json_true());
	set(af, "tags", json_pack("[s]", "t3"));
	if (add(m, &T, af, err))
		return -1;
	af = mkaf("a04", "beta", "1.0.0", "p2", 4);
	set(af, "visibility", json_string("public"));
	set(af, "status", json_string("active"));
	set(af, "str1", json_string("mac"));
	set(af, "int1", json_integer(40));
	set(af, "float1", json_real(4.5));
	set(af, "list1", json_pack("[s]", "z"));
	set(af, "dict1", json_pack("{s:i}", "k2", 7));
	set(af, "tags", json_pack("[s]", "t1"));
	if (add(m, &T, af, err))
		return -1;
	af = mkaf("a05", "beta", "1.1.0", "p2", 5);
	set(af, "str1", json_string("linux"));
	set(af, "int1", json_integer(50));
	if (add(m, &T, af, err))
		return -1;
	af = mkaf("a06", "gamma", "0.1.0", "p1", 6);
	set(af, "status", json_string("deleted"));
	set(af, "str1", json_string("linux"));
	set(af, "int1", json_integer(60));
	if (add(m, &T, af, err))
		return -1;
	af = mkaf("a07", "gamma", "0.2.0", "p1", 7);
	set(af, "visibility", json_string("public"));
	set(af, "str1", json_string("Linux%x"));
	set(af, "int1", json_integer(70));
	return add(m, &T, af, err);
}

/* One filter on the fixture: ids in default order, or ERR. */
static const char *one(gl_meta *m, enum gl_filter_kind kind, const char *field,
		       unsigned op, const char *values, char *out, size_t n)
{
	lq l;
	gl_err err;

	lq_init(&l, &T);
	lq_f(&l, kind, field, op, values);
	run_ids(m, &l.q, out, n, NULL, &err);
	lq_free(&l);
	return out;
}

/* Same, with a dict key (GF_DICT_VAL). */
static const char *dictval(gl_meta *m, const char *key, unsigned op,
			   const char *values, char *out, size_t n)
{
	lq l;
	gl_err err;

	lq_init(&l, &T);
	lq_f(&l, GF_DICT_VAL, "dict1", op, values)->key = (char *)key;
	run_ids(m, &l.q, out, n, NULL, &err);
	lq_free(&l);
	return out;
}
/* ========================================================================
 * Cases
 * ====================================================================== */
UNIT_TEST(put_get_roundtrip)
{
	fx f;
	json_t *af, *got, *all;

	FX_START(f);
	af = mkaf("r1", "Ünïcødé ☃ name", "1.2.3-rc.1+b7", "p1", 10);
	set(af, "description", json_string("desc ✓"));
	set(af, "activated_at", json_string("2020-02-03T04:05:06Z"));
	set(af, "str1", json_string("日本語"));
	set(af, "int1", json_integer(9007199254740993LL)); /* 2^53 + 1 */
	set(af, "float1", json_real(0.1));
	set(af, "bool1", json_false());
	set(af, "list1", json_pack("[s,s,s]", "a", "b", "a"));
	set(af, "dict1",
	    json_pack("{s:I,s:i}", "big", (json_int_t)INT64_MAX, "neg", -5));
	set(af, "tags", json_pack("[s,s]", "x", "y"));
	set(af, "metadata", json_pack("{s:s}", "k", "v"));
	set(af, "blob1", json_null());
	CHECK(put(f.m, &T, af, 1, &f.err) == 0);
	CHECK_INT(json_integer_value(json_object_get(af, "revision")), 1);

	CHECK(gl_meta_get(f.m, &T, "r1", &got, &f.err) == 0);
	/* everything written comes back, blobs as null / {} */
	json_object_set_new(af, "blob1", json_null());
	json_object_set_new(af, "folder1", json_object());
	json_object_del(af, "type_hint"); /* not a field: not stored */
	CHECK(json_equal(af, got));
	CHECK_INT(json_integer_value(json_object_get(got, "int1")),
		  9007199254740993LL);
	CHECK(json_real_value(json_object_get(got, "float1")) == 0.1);
	CHECK_EQS(json_string_value(json_object_get(got, "version")),
		  "1.2.3-rc.1+b7");
	json_decref(got);

	/* the all view: base fields + type_name, no custom or blob fields */
	CHECK(gl_meta_get(f.m, NULL, "r1", &all, &f.err) == 0);
	CHECK_EQS(json_string_value(json_object_get(all, "type_name")),
		  "tests");
	CHECK(json_object_get(all, "str1") == NULL);
	CHECK(json_object_get(all, "blob1") == NULL);
	CHECK(json_equal(json_object_get(all, "tags"),
			 json_object_get(af, "tags")));
	CHECK(json_equal(json_object_get(all, "metadata"),
			 json_object_get(af, "metadata")));
	json_decref(all);
	CHECK(gl_meta_get(f.m, &TALL, "r1", &all, &f.err) == 0);
	CHECK_EQS(json_string_value(json_object_get(all, "name")),
		  "Ünïcødé ☃ name");
	json_decref(all);

	/* unset custom fields read as null; other type / unknown id: 1 */
	CHECK(add(f.m, &T, mkaf("r2", "n", "0.0.0", "p1", 11), &f.err) == 0);
	CHECK(gl_meta_get(f.m, &T, "r2", &got, &f.err) == 0);
	CHECK(json_is_null(json_object_get(got, "int1")));
	CHECK(json_is_null(json_object_get(got, "activated_at")));
	json_decref(got);
	CHECK(gl_meta_get(f.m, &T2, "r1", &got, &f.err) == 1);
	CHECK(gl_meta_get(f.m, &T, "nope", &got, &f.err) == 1);
	CHECK(got == NULL);

	/* properties rows: scalars, list elements (with pos), dict entries,
	 * metadata; nulls not stored */
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM properties WHERE"
			      " artifact_id = 'r1'"),
		  1 + 1 + 1 + 1 + 3 + 2 + 1);
	CHECK_INT(raw_int(&f, "SELECT " PROP_VALUE " FROM properties WHERE"
			      " artifact_id = 'r1' AND name = 'dict1'"
			      " AND key = 'big'"),
		  INT64_MAX);
	CHECK_INT(raw_int(&f,
			  PROP_IS_NUMBER " FROM"
					 " properties WHERE artifact_id = 'r1'"
					 " AND name = 'bool1'"),
		  1);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM tags WHERE"
			      " artifact_id = 'r1'"),
		  2);
	json_decref(af);
	fx_close(&f);
}

UNIT_TEST(put_revision_conflict)
{
	fx f;
	json_t *af, *stale, *got;

	FX_START(f);
	af = mkaf("c1", "n", "1.0.0", "p1", 1);
	set(af, "int1", json_integer(1));
	CHECK(put(f.m, &T, af, 1, &f.err) == 0);
	stale = json_deep_copy(af);

	set(af, "int1", json_integer(2));
	set(af, "tags", json_pack("[s]", "new"));
	CHECK(put(f.m, &T, af, 0, &f.err) == 0);
	CHECK_INT(json_integer_value(json_object_get(af, "revision")), 2);

	/* a writer that read revision 1 loses */
	set(stale, "int1", json_integer(3));
	CHECK(put(f.m, &T, stale, 0, &f.err) == -1);
	CHECK_INT(f.err.status, 409);
	CHECK_STR(f.err.type, "Conflict");
	CHECK_INT(json_integer_value(json_object_get(stale, "revision")), 1);
	CHECK(gl_meta_get(f.m, &T, "c1", &got, &f.err) == 0);
	CHECK_INT(json_integer_value(json_object_get(got, "int1")), 2);
	CHECK_INT(json_integer_value(json_object_get(got, "revision")), 2);
	json_decref(got);
	/* old property and tag rows were replaced */
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM properties WHERE"
			      " artifact_id = 'c1' AND name = 'int1'"),
		  1);
	CHECK_INT(raw_int(&f, "SELECT " PROP_VALUE " FROM properties WHERE"
			      " artifact_id = 'c1' AND name = 'int1'"),
		  2);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM tags WHERE"
			      " artifact_id = 'c1' AND value = 'new'"),
		  1);

	/* the same id twice */
	json_object_del(stale, "revision");
	CHECK(put(f.m, &T, stale, 1, &f.err) == -1);
	CHECK_INT(f.err.status, 409);
	CHECK_EQS(f.err.msg, "Artifact with this id already exists");

	/* set_status bumps the revision too */
	CHECK(gl_meta_set_status(f.m, "c1", "active", &f.err) == 0);
	CHECK(put(f.m, &T, af, 0, &f.err) == -1);
	CHECK_INT(f.err.status, 409);
	CHECK(gl_meta_set_status(f.m, "zz", "active", &f.err) == -1);
	CHECK_INT(f.err.status, 404);
	json_decref(af);
	json_decref(stale);
	fx_close(&f);
}

UNIT_TEST(transactions)
{
	fx f;
	json_t *got;
	gl_meta *m2;

	FX_START(f);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("t1", "n", "1.0.0", "p1", 1), &f.err) == 0);
	gl_meta_rollback(f.m);
	CHECK(gl_meta_get(f.m, &T, "t1", &got, &f.err) == 1);

	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("t1", "n", "1.0.0", "p1", 1), &f.err) == 0);
	/* a failing put inside the transaction leaves the rest intact */
	CHECK(add(f.m, &T, mkaf("t1", "n", "1.0.0", "p1", 1), &f.err) == -1);
	CHECK(gl_meta_commit(f.m, &f.err) == 0);
	CHECK(gl_meta_get(f.m, &T, "t1", &got, &f.err) == 0);
	json_decref(got);

	/* a second writer waits out the busy timeout, then gets 409 */
	m2 = reopen(&f, 0);
	CHECK(m2);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(gl_meta_begin(m2, &f.err) == -1);
	CHECK_INT(f.err.status, 409);
	CHECK_EQS(f.err.msg, "The database is busy, try again");
	/* readers are not blocked (WAL) */
	CHECK(gl_meta_get(m2, &T, "t1", &got, &f.err) == 0);
	json_decref(got);
	gl_meta_rollback(f.m);
	gl_meta_close(m2);
	fx_close(&f);
}

UNIT_TEST(delete_cascades)
{
	fx f;
	json_t *af, *got;
	json_t *blob = json_pack("{s:s, s:s, s:i}", "status", "active",
				 "store", "file", "size", 5);

	FX_START(f);
	af = mkaf("d1", "n", "1.0.0", "p1", 1);
	set(af, "tags", json_pack("[s,s]", "a", "b"));
	set(af, "int1", json_integer(4));
	set(af, "dict1", json_pack("{s:i}", "k", 1));
	CHECK(add(f.m, &T, af, &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("d2", "n", "2.0.0", "p1", 2), &f.err) == 0);
	CHECK(gl_meta_blob_set(f.m, "d1", "blob1", "", blob, &f.err) == 0);
	CHECK(gl_meta_blob_set(f.m, "d1", "folder1", "k", blob, &f.err) == 0);
	CHECK(gl_meta_blob_set(f.m, "d2", "blob1", "", blob, &f.err) == 0);
	json_decref(blob);

	CHECK(gl_meta_delete(f.m, "d1", &f.err) == 0);
	CHECK(gl_meta_get(f.m, &T, "d1", &got, &f.err) == 1);
	CHECK_INT(raw_int(&f,
			  "SELECT (SELECT count(*) FROM tags"
			  " WHERE artifact_id = 'd1') + (SELECT count(*) FROM"
			  " properties WHERE artifact_id = 'd1') +"
			  " (SELECT count(*) FROM blobs WHERE"
			  " artifact_id = 'd1')"),
		  0);
	/* the neighbour is untouched */
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM blobs"), 1);
	CHECK(gl_meta_delete(f.m, "d1", &f.err) == 0);
	fx_close(&f);
}

UNIT_TEST(deleted_for_scrubber)
{
	fx f;
	json_t *out, *af;
	char ts[32];

	FX_START(f);
	/* updated 10, 30, 20 s after the epoch of mkaf; d4 is not deleted */
	static const struct {
		const char *id;
		int sec;
		const char *st;
	} a[] = {
		{ "d1", 10, "deleted" },
		{ "d2", 30, "deleted" },
		{ "d3", 20, "deleted" },
		{ "d4", 5, "active" },
	};
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
		af = mkaf(a[i].id, "n", "1.0.0", "p1", 1);
		gl_iso8601((int64_t)(1500000000 + a[i].sec) * 1000000, ts);
		set(af, "updated_at", json_string(ts));
		set(af, "status", json_string(a[i].st));
		CHECK(add(f.m, i == 2 ? &T2 : &T, af, &f.err) == 0);
	}
	/* older than 25 s: d1, d3, oldest first */
	CHECK(gl_meta_deleted(f.m, (int64_t)1500000025 * 1000000, 10, &out,
			      &f.err) == 0);
	CHECK_INT(json_array_size(out), 2);
	CHECK_EQS(json_string_value(
			  json_object_get(json_array_get(out, 0), "id")),
		  "d1");
	CHECK_EQS(json_string_value(
			  json_object_get(json_array_get(out, 1), "id")),
		  "d3");
	CHECK_EQS(json_string_value(json_object_get(json_array_get(out, 1),
						    "type_name")),
		  "others");
	json_decref(out);
	CHECK(gl_meta_deleted(f.m, INT64_MAX, 1, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 1);
	json_decref(out);
	CHECK(gl_meta_deleted(f.m, INT64_MAX, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 3);
	json_decref(out);
	fx_close(&f);
}

UNIT_TEST(scope_taken)
{
	fx f;
	tvk k100, k10, k100b, k200;

	FX_START(f);
	vkey("1.0.0", &k100);
	vkey("1.0.0", &k10); /* the engine coerces "1.0" to 1.0.0 first */
	vkey("1.0.0+b1", &k100b);
	vkey("2.0.0", &k200);
	CHECK(add(f.m, &T, mkaf("s1", "n", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(add(f.m, &T,
		  set(mkaf("s2", "n", "2.0.0", "p1", 2), "visibility",
		      json_string("public")),
		  &f.err) == 0);

	/* private scope: that owner's private artifacts */
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k100.k, "p1", NULL,
				      &f.err),
		  1);
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k10.k, "p1", NULL,
				      &f.err),
		  1);
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k100.k, "p2", NULL,
				      &f.err),
		  0);
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k200.k, "p1", NULL,
				      &f.err),
		  0);
	CHECK_INT(gl_meta_scope_taken(f.m, "others", "n", &k100.k, "p1", NULL,
				      &f.err),
		  0);
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "N", &k100.k, "p1", NULL,
				      &f.err),
		  0);
	/* build metadata counts for equality */
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k100b.k, "p1", NULL,
				      &f.err),
		  0);
	/* public scope: every public artifact */
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k200.k, NULL, NULL,
				      &f.err),
		  1);
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k100.k, NULL, NULL,
				      &f.err),
		  0);
	/* the artifact itself, and deleted ones, do not count */
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k100.k, "p1", "s1",
				      &f.err),
		  0);
	CHECK(gl_meta_set_status(f.m, "s2", "deleted", &f.err) == 0);
	CHECK_INT(gl_meta_scope_taken(f.m, "tests", "n", &k200.k, NULL, NULL,
				      &f.err),
		  0);
	fx_close(&f);
}

UNIT_TEST(count_and_used_bytes)
{
	fx f;
	int64_t n;
	json_t *b;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("u1", "a", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("u2", "b", "1.0.0", "p1", 2), &f.err) == 0);
	CHECK(add(f.m, &T,
		  set(mkaf("u3", "c", "1.0.0", "p1", 3), "status",
		      json_string("deleted")),
		  &f.err) == 0);
	CHECK(add(f.m, &T2, mkaf("u4", "a", "1.0.0", "p1", 4), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("u5", "a", "1.0.0", "p2", 5), &f.err) == 0);

	CHECK(gl_meta_count_artifacts(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 4); /* deleted ones too */
	CHECK(gl_meta_count_artifacts(f.m, "p1", "tests", &n, &f.err) == 0);
	CHECK_INT(n, 3);
	CHECK(gl_meta_count_artifacts(f.m, "p3", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 0);

	b = json_pack("{s:s, s:I}", "status", "active", "size",
		      (json_int_t)100);
	CHECK(gl_meta_blob_set(f.m, "u1", "blob1", "", b, &f.err) == 0);
	json_object_set_new(b, "size", json_integer(50));
	CHECK(gl_meta_blob_set(f.m, "u1", "folder1", "k", b, &f.err) == 0);
	json_object_set_new(b, "size", json_integer(7));
	CHECK(gl_meta_blob_set(f.m, "u4", "blob1", "", b, &f.err) == 0);
	json_object_set_new(b, "size", json_integer(1 << 20));
	CHECK(gl_meta_blob_set(f.m, "u5", "blob1", "", b, &f.err) == 0);
	json_decref(b);
	/* saving: the reservation counts, not the (unknown) size */
	b = json_pack("{s:s, s:n, s:i}", "status", "saving", "size",
		      "reserved", 1000);
	CHECK(gl_meta_blob_set(f.m, "u2", "blob1", "", b, &f.err) == 0);
	json_decref(b);

	CHECK(gl_meta_used_bytes(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 100 + 50 + 1000 + 7);
	CHECK(gl_meta_used_bytes(f.m, "p1", "tests", &n, &f.err) == 0);
	CHECK_INT(n, 100 + 50 + 1000);
	CHECK(gl_meta_used_bytes(f.m, "p1", "others", &n, &f.err) == 0);
	CHECK_INT(n, 7);
	CHECK(gl_meta_used_bytes(f.m, "p9", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 0);
	fx_close(&f);
}

/* ---- counters (quota_usage, artifact_counts) ------------------------------
 * Kept by triggers; after any sequence of changes they equal what counting
 * the rows gives. Each query below is the number of rows on which the two
 * differ (groups whose counters are all 0 are the same as no group). */
/* clang-format off */
#define USAGE_NOW                                                             \
	"SELECT a.owner, a.type_name, count(*), coalesce(sum(ab.bytes), 0)"   \
	" FROM artifacts a LEFT JOIN (SELECT artifact_id, sum(CASE WHEN"      \
	" status = 'saving' THEN coalesce(reserved, 0) ELSE coalesce(size, 0)" \
	" END) AS bytes FROM blobs GROUP BY artifact_id) ab"                  \
	" ON ab.artifact_id = a.id GROUP BY a.owner, a.type_name"
/* clang-format on */
#define USAGE_KEPT                                                            \
	"SELECT project_id, type_name, artifacts, bytes FROM quota_usage"     \
	" WHERE artifacts <> 0 OR bytes <> 0"
/* clang-format off */
#define COUNTS_NOW                                                            \
	"SELECT type_name, owner, visibility, status, count(*) FROM artifacts" \
	" GROUP BY type_name, owner, visibility, status"
/* clang-format on */
#define COUNTS_KEPT                                                           \
	"SELECT type_name, owner, visibility, status, n FROM artifact_counts" \
	" WHERE n <> 0"
#define COUNTERS_DIFF                                                         \
	"SELECT (SELECT count(*) FROM (" USAGE_NOW " EXCEPT " USAGE_KEPT      \
	") x) + (SELECT count(*) FROM (" USAGE_KEPT " EXCEPT " USAGE_NOW      \
	") y) + (SELECT count(*) FROM (" COUNTS_NOW " EXCEPT " COUNTS_KEPT    \
	") z) + (SELECT count(*) FROM (" COUNTS_KEPT " EXCEPT " COUNTS_NOW    \
	") w)"

/* Property and tag rows whose scope copies (schema steps 7, 8) differ from
 * their artifact's columns: 0 when kept in step. */
#define SCOPE_DIFF_OF(t)                                                      \
	"(SELECT count(*) FROM " t " c JOIN artifacts a ON a.id ="            \
	" c.artifact_id WHERE c.type_name <> a.type_name OR c.owner <>"       \
	" a.owner OR c.visibility <> a.visibility OR c.status <> a.status"    \
	" OR c.created_at <> a.created_at)"
#define SCOPE_DIFF                                                            \
	"SELECT " SCOPE_DIFF_OF("properties") " + " SCOPE_DIFF_OF("tags")

/* (a function: CHECK would quote the whole query) */
static long long scope_diff(fx *f)
{
	return (long long)raw_int(f, SCOPE_DIFF);
}

static json_t *blob_of(const char *status, int64_t size, int64_t reserved)
{
	json_t *b = json_pack("{s:s, s:s}", "status", status, "store", "file");

	json_object_set_new(b, "size",
			    size >= 0 ? json_integer(size) : json_null());
	if (reserved >= 0)
		json_object_set_new(b, "reserved", json_integer(reserved));
	return b;
}

static int blob_put(gl_meta *m, const char *id, const char *field,
		    const char *key, json_t *b, gl_err *err)
{
	int rc = gl_meta_blob_set(m, id, field, key, b, err);

	json_decref(b);
	return rc;
}

/* Rows with blobs for the schema_version_mismatch cases of both backends
 * (48 bytes for p1), from before a downgrade the upgrade then counts. */
static int counters_seed(gl_meta *m, gl_err *err)
{
	json_t *af = mkaf("v1", "a", "1.0.0", "p1", 1);

	/* rows for the scope copies (step 7) to fill */
	set(af, "str1", json_string("x"));
	set(af, "tags", json_pack("[s]", "t1"));
	return add(m, &T, af, err) ||
	       add(m, &T2, mkaf("v2", "a", "1.0.0", "p1", 2), err) ||
	       blob_put(m, "v1", "blob1", "", blob_of("active", 40, -1),
			err) ||
	       blob_put(m, "v2", "blob1", "", blob_of("saving", -1, 8), err);
}

UNIT_TEST(counters_exact)
{
	fx f;
	json_t *af;
	int64_t n;

	FX_START(f);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK(add(f.m, &T, mkaf("c1", "a", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("c2", "b", "1.0.0", "p1", 2), &f.err) == 0);
	CHECK(add(f.m, &T2, mkaf("c3", "a", "1.0.0", "p1", 3), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("c4", "a", "1.0.0", "p2", 4), &f.err) == 0);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK_INT(raw_int(&f,
			  "SELECT n FROM artifact_counts WHERE"
			  " type_name = 'tests' AND owner = 'p1' AND"
			  " visibility = 'private' AND status = 'drafted'"),
		  2);
	/* blobs: new, saving (its reservation), replaced, folder entries */
	CHECK(blob_put(f.m, "c1", "blob1", "", blob_of("saving", -1, 500),
		       &f.err) == 0);
	CHECK(gl_meta_used_bytes(f.m, "p1", "tests", &n, &f.err) == 0);
	CHECK_INT(n, 500);
	CHECK(blob_put(f.m, "c1", "blob1", "", blob_of("active", 120, -1),
		       &f.err) == 0);
	CHECK(blob_put(f.m, "c1", "folder1", "x", blob_of("active", 3, -1),
		       &f.err) == 0);
	CHECK(blob_put(f.m, "c1", "folder1", "y", blob_of("active", 4, -1),
		       &f.err) == 0);
	CHECK(blob_put(f.m, "c3", "blob1", "", blob_of("active", 9, -1),
		       &f.err) == 0);
	CHECK(blob_put(f.m, "c4", "blob1", "", blob_of("saving", 10, 70),
		       &f.err) == 0);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK(gl_meta_used_bytes(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 120 + 3 + 4 + 9);
	CHECK(gl_meta_blob_delete(f.m, "c1", "folder1", "x", &f.err) == 0);
	CHECK(gl_meta_blob_delete(f.m, "c1", "folder1", "y", &f.err) == 0);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	/* status and visibility moves (put and set_status), in a rolled
	 * back transaction too */
	CHECK(gl_meta_get(f.m, &T, "c2", &af, &f.err) == 0);
	set(af, "status", json_string("active"));
	set(af, "visibility", json_string("public"));
	CHECK(put(f.m, &T, af, 0, &f.err) == 0);
	json_decref(af);
	CHECK(gl_meta_set_status(f.m, "c4", "deleted", &f.err) == 0);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(gl_meta_set_status(f.m, "c1", "active", &f.err) == 0);
	CHECK(blob_put(f.m, "c1", "blob1", "", blob_of("active", 99999, -1),
		       &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("c9", "z", "1.0.0", "p1", 9), &f.err) == 0);
	gl_meta_rollback(f.m);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK(gl_meta_count_artifacts(f.m, "p1", "tests", &n, &f.err) == 0);
	CHECK_INT(n, 2);
	/* a delete takes the artifact's blobs with it, once */
	CHECK(gl_meta_delete(f.m, "c1", &f.err) == 0);
	CHECK(gl_meta_delete(f.m, "c4", &f.err) == 0);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK(gl_meta_used_bytes(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 9);
	CHECK(gl_meta_used_bytes(f.m, "p2", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 0);
	CHECK(gl_meta_count_artifacts(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 2);
	CHECK(gl_meta_count_artifacts(f.m, "p2", NULL, &n, &f.err) == 0);
	CHECK_INT(n, 0);
	fx_close(&f);
}

/* The scope copies of property and tag rows follow their artifact
 * through puts, status moves and rollbacks, and the totals counted from
 * them are the rows a full listing returns. */
UNIT_TEST(scope_copies)
{
	fx f;
	json_t *af;
	char o[512];
	int64_t n;
	lq l;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	CHECK(raw_int(&f, "SELECT count(*) FROM properties") > 20);
	CHECK(raw_int(&f, "SELECT count(*) FROM tags") >= 5);
	CHECK_INT(scope_diff(&f), 0);
	CHECK_INT(raw_int(&f, "SELECT count(*) FROM tags WHERE"
			      " status = 'active' AND visibility = 'public'"),
		  1);
	CHECK(gl_meta_set_status(f.m, "a01", "active", &f.err) == 0);
	CHECK(gl_meta_get(f.m, &T, "a03", &af, &f.err) == 0);
	set(af, "visibility", json_string("public"));
	CHECK(put(f.m, &T, af, 0, &f.err) == 0);
	json_decref(af);
	CHECK_INT(scope_diff(&f), 0);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(gl_meta_set_status(f.m, "a02", "deleted", &f.err) == 0);
	gl_meta_rollback(f.m);
	CHECK_INT(scope_diff(&f), 0);
	CHECK(gl_meta_set_status(f.m, "a04", "deleted", &f.err) == 0);
	CHECK_INT(scope_diff(&f), 0);
	/* a deleted artifact leaves every total, a status filter counts the
	 * moved one, the caller's scope hides the private ones */
	CHECK_EQS(one(f.m, GF_TAGS_ALL, "tags", GL_OP_EQ, "[\"t1\"]", o,
		      sizeof o),
		  "a01");
	CHECK_EQS(one(f.m, GF_TAGS_ANY, "tags", GL_OP_IN, "[\"t1\",\"t3\"]", o,
		      sizeof o),
		  "a03,a01");
	CHECK_EQS(one(f.m, GF_PROP, "list1", GL_OP_IN, "[\"x\",\"y\",\"z\"]",
		      o, sizeof o),
		  "a02,a01");
	lq_init(&l, &T);
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"linux\"]");
	lq_f(&l, GF_BASE, "status", GL_OP_EQ, "[\"active\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &n, &f.err), "a01");
	CHECK_INT(n, 1);
	lq_free(&l);
	lq_init(&l, &T);
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"linux\"]");
	l.q.see_all = 0;
	l.q.project = "p2";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &n, &f.err), "a05,a03");
	CHECK_INT(n, 2);
	/* a page shorter than the total */
	l.q.limit = 1;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &n, &f.err), "a05");
	CHECK_INT(n, 2);
	lq_free(&l);
	/* a custom sort key drops the matches without a value from the
	 * total too (float1: a01 only among the linux ones) */
	lq_init(&l, &T);
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"linux\"]");
	lq_sort(&l, "float1", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &n, &f.err), "a01");
	CHECK_INT(n, 1);
	lq_free(&l);
	fx_close(&f);
}

/* Processes writing at once, each with its own connection (workers,
 * nodes): creates with blobs, status changes and deletes in transactions
 * and alone. The counters stay exact. */
#define CC_PROCS 4
#define CC_ROUNDS 25
static int counters_child(fx *f, int who)
{
	gl_err err;
	gl_meta *m = reopen(f, 0);
	char id[32], name[32];
	int ok = 1;

	if (!m)
		return 3;
	for (int i = 0; i < CC_ROUNDS && ok; i++) {
		const char *owner = i % 3 ? "p1" : "p2";

		snprintf(id, sizeof id, "cc-%d-%d", who, i);
		snprintf(name, sizeof name, "n%d-%d", who, i);
		ok = gl_meta_begin(m, &err) == 0 &&
		     add(m, i % 2 ? &T : &T2,
			 mkaf(id, name, "1.0.0", owner, i), &err) == 0 &&
		     blob_put(m, id, "blob1", "",
			      blob_of("saving", -1, 100 + i), &err) == 0 &&
		     gl_meta_commit(m, &err) == 0;
		if (ok && i % 2)
			ok = blob_put(m, id, "blob1", "",
				      blob_of("active", 10 + i, -1),
				      &err) == 0;
		if (ok && i % 4 == 1)
			ok = gl_meta_set_status(m, id, "active", &err) == 0;
		if (ok && i % 5 == 2) {
			snprintf(id, sizeof id, "cc-%d-%d", who, i - 1);
			ok = gl_meta_delete(m, id, &err) == 0;
		}
	}
	if (!ok)
		fprintf(stderr, "counters_child: %d %s\n", err.status,
			err.msg);
	gl_meta_close(m);
	return ok ? 0 : 3;
}

UNIT_TEST(counters_concurrent)
{
	fx f;
	pid_t pid[CC_PROCS];
	int st, bad = 0;
	int64_t n;

	FX_START(f);
	fflush(NULL);
	for (int i = 0; i < CC_PROCS; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0);
		if (pid[i] == 0)
			_exit(counters_child(&f, i));
	}
	for (int i = 0; i < CC_PROCS; i++)
		if (waitpid(pid[i], &st, 0) != pid[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			bad++;
	CHECK_INT(bad, 0);
	CHECK_INT(raw_int(&f, COUNTERS_DIFF), 0);
	CHECK(gl_meta_count_artifacts(f.m, "p1", NULL, &n, &f.err) == 0);
	CHECK_INT(n, raw_int(&f, "SELECT count(*) FROM artifacts"
				 " WHERE owner = 'p1'"));
	CHECK(n > 0);
	fx_close(&f);
}

/* A record that failed to build (a constructor's NULL) is an error, never
 * a deletion of the blob it was meant to update. */
UNIT_TEST(blob_set_unbuilt_record_refused)
{
	fx f;
	json_t *b = json_pack("{s:s, s:s}", "status", "active", "store",
			      "file");
	json_t *got;
	int rc;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("n1", "a", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(gl_meta_blob_set(f.m, "n1", "blob1", "", b, &f.err) == 0);
	json_decref(b);
	rc = gl_meta_blob_set(f.m, "n1", "blob1", "", NULL, &f.err);
	CHECK_INT(rc, -1);
	CHECK_INT(f.err.status, 500);
	CHECK(gl_meta_get(f.m, &T, "n1", &got, &f.err) == 0);
	rc = json_is_object(json_object_get(got, "blob1"));
	json_decref(got);
	CHECK(rc);
	fx_close(&f);
}

UNIT_TEST(blob_records)
{
	fx f;
	int64_t n;
	json_t *b, *got, *g;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("b1", "a", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("b2", "b", "1.0.0", "p1", 2), &f.err) == 0);
	b = json_pack("{s:s, s:I, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s,"
		      " s:s, s:s, s:s}",
		      "url", "/x", "size", (json_int_t)9007199254740993LL,
		      "md5", "m", "sha1", "s1", "sha256", "s256", "external",
		      0, "status", "active", "content_type", "text/plain",
		      "store", "file", "location", "L1", "node", "n1",
		      "verify_status", "ok", "id", "legacy");
	json_object_set_new(b, "verified_at",
			    json_integer(INT64_C(1609556645123456)));
	CHECK(gl_meta_blob_set(f.m, "b1", "blob1", "", b, &f.err) == 0);
	CHECK(gl_meta_blob_set(f.m, "b1", "folder1", "a/b.txt", b, &f.err) ==
	      0);
	CHECK(gl_meta_get(f.m, &T, "b1", &got, &f.err) == 0);
	/* every key comes back, unknown ones too */
	CHECK(json_equal(json_object_get(got, "blob1"), b));
	g = json_object_get(json_object_get(got, "folder1"), "a/b.txt");
	CHECK(json_equal(g, b));
	CHECK_INT(json_object_size(json_object_get(got, "folder1")), 1);
	json_decref(got);

	CHECK(gl_meta_blob_refs(f.m, "file", "L1", &n, &f.err) == 0);
	CHECK_INT(n, 2);
	CHECK(gl_meta_blob_refs(f.m, "database", "L1", &n, &f.err) == 0);
	CHECK_INT(n, 0);
	/* a re-upload's prev keeps the old data referenced */
	json_decref(b);
	b = json_pack("{s:s, s:b, s:s, s:s, s:{s:s, s:s, s:s}}", "status",
		      "saving", "external", 0, "store", "file", "location",
		      "L2", "prev", "status", "active", "store", "file",
		      "location", "L1");
	CHECK(gl_meta_blob_set(f.m, "b2", "blob1", "", b, &f.err) == 0);
	CHECK(gl_meta_blob_refs(f.m, "file", "L1", &n, &f.err) == 0);
	CHECK_INT(n, 3);
	CHECK(gl_meta_get(f.m, &T, "b2", &got, &f.err) == 0);
	CHECK_EQS(json_string_value(json_object_get(
			  json_object_get(json_object_get(got, "blob1"),
					  "prev"),
			  "location")),
		  "L1");
	/* API keys are always there */
	CHECK(json_is_null(
		json_object_get(json_object_get(got, "blob1"), "size")));
	json_decref(got);

	/* replace, delete */
	json_object_set_new(b, "prev", json_null());
	CHECK(gl_meta_blob_set(f.m, "b2", "blob1", "", b, &f.err) == 0);
	CHECK(gl_meta_blob_refs(f.m, "file", "L1", &n, &f.err) == 0);
	CHECK_INT(n, 2);
	CHECK(gl_meta_blob_delete(f.m, "b1", "folder1", "a/b.txt", &f.err) ==
	      0);
	CHECK(gl_meta_blob_refs(f.m, "file", "L1", &n, &f.err) == 0);
	CHECK_INT(n, 1);
	CHECK(gl_meta_get(f.m, &T, "b1", &got, &f.err) == 0);
	CHECK_INT(json_object_size(json_object_get(got, "folder1")), 0);
	json_decref(got);
	/* null removes the record */
	CHECK(gl_meta_blob_set(f.m, "b1", "blob1", "", json_null(), &f.err) ==
	      0);
	CHECK(gl_meta_blob_refs(f.m, "file", "L1", &n, &f.err) == 0);
	CHECK_INT(n, 0);
	json_decref(b);
	fx_close(&f);
}

UNIT_TEST(saving_and_external_lists)
{
	fx f;
	json_t *b, *out, *e;

	FX_START(f);
	CHECK(add(f.m, &T, mkaf("e1", "a", "1.0.0", "p1", 1), &f.err) == 0);
	CHECK(add(f.m, &T2, mkaf("e2", "b", "1.0.0", "p1", 2), &f.err) == 0);
	b = json_pack("{s:s, s:i}", "status", "saving", "reserved", 10);
	CHECK(gl_meta_blob_set(f.m, "e2", "folder1", "k", b, &f.err) == 0);
	json_decref(b);
	b = json_pack("{s:s, s:b, s:s}", "status", "active", "external", 1,
		      "url", "http://x/1");
	CHECK(gl_meta_blob_set(f.m, "e1", "blob1", "", b, &f.err) == 0);
	json_object_set_new(b, "verified_at",
			    json_string("2020-01-01T00:00:00Z"));
	json_object_set_new(b, "url", json_string("http://x/2"));
	CHECK(gl_meta_blob_set(f.m, "e1", "folder1", "new", b, &f.err) == 0);
	json_object_set_new(b, "verified_at",
			    json_string("2019-01-01T00:00:00Z"));
	json_object_set_new(b, "url", json_string("http://x/3"));
	json_object_set_new(b, "verify_status", json_string("changed"));
	CHECK(gl_meta_blob_set(f.m, "e1", "folder1", "old", b, &f.err) == 0);
	json_decref(b);

	CHECK(gl_meta_saving_blobs(f.m, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 1);
	e = json_array_get(out, 0);
	CHECK_EQS(json_string_value(json_object_get(e, "artifact_id")), "e2");
	CHECK_EQS(json_string_value(json_object_get(e, "type_name")),
		  "others");
	CHECK_EQS(json_string_value(json_object_get(e, "field")), "folder1");
	CHECK_EQS(json_string_value(json_object_get(e, "key")), "k");
	CHECK_INT(json_integer_value(
			  json_object_get(json_object_get(e, "blob"),
					  "reserved")),
		  10);
	json_decref(out);

	/* never verified first, then oldest */
	CHECK(gl_meta_external_blobs(f.m, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 3);
	CHECK_EQS(json_string_value(
			  json_object_get(json_object_get(json_array_get(out,
									 0),
							  "blob"),
					  "url")),
		  "http://x/1");
	CHECK_EQS(json_string_value(
			  json_object_get(json_object_get(json_array_get(out,
									 1),
							  "blob"),
					  "url")),
		  "http://x/3");
	CHECK_EQS(json_string_value(
			  json_object_get(json_object_get(json_array_get(out,
									 1),
							  "blob"),
					  "verify_status")),
		  "changed");
	/* accepted as ISO-8601 or microseconds, returned in microseconds */
	CHECK_INT(json_integer_value(
			  json_object_get(json_object_get(json_array_get(out,
									 1),
							  "blob"),
					  "verified_at")),
		  INT64_C(1546300800000000));
	CHECK_EQS(json_string_value(
			  json_object_get(json_array_get(out, 2), "key")),
		  "new");
	json_decref(out);
	CHECK(gl_meta_external_blobs(f.m, 1, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 1);
	json_decref(out);
	fx_close(&f);
}

UNIT_TEST(gc_queue)
{
	fx f;
	json_t *out;

	FX_START(f);
	CHECK(gl_meta_gc_push(f.m, "file", "L1", &f.err) == 0);
	CHECK(gl_meta_gc_push(f.m, "database", "L2", &f.err) == 0);
	CHECK(gl_meta_gc_push(f.m, "file", "L1", &f.err) == 0); /* once */
	CHECK(gl_meta_gc_list(f.m, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 2);
	CHECK_EQS(json_string_value(
			  json_object_get(json_array_get(out, 0), "location")),
		  "L1");
	CHECK_EQS(json_string_value(
			  json_object_get(json_array_get(out, 1), "store")),
		  "database");
	json_decref(out);
	CHECK(gl_meta_gc_list(f.m, 1, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 1);
	json_decref(out);
	CHECK(gl_meta_gc_pop(f.m, "file", "L1", &f.err) == 0);
	CHECK(gl_meta_gc_list(f.m, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 1);
	CHECK_EQS(json_string_value(
			  json_object_get(json_array_get(out, 0), "location")),
		  "L2");
	json_decref(out);
	fx_close(&f);
}

static const char *cq_str(const json_t *list, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(list, i), k));
}

static int64_t cq_int(const json_t *list, size_t i, const char *k)
{
	return json_integer_value(json_object_get(json_array_get(list, i), k));
}

UNIT_TEST(cleanup_queue)
{
	fx f;
	json_t *out;

	FX_START(f);
	CHECK(gl_meta_cleanup_put(f.m, "s3_abort", "objects/a", "id-1", 0, 100,
				  NULL, &f.err) == 0);
	CHECK(gl_meta_cleanup_put(f.m, "s3_delete", "objects/b", "", 0, 50,
				  NULL, &f.err) == 0);
	CHECK(gl_meta_cleanup_put(f.m, "s3_abort", "objects/a", "id-2", 0, 300,
				  NULL, &f.err) == 0);
	/* due by time, soonest first */
	CHECK(gl_meta_cleanup_due(f.m, 99, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 1);
	CHECK_EQS(cq_str(out, 0, "kind"), "s3_delete");
	CHECK_EQS(cq_str(out, 0, "arg"), "");
	json_decref(out);
	CHECK(gl_meta_cleanup_due(f.m, 1000, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 3);
	CHECK_EQS(cq_str(out, 1, "arg"), "id-1");
	CHECK_EQS(cq_str(out, 2, "arg"), "id-2");
	CHECK_INT(cq_int(out, 1, "attempts"), 0);
	CHECK(cq_int(out, 1, "queued_at") > 0);
	CHECK(json_is_null(json_object_get(json_array_get(out, 1), "error")));
	json_decref(out);
	CHECK(gl_meta_cleanup_due(f.m, 1000, 2, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 2);
	json_decref(out);
	/* a claim is a test-and-set of next_at: the second one loses */
	CHECK_INT(gl_meta_cleanup_claim(f.m, "s3_abort", "objects/a", "id-1",
					100, 5000, &f.err),
		  1);
	CHECK_INT(gl_meta_cleanup_claim(f.m, "s3_abort", "objects/a", "id-1",
					100, 6000, &f.err),
		  0);
	CHECK_INT(gl_meta_cleanup_claim(f.m, "s3_abort", "objects/none", "x",
					100, 6000, &f.err),
		  0);
	/* queued again while queued: nothing changes */
	CHECK(gl_meta_cleanup_put(f.m, "s3_abort", "objects/a", "id-1", 0, 1,
				  NULL, &f.err) == 0);
	CHECK(gl_meta_cleanup_due(f.m, 10, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 0);
	json_decref(out);
	/* a failed try: attempts and error recorded, queued_at kept */
	CHECK(gl_meta_cleanup_put(f.m, "s3_abort", "objects/a", "id-1", 3, 200,
				  "S3 unavailable", &f.err) == 0);
	CHECK(gl_meta_cleanup_due(f.m, 250, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 2);
	CHECK_EQS(cq_str(out, 1, "target"), "objects/a");
	CHECK_INT(cq_int(out, 1, "attempts"), 3);
	CHECK_INT(cq_int(out, 1, "next_at"), 200);
	CHECK_EQS(cq_str(out, 1, "error"), "S3 unavailable");
	json_decref(out);
	/* inside a transaction, and rolled back with it */
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	CHECK(gl_meta_cleanup_del(f.m, "s3_delete", "objects/b", "", &f.err) ==
	      0);
	gl_meta_rollback(f.m);
	CHECK(gl_meta_cleanup_due(f.m, 1000, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 3);
	json_decref(out);
	CHECK(gl_meta_cleanup_del(f.m, "s3_delete", "objects/b", "", &f.err) ==
	      0);
	CHECK(gl_meta_cleanup_del(f.m, "s3_delete", "objects/b", "", &f.err) ==
	      0); /* gone already: fine */
	CHECK(gl_meta_cleanup_due(f.m, INT64_MAX, 10, &out, &f.err) == 0);
	CHECK_INT(json_array_size(out), 2);
	CHECK_EQS(cq_str(out, 0, "arg"), "id-1");
	json_decref(out);
	fx_close(&f);
}

UNIT_TEST(quotas)
{
	fx f;
	json_t *in, *out, *want;

	FX_START(f);
	in = json_loads("[{\"project_id\": \"p1\", \"project_quotas\": ["
			"{\"quota_name\": \"max_artifact_number\","
			" \"quota_value\": 10},"
			"{\"quota_name\": \"max_uploaded_data:tests\","
			" \"quota_value\": 9007199254740993}]},"
			"{\"project_id\": \"p2\", \"project_quotas\": ["
			"{\"quota_name\": \"max_uploaded_data\","
			" \"quota_value\": -1}]}]",
			0, NULL);
	CHECK(gl_meta_quotas_set(f.m, in, &f.err) == 0);
	json_decref(in);
	CHECK(gl_meta_quotas_get(f.m, NULL, &out, &f.err) == 0);
	want = json_loads("{\"p1\": {\"max_artifact_number\": 10,"
			  " \"max_uploaded_data:tests\": 9007199254740993},"
			  " \"p2\": {\"max_uploaded_data\": -1}}",
			  0, NULL);
	CHECK(json_equal(out, want));
	json_decref(out);
	json_decref(want);

	/* every quota of a listed project is replaced; others stay */
	in = json_loads("[{\"project_id\": \"p1\", \"project_quotas\": ["
			"{\"quota_name\": \"max_uploaded_data\","
			" \"quota_value\": 5}]}]",
			0, NULL);
	CHECK(gl_meta_quotas_set(f.m, in, &f.err) == 0);
	json_decref(in);
	CHECK(gl_meta_quotas_get(f.m, "p1", &out, &f.err) == 0);
	want = json_loads("{\"p1\": {\"max_uploaded_data\": 5}}", 0, NULL);
	CHECK(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	CHECK(gl_meta_quotas_get(f.m, "p2", &out, &f.err) == 0);
	CHECK_INT(json_integer_value(
			  json_object_get(json_object_get(out, "p2"),
					  "max_uploaded_data")),
		  -1);
	json_decref(out);
	CHECK(gl_meta_quotas_get(f.m, "p3", &out, &f.err) == 0);
	CHECK_INT(json_object_size(json_object_get(out, "p3")), 0);
	json_decref(out);
	/* an empty list of quotas clears the project */
	in = json_loads("[{\"project_id\": \"p2\", \"project_quotas\": []}]",
			0, NULL);
	CHECK(gl_meta_quotas_set(f.m, in, &f.err) == 0);
	json_decref(in);
	CHECK(gl_meta_quotas_get(f.m, NULL, &out, &f.err) == 0);
	CHECK(json_object_get(out, "p2") == NULL);
	json_decref(out);
	fx_close(&f);
}

UNIT_TEST(database_store)
{
	fx f;
	char p[160];
	const int64_t size = 3 * 1024 * 1024 + 17;
	unsigned char *data = malloc((size_t)size), *buf = malloc(1 << 20);
	int fd;
	int64_t off, n;

	CHECK(data && buf);
	FX_START(f);
	for (int64_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 12));
	snprintf(p, sizeof p, "%s/blob.bin", f.dir);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, (size_t)size) == size);
	/* the position does not matter: the file is read from 0 */
	CHECK(gl_meta_data_put_file(f.m, "sha/abc", fd, size, &f.err) == 0);
	CHECK_INT(gl_meta_data_exists(f.m, "sha/abc", &f.err), 1);
	CHECK_INT(gl_meta_data_exists(f.m, "sha/none", &f.err), 0);

	/* read back in odd pieces */
	for (off = 0; off < size; off += n) {
		n = gl_meta_data_read(f.m, "sha/abc", off, buf, 700001,
				      &f.err);
		CHECK(n > 0);
		CHECK(memcmp(buf, data + off, (size_t)n) == 0);
	}
	CHECK_INT(off, size);
	CHECK_INT(gl_meta_data_read(f.m, "sha/abc", size, buf, 10, &f.err), 0);
	CHECK_INT(gl_meta_data_read(f.m, "sha/abc", size - 3, buf, 10, &f.err),
		  3);
	CHECK(memcmp(buf, data + size - 3, 3) == 0);

	/* a file shorter than announced fails and leaves nothing */
	CHECK(gl_meta_data_put_file(f.m, "sha/short", fd, size + 1, &f.err) ==
	      -1);
	CHECK_INT(gl_meta_data_exists(f.m, "sha/short", &f.err), 0);
	close(fd);

	CHECK(gl_meta_data_delete(f.m, "sha/abc", &f.err) == 0);
	CHECK_INT(gl_meta_data_exists(f.m, "sha/abc", &f.err), 0);
	CHECK(gl_meta_data_read(f.m, "sha/abc", 0, buf, 10, &f.err) == -1);
	CHECK_INT(f.err.status, 404);
	free(data);
	free(buf);
	fx_close(&f);
}

UNIT_TEST(list_base_filters)
{
	fx f;
	char o[512];
	lq l;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	/* deleted a06 is never listed */
	lq_init(&l, &T);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a05,a04,a03,a02,a01");
	CHECK_EQS(one(f.m, GF_BASE, "name", GL_OP_EQ, "[\"alpha\"]", o,
		      sizeof o),
		  "a03,a02,a01");
	CHECK_EQS(one(f.m, GF_BASE, "name", GL_OP_NEQ, "[\"alpha\"]", o,
		      sizeof o),
		  "a07,a05,a04");
	CHECK_EQS(one(f.m, GF_BASE, "name", GL_OP_IN, "[\"beta\",\"gamma\"]",
		      o, sizeof o),
		  "a07,a05,a04");
	CHECK_EQS(one(f.m, GF_BASE, "name", GL_OP_LIKE, "[\"%et%\"]", o,
		      sizeof o),
		  "a05,a04");
	CHECK_EQS(one(f.m, GF_BASE, "status", GL_OP_EQ, "[\"deleted\"]", o,
		      sizeof o),
		  "");
	CHECK_EQS(one(f.m, GF_BASE, "owner", GL_OP_EQ, "[\"p2\"]", o,
		      sizeof o),
		  "a05,a04");
	CHECK_EQS(one(f.m, GF_BASE, "id", GL_OP_IN, "[\"a01\",\"a07\"]", o,
		      sizeof o),
		  "a07,a01");
	/* datetimes: microseconds, or ISO strings */
	CHECK_EQS(one(f.m, GF_BASE, "created_at", GL_OP_GT,
		      "[1500000004000000]", o, sizeof o),
		  "a07,a05");
	CHECK_EQS(one(f.m, GF_BASE, "created_at", GL_OP_LT,
		      "[\"2017-07-14T02:40:03Z\"]", o, sizeof o),
		  "a02,a01");
	/* versions: semver order (releases above their prereleases) */
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_EQ, "[\"2.0.0\"]", o,
		      sizeof o),
		  "a02");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_GTE, "[\"2.0.0-beta\"]",
		      o, sizeof o),
		  "a03,a02");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_LT, "[\"2.0.0\"]", o,
		      sizeof o),
		  "a07,a05,a04,a03,a01");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_GT, "[\"1.0.0\"]", o,
		      sizeof o),
		  "a05,a03,a02");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_LTE, "[\"0.2.0\"]", o,
		      sizeof o),
		  "a07");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_IN,
		      "[\"0.2.0\",\"1.1.0\"]", o, sizeof o),
		  "a07,a05");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_NEQ, "[\"1.0.0\"]", o,
		      sizeof o),
		  "a07,a05,a03,a02");
	CHECK_EQS(one(f.m, GF_BASE, "version", GL_OP_LIKE, "[\"2.%\"]", o,
		      sizeof o),
		  "a03,a02");
	fx_close(&f);
}

UNIT_TEST(list_property_filters)
{
	fx f;
	char o[512];

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	/* integers, every op */
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_EQ, "[20]", o, sizeof o),
		  "a02");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_NEQ, "[20]", o, sizeof o),
		  "a07,a05,a04,a03,a01");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_LT, "[30]", o, sizeof o),
		  "a02,a01");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_LTE, "[30]", o, sizeof o),
		  "a03,a02,a01");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_GT, "[40]", o, sizeof o),
		  "a07,a05");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_GTE, "[40]", o, sizeof o),
		  "a07,a05,a04");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_IN, "[10,50,60]", o,
		      sizeof o),
		  "a05,a01");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_LIKE, "[\"%0\"]", o,
		      sizeof o),
		  "a07,a05,a04,a03,a02,a01");
	/* floats; neq excludes artifacts without the property */
	CHECK_EQS(one(f.m, GF_PROP, "float1", GL_OP_GT, "[2.0]", o, sizeof o),
		  "a04,a02");
	CHECK_EQS(one(f.m, GF_PROP, "float1", GL_OP_NEQ, "[2.5]", o, sizeof o),
		  "a04,a01");
	CHECK_EQS(one(f.m, GF_PROP, "float1", GL_OP_EQ, "[4.5]", o, sizeof o),
		  "a04");
	/* booleans */
	CHECK_EQS(one(f.m, GF_PROP, "bool1", GL_OP_EQ, "[true]", o, sizeof o),
		  "a03,a01");
	CHECK_EQS(one(f.m, GF_PROP, "bool1", GL_OP_EQ, "[false]", o, sizeof o),
		  "a02");
	CHECK_EQS(one(f.m, GF_PROP, "bool1", GL_OP_NEQ, "[true]", o, sizeof o),
		  "a02");
	/* strings; LIKE takes the user's wildcards (ASCII case-insensitive) */
	CHECK_EQS(one(f.m, GF_PROP, "str1", GL_OP_EQ, "[\"linux\"]", o,
		      sizeof o),
		  "a05,a03,a01");
	CHECK_EQS(one(f.m, GF_PROP, "str1", GL_OP_LIKE, "[\"lin%\"]", o,
		      sizeof o),
		  "a07,a05,a03,a01");
	CHECK_EQS(one(f.m, GF_PROP, "str1", GL_OP_LIKE, "[\"_ac\"]", o,
		      sizeof o),
		  "a04");
	CHECK_EQS(one(f.m, GF_PROP, "str1", GL_OP_IN, "[\"mac\",\"windows\"]",
		      o, sizeof o),
		  "a04,a02");
	/* a string that looks like a number stays a string */
	CHECK_EQS(one(f.m, GF_PROP, "str1", GL_OP_EQ, "[\"10\"]", o, sizeof o),
		  "");
	/* list elements: any element */
	CHECK_EQS(one(f.m, GF_PROP, "list1", GL_OP_EQ, "[\"y\"]", o, sizeof o),
		  "a02,a01");
	CHECK_EQS(one(f.m, GF_PROP, "list1", GL_OP_IN, "[\"x\",\"z\"]", o,
		      sizeof o),
		  "a04,a01");
	CHECK_EQS(one(f.m, GF_PROP, "list1", GL_OP_NEQ, "[\"y\"]", o,
		      sizeof o),
		  "a04,a01");
	/* dict keys: eq (has key), in (any of keys) */
	CHECK_EQS(one(f.m, GF_DICT_KEY, "dict1", GL_OP_EQ, "[\"k2\"]", o,
		      sizeof o),
		  "a04,a01");
	CHECK_EQS(one(f.m, GF_DICT_KEY, "dict1", GL_OP_IN, "[\"k1\",\"zz\"]",
		      o, sizeof o),
		  "a02,a01");
	CHECK(strncmp(one(f.m, GF_DICT_KEY, "dict1", GL_OP_NEQ, "[\"k1\"]", o,
			  sizeof o),
		      "ERR 400", 7) == 0);
	/* dict entries */
	CHECK_EQS(dictval(f.m, "k1", GL_OP_EQ, "[5]", o, sizeof o), "a02");
	CHECK_EQS(dictval(f.m, "k1", GL_OP_GTE, "[1]", o, sizeof o),
		  "a02,a01");
	CHECK_EQS(dictval(f.m, "k2", GL_OP_LT, "[7]", o, sizeof o), "a01");
	CHECK_EQS(dictval(f.m, "k2", GL_OP_IN, "[2,7]", o, sizeof o),
		  "a04,a01");
	CHECK_EQS(dictval(f.m, "k1", GL_OP_NEQ, "[5]", o, sizeof o), "a01");
	/* base metadata dict */
	CHECK_EQS(one(f.m, GF_DICT_KEY, "metadata", GL_OP_EQ, "[\"m\"]", o,
		      sizeof o),
		  "a01");
	fx_close(&f);
}

/* Numbers compare by value whatever their JSON kind (integer filter on a
 * Float, real filter on an Integer, int64 extremes), and LIKE sees a
 * number as its text - the same on every backend. */
UNIT_TEST(list_numeric_kinds)
{
	fx f;
	char o[512];
	json_t *af;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	CHECK_EQS(one(f.m, GF_PROP, "float1", GL_OP_GT, "[2]", o, sizeof o),
		  "a04,a02");
	CHECK_EQS(one(f.m, GF_PROP, "float1", GL_OP_IN, "[1.5, 4]", o,
		      sizeof o),
		  "a01");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_LT, "[25.5]", o, sizeof o),
		  "a02,a01");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_EQ, "[20.0]", o, sizeof o),
		  "a02");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_LIKE, "[\"1%\"]", o,
		      sizeof o),
		  "a01");
	CHECK_EQS(one(f.m, GF_PROP, "float1", GL_OP_LIKE, "[\"%.5\"]", o,
		      sizeof o),
		  "a04,a02,a01");
	af = mkaf("a08", "delta", "1.0.0", "p1", 8);
	set(af, "int1", json_integer(INT64_MAX));
	CHECK(add(f.m, &T, af, &f.err) == 0);
	af = mkaf("a09", "delta", "1.0.0", "p1", 9);
	set(af, "int1", json_integer(INT64_MAX - 1));
	CHECK(add(f.m, &T, af, &f.err) == 0);
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_GT, "[9223372036854775806]",
		      o, sizeof o),
		  "a08");
	CHECK_EQS(one(f.m, GF_PROP, "int1", GL_OP_EQ, "[9223372036854775806]",
		      o, sizeof o),
		  "a09");
	fx_close(&f);
}

UNIT_TEST(list_or_group_and_tags)
{
	fx f;
	char o[512];
	lq l;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	CHECK_EQS(one(f.m, GF_TAGS_ALL, NULL, GL_OP_EQ, "[\"t1\",\"t2\"]", o,
		      sizeof o),
		  "a01");
	CHECK_EQS(one(f.m, GF_TAGS_ALL, NULL, GL_OP_EQ, "[\"t2\"]", o,
		      sizeof o),
		  "a02,a01");
	CHECK_EQS(one(f.m, GF_TAGS_ANY, NULL, GL_OP_IN, "[\"t1\",\"t3\"]", o,
		      sizeof o),
		  "a04,a03,a01");
	CHECK_EQS(one(f.m, GF_TAGS_ALL, NULL, GL_OP_EQ, "[\"t9\"]", o,
		      sizeof o),
		  "");

	/* (int1 = 10 OR str1 = mac OR tags has t3) AND name != beta */
	lq_init(&l, &T);
	lq_f(&l, GF_PROP, "int1", GL_OP_EQ, "[10]")->or_group = 1;
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"mac\"]")->or_group = 1;
	lq_f(&l, GF_TAGS_ANY, NULL, GL_OP_IN, "[\"t3\"]")->or_group = 1;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a04,a03,a01");
	lq_f(&l, GF_BASE, "name", GL_OP_NEQ, "[\"beta\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err), "a03,a01");
	lq_free(&l);

	/* several AND filters of every kind together */
	lq_init(&l, &T);
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"linux\"]");
	lq_f(&l, GF_TAGS_ANY, NULL, GL_OP_IN, "[\"t1\",\"t3\"]");
	lq_f(&l, GF_BASE, "name", GL_OP_EQ, "[\"alpha\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err), "a03,a01");
	lq_f(&l, GF_DICT_KEY, "dict1", GL_OP_EQ, "[\"k1\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err), "a01");
	lq_free(&l);
	fx_close(&f);
}

UNIT_TEST(list_sorting)
{
	fx f;
	char o[512];
	lq l;
	int64_t total;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	lq_init(&l, &T);
	lq_sort(&l, "name", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a03,a02,a01,a05,a04,a07");
	lq_sort(&l, "name", 1);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a05,a04,a03,a02,a01");
	/* version: prefix then suffix */
	lq_sort(&l, "version", 1);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a02,a03,a05,a04,a01,a07");
	lq_sort(&l, "version", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a04,a01,a05,a03,a02");
	/* custom keys: artifacts without the value drop out (and from the
	 * total) */
	lq_sort(&l, "float1", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "a01,a02,a04");
	CHECK_INT(total, 3);
	lq_sort(&l, "int1", 1);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "a07,a05,a04,a03,a02,a01");
	CHECK_INT(total, 6);
	lq_sort(&l, "str1", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a05,a03,a01,a04,a02");
	/* a nullable base column: NULLs are the smallest values */
	lq_sort(&l, "activated_at", 1);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a05,a04,a03,a02,a01");
	lq_free(&l);
	fx_close(&f);
}

/* Page through q with limit n, joining the pages; also checks that every
 * page but the last is full. */
static const char *paged(gl_meta *m, gl_list_query *q, int n, char *out,
			 size_t size, gl_err *err)
{
	char last[64] = "", page[2048];
	size_t len = 0;

	out[0] = '\0';
	q->limit = n;
	for (int guard = 0; guard < 1000; guard++) {
		q->marker = last[0] ? last : NULL;
		run_ids(m, q, page, sizeof page, NULL, err);
		if (strncmp(page, "ERR", 3) == 0) {
			snprintf(out, size, "%s", page);
			break;
		}
		if (!page[0])
			break;
		len += (size_t)snprintf(out + len, size - len, "%s%s",
					len ? "," : "", page);
		snprintf(last, sizeof last, "%.63s",
			 strrchr(page, ',') ? strrchr(page, ',') + 1 : page);
	}
	q->marker = NULL;
	q->limit = 10000;
	return out;
}

UNIT_TEST(list_pagination)
{
	fx f;
	char want[4096], got[4096];
	lq l;
	char id[16];
	int64_t total;

	FX_START(f);
	/* 30 artifacts, created in 4 distinct seconds (ties), int1 with
	 * duplicates, some without int1, activated_at partly NULL */
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	for (int i = 0; i < 30; i++) {
		json_t *af;

		snprintf(id, sizeof id, "p%02d", (i * 7) % 30);
		af = mkaf(id, i % 3 ? "n1" : "n2", "1.0.0", "p1", i % 4);
		if (i % 5)
			set(af, "int1", json_integer(i % 6));
		if (i % 2)
			set(af, "activated_at",
			    json_integer((int64_t)(1600000000 + i % 3) *
					 1000000));
		CHECK(add(f.m, &T, af, &f.err) == 0);
	}
	CHECK(gl_meta_commit(f.m, &f.err) == 0);

	static const struct {
		const char *key;
		int desc;
	} sorts[] = {
		{ "created_at", 1 },   { "created_at", 0 },   { "int1", 1 },
		{ "int1", 0 },         { "name", 0 },         { "name", 1 },
		{ "activated_at", 1 }, { "activated_at", 0 }, { "version", 1 },
		{ "id", 1 },
	};
	lq_init(&l, &T);
	for (size_t s = 0; s < sizeof sorts / sizeof sorts[0]; s++) {
		lq_sort(&l, sorts[s].key, sorts[s].desc);
		l.q.limit = 10000;
		run_ids(f.m, &l.q, want, sizeof want, &total, &f.err);
		CHECK(strncmp(want, "ERR", 3) != 0);
		for (int n = 1; n <= 7; n += 3) {
			paged(f.m, &l.q, n, got, sizeof got, &f.err);
			if (strcmp(got, want) != 0)
				fprintf(stderr,
					"sort %s:%d limit %d\n"
					"  want %s\n  got  %s\n",
					sorts[s].key, sorts[s].desc, n, want,
					got);
			CHECK_EQS(got, want);
		}
		/* the whole set, each id once */
		CHECK_INT(total, strcmp(sorts[s].key, "int1") ? 30 : 24);
	}
	/* with a filter and latest too */
	lq_sort(&l, "int1", 0);
	lq_f(&l, GF_PROP, "int1", GL_OP_GTE, "[2]");
	l.q.latest = 1;
	run_ids(f.m, &l.q, want, sizeof want, NULL, &f.err);
	paged(f.m, &l.q, 4, got, sizeof got, &f.err);
	CHECK_EQS(got, want);
	lq_free(&l);

	/* an unknown marker */
	lq_init(&l, &T);
	l.q.marker = "nope";
	run_ids(f.m, &l.q, got, sizeof got, NULL, &f.err);
	CHECK(strncmp(got, "ERR 404", 7) == 0);
	fx_close(&f);
}

UNIT_TEST(list_latest)
{
	fx f;
	char o[512];
	lq l;
	int64_t total;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	lq_init(&l, &T);
	l.q.latest = 1;
	/* alpha: 2.0.0 beats 2.0.0-beta; beta: 1.1.0; gamma: 0.2.0 */
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "a07,a05,a02");
	CHECK_INT(total, 3);
	/* filters are applied before picking the winner */
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"linux\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "a05,a03");
	CHECK_INT(total, 2);
	lq_free(&l);
	lq_init(&l, &T);
	l.q.latest = 1;
	lq_f(&l, GF_BASE, "status", GL_OP_EQ, "[\"drafted\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a05,a03");
	lq_free(&l);
	/* and so is visibility: p1 does not see p2's private beta 1.1.0 */
	lq_init(&l, &T);
	l.q.latest = 1;
	l.q.see_all = 0;
	l.q.project = "p1";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a07,a04,a02");
	/* ties: equal highest versions are all kept */
	CHECK(add(f.m, &T,
		  set(mkaf("a08", "beta", "1.0.0", "p1", 8), "int1",
		      json_integer(1)),
		  &f.err) == 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "a08,a07,a04,a02");
	/* with a sort and pages */
	lq_sort(&l, "name", 0);
	l.q.limit = 2;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "a02,a08");
	CHECK_INT(total, 4);
	l.q.marker = "a08";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err), "a04,a07");
	lq_free(&l);

	/* the all view groups by name across types */
	CHECK(add(f.m, &T2, mkaf("o01", "alpha", "3.0.0", "p1", 9), &f.err) ==
	      0);
	lq_init(&l, &TALL);
	l.q.latest = 1;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "o01,a07,a05");
	CHECK_INT(total, 3);
	lq_free(&l);
	fx_close(&f);
}

UNIT_TEST(list_visibility_and_counts)
{
	fx f;
	char o[512];
	lq l;
	int64_t total;
	json_t *arr, *af;

	FX_START(f);
	CHECK(fill(f.m, &f.err) == 0);
	CHECK(add(f.m, &T2, mkaf("o01", "other", "1.0.0", "p1", 9), &f.err) ==
	      0);
	lq_init(&l, &T);
	l.q.see_all = 0;
	l.q.project = "p1";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "a07,a04,a03,a02,a01");
	CHECK_INT(total, 5);
	l.q.project = "p2";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "a07,a05,a04");
	l.q.public_only = 1;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "a07,a04");
	CHECK_INT(total, 2);

	/* limit and total; limit 0: empty page, total still counted */
	lq_init(&l, &T);
	l.q.limit = 2;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "a07,a05");
	CHECK_INT(total, 6);
	l.q.marker = "a05";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "a04,a03");
	CHECK_INT(total, 6);
	l.q.marker = NULL;
	l.q.limit = 0;
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "");
	CHECK_INT(total, 6);

	/* the all view: every type, base fields + type_name only */
	lq_init(&l, &TALL);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "o01,a07,a05,a04,a03,a02,a01");
	lq_f(&l, GF_BASE, "type_name", GL_OP_EQ, "[\"others\"]");
	CHECK(gl_meta_list(f.m, &l.q, &arr, &total, &f.err) == 0);
	CHECK_INT(json_array_size(arr), 1);
	af = json_array_get(arr, 0);
	CHECK_EQS(json_string_value(json_object_get(af, "type_name")),
		  "others");
	CHECK(json_object_get(af, "int1") == NULL);
	CHECK(json_object_get(af, "blob1") == NULL);
	json_decref(arr);
	lq_free(&l);

	/* listed artifacts carry their blobs, as gl_meta_get */
	{
		json_t *b = json_pack("{s:s, s:i}", "status", "active", "size",
				      3);
		json_t *g;
		CHECK(gl_meta_blob_set(f.m, "a02", "blob1", "", b, &f.err) ==
		      0);
		CHECK(gl_meta_blob_set(f.m, "a02", "folder1", "x", b,
				       &f.err) == 0);
		json_decref(b);
		lq_init(&l, &T);
		lq_f(&l, GF_BASE, "id", GL_OP_EQ, "[\"a02\"]");
		CHECK(gl_meta_list(f.m, &l.q, &arr, NULL, &f.err) == 0);
		CHECK(gl_meta_get(f.m, &T, "a02", &g, &f.err) == 0);
		CHECK(json_equal(json_array_get(arr, 0), g));
		CHECK_INT(json_integer_value(
				  json_object_get(json_object_get(g, "blob1"),
						  "size")),
			  3);
		json_decref(g);
		json_decref(arr);
		lq_free(&l);
	}
	fx_close(&f);
}

/* Enough rows that a common value is over the drive threshold (EXISTS walk
 * of the sort index) and a rare one under it (driven from its rows): both
 * plans must give the same answers. */
UNIT_TEST(list_large_both_plans)
{
	fx f;
	char o[512], want[512], id[16];
	lq l;
	int64_t total;
	const int N = 1700;

	FX_START(f);
	CHECK(gl_meta_begin(f.m, &f.err) == 0);
	for (int i = 0; i < N; i++) {
		json_t *af;

		snprintf(id, sizeof id, "x%04d", i);
		af = mkaf(id, i % 10 ? "common" : "tenth", "1.0.0",
			  i % 2 ? "p1" : "p2", i);
		set(af, "str1", json_string(i % 100 == 7 ? "rare" : "common"));
		set(af, "int1", json_integer(i));
		set(af, "tags", json_pack("[s]", i % 100 == 7 ? "r" : "c"));
		CHECK(add(f.m, &T, af, &f.err) == 0);
	}
	CHECK(gl_meta_commit(f.m, &f.err) == 0);

	/* common: EXISTS plan */
	lq_init(&l, &T);
	l.q.limit = 3;
	lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"common\"]");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "x1699,x1698,x1697");
	CHECK_INT(total, N - 17);
	l.q.marker = "x1697";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "x1696,x1695,x1694");
	lq_free(&l);
	/* rare: driven, by created_at and by custom sorts (PostgreSQL pages
	 * those from the rare rows too): int1 descending; str1, all tied,
	 * then created_at desc. The same order each time, with markers, then
	 * with a second filter and a scope. */
	for (int by = 0; by < 3; by++) {
		lq_init(&l, &T);
		l.q.limit = 3;
		if (by < 2)
			lq_f(&l, GF_PROP, "str1", GL_OP_EQ, "[\"rare\"]");
		else
			lq_f(&l, GF_TAGS_ALL, NULL, GL_OP_EQ, "[\"r\"]");
		if (by)
			lq_sort(&l, by == 1 ? "int1" : "str1", by == 1);
		CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
			  "x1607,x1507,x1407");
		CHECK_INT(total, 17);
		l.q.marker = "x1407";
		CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
			  "x1307,x1207,x1107");
		l.q.marker = NULL;
		l.q.see_all = 0;
		l.q.project = "p1";
		if (by < 2)
			lq_f(&l, GF_TAGS_ALL, NULL, GL_OP_EQ, "[\"r\"]");
		CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
			  "x1607,x1507,x1407");
		CHECK_INT(total, 17); /* 7 mod 100 is odd: all p1 */
		l.q.project = "p2";
		CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), "");
		CHECK_INT(total, 0);
		lq_free(&l);
	}
	/* range, driven (100 rows) vs walked (1600), same order */
	lq_init(&l, &T);
	l.q.limit = 2;
	lq_f(&l, GF_PROP, "int1", GL_OP_LT, "[100]");
	lq_sort(&l, "int1", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "x0000,x0001");
	CHECK_INT(total, 100);
	lq_free(&l);
	lq_init(&l, &T);
	l.q.limit = 2;
	lq_f(&l, GF_PROP, "int1", GL_OP_GTE, "[100]");
	lq_sort(&l, "int1", 0);
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err),
		  "x0100,x0101");
	CHECK_INT(total, N - 100);
	l.q.marker = "x0101";
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, NULL, &f.err),
		  "x0102,x0103");
	lq_free(&l);
	/* latest over many names */
	lq_init(&l, &T);
	l.q.latest = 1;
	l.q.limit = 2;
	lq_f(&l, GF_BASE, "name", GL_OP_EQ, "[\"tenth\"]");
	snprintf(want, sizeof want, "x1690,x1680");
	CHECK_EQS(run_ids(f.m, &l.q, o, sizeof o, &total, &f.err), want);
	CHECK_INT(total, N / 10); /* all at 1.0.0: every one ties */
	lq_free(&l);
	fx_close(&f);
}

/* ---- damaged rows ------------------------------------------------------------
 * Reading is total: rows damaged beside the interface (by hand, or stored
 * before a check existed) never fail a get or a listing, and the artifact
 * can still be deleted. These damages fit both stores; test_meta.c adds
 * what only sqlite can hold (text that is not UTF-8, NUL bytes). */
UNIT_TEST(read_damaged_rows)
{
	fx f;
	json_t *got, *b, *arr, *af;
	char ids[256];
	int64_t total = 0;
	lq l;
	size_t i;

	FX_START(f);
	CHECK(add(f.m, &T,
		  set(mkaf("d1", "a", "1.0.0", "p1", 1), "str1",
		      json_string("s")),
		  &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("d2", "b", "1.0.0", "p1", 2), &f.err) == 0);
	CHECK(add(f.m, &T, mkaf("d3", "c", "1.0.0", "p1", 3), &f.err) == 0);
	b = json_pack("{s:s, s:I, s:s, s:s, s:s}", "url", "/x", "size",
		      (json_int_t)3, "status", "active", "store", "file",
		      "location", "L9");
	CHECK(gl_meta_blob_set(f.m, "d1", "blob1", "", b, &f.err) == 0);
	json_decref(b);
	CHECK(raw_sql(&f,
		      "UPDATE artifacts SET doc = 'not json' WHERE id = 'd1';"
		      "UPDATE artifacts SET doc = '{\"str1\": \"x\\u0000y\","
		      " \"tags\": [\"t\\u0000\"]}' WHERE id = 'd2';"
		      "UPDATE artifacts SET doc = '[1, 2]',"
		      " created_at = 9223372036854775807 WHERE id = 'd3';"
		      "UPDATE blobs SET prev = 'garbage', extra = '{bad'"
		      " WHERE artifact_id = 'd1';") == 0);

	/* a lost document reads as a new one; the blob record is there */
	CHECK(gl_meta_get(f.m, &T, "d1", &got, &f.err) == 0);
	CHECK(json_is_null(json_object_get(got, "str1")));
	CHECK_EQS(json_string_value(json_object_get(got, "name")), "a");
	b = json_object_get(got, "blob1");
	CHECK_EQS(json_string_value(json_object_get(b, "location")), "L9");
	CHECK(!json_object_get(b, "prev"));
	json_decref(got);
	/* what was stored reads back as it was, U+0000 included */
	CHECK(gl_meta_get(f.m, &T, "d2", &got, &f.err) == 0);
	CHECK_INT(json_string_length(json_object_get(got, "str1")), 3);
	CHECK(!memcmp(json_string_value(json_object_get(got, "str1")), "x\0y",
		      3));
	json_decref(got);
	/* a timestamp out of range reads as null */
	CHECK(gl_meta_get(f.m, &T, "d3", &got, &f.err) == 0);
	CHECK(json_is_null(json_object_get(got, "created_at")));
	json_decref(got);

	/* listings: the typed view and the all view */
	lq_init(&l, &T);
	CHECK_EQS(run_ids(f.m, &l.q, ids, sizeof ids, &total, &f.err),
		  "d3,d2,d1");
	CHECK_INT(total, 3);
	lq_init(&l, &TALL);
	CHECK(gl_meta_list(f.m, &l.q, &arr, &total, &f.err) == 0);
	CHECK_INT(json_array_size(arr), 3);
	json_array_foreach(arr, i, af)
		if (!strcmp(json_string_value(json_object_get(af, "id")),
			    "d1"))
			CHECK(json_is_array(json_object_get(af, "tags")) &&
			      json_is_object(json_object_get(af, "metadata")));
	json_decref(arr);

	/* and each can go */
	CHECK(gl_meta_delete(f.m, "d1", &f.err) == 0);
	CHECK(gl_meta_delete(f.m, "d3", &f.err) == 0);
	CHECK_INT(gl_meta_get(f.m, &T, "d1", &got, &f.err), 1);
	lq_init(&l, &T);
	CHECK_EQS(run_ids(f.m, &l.q, ids, sizeof ids, &total, &f.err), "d2");
	fx_close(&f);
}

#define META_SCENARIOS                                                        \
	UNIT_CASE(put_get_roundtrip), UNIT_CASE(put_revision_conflict),       \
		UNIT_CASE(transactions), UNIT_CASE(delete_cascades),          \
		UNIT_CASE(deleted_for_scrubber), UNIT_CASE(scope_taken),      \
		UNIT_CASE(count_and_used_bytes), UNIT_CASE(counters_exact),   \
		UNIT_CASE(scope_copies), UNIT_CASE(counters_concurrent),      \
		UNIT_CASE(blob_records),                                      \
		UNIT_CASE(blob_set_unbuilt_record_refused),                   \
		UNIT_CASE(saving_and_external_lists), UNIT_CASE(gc_queue),    \
		UNIT_CASE(cleanup_queue), UNIT_CASE(quotas),                  \
		UNIT_CASE(database_store), UNIT_CASE(list_base_filters),      \
		UNIT_CASE(list_property_filters),                             \
		UNIT_CASE(list_numeric_kinds),                                \
		UNIT_CASE(list_or_group_and_tags), UNIT_CASE(list_sorting),   \
		UNIT_CASE(list_pagination), UNIT_CASE(list_latest),           \
		UNIT_CASE(list_visibility_and_counts),                        \
		UNIT_CASE(list_large_both_plans),                             \
		UNIT_CASE(read_damaged_rows)

#endif
