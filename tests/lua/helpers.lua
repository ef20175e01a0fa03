--- Shared helpers for the busted specs: load types, encode JSON
-- canonically, capture log records, check draft-04 schema structure.
-- Loaded with `dofile("tests/lua/helpers.lua")` (busted runs from the repo
-- root, see .busted).
local json = require("glare.json")
local loader = require("glare.loader")
local runtime = require("glare.runtime")
local regex = require("glare.regex")

local H = {}

H.STOCK_TYPES = { "images", "heat_templates", "heat_environments",
  "tosca_templates", "murano_packages", "secrets", "sample_artifact",
  "hooks_artifact", "non_nullable_fields_artifact", "regional_images" }

--- The file of type <name>: types/ (what ships), else tests/types/ (types
-- that exist for the tests), the order of the servers' types_path.
function H.type_path(name)
  for _, dir in ipairs({ "types/", "tests/types/" }) do
    local f = io.open(dir .. name .. ".lua", "rb")
    if f then
      f:close()
      return dir .. name .. ".lua"
    end
  end
  error("no type file " .. name .. ".lua in types/ or tests/types/")
end

--- Load type <name>, named "types/<name>.lua" as the server names it, or
-- fail the test with the loader's message.
function H.type(name, opts)
  local f = assert(io.open(H.type_path(name), "rb"))
  local src = f:read("a")
  f:close()
  local T, err = loader.load(src, "types/" .. name .. ".lua", opts)
  assert(T, err)
  return T
end

--- Load a type from inline source; returns T or nil, err.
function H.load(src, chunkname, opts)
  return loader.load(src, chunkname or "types/test.lua", opts)
end

local function encode(v, out)
  local t = type(v)
  if v == json.null or v == nil then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then
    if math.type(v) == "integer" then out[#out + 1] = string.format("%d", v)
    else out[#out + 1] = require("glare.util").float_str(v) end
  elseif t == "string" then
    local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }
    out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c)
      return ESC[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "table" then
    if json.is_array(v) then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        encode(tostring(k), out)
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("cannot encode a " .. t)
  end
end

--- Canonical JSON text (sorted keys) of a Lua value using json marks.
function H.encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

--- Install a log sink collecting records; returns the list and a
-- function restoring the default sink.
function H.capture_log()
  local records = {}
  runtime.set_log_sink(function(level, message, type_name)
    records[#records + 1] = { level = level, message = message, type = type_name }
  end)
  return records, function() runtime.set_log_sink(nil) end
end

----------------------------------------------------------------------------
-- Draft-04 structural checker
--
-- Checks what the draft-04 metaschema requires of the keywords we emit
-- (types of keyword values, non-empty unique `required`/`enum`/`type`
-- arrays, nested schemas) and that every `pattern` compiles with our
-- ECMA-subset regex engine. Unknown keywords are allowed, as in draft-04.
----------------------------------------------------------------------------

local SIMPLE_TYPES = { array = true, boolean = true, integer = true, null = true,
  number = true, object = true, string = true }

local function nonneg_int(v) return math.type(v) == "integer" and v >= 0 end

local function unique_strings(v, allow_empty)
  if type(v) ~= "table" or not (json.is_array(v) or (allow_empty and next(v) == nil)) then return false end
  if #v == 0 and not allow_empty then return false end
  local seen = {}
  for _, s in ipairs(v) do
    if type(s) ~= "string" or seen[s] then return false end
    seen[s] = true
  end
  return true
end

local check_schema

local function check_map_of_schemas(v, path, errs)
  if type(v) ~= "table" or json.is_array(v) then
    errs[#errs + 1] = path .. ": must be an object of schemas"
    return
  end
  for k, s in pairs(v) do check_schema(s, path .. "." .. k, errs) end
end

function check_schema(s, path, errs)
  if type(s) ~= "table" or json.is_array(s) or s == json.null then
    errs[#errs + 1] = path .. ": a schema must be an object"
    return
  end
  for k, v in pairs(s) do
    local p = path .. "." .. k
    if k == "type" then
      if type(v) == "string" then
        if not SIMPLE_TYPES[v] then errs[#errs + 1] = p .. ": unknown type " .. v end
      elseif unique_strings(v) then
        for _, t in ipairs(v) do
          if not SIMPLE_TYPES[t] then errs[#errs + 1] = p .. ": unknown type " .. t end
        end
      else
        errs[#errs + 1] = p .. ": must be a type name or a non-empty unique array of them"
      end
    elseif k == "properties" or k == "patternProperties" or k == "definitions" then
      check_map_of_schemas(v, p, errs)
    elseif k == "additionalProperties" or k == "additionalItems" then
      if type(v) ~= "boolean" then check_schema(v, p, errs) end
    elseif k == "items" then
      if json.is_array(v) then
        for i, x in ipairs(v) do check_schema(x, p .. "[" .. i .. "]", errs) end
      else
        check_schema(v, p, errs)
      end
    elseif k == "required" then
      if not unique_strings(v) then errs[#errs + 1] = p .. ": must be a non-empty array of unique strings" end
    elseif k == "enum" then
      if type(v) ~= "table" or not json.is_array(v) or #v == 0 then
        errs[#errs + 1] = p .. ": must be a non-empty array"
      end
    elseif k == "maxLength" or k == "minLength" or k == "maxItems" or k == "minItems"
        or k == "maxProperties" or k == "minProperties" then
      if not nonneg_int(v) then errs[#errs + 1] = p .. ": must be a non-negative integer" end
    elseif k == "maximum" or k == "minimum" then
      if type(v) ~= "number" then errs[#errs + 1] = p .. ": must be a number" end
    elseif k == "uniqueItems" or k == "exclusiveMaximum" or k == "exclusiveMinimum" then
      if type(v) ~= "boolean" then errs[#errs + 1] = p .. ": must be a boolean" end
    elseif k == "pattern" then
      if type(v) ~= "string" then
        errs[#errs + 1] = p .. ": must be a string"
      else
        local ok, err = regex.compile(v)
        if not ok then errs[#errs + 1] = p .. ": not a valid regex: " .. err end
      end
    elseif k == "title" or k == "description" or k == "format" then
      if type(v) ~= "string" then errs[#errs + 1] = p .. ": must be a string" end
    elseif k == "allOf" or k == "anyOf" or k == "oneOf" then
      if not json.is_array(v) or #v == 0 then errs[#errs + 1] = p .. ": must be a non-empty array" end
    elseif k == "not" then
      check_schema(v, p, errs)
    end
  end
end

--- `true`, or `false, errors` listing draft-04 violations in `schema`.
function H.check_draft04(schema)
  local errs = {}
  check_schema(schema, "$", errs)
  return #errs == 0, errs
end

return H
