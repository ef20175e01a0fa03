--- Attribute-named validators and the implicit limits (docs/glare-contract.md
--- "Validators", "Implicit limits").
--
-- A field declares a validator by naming it as an attribute, Kong style:
-- `glare.String { max_length = 10, pattern = "^[a-z]+$" }`. Each entry of
-- `validators.defs` says
--
--   kinds       the field kinds it applies to (the metaschema enforces it);
--   collection  true when it checks a List/Dict/Folder as a whole (so it may
--               not appear among element validators);
--   arg(v, kind)    `true` or `nil, "must be ..."`: checks the argument;
--   build(v, kind)  returns `check(value) -> true | nil, message`;
--   schema(v, frag) adds its JSON-schema keywords to `frag`.
--
-- Checks run after coercion, on non-null values only, in `validators.order`
-- (cheap equality first), so messages are deterministic.
local json = require("glare.json")
local regex = require("glare.regex")
-- glare.runtime requires this module: look it up when a validator fails
local loaded = package.loaded
local util = require("glare.util")

local validators = {}

local type, ipairs, pairs, pcall, tostring = type, ipairs, pairs, pcall, tostring
local format, concat = string.format, table.concat
local math_type = math.type
local quote, ulen, py_str = util.quote, util.ulen, util.py_str

local UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
  .. "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
--- Glare publishes the semver pattern of Version fields in this exact
-- slash-delimited (JavaScript literal) form; we keep it for schema
-- compatibility with Glare clients and fixtures.
validators.VERSION_PATTERN = "/^([0-9]+)\\.([0-9]+)\\.([0-9]+)(?:-([0-9A-Za-z-]+"
  .. "(?:\\.[0-9A-Za-z-]+)*))?(?:\\+[0-9A-Za-z-]+)?$/"
validators.UUID_PATTERN = UUID_PATTERN

local STRING = { String = true }
local NUMBER = { Integer = true, Float = true }
local SCALAR_ENUM = { String = true, Integer = true, Float = true }
local LIST = { List = true }
local DICT = { Dict = true }
local KEYED = { Dict = true, Folder = true }
local ANY = setmetatable({}, { __index = function() return true end })

----------------------------------------------------------------------------
-- Argument checks
----------------------------------------------------------------------------

local function nonneg_int(v)
  if math_type(v) == "integer" and v >= 0 then return true end
  return nil, "must be a non-negative integer"
end

local function number_for(v, kind)
  if kind == "Integer" and math_type(v) ~= "integer" then
    return nil, "must be an integer"
  end
  if type(v) ~= "number" or v ~= v then return nil, "must be a number" end
  return true
end

local function list_of(pred, what)
  return function(v, kind)
    if type(v) ~= "table" or #v == 0 then return nil, "must be a non-empty list of " .. what end
    for k in pairs(v) do
      if math_type(k) ~= "integer" or k < 1 or k > #v then
        return nil, "must be a list (no named keys)"
      end
    end
    for i, x in ipairs(v) do
      local ok, err = pred(x, kind)
      if not ok then return nil, format("item %d %s", i, err) end
    end
    return true
  end
end

local function a_string(v)
  if type(v) == "string" then return true end
  return nil, "must be a string"
end

local function value_of_kind(v, kind)
  if kind == "String" then return a_string(v) end
  return number_for(v, kind)
end

-- forbidden_chars: a list of single characters, or a string of them.
local function chars_of(v)
  if type(v) == "string" then
    local t = {}
    for _, c in utf8.codes(v) do t[#t + 1] = utf8.char(c) end
    return t
  end
  return v
end

local function forbidden_arg(v)
  if type(v) == "string" then
    if v == "" or not utf8.len(v) then return nil, "must be a non-empty UTF-8 string" end
    return true
  end
  return list_of(function(c)
    if type(c) == "string" and utf8.len(c) == 1 then return true end
    return nil, "must be a single character"
  end, "single characters")(v)
end

----------------------------------------------------------------------------
-- The validators
----------------------------------------------------------------------------

local function plural(n, word)
  return format("%d %s%s", n, word, n == 1 and "" or "s")
end

local defs = {}
validators.defs = defs

defs.allowed_values = {
  kinds = SCALAR_ENUM,
  arg = list_of(value_of_kind, "values of the field's kind"),
  build = function(values)
    local set, shown = {}, {}
    for i, v in ipairs(values) do set[v] = true; shown[i] = py_str(v) end
    local list = concat(shown, ", ")
    return function(value)
      if set[value] then return true end
      return nil, format("Value %s is not allowed; it must be one of: %s", quote(value), list)
    end
  end,
  schema = function(values, frag)
    local enum = json.array()
    for i, v in ipairs(values) do enum[i] = v end
    frag.enum = enum
  end,
}

-- Python's uuid.UUID(): optional "urn:uuid:" prefix and braces, hyphens
-- anywhere, exactly 32 hex digits. (This runs before the length checks:
-- a value longer than any sane spelling is no UUID, without more work.)
local function is_uuid(s)
  if #s > 1024 then return false end
  local h = s:gsub("^urn:", ""):gsub("^uuid:", ""):gsub("^{", ""):gsub("}$", ""):gsub("-", "")
  return #h == 32 and h:find("^%x+$") ~= nil
end
validators.is_uuid = is_uuid

defs.uuid = {
  kinds = STRING,
  arg = function(v) if v == true then return true end return nil, "must be true" end,
  build = function()
    return function(value)
      if is_uuid(value) then return true end
      return nil, format("%s is not a valid UUID", quote(value))
    end
  end,
  schema = function(_, frag) frag.pattern = UUID_PATTERN end,
}

defs.min_length = {
  kinds = STRING, arg = nonneg_int,
  build = function(n)
    return function(value)
      local l = ulen(value)
      if l >= n then return true end
      return nil, format("String length must be at least %d (got %d)", n, l)
    end
  end,
  schema = function(n, frag) frag.minLength = n end,
}

defs.max_length = {
  kinds = STRING, arg = nonneg_int,
  build = function(n)
    return function(value)
      -- bytes >= characters, so most values never need utf8.len
      if #value <= n then return true end
      local l = ulen(value)
      if l <= n then return true end
      return nil, format("String length must be at most %d (got %d)", n, l)
    end
  end,
  schema = function(n, frag) frag.maxLength = n end,
}

-- Characters that are special inside an ECMA/Python character class.
local function class_escape(c)
  if c == "\\" or c == "]" or c == "[" or c == "^" or c == "-" then return "\\" .. c end
  return c
end

defs.forbidden_chars = {
  kinds = STRING, arg = forbidden_arg,
  build = function(chars)
    chars = chars_of(chars)
    return function(value)
      for _, c in ipairs(chars) do
        if value:find(c, 1, true) then
          return nil, format("Forbidden character %s found in string %s", quote(c), quote(value))
        end
      end
      return true
    end
  end,
  schema = function(chars, frag)
    local t = {}
    for i, c in ipairs(chars_of(chars)) do t[i] = class_escape(c) end
    frag.pattern = "^[^" .. concat(t) .. "]+$"
  end,
}

defs.pattern = {
  kinds = STRING,
  arg = function(v)
    if type(v) ~= "string" then return nil, "must be a regular expression string" end
    local ok, err = regex.compile(v)
    if not ok then return nil, "is not a supported regular expression: " .. err end
    return true
  end,
  build = function(source)
    local r = assert(regex.compile(source))
    return function(value)
      if r:match(value) then return true end
      return nil, format("Value %s does not match the pattern %s", quote(value), source)
    end
  end,
  schema = function(source, frag) frag.pattern = source end,
}

defs.min = {
  kinds = NUMBER, arg = number_for,
  build = function(n)
    return function(value)
      if value >= n then return true end
      return nil, format("Number %s is below the minimum %s", py_str(value), py_str(n))
    end
  end,
  schema = function(n, frag) frag.minimum = n end,
}

defs.max = {
  kinds = NUMBER, arg = number_for,
  build = function(n)
    return function(value)
      if value <= n then return true end
      return nil, format("Number %s is above the maximum %s", py_str(value), py_str(n))
    end
  end,
  schema = function(n, frag) frag.maximum = n end,
}

defs.min_items = {
  kinds = LIST, collection = true, arg = nonneg_int,
  build = function(n)
    return function(value)
      if #value >= n then return true end
      return nil, format("List must have at least %s (got %d)", plural(n, "item"), #value)
    end
  end,
  schema = function(n, frag) frag.minItems = n end,
}

defs.max_items = {
  kinds = LIST, collection = true, arg = nonneg_int,
  build = function(n)
    return function(value)
      if #value <= n then return true end
      return nil, format("List must have at most %s (got %d)", plural(n, "item"), #value)
    end
  end,
  schema = function(n, frag) frag.maxItems = n end,
}

defs.unique = {
  kinds = LIST, collection = true,
  arg = function(v)
    if v == true or v == "convert_to_set" then return true end
    return nil, 'must be true or "convert_to_set"'
  end,
  build = function(mode)
    if mode == "convert_to_set" then
      -- tags: drop repeats silently, keeping first occurrences in order
      return function(value)
        local seen, j = {}, 0
        for i = 1, #value do
          local v = value[i]
          value[i] = nil
          if not seen[v] then seen[v] = true; j = j + 1; value[j] = v end
        end
        return true
      end
    end
    return function(value)
      local seen = {}
      for _, v in ipairs(value) do
        if seen[v] then
          return nil, format("List items must be unique; %s appears more than once", quote(v))
        end
        seen[v] = true
      end
      return true
    end
  end,
  schema = function(_, frag) frag.uniqueItems = true end,
}

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

defs.min_keys = {
  kinds = KEYED, collection = true, arg = nonneg_int,
  build = function(n)
    return function(value)
      local c = count_keys(value)
      if c >= n then return true end
      return nil, format("Dict must have at least %s (got %d)", plural(n, "key"), c)
    end
  end,
  schema = function(n, frag) frag.minProperties = n end,
}

defs.max_keys = {
  kinds = KEYED, collection = true, arg = nonneg_int,
  build = function(n)
    return function(value)
      local c = count_keys(value)
      if c <= n then return true end
      return nil, format("Dict must have at most %s (got %d)", plural(n, "key"), c)
    end
  end,
  schema = function(n, frag) frag.maxProperties = n end,
}

defs.min_key_length = {
  kinds = KEYED, collection = true, arg = nonneg_int,
  build = function(n)
    return function(value)
      for k in pairs(value) do
        -- a key of at least n bytes has at least n characters unless it
        -- is multi-byte; only then count characters
        if #k < n or (#k < 4 * n and ulen(k) < n) then
          return nil, format("Dict key %s is shorter than %s", quote(k), plural(n, "character"))
        end
      end
      return true
    end
  end,
  schema = function() end,
}

defs.max_key_length = {
  kinds = KEYED, collection = true, arg = nonneg_int,
  build = function(n)
    return function(value)
      for k in pairs(value) do
        if #k > n and ulen(k) > n then
          return nil, format("Dict key %s is longer than %s", quote(k), plural(n, "character"))
        end
      end
      return true
    end
  end,
  schema = function() end,
}

defs.allowed_keys = {
  kinds = DICT, collection = true, arg = list_of(a_string, "strings"),
  build = function(keys)
    local set = {}
    for _, k in ipairs(keys) do set[k] = true end
    local list = concat(keys, ", ")
    return function(value)
      for k in pairs(value) do
        if not set[k] then
          return nil, format("Key %s is not allowed; allowed keys: %s", quote(k), list)
        end
      end
      return true
    end
  end,
  -- the per-key `properties` are built by glare.schema, which knows the
  -- element schema each entry must carry
  schema = function(_, frag) frag.additionalProperties = false end,
}

defs.required_keys = {
  kinds = DICT, collection = true, arg = list_of(a_string, "strings"),
  build = function(keys)
    return function(value)
      for _, k in ipairs(keys) do
        if value[k] == nil then
          return nil, format("Key %s is required", quote(k))
        end
      end
      return true
    end
  end,
  schema = function(keys, frag)
    local req = json.array()
    for i, k in ipairs(keys) do req[i] = k end
    frag.required = req
  end,
}

-- Escape hatch (Kong's custom_validator): `function(value) -> true | nil, msg`.
-- It runs in the type's runtime environment and publishes nothing in the
-- schema.
defs.custom_validator = {
  kinds = ANY,
  arg = function(v)
    if type(v) == "function" then return true end
    return nil, "must be a function(value) returning true or nil, message"
  end,
  -- A refusal is `nil, message` or glare.fail (its message is the 400's);
  -- any other error is the validator's failure, raised on to the caller (a
  -- 500 in the server, its file:line in the log).
  build = function(fn)
    return function(value)
      local ok, res, msg = pcall(fn, value)
      if not ok then
        local runtime = loaded["glare.runtime"]
        if runtime and runtime.is_failure(res) then return nil, res.message end
        error(res, 0)
      end
      if res then return true end
      return nil, msg and tostring(msg) or "Value is not valid"
    end
  end,
  schema = function() end,
}

--- Evaluation order: equality first, then sizes, patterns, collections,
-- keys, and the custom escape hatch last.
validators.order = {
  "allowed_values", "uuid", "min_length", "max_length", "forbidden_chars",
  "pattern", "min", "max", "min_items", "max_items", "unique", "min_keys",
  "max_keys", "min_key_length", "max_key_length", "allowed_keys",
  "required_keys", "custom_validator",
}

--- Validators that publish a JSON-schema `pattern` (at most one per field).
validators.pattern_like = { "uuid", "forbidden_chars", "pattern" }

--- Kinds a validator applies to, as a sorted list (for messages).
function validators.kinds_of(name)
  local d = defs[name]
  if d.kinds == ANY then return { "any" } end
  local t = {}
  for k in pairs(d.kinds) do t[#t + 1] = k end
  table.sort(t)
  return t
end

--- Apply the implicit limits (docs/glare-contract.md "Implicit limits") to
--- a table of validator
-- attributes for a field (or element) of `kind`; returns a new table.
function validators.with_defaults(kind, attrs, is_element)
  local out = {}
  for k, v in pairs(attrs) do out[k] = v end
  if kind == "String" and out.max_length == nil and out.allowed_values == nil then
    out.max_length = 255
  end
  if is_element then return out end
  if kind == "List" and out.max_items == nil then out.max_items = 255 end
  if kind == "Dict" or kind == "Folder" then
    if out.max_keys == nil then out.max_keys = 255 end
    if out.max_key_length == nil then out.max_key_length = 255 end
    if out.min_key_length == nil then out.min_key_length = 1 end
  end
  return out
end

--- Compile the validator attributes in `attrs` into an ordered list of
-- check functions.
function validators.compile(attrs, kind)
  local checks = {}
  for _, name in ipairs(validators.order) do
    local arg = attrs[name]
    if arg ~= nil then checks[#checks + 1] = defs[name].build(arg, kind) end
  end
  return checks
end

--- Run compiled checks; `true` or `nil, message` from the first failure.
function validators.run(checks, value)
  for i = 1, #checks do
    local ok, err = checks[i](value)
    if not ok then return nil, err end
  end
  return true
end

--- Add the JSON-schema keywords of the validators in `attrs` to `frag`.
function validators.schema(attrs, frag)
  for _, name in ipairs(validators.order) do
    local arg = attrs[name]
    if arg ~= nil then defs[name].schema(arg, frag) end
  end
  return frag
end

return validators
