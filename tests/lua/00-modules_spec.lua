-- Every library module: LDoc summary header, no global leaked on require.
describe("glare modules", function()
  local MODULES = { "json", "util", "regex", "semver", "validators", "fields",
    "typedefs", "metaschema", "compile", "schema", "sandbox", "runtime", "loader" }

  for _, m in ipairs(MODULES) do
    it(m .. ".lua opens with an LDoc '---' summary", function()
      local f = assert(io.open("lua/glare/" .. m .. ".lua"))
      local first = f:read("l")
      f:close()
      assert.matches("^%-%-%- %S", first)
    end)
  end

  it("leak no globals when required (checked in a fresh lua5.4)", function()
    local list = {}
    for _, m in ipairs(MODULES) do list[#list + 1] = ("%q"):format("glare." .. m) end
    local script = ([[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      local before = {}
      for k in pairs(_G) do before[k] = true end
      for _, m in ipairs({ %s }) do require(m) end
      local leaked = {}
      for k in pairs(_G) do if not before[k] then leaked[#leaked + 1] = k end end
      table.sort(leaked)
      io.write(table.concat(leaked, ","))
    ]]):format(table.concat(list, ", "))
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local p = assert(io.popen("lua5.4 " .. path .. " 2>&1; echo \" rc=$?\""))
    local out = p:read("a")
    p:close()
    os.remove(path)
    assert.equal(" rc=0\n", out)
  end)

  it("exports the loader functions named in docs/lua-runtime.md", function()
    local runtime = require("glare.runtime")
    for _, f in ipairs({ "coerce", "coerce_filter", "version_key", "schema", "output",
        "format_all", "set_log_sink", "configure", "run_hook" }) do
      assert.is_function(runtime[f], f)
    end
    local loader = require("glare.loader")
    for _, f in ipairs({ "load", "load_file", "load_types", "all_type" }) do
      assert.is_function(loader[f], f)
    end
  end)
end)
