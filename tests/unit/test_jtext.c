/* test_jtext.c - the JSON text the list reply is written as must be, byte
 * for byte, what the jansson path (gl_ljson_to / gl_core_output, then the
 * API's json_dumps) gives: Glare clients see the same answers.
 *
 * Three levels, each against the jansson path in the same process:
 * jansson values (reals over many magnitudes, escapes), Lua values
 * (gl_ljson_write against gl_ljson_to, successes and refusals with their
 * messages), and whole listings of a real engine (sqlite in a temp dir,
 * the images type without an output hook, sample_artifact with to_dict,
 * /artifacts/all with format_all; and show) over artifacts with unicode, escapes,
 * big integers, floats, nulls, nested values, tags and blob records. */
#include "unit.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>

#include "core.h"
#include "engine.h"
#include "jtext.h"
#include "ljson.h"
#include "unit_engine.h"
#include "util.h"

#define DUMP_FLAGS (JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

static int same_as_dump(const json_t *j)
{
	char *want = json_dumps(j, DUMP_FLAGS);
	gl_sb b = { 0 };
	int ok;

	gl_jtext_value(&b, j);
	ok = want && b.p && !strcmp(want, b.p);
	if (!ok)
		fprintf(stderr, "jtext: want %s\n       got  %s\n",
			want ? want : "(null)", b.p ? b.p : "(null)");
	free(want);
	gl_sb_free(&b);
	return ok;
}

UNIT_TEST(jtext_reals_as_jansson)
{
	static const double fixed[] = { 0.0,
					-0.0,
					1.0,
					-1.0,
					0.1,
					0.5,
					1.5,
					100.0,
					1e15,
					1e16,
					1e17,
					1e21,
					1e22,
					1e100,
					1e300,
					1.7976931348623157e308,
					5e-324,
					2.2250738585072014e-308,
					1e-5,
					1e-7,
					123456789012345678.0,
					9007199254740993.0,
					3.141592653589793,
					-2.5e-10,
					4.35,
					0.3 };
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		json_t *r = json_real(fixed[i]);
		int ok = same_as_dump(r);
		json_decref(r);
		CHECK(ok);
	}
	/* bit patterns over the whole range of finite doubles */
	for (int i = 0; i < 20000; i++) {
		double d;
		json_t *r;
		int ok;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&d, &x, sizeof d);
		if (!isfinite(d))
			continue;
		r = json_real(d);
		ok = same_as_dump(r);
		json_decref(r);
		CHECK(ok);
	}
}

UNIT_TEST(jtext_values_as_jansson)
{
	json_t *j = json_loads(
		"{\"s\": \"caf\\u00e9 \\u6f22 \\ud83d\\ude00\", "
		"\"esc\": \"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f\", "
		"\"nul\": \"a\\u0000b\", \"big\": 9223372036854775807, "
		"\"neg\": -9223372036854775808, \"f\": 2.5, \"n\": null, "
		"\"t\": true, \"fa\": false, \"e\": {}, \"ea\": [], "
		"\"nest\": {\"l\": [1, [2, {\"k\": [null]}], \"x\"]}, "
		"\"\\u00fc\\n\": 1}",
		JSON_ALLOW_NUL, NULL);

	CHECK(j);
	CHECK(same_as_dump(j));
	CHECK(same_as_dump(json_object_get(j, "esc")));
	json_decref(j);
	{
		gl_sb b = { 0 };
		gl_jtext_value(&b, NULL);
		CHECK_STR(b.p, "null");
		gl_sb_free(&b);
	}
}

/* The calendar by arithmetic against gmtime_r + strftime. */
static int iso_same(int64_t us)
{
	time_t t = (time_t)(us / 1000000);
	int frac = (int)(us % 1000000);
	struct tm tm;
	char base[32], want[40], got[40];

	gmtime_r(&t, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(want, sizeof want, "%.19s.%06dZ", base, frac);
	else
		snprintf(want, sizeof want, "%.19sZ", base);
	gl_iso8601_us(us, got);
	if (strcmp(want, got))
		fprintf(stderr, "%lld: want %s got %s\n", (long long)us, want,
			got);
	return !strcmp(want, got);
}

UNIT_TEST(iso8601_us_as_strftime)
{
	static const int64_t edges[] = {
		0,
		1,
		999999,
		1000000,
		86399999999LL,
		86400000000LL,
		951782400000000LL,    /* 2000-02-29 */
		951868799999999LL,    /* 2000-02-29T23:59:59.999999 */
		4107542400000000LL,   /* 2100-03-01 */
		253402300799999999LL, /* 9999-12-31T23:59:59.999999 */
	};
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
		CHECK(iso_same(edges[i]));
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		CHECK(iso_same((int64_t)(x % 253402300800000000ULL)));
		/* whole seconds and whole days too */
		CHECK(iso_same((int64_t)(x % 253402300800ULL) * 1000000));
		CHECK(iso_same((int64_t)(x % 2932896ULL) * 86400000000LL));
	}
}

/* ---- Lua values ------------------------------------------------------------ */

typedef struct lfx {
	lua_State *L;
	gl_ljson lj;
} lfx;

static int lfx_open(lfx *f)
{
	f->L = luaL_newstate();
	if (!f->L)
		return 0;
	luaL_openlibs(f->L);
	lua_newtable(f->L);
	f->lj.amt_ref = luaL_ref(f->L, LUA_REGISTRYINDEX);
	lua_newtable(f->L);
	f->lj.omt_ref = luaL_ref(f->L, LUA_REGISTRYINDEX);
	lua_newtable(f->L);
	f->lj.null_ref = luaL_ref(f->L, LUA_REGISTRYINDEX);
	f->lj.frozen_ref = LUA_NOREF;
	/* the chunks below see the sentinel and the markers */
	lua_rawgeti(f->L, LUA_REGISTRYINDEX, f->lj.null_ref);
	lua_setglobal(f->L, "NULL");
	lua_rawgeti(f->L, LUA_REGISTRYINDEX, f->lj.amt_ref);
	lua_setglobal(f->L, "AMT");
	lua_rawgeti(f->L, LUA_REGISTRYINDEX, f->lj.omt_ref);
	lua_setglobal(f->L, "OMT");
	return 1;
}

/* The value of chunk ("return ...") through both paths: the same text,
 * or the same refusal. */
static int lua_same(lfx *f, const char *chunk, int want_ok)
{
	gl_err e1 = { 0 }, e2 = { 0 };
	gl_sb b = { 0 };
	json_t *j;
	char *want = NULL;
	int top = lua_gettop(f->L), rc, ok;

	if (luaL_dostring(f->L, chunk) != LUA_OK) {
		fprintf(stderr, "chunk failed: %s\n", lua_tostring(f->L, -1));
		lua_settop(f->L, top);
		return 0;
	}
	j = gl_ljson_to(f->L, &f->lj, -1, &e1);
	if (j)
		want = json_dumps(j, DUMP_FLAGS);
	gl_sb_addn(&b, "prefix", 6);
	rc = gl_ljson_write(f->L, &f->lj, -1, &b, &e2);
	ok = lua_gettop(f->L) == top + 1 && (rc == 0) == (j != NULL) &&
	     (rc == 0) == want_ok;
	if (ok && j)
		ok = !strncmp(b.p, "prefix", 6) && !strcmp(b.p + 6, want);
	else if (ok)
		ok = !strcmp(e1.msg, e2.msg) && e1.status == e2.status &&
		     b.len == 6;
	if (!ok)
		fprintf(stderr, "%s\n  jansson: %s (%s)\n  text:    %s (%s)\n",
			chunk, want ? want : "-", e1.msg, b.p ? b.p + 6 : "",
			rc ? e2.msg : "ok");
	free(want);
	json_decref(j);
	gl_sb_free(&b);
	lua_settop(f->L, top);
	return ok;
}

UNIT_TEST(lua_write_as_to)
{
	lfx f;

	CHECK(lfx_open(&f));
	CHECK(lua_same(&f,
		       "return {a = 1, b = 'x', c = true, d = false, "
		       "e = NULL, f = 2.5, g = -0.0, h = 1e300}",
		       1));
	CHECK(lua_same(&f,
		       "return {s = 'caf\\u{e9} \\u{6f22} \\u{1f600}', "
		       "esc = 'q\" b\\\\ s/ \\b\\f\\n\\r\\t \\1\\31\\127', "
		       "nul = 'a\\0b', ['\\u{fc}\\n'] = 'k'}",
		       1));
	CHECK(lua_same(&f,
		       "return {big = math.maxinteger, "
		       "small = math.mininteger, f = 0.1, g = 2^53, "
		       "h = 123456789012345678.0, i = 1e-7}",
		       1));
	CHECK(lua_same(&f,
		       "return {l = {1, {2, {k = {NULL}}}, 'x'}, "
		       "e = {}, ea = setmetatable({}, AMT), "
		       "eo = setmetatable({}, OMT), "
		       "holes = setmetatable({1, nil, 3}, AMT), "
		       "num = setmetatable({[1] = 'a', [2] = 'b'}, OMT)}",
		       0)); /* a marked object with integer keys: refused */
	CHECK(lua_same(&f,
		       "return {l = {1, {2, {k = {NULL}}}, 'x'}, "
		       "e = {}, ea = setmetatable({}, AMT), "
		       "eo = setmetatable({}, OMT), "
		       "holes = setmetatable({1, nil, 3}, AMT)}",
		       1));
	CHECK(lua_same(&f,
		       "local t = {} for i = 1, 200 do "
		       "t['k' .. i] = {i, i * 0.5, tostring(i)} end "
		       "return t",
		       1));
	CHECK(lua_same(&f, "return {1, 2, 3}", 1));
	CHECK(lua_same(&f, "return 'top'", 1));
	CHECK(lua_same(&f, "return nil", 1));
	CHECK(lua_same(&f, "return 42", 1));
	/* refusals: the same message */
	CHECK(lua_same(&f, "return {a = 'bad \\xff'}", 0));
	CHECK(lua_same(&f, "return {['\\xff'] = 1}", 0));
	CHECK(lua_same(&f, "return {['\\xff'] = {print}}", 0));
	CHECK(lua_same(&f, "return {a = print}", 0));
	CHECK(lua_same(&f, "return {a = 0/0}", 0));
	CHECK(lua_same(&f, "return {a = 1/0}", 0));
	CHECK(lua_same(&f, "return {[1] = 'a', x = 'b'}", 0));
	CHECK(lua_same(&f, "local t = {} t.self = t return t", 0));
	CHECK(lua_same(&f,
		       "local t = {} for i = 1, 80 do t = {t} end "
		       "return t",
		       0));
	CHECK(lua_same(&f,
		       "local s = {} for i = 1, 1000 do s[i] = i end "
		       "local t = {} for i = 1, 300 do t[i] = s end "
		       "return t",
		       0)); /* past the node budget */
	CHECK(lua_same(&f,
		       "local s = string.rep('x', 1 << 20) "
		       "local t = {} for i = 1, 20 do t[i] = s end "
		       "return t",
		       0)); /* past the byte budget */
	/* a key with a NUL: jansson keeps it up to the NUL; two such keys
	 * are one */
	CHECK(lua_same(&f, "return {['a\\0b'] = 1, c = 2}", 1));
	CHECK(lua_same(&f, "return {['a\\0b'] = 1, ['a\\0c'] = 2, a = 3}", 1));
	lua_close(f.L);
}

/* ---- whole listings of a real engine ----------------------------------- */

typedef unit_engine efx;

static int create(efx *f, const char *type, const char *body_json, char *id,
		  size_t idlen)
{
	json_error_t je;
	json_t *body = json_loads(body_json, 0, &je), *out = NULL;
	int rc;

	if (!body) {
		fprintf(stderr, "bad body %s: %s\n", body_json, je.text);
		return -1;
	}
	rc = gl_art_create(f->e, &f->ctx, type, body, &out, &f->err);
	if (rc < 0)
		fprintf(stderr, "create %s: %s\n", body_json, f->err.msg);
	else if (id)
		snprintf(id, idlen, "%s",
			 json_string_value(json_object_get(out, "id")));
	json_decref(body);
	json_decref(out);
	return rc;
}

/* A blob record as uploads and locations write them (the store's own
 * call, in a transaction). */
static int blob(efx *f, const char *id, const char *field, const char *key,
		const char *rec_json)
{
	json_t *rec = json_loads(rec_json, 0, NULL);
	int rc = -1;

	if (rec && gl_meta_begin(f->e->meta, &f->err) == 0) {
		rc = gl_meta_blob_set(f->e->meta, id, field, key, rec,
				      &f->err);
		if (gl_meta_commit(f->e->meta, &f->err) < 0)
			rc = -1;
	}
	json_decref(rec);
	return rc;
}

/* The listing both ways: the same bytes (and the same refusal). */
static int list_same(efx *f, const char *type, const char *q)
{
	gl_kv kv[8];
	char buf[512], *save = NULL, *tok, *want = NULL;
	int n = 0, rc1, rc2, ok;
	json_t *out = NULL;
	gl_sb b = { 0 };
	gl_err e1 = { 0 }, e2 = { 0 };

	snprintf(buf, sizeof buf, "%s", q);
	for (tok = strtok_r(buf, "&", &save); tok && n < 8;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			return 0;
		*eq = '\0';
		kv[n].name = tok;
		kv[n].value = eq + 1;
		n++;
	}
	rc1 = gl_art_list(f->e, &f->ctx, type, kv, n, &out, &e1);
	rc2 = gl_art_list_text(f->e, &f->ctx, type, kv, n, &b, &e2);
	if (rc1 == 0)
		want = json_dumps(out, DUMP_FLAGS);
	ok = rc1 == rc2 && (rc1 < 0 ? !strcmp(e1.msg, e2.msg) && !b.p
				    : want && b.p && !strcmp(want, b.p));
	if (!ok)
		fprintf(stderr,
			"%s?%s\n  jansson: %s (%s)\n  text:    %s (%s)\n",
			type, q, want ? want : "-", e1.msg, b.p ? b.p : "-",
			e2.msg);
	/* the listing is not empty when it should not be */
	if (ok && rc1 == 0 && !strstr(q, "name=none"))
		ok = json_array_size(json_object_get(out, "artifacts")) > 0;
	free(want);
	json_decref(out);
	gl_sb_free(&b);
	return ok;
}

/* Every artifact of type shown both ways (show has the same two paths),
 * and as its listing shows it; the number shown. */
static int shows_same(efx *f, const char *type)
{
	json_t *all = NULL, *a;
	size_t i;
	int n = 0;

	if (gl_art_list(f->e, &f->ctx, type, NULL, 0, &all, &f->err) < 0)
		return -1;
	json_array_foreach(json_object_get(all, "artifacts"), i, a) {
		const char *id = gl_json_str(a, "id");
		json_t *out = NULL;
		gl_sb b = { 0 };
		char *want = NULL, *row = json_dumps(a, DUMP_FLAGS);
		int ok;

		ok = gl_art_show(f->e, &f->ctx, type, id, &out, &f->err) ==
			     0 &&
		     gl_art_show_text(f->e, &f->ctx, type, id, &b, &f->err) ==
			     0;
		if (ok)
			want = json_dumps(out, DUMP_FLAGS);
		ok = ok && want && b.p && row && !strcmp(want, b.p) &&
		     !strcmp(want, row);
		if (!ok)
			fprintf(stderr,
				"show %s/%s\n  jansson: %s\n  text:    "
				"%s\n  listed:  %s\n",
				type, id, want ? want : "-", b.p ? b.p : "-",
				row ? row : "-");
		free(want);
		free(row);
		json_decref(out);
		gl_sb_free(&b);
		if (!ok) {
			n = -1;
			break;
		}
		n++;
	}
	json_decref(all);
	return n;
}

UNIT_TEST(listing_text_as_jansson)
{
	efx f;
	char id[64], id2[64];
	static const char first[] =
		"{\"name\": \"caf\\u00e9 \\u6f22\", "
		"\"version\": \"1.0.0-beta+x\", \"int1\": 9007199254740993, "
		"\"int2\": -9223372036854775808, \"float1\": 0.1, "
		"\"float2\": 1e300, \"str1\": \"q\\\" b\\\\ s/ \\n\\t\\u0001\", "
		"\"bool1\": true, \"list_of_str\": [\"a\", \"\\u00fc\"], "
		"\"list_of_int\": [1, -2, 3], "
		"\"dict_of_str\": {\"k\\n\": \"v\", \"z\": \"\"}, "
		"\"dict_of_int\": {\"a\": 1}, \"tags\": [\"t1\", \"\\u00e9t\\u00e9\"], "
		"\"description\": \"line1\\nline2\"}";

	if (!unit_engine_open(&f, "images,sample_artifact")) {
		fprintf(stderr, "engine: %s\n", f.err.msg);
		unit_engine_close(&f);
		CHECK(!"the engine did not open");
	}
	CHECK(create(&f, "sample_artifact", first, id, sizeof id) == 0);
	CHECK(create(&f, "sample_artifact",
		     "{\"name\": \"plain\", \"float1\": 2.5, \"float2\": -0.0, "
		     "\"int1\": 7, \"str1\": \"s\", \"dict_validators\": {\"abc\": \"x\"}}",
		     id2, sizeof id2) == 0);
	CHECK(create(&f, "sample_artifact",
		     "{\"name\": \"nulls\", "
		     "\"float1\": null, \"str1\": null, \"int1\": 12}",
		     NULL, 0) == 0);
	CHECK(blob(&f, id, "blob", "",
		   "{\"status\": \"active\", \"size\": 12, \"md5\": \"m\", "
		   "\"sha1\": \"s1\", \"sha256\": \"s256\", \"external\": false, "
		   "\"content_type\": \"text/plain\", \"store\": \"file\", "
		   "\"location\": \"x\"}") == 0);
	CHECK(blob(&f, id, "dict_of_blobs", "k\xc3\xa9 \"y",
		   "{\"status\": \"saving\", \"size\": 5, \"external\": false, "
		   "\"content_type\": \"application/octet-stream\"}") == 0);
	CHECK(blob(&f, id, "dict_of_blobs", "ext",
		   "{\"status\": \"active\", \"size\": null, \"external\": true, "
		   "\"url\": \"http://127.0.0.1:9/a\", \"md5\": null, "
		   "\"verify_status\": \"changed\", \"verified_at\": 1700000000000000, "
		   "\"verify_error\": \"size 3, not 5\"}") == 0);
	CHECK(blob(&f, id2, "small_blob", "",
		   "{\"status\": \"active\", \"size\": 3, \"external\": true, "
		   "\"url\": \"http://127.0.0.1:9/b\"}") == 0);
	CHECK(create(&f, "images",
		     "{\"name\": \"img \\u00e9\\\"\", \"container_format\": \"bare\", "
		     "\"disk_format\": \"raw\", \"min_ram\": 512, "
		     "\"tags\": [\"x\", \"y\"]}",
		     id, sizeof id) == 0);
	CHECK(blob(&f, id, "image", "",
		   "{\"status\": \"active\", \"size\": 1048576, \"md5\": \"m\", "
		   "\"sha1\": \"s1\", \"sha256\": \"s256\", \"external\": false, "
		   "\"content_type\": \"application/octet-stream\", "
		   "\"store\": \"file\", \"location\": \"y\"}") == 0);
	CHECK(create(&f, "images", "{\"name\": \"img2\"}", NULL, 0) == 0);

	CHECK(list_same(&f, "sample_artifact", ""));
	CHECK(list_same(&f, "sample_artifact", "sort=int1:desc"));
	CHECK(list_same(&f, "sample_artifact", "str1=eq:s&sort=int1:desc"));
	CHECK(list_same(&f, "sample_artifact", "limit=1&sort=name:asc"));
	CHECK(list_same(&f, "sample_artifact",
			"tags=t1&limit=1&str1=neq:caf\xc3\xa9 /+%x"));
	CHECK(list_same(&f, "sample_artifact", "name=none"));
	CHECK(list_same(&f, "sample_artifact", "int1=abc"));
	CHECK(list_same(&f, "images", ""));
	CHECK(list_same(&f, "images", "limit=1"));
	CHECK(list_same(&f, "all", ""));
	CHECK(list_same(&f, "all", "sort=name:asc&limit=2"));
	CHECK_INT(shows_same(&f, "sample_artifact"), 3);
	CHECK_INT(shows_same(&f, "images"), 2);
	unit_engine_close(&f);
}

UNIT_SUITE(jtext, UNIT_CASE(jtext_reals_as_jansson),
	   UNIT_CASE(iso8601_us_as_strftime),
	   UNIT_CASE(jtext_values_as_jansson), UNIT_CASE(lua_write_as_to),
	   UNIT_CASE(listing_text_as_jansson));
