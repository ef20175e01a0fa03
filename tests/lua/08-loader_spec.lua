local json = require("glare.json")
local loader = require("glare.loader")
local runtime = require("glare.runtime")
local H = dofile("tests/lua/helpers.lua")

describe("loader", function()
  describe("load", function()
    it("compiles the DSL into the documented table shape", function()
      local T = assert(H.load([[
        --- A test type.
        return glare.type {
          name = "widgets", display_name = "Widgets", version = "2.1",
          description = "Things.",
          fields = {
            { size = glare.Integer { min = 0, sortable = true, description = "How big." } },
            { parts = glare.List { of = glare.String { max_length = 10 }, max_items = 3 } },
            { files = glare.Folder { max_folder_size = 100, max_key_length = 20, same_sha256 = true } },
          },
          hooks = { pre_create = function(ctx, af) end },
          options = { { colour = { type = "string", default = "red" } } },
          to_dict = function(af) return af end,
        }]]))
      assert.equal("widgets", T.name)
      assert.equal("Widgets", T.display_name)
      assert.equal("2.1", T.version)
      assert.equal(16, #T.fields)
      assert.equal("id", T.fields[1].name)
      assert.equal("display_type_name", T.fields[13].name)
      assert.equal("size", T.fields[14].name)
      assert.equal(T.fields[14], T.by_name.size)
      assert.is_function(T.hooks.pre_create)
      assert.is_nil(T.hooks.post_create)
      assert.is_function(T.to_dict)
      assert.is_nil(T.format_all)
      assert.same({ { name = "colour", type = "string", default = "red" } }, T.options)

      local F = T.by_name.size
      assert.same({ "size", "Integer", false, false, false, false, true, true, "How big." },
        { F.name, F.kind, F.base, F.system, F.mutable, F.required_on_activate, F.sortable,
          F.nullable, F.description })
      assert.same({ "eq", "neq", "in", "gt", "gte", "lt", "lte" }, F.filter_ops)
      assert.equal(json.array_mt, getmetatable(F.filter_ops))
      assert.is_nil(F.default)

      local L = T.by_name.parts
      assert.same({ "List", "String" }, { L.kind, L.element })
      assert.same({}, L.default)
      assert.equal(json.array_mt, getmetatable(L.default))

      local D = T.by_name.files
      assert.same({ 10485760, 100, 20, 1, 255, true }, { D.max_blob_size, D.max_folder_size,
        D.max_key_length, D.min_key_length, D.max_keys, D.same_sha256 })
      assert.same({}, D.default)
      assert.equal(json.object_mt, getmetatable(D.default))
      assert.same({}, D.filter_ops)
    end)

    it("defaults: version 1.0, display_name nil, no options, no hooks", function()
      local T = assert(H.load("return glare.type { name = 'bare' }"))
      assert.equal("1.0", T.version)
      assert.is_nil(T.display_name)
      assert.same({}, T.options)
      assert.same({}, T.hooks)
      assert.equal(13, #T.fields)
    end)

    it("accepts a plain table instead of glare.type { }", function()
      assert.truthy(H.load("return { name = 'plain' }"))
    end)

    it("refuses bytecode (text mode only)", function()
      local T, err = loader.load(string.dump(function() return {} end), "types/bin.lua")
      assert.is_nil(T)
      assert.equal("types/bin.lua: attempt to load a binary chunk (mode is 't')", err)
    end)

    it("reports syntax errors with the file name and line", function()
      local T, err = H.load("return glare.type {\n name = \n", "types/syntax.lua")
      assert.is_nil(T)
      assert.matches("^types/syntax.lua:3: ", err)
    end)

    it("reports errors raised by the file with the file name and line", function()
      local _, err = H.load("\nerror('custom failure')", "types/raise.lua")
      assert.equal("types/raise.lua:2: custom failure", err)
      _, err = H.load("local t = glare.type('x') return t", "types/raise.lua")
      assert.equal("types/raise.lua:1: glare.type expects a table: return glare.type { name = ..., fields = { ... } }", err)
    end)

    it("raises on an undeclared global and on unknown glare names while declaring", function()
      local _, err = H.load("return glare.type { name = typo_here }", "types/g.lua")
      assert.equal("types/g.lua:1: attempt to read undeclared global 'typo_here'", err)
      _, err = H.load("return glare.type { name = 'x', fields = { { a = glare.Strnig } } }", "types/g.lua")
      assert.matches("^types/g.lua:1: glare.Strnig does not exist %(field kinds: String, Integer", err)
    end)

    it("keeps runtime functions out of the declaration API", function()
      local _, err = H.load("local f = glare.fail", "types/r.lua")
      assert.equal("types/r.lua:1: glare.fail is part of the runtime API: use it inside hooks", err)
      _, err = H.load("local o = glare.options", "types/r.lua")
      assert.equal("types/r.lua:1: glare.options is part of the runtime API: use it inside hooks", err)
    end)

    it("offers glare.typedefs, glare.json and glare.semver while declaring", function()
      local T = assert(H.load([[
        assert(glare.semver.coerce("1") == "1.0.0")
        return glare.type { name = "td", fields = {
          { ref = glare.typedefs.uuid { description = "A UUID." } },
          { tags2 = glare.List { of = glare.String, default = glare.json.array { "a" } } },
        } }]]))
      assert.is_true(T.by_name.ref._attrs.uuid)
      assert.same({ "a" }, T.by_name.tags2.default)
    end)

    it("adds opts.env (and, for compatibility, other opts keys) to the declaration env", function()
      assert.truthy(H.load("return glare.type { name = PREFIX .. '_x' }", nil, { env = { PREFIX = "p" } }))
      assert.truthy(H.load("return glare.type { name = OTHER }", nil, { OTHER = "other" }))
    end)

    it("logs print() from a type file through the sink", function()
      local records, restore = H.capture_log()
      assert.truthy(H.load("print('hello', 1) return glare.type { name = 'p' }", "types/p.lua"))
      restore()
      assert.same({ { level = "info", message = "hello\t1", type = "types/p.lua" } }, records)
    end)
  end)

  describe("options", function()
    local SRC = [[return glare.type { name = "opt", options = {
      { path = { type = "string", default = "/tmp/x" } },
      { count = { type = "integer", default = 3 } },
      { ratio = { type = "number" } },
      { on = { type = "boolean", default = false } },
    } }]]

    it("take their defaults", function()
      local T = assert(H.load(SRC))
      assert.same({ path = "/tmp/x", count = 3, on = false }, T._option_values)
    end)

    it("are converted from configuration strings", function()
      local T = assert(H.load(SRC, nil, { options = { path = "/var/x", count = "12", ratio = "0.5", on = "Yes", default_store = "file" } }))
      assert.same({ path = "/var/x", count = 12, ratio = 0.5, on = true }, T._option_values)
    end)

    it("refuse values of the wrong type, naming the config section", function()
      local T, err = H.load(SRC, nil, { options = { count = "many" } })
      assert.is_nil(T)
      assert.equal("[artifact_type:opt] count must be an integer", err)
      local T2 = assert(H.load(SRC))
      assert.same({ nil, "[artifact_type:opt] on must be a boolean" }, { runtime.configure(T2, { on = "maybe" }) })
    end)
  end)

  describe("load_file and load_types", function()
    it("load_file reports a missing file", function()
      local T, err = loader.load_file("types/does_not_exist.lua")
      assert.is_nil(T)
      assert.matches("does_not_exist", err)
    end)

    it("load_types loads named types and checks file names", function()
      local types = assert(loader.load_types("types", { "images", "secrets" },
        { options = { images = {} } }))
      assert.equal("images", types.images.name)
      assert.equal(types.images, types[1])
      assert.equal(types.secrets, types[2])

      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
      local f = assert(io.open(dir .. "/foo.lua", "w"))
      f:write("return glare.type { name = 'bar' }")
      f:close()
      local t, err = loader.load_types(dir, { "foo" })
      os.execute("rm -rf " .. dir)
      assert.is_nil(t)
      assert.equal(dir .. "/foo.lua: declares type 'bar' but the file is named foo.lua", err)
    end)
  end)

  describe("all_type", function()
    it("is the base fields plus type_name", function()
      local A = loader.all_type()
      assert.equal("all", A.name)
      assert.equal("All Artifacts", A.display_name)
      assert.equal(14, #A.fields)
      local F = A.by_name.type_name
      assert.same({ "like", "eq", "neq", "in" }, F.filter_ops)
      assert.is_true(F.sortable)
      local s = runtime.schema(A)
      assert.equal("Artifact type all of version 1.0", s.title)
      assert.is_truthy(s.properties.type_name)
    end)
  end)
end)
