--- Field kinds: their JSON-schema types, filter operators and coercion
-- rules (docs/glare-contract.md "Field types and coercion", "Filter
-- operators").
--
-- Coercion reproduces Glare's (oslo.versionedobjects) Python semantics:
-- `int()`, `float()`, `str()`, FlexibleBoolean, semantic_version coercion.
-- Every coercer is `function(value) -> coerced | nil, message`; it never
-- sees `null` (the caller handles nullability) and never raises.
local json = require("glare.json")
local semver = require("glare.semver")
local util = require("glare.util")

local fields = {}

local type, tonumber, pairs, getmetatable, next = type, tonumber, pairs, getmetatable, next
local format = string.format
local math_type, floor, ceil, huge = math.type, math.floor, math.ceil, math.huge
local quote, py_str, json_type = util.quote, util.py_str, util.json_type
local null = json.null

--- Every field kind, in documentation order.
fields.KINDS = { "String", "Integer", "Float", "Boolean", "Version", "Link",
  "DateTime", "Blob", "Folder", "List", "Dict" }
fields.IS_KIND = {}
for _, k in ipairs(fields.KINDS) do fields.IS_KIND[k] = true end

--- Kinds allowed as List/Dict elements (Glare has no lists of blobs,
-- versions or dates; a dict of blobs is a Folder).
fields.ELEMENT_KINDS = { String = true, Integer = true, Float = true,
  Boolean = true, Link = true }

--- JSON-schema `type` of each kind.
fields.SCHEMA_TYPE = { String = "string", Link = "string", Version = "string",
  DateTime = "string", Integer = "integer", Float = "number",
  Boolean = "boolean", List = "array", Dict = "object", Blob = "object",
  Folder = "object" }

--- Glare's `glareType` name (Version fields report "String", a Folder is a
-- "BlobDict", collections are "<Element>List" / "<Element>Dict").
function fields.glare_type(kind, element)
  if kind == "Version" then return "String" end
  if kind == "Folder" then return "BlobDict" end
  if kind == "List" or kind == "Dict" then return element .. kind end
  return kind
end

local ORDERED_OPS = { "eq", "neq", "in", "gt", "gte", "lt", "lte", "like" }
local NUMERIC = { allowed = { eq = 1, neq = 1, ["in"] = 1, gt = 1, gte = 1, lt = 1, lte = 1, like = 1 },
  default = { "eq", "neq", "in", "gt", "gte", "lt", "lte" } }
--- Filter operators per kind: `allowed` (a set) and `default` (a list).
-- Collections use their element kind's row.
fields.FILTER_OPS = {
  String = { allowed = { eq = 1, neq = 1, ["in"] = 1, like = 1 }, default = { "eq", "neq", "in" } },
  Integer = NUMERIC, Float = NUMERIC, Version = NUMERIC,
  Boolean = { allowed = { eq = 1, neq = 1 }, default = { "eq", "neq" } },
  Link = { allowed = { eq = 1, neq = 1 }, default = { "eq", "neq" } },
  DateTime = { allowed = { lt = 1, gt = 1 }, default = { "lt", "gt" } },
  Blob = { allowed = {}, default = {} },
  Folder = { allowed = {}, default = {} },
}
fields.ALL_OPS = ORDERED_OPS

--- The filter-op row for a field of `kind` (with `element` for List/Dict).
function fields.filter_ops_for(kind, element)
  if kind == "List" or kind == "Dict" then kind = element end
  return fields.FILTER_OPS[kind]
end

----------------------------------------------------------------------------
-- Scalar coercion
----------------------------------------------------------------------------

local str_find, str_byte, str_sub = string.find, string.byte, string.sub
local SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }

-- Python's str.strip(), in time linear in the value (the obvious pattern
-- "^%s*(.-)%s*$" is quadratic on a long run of inner spaces).
local function trim(s)
  local i = str_find(s, "%S")
  if not i then return "" end
  local j = #s
  while SPACE[str_byte(s, j)] do j = j - 1 end
  return str_sub(s, i, j)
end

-- Longest numeric string worth parsing (int() and float() of longer
-- strings are refused before any pattern work).
local MAX_NUMBER_TEXT = 400

local ARTICLE = { integer = "an integer", list = "a list", dict = "a dict",
  float = "a float", boolean = "a boolean", string = "a string", null = "null" }

local function required(what, value)
  local t = json_type(value, json)
  return nil, format("%s is required, not %s", what, ARTICLE[t] or ("a " .. t))
end

local coerce = {}
fields.coerce = coerce

-- oslo String: str() of strings, numbers and booleans ("True"/"False").
function coerce.String(value)
  local t = type(value)
  if t == "string" then return value end
  if t == "number" or t == "boolean" then return py_str(value) end
  return required("A string", value)
end

local INT_MIN_F, INT_LIMIT_F = -2.0 ^ 63, 2.0 ^ 63

-- Python int(): floats truncate toward zero, booleans are 0/1, strings must
-- be plain decimal integers ("3.0" is refused). Results must fit int64.
function coerce.Integer(value)
  local t = type(value)
  if t == "number" then
    if math_type(value) == "integer" then return value end
    if value ~= value or value == huge or value == -huge then
      return nil, format("%s cannot be converted to an integer", py_str(value))
    end
    if value < INT_MIN_F or value >= INT_LIMIT_F then
      return nil, format("%s is out of the 64-bit integer range", py_str(value))
    end
    return value >= 0 and floor(value) or ceil(value)
  elseif t == "boolean" then
    return value and 1 or 0
  elseif t == "string" then
    local s = trim(value)
    if #s <= MAX_NUMBER_TEXT and s:find("^[+-]?%d+$") then
      local n = tonumber(s)
      if math_type(n) == "integer" then return n end
      return nil, format("%s is out of the 64-bit integer range", quote(value))
    end
    return nil, format("%s is not an integer", quote(value))
  end
  return required("An integer", value)
end

-- Python float(): numbers, booleans, decimal strings ("2", "3.0", "1e3").
-- Infinities and NaN are refused: JSON cannot carry them back.
function coerce.Float(value)
  local t = type(value)
  local n
  if t == "number" then
    n = value + 0.0
  elseif t == "boolean" then
    return value and 1.0 or 0.0
  elseif t == "string" then
    local s = trim(value)
    if #s > MAX_NUMBER_TEXT then return nil, format("%s is not a number", quote(value)) end
    local mant = s:match("^[+-]?(%d*%.?%d*)$") or s:match("^[+-]?(%d*%.?%d*)[eE][+-]?%d+$")
    if not mant or not mant:find("%d") then
      return nil, format("%s is not a number", quote(value))
    end
    n = tonumber(s) + 0.0
  else
    return required("A number", value)
  end
  if n ~= n or n == huge or n == -huge then
    return nil, format("%s is out of the floating-point range", py_str(value))
  end
  return n
end

local TRUE_STRINGS = { ["1"] = true, t = true, ["true"] = true, on = true, y = true, yes = true }

-- oslo FlexibleBoolean: booleans as they are; anything else is true iff its
-- str() (stripped, lower-cased) is 1/t/true/on/y/yes. So 1 -> true but
-- 1.0 -> false ("1.0"), [1] -> false, "" -> false. Never fails.
function coerce.Boolean(value)
  local t = type(value)
  if t == "boolean" then return value end
  if t == "string" then return TRUE_STRINGS[trim(value):lower()] == true end
  if t == "number" then return TRUE_STRINGS[py_str(value)] == true end
  return false
end

function coerce.Version(value)
  return semver.coerce(value)
end

-- Links: an internal reference "/artifacts/<type>/<id>" or an http(s) URL.
-- Existence/visibility of the target and the reachability of external
-- URLs are checked by the C core, which has the database and the network.
function coerce.Link(value)
  if type(value) ~= "string" then return required("A string", value) end
  if value:sub(1, 4) == "http" then
    local scheme = value:match("^(%a[%w+.-]*)://")
    scheme = scheme and scheme:lower()
    if scheme ~= "http" and scheme ~= "https" then
      return nil, format("Only http and https URLs are allowed in a link, got %s", quote(value))
    end
    return value
  end
  if value:find("^/artifacts/[^/]+/[^/]+$") then return value end
  return nil, format("Link %s is not valid: it must be an http(s) URL or a reference "
    .. "to an artifact, /artifacts/<type_name>/<id>", quote(value))
end

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_in(y, m)
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return 29 end
  return DAYS[m]
end

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

-- ISO 8601 date-times ("2017-08-03T10:20:30Z", "+02:00" offsets, optional
-- fraction, date only) normalised to UTC "YYYY-MM-DDTHH:MM:SS[.ffffff]Z".
function coerce.DateTime(value)
  if type(value) ~= "string" then return required("An ISO 8601 date-time string", value) end
  local s = trim(value)
  local y, mo, d, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  local bad = format("%s is not an ISO 8601 date-time (e.g. 2017-08-03T10:20:30Z)", quote(value))
  if not y then return nil, bad end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  local h, mi, sec, frac, tz = 0, 0, 0, "", "Z"
  if rest ~= "" then
    local hh, mm, r2 = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil, bad end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, r3 = r2:match("^:(%d%d)(.*)$")
    if ss then sec, r2 = tonumber(ss), r3 end
    local f, r4 = r2:match("^[.,](%d+)(.*)$")
    if f then frac, r2 = f, r4 end
    tz = r2 == "" and "Z" or r2
  end
  if mo < 1 or mo > 12 or d < 1 or d > days_in(y, mo) or h > 23 or mi > 59 or sec > 59 then
    return nil, bad
  end
  local offset = 0
  if tz ~= "Z" and tz ~= "z" then
    local sign, oh, om = tz:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then
      sign, oh = tz:match("^([+-])(%d%d)$")
      om = "00"
    end
    if not sign or tonumber(oh) > 23 or tonumber(om) > 59 then return nil, bad end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == "-" then offset = -offset end
  end
  local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
  local days = t // 86400
  local secs = t - days * 86400
  local Y, M, D = civil_from_days(days)
  frac = frac:sub(1, 6):gsub("0+$", "")
  return format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", Y, M, D, secs // 3600,
    secs % 3600 // 60, secs % 60, frac ~= "" and "." .. frac or "")
end

function coerce.Blob()
  return nil, "Blob fields cannot be set directly; upload data or add a location through the blob API"
end
coerce.Folder = coerce.Blob

----------------------------------------------------------------------------
-- Collections
----------------------------------------------------------------------------

local function plain_empty(v)
  return getmetatable(v) == nil and next(v) == nil
end

--- Coerce a List value: a JSON array whose elements coerce to `element`.
-- Returns a new marked array, or `nil, message`.
function fields.coerce_list(value, element)
  if type(value) ~= "table" or value == null
     or not (json.is_array(value) or plain_empty(value)) then
    return required("A list", value)
  end
  local ec = coerce[element]
  local out = json.array()
  for i = 1, #value do
    local v = value[i]
    if v == null then return nil, format("item %d: null is not allowed in a list", i - 1) end
    local c, err = ec(v)
    if c == nil then return nil, format("item %d: %s", i - 1, err) end
    out[i] = c
  end
  return out
end

--- Coerce a Dict value: a JSON object with string keys whose values coerce
-- to `element`. Returns a new marked object, or `nil, message`.
function fields.coerce_dict(value, element)
  if type(value) ~= "table" or value == null or not json.is_object(value) then
    return required("A dict", value)
  end
  local ec = coerce[element]
  local out = json.object()
  for k, v in pairs(value) do
    if type(k) ~= "string" then return nil, format("Dict keys must be strings, got %s", py_str(k)) end
    if v == null then return nil, format("key %s: null is not allowed as a value", quote(k)) end
    local c, err = ec(v)
    if c == nil then return nil, format("key %s: %s", quote(k), err) end
    out[k] = c
  end
  return out
end

return fields
