--- Small text helpers shared by the type runtime (Python-compatible `str()`).
--
-- Glare is written in Python and its coercions go through `str()`; we need
-- the same spellings for booleans and floats so that, e.g., a String field
-- given `1.5` stores "1.5" and one given `2.0` stores "2.0" (not "2").
local util = {}

local format, tonumber, type = string.format, tonumber, type
local math_type, huge = math.type, math.huge
local utf8_len = utf8.len

--- Python `repr()`/`str()` of a float: the shortest digit string that reads
-- back as the same double, in fixed notation when the decimal exponent is in
-- [-4, 16), in scientific notation (two-digit exponent minimum) otherwise.
function util.float_str(x)
  if x ~= x then return "nan" end
  if x == huge then return "inf" end
  if x == -huge then return "-inf" end
  if x == 0 then return (1 / x < 0) and "-0.0" or "0.0" end
  local s
  for p = 0, 16 do
    s = format("%." .. p .. "e", x)
    if tonumber(s) == x then break end
  end
  local sign, int, frac, exp = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (int .. frac):gsub("0+$", "")
  if digits == "" then digits = "0" end
  local e = tonumber(exp)
  local decpt = e + 1            -- value = 0.<digits> * 10^decpt
  if decpt > -4 and decpt <= 16 then
    if decpt <= 0 then
      return sign .. "0." .. ("0"):rep(-decpt) .. digits
    elseif decpt >= #digits then
      return sign .. digits .. ("0"):rep(decpt - #digits) .. ".0"
    end
    return sign .. digits:sub(1, decpt) .. "." .. digits:sub(decpt + 1)
  end
  local mant = digits:sub(1, 1)
  if #digits > 1 then mant = mant .. "." .. digits:sub(2) end
  return sign .. mant .. "e" .. format("%+03d", e)
end

--- Python `str()` of a scalar: integers exactly, floats as `float_str`,
-- booleans as "True"/"False". Other values fall back to `tostring`.
function util.py_str(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "True" or "False" end
  if t == "number" then
    if math_type(v) == "integer" then return format("%d", v) end
    return util.float_str(v)
  end
  return tostring(v)
end

--- Length in characters (code points) like Python's `len(str)`; falls back
-- to bytes for strings that are not valid UTF-8.
function util.ulen(s)
  return utf8_len(s) or #s
end

--- Quote a value for an error message: strings in single quotes (cut at 60
-- characters so that a 1 MB value does not make a 1 MB message).
function util.quote(v)
  if type(v) ~= "string" then return util.py_str(v) end
  if #v > 60 then v = v:sub(1, 57) .. "..." end
  return "'" .. v .. "'"
end

--- Python-ish name of the type of a JSON value, for "A string is required,
-- not a list" messages.
function util.json_type(v, json)
  local t = type(v)
  if v == json.null then return "null" end
  if t == "table" then return json.is_array(v) and "list" or "dict" end
  if t == "number" then return math_type(v) == "integer" and "integer" or "float" end
  if t == "boolean" then return "boolean" end
  return t
end

return util
