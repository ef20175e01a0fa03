/* ljson.h - JSON (jansson) <-> Lua values: the project's one converter.
 *
 * Both Lua states of glared (the sandboxed type runtime, ltype.c, and the
 * operator console, console.c) move artifacts across the boundary here, so
 * the rules are the same everywhere (docs/lua-runtime.md): integers stay
 * integers, JSON null is a sentinel value, arrays and objects are tables
 * marked with one of two metatables, an unmarked table is an array when its
 * keys are exactly 1..n. Tables are read with raw access only (lua_next,
 * lua_rawgeti), so a hostile __index/__pairs never runs here; a table the
 * sandbox froze is read through to its contents. A conversion to JSON
 * has a budget: nesting depth, node count and bytes of text, so a value
 * that shares one table many times over cannot expand into gigabytes,
 * and a table that contains itself is refused as a cycle.
 *
 * Used by ltype.c and console.c. Uses Lua 5.4 and jansson.
 */
#ifndef GL_LJSON_H
#define GL_LJSON_H

#include <stddef.h>

#include <jansson.h>
#include <lua.h>

#include "err.h"

#define GL_LJSON_MAX_DEPTH 64
#define GL_LJSON_MAX_NODES 200000
#define GL_LJSON_MAX_BYTES (16 << 20)

/* Registry references of a state's null sentinel and marker metatables,
 * and of the key under which a frozen table's metatable holds its
 * contents (LUA_NOREF in a state without the sandbox). */
typedef struct gl_ljson {
	int null_ref, amt_ref, omt_ref, frozen_ref;
} gl_ljson;

/* [-0, +1, m] Push j; raises on nesting beyond the limit or memory. */
void gl_ljson_push(lua_State *L, const gl_ljson *lj, const json_t *j);

/* A member of an object pushed without building it in jansson first: the
 * value v (borrowed), or when v is NULL the string s (n bytes; NULL:
 * null). */
typedef struct gl_member {
	const char *key;
	const json_t *v;
	const char *s;
	size_t n;
	char text[40]; /* room for s */
} gl_member;

/* [-0, +1, m] Push the object of these n members (keys distinct) exactly
 * as gl_ljson_push pushes the jansson object with them in this order. */
void gl_ljson_push_members(lua_State *L, const gl_ljson *lj,
			   const gl_member *m, int n);

/* [-0, +0, -] The value at idx as JSON (new reference), or NULL + err
 * (functions, NaN, non-string keys, invalid UTF-8, too deep, a cycle,
 * past the node or byte budget). Never raises. */
json_t *gl_ljson_to(lua_State *L, const gl_ljson *lj, int idx, gl_err *err);

/* [-0, +0, -] The value at idx as JSON text appended to b: exactly
 * json_dumps (the API's flags, jtext.h) of what gl_ljson_to gives, or -1
 * + the same err (b as it was). Never raises. */
struct gl_sb;
int gl_ljson_write(lua_State *L, const gl_ljson *lj, int idx, struct gl_sb *b,
		   gl_err *err);

/* 1 if j is nested at most GL_LJSON_MAX_DEPTH levels (what push takes). */
int gl_ljson_depth_ok(const json_t *j);

/* 1 if the value at idx is the null sentinel; marker of a table: 1 array,
 * -1 object, 0 unmarked. */
int gl_ljson_is_null(lua_State *L, const gl_ljson *lj, int idx);
int gl_ljson_marked(lua_State *L, const gl_ljson *lj, int idx);

#endif
