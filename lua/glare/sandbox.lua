--- Allow-listed environments for type files and hooks.
--
-- A type file runs once in a *declaration* environment (the `glare` DSL);
-- its hooks later run in a *runtime* environment (`glare.log`, `glare.fail`,
-- ...). Both are built from an allow-list, never by pruning `_G`:
--
--   basics   assert error ipairs next pairs pcall select tonumber tostring
--            type xpcall _VERSION, setmetatable (no __gc/__close/__mode),
--            print (to the log sink)
--   string   a copy without `dump`; `rep` capped in result size; find,
--            match, gmatch and gsub capped in pattern and subject length
--            and in pattern complexity (a C call cannot be interrupted by
--            the instruction budget, so its work must be bounded up front)
--   table    a copy; `move` capped in element count
--   math, utf8, os.time/clock/date
--
-- Absent on purpose: io, os (rest), debug, package/require, load/loadfile/
-- dofile, string.dump, collectgarbage, rawset/rawget/rawequal/rawlen,
-- getmetatable, coroutine.
--
-- Every shared table is a read-only proxy whose metatable is hidden. The
-- string metatable is VM-wide, so only the host can protect it: the C core
-- calls `sandbox.protect_string_metatable()` (or does the same in C) when it
-- creates a worker state.
local sandbox = {}

local json = require("glare.json")

local type, error, tostring, pairs, next, select = type, error, tostring, pairs, next, select
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local format, concat = string.format, table.concat
local str_sub, str_byte = string.sub, string.byte

--- Limits applied by the wrapped string/table functions. The C core may
-- change them before creating environments.
sandbox.limits = {
  rep = 1 << 20,          -- bytes: largest string.rep / gsub result
  subject = 1 << 16,      -- bytes: largest subject for find/match/gmatch/gsub
  pattern = 256,          -- bytes: longest pattern
  pattern_cost = 1e8,     -- estimated backtracking steps (see pattern_cost)
  move = 1 << 20,         -- elements: largest table.move
}

--- Names that must never be reachable from a sandboxed environment.
sandbox.FORBIDDEN = { "io", "debug", "package", "require", "load", "loadfile",
  "dofile", "loadstring", "collectgarbage", "rawset", "rawget", "rawequal",
  "rawlen", "getmetatable", "coroutine", "module", "newproxy", "setfenv",
  "getfenv" }

----------------------------------------------------------------------------
-- Read-only views
----------------------------------------------------------------------------

local function readonly_error(name)
  return function(_, k)
    error(format("%s is read-only (attempt to set '%s')", name, tostring(k)), 2)
  end
end

--- A read-only proxy of `t` (shallow): reads go to `t`, writes raise,
-- `pairs` works, the metatable is hidden.
function sandbox.readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = readonly_error(name or "table"),
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
end

--- A deep read-only view: nested tables are wrapped on access (one proxy
-- per table, cached), so a hook cannot change state shared between
-- requests through a global. Plain and JSON-marked tables are wrapped;
-- tables with any other metatable (json.null, field specs) are returned
-- as they are.
function sandbox.readonly_deep(t, name)
  local cache = setmetatable({}, { __mode = "k" })
  local function wrap(v, path)
    if type(v) ~= "table" then return v end
    local mt = getmetatable(v)
    if mt ~= nil and mt ~= json.array_mt and mt ~= json.object_mt then return v end
    local p = cache[v]
    if p then return p end
    p = setmetatable({}, {
      __index = function(_, k) return wrap(v[k], path .. "." .. tostring(k)) end,
      __newindex = readonly_error(path),
      __pairs = function()
        return function(_, k)
          local nk, nv = next(v, k)
          if nk ~= nil then return nk, wrap(nv, path .. "." .. tostring(nk)) end
        end, p, nil
      end,
      __len = function() return #v end,
      __metatable = false,
    })
    cache[v] = p
    return p
  end
  return wrap(t, name or "table")
end

----------------------------------------------------------------------------
-- Safe string library
----------------------------------------------------------------------------

-- Estimated worst-case steps of a Lua pattern match: each unbounded
-- quantifier (`*`, `+`, `-`, `%b`) can multiply the work by the subject
-- length, each `?` by two, and an unanchored search adds one more factor
-- (every start position). cost = n^e / e! * 2^q. Deliberately coarse: it
-- refuses the classic blow-ups (`("a-"):rep(12) .. "b"` on 26 bytes took
-- 104 s in one C call) while trimming patterns on short strings pass.
function sandbox.pattern_cost(pattern, n, anchored_ok)
  local i, len = 1, #pattern
  local k, q = 0, 0
  local anchored = false
  if anchored_ok and str_byte(pattern, 1) == 94 then anchored = true; i = 2 end
  local function quantifier()
    local c = str_sub(pattern, i, i)
    if c == "*" or c == "+" or c == "-" then k = k + 1; i = i + 1
    elseif c == "?" then q = q + 1; i = i + 1 end
  end
  local function skip_set()
    -- i is on '['
    i = i + 1
    if str_sub(pattern, i, i) == "^" then i = i + 1 end
    if str_sub(pattern, i, i) == "]" then i = i + 1 end
    while i <= len and str_sub(pattern, i, i) ~= "]" do
      if str_sub(pattern, i, i) == "%" then i = i + 1 end
      i = i + 1
    end
    i = i + 1
  end
  while i <= len do
    local c = str_sub(pattern, i, i)
    if c == "%" then
      local d = str_sub(pattern, i + 1, i + 1)
      if d == "b" then k = k + 1; i = i + 4
      elseif d == "f" then i = i + 2; if str_sub(pattern, i, i) == "[" then skip_set() end
      else i = i + 2; quantifier() end
    elseif c == "[" then skip_set(); quantifier()
    elseif c == "(" or c == ")" then i = i + 1
    else i = i + 1; quantifier() end
  end
  local e = k + (anchored and 0 or 1)
  local cost = 1.0
  for j = 1, e do cost = cost * n / j end
  return cost * 2.0 ^ (q > 60 and 60 or q)
end

local function check_match(fname, s, p, init, plain, anchored_ok)
  local L = sandbox.limits
  if type(s) == "string" and #s > L.subject then
    error(format("%s: subject of %d bytes is above the sandbox limit of %d", fname, #s, L.subject), 3)
  end
  if type(p) == "string" and #p > L.pattern then
    error(format("%s: pattern of %d bytes is above the sandbox limit of %d", fname, #p, L.pattern), 3)
  end
  if plain or type(s) ~= "string" or type(p) ~= "string" then return end
  local n = #s
  if type(init) == "number" then
    local start = init < 0 and n + init + 1 or init
    if start > 1 then n = n - start + 1 end
  end
  if n > 0 and sandbox.pattern_cost(p, n, anchored_ok) > L.pattern_cost then
    error(format("%s: pattern %q is too complex for a %d-byte subject (sandbox limit)", fname, p, n), 3)
  end
end

local function make_safe_string()
  local s = {}
  for k, v in pairs(string) do s[k] = v end
  s.dump = nil
  local rep, find, match, gmatch, gsub = string.rep, string.find, string.match,
    string.gmatch, string.gsub

  s.rep = function(str, n, sep)
    local ls = type(str) == "string" and #str or #tostring(str)
    local lsep = type(sep) == "string" and #sep or 0
    if type(n) == "number" and n > 0 then
      local size = (ls + 0.0) * n + lsep * (n - 1.0)
      if size > sandbox.limits.rep then
        error(format("string.rep: result of %.0f bytes is above the sandbox limit of %d",
          size, sandbox.limits.rep), 2)
      end
    end
    return rep(str, n, sep)
  end
  s.find = function(str, p, init, plain)
    check_match("string.find", str, p, init, plain, true)
    return find(str, p, init, plain)
  end
  s.match = function(str, p, init)
    check_match("string.match", str, p, init, false, true)
    return match(str, p, init)
  end
  s.gmatch = function(str, p, init)
    check_match("string.gmatch", str, p, init, false, false)
    return gmatch(str, p, init)
  end
  s.gsub = function(str, p, repl, n)
    check_match("string.gsub", str, p, nil, false, true)
    if type(repl) == "string" and type(str) == "string"
       and #str + (#str + 1.0) * #repl > sandbox.limits.rep then
      error(format("string.gsub: result could exceed the sandbox limit of %d bytes",
        sandbox.limits.rep), 2)
    end
    return gsub(str, p, repl, n)
  end
  return s
end

local function make_safe_table()
  local t = {}
  for k, v in pairs(table) do t[k] = v end
  local move = table.move
  t.move = function(a1, f, e, tpos, a2)
    if type(f) == "number" and type(e) == "number" and e - f + 1 > sandbox.limits.move then
      error(format("table.move: %.0f elements is above the sandbox limit of %d",
        e - f + 1.0, sandbox.limits.move), 2)
    end
    return move(a1, f, e, tpos, a2)
  end
  return t
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

--- The safe string library (a plain table; use it as the string metatable's
-- `__index` in a worker state).
sandbox.string = make_safe_string()

local LIBS = {
  string = sandbox.readonly(sandbox.string, "string"),
  table = sandbox.readonly(make_safe_table(), "table"),
  math = sandbox.readonly(copy(math), "math"),
  utf8 = sandbox.readonly(copy(utf8), "utf8"),
  os = sandbox.readonly({ time = os.time, clock = os.clock, date = os.date }, "os"),
}

--- Replace the VM-wide string metatable's `__index` with the safe string
-- library and hide the metatable. Call once per worker state (it changes
-- method calls like `("x"):rep(n)` for all code in the state).
function sandbox.protect_string_metatable()
  local mt = getmetatable("")
  if type(mt) ~= "table" then return false end
  mt.__index = sandbox.string
  mt.__metatable = false
  return true
end

--- `setmetatable` for sandboxed code: refuses metatables carrying `__gc`
-- (a finalizer would run outside any budget, e.g. in lua_close), `__close`
-- and `__mode`; protected metatables stay protected.
function sandbox.setmetatable(t, mt)
  if type(t) ~= "table" then
    error(format("bad argument #1 to 'setmetatable' (table expected, got %s)", type(t)), 2)
  end
  if mt ~= nil then
    if type(mt) ~= "table" then
      error(format("bad argument #2 to 'setmetatable' (nil or table expected, got %s)", type(mt)), 2)
    end
    for _, k in ipairs({ "__gc", "__close", "__mode" }) do
      if rawget(mt, k) ~= nil then
        error(format("setmetatable: metatables with %s are not allowed in the sandbox", k), 2)
      end
    end
  end
  return setmetatable(t, mt)
end

--- The allow-listed base of every environment: a fresh plain table (the
-- caller adds `glare` and makes it read-only). `print(...)` calls
-- `log("info", message)`.
function sandbox.base(log)
  local b = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, xpcall = xpcall, _VERSION = _VERSION,
    setmetatable = sandbox.setmetatable,
    print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      log("info", concat(parts, "\t"))
    end,
  }
  for name, lib in pairs(LIBS) do b[name] = lib end
  return b
end

--- Create a type's global environment. Reads look in the type's own
-- globals, then in `base` (unknown names raise: typos surface at once).
-- While declaring, writes define the type's globals; `switch(base2)`
-- installs the runtime base and freezes the globals (deep read-only).
-- Returns `env, switch`.
function sandbox.new_env(base)
  local user = {}
  local frozen = false
  local env = setmetatable({}, {
    __index = function(_, k)
      local v = user[k]
      if v == nil then v = base[k] end
      if v == nil then
        error(format("attempt to read undeclared global '%s'", tostring(k)), 2)
      end
      return v
    end,
    __newindex = function(_, k, v)
      if frozen then
        error(format("attempt to set global '%s': globals are read-only once the type has loaded",
          tostring(k)), 2)
      end
      user[k] = v
    end,
    __pairs = function() return next, {}, nil end,
    __metatable = false,
  })
  local function switch(new_base)
    local view = {}
    for k, v in pairs(user) do view[k] = sandbox.readonly_deep(v, k) end
    user = view
    base = new_base
    frozen = true
  end
  return env, switch
end

--- Start-up self check: `true`, or `nil, message` naming the first
-- forbidden name reachable from `env` (globals, and `os` beyond
-- time/clock/date, `string.dump`).
function sandbox.self_check(env)
  for _, name in ipairs(sandbox.FORBIDDEN) do
    local ok, v = pcall(function() return env[name] end)
    if ok and v ~= nil then return nil, "forbidden global reachable: " .. name end
  end
  local ok, os_ = pcall(function() return env.os end)
  if ok and os_ ~= nil then
    for k in pairs(os_) do
      if k ~= "time" and k ~= "clock" and k ~= "date" then
        return nil, "forbidden function reachable: os." .. k
      end
    end
  end
  local ok2, str = pcall(function() return env.string end)
  if ok2 and str ~= nil and str.dump ~= nil then
    return nil, "forbidden function reachable: string.dump"
  end
  return true
end

return sandbox
