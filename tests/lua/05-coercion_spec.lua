-- The coercion matrix (docs/glare-contract.md "Field types and coercion"),
-- through runtime.coerce (so with the
-- "Type: t. Field: f. Exception: ..." wrapper and the implicit limits).
local json = require("glare.json")
local runtime = require("glare.runtime")
local H = dofile("tests/lua/helpers.lua")

local T = assert(H.load([[
return glare.type {
  name = "matrix",
  fields = {
    { s = glare.String {} }, { i = glare.Integer {} }, { f = glare.Float {} },
    { b = glare.Boolean {} }, { v = glare.Version {} }, { l = glare.Link {} },
    { d = glare.DateTime {} }, { ls = glare.List { of = glare.String } },
    { li = glare.List { of = glare.Integer } }, { lb = glare.List { of = glare.Boolean } },
    { ds = glare.Dict { of = glare.String } }, { di = glare.Dict { of = glare.Integer } },
    { blob = glare.Blob {} }, { folder = glare.Folder {} },
    { nn = glare.Integer { nullable = false } },
    { nnd = glare.Integer { nullable = false, default = 7 } },
    { nnl = glare.List { of = glare.String, nullable = false } },
  },
}]], "types/matrix.lua"))

local function ok(field, input, expected)
  local v, err = runtime.coerce(T, field, input)
  assert.is_nil(err)
  if type(expected) == "table" then
    assert.equal(H.encode(expected), H.encode(v))
  else
    assert.equal(expected, v)
    assert.equal(math.type(expected), math.type(v))
  end
end

local function bad(field, input, detail)
  local v, err = runtime.coerce(T, field, input)
  assert.is_nil(v)
  assert.equal(("Type: matrix. Field: %s. Exception: %s"):format(field, detail), err)
end

describe("coercion matrix", function()
  describe("String", function()
    it("keeps strings, str()s numbers and booleans like Python", function()
      ok("s", "x", "x")
      ok("s", 1, "1")
      ok("s", 1.5, "1.5")
      ok("s", 2.0, "2.0")
      ok("s", 1e16, "1e+16")
      ok("s", true, "True")
      ok("s", false, "False")
      ok("s", (1 << 53) + 1, "9007199254740993")
    end)
    it("refuses lists and dicts", function()
      bad("s", json.array({ 1 }), "A string is required, not a list")
      bad("s", json.object(), "A string is required, not a dict")
    end)
    it("applies the implicit 255-character limit", function()
      ok("s", ("é"):rep(255), ("é"):rep(255))
      bad("s", ("a"):rep(256), "String length must be at most 255 (got 256)")
    end)
  end)

  describe("Integer (Python int())", function()
    it("truncates floats, parses decimal strings, maps booleans", function()
      ok("i", 1.1, 1)
      ok("i", -1.9, -1)
      ok("i", "2", 2)
      ok("i", " +7 ", 7)
      ok("i", "-007", -7)
      ok("i", true, 1)
      ok("i", false, 0)
    end)
    it("keeps 64-bit integers exact (2^53+1 survives)", function()
      ok("i", (1 << 53) + 1, 9007199254740993)
      ok("i", "9007199254740993", 9007199254740993)
      ok("i", math.maxinteger, math.maxinteger)
      ok("i", "-9223372036854775808", math.mininteger)
    end)
    it("refuses '3.0', '', lists and dicts", function()
      bad("i", "3.0", "'3.0' is not an integer")
      bad("i", "", "'' is not an integer")
      bad("i", "1e3", "'1e3' is not an integer")
      bad("i", json.array(), "An integer is required, not a list")
      bad("i", json.object(), "An integer is required, not a dict")
    end)
    it("refuses values outside int64", function()
      bad("i", "9223372036854775808", "'9223372036854775808' is out of the 64-bit integer range")
      bad("i", 1e19, "1e+19 is out of the 64-bit integer range")
      bad("i", 2.0 ^ 63, "9.223372036854776e+18 is out of the 64-bit integer range")
    end)
  end)

  describe("Float (Python float())", function()
    it("converts integers, decimal strings and booleans", function()
      ok("f", 1, 1.0)
      ok("f", "2", 2.0)
      ok("f", "3.0", 3.0)
      ok("f", " -1.5e3 ", -1500.0)
      ok("f", ".5", 0.5)
      ok("f", "1.", 1.0)
      ok("f", true, 1.0)
      ok("f", 2.5, 2.5)
    end)
    it("refuses 'True', lists, dicts and non-finite values", function()
      bad("f", "True", "'True' is not a number")
      bad("f", "0x10", "'0x10' is not a number")
      bad("f", "", "'' is not a number")
      bad("f", json.array(), "A number is required, not a list")
      bad("f", json.object(), "A number is required, not a dict")
      bad("f", "inf", "'inf' is not a number")
      bad("f", "1e400", "1e400 is out of the floating-point range")
    end)
  end)

  describe("Boolean (FlexibleBoolean)", function()
    it("is true only for 1 t true on y yes (any case, stripped)", function()
      for _, v in ipairs({ true, "true", "TRUE", " yes ", "1", 1, "t", "On", "Y" }) do
        ok("b", v, true)
      end
    end)
    it("is false for everything else, never an error", function()
      for _, v in ipairs({ false, 2.1, json.array({ 1 }), json.object(), "", 1.0, "no", 0, "2" }) do
        ok("b", v, false)
      end
    end)
  end)

  describe("Version", function()
    it("coerces like semantic_version", function()
      ok("v", "1.0", "1.0.0")
      ok("v", 2.0, "2.0.0")
      ok("v", "1:0", "1.0.0-0")
    end)
    it("refuses what semver refuses", function()
      bad("v", "", "'' is not a valid version: it must start with a number (e.g. 1.0.0)")
    end)
    it("null on the base version (non-nullable, default 0.0.0) resets to the default", function()
      ok("version", json.null, "0.0.0")
    end)
  end)

  describe("Link", function()
    it("accepts internal references and http(s) URLs", function()
      ok("l", "/artifacts/images/8d6c1d7c-2b6e-4a3e-9c39-9b1c1f3f0a11", "/artifacts/images/8d6c1d7c-2b6e-4a3e-9c39-9b1c1f3f0a11")
      ok("l", "http://example.com/x", "http://example.com/x")
      ok("l", "https://example.com", "https://example.com")
    end)
    it("refuses other schemes, malformed references and non-strings", function()
      bad("l", "httpx://example.com", "Only http and https URLs are allowed in a link, got 'httpx://example.com'")
      bad("l", "ftp://example.com", "Link 'ftp://example.com' is not valid: it must be an http(s) URL "
        .. "or a reference to an artifact, /artifacts/<type_name>/<id>")
      bad("l", "/artifacts/images", "Link '/artifacts/images' is not valid: it must be an http(s) URL "
        .. "or a reference to an artifact, /artifacts/<type_name>/<id>")
      bad("l", "/artifacts/a/b/c", "Link '/artifacts/a/b/c' is not valid: it must be an http(s) URL "
        .. "or a reference to an artifact, /artifacts/<type_name>/<id>")
      bad("l", 5, "A string is required, not an integer")
      -- like Glare, "external" means starting with the characters "http"
      bad("l", "HTTPS://example.com", "Link 'HTTPS://example.com' is not valid: it must be an "
        .. "http(s) URL or a reference to an artifact, /artifacts/<type_name>/<id>")
    end)
  end)

  describe("DateTime", function()
    it("normalises ISO 8601 to UTC with a Z", function()
      ok("d", "2017-08-03T10:20:30Z", "2017-08-03T10:20:30Z")
      ok("d", "2017-08-03T12:20:30+02:00", "2017-08-03T10:20:30Z")
      ok("d", "2017-08-03T00:30:00+0100", "2017-08-02T23:30:00Z")
      ok("d", "2016-12-31T23:30:00-01:00", "2017-01-01T00:30:00Z")
      ok("d", "2017-08-03", "2017-08-03T00:00:00Z")
      ok("d", "2017-08-03 10:20", "2017-08-03T10:20:00Z")
      ok("d", "2017-08-03T10:20:30.500000Z", "2017-08-03T10:20:30.5Z")
      ok("d", "2016-02-29T00:00:00Z", "2016-02-29T00:00:00Z")
    end)
    it("refuses impossible dates and other text", function()
      local msg = "'%s' is not an ISO 8601 date-time (e.g. 2017-08-03T10:20:30Z)"
      for _, s in ipairs({ "2017-02-29", "2017-13-01", "2017-08-03T24:00:00Z", "x",
          "2017-08-03T10:20:30+25:00", "2017-08-03T10:20:30Q" }) do
        bad("d", s, msg:format(s))
      end
      bad("d", 5, "An ISO 8601 date-time string is required, not an integer")
    end)
  end)

  describe("List", function()
    it("must be a JSON array; elements are coerced", function()
      ok("ls", json.array({ 1, 2 }), json.array({ "1", "2" }))
      ok("li", json.array({ "1", 2.7 }), json.array({ 1, 2 }))
      ok("lb", json.array({ "yes", 0 }), json.array({ true, false }))
      ok("ls", {}, json.array())   -- an unmarked empty table from a hook
      bad("ls", "abc", "A list is required, not a string")
      bad("ls", json.object({ a = "x" }), "A list is required, not a dict")
      bad("li", json.array({ 1, "x" }), "item 1: 'x' is not an integer")
    end)
    it("refuses null elements", function()
      bad("ls", json.array({ "a", json.null }), "item 1: null is not allowed in a list")
    end)
    it("has the implicit limits: 255 items, 255-character strings", function()
      local l = json.array()
      for n = 1, 256 do l[n] = "x" end
      bad("ls", l, "List must have at most 255 items (got 256)")
      bad("ls", json.array({ ("a"):rep(256) }), "item 0: String length must be at most 255 (got 256)")
    end)
  end)

  describe("Dict", function()
    it("must be a JSON object with string keys; values are coerced", function()
      ok("ds", json.object({ a = 1, b = true }), json.object({ a = "1", b = "True" }))
      ok("di", { a = "3" }, json.object({ a = 3 }))
      ok("ds", {}, json.object())
      bad("ds", json.array({ "a" }), "A dict is required, not a list")
      bad("ds", "x", "A dict is required, not a string")
      bad("di", { a = "x" }, "key 'a': 'x' is not an integer")
      bad("ds", { [1.5] = "x" }, "Dict keys must be strings, got 1.5")
      bad("ds", { a = json.null }, "key 'a': null is not allowed as a value")
    end)
    it("has the implicit limits: 255 keys of 1..255 characters, 255-character strings", function()
      local d = {}
      for n = 1, 256 do d["k" .. n] = "x" end
      bad("ds", d, "Dict must have at most 255 keys (got 256)")
      bad("ds", { [("k"):rep(256)] = "x" }, "Dict key '" .. ("k"):rep(57) .. "...' is longer than 255 characters")
      bad("ds", { [""] = "x" }, "Dict key '' is shorter than 1 character")
      bad("ds", { a = ("v"):rep(256) }, "key 'a': String length must be at most 255 (got 256)")
    end)
  end)

  describe("Blob and Folder", function()
    it("cannot be set through coercion", function()
      local msg = "Blob fields cannot be set directly; upload data or add a location through the blob API"
      bad("blob", json.object(), msg)
      bad("folder", json.object(), msg)
    end)
  end)

  describe("null", function()
    it("is json.null on a nullable field (any kind but a collection)", function()
      for _, f in ipairs({ "s", "i", "f", "b", "v", "l", "d", "blob" }) do
        assert.equal(json.null, runtime.coerce(T, f, json.null), f)
        assert.equal(json.null, runtime.coerce(T, f, nil), f)
      end
    end)
    it("gives a List or Dict its default back, nullable or not", function()
      for f, want in pairs({ ls = "[]", ds = "{}" }) do
        local a, b = runtime.coerce(T, f, json.null), runtime.coerce(T, f, nil)
        assert.equal(want, H.encode(a), f)
        assert.equal(want, H.encode(b), f)
        assert.are_not.equal(a, b, f)   -- fresh copies
      end
    end)
    it("stays null on a collection that declines its default", function()
      local D = assert(H.load([[return glare.type { name = "nd", fields = {
        { d = glare.Dict { of = glare.String, default = glare.json.null } } } }]]))
      assert.equal(json.null, runtime.coerce(D, "d", json.null))
      assert.is_nil(D.by_name.d.default)
    end)
    it("takes the default on a non-nullable field that has one", function()
      ok("nnd", json.null, 7)
    end)
    it("fails on a non-nullable field without default", function()
      bad("nn", json.null, "Field cannot be null")
      bad("name", json.null, "Field cannot be null")
    end)
    it("a non-nullable List default is a fresh copy each time", function()
      local a = runtime.coerce(T, "nnl", json.null)
      local b = runtime.coerce(T, "nnl", json.null)
      assert.same({}, a)
      assert.not_equal(a, b)
      assert.equal(json.array_mt, getmetatable(a))
    end)
  end)

  it("does not modify its input", function()
    local input = json.array({ 1, 2 })
    runtime.coerce(T, "ls", input)
    assert.same({ 1, 2 }, input)
  end)
end)
