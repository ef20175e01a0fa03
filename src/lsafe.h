/* lsafe.h - the C functions of the type sandbox whose work the Lua
 * instruction count cannot see.
 *
 * A count hook only runs between VM instructions, so one C call that loops
 * (a backtracking pattern match, string.rep of an empty string a billion
 * times, table.insert into a table whose __len says 2^60) is invisible to
 * it and cannot be interrupted. Every such function of the allow-list is
 * replaced here by one that charges its work, in steps comparable to VM
 * instructions, to the state's host, which raises once the request's
 * budget is spent (docs/lua-runtime.md, "Budget").
 *
 * The pattern functions (find, match, gmatch, gsub) are a matcher of Lua
 * 5.4 pattern syntax written for this purpose, with a step counter;
 * results and error messages are those of the stock string library.
 *
 * The host is what a state's lua_getextraspace points at (NULL: nothing is
 * charged, e.g. in the unit tests). Used by ltype.c; uses Lua 5.4 only.
 */
#ifndef GL_LSAFE_H
#define GL_LSAFE_H

#include <stdint.h>

#include <lua.h>

typedef struct gl_lsafe_host {
	/* add steps of work; raises (a Lua error) when the budget is spent */
	void (*charge)(lua_State *L, int64_t steps);
	/* seconds of Lua time the current request has used (os.clock) */
	double (*clock)(lua_State *L);
	/* math.random's generator: reseeded by the host before every call,
	 * so no sequence carries over from one request to the next */
	uint64_t rng[4];
} gl_lsafe_host;

/* Largest string.rep result, in bytes. */
#define GL_LSAFE_MAX_REP (1 << 20)

/* [-0, +1, m] Push a table of the replacements: string.rep, find, match,
 * gmatch, gsub, format; table.concat, insert, remove, move, sort, unpack;
 * math.random; os.clock. */
int gl_lsafe_open(lua_State *L);

/* Charge steps to L's host (no-op without one). May raise. */
void gl_lsafe_charge(lua_State *L, int64_t steps);

/* Seed a generator from 64 bits. */
void gl_lsafe_seed(uint64_t rng[4], uint64_t seed);

#endif
