--- Semantic versions: Glare's lenient coercion, strict parsing, ordering and
-- the sortable database key.
--
-- `coerce` reproduces python-semantic_version's `Version.coerce` (what Glare
-- applies to every `version` value), followed by Glare's storage limits
-- (components <= 65535, numeric prerelease identifiers <= 6 digits). Glare
-- answers 500 (InvalidVersion) when a limit is exceeded; we return an
-- ordinary error so the caller answers 400.
local util = require("glare.util")

local semver = {}

local tonumber, type, concat = tonumber, type, table.concat
local format = string.format

local MAX_COMPONENT = 65535     -- 16 bits each in the version prefix
local MAX_NUMERIC_PRERELEASE = 6
local MAX_LENGTH = 255          -- version_suffix / version_meta columns

local function is_numeric(id) return id:find("^%d+$") ~= nil end

local function split_ids(s)
  local ids = {}
  for id in (s .. "."):gmatch("([^.]*)%.") do ids[#ids + 1] = id end
  return ids
end

local function check_ids(ids, what, allow_leading_zero, s)
  for _, id in ipairs(ids) do
    if id == "" then
      return nil, format("empty identifier in %s '%s'", what, s)
    end
    if not id:find("^[0-9A-Za-z-]+$") then
      return nil, format("invalid character in %s '%s'", what, s)
    end
    if not allow_leading_zero and is_numeric(id) and #id > 1 and id:sub(1, 1) == "0" then
      return nil, format("numeric identifier '%s' has a leading zero", id)
    end
  end
  return true
end

local function component(s, name)
  if #s > 1 and s:sub(1, 1) == "0" then
    return nil, format("%s version '%s' has a leading zero", name, s)
  end
  -- length check first: tonumber() of a 30-digit string is a float
  local n = #s <= 5 and tonumber(s)
  if not n or n > MAX_COMPONENT then
    return nil, format("%s version %s is above the maximum %d", name, s, MAX_COMPONENT)
  end
  return n
end

--- Parse a strict semver string `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
-- Returns `{major, minor, patch, prerelease = {ids}, build = {ids}}` or
-- `nil, message`. Glare's storage limits are enforced here.
function semver.parse(s)
  if type(s) ~= "string" then return nil, "version must be a string" end
  if #s > MAX_LENGTH then
    return nil, format("version is longer than %d characters", MAX_LENGTH)
  end
  local maj, min, pat, rest = s:match("^(%d+)%.(%d+)%.(%d+)(.*)$")
  if not maj then return nil, format("'%s' is not a semantic version (MAJOR.MINOR.PATCH)", s) end
  local pre, build = rest:match("^%-([^+]*)(.*)$")
  if not pre then pre, build = nil, rest end
  if build ~= "" then
    build = build:match("^%+(.*)$")
    if not build then return nil, format("'%s' is not a semantic version", s) end
  else
    build = nil
  end
  local v = { prerelease = {}, build = {} }
  local err
  v.major, err = component(maj, "major") if not v.major then return nil, err end
  v.minor, err = component(min, "minor") if not v.minor then return nil, err end
  v.patch, err = component(pat, "patch") if not v.patch then return nil, err end
  if pre then
    v.prerelease = split_ids(pre)
    local ok, e = check_ids(v.prerelease, "prerelease", false, pre)
    if not ok then return nil, e end
    for _, id in ipairs(v.prerelease) do
      if is_numeric(id) and #id > MAX_NUMERIC_PRERELEASE then
        return nil, format("numeric prerelease identifier %s is longer than %d digits",
          id, MAX_NUMERIC_PRERELEASE)
      end
    end
  end
  if build then
    v.build = split_ids(build)
    local ok, e = check_ids(v.build, "build metadata", true, build)
    if not ok then return nil, e end
  end
  return v
end

--- Canonical text of a parsed version.
function semver.tostring(v)
  local s = format("%d.%d.%d", v.major, v.minor, v.patch)
  if #v.prerelease > 0 then s = s .. "-" .. concat(v.prerelease, ".") end
  if #v.build > 0 then s = s .. "+" .. concat(v.build, ".") end
  return s
end

-- Replace every character outside [0-9A-Za-z+.-] with '-', one '-' per
-- character (code point), as Python does on a str.
local function cleanup(rest)
  if not rest:find("[^%w+.-]") then return rest end
  if utf8.len(rest) then
    return (rest:gsub(utf8.charpattern, function(ch)
      if #ch == 1 and ch:find("^[%w+.-]$") then return ch end
      return "-"
    end))
  end
  return (rest:gsub("[^%w+.-]", "-"))
end

--- Coerce any JSON scalar to a canonical semver string, Glare style:
-- `1.0`->`1.0.0`, `1`->`1.0.0`, 2.0->`2.0.0`, `1-alpha`->`1.0.0-alpha`,
-- `1:0`->`1.0.0-0`, `2:0-0`->`2.0.0-0-0`, `1.2.3.4`->`1.2.3+4`.
-- Returns the string or `nil, message`.
function semver.coerce(value)
  local t = type(value)
  if t == "table" then
    return nil, "a version must be a string or a number"
  end
  local s = util.py_str(value)
  -- coercion turns at most 4 bytes (one character) into one: anything
  -- longer than this cannot make a version of MAX_LENGTH characters
  if #s > 4 * MAX_LENGTH + 8 then
    return nil, format("%s is not a valid version: version is longer than %d characters",
      util.quote(s), MAX_LENGTH)
  end
  -- fast path: already MAJOR.MINOR.PATCH
  if s:find("^%d+%.%d+%.%d+$") then
    local v, err = semver.parse(s)
    if not v then return nil, format("%s is not a valid version: %s", util.quote(s), err) end
    return s
  end
  local base = s:match("^%d+%.%d+%.%d+") or s:match("^%d+%.%d+") or s:match("^%d+")
  if not base then
    return nil, format("%s is not a valid version: it must start with a number (e.g. 1.0.0)",
      util.quote(s))
  end
  local version = base
  if not base:find(".", 1, true) then
    version = version .. ".0.0"
  elseif not base:find("%.%d+%.") then
    version = version .. ".0"
  end
  local rest = s:sub(#base + 1)
  if rest ~= "" then
    rest = cleanup(rest)
    local pre, build
    local first = rest:sub(1, 1)
    if first == "+" or first == "." then
      pre, build = "", rest:sub(2)
    else
      if first == "-" then rest = rest:sub(2) end
      pre, build = rest:match("^([^+]*)%+(.*)$")
      if not pre then pre, build = rest, "" end
    end
    build = build:gsub("%+", ".")
    if pre ~= "" then version = version .. "-" .. pre end
    if build ~= "" then version = version .. "+" .. build end
  end
  local v, err = semver.parse(version)
  if not v then
    return nil, format("%s is not a valid version: %s", util.quote(s), err)
  end
  return semver.tostring(v)
end

local function compare_ids(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = a[i], b[i]
    if x == nil then return -1 end
    if y == nil then return 1 end
    if x ~= y then
      local nx, ny = is_numeric(x), is_numeric(y)
      if nx and ny then
        -- equal-length digit strings compare like numbers; no leading zeros
        if #x ~= #y then return #x < #y and -1 or 1 end
        return x < y and -1 or 1
      elseif nx then return -1
      elseif ny then return 1
      end
      return x < y and -1 or 1
    end
  end
  return 0
end

--- Semver 2.0 precedence of two versions (strings or parsed tables):
-- -1, 0 or 1. Build metadata is ignored. Raises on an invalid version.
function semver.compare(a, b)
  if type(a) == "string" then a = assert(semver.parse(a)) end
  if type(b) == "string" then b = assert(semver.parse(b)) end
  for _, k in ipairs({ "major", "minor", "patch" }) do
    if a[k] ~= b[k] then return a[k] < b[k] and -1 or 1 end
  end
  local pa, pb = a.prerelease, b.prerelease
  if #pa == 0 or #pb == 0 then
    if #pa == #pb then return 0 end
    return #pa == 0 and 1 or -1   -- a release ranks above its prereleases
  end
  return compare_ids(pa, pb)
end

--- The three database columns of a version (docs/glare-contract.md
--- "Version columns"):
-- `prefix = major<<48 | minor<<32 | patch<<16 | flag<<14` (flag 2 for a
-- release, 0 with a prerelease), `suffix` = prerelease with numeric
-- identifiers zero-padded to 6 digits (`""` for a release), `meta` = build.
-- `prefix` is the unsigned 64-bit pattern as a Lua integer: it is negative
-- when major >= 32768, so order it as unsigned (or flip the sign bit).
-- Returns `prefix, suffix, meta` or `nil, message`.
function semver.version_key(v)
  if type(v) == "string" then
    local err
    v, err = semver.parse(v)
    if not v then return nil, err end
  end
  local flag = #v.prerelease == 0 and 2 or 0
  local prefix = (v.major << 48) | (v.minor << 32) | (v.patch << 16) | (flag << 14)
  local parts = {}
  for i, id in ipairs(v.prerelease) do
    parts[i] = is_numeric(id) and ("0"):rep(MAX_NUMERIC_PRERELEASE - #id) .. id or id
  end
  return prefix, concat(parts, "."), concat(v.build, ".")
end

return semver
