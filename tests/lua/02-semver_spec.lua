local semver = require("glare.semver")

describe("glare.semver", function()
  -- docs/glare-contract.md "Field types and coercion"
  describe("coerce (the contract's examples)", function()
    local OK = {
      { "1.0", "1.0.0" }, { "1", "1.0.0" }, { 2.0, "2.0.0" }, { 3, "3.0.0" },
      { "1-alpha", "1.0.0-alpha" }, { "1:0", "1.0.0-0" }, { "1:0:0", "1.0.0-0-0" },
      { "2:0-0", "2.0.0-0-0" }, { "1.2.3", "1.2.3" }, { "1.2.3.4", "1.2.3+4" },
      { "1.0+b+c", "1.0.0+b.c" }, { "1.0-rc.1+build.5", "1.0.0-rc.1+build.5" },
      { "10-rc1", "10.0.0-rc1" }, { "1.0-", "1.0.0" }, { "1.0 beta", "1.0.0-beta" },
      { "1.0é", "1.0.0" }, { "0.0.1", "0.0.1" }, { "65535.65535.65535", "65535.65535.65535" },
      { "1.0.0-999999", "1.0.0-999999" }, { 1.5, "1.5.0" },
    }
    for _, c in ipairs(OK) do
      it(("%s -> %s"):format(tostring(c[1]), c[2]), function()
        assert.equal(c[2], semver.coerce(c[1]))
      end)
    end

    local BAD = {
      { "", "'' is not a valid version: it must start with a number (e.g. 1.0.0)" },
      { "abc", "'abc' is not a valid version: it must start with a number (e.g. 1.0.0)" },
      { "-1", "'-1' is not a valid version: it must start with a number (e.g. 1.0.0)" },
      { ":", "':' is not a valid version: it must start with a number (e.g. 1.0.0)" },
      { true, "'True' is not a valid version: it must start with a number (e.g. 1.0.0)" },
      { "65536", "'65536' is not a valid version: major version 65536 is above the maximum 65535" },
      { "1.65536", "'1.65536' is not a valid version: minor version 65536 is above the maximum 65535" },
      { "1.0.99999999999999999999", "'1.0.99999999999999999999' is not a valid version: patch version 99999999999999999999 is above the maximum 65535" },
      { "1.0.0-1234567", "'1.0.0-1234567' is not a valid version: numeric prerelease identifier 1234567 is longer than 6 digits" },
      { "1.0-a..b", "'1.0-a..b' is not a valid version: empty identifier in prerelease 'a..b'" },
      { "01.0", "'01.0' is not a valid version: major version '01' has a leading zero" },
      { "1.0.0-01", "'1.0.0-01' is not a valid version: numeric identifier '01' has a leading zero" },
    }
    for _, c in ipairs(BAD) do
      it(("refuses %q"):format(tostring(c[1])), function()
        local v, err = semver.coerce(c[1])
        assert.is_nil(v)
        assert.equal(c[2], err)
      end)
    end

    it("refuses tables", function()
      assert.same({ nil, "a version must be a string or a number" }, { semver.coerce({}) })
    end)

    it("refuses versions longer than 255 characters", function()
      local v, err = semver.coerce("1.0.0-" .. ("a"):rep(300))
      assert.is_nil(v)
      assert.matches("longer than 255 characters", err)
    end)
  end)

  describe("parse and tostring", function()
    it("round-trips a full version", function()
      local v = assert(semver.parse("1.2.3-rc.1+b.007"))
      assert.same({ 1, 2, 3 }, { v.major, v.minor, v.patch })
      assert.same({ "rc", "1" }, v.prerelease)
      assert.same({ "b", "007" }, v.build)   -- build may have leading zeros
      assert.equal("1.2.3-rc.1+b.007", semver.tostring(v))
    end)

    it("is strict", function()
      for _, s in ipairs({ "1.0", "1.0.0x", "1.0.0-", "1.0.0+", "v1.0.0", "1.0.0-a_b" }) do
        assert.is_nil((semver.parse(s)), s)
      end
    end)
  end)

  describe("compare (semver 2.0 precedence)", function()
    local ORDER = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
      "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0" }
    it("orders the semver.org example chain", function()
      for i = 1, #ORDER - 1 do
        assert.equal(-1, semver.compare(ORDER[i], ORDER[i + 1]), ORDER[i] .. " < " .. ORDER[i + 1])
        assert.equal(1, semver.compare(ORDER[i + 1], ORDER[i]))
      end
    end)
    it("ignores build metadata", function()
      assert.equal(0, semver.compare("1.0.0+a", "1.0.0+b"))
      assert.equal(0, semver.compare("1.0.0", "1.0.0+b"))
    end)
    it("compares numeric identifiers numerically", function()
      assert.equal(-1, semver.compare("1.0.0-2", "1.0.0-11"))
      assert.equal(-1, semver.compare("9.0.0", "10.0.0"))
    end)
  end)

  describe("version_key", function()
    it("packs a release with flag 2", function()
      local p, s, m = semver.version_key("1.2.3")
      assert.equal((1 << 48) | (2 << 32) | (3 << 16) | (2 << 14), p)
      assert.equal("", s)
      assert.equal("", m)
    end)
    it("packs a prerelease with flag 0 and pads numeric identifiers to 6 digits", function()
      local p, s, m = semver.version_key("1.2.3-rc.1.x-7+b5.6")
      assert.equal((1 << 48) | (2 << 32) | (3 << 16), p)
      assert.equal("rc.000001.x-7", s)
      assert.equal("b5.6", m)
    end)
    it("sorts a release above its prereleases and below the next patch", function()
      local rel = semver.version_key("1.0.0")
      local pre = semver.version_key("1.0.0-rc.1")
      local nxt = semver.version_key("1.0.1-alpha")
      assert.is_true(pre < rel and rel < nxt)
    end)
    it("orders like compare on the example chain (prefix, then suffix)", function()
      local chain = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0" }
      for i = 1, #chain - 1 do
        local p1, s1 = semver.version_key(chain[i])
        local p2, s2 = semver.version_key(chain[i + 1])
        assert.is_true(p1 < p2 or (p1 == p2 and s1 < s2), chain[i])
      end
    end)
    it("gives the unsigned 64-bit pattern (negative as a Lua integer) for major >= 32768", function()
      local p = semver.version_key("65535.0.0")
      assert.equal(math.ult(0, p), true)
      assert.is_true(p < 0)
      assert.equal(0xFFFF, (p >> 48) & 0xFFFF)
    end)
    it("refuses an invalid version", function()
      assert.is_nil((semver.version_key("1.0")))
    end)
  end)
end)
