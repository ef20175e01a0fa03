local regex = require("glare.regex")

local function m(p, s)
  local r = assert(regex.compile(p))
  return r:match(s)
end

describe("glare.regex (pattern validator engine)", function()
  describe("matches like Python re.match", function()
    local CASES = {
      { "^[A-Z]+$", "ABC", true }, { "^[A-Z]+$", "ABc", false }, { "^[A-Z]+$", "", false },
      { "abc", "abcdef", true },      -- anchored at the start only
      { "abc", "xabc", false },
      { "^a$", "a\n", true },          -- $ before a final newline
      { "^a$", "a\n\n", false },
      { "a|b", "b", true }, { "(a|b)*c", "ababc", true }, { "(?:ab)+$", "abab", true },
      { "\\d{2,3}-\\w+", "123-x_", true }, { "\\d{2,3}", "1", false },
      { "a{0,2}b", "aab", true }, { "a{0,2}b", "aaab", false }, { "a{2}", "aa", true },
      { "a{2,}$", "aaaa", true }, { "a+?b", "aab", true }, { "x*", "", true },
      { "^[^,/]+$", "abc", true }, { "^[^,/]+$", "ab/c", false },
      { "[a-c-]+$", "a-c", true }, { "[\\d.]+$", "1.2", true }, { "[\\w]+$", "a_1", true },
      { "[^\\s]+$", "ab", true }, { "\\S+$", "a b", false }, { "\\D", "1", false },
      { "é+$", "éé", true }, { "^.$", "é", true }, { "^.$", "\n", false },
      { "\\bfoo\\b", "foo bar", true }, { "\\bfoo\\b", "foobar", false }, { "a\\B", "ab", true },
      { "^\\x41\\u0042$", "AB", true }, { "\\t\\n", "\t\n", true }, { "\\.", "x", false },
      { "[\\]]", "]", true }, { "a}", "a}", true },
      { "^([0-9a-fA-F]){8}$", "deadBEEF", true }, { "^([0-9a-fA-F]){8}$", "deadBEE", false },
    }
    for _, c in ipairs(CASES) do
      it(("%q on %q -> %s"):format(c[1], c[2], tostring(c[3])), function()
        assert.equal(c[3], m(c[1], c[2]))
      end)
    end
  end)

  it("compiles the schema patterns Glare publishes (UUID, slash-delimited semver)", function()
    local v = require("glare.validators")
    assert.is_true(m(v.UUID_PATTERN, "123e4567-e89b-12d3-a456-426614174000"))
    assert.truthy(regex.compile(v.VERSION_PATTERN))
  end)

  describe("rejects syntax Python and ECMA do not share", function()
    local BAD = {
      { "(?=a)", "only (?: ) groups are supported (no look-around, flags or named groups) at position 3" },
      { "(?P<x>a)", "only (?: ) groups are supported (no look-around, flags or named groups) at position 3" },
      { "\\1", "unsupported escape \\1 at position 3" },
      { "\\A", "unsupported escape \\A at position 3" },
      { "\\p{L}", "unsupported escape \\p at position 3" },
      { "a**", "multiple repeat at position 3" },
      { "*a", "nothing to repeat at position 1" },
      { "^*", "nothing to repeat at position 3" },
      { "(a", "missing ) at position 3" },
      { "a)", "unbalanced ) at position 2" },
      { "[]a]", "a class may not start with ']' (Python and ECMA disagree); write \\] at position 2" },
      { "[a", "missing ] at position 3" },
      { "a{,3}", "bad {} quantifier ({,n} is not portable; write {0,n}) at position 3" },
      { "a{3,1}", "bad {} quantifier (max below min) at position 7" },
      { "{", "literal '{' must be escaped as \\{ at position 1" },
      { "[z-a]", "bad range in class (end before start) at position 5" },
      { "a{2000}", "repeat count above 1000 at position 8" },
      { "\\", "pattern ends with a backslash at position 2" },
      { "\\x4", "bad hexadecimal escape at position 4" },
    }
    for _, c in ipairs(BAD) do
      it(("%q"):format(c[1]), function()
        local r, err = regex.compile(c[1])
        assert.is_nil(r)
        assert.equal(c[2], err)
      end)
    end
    it("patterns that expand too far", function()
      local r, err = regex.compile("(a{1000}){1000}")
      assert.is_nil(r)
      assert.equal("pattern too large once repeats are expanded", err)
    end)
    it("non-strings and invalid UTF-8", function()
      assert.same({ nil, "pattern must be a string" }, { regex.compile(5) })
      assert.same({ nil, "pattern is not valid UTF-8" }, { regex.compile("\255") })
    end)
  end)

  it("runs in linear time on pathological patterns", function()
    local r = assert(regex.compile("(a*)*(a|aa)*b"))
    local t = os.clock()
    assert.is_false(r:match(("a"):rep(3000)))
    assert.is_true(os.clock() - t < 2)
  end)

  it("matches invalid UTF-8 subjects byte-wise without failing", function()
    assert.is_true(m("^..$", "\255\254"))
  end)
end)
