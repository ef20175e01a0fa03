/* test_edge.c - what stands between bytes a client (or a remote server)
 * chose and the JSON, Lua and records inside: gl_json_text never fails
 * and keeps valid text exact; a JSON value that could not be built is an
 * error in Lua, never a crash. (The black-box side, one test per place a
 * request value enters, is tests/http/test_12_wire.py.) */
#include "unit.h"

#include "ljson.h"
#include "util.h"

#include <lauxlib.h>
#include <lualib.h>

static int text_is(const char *in, const char *want)
{
	json_t *j = gl_json_text(in);
	int ok = json_is_string(j) && !strcmp(json_string_value(j), want);

	if (!ok)
		fprintf(stderr, "gl_json_text: got %s\n",
			json_is_string(j) ? json_string_value(j)
					  : "(not a string)");
	json_decref(j);
	return ok;
}

UNIT_TEST(json_text_keeps_valid_text)
{
	CHECK(text_is("", ""));
	CHECK(text_is("plain", "plain"));
	CHECK(text_is("caf\xc3\xa9 \xe6\xbc\xa2 \xf0\x9f\x98\x80",
		      "caf\xc3\xa9 \xe6\xbc\xa2 \xf0\x9f\x98\x80"));
}

UNIT_TEST(json_text_replaces_bad_bytes)
{
	/* each byte that starts no valid sequence becomes U+FFFD */
	CHECK(text_is("a\xff"
		      "b",
		      "a\xef\xbf\xbd"
		      "b"));
	CHECK(text_is("\xc3", "\xef\xbf\xbd"));                 /* cut short */
	CHECK(text_is("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd")); /* overlong */
	CHECK(text_is("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
	CHECK(text_is("x\xe6\xbcy\xc3\xa9",
		      "x\xef\xbf\xbd\xef\xbf\xbdy\xc3\xa9"));
}

UNIT_TEST(json_text_null_is_json_null)
{
	json_t *j = gl_json_text(NULL);
	int ok = json_is_null(j);
	json_decref(j);
	CHECK(ok);
}

static int push_null(lua_State *L)
{
	const gl_ljson *lj = lua_touserdata(L, 1);
	gl_ljson_push(L, lj, NULL);
	return 1;
}

UNIT_TEST(lua_push_of_unbuilt_value_raises)
{
	lua_State *L = luaL_newstate();
	gl_ljson lj;
	int rc;
	const char *msg;

	CHECK(L);
	lua_newtable(L);
	lj.amt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	lj.omt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);
	lj.null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushcfunction(L, push_null);
	lua_pushlightuserdata(L, &lj);
	rc = lua_pcall(L, 1, 1, 0);
	msg = lua_tostring(L, -1);
	if (rc != LUA_OK && msg && strstr(msg, "could not be built")) {
		lua_close(L);
		return;
	}
	lua_close(L);
	CHECK(!"the push of NULL did not raise");
}

UNIT_SUITE(edge, UNIT_CASE(json_text_keeps_valid_text),
	   UNIT_CASE(json_text_replaces_bad_bytes),
	   UNIT_CASE(json_text_null_is_json_null),
	   UNIT_CASE(lua_push_of_unbuilt_value_raises));
