/* test_lsafe.c - unit tests for lsafe.c: the sandbox's own pattern matcher
 * and table functions give the stock Lua 5.4 results and errors (checked
 * side by side in one state, over fixed cases and seeded random ones), and
 * charge their work so that a budget can stop them.
 */
#include "unit.h"

#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lsafe.h"

/* A state with the stock libraries and the replacements as global `safe`. */
static lua_State *new_state(gl_lsafe_host *host)
{
	lua_State *L = luaL_newstate();

	luaL_openlibs(L);
	*(gl_lsafe_host **)lua_getextraspace(L) = host;
	gl_lsafe_open(L);
	lua_setglobal(L, "safe");
	return L;
}

/* Run chunk; it returns true or an error text (kept in unit_msg). */
#define CHECK_LUA(L, chunk)                                                   \
	do {                                                                  \
		if (!run_lua(L, chunk)) {                                     \
			unit_failed = 1;                                      \
			lua_close(L);                                         \
			return;                                               \
		}                                                             \
	} while (0)

static int run_lua(lua_State *L, const char *chunk)
{
	if (luaL_dostring(L, chunk) != LUA_OK) {
		snprintf(unit_msg, sizeof unit_msg, "lua: %.400s",
			 lua_tostring(L, -1));
		return 0;
	}
	if (lua_type(L, -1) == LUA_TSTRING) {
		snprintf(unit_msg, sizeof unit_msg, "%.480s",
			 lua_tostring(L, -1));
		return 0;
	}
	return lua_toboolean(L, -1);
}

/* Lua helpers shared by the cases: `same(fname, ...)` calls string[fname]
 * and safe[fname] with the same arguments and compares every result (or
 * the error message). */
static const char *const prelude =
	"local function pack(ok, ...) return { ok = ok, n = select('#', ...), ... } end\n"
	"local function show(r)\n"
	"  local t = {}\n"
	"  for i = 1, r.n do t[i] = type(r[i]) .. ':' .. tostring(r[i]) end\n"
	"  local s = (r.ok and 'ok ' or 'error ') .. table.concat(t, ',')\n"
	"  return (s:gsub(\"to '[^']*'\", \"to '?'\"))\n"
	"end\n"
	"function same(lib, fname, ...)\n"
	"  local a = pack(pcall(lib[fname], ...))\n"
	"  local b = pack(pcall(safe[fname], ...))\n"
	"  local sa, sb = show(a), show(b)\n"
	"  if sa ~= sb then\n"
	"    local args = {}\n"
	"    for i = 1, select('#', ...) do args[i] = string.format('%q', tostring((select(i, ...)))) end\n"
	"    return false, fname .. '(' .. table.concat(args, ', ') .. '): stock ' .. sa .. ' / safe ' .. sb\n"
	"  end\n"
	"  return true\n"
	"end\n"
	"local function gm(lib, s, p, init)\n"
	"  local out = {}\n"
	"  for a, b, c in lib.gmatch(s, p, init) do out[#out + 1] = tostring(a) .. '|' .. tostring(b) .. '|' .. tostring(c) end\n"
	"  return table.concat(out, ';')\n"
	"end\n"
	"function same_gmatch(s, p, init)\n"
	"  local a = table.pack(pcall(gm, string, s, p, init))\n"
	"  local b = table.pack(pcall(gm, safe, s, p, init))\n"
	"  if a[1] ~= b[1] or a[2] ~= b[2] then\n"
	"    return false, 'gmatch ' .. s .. ' ' .. p .. ' ' .. tostring(init) .. ': ' .. tostring(a[2]) .. ' / ' .. tostring(b[2])\n"
	"  end\n"
	"  return true\n"
	"end\n";

static int load_prelude(lua_State *L)
{
	if (luaL_dostring(L, prelude) != LUA_OK) {
		snprintf(unit_msg, sizeof unit_msg, "prelude: %.400s",
			 lua_tostring(L, -1));
		return 0;
	}
	return 1;
}

UNIT_TEST(patterns_match_stock_lua)
{
	lua_State *L = new_state(NULL);

	CHECK(load_prelude(L));
	CHECK_LUA(
		L,
		"local S = { '', 'a', 'hello world', '  x y  ', 'aaa', 'ab12cd', 'key = value',\n"
		"  '(foo(bar))baz', 'THE (quick) fox', 'a.b.c', 'x\\0y', '[]]%', 'f(a,b) g(c)',\n"
		"  '1.2.3-alpha.1+b5', 'aXbXc', '\\n\\t z', 'abcabc', 'hello hello', '%d', 'a-b' }\n"
		"local P = { '', 'a', '^a', 'a$', '^$', '.', '%a+', '%d+', '[%w_]+', '[^%s]+',\n"
		"  '^%s*(.-)%s*$', '(%w+)=(%w+)', '%s*=%s*', '%b()', '%f[%w]%w+', '(a)(b)', '()',\n"
		"  '(.)%1', '(%w+) %1', 'a-b', 'a*', 'a+', 'a?', 'x?y', '[]]', '[^]]', '[a-c]+',\n"
		"  '[%a-]+', '%.', '%%', '[%%]', '(a*(.)%w(%s*))', '%u', '%U+', '%l%l', '%x+',\n"
		"  '%p', '%c', '%g+', '(h)(e)(l)', '^(%d+)%.(%d+)%.(%d+)(.*)$', '[0-9]', 'b-', '.-b',\n"
		"  '%z', '\\0', 'x%zy', '[a-]', '[-a]', '[a%-z]', '^(.-)$', '(()a)', '%w+$' }\n"
		"for _, s in ipairs(S) do for _, p in ipairs(P) do\n"
		"  for _, f in ipairs({ 'find', 'match' }) do\n"
		"    for _, init in ipairs({ 1, 2, -2, 0, 50 }) do\n"
		"      local ok, e = same(string, f, s, p, init)\n"
		"      if not ok then return e end\n"
		"    end\n"
		"  end\n"
		"  local ok, e = same(string, 'find', s, p, 1, true)\n"
		"  if not ok then return e end\n"
		"  for _, r in ipairs({ '<%0>', '%1', '', '%%', { a = 'A', hello = 1 }, function(x) return x and x:upper() end }) do\n"
		"    ok, e = same(string, 'gsub', s, p, r)\n"
		"    if not ok then return e end\n"
		"    ok, e = same(string, 'gsub', s, p, r, 1)\n"
		"    if not ok then return e end\n"
		"  end\n"
		"  for _, init in ipairs({ 1, 3 }) do\n"
		"    ok, e = same_gmatch(s, p, init)\n"
		"    if not ok then return e end\n"
		"  end\n"
		"end end\n"
		"return true\n");
	lua_close(L);
}

UNIT_TEST(pattern_errors_match_stock_lua)
{
	lua_State *L = new_state(NULL);

	CHECK(load_prelude(L));
	CHECK_LUA(L,
		  "local P = { '%', '[a', '[^', '(a', 'a)', '%b', '%ba', '%f', '%fa', '%1', '(a)%2',\n"
		  "  '%0', '(()', ('(a)'):rep(33), '[%', 'a[', '((a)', '[]' }\n"
		  "for _, p in ipairs(P) do for _, s in ipairs({ '', 'a', 'aa(a)' }) do\n"
		  "  for _, f in ipairs({ 'find', 'match', 'gsub' }) do\n"
		  "    local ok, e = same(string, f, s, p, f == 'gsub' and 'x' or nil)\n"
		  "    if not ok then return e end\n"
		  "  end\n"
		  "end end\n"
		  "for _, r in ipairs({ '%', '%x', '%2', 'a%' }) do\n"
		  "  local ok, e = same(string, 'gsub', 'abc', '(b)', r)\n"
		  "  if not ok then return e end\n"
		  "end\n"
		  "local ok, e = same(string, 'gsub', 'abc', 'b', {}, 1)\n"
		  "if not ok then return e end\n"
		  "ok, e = same(string, 'gsub', 'abc', 'b', function() return {} end)\n"
		  "if not ok then return e end\n"
		  "ok, e = same(string, 'gsub', 'abc', 'b', true)\n"
		  "if not ok then return e end\n"
		  "return true\n");
	lua_close(L);
}

UNIT_TEST(random_patterns_match_stock_lua)
{
	lua_State *L = new_state(NULL);

	CHECK(load_prelude(L));
	/* short subjects and patterns keep the stock matcher's worst case
	 * small; the alphabet covers every special character */
	CHECK_LUA(L,
		  "math.randomseed(20240611)\n"
		  "local PA = { 'a', 'b', '.', '%', 'a', '*', '+', '-', '?', '(', ')', '[', ']', '^', '$',\n"
		  "  'd', 'w', 's', '1', 'f', 'b', ' ', '(', ')', 'a' }\n"
		  "local SA = { 'a', 'b', ' ', '(', ')', '1', 'x' }\n"
		  "local function rnd(alpha, n)\n"
		  "  local t = {}\n"
		  "  for i = 1, math.random(0, n) do t[i] = alpha[math.random(#alpha)] end\n"
		  "  return table.concat(t)\n"
		  "end\n"
		  "for _ = 1, 20000 do\n"
		  "  local s, p = rnd(SA, 10), rnd(PA, 7)\n"
		  "  for _, f in ipairs({ 'find', 'match' }) do\n"
		  "    local ok, e = same(string, f, s, p)\n"
		  "    if not ok then return e end\n"
		  "  end\n"
		  "  local ok, e = same(string, 'gsub', s, p, '[%0]')\n"
		  "  if not ok then return e end\n"
		  "  ok, e = same_gmatch(s, p)\n"
		  "  if not ok then return e end\n"
		  "end\n"
		  "return true\n");
	lua_close(L);
}

UNIT_TEST(table_functions_match_stock_lua)
{
	lua_State *L = new_state(NULL);

	CHECK(load_prelude(L));
	CHECK_LUA(
		L,
		"local function cmp(lib, fname, mk, ...)\n"
		"  local t1, t2 = mk(), mk()\n"
		"  local a = table.pack(pcall(lib and table[fname], t1, ...))\n"
		"  local b = table.pack(pcall(safe[fname], t2, ...))\n"
		"  local function ser(t) local o = {} for i = 1, #t do o[i] = type(t[i]) == 'table' and 'T' or tostring(t[i]) end return table.concat(o, ',') end\n"
		"  local function one(v) return type(v) == 'table' and 'T' or (tostring(v):gsub(\"to '[^']*'\", '')) end\n"
		"  local sa = tostring(a[1]) .. one(a[2]) .. ser(t1)\n"
		"  local sb = tostring(b[1]) .. one(b[2]) .. ser(t2)\n"
		"  if sa ~= sb then return fname .. ': stock ' .. sa .. ' / safe ' .. sb end\n"
		"end\n"
		"local function l5() return { 5, 3, 9, 1, 7 } end\n"
		"local cases = {\n"
		"  { 'concat', l5 }, { 'concat', l5, '-' }, { 'concat', l5, '', 2, 4 }, { 'concat', l5, ',', 4, 2 },\n"
		"  { 'concat', function() return { 1, {}, 3 } end },\n"
		"  { 'insert', l5, 9 }, { 'insert', l5, 1, 0 }, { 'insert', l5, 6, 0 }, { 'insert', l5, 8, 0 },\n"
		"  { 'insert', l5, 0, 0 }, { 'insert', l5, 1, 2, 3 },\n"
		"  { 'remove', l5 }, { 'remove', l5, 1 }, { 'remove', l5, 6 }, { 'remove', l5, 7 },\n"
		"  { 'remove', function() return {} end }, { 'remove', function() return {} end, 0 },\n"
		"  { 'move', l5, 1, 3, 2 }, { 'move', l5, 2, 5, 1 }, { 'move', l5, 1, 5, 3, {} },\n"
		"  { 'move', l5, 1, math.maxinteger, 2 }, { 'move', l5, -1, math.maxinteger, 2 },\n"
		"  { 'sort', l5 }, { 'sort', l5, function(a, b) return a > b end },\n"
		"  { 'sort', function() return { 'b', 'a', 'c' } end },\n"
		"  { 'sort', function() return { {}, {} } end },\n"
		"}\n"
		"for _, c in ipairs(cases) do\n"
		"  local e = cmp(true, table.unpack(c))\n"
		"  if e then return e end\n"
		"end\n"
		"for _, args in ipairs({ { { 1, 2, 3 } }, { { 1, 2, 3 }, 2 }, { { 1, 2, 3 }, 2, 5 }, { {}, 1, 0 },\n"
		"    { {}, 1, 1e8 }, { {}, math.mininteger, math.maxinteger } }) do\n"
		"  local ok, e = same(table, 'unpack', table.unpack(args))\n"
		"  if not ok then return e end\n"
		"end\n"
		"for _, args in ipairs({ { 'ab', 3 }, { 'ab', 3, ',' }, { '', 5 }, { 'x', 0 }, { 'x', -3 }, { 'x', 2.0 }, { 'x', '2' } }) do\n"
		"  local ok, e = same(string, 'rep', table.unpack(args))\n"
		"  if not ok then return e end\n"
		"end\n"
		"return true\n");
	lua_close(L);
}

/* The value at the top of L is the string want (a function, so that long
 * expected messages do not trip the compiler's truncation warnings in the
 * CHECK_STR macro). */
static int top_is(lua_State *L, const char *want)
{
	const char *got = lua_tostring(L, -1);

	if (got && !strcmp(got, want))
		return 1;
	snprintf(unit_msg, sizeof unit_msg, "got \"%.240s\", want \"%.240s\"",
		 got ? got : "(null)", want);
	return 0;
}

#define CHECK_TOP(L, want)                                                    \
	do {                                                                  \
		if (!top_is(L, want)) {                                       \
			unit_failed = 1;                                      \
			lua_close(L);                                         \
			return;                                               \
		}                                                             \
	} while (0)

/* A host whose budget is n steps: charge raises past it. */
static int64_t spent, allowed;

static void test_charge(lua_State *L, int64_t steps)
{
	spent += steps;
	if (spent > allowed)
		luaL_error(L, "budget spent");
}

UNIT_TEST(work_is_charged_and_stopped)
{
	gl_lsafe_host host = { .charge = test_charge };
	lua_State *L = new_state(&host);
	static const char *const hogs[] = {
		/* exponential backtracking */
		"return safe.find(('a'):rep(40), ('a*'):rep(20) .. 'b')",
		/* back-references over a long subject */
		"return safe.find(('a'):rep(20000), '(a*)%1%1%1b')",
		"return safe.gsub(('a'):rep(20000), '(a-)a*%1b', 'x')",
		"for _ in safe.gmatch(('a'):rep(3000), 'a-a-a-b') do end",
		/* C loops driven by a hostile __len */
		"local t = setmetatable({}, { __len = function() return 1 << 40 end })\n"
		"safe.insert(t, 1, 0)",
		"local t = setmetatable({}, { __len = function() return 1 << 40 end })\n"
		"safe.remove(t, 1)",
		"local t = setmetatable({}, { __index = function() return 'x' end,\n"
		"  __len = function() return 1 << 40 end })\n"
		"return safe.concat(t)",
		"safe.move({}, 1, 1 << 50, 2)",
		"safe.move({}, '1', '1e15', 2)",
		"local t = setmetatable({}, { __index = type, __len = function() return (1 << 31) - 2 end })\n"
		"safe.sort(t)",
		NULL
	};

	for (int i = 0; hogs[i]; i++) {
		spent = 0;
		allowed = 2000000;
		if (luaL_dostring(L, hogs[i]) == LUA_OK) {
			snprintf(unit_msg, sizeof unit_msg, "not stopped: %s",
				 hogs[i]);
			unit_failed = 1;
			break;
		}
		if (!strstr(lua_tostring(L, -1), "budget spent")) {
			snprintf(unit_msg, sizeof unit_msg, "%s: %.200s",
				 hogs[i], lua_tostring(L, -1));
			unit_failed = 1;
			break;
		}
		lua_settop(L, 0);
	}
	/* an ordinary match costs a handful of steps */
	spent = 0;
	allowed = 1000;
	CHECK(luaL_dostring(L, "return safe.match('key = value', "
			       "'^(%w+)%s*=%s*(%w+)$')") == LUA_OK);
	CHECK(spent < 100);
	lua_close(L);
}

UNIT_TEST(rep_refuses_big_and_empty_loops)
{
	gl_lsafe_host host = { .charge = test_charge };
	lua_State *L = new_state(&host);

	spent = 0;
	allowed = 1000;
	/* an empty string repeated forever is "" at once, not a loop */
	CHECK(luaL_dostring(L, "return safe.rep('', math.maxinteger) .. "
			       "safe.rep('', math.maxinteger, '')") == LUA_OK);
	CHECK_TOP(L, "");
	CHECK(spent < 10);
	CHECK(luaL_dostring(L, "return safe.rep('x', 1 << 30)") != LUA_OK);
	CHECK_TOP(L, "[string \"return safe.rep('x', 1 << 30)\"]:1: "
		     "string.rep: result of 1073741824 bytes "
		     "is above the sandbox limit of 1048576");
	CHECK(luaL_dostring(L, "return safe.rep('x', '1e18', ',')") != LUA_OK);
	lua_close(L);
}

UNIT_TEST(tostring_and_format_hide_addresses)
{
	lua_State *L = new_state(NULL);

	CHECK(luaL_dostring(
		      L,
		      "return safe.tostring({}) .. ' ' .. "
		      "safe.tostring(print) .. ' ' .. "
		      "safe.tostring(setmetatable({}, { __name = 'x.y' })) .. ' ' .. "
		      "safe.tostring(setmetatable({}, { __tostring = function() return 'T' end })) .. ' ' .. "
		      "safe.tostring(1.5) .. ' ' .. safe.tostring(nil)") ==
	      LUA_OK);
	CHECK_TOP(L, "table function x.y T 1.5 nil");
	CHECK(luaL_dostring(
		      L,
		      "return safe.format('%s|%5s|%d|%%|%q', {}, 'ab', 3, 'q')") ==
	      LUA_OK);
	CHECK_TOP(L, "table|   ab|3|%|\"q\"");
	CHECK(luaL_dostring(L, "return safe.format('%p', {})") != LUA_OK);
	CHECK_TOP(L, "[string \"return safe.format('%p', {})\"]:1: "
		     "invalid conversion '%p' to 'format' "
		     "(addresses are not available in the sandbox)");
	lua_close(L);
}

UNIT_TEST(random_is_uniform_and_checked)
{
	gl_lsafe_host host = { 0 };
	lua_State *L = new_state(&host);

	gl_lsafe_seed(host.rng, 42);
	CHECK_LUA(
		L,
		"local n = {}\n"
		"for i = 1, 6000 do local r = safe.random(1, 6); n[r] = (n[r] or 0) + 1 end\n"
		"for i = 1, 6 do if (n[i] or 0) < 850 or n[i] > 1150 then return 'skewed ' .. i .. ' ' .. tostring(n[i]) end end\n"
		"for i = 1, 100 do local f = safe.random(); if f < 0 or f >= 1 then return 'float ' .. f end end\n"
		"for i = 1, 100 do local r = safe.random(-3, -3); if r ~= -3 then return 'one' end end\n"
		"local r = safe.random(math.mininteger, math.maxinteger)\n"
		"if math.type(r) ~= 'integer' then return 'full range' end\n"
		"if pcall(safe.random, 5, 4) then return 'empty interval accepted' end\n"
		"if pcall(safe.random, 0.5) then return 'float bound accepted' end\n"
		"return true\n");
	lua_close(L);
}

/* clang-format off */
UNIT_SUITE(lsafe,
	   UNIT_CASE(patterns_match_stock_lua),
	   UNIT_CASE(pattern_errors_match_stock_lua),
	   UNIT_CASE(random_patterns_match_stock_lua),
	   UNIT_CASE(table_functions_match_stock_lua),
	   UNIT_CASE(work_is_charged_and_stopped),
	   UNIT_CASE(rep_refuses_big_and_empty_loops),
	   UNIT_CASE(tostring_and_format_hide_addresses),
	   UNIT_CASE(random_is_uniform_and_checked));
/* clang-format on */
