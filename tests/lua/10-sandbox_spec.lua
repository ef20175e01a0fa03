-- The sandbox: one test per escape class we guard in pure Lua. (Memory and
-- instruction budgets are enforced by the C core: tests/sandbox/.)
local json = require("glare.json")
local runtime = require("glare.runtime")
local sandbox = require("glare.sandbox")
local H = dofile("tests/lua/helpers.lua")

-- Runs `body` as the body of a hook of a type loaded from source, so that
-- it executes in the sandboxed runtime environment (a closure written in
-- this spec would run in busted's own environment). `prelude` is
-- declaration-time code placed before the type definition.
local function probe_type(body, prelude)
  local src = (prelude or "") .. "\nreturn glare.type { name = 'probe', hooks = {\n"
    .. "pre_create = function(ctx, af)\n" .. body .. "\nend } }"
  return assert(H.load(src, "types/probe.lua"))
end

local function run(body, prelude)
  return probe_type(body, prelude).hooks.pre_create({}, {})
end

-- The message of the error a hook raises, through run_hook (a 500).
local function hook_error(T, ...)
  local ok, status, msg = runtime.run_hook(T, "pre_create", ...)
  assert.same({ false, 500 }, { ok, status })
  return msg
end

local PRELUDE = [[
HELPERS = { list = { 1, 2 } }
function helper() return "helped" end]]

-- The hook raises exactly `message` (after the "types/probe.lua:N: "
-- position, when the error has one).
local function fails(body, message, prelude)
  local ok, err = pcall(run, body, prelude)
  assert.is_false(ok, body)
  assert.equal(message, (tostring(err):gsub("^types/probe%.lua:%d+: ", "")))
end

local function reachable(name)
  return run(("return (pcall(function() return _ENV[%q] end))"):format(name))
end

describe("sandbox", function()
  describe("forbidden names are absent at runtime", function()
    for _, name in ipairs(sandbox.FORBIDDEN) do
      it(name, function() assert.is_false(reachable(name)) end)
    end
    it("os has only time, clock and date", function()
      assert.equal("clock,date,time", run([[
        local keys = {}
        for k in pairs(os) do keys[#keys + 1] = k end
        table.sort(keys)
        return table.concat(keys, ",")]]))
    end)
    it("string has no dump", function()
      assert.is_true(run("return string.dump == nil and type(string.format) == 'function'"))
    end)
    it("the allowed basics are present", function()
      for _, name in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
          "tonumber", "tostring", "type", "xpcall", "_VERSION", "setmetatable", "print",
          "string", "table", "math", "utf8", "os", "glare" }) do
        assert.is_true(reachable(name), name)
      end
    end)
  end)

  describe("forbidden names are absent while declaring", function()
    for _, name in ipairs(sandbox.FORBIDDEN) do
      it(name, function()
        local _, err = H.load("local x = " .. name, "types/d.lua")
        assert.equal("types/d.lua:1: attempt to read undeclared global '" .. name .. "'", err)
      end)
    end
  end)

  describe("self_check", function()
    it("passes on a sandbox environment", function()
      local env = sandbox.new_env(sandbox.base(function() end))
      assert.is_true(sandbox.self_check(env))
    end)
    it("names a forbidden global or function that is reachable", function()
      local base = sandbox.base(function() end)
      base.io = io
      assert.same({ nil, "forbidden global reachable: io" }, { sandbox.self_check((sandbox.new_env(base))) })
      base = sandbox.base(function() end)
      base.os = { time = os.time, execute = os.execute }
      assert.same({ nil, "forbidden function reachable: os.execute" },
        { sandbox.self_check((sandbox.new_env(base))) })
    end)
  end)

  describe("string caps", function()
    it("rep refuses results above the limit", function()
      fails("return string.rep('x', 1 << 30)",
        "string.rep: result of 1073741824 bytes is above the sandbox limit of 1048576")
      fails("return string.rep('ab', 1 << 20, ',')",
        "string.rep: result of 3145727 bytes is above the sandbox limit of 1048576")
      fails("return string.rep('x', math.maxinteger)",
        "string.rep: result of 9223372036854775808 bytes is above the sandbox limit of 1048576")
      assert.equal(1000, run("return #string.rep('x', 1000)"))
    end)
    it("find/match/gmatch/gsub refuse long subjects and patterns", function()
      for _, f in ipairs({ "find", "match", "gmatch", "gsub" }) do
        local extra = f == "gsub" and ", ''" or ""
        fails(("return string.%s(string.rep('a', 65537), 'a'%s)"):format(f, extra),
          "string." .. f .. ": subject of 65537 bytes is above the sandbox limit of 65536")
        fails(("return string.%s('a', string.rep('a', 300)%s)"):format(f, extra),
          "string." .. f .. ": pattern of 300 bytes is above the sandbox limit of 256")
      end
    end)
    it("refuse the classic backtracking blow-up instantly", function()
      local t = os.clock()
      fails("return string.find(string.rep('a', 26), string.rep('a-', 12) .. 'b')",
        "string.find: pattern \"a-a-a-a-a-a-a-a-a-a-a-a-b\" is too complex for a 26-byte subject (sandbox limit)")
      assert.is_true(os.clock() - t < 1)
    end)
    it("allow ordinary patterns on ordinary strings", function()
      assert.equal("x y", run("return (('  x y  '):gsub('', '')) and string.match('  x y  ', '^%s*(.-)%s*$')"))
      assert.equal("a-b-c", run("return (string.gsub('a b c', ' ', '-'))"))
      assert.equal(3, run("local n = 0 for w in string.gmatch('a,b,c', '[^,]+') do n = n + 1 end return n"))
      assert.equal(10001, run("return (string.find(string.rep('a', 10000) .. 'b', 'b', 1, true))"))
    end)
    it("gsub refuses results that could exceed the limit", function()
      fails("return string.gsub(string.rep('a', 60000), 'a', string.rep('b', 100))",
        "string.gsub: result could exceed the sandbox limit of 1048576 bytes")
    end)
    it("the pattern cost grows with quantifiers and subject length", function()
      local limit = sandbox.limits.pattern_cost
      assert.is_true(sandbox.pattern_cost("^abc", 100, true) <= 1)
      assert.is_true(sandbox.pattern_cost("^a*b", 100, true) < sandbox.pattern_cost("a*b", 100, true))
      assert.equal(sandbox.pattern_cost("a*b", 100, true), sandbox.pattern_cost("^a*b", 100, false))
      assert.is_true(sandbox.pattern_cost("^%s*(.-)%s*$", 255, true) < limit)
      assert.is_true(sandbox.pattern_cost(("a-"):rep(12) .. "b", 26, true) > limit)
      assert.is_true(sandbox.pattern_cost("[%]*]*%b()x?", 10, true) > 10)
    end)
  end)

  it("table.move refuses huge ranges (a C loop the budget cannot stop)", function()
    fails("return table.move({}, 1, 1e12, 2)",
      "table.move: 1000000000000 elements is above the sandbox limit of 1048576")
    assert.equal("1,2,1,2", run("return table.concat(table.move({ 1, 2 }, 1, 2, 3, { 1, 2 }), ',')"))
  end)

  describe("setmetatable", function()
    for _, mm in ipairs({ "__gc", "__close", "__mode" }) do
      it("refuses metatables with " .. mm, function()
        fails(("return setmetatable({}, { %s = 'k' })"):format(mm),
          "setmetatable: metatables with " .. mm .. " are not allowed in the sandbox")
      end)
    end
    it("allows ordinary metatables", function()
      assert.equal(42, run("return setmetatable({}, { __index = function() return 42 end }).anything"))
    end)
    it("cannot replace protected metatables; the shared JSON markers are out of reach", function()
      fails("return setmetatable(glare.json.null, {})", "cannot change a protected metatable")
      fails("return setmetatable(string, {})", "cannot change a protected metatable")
      assert.is_true(run("return glare.json.array_mt == nil and glare.json.object_mt == nil"))
    end)
    it("refuses a finalizer hidden in a read-only table used as a metatable", function()
      fails("return setmetatable({}, MT)", "setmetatable: metatables with __gc are not allowed in the sandbox",
        "MT = { __gc = print }")
      local _, err = H.load("MT = setmetatable({}, { __gc = print })", "types/d.lua")
      assert.equal("types/d.lua:1: setmetatable: metatables with __gc are not allowed in the sandbox", err)
    end)
    it("keeps objects made at load time working with their (frozen) class", function()
      local prelude = [[
        local Point = {}
        Point.__index = Point
        Point.__tostring = function(p) return "(" .. p.x .. "," .. p.y .. ")" end
        Point.__add = function(a, b) return setmetatable({ x = a.x + b.x, y = a.y + b.y }, Point) end
        function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
        function Point:norm1() return math.abs(self.x) + math.abs(self.y) end
        local ORIGIN = Point.new(1, 2)
        local SELF = {}
        SELF.__index = SELF
        SELF.v = 7
        setmetatable(SELF, SELF)]]
      assert.equal("(1,2) 3 (4,6) 7", run([[
        return tostring(ORIGIN) .. " " .. ORIGIN:norm1() .. " " .. tostring(ORIGIN + Point.new(3, 4))
          .. " " .. SELF.v]], prelude))
      fails("ORIGIN.x = 5", "ORIGIN is read-only (attempt to set 'x')", prelude)
      fails("Point.norm1 = nil", "Point is read-only (attempt to set 'norm1')", prelude)
    end)
    it("lets a read-only table serve as a class", function()
      assert.equal("hi from Class", run("return setmetatable({}, Class):hi()", [[
        local Class = {}
        Class.__index = Class
        function Class.hi(self) return "hi from Class" end
        _G_CLASS = Class]]))
    end)
  end)

  describe("read-only state at runtime", function()
    it("globals cannot be set by hooks", function()
      fails("leak = 1", "attempt to set global 'leak': globals are read-only once the type has loaded")
    end)
    it("globals defined by the file stay readable, and read-only deep down", function()
      assert.equal("helped", run("return helper()", PRELUDE))
      assert.equal(2, run("return HELPERS.list[2]", PRELUDE))
      assert.equal(2, run("return #HELPERS.list", PRELUDE))
      fails("HELPERS.list[3] = 3", "HELPERS.list is read-only (attempt to set '3')", PRELUDE)
      fails("HELPERS = nil", "attempt to set global 'HELPERS': globals are read-only once the type has loaded",
        PRELUDE)
      assert.equal(2, run("local n = 0 for _ in pairs(HELPERS.list) do n = n + 1 end return n", PRELUDE))
    end)
    it("unknown globals raise instead of reading nil", function()
      fails("return undefined_thing", "attempt to read undeclared global 'undefined_thing'")
    end)
    it("library tables and glare are read-only", function()
      fails("string.rep = nil", "string is read-only (attempt to set 'rep')")
      fails("table.x = 1", "table is read-only (attempt to set 'x')")
      fails("math.pi = 3", "math is read-only (attempt to set 'pi')")
      fails("glare.log = print", "glare is read-only (attempt to set 'log')")
      fails("glare.options.x = 1", "glare.options is read-only (attempt to set 'x')")
      fails("glare.json.null = 1", "glare.json is read-only (attempt to set 'null')")
    end)
    it("declaration functions are unavailable at runtime", function()
      for _, name in ipairs({ "String", "Folder", "type", "typedefs" }) do
        fails("return glare." .. name, "glare." .. name .. " is part of the declaration API: it is "
          .. "not available once the type has loaded (in hooks)")
      end
      fails("return glare.nonsense", "glare.nonsense does not exist")
    end)
    it("the runtime glare API is complete", function()
      assert.equal("function function true function table probe", run([[
        return table.concat({ type(glare.log), type(glare.fail), tostring(glare.json.null == glare.json.null),
          type(glare.semver.coerce), type(glare.options), glare.type_name }, " ")]]))
    end)
    it("getmetatable is absent, so the string metatable cannot be reached", function()
      assert.is_false(reachable("getmetatable"))
    end)
  end)

  it("print goes to the log sink, tagged with the type", function()
    local records, restore = H.capture_log()
    run("print('a', nil, 3)")
    restore()
    assert.same({ { level = "info", message = "a\tnil\t3", type = "probe" } }, records)
  end)

  it("environments of two types are separate", function()
    local A = assert(H.load("X = 'a' return glare.type { name = 'ta', hooks = { pre_create = function() return X end } }"))
    local B = assert(H.load("X = 'b' return glare.type { name = 'tb', hooks = { pre_create = function() return X end } }"))
    assert.equal("a", A.hooks.pre_create())
    assert.equal("b", B.hooks.pre_create())
  end)

  it("protect_string_metatable hides the string metatable and caps methods (fresh lua5.4)", function()
    local script = [[
      package.path = "lua/?.lua;" .. package.path
      local sandbox = require("glare.sandbox")
      assert(sandbox.protect_string_metatable())
      assert(getmetatable("") == false, "metatable visible")
      assert(("x").dump == nil, "dump reachable")
      assert(not pcall(function() return ("x"):rep(1 << 30) end), "rep not capped")
      assert(("ab"):upper() == "AB")
      io.write("ok")
    ]]
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local p = assert(io.popen("lua5.4 " .. path .. " 2>&1"))
    local out = p:read("a")
    p:close()
    os.remove(path)
    assert.equal("ok", out)
  end)

  it("read-only views hide their metatable and contents, and support pairs and #", function()
    local c = { 1, 2, a = 3 }
    local p = sandbox.view(c, "t")
    assert.equal(false, getmetatable(p))
    assert.is_nil(next(p))
    assert.equal(2, #p)
    local n, seen = 0, {}
    local f, s = pairs(p)
    assert.equal(p, s)
    for k, v in f, s do n = n + 1; seen[k] = v end
    assert.equal(3, n)
    assert.same(c, seen)
    assert.has_error(function() p.b = 1 end, "t is read-only (attempt to set 'b')")
    assert.has_error(function() p[1] = 9 end, "t is read-only (attempt to set '1')")
    assert.has_error(function() f({}, nil) end)
  end)

  it("freeze keeps identity, metamethods and the JSON marks", function()
    local t = setmetatable({ x = 1 }, { __tostring = function() return "T!" end })
    assert.equal(t, sandbox.freeze(t, "t"))
    assert.equal("T!", tostring(t))
    assert.equal(1, t.x)
    assert.has_error(function() t.x = 2 end, "t is read-only (attempt to set 'x')")
    local a = sandbox.freeze(json.array({ 1, 2 }), "a")
    assert.is_true(json.is_array(a))
    local plain = sandbox.freeze({ 1, 2, 3 }, "p")
    assert.is_true(json.is_array(plain))
    assert.is_true(json.is_object(sandbox.freeze({ k = 1 }, "o")))
  end)

  describe("isolation (issue 20)", function()
    it("1: pairs on a library table hands out no writable table", function()
      for _, lib in ipairs({ "string", "table", "math", "utf8", "os", "glare", "glare.json",
          "glare.semver", "glare.options" }) do
        assert.is_true(run(("local _, S = pairs(%s) return S == %s and next(%s) == nil"):format(lib, lib, lib)), lib)
        local key = run(("local f, s = pairs(%s) return (f(s, nil))"):format(lib))
        if key ~= nil then
          fails(("local f, s = pairs(%s) local k = f(s, nil) s[k] = function() return 'PWNED' end"):format(lib),
            lib .. " is read-only (attempt to set '" .. key .. "')")
        end
      end
      fails("local _, S = pairs(string) S.upper = function() return 'PWNED' end",
        "string is read-only (attempt to set 'upper')")
      assert.equal("ABC", run("return ('abc'):upper()"))
    end)

    it("2: declaration prototypes are read-only", function()
      local cases = {
        { "glare.String.max_length = 7", "glare.String is read-only (attempt to set 'max_length')" },
        { "glare.typedefs.description.custom_validator = print",
          "glare.typedefs.description is read-only (attempt to set 'custom_validator')" },
        { "glare.typedefs.BASE_FIELDS[3] = 'x'", "glare.typedefs.BASE_FIELDS is read-only (attempt to set '3')" },
        { "glare.typedefs.owner.system = false", "glare.typedefs.owner is read-only (attempt to set 'system')" },
        { "glare.typedefs.tags.of.max_length = 1", "glare.typedefs.tags.of is read-only (attempt to set 'max_length')" },
        { "glare.typedefs.newdef = {}", "glare.typedefs is read-only (attempt to set 'newdef')" },
      }
      for _, c in ipairs(cases) do
        local _, err = H.load(c[1] .. "\nreturn glare.type { name = 'd' }", "types/d.lua")
        assert.equal("types/d.lua:1: " .. c[2], err)
      end
      -- and a String made later still has the stock limits
      local T = assert(H.load("return glare.type { name = 'd', fields = { { s = glare.String {} } } }"))
      assert.equal(255, T.by_name.s._attrs.max_length)
    end)

    it("3: a file-level local table is read-only at run time", function()
      local T = probe_type("seen[#seen + 1] = af.name", "local seen = {}")
      assert.equal("Hook pre_create of type probe failed: types/probe.lua:4: seen is read-only (attempt to set '1')",
        hook_error(T, {}, { name = "tenant-a" }))
    end)

    it("3: a file-level scalar is put back after every call", function()
      local T = probe_type("local prev = last; last = af.name; count = count + 1; return (prev or '-') .. count",
        "local last, count = nil, 0")
      assert.same({ true, "-1" }, { runtime.run_hook(T, "pre_create", {}, { name = "a" }) })
      assert.same({ true, "-1" }, { runtime.run_hook(T, "pre_create", {}, { name = "b" }) })
    end)

    it("3: a local function replaced by a hook comes back", function()
      local T = probe_type("local r = f() f = function() return af.name end return r",
        "local function f0() return 'original' end local f = f0")
      assert.same({ true, "original" }, { runtime.run_hook(T, "pre_create", {}, { name = "a" }) })
      assert.same({ true, "original" }, { runtime.run_hook(T, "pre_create", {}, { name = "b" }) })
    end)

    it("3: a global table with a metatable is read-only too", function()
      local T = probe_type("STORE.last = af.name",
        "STORE = setmetatable({}, { __index = function() return 'default' end })")
      assert.equal("Hook pre_create of type probe failed: types/probe.lua:4: STORE is read-only (attempt to set 'last')",
        hook_error(T, {}, { name = "a" }))
      assert.equal("default", run("return STORE.anything",
        "STORE = setmetatable({}, { __index = function() return 'default' end })"))
    end)

    it("3: a rebound _ENV is put back after the call", function()
      local src = [[
        local _ENV = _ENV
        return glare.type { name = 'probe', hooks = {
          pre_create = function(ctx, af)
            if af.name == "set" then _ENV = { LEAK = "secret of tenant a" } return "set" end
            return LEAK
          end } }]]
      local T = assert(H.load(src, "types/probe.lua"))
      assert.same({ true, "set" }, { runtime.run_hook(T, "pre_create", {}, { name = "set" }) })
      assert.equal("Hook pre_create of type probe failed: types/probe.lua:5: attempt to read undeclared global 'LEAK'",
        hook_error(T, {}, { name = "read" }))
    end)

    it("7: a failure's status is fixed when it is made", function()
      fails("local _, e = pcall(glare.fail, 404, 'x') e.status = 200",
        "glare failure is read-only (attempt to set 'status')")
      fails("local _, e = pcall(glare.fail, 404, 'x') setmetatable(e, nil)", "cannot change a protected metatable")
      local T = probe_type("local _, e = pcall(glare.fail, 404, 'x') pcall(function() e.status = 200 end) error(e)")
      assert.same({ false, 404, "x" }, { runtime.run_hook(T, "pre_create", {}, {}) })
      -- a table that looks like a failure is just an error
      T = probe_type("error({ status = 200, message = 'forged' })")
      local ok, status = runtime.run_hook(T, "pre_create", {}, {})
      assert.same({ false, 500 }, { ok, status })
      fails("glare.fail(math.maxinteger, 'x')", "glare.fail: status must be a 4xx integer, got 9223372036854775807")
    end)

    it("xpcall's handler runs after the error has unwound", function()
      assert.equal("handled: types/probe.lua:4: x",
        run("return select(2, xpcall(function() error('x') end, function(m) return 'handled: ' .. m end))"))
      assert.same({ true, 1, 2 }, { run("return xpcall(function(a, b) return a, b end, print, 1, 2)") })
      fails("return xpcall(print, 42)", "bad argument #2 to 'xpcall' (function expected, got number)")
    end)

    it("the self check finds a writable library or a leaking proxy", function()
      local base = sandbox.base(function() end)
      base.string = { upper = string.upper }
      assert.same({ nil, "string is writable (raw contents visible)" },
        { sandbox.self_check((sandbox.new_env(base))) })
      base = sandbox.base(function() end)
      local backing = { upper = string.upper }
      base.string = setmetatable({}, { __index = backing, __newindex = function() error("ro") end,
        __pairs = function() return next, backing, nil end, __metatable = false })
      assert.same({ nil, "pairs(string) reveals another table" },
        { sandbox.self_check((sandbox.new_env(base))) })
      base = sandbox.base(function() end)
      base.setmetatable = setmetatable
      assert.same({ nil, "setmetatable accepts a finalizer (__gc)" },
        { sandbox.self_check((sandbox.new_env(base))) })
      local env, ctl = sandbox.new_env(sandbox.base(function() end))
      assert.same({ nil, "globals are writable at run time" }, { sandbox.self_check(env, true) })
      ctl.switch(sandbox.base(function() end))
      assert.is_true(sandbox.self_check(env, true))
    end)
  end)

  it("json.null keeps its identity inside hooks", function()
    local T = assert(H.load("return glare.type { name = 'n', hooks = { pre_create = function() return glare.json.null end } }"))
    assert.equal(json.null, T.hooks.pre_create())
  end)
end)
