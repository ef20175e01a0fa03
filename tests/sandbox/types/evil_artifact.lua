--- A hostile type for the sandbox escape tests: its pre_create hook runs
-- the attack named by the artifact's name. Every attack fails inside the
-- hook (a 500 that names the hook; the exact refusal, at the line marked
-- `-- @<attack>`, is in the server log) and leaves the worker serving.
local attacks = {}

-- globals that must not exist
attacks.io = function() return io.open("/etc/passwd") end -- @io
attacks.os_execute = function() return os.execute("id") end -- @os_execute
attacks.os_getenv = function() return os.getenv("HOME") end -- @os_getenv
attacks.require = function() return require("os") end -- @require
attacks.load = function() return load("return 1")() end -- @load
attacks.loadstring = function() return loadstring("return 1")() end -- @loadstring
attacks.dofile = function() return dofile("/etc/passwd") end -- @dofile
attacks.debug = function() return debug.getregistry() end -- @debug
attacks.package = function() return package.loadlib("libc.so.6", "system") end -- @package
attacks.collectgarbage = function() return collectgarbage("collect") end -- @collectgarbage
attacks.rawset = function() return rawset(_ENV, "x", 1) end -- @rawset
attacks.coroutine_escape = function() return coroutine.wrap(function() while true do end end)() end -- @coroutine_escape

-- metatables
attacks.getmetatable_string = function()
  local mt = getmetatable("") -- @getmetatable_string
  mt.__index = { rep = function() return "pwned" end }
end
attacks.string_dump = function() return string.dump(function() end) end -- @string_dump
attacks.method_dump = function() return ("x").dump(function() end) end -- @method_dump
attacks.setmetatable_gc = function()
  setmetatable({}, { __gc = function() while true do end end }) -- @setmetatable_gc
end
attacks.setmetatable_close = function()
  local x <close> = setmetatable({}, { __close = function() end }) -- @setmetatable_close
end
attacks.glare_readonly = function() glare.fail = function() end end -- @glare_readonly
attacks.options_readonly = function() glare.options.x = 1 end -- @options_readonly
attacks.global_write = function() leaked = true end -- @global_write

-- bytecode at run time: no load at all, and string.dump is gone (the
-- loader's text-only mode for type files: test_9_bytecode_refused)
attacks.bytecode = function()
  local f = load or loadstring -- @bytecode
  return f("\27LuaT\0\25\147\r\n\26\n")
end

-- resources
attacks.memory_table = function()
  local t = {}
  for i = 1, 1e9 do t[i] = { i, i, i, i } end
end
attacks.memory_string = function() return string.rep("x", 1 << 30) end -- @memory_string
attacks.concat_bomb = function()
  local s = "x"
  for _ = 1, 40 do s = s .. s end
  return s
end
attacks.instructions = function() while true do end end
attacks.instructions_pcall = function()
  -- the budget error must not be swallowed by the script's own pcall
  while true do pcall(function() while true do end end) end
end
attacks.pattern = function()
  return string.find(string.rep("a", 26), string.rep("a-", 12) .. "b")
end
attacks.gsub_growth = function()
  return (string.rep("a", 1000)):gsub("a", string.rep("b", 100000))
end
attacks.recursion = function()
  local function f(n) return f(n + 1) + 1 end -- @recursion
  return f(1)
end
-- recursion through C functions (each level a C frame on the request's
-- coroutine stack) until Lua's own limit on nested C calls
attacks.c_gsub = function()
  local function f() return (string.gsub("ab", ".", f)) end
  return f()
end
attacks.c_sort = function()
  local function f() table.sort({ 3, 2, 1 }, function(a, b) f() return a < b end) end
  return f()
end
attacks.c_index = function()
  local t = setmetatable({}, { __index = function(t, k) return t[k .. "x"] end })
  return t.a
end
attacks.c_concat = function()
  local mt = {}
  mt.__concat = function() return setmetatable({}, mt) .. "x" end
  return setmetatable({}, mt) .. "x"
end
attacks.c_tostring = function()
  local mt = {}
  mt.__tostring = function() return tostring(setmetatable({}, mt)) end
  return tostring(setmetatable({}, mt))
end
attacks.unpack_huge = function() return table.unpack({}, 1, 1e8) end -- @unpack_huge
attacks.format_huge = function() return string.format("%099999999d", 1) end -- @format_huge
attacks.format_address = function() return string.format("%p", {}) end -- @format_address
attacks.utf8_bad = function() return utf8.char(-1) end -- @utf8_bad
attacks.select_huge = function() return select(math.mininteger, 1) end -- @select_huge
attacks.randomseed = function() return math.randomseed(42) end -- @randomseed

-- harmless: these must just work
attacks.int_min = function() return string.rep("x", math.mininteger) end
attacks.rep_empty = function() return string.rep("", math.maxinteger) .. ("").rep("", math.maxinteger, "") end
attacks.c_pcall = function()
  -- the overflow is an ordinary Lua error: the script's pcall catches it
  local err
  local function f()
    local ok, e = pcall(f)
    if not ok then err = e end
  end
  f()
  assert(tostring(err):find("C stack overflow"), "no overflow")
end
attacks.no_address = function()
  assert(tostring({}) == "table" and tostring(print) == "function", "addresses are visible")
end

return glare.type {
  name = "evil_artifact",
  display_name = "Evil",
  version = "1.0",
  fields = {},
  hooks = {
    pre_create = function(ctx, af)
      local attack = attacks[af.name]
      if attack then attack() end
    end,
  },
}
