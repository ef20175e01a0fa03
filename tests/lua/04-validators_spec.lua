local validators = require("glare.validators")
local json = require("glare.json")
local H = dofile("tests/lua/helpers.lua")

local defs = validators.defs

local function check(name, arg, value, kind)
  return defs[name].build(arg, kind)(value)
end

local function fragment(name, arg)
  local frag = json.object()
  defs[name].schema(arg, frag)
  return H.encode(frag)
end

-- One row per validator: argument, a passing value, a failing value, the
-- exact message, the schema fragment, the kinds it applies to.
local ROWS = {
  { "allowed_values", { "aa", "bb" }, "aa", "cc",
    "Value 'cc' is not allowed; it must be one of: aa, bb", '{"enum":["aa","bb"]}',
    "Float, Integer, String" },
  { "uuid", true, "123e4567-e89b-12d3-a456-426614174000", "123e4567",
    "'123e4567' is not a valid UUID",
    '{"pattern":"^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"}',
    "String" },
  { "min_length", 2, "ab", "é", "String length must be at least 2 (got 1)", '{"minLength":2}', "String" },
  { "max_length", 3, "ééé", "abcd", "String length must be at most 3 (got 4)", '{"maxLength":3}', "String" },
  { "forbidden_chars", { ",", "/" }, "ab", "a/b", "Forbidden character '/' found in string 'a/b'",
    '{"pattern":"^[^,/]+$"}', "String" },
  { "pattern", "^[A-Z]+$", "ABC", "AbC", "Value 'AbC' does not match the pattern ^[A-Z]+$",
    '{"pattern":"^[A-Z]+$"}', "String" },
  { "min", 10, 10, 9, "Number 9 is below the minimum 10", '{"minimum":10}', "Float, Integer" },
  { "max", 20, 20, 21, "Number 21 is above the maximum 20", '{"maximum":20}', "Float, Integer" },
  { "min_items", 1, json.array({ 1 }), json.array(), "List must have at least 1 item (got 0)",
    '{"minItems":1}', "List" },
  { "max_items", 3, json.array({ 1, 2, 3 }), json.array({ 1, 2, 3, 4 }),
    "List must have at most 3 items (got 4)", '{"maxItems":3}', "List" },
  { "unique", true, json.array({ "a", "b" }), json.array({ "a", "b", "a" }),
    "List items must be unique; 'a' appears more than once", '{"uniqueItems":true}', "List" },
  { "min_keys", 1, { a = 1 }, {}, "Dict must have at least 1 key (got 0)", '{"minProperties":1}',
    "Dict, Folder" },
  { "max_keys", 1, { a = 1 }, { a = 1, b = 2 }, "Dict must have at most 1 key (got 2)",
    '{"maxProperties":1}', "Dict, Folder" },
  { "min_key_length", 2, { ab = 1 }, { a = 1 }, "Dict key 'a' is shorter than 2 characters", "{}",
    "Dict, Folder" },
  { "max_key_length", 2, { ab = 1 }, { abc = 1 }, "Dict key 'abc' is longer than 2 characters", "{}",
    "Dict, Folder" },
  { "allowed_keys", { "abc", "def" }, { abc = "x" }, { xyz = "x" },
    "Key 'xyz' is not allowed; allowed keys: abc, def", '{"additionalProperties":false}', "Dict" },
  { "required_keys", { "abc" }, { abc = "x" }, { def = "x" }, "Key 'abc' is required",
    '{"required":["abc"]}', "Dict" },
  { "custom_validator", function(v) return v ~= "bad", "no bad values" end, "good", "bad",
    "no bad values", "{}", "any" },
}

describe("validators", function()
  for _, r in ipairs(ROWS) do
    local name, arg, good, bad, msg, frag, kinds = table.unpack(r)
    describe(name, function()
      it("accepts a valid value", function()
        assert.is_true(check(name, arg, good))
      end)
      it("refuses an invalid one with a precise message", function()
        assert.same({ nil, msg }, { check(name, arg, bad) })
      end)
      it("publishes its schema fragment", function()
        assert.equal(frag, fragment(name, arg))
      end)
      it("applies to " .. kinds, function()
        assert.equal(kinds, table.concat(validators.kinds_of(name), ", "))
      end)
      it("validates its argument", function()
        assert.is_true((defs[name].arg(arg, name == "min" and "Integer" or name == "max" and "Integer"
          or name == "allowed_values" and "String" or nil)))
      end)
    end)
  end

  describe("details", function()
    it("uuid accepts Python uuid.UUID spellings (braces, urn, no hyphens)", function()
      for _, s in ipairs({ "{123e4567-e89b-12d3-a456-426614174000}",
          "urn:uuid:123e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000" }) do
        assert.is_true(check("uuid", true, s), s)
      end
      assert.is_nil((check("uuid", true, "123e4567-e89b-12d3-a456-42661417400g")))
    end)

    it("unique = 'convert_to_set' drops repeats silently, keeping first occurrences", function()
      local l = json.array({ "b", "a", "b", "c", "a" })
      assert.is_true(check("unique", "convert_to_set", l))
      assert.same({ "b", "a", "c" }, l)
    end)

    it("max_length counts characters, not bytes", function()
      assert.is_true(check("max_length", 2, "éé"))
    end)

    it("allowed_values on numbers compares numerically and prints Python-style", function()
      assert.is_true(check("allowed_values", { 1, 2.5 }, 2.5))
      assert.same({ nil, "Value 3 is not allowed; it must be one of: 1, 2.5" },
        { check("allowed_values", { 1, 2.5 }, 3) })
    end)

    it("forbidden_chars accepts a string and escapes class metacharacters in the schema", function()
      assert.same({ nil, "Forbidden character ']' found in string 'a]'" },
        { check("forbidden_chars", "]^-\\", "a]") })
      assert.equal('{"pattern":"^[^\\\\]\\\\^\\\\-\\\\\\\\]+$"}', fragment("forbidden_chars", "]^-\\"))
    end)

    it("custom_validator: nil, message and glare.fail refuse; other errors are raised on", function()
      local f = defs.custom_validator.build(function() error("boom", 0) end)
      assert.has_error(function() f(1) end, "boom")
      local _, failure = pcall(require("glare.runtime").fail, 403, "nope")
      f = defs.custom_validator.build(function() error(failure) end)
      assert.same({ nil, "nope" }, { f(1) })
      -- a table that merely looks like a failure is an error like any other
      f = defs.custom_validator.build(function() error({ status = 400, message = "forged" }) end)
      assert.is_false(pcall(f, 1))
      f = defs.custom_validator.build(function() return nil, "too odd" end)
      assert.same({ nil, "too odd" }, { f(1) })
      f = defs.custom_validator.build(function() return false end)
      assert.same({ nil, "Value is not valid" }, { f(1) })
    end)

    it("messages cut long values", function()
      local _, err = check("pattern", "^a$", ("b"):rep(100))
      assert.equal("Value '" .. ("b"):rep(57) .. "...' does not match the pattern ^a$", err)
    end)
  end)

  describe("argument checks", function()
    local BAD = {
      { "max_length", -1, nil, "must be a non-negative integer" },
      { "max_length", 1.5, nil, "must be a non-negative integer" },
      { "min", "1", "Integer", "must be an integer" },
      { "min", 1.5, "Integer", "must be an integer" },
      { "min", "x", "Float", "must be a number" },
      { "allowed_values", {}, "String", "must be a non-empty list of values of the field's kind" },
      { "allowed_values", { "a", 1 }, "String", "item 2 must be a string" },
      { "allowed_values", { a = 1 }, "String", "must be a non-empty list of values of the field's kind" },
      { "uuid", false, nil, "must be true" },
      { "unique", "yes", nil, 'must be true or "convert_to_set"' },
      { "pattern", "(?=x)", nil, "is not a supported regular expression: only (?: ) groups are "
        .. "supported (no look-around, flags or named groups) at position 3" },
      { "pattern", 5, nil, "must be a regular expression string" },
      { "forbidden_chars", { "ab" }, nil, "item 1 must be a single character" },
      { "forbidden_chars", "", nil, "must be a non-empty UTF-8 string" },
      { "allowed_keys", { 1 }, nil, "item 1 must be a string" },
      { "custom_validator", "x", nil, "must be a function(value) returning true or nil, message" },
    }
    for _, c in ipairs(BAD) do
      it(("%s = %s"):format(c[1], tostring(c[2])), function()
        assert.same({ nil, c[4] }, { defs[c[1]].arg(c[2], c[3]) })
      end)
    end
  end)

  -- docs/glare-contract.md "Implicit limits"
  describe("implicit limits", function()
    it("String gets max_length 255 unless it has max_length or allowed_values", function()
      assert.equal(255, validators.with_defaults("String", {}).max_length)
      assert.equal(10, validators.with_defaults("String", { max_length = 10 }).max_length)
      assert.is_nil(validators.with_defaults("String", { allowed_values = { "a" } }).max_length)
    end)
    it("List gets max_items 255; Dict and Folder max_keys 255 and keys of 1..255", function()
      assert.equal(255, validators.with_defaults("List", {}).max_items)
      for _, k in ipairs({ "Dict", "Folder" }) do
        local a = validators.with_defaults(k, {})
        assert.same({ 255, 255, 1 }, { a.max_keys, a.max_key_length, a.min_key_length })
      end
      assert.equal(1000, validators.with_defaults("Folder", { max_key_length = 1000 }).max_key_length)
    end)
    it("elements get only the String limit", function()
      assert.same({ max_length = 255 }, validators.with_defaults("String", {}, true))
      assert.same({}, validators.with_defaults("Integer", {}, true))
    end)
  end)

  it("run stops at the first failure, in validators.order", function()
    local checks = validators.compile({ max_length = 10, allowed_values = { "ccccccccccc" } }, "String")
    assert.same({ nil, "String length must be at most 10 (got 11)" },
      { validators.run(checks, "ccccccccccc") })
    assert.same({ nil, "Value 'x' is not allowed; it must be one of: ccccccccccc" },
      { validators.run(checks, "x") })
  end)
end)
