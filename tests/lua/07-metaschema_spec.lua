-- One spec per class of type-definition error, asserting the exact message
-- format "types/<file>.lua: field 'x': <what is wrong>".
local H = dofile("tests/lua/helpers.lua")
local metaschema = require("glare.metaschema")

local function fails(src, msg)
  local T, err = H.load(src, "types/bad.lua")
  assert.is_nil(T)
  assert.equal(msg, err)
end

local function with_field(decl)
  return ("return glare.type { name = 'bad', fields = { { x = %s } } }"):format(decl)
end

describe("metaschema", function()
  it("accepts a minimal type", function()
    assert.truthy(H.load("return glare.type { name = 'ok' }"))
  end)

  describe("the type definition", function()
    it("must be returned", function()
      fails("local x = 1", "types/bad.lua: the file must return a type definition (return glare.type { ... }), got nothing")
    end)
    it("rejects unknown top-level keys", function()
      fails("return glare.type { name = 'bad', feilds = {} }",
        "types/bad.lua: unknown key 'feilds' in the type definition (known keys: name, display_name, "
        .. "version, description, fields, hooks, options, to_dict, format_all)")
    end)
    it("needs a lower-case identifier name", function()
      fails("return glare.type { name = 'Bad-Name' }",
        "types/bad.lua: 'name' must be a lower-case identifier such as \"my_artifacts\"")
      fails("return glare.type { }",
        "types/bad.lua: 'name' must be a lower-case identifier such as \"my_artifacts\"")
    end)
    it("reserves 'all'", function()
      fails("return glare.type { name = 'all' }",
        "types/bad.lua: 'all' is reserved for the meta-type listing every artifact")
    end)
    it("checks display_name, version and output functions", function()
      fails("return glare.type { name = 'bad', version = 1 }", "types/bad.lua: 'version' must be a string")
      fails("return glare.type { name = 'bad', to_dict = 1 }",
        "types/bad.lua: 'to_dict' must be a function(af) returning the artifact")
    end)
    it("needs fields as a list of one-key tables", function()
      fails("return glare.type { name = 'bad', fields = { x = glare.String } }",
        "types/bad.lua: 'fields' must be a list of one-key tables: fields = { { name = glare.String { ... } }, ... }")
      fails("return glare.type { name = 'bad', fields = { { x = glare.String, y = glare.String } } }",
        "types/bad.lua: fields[1]: each entry must be a one-key table like { my_field = glare.String { ... } }")
    end)
  end)

  describe("fields", function()
    it("rejects unknown attributes", function()
      fails(with_field("glare.String { max_lenght = 3 }"),
        "types/bad.lua: field 'x': unknown attribute 'max_lenght'")
    end)
    it("rejects a validator on the wrong kind", function()
      fails(with_field("glare.Integer { max_length = 3 }"),
        "types/bad.lua: field 'x': validator 'max_length' does not apply to Integer fields (it applies to: String)")
      fails(with_field("glare.String { min = 3 }"),
        "types/bad.lua: field 'x': validator 'min' does not apply to String fields (it applies to: Float, Integer)")
      fails(with_field("glare.Boolean { allowed_values = { true } }"),
        "types/bad.lua: field 'x': validator 'allowed_values' does not apply to Boolean fields (it applies to: Float, Integer, String)")
    end)
    it("rejects a kind-specific property on another kind", function()
      fails(with_field("glare.String { max_blob_size = 3 }"),
        "types/bad.lua: field 'x': 'max_blob_size' does not apply to String fields (it applies to: Blob, Folder)")
      fails(with_field("glare.Blob { select_location = function() end }"),
        "types/bad.lua: field 'x': 'select_location' does not apply to Blob fields (it applies to: Folder)")
    end)
    it("checks property and validator arguments", function()
      fails(with_field("glare.String { sortable = 'yes' }"),
        "types/bad.lua: field 'x': 'sortable' must be true or false")
      fails(with_field("glare.String { max_length = -1 }"),
        "types/bad.lua: field 'x': max_length must be a non-negative integer")
      fails(with_field("glare.Integer { min = 1.5 }"),
        "types/bad.lua: field 'x': min must be an integer")
      fails(with_field("glare.Blob { max_blob_size = 0 }"),
        "types/bad.lua: field 'x': 'max_blob_size' must be a positive integer")
      fails(with_field("glare.String { pattern = '(?<=a)' }"),
        "types/bad.lua: field 'x': pattern is not a supported regular expression: only (?: ) groups "
        .. "are supported (no look-around, flags or named groups) at position 3")
    end)
    it("rejects contradictory bounds and two schema patterns", function()
      fails(with_field("glare.String { min_length = 5, max_length = 3 }"),
        "types/bad.lua: field 'x': min_length (5) is greater than max_length (3)")
      fails(with_field("glare.String { uuid = true, pattern = '^a' }"),
        "types/bad.lua: field 'x': 'uuid' and 'pattern' both publish a JSON-schema pattern; use only one")
    end)
    it("rejects a sortable List or Dict", function()
      fails(with_field("glare.List { of = glare.String, sortable = true }"),
        "types/bad.lua: field 'x': a List field cannot be sortable")
      fails(with_field("glare.Dict { of = glare.String, sortable = true }"),
        "types/bad.lua: field 'x': a Dict field cannot be sortable")
    end)
    it("rejects a sortable String longer than 255", function()
      fails(with_field("glare.String { sortable = true, max_length = 4096 }"),
        "types/bad.lua: field 'x': a sortable String field must have max_length <= 255 (got 4096)")
    end)
    it("rejects an illegal filter op for the kind", function()
      fails(with_field("glare.Boolean { filter_ops = { 'eq', 'like' } }"),
        "types/bad.lua: field 'x': filter op 'like' is not allowed on Boolean fields (allowed: eq, neq)")
      fails(with_field("glare.List { of = glare.String, filter_ops = { 'gt' } }"),
        "types/bad.lua: field 'x': filter op 'gt' is not allowed on List of String fields (allowed: eq, neq, in, like)")
      fails(with_field("glare.Blob { filter_ops = { 'eq' } }"),
        "types/bad.lua: field 'x': filter op 'eq' is not allowed on Blob fields (allowed: none)")
      fails(with_field("glare.String { filter_ops = { 'eq', 'eq' } }"),
        "types/bad.lua: field 'x': filter op 'eq' is listed twice")
    end)
    it("rejects a List of Blob (and a Dict of Blob)", function()
      fails(with_field("glare.List { of = glare.Blob }"),
        "types/bad.lua: field 'x': of: a List of Blob is not allowed (use a Folder for a set of named blobs)")
      fails(with_field("glare.Dict { of = glare.Blob }"),
        "types/bad.lua: field 'x': of: a Dict of Blob is not allowed (use a Folder: glare.Folder { ... })")
    end)
    it("rejects a missing or unsupported element type", function()
      fails(with_field("glare.List { }"),
        "types/bad.lua: field 'x': a List needs an element type: of = glare.String (or Integer, Float, Boolean, Link)")
      fails(with_field("glare.Dict { of = 'String' }"),
        "types/bad.lua: field 'x': of: must be a field kind such as glare.String, got a string")
      fails(with_field("glare.List { of = glare.Version }"),
        "types/bad.lua: field 'x': of: Version elements are not supported (element kinds: Boolean, Float, Integer, Link, String)")
    end)
    it("rejects non-validators and collection validators on elements", function()
      fails(with_field("glare.List { of = glare.String { mutable = true } }"),
        "types/bad.lua: field 'x': of: 'mutable' is a field property; an element only takes validators")
      fails(with_field("glare.List { of = glare.String { max_items = 3 } }"),
        "types/bad.lua: field 'x': of: validator 'max_items' does not apply to String elements (it applies to: List)")
      fails(with_field("glare.List { of = glare.String { frob = 3 } }"),
        "types/bad.lua: field 'x': of: unknown attribute 'frob'")
    end)
    it("rejects bad defaults, with the coercion message", function()
      fails(with_field("glare.Integer { default = 'abc' }"),
        "types/bad.lua: field 'x': default: 'abc' is not an integer")
      fails(with_field("glare.Integer { min = 10, default = 5 }"),
        "types/bad.lua: field 'x': default: Number 5 is below the minimum 10")
      fails(with_field("glare.Blob { default = {} }"),
        "types/bad.lua: field 'x': Blob fields cannot have a default")
      fails(with_field("glare.String { default = glare.json.null }"),
        "types/bad.lua: field 'x': default: leave it out instead of setting it to null")
    end)
    it("rejects duplicate field names", function()
      fails("return glare.type { name = 'bad', fields = { { x = glare.String }, { x = glare.Integer } } }",
        "types/bad.lua: field 'x': declared twice (fields[1] and fields[2])")
    end)
    it("rejects overriding base fields", function()
      fails("return glare.type { name = 'bad', fields = { { name = glare.String } } }",
        "types/bad.lua: field 'name': overrides a base field (base fields: id, name, owner, status, "
        .. "created_at, updated_at, activated_at, description, tags, metadata, visibility, version, "
        .. "display_type_name)")
    end)
    it("rejects values that are not field specs and bad names", function()
      fails(with_field("{ kind = 'String' }"),
        "types/bad.lua: field 'x': must be a field such as glare.String { ... }, got a table")
      fails("return glare.type { name = 'bad', fields = { { ['a.b'] = glare.String } } }",
        "types/bad.lua: field 'a.b': a field name must be an identifier (letters, digits, underscores)")
    end)
  end)

  describe("hooks", function()
    it("rejects hooks that are not functions", function()
      fails("return glare.type { name = 'bad', hooks = { pre_create = 'x' } }",
        "types/bad.lua: hook 'pre_create': must be a function, got a string")
    end)
    it("rejects unknown hook names", function()
      fails("return glare.type { name = 'bad', hooks = { pre_crate = function() end } }",
        "types/bad.lua: hook 'pre_crate': unknown hook name (known hooks: pre_create, post_create, "
        .. "pre_update, post_update, pre_activate, post_activate, pre_reactivate, post_reactivate, "
        .. "pre_deactivate, post_deactivate, pre_publish, post_publish, pre_upload, post_upload, "
        .. "pre_add_location, post_add_location, pre_download, post_download, pre_delete, post_delete)")
    end)
    it("knows the hooks of GL_HOOKS in src/ltype.h (lua/glare/hooks.lua is current)", function()
      local p = assert(io.popen("sh scripts/gen-hooks.sh"))
      local want = p:read("a")
      assert.is_true((p:close()))
      local f = assert(io.open("lua/glare/hooks.lua", "rb"))
      local have = f:read("a")
      f:close()
      assert.equal(want, have)
      assert.same(load(want)(), metaschema.HOOKS)
      assert.equal(20, #metaschema.HOOKS)
    end)
  end)

  describe("options", function()
    it("checks names, attributes, types and defaults", function()
      fails("return glare.type { name = 'bad', options = { { p = { type = 'str' } } } }",
        "types/bad.lua: option 'p': type must be one of string, integer, number, boolean")
      fails("return glare.type { name = 'bad', options = { { p = { type = 'integer', default = 'x' } } } }",
        "types/bad.lua: option 'p': default must be an integer")
      fails("return glare.type { name = 'bad', options = { { p = { type = 'string', dflt = 'x' } } } }",
        "types/bad.lua: option 'p': unknown attribute 'dflt' (known: type, default, description)")
      fails("return glare.type { name = 'bad', options = { p = { type = 'string' } } }",
        "types/bad.lua: 'options' must be a list of one-key tables: options = { { my_option = { type = \"string\", default = \"x\" } } }")
    end)
  end)

  it("names the file as the caller gives it (with or without '@')", function()
    local _, err = H.load("return glare.type { name = 'all' }", "@types/mine.lua")
    assert.equal("types/mine.lua: 'all' is reserved for the meta-type listing every artifact", err)
  end)
end)
