--- The sandbox of type files: allow-listed environments, read-only
-- (frozen) tables, the seal that leaves nothing mutable behind once a type
-- has loaded, and the start-up self check. docs/lua-runtime.md
-- ("Isolation") describes the model form by form.
--
-- A type file runs once in a *declaration* environment (the `glare` DSL);
-- its hooks later run in a *runtime* environment (`glare.log`, `glare.fail`,
-- ...). Both are built from an allow-list, never by pruning `_G`:
--
--   basics   assert error ipairs next pairs pcall select tonumber tostring
--            type xpcall _VERSION, setmetatable (no __gc/__close/__mode),
--            print (to the log sink)
--   string   without `dump`; in the server every function whose work the
--            instruction count cannot see is the C core's budget-charged
--            replacement (`glare.core`); offline, `rep`, the pattern
--            functions and `table.move` are capped instead
--   table, math (without randomseed), utf8, os.time/clock/date
--
-- Absent on purpose: io, os (rest), debug, package/require, load/loadfile/
-- dofile, string.dump, collectgarbage, rawset/rawget/rawequal/rawlen,
-- getmetatable, coroutine.
--
-- Read-only tables. A frozen table is empty itself; its metatable, hidden
-- behind `__metatable`, holds the contents under a private key and serves
-- reads from them, refuses writes (`__newindex`), and answers `#` and
-- `pairs` without ever handing the contents table out. Sandboxed code has
-- no `rawset` and no `getmetatable`, so nothing reaches the contents.
local sandbox = {}

-- Trusted references, taken before the server removes `debug` and the
-- other host functions from the state's globals.
local core = package and package.loaded and package.loaded["glare.core"]
local dgetmetatable, dsetmetatable = debug.getmetatable, debug.setmetatable
local getupvalue, setupvalue, upvalueid, getinfo =
  debug.getupvalue, debug.setupvalue, debug.upvalueid, debug.getinfo
local type, error, pairs, ipairs, next, select, pcall =
  type, error, pairs, ipairs, next, select, pcall
local rawget, rawset, rawlen, setmetatable = rawget, rawset, rawlen, setmetatable

-- In the server, the C replacements go into the state's own libraries
-- before any other module captures a function: library code and type code
-- then run the same budget-charged functions.
if core then
  for _, k in ipairs({ "rep", "find", "match", "gmatch", "gsub", "format" }) do string[k] = core[k] end
  for _, k in ipairs({ "concat", "insert", "remove", "move", "unpack", "sort" }) do table[k] = core[k] end
  math.random = core.random
  os.clock = core.clock
  tostring = core.tostring
  string.dump = nil
end

local tostring = tostring
local format, concat = string.format, table.concat
local str_sub, str_byte = string.sub, string.byte

local json = require("glare.json")

sandbox.core = core ~= nil

--- Limits of the offline (pure Lua) string and table wrappers; the server
-- charges the work to the request's budget instead.
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
-- Read-only tables
----------------------------------------------------------------------------

local FROZEN, NAME = {}, {}
--- The key under which a frozen table's metatable holds its contents (the
-- C core reads frozen tables through it when converting to JSON).
sandbox.FROZEN = FROZEN

local function contents(t)
  local mt = dgetmetatable(t)
  return mt and rawget(mt, FROZEN)
end

--- The contents of a read-only view (library code only), or nil.
function sandbox.contents(t)
  if type(t) ~= "table" then return nil end
  return contents(t)
end

local function ro_newindex(t, k)
  error(format("%s is read-only (attempt to set '%s')",
    rawget(dgetmetatable(t), NAME) or "table", tostring(k)), 2)
end

local function ro_len(t) return rawlen(contents(t)) end

-- The iterator `pairs` returns for a read-only table: it reads the
-- contents of the table it is given, and hands out values only.
local function ro_next(t, k)
  local c = type(t) == "table" and contents(t)
  if not c then error("bad argument #1 to 'next' (read-only table expected)", 2) end
  return next(c, k)
end

local function ro_pairs(t) return ro_next, t, nil end

-- Metamethods a frozen table keeps from its own metatable (those that
-- receive the table itself; __index/__len/__pairs are rebuilt, __gc,
-- __close and __mode are never carried over).
local KEEP = { "__call", "__tostring", "__name", "__eq", "__lt", "__le", "__concat",
  "__unm", "__add", "__sub", "__mul", "__div", "__mod", "__pow", "__idiv", "__band",
  "__bor", "__bxor", "__shl", "__shr", "__bnot" }

-- Make the empty table `p` a read-only view of `c`; `mt` is the metatable
-- the frozen table had (its metamethods keep working).
local function make_view(p, c, name, mt)
  local fm = { [FROZEN] = c, [NAME] = name, __index = c, __newindex = ro_newindex,
    __len = ro_len, __pairs = ro_pairs, __metatable = false }
  if mt ~= nil then
    -- the metamethods: from the metatable's own contents if it is read-only
    -- already (a frozen "class"), from the table's if it is its own
    local mm = mt == p and c or contents(mt) or mt
    for _, k in ipairs(KEEP) do fm[k] = rawget(mm, k) end
    if rawget(mm, "__len") ~= nil then fm.__len = rawget(mm, "__len") end
    if rawget(mm, "__pairs") ~= nil then fm.__pairs = rawget(mm, "__pairs") end
    -- library code still sees the metatable it knows (field kinds, JSON marks)
    local shown = rawget(mm, "__metatable")
    if shown == nil then shown = mt end
    fm.__metatable = shown
    if mt == json.array_mt or mt == json.object_mt then
      dsetmetatable(c, mt)   -- the C converter reads the mark from the contents
    end
    local idx = rawget(mm, "__index")
    if idx == p then idx = nil end   -- a table that is its own class
    if type(idx) == "table" then
      dsetmetatable(c, { __index = idx })
    elseif idx ~= nil then
      -- a function gets the frozen table itself, never its contents
      fm.__index = function(self, k)
        local v = rawget(c, k)
        if v ~= nil then return v end
        if type(idx) == "function" then return idx(self, k) end
        return idx[k]
      end
    end
  end
  dsetmetatable(p, fm)
  return p
end

--- A new read-only view of `t` (a table only library code holds). `mt`
-- optionally supplies metamethods (__tostring, __name, ...).
function sandbox.view(t, name, mt)
  return make_view({}, t, name or "table", mt)
end

--- Freeze `t` in place (shallow): its contents move behind its metatable,
-- its identity stays. Returns `t`.
function sandbox.freeze(t, name)
  if contents(t) then return t end
  local c = {}
  for k, v in next, t do c[k] = v end
  for k in next, c do rawset(t, k, nil) end
  return make_view(t, c, name or "table", dgetmetatable(t))
end

--- True when `t` is read-only (frozen or a view).
function sandbox.is_frozen(t)
  return type(t) == "table" and contents(t) ~= nil
end

-- Freeze everything reachable from `v`. Functions defined in `st.source`
-- (the type file) are walked through their upvalues, whose slots are
-- recorded in `st.boxes` so that they can be put back after every call;
-- other functions (the library's, C functions) are not walked.
local function walk(v, name, st)
  local tv = type(v)
  if tv == "table" then
    if st.seen[v] or v == json.null or st.skip[v] then return end
    st.seen[v] = true
    if contents(v) then return end
    local mt = dgetmetatable(v)
    for k, x in next, v do
      walk(k, name, st)
      walk(x, type(k) == "string" and (name .. "." .. k) or format("%s[%s]", name, tostring(k)), st)
    end
    if mt ~= nil and mt ~= json.array_mt and mt ~= json.object_mt then
      for _, x in next, mt do walk(x, name, st) end
    end
    sandbox.freeze(v, name)
  elseif tv == "function" then
    if st.seen[v] then return end
    st.seen[v] = true
    if st.source == nil or getinfo(v, "S").source ~= st.source then return end
    local i = 1
    while true do
      local uname, x = getupvalue(v, i)
      if uname == nil then break end
      local id = upvalueid(v, i)
      if not st.boxed[id] then
        st.boxed[id] = true
        local b = st.boxes
        local n = b.n
        b[n + 1], b[n + 2], b[n + 3] = v, i, x
        b.n = n + 3
      end
      walk(x, uname, st)
      i = i + 1
    end
  end
end

--- Freeze `t` and everything reachable from it (library data: functions
-- are not walked). Returns `t`.
function sandbox.freeze_all(t, name)
  walk(t, name or "table", { seen = {}, skip = {}, boxed = {}, boxes = { n = 0 } })
  return t
end

--- Seal a loaded type: every table reachable from `roots` (a list of
-- `{ value, name }`) and from the upvalues of the functions the file
-- defines (`source` is the file's chunk name, "@types/x.lua") becomes
-- read-only. `skip` lists tables left alone (the file's environment).
-- Returns the upvalue slots as a flat list `{ f, n, value, ..., n = size }`
-- (values may be nil) for `sandbox.restore`.
function sandbox.seal(roots, source, skip)
  local st = { seen = {}, skip = {}, boxed = {}, boxes = { n = 0 }, source = source }
  for _, t in ipairs(skip or {}) do st.skip[t] = true end
  for _, r in ipairs(roots) do walk(r[1], r[2], st) end
  return st.boxes
end

--- Put back the upvalues recorded by `seal`: file-level locals (and a
-- rebound `_ENV`) a call assigned are what they were at load time again.
function sandbox.restore(boxes)
  for i = 1, boxes.n, 3 do setupvalue(boxes[i], boxes[i + 1], boxes[i + 2]) end
end

----------------------------------------------------------------------------
-- Offline wrappers (stock lua5.4, no C core): caps instead of a budget
----------------------------------------------------------------------------

-- Estimated worst-case steps of a Lua pattern match: each unbounded
-- quantifier (`*`, `+`, `-`, `%b`) can multiply the work by the subject
-- length, each `?` by two, and an unanchored search adds one more factor
-- (every start position). cost = n^e / e! * 2^q. Deliberately coarse, and
-- only used offline: the server counts the matcher's steps instead.
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

local function offline_string(s)
  local rep, find, match, gmatch, gsub = string.rep, string.find, string.match,
    string.gmatch, string.gsub
  s.rep = function(str, n, sep)
    local ls = type(str) == "string" and #str or #tostring(str)
    local lsep = type(sep) == "string" and #sep or 0
    n = math.tointeger(tonumber(n)) or n
    if type(n) == "number" and n > 0 then
      if ls + lsep == 0 then return "" end
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
end

local function offline_table(t)
  local move = table.move
  t.move = function(a1, f, e, tpos, a2)
    local nf, ne = math.tointeger(tonumber(f)), math.tointeger(tonumber(e))
    if nf and ne and ne - nf + 1 > sandbox.limits.move then
      error(format("table.move: %.0f elements is above the sandbox limit of %d",
        ne - nf + 1.0, sandbox.limits.move), 2)
    end
    return move(a1, f, e, tpos, a2)
  end
end

----------------------------------------------------------------------------
-- The allow-listed libraries (one copy per state, behind read-only views)
----------------------------------------------------------------------------

local function copy(t, without)
  local c = {}
  for k, v in pairs(t) do
    if not (without and without[k]) then c[k] = v end
  end
  return c
end

--- The string library of sandboxed code (a plain table held by the
-- library; the string metatable's `__index` in a server state).
sandbox.string = copy(string, { dump = true })
if not core then offline_string(sandbox.string) end
local safe_table = copy(table)
if not core then offline_table(safe_table) end

local LIBS = {
  string = sandbox.view(sandbox.string, "string"),
  table = sandbox.view(safe_table, "table"),
  math = sandbox.view(copy(math, { randomseed = true }), "math"),
  utf8 = sandbox.view(copy(utf8), "utf8"),
  os = sandbox.view({ time = os.time, clock = os.clock, date = os.date }, "os"),
}

--- Point the state's string metatable at the sandbox's string library and
-- hide it, so `("x"):rep(n)` is `string.rep` of the sandbox. The server
-- does it when it builds a state; call it yourself offline if you want it.
function sandbox.protect_string_metatable()
  local mt = dgetmetatable("")
  if type(mt) ~= "table" then return false end
  mt.__index = sandbox.string
  mt.__metatable = false
  return true
end
if core then sandbox.protect_string_metatable() end

--- `setmetatable` for sandboxed code: refuses metatables carrying `__gc`
-- (a finalizer would run outside any budget, e.g. in lua_close), `__close`
-- and `__mode`; protected (and read-only) tables keep their metatable. A
-- read-only table may serve as a metatable (a frozen "class").
local REFUSED_MM = { "__gc", "__close", "__mode" }
function sandbox.setmetatable(t, mt)
  if type(t) ~= "table" then
    error(format("bad argument #1 to 'setmetatable' (table expected, got %s)", type(t)), 2)
  end
  if mt ~= nil then
    if type(mt) ~= "table" then
      error(format("bad argument #2 to 'setmetatable' (nil or table expected, got %s)", type(mt)), 2)
    end
    mt = contents(mt) or mt
    for _, k in ipairs(REFUSED_MM) do
      if rawget(mt, k) ~= nil then
        error(format("setmetatable: metatables with %s are not allowed in the sandbox", k), 2)
      end
    end
  end
  local cur = dgetmetatable(t)
  if cur ~= nil and rawget(cur, "__metatable") ~= nil then
    error("cannot change a protected metatable", 2)
  end
  return dsetmetatable(t, mt)
end

--- `xpcall` for sandboxed code: the handler runs after the error has
-- unwound, as an ordinary call under the budget. (A real message handler
-- can run inside the instruction hook, where no budget applies.)
function sandbox.xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error(format("bad argument #2 to 'xpcall' (function expected, got %s)", type(handler)), 2)
  end
  local function finish(ok, ...)
    if ok then return true, ... end
    return false, handler((...))
  end
  return finish(pcall(f, ...))
end

--- The allow-listed base of every environment: a fresh plain table (the
-- caller adds `glare`). `print(...)` calls `log("info", message)`.
function sandbox.base(log)
  local b = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, xpcall = sandbox.xpcall, _VERSION = _VERSION,
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

local function undeclared(_, k)
  error(format("attempt to read undeclared global '%s'", tostring(k)), 2)
end

--- Create a type's global environment. Reads look in the type's own
-- globals, then in `base` (unknown names raise: typos surface at once).
-- While declaring, writes define the type's globals. Returns `env, ctl`:
-- `ctl.globals()` is the table of the type's own globals, and
-- `ctl.switch(base2)` installs the runtime base; from then on the
-- environment is read-only (seal the globals themselves first).
function sandbox.new_env(base)
  local user = {}
  local emt
  emt = {
    __index = function(_, k)
      local v = user[k]
      if v == nil then v = base[k] end
      if v == nil then
        error(format("attempt to read undeclared global '%s'", tostring(k)), 2)
      end
      return v
    end,
    __newindex = function(_, k, v) user[k] = v end,
    __pairs = function() return next, {}, nil end,
    __metatable = false,
  }
  local env = setmetatable({}, emt)
  local ctl = {}
  function ctl.globals() return user end
  function ctl.switch(new_base)
    local g = {}
    for k, v in next, new_base do g[k] = v end
    for k, v in next, user do g[k] = v end
    setmetatable(g, { __index = undeclared })
    emt.__index = g
    emt.__newindex = function(_, k)
      error(format("attempt to set global '%s': globals are read-only once the type has loaded",
        tostring(k)), 2)
    end
  end
  return env, ctl
end

----------------------------------------------------------------------------
-- Self check
----------------------------------------------------------------------------

local function probe(env, name)
  local ok, v = pcall(function() return env[name] end)
  return ok and v or nil
end

-- A library table of the environment must refuse writes, show nothing to
-- raw access, and hand out no other table from `pairs`.
local function check_readonly(lib, name)
  if type(lib) ~= "table" then return true end
  if next(lib) ~= nil then return nil, name .. " is writable (raw contents visible)" end
  if pcall(function() lib.__self_check = true end) then
    return nil, name .. " accepts new keys"
  end
  local f, s = pairs(lib)
  if s ~= lib then return nil, "pairs(" .. name .. ") reveals another table" end
  local k = f(s, nil)
  if k ~= nil and pcall(function() lib[k] = lib[k] end) then
    return nil, name .. "." .. tostring(k) .. " can be replaced"
  end
  if pcall(sandbox.setmetatable, lib, {}) then
    return nil, "the metatable of " .. name .. " can be replaced"
  end
  return true
end

--- Start-up self check of an environment (run on every type as it loads,
-- at start-up and reload): `true`, or `nil, message` naming the first
-- problem: a forbidden name reachable, `os` beyond time/clock/date,
-- `string.dump`, a library table that is writable or whose `pairs`
-- reveals its contents, a finalizer accepted by `setmetatable`, a
-- writable global. `runtime` also checks the globals are read-only.
function sandbox.self_check(env, runtime)
  for _, name in ipairs(sandbox.FORBIDDEN) do
    if probe(env, name) ~= nil then return nil, "forbidden global reachable: " .. name end
  end
  local os_ = probe(env, "os")
  if os_ ~= nil then
    for k in pairs(os_) do
      if k ~= "time" and k ~= "clock" and k ~= "date" then
        return nil, "forbidden function reachable: os." .. k
      end
    end
  end
  local str = probe(env, "string")
  if str ~= nil and str.dump ~= nil then
    return nil, "forbidden function reachable: string.dump"
  end
  local smt = dgetmetatable("")
  if smt and smt.__index == sandbox.string and ("").dump ~= nil then
    return nil, "forbidden function reachable: (\"\").dump"
  end
  if core and not (smt and smt.__index == sandbox.string and smt.__metatable == false) then
    return nil, "the string metatable is not the sandbox's"
  end
  for _, name in ipairs({ "string", "table", "math", "utf8", "os", "glare" }) do
    local lib = probe(env, name)
    local ok, err = check_readonly(lib, name)
    if not ok then return nil, err end
    if name == "glare" and lib ~= nil then
      for _, sub in ipairs({ "json", "semver", "options", "typedefs" }) do
        local s = probe(lib, sub)
        ok, err = check_readonly(s, "glare." .. sub)
        if not ok then return nil, err end
      end
    end
  end
  local setmt = probe(env, "setmetatable")
  if setmt ~= nil and pcall(setmt, {}, { __gc = function() end }) then
    return nil, "setmetatable accepts a finalizer (__gc)"
  end
  if runtime and pcall(function() env.__self_check = true end) then
    return nil, "globals are writable at run time"
  end
  return true
end

return sandbox
