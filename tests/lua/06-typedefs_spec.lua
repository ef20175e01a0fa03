local typedefs = require("glare.typedefs")
local compile = require("glare.compile")

describe("glare.typedefs", function()
  it("prototypes are callable and return new specs, leaving the prototype alone", function()
    local a = typedefs.String { max_length = 10 }
    local b = a { description = "x" }
    assert.equal("String", typedefs.kind_of(a))
    assert.equal("String", typedefs.kind_of(b))
    assert.same({ max_length = 10 }, a)
    assert.same({ max_length = 10, description = "x" }, b)
    assert.same({}, typedefs.String)
  end)

  it("specialising a base typedef keeps its attributes", function()
    local n = typedefs.name { description = "other" }
    assert.equal(1, n.min_length)
    assert.equal("other", n.description)
    assert.not_equal("other", typedefs.name.description)
  end)

  it("raises on an unknown typedef", function()
    assert.has_error(function() return typedefs.Strnig end,
      "glare typedef error: definition 'Strnig' does not exist")
  end)

  it("raises when called with something other than a table", function()
    assert.has_error(function() typedefs.String("x") end,
      "glare.String expects a table of attributes: glare.String { ... }")
  end)

  it("kind_of is nil for anything that is not a spec", function()
    assert.is_nil(typedefs.kind_of({ kind = "String" }))
    assert.is_nil(typedefs.kind_of("String"))
  end)

  -- docs/glare-contract.md "Base fields"
  describe("base fields", function()
    -- name: system, mutable, required_on_activate, nullable, default, sortable, filter_ops
    local EXPECT = {
      id = { true, false, true, false, nil, true, "eq neq in" },
      name = { false, false, false, false, nil, true, "like eq neq in" },
      owner = { true, false, false, false, nil, true, "eq neq in" },
      status = { false, true, true, false, "drafted", true, "eq neq in" },
      created_at = { true, false, true, false, nil, true, "lt gt" },
      updated_at = { true, true, true, false, nil, true, "lt gt" },
      activated_at = { true, false, false, true, nil, true, "lt gt" },
      description = { false, true, false, true, "", false, "" },
      tags = { false, true, false, true, "[]", false, "" },
      metadata = { false, false, false, true, "{}", false, "eq neq in" },
      visibility = { false, true, true, false, "private", true, "eq neq in" },
      version = { false, false, false, false, "0.0.0", true, "eq neq in gt gte lt lte" },
      display_type_name = { true, false, true, true, nil, true, "like eq neq in" },
    }
    it("come in the documented order", function()
      assert.same({ "id", "name", "owner", "status", "created_at", "updated_at", "activated_at",
        "description", "tags", "metadata", "visibility", "version", "display_type_name" },
        typedefs.BASE_FIELDS)
    end)
    for name, e in pairs(EXPECT) do
      it(name .. " has its exact properties", function()
        local F = compile.field(name, typedefs[name], true)
        local default = F.default
        if type(default) == "table" then
          default = getmetatable(default) == require("glare.json").array_mt and "[]" or "{}"
        end
        assert.same(e, { F.system, F.mutable, F.required_on_activate, F.nullable, default,
          F.sortable, table.concat(F.filter_ops, " ") })
        assert.is_true(F.base)
      end)
    end
    it("limits: name 1..255, description 4096, tags and metadata elements", function()
      local F = compile.field("name", typedefs.name, true)
      assert.same({ 1, 255 }, { F._attrs.min_length, F._attrs.max_length })
      assert.equal(4096, compile.field("description", typedefs.description, true)._attrs.max_length)
      local tags = compile.field("tags", typedefs.tags, true)
      assert.same({ 1, 255, { ",", "/" } }, { tags._eattrs.min_length, tags._eattrs.max_length,
        tags._eattrs.forbidden_chars })
      assert.equal("convert_to_set", tags._attrs.unique)
      assert.equal(255, tags._attrs.max_items)
      local md = compile.field("metadata", typedefs.metadata, true)
      assert.same({ 1, 255, 255 }, { md._eattrs.min_length, md._eattrs.max_length, md._attrs.max_keys })
      assert.is_true(compile.field("id", typedefs.id, true)._attrs.uuid)
    end)
  end)
end)
