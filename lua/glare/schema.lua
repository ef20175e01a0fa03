--- JSON schemas of artifact types (docs/glare-contract.md "Schemas"), as
--- marked Lua tables.
--
-- Each field schema is assembled like Glare's: validator keywords, then
-- `type` (`[t, "null"]` when nullable), `glareType`, `readOnly`, element
-- schemas, the output blob schema, `format`, and the documentation keys.
-- Every table is marked with `glare.json` so that C emits `[]`/`{}`
-- faithfully; the result is valid JSON Schema draft-04.
local fields = require("glare.fields")
local json = require("glare.json")
local validators = require("glare.validators")

local schema = {}

local pairs, ipairs, type, getmetatable = pairs, ipairs, type, getmetatable
local array, object = json.array, json.object

local function arr(...) return array({ ... }) end

--- Deep copy of a Lua value into marked JSON tables (arrays are tables with
-- keys 1..n, everything else becomes an object).
local function to_json(v)
  if type(v) ~= "table" or v == json.null then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = to_json(x) end
  local mt = getmetatable(v)
  if mt == json.array_mt or mt == json.object_mt then return setmetatable(t, mt) end
  return json.is_array(v) and array(t) or object(t)
end
schema.to_json = to_json

--- The output blob schema (what a blob looks like in a response, minus
-- `url`): a fresh table on each call.
function schema.blob()
  return object({
    type = arr("object", "null"),
    properties = object({
      size = object({ type = arr("number", "null") }),
      md5 = object({ type = arr("string", "null") }),
      sha1 = object({ type = arr("string", "null") }),
      sha256 = object({ type = arr("string", "null") }),
      external = object({ type = "boolean" }),
      status = object({ type = "string", enum = arr("saving", "active") }),
      content_type = object({ type = "string" }),
      -- glared's addition (docs/types.md): the last check of an external
      -- blob's bytes at its URL; absent until one was made
      verification = object({
        type = "object",
        description = "Last check of an external blob's data at its URL: ok, "
          .. "changed (other bytes) or gone (no longer there), or error (the "
          .. "check could not be made; an earlier changed or gone stands).",
        properties = object({
          status = object({ type = "string", enum = arr("ok", "changed", "gone", "error") }),
          checked_at = object({ type = "string", format = "date-time" }),
          detail = object({ type = "string" }),
        }),
        required = arr("status", "checked_at"),
        additionalProperties = false,
      }),
    }),
    required = arr("size", "md5", "sha1", "sha256", "external", "status", "content_type"),
    additionalProperties = false,
  })
end

local function element_schema(F)
  local frag = object({ type = fields.SCHEMA_TYPE[F.element] })
  return validators.schema(F._eattrs, frag)
end

--- Schema of one compiled field.
function schema.field(F)
  local s = validators.schema(F._attrs, object())
  local t = fields.SCHEMA_TYPE[F.kind]
  s.type = F.nullable and arr(t, "null") or t
  s.glareType = fields.glare_type(F.kind, F.element)
  if F.system then s.readOnly = true end

  if F.kind == "Dict" then
    local allowed = F._attrs.allowed_keys
    if allowed then
      local required = {}
      for _, k in ipairs(F._attrs.required_keys or {}) do required[k] = true end
      local props = object()
      for _, k in ipairs(allowed) do
        local e = element_schema(F)
        if not required[k] then e.type = arr(e.type, "null") end
        props[k] = e
      end
      s.properties = props
      s.additionalProperties = false
    else
      s.additionalProperties = element_schema(F)
    end
  elseif F.kind == "List" then
    s.items = element_schema(F)
  elseif F.kind == "Blob" then
    for k, v in pairs(schema.blob()) do s[k] = v end
  elseif F.kind == "Folder" then
    s.additionalProperties = schema.blob()
  elseif F.kind == "DateTime" then
    s.format = "date-time"
  elseif F.kind == "Version" then
    s.pattern = validators.VERSION_PATTERN
  end

  if F.description ~= "" then s.description = F.description end
  if F.mutable then s.mutable = true end
  if F.sortable then s.sortable = true end
  if not F.required_on_activate then s.required_on_activate = false end
  if F.default ~= nil then s.default = to_json(F.default) end
  if F.metadata ~= nil then s.metadata = to_json(F.metadata) end
  s.filter_ops = to_json(F.filter_ops)
  return s
end

--- Schema of a compiled type.
function schema.type(T)
  local props = object()
  for _, F in ipairs(T.fields) do props[F.name] = schema.field(F) end
  return object({
    name = T.name,
    display_name = T.display_name == nil and json.null or T.display_name,
    version = T.version,
    title = ("Artifact type %s of version %s"):format(T.name, T.version),
    type = "object",
    required = arr("name"),
    properties = props,
  })
end

return schema
