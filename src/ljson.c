/* ljson.c - JSON <-> Lua values (see ljson.h). */
#include "ljson.h"

#include <math.h>
#include <stdio.h>

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
		lua_pushlstring(L, json_string_value(j), json_string_length(j));
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

static json_t *to(lua_State *L, const gl_ljson *lj, int idx, int depth,
		  char *why, size_t whylen)
{
	json_t *out;
	int arr;

	idx = lua_absindex(L, idx);
	if (depth > GL_LJSON_MAX_DEPTH) {
		snprintf(why, whylen, "value nested deeper than %d levels",
			 GL_LJSON_MAX_DEPTH);
		return NULL;
	}
	if (!lua_checkstack(L, 4)) {
		snprintf(why, whylen, "Lua stack exhausted");
		return NULL;
	}
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		if (!isfinite(lua_tonumber(L, idx))) {
			snprintf(why, whylen, "NaN or infinity has no JSON form");
			return NULL;
		}
		return json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t n;
		/* a real string: lua_tolstring converts nothing here */
		const char *s = lua_tolstring(L, idx, &n);
		out = json_stringn(s, n);
		if (!out)
			snprintf(why, whylen, "string is not valid UTF-8");
		return out;
	}
	case LUA_TTABLE:
	case LUA_TUSERDATA:
	case LUA_TLIGHTUSERDATA:
		if (is_ref(L, idx, lj->null_ref))
			return json_null();
		if (lua_type(L, idx) == LUA_TTABLE)
			break;
		/* fall through */
	default:
		snprintf(why, whylen, "a %s has no JSON form",
			 luaL_typename(L, idx));
		return NULL;
	}
	arr = gl_ljson_marked(L, lj, idx);
	if (arr == 0)
		arr = looks_like_array(L, idx) ? 1 : -1;
	if (arr > 0) {
		lua_Unsigned n = lua_rawlen(L, idx);
		out = json_array();
		for (lua_Unsigned i = 1; i <= n; i++) {
			json_t *v;
			lua_rawgeti(L, idx, (lua_Integer)i);
			v = to(L, lj, -1, depth + 1, why, whylen);
			lua_pop(L, 1);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, v);
		}
		return out;
	}
	out = json_object();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		json_t *v;
		if (lua_type(L, -2) != LUA_TSTRING) {
			snprintf(why, whylen, "table keys must be strings");
			lua_pop(L, 2);
			json_decref(out);
			return NULL;
		}
		v = to(L, lj, -1, depth + 1, why, whylen);
		if (!v || json_object_set_new(out, lua_tostring(L, -2), v) < 0) {
			if (v)
				snprintf(why, whylen, "key is not valid UTF-8");
			lua_pop(L, 2);
			json_decref(out);
			return NULL;
		}
		lua_pop(L, 1);
	}
	return out;
}

json_t *gl_ljson_to(lua_State *L, const gl_ljson *lj, int idx, char *why,
		    size_t whylen)
{
	return to(L, lj, idx, 0, why, whylen);
}
