/* ljson.c - JSON <-> Lua values (see ljson.h). */
#include "ljson.h"
#include "jtext.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

static void push(lua_State *L, const gl_ljson *lj, const json_t *j, int depth)
{
	size_t i;
	const char *k;
	json_t *v;

	if (depth > GL_LJSON_MAX_DEPTH)
		luaL_error(L, "value nested deeper than %d levels",
			   GL_LJSON_MAX_DEPTH);
	if (!j) /* a constructor failed upstream: refuse, never crash */
		luaL_error(L, "a value could not be built");
	luaL_checkstack(L, 4, "converting a value");
	switch (json_typeof(j)) {
	case JSON_NULL:
		lua_rawgeti(L, LUA_REGISTRYINDEX, lj->null_ref);
		break;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		break;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(j));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(j));
		break;
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(j),
				json_string_length(j));
		break;
	case JSON_ARRAY:
		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach(j, i, v) {
			push(L, lj, v, depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_rawgeti(L, LUA_REGISTRYINDEX, lj->amt_ref);
		lua_setmetatable(L, -2);
		break;
	case JSON_OBJECT:
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach((json_t *)j, k, v) {
			lua_pushstring(L, k);
			push(L, lj, v, depth + 1);
			lua_rawset(L, -3);
		}
		lua_rawgeti(L, LUA_REGISTRYINDEX, lj->omt_ref);
		lua_setmetatable(L, -2);
		break;
	}
}

void gl_ljson_push(lua_State *L, const gl_ljson *lj, const json_t *j)
{
	push(L, lj, j, 0);
}

void gl_ljson_push_members(lua_State *L, const gl_ljson *lj,
			   const gl_member *m, int n)
{
	luaL_checkstack(L, 4, "converting a value");
	lua_createtable(L, 0, n);
	for (int i = 0; i < n; i++) {
		lua_pushstring(L, m[i].key);
		if (m[i].v)
			push(L, lj, m[i].v, 1);
		else if (m[i].s)
			lua_pushlstring(L, m[i].s, m[i].n);
		else
			lua_rawgeti(L, LUA_REGISTRYINDEX, lj->null_ref);
		lua_rawset(L, -3);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, lj->omt_ref);
	lua_setmetatable(L, -2);
}

static int depth_ok(const json_t *j, int depth)
{
	size_t i;
	const char *k;
	json_t *v;

	if (depth > GL_LJSON_MAX_DEPTH)
		return 0;
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if (!depth_ok(v, depth + 1))
				return 0;
	} else if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v)
			if (!depth_ok(v, depth + 1))
				return 0;
	}
	return 1;
}

int gl_ljson_depth_ok(const json_t *j)
{
	return !j || depth_ok(j, 0);
}

static int is_ref(lua_State *L, int idx, int ref)
{
	int eq;

	idx = lua_absindex(L, idx);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	eq = lua_rawequal(L, idx, -1);
	lua_pop(L, 1);
	return eq;
}

int gl_ljson_is_null(lua_State *L, const gl_ljson *lj, int idx)
{
	return is_ref(L, idx, lj->null_ref);
}

int gl_ljson_marked(lua_State *L, const gl_ljson *lj, int idx)
{
	int m = 0;

	if (!lua_checkstack(L, 2) || !lua_getmetatable(L, idx))
		return 0;
	if (is_ref(L, -1, lj->amt_ref))
		m = 1;
	else if (is_ref(L, -1, lj->omt_ref))
		m = -1;
	lua_pop(L, 1);
	return m;
}

/* Keys exactly 1..n (n >= 1)? */
static int looks_like_array(lua_State *L, int idx)
{
	lua_Integer n = 0, max = 0;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return 0;
		}
		if (lua_tointeger(L, -1) > max)
			max = lua_tointeger(L, -1);
		n++;
	}
	return n > 0 && n == max;
}

/* One conversion: the tables on the current path (cycles) and what has
 * been produced so far (the budget). */
typedef struct conv {
	const gl_ljson *lj;
	const void *path[GL_LJSON_MAX_DEPTH + 2];
	long nodes;
	size_t bytes;
	gl_err *err;
} conv;

static int spend(conv *cv, size_t bytes)
{
	if (++cv->nodes > GL_LJSON_MAX_NODES) {
		gl_fail(cv->err, 500, NULL, "value has more than %d nodes",
			GL_LJSON_MAX_NODES);
		return -1;
	}
	cv->bytes += bytes;
	if (cv->bytes > GL_LJSON_MAX_BYTES) {
		gl_fail(cv->err, 500, NULL, "value is larger than %d bytes",
			GL_LJSON_MAX_BYTES);
		return -1;
	}
	return 0;
}

/* A frozen table keeps its contents in a table its metatable holds under
 * the sandbox's key: push that (or the table itself). [-0, +1, -] */
static void push_contents(lua_State *L, const gl_ljson *lj, int idx)
{
	if (lj->frozen_ref != LUA_NOREF && lua_getmetatable(L, idx)) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, lj->frozen_ref);
		lua_rawget(L, -2);
		if (lua_type(L, -1) == LUA_TTABLE) {
			lua_remove(L, -2);
			return;
		}
		lua_pop(L, 2);
	}
	lua_pushvalue(L, idx);
}

/* A table about to be converted: its budget spent, its contents pushed
 * (a frozen table read through), a cycle refused. 1 array, -1 object
 * (the contents at the top), 0 refused (err set, nothing pushed). */
static int open_table(lua_State *L, conv *cv, int idx, int depth)
{
	const void *self;
	int arr;

	if (spend(cv, 2) < 0)
		return 0;
	push_contents(L, cv->lj, idx);
	idx = lua_gettop(L);
	self = lua_topointer(L, idx);
	for (int d = 0; d < depth; d++)
		if (cv->path[d] == self) {
			lua_pop(L, 1);
			gl_fail(cv->err, 500, NULL,
				"value contains itself (a "
				"cycle)");
			return 0;
		}
	cv->path[depth] = self;
	arr = gl_ljson_marked(L, cv->lj, idx);
	if (arr == 0)
		arr = looks_like_array(L, idx) ? 1 : -1;
	return arr;
}

static json_t *to(lua_State *L, conv *cv, int idx, int depth)
{
	json_t *out;
	int arr;

	idx = lua_absindex(L, idx);
	if (depth > GL_LJSON_MAX_DEPTH) {
		gl_fail(cv->err, 500, NULL,
			"value nested deeper than %d levels",
			GL_LJSON_MAX_DEPTH);
		return NULL;
	}
	if (!lua_checkstack(L, 6)) {
		gl_fail(cv->err, 500, NULL, "Lua stack exhausted");
		return NULL;
	}
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return spend(cv, 4) < 0 ? NULL : json_null();
	case LUA_TBOOLEAN:
		return spend(cv, 5) < 0 ? NULL
					: json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (spend(cv, 24) < 0)
			return NULL;
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		if (!isfinite(lua_tonumber(L, idx))) {
			gl_fail(cv->err, 500, NULL,
				"NaN or infinity has no JSON form");
			return NULL;
		}
		return json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t n;
		/* a real string: lua_tolstring converts nothing here */
		const char *s = lua_tolstring(L, idx, &n);
		if (spend(cv, n + 2) < 0)
			return NULL;
		out = json_stringn(s, n);
		if (!out)
			gl_fail(cv->err, 500, NULL,
				"string is not valid UTF-8");
		return out;
	}
	case LUA_TTABLE:
	case LUA_TUSERDATA:
	case LUA_TLIGHTUSERDATA:
		if (is_ref(L, idx, cv->lj->null_ref))
			return spend(cv, 4) < 0 ? NULL : json_null();
		if (lua_type(L, idx) == LUA_TTABLE)
			break;
		/* fall through */
	default:
		gl_fail(cv->err, 500, NULL, "a %s has no JSON form",
			luaL_typename(L, idx));
		return NULL;
	}
	arr = open_table(L, cv, idx, depth);
	if (!arr)
		return NULL;
	idx = lua_gettop(L);
	if (arr > 0) {
		lua_Unsigned n = lua_rawlen(L, idx);
		out = json_array();
		for (lua_Unsigned i = 1; out && i <= n; i++) {
			json_t *v;
			lua_rawgeti(L, idx, (lua_Integer)i);
			v = to(L, cv, -1, depth + 1);
			lua_pop(L, 1);
			if (!v || json_array_append_new(out, v) < 0) {
				json_decref(out);
				out = NULL;
			}
		}
		lua_pop(L, 1);
		return out;
	}
	out = json_object();
	lua_pushnil(L);
	while (out && lua_next(L, idx)) {
		json_t *v;
		size_t kl;
		if (lua_type(L, -2) != LUA_TSTRING) {
			gl_fail(cv->err, 500, NULL,
				"table keys must be strings");
			lua_pop(L, 2);
			json_decref(out);
			out = NULL;
			break;
		}
		lua_tolstring(L, -2, &kl);
		v = spend(cv, kl + 2) < 0 ? NULL : to(L, cv, -1, depth + 1);
		if (!v ||
		    json_object_set_new(out, lua_tostring(L, -2), v) < 0) {
			if (v)
				gl_fail(cv->err, 500, NULL,
					"key is not valid UTF-8");
			lua_pop(L, 2);
			json_decref(out);
			out = NULL;
			break;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return out;
}

json_t *gl_ljson_to(lua_State *L, const gl_ljson *lj, int idx, gl_err *err)
{
	conv cv = { .lj = lj, .err = err };

	return to(L, &cv, idx, 0);
}

/* ---- straight to JSON text ------------------------------------------------
 * The same walk as to() (the same order, budget, checks and messages),
 * writing text instead of building jansson values: what to() then
 * json_dumps would give, byte for byte. One case is left to to(): a key
 * with a NUL byte, which jansson takes up to the NUL (two such keys can
 * become one); 1 asks the caller for that path. */
/* gl_utf8_valid, ASCII first: most text is */
static int utf8_ok(const char *s, size_t n)
{
	size_t i = 0;
	uint64_t w;

	while (n - i >= 8) {
		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ULL)
			break;
		i += 8;
	}
	while (i < n && !((unsigned char)s[i] & 0x80))
		i++;
	return i == n || gl_utf8_valid(s + i, n - i, 1);
}

static int write_val(lua_State *L, conv *cv, int idx, int depth, gl_sb *b)
{
	int arr, rc = 0;

	idx = lua_absindex(L, idx);
	if (depth > GL_LJSON_MAX_DEPTH)
		return gl_fail(cv->err, 500, NULL,
			       "value nested deeper than "
			       "%d levels",
			       GL_LJSON_MAX_DEPTH);
	if (!lua_checkstack(L, 6))
		return gl_fail(cv->err, 500, NULL, "Lua stack exhausted");
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		if (spend(cv, 4) < 0)
			return -1;
		gl_jtext_raw(b, "null", 4);
		return 0;
	case LUA_TBOOLEAN:
		if (spend(cv, 5) < 0)
			return -1;
		if (lua_toboolean(L, idx))
			gl_jtext_raw(b, "true", 4);
		else
			gl_jtext_raw(b, "false", 5);
		return 0;
	case LUA_TNUMBER:
		if (spend(cv, 24) < 0)
			return -1;
		if (lua_isinteger(L, idx)) {
			gl_jtext_int(b, (int64_t)lua_tointeger(L, idx));
			return 0;
		}
		if (!isfinite(lua_tonumber(L, idx)))
			return gl_fail(cv->err, 500, NULL,
				       "NaN or infinity has "
				       "no JSON form");
		gl_jtext_real(b, lua_tonumber(L, idx));
		return 0;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		if (spend(cv, n + 2) < 0)
			return -1;
		if (!utf8_ok(s, n))
			return gl_fail(cv->err, 500, NULL,
				       "string is not valid "
				       "UTF-8");
		gl_jtext_str(b, s, n);
		return 0;
	}
	case LUA_TTABLE:
	case LUA_TUSERDATA:
	case LUA_TLIGHTUSERDATA:
		if (is_ref(L, idx, cv->lj->null_ref)) {
			if (spend(cv, 4) < 0)
				return -1;
			gl_jtext_raw(b, "null", 4);
			return 0;
		}
		if (lua_type(L, idx) == LUA_TTABLE)
			break;
		/* fall through */
	default:
		return gl_fail(cv->err, 500, NULL, "a %s has no JSON form",
			       luaL_typename(L, idx));
	}
	arr = open_table(L, cv, idx, depth);
	if (!arr)
		return -1;
	idx = lua_gettop(L);
	if (arr > 0) {
		lua_Unsigned n = lua_rawlen(L, idx);
		gl_jtext_raw(b, "[", 1);
		for (lua_Unsigned i = 1; rc == 0 && i <= n; i++) {
			if (i > 1)
				gl_jtext_raw(b, ", ", 2);
			lua_rawgeti(L, idx, (lua_Integer)i);
			rc = write_val(L, cv, -1, depth + 1, b);
			lua_pop(L, 1);
		}
		gl_jtext_raw(b, "]", 1);
		lua_pop(L, 1);
		return rc;
	}
	gl_jtext_raw(b, "{", 1);
	lua_pushnil(L);
	for (int first = 1; lua_next(L, idx); first = 0) {
		size_t kl;
		const char *k;
		int bad;
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 3);
			return gl_fail(cv->err, 500, NULL,
				       "table keys must be "
				       "strings");
		}
		k = lua_tolstring(L, -2, &kl);
		if (memchr(k, '\0', kl)) {
			lua_pop(L, 3);
			return 1;
		}
		/* to() judges the key after its value */
		bad = !utf8_ok(k, kl);
		if (spend(cv, kl + 2) < 0) {
			lua_pop(L, 3);
			return -1;
		}
		gl_jtext_key(b, k, kl, first);
		rc = write_val(L, cv, -1, depth + 1, b);
		if (rc == 0 && bad)
			rc = gl_fail(cv->err, 500, NULL,
				     "key is not valid UTF-8");
		if (rc) {
			lua_pop(L, 3);
			return rc;
		}
		lua_pop(L, 1);
	}
	gl_jtext_raw(b, "}", 1);
	lua_pop(L, 1);
	return 0;
}

int gl_ljson_write(lua_State *L, const gl_ljson *lj, int idx, struct gl_sb *b,
		   gl_err *err)
{
	conv cv = { .lj = lj, .err = err };
	size_t start = b->len;
	int top = lua_gettop(L), rc;
	json_t *j;

	idx = lua_absindex(L, idx);
	rc = write_val(L, &cv, idx, 0, b);
	lua_settop(L, top);
	if (rc == 0)
		return 0;
	if (b->p) {
		b->len = start;
		b->p[start] = '\0';
	}
	if (rc < 0)
		return -1;
	/* a key with a NUL: jansson's own reading of it */
	j = gl_ljson_to(L, lj, idx, err);
	if (!j)
		return -1;
	gl_jtext_value(b, j);
	json_decref(j);
	return 0;
}
