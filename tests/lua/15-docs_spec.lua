-- The example type at the top of docs/types.md must keep loading and
-- behaving as the document says.
local json = require("glare.json")
local runtime = require("glare.runtime")
local H = dofile("tests/lua/helpers.lua")

describe("docs/types.md", function()
  local f = assert(io.open("docs/types.md"))
  local text = f:read("a")
  f:close()
  local example = text:match("```lua\n(.-)```")

  it("has an example type that loads", function()
    assert.truthy(example)
    local T = assert(H.load(example, "types/firmware.lua"))
    assert.equal("firmware", T.name)
  end)

  it("the example behaves as documented", function()
    local T = assert(H.load(example, "types/firmware.lua"))
    assert.equal(12, runtime.coerce(T, "build", "12"))
    assert.equal("Type: firmware. Field: model. Exception: Value 'x1' does not match the pattern ^[A-Z][A-Z0-9-]*$",
      select(2, runtime.coerce(T, "model", "x1")))
    assert.equal(64, runtime.schema(T).properties.model.maxLength)
    local blob = { size = 4, read = function() return "MZ\0\0" end }
    assert.same({ false, 400, "firmware images must be ELF files" },
      { runtime.run_hook(T, "pre_upload", {}, json.object({ name = "fw" }), "image", nil, blob) })
    blob.read = function() return "\127ELF" end
    assert.is_true((runtime.run_hook(T, "pre_upload", {}, json.object({ name = "fw" }), "image", nil, blob)))
    assert.same({ false, 403, "set a build number before activating" },
      { runtime.run_hook(T, "pre_activate", {}, json.object({ name = "fw", build = json.null })) })
  end)

  it("quotes load-time error messages the metaschema really produces", function()
    local _, err = H.load(example:gsub("build = Integer { min = 1", "build = Integer { max_length = 1"),
      "types/firmware.lua")
    assert.equal("types/firmware.lua: field 'build': validator 'max_length' does not apply to Integer "
      .. "fields (it applies to: String)", err)
    assert.truthy(text:find(err, 1, true))
  end)
end)
