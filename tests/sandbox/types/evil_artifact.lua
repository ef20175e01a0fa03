--- A hostile type for the sandbox escape tests: its pre_create hook runs
-- the attack named by the artifact's name. Every attack must fail inside
-- the hook (a 400 naming the hook) and leave the worker serving.
local attacks = {}

-- globals that must not exist
attacks.io = function() return io.open("/etc/passwd") end
attacks.os_execute = function() return os.execute("id") end
attacks.os_getenv = function() return os.getenv("HOME") end
attacks.require = function() return require("os") end
attacks.load = function() return load("return 1")() end
attacks.loadstring = function() return loadstring("return 1")() end
attacks.dofile = function() return dofile("/etc/passwd") end
attacks.debug = function() return debug.getregistry() end
attacks.package = function() return package.loadlib("libc.so.6", "system") end
attacks.collectgarbage = function() return collectgarbage("collect") end
attacks.rawset = function() return rawset(_ENV, "x", 1) end

-- metatables
attacks.getmetatable_string = function()
  local mt = getmetatable("")
  mt.__index = { rep = function() return "pwned" end }
end
attacks.string_mt_via_method = function()
  -- string methods resolve to the sandbox's capped copy
  return ("x"):rep(1 << 30)
end
attacks.string_dump = function() return string.dump(function() end) end
attacks.setmetatable_gc = function()
  setmetatable({}, { __gc = function() while true do end end })
end
attacks.glare_readonly = function() glare.fail = function() end end
attacks.options_readonly = function() glare.options.x = 1 end
attacks.global_write = function() leaked = true end

-- bytecode: no load at all, and string.dump is gone
attacks.bytecode = function()
  local f = load or loadstring
  return f("\27LuaT\0\25\147\r\n\26\n")
end

-- resources
attacks.memory_table = function()
  local t = {}
  for i = 1, 1e9 do t[i] = { i, i, i, i } end
end
attacks.memory_string = function() return string.rep("x", 1 << 30) end
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
  local function f(n) return f(n + 1) + 1 end
  return f(1)
end
attacks.coroutine_escape = function()
  return coroutine.wrap(function() while true do end end)()
end
attacks.unpack_huge = function() return table.unpack({}, 1, 1e8) end
attacks.format_huge = function() return string.format("%099999999d", 1) end
attacks.int_min = function() return string.rep("x", math.mininteger) end
attacks.utf8_bad = function() return utf8.char(-1) end
attacks.select_huge = function() return select(math.mininteger, 1) end

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
