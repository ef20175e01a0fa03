--- Compiles a checked type definition into the table the C core reads.
--
-- The shape of `T` and `F` is fixed by docs/lua-runtime.md. Besides the
-- documented keys each `F` carries private, underscore-prefixed members:
-- the effective validator attributes (`_attrs`, `_eattrs`, implicit limits
-- included) and two closures, `_coerce(value)` and
-- `_coerce_filter(value, element)`, each returning the coerced value or
-- `nil, detail`. Validators are compiled once here, so coercing a request
-- body is a straight run of closures.
local fields = require("glare.fields")
local json = require("glare.json")
local schema = require("glare.schema")
local typedefs = require("glare.typedefs")
local validators = require("glare.validators")

local compile = {}

local pairs, ipairs, next, type, error = pairs, ipairs, next, type, error
local getmetatable, setmetatable = getmetatable, setmetatable
local format = string.format
local null = json.null
local quote = require("glare.util").quote
local run = validators.run
local vdefs = validators.defs

compile.DEFAULT_MAX_BLOB_SIZE = 10485760        -- 10 MiB
compile.DEFAULT_MAX_FOLDER_SIZE = 2673868800    -- 2550 MiB

--- Deep copy of a JSON-like value, keeping array/object marks.
local function copy(v)
  if type(v) ~= "table" or v == null then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return setmetatable(t, getmetatable(v))
end
compile.copy = copy

-- Split a spec into property values and validator attributes.
local function validator_attrs(spec)
  local attrs = {}
  for k, v in pairs(spec) do
    if vdefs[k] then attrs[k] = v end
  end
  return attrs
end

local KEY_VALIDATORS = { min_key_length = true, max_key_length = true }

local function build_coercers(F)
  local kind, element = F.kind, F.element
  local checks = validators.compile(F._attrs, kind)
  local echecks = element and validators.compile(F._eattrs, element) or nil
  local kchecks = {}
  for _, name in ipairs(validators.order) do
    if KEY_VALIDATORS[name] and F._attrs[name] ~= nil then
      kchecks[#kchecks + 1] = vdefs[name].build(F._attrs[name], kind)
    end
  end
  local scalar = fields.coerce[kind]
  local ecoerce = element and fields.coerce[element]

  local base
  if kind == "List" then
    base = function(value)
      local v, err = fields.coerce_list(value, element)
      if v == nil then return nil, err end
      local ok
      ok, err = run(checks, v)   -- sizes first: no per-item work on a huge list
      if not ok then return nil, err end
      for i = 1, #v do
        ok, err = run(echecks, v[i])
        if not ok then return nil, format("item %d: %s", i - 1, err) end
      end
      return v
    end
  elseif kind == "Dict" then
    base = function(value)
      local v, err = fields.coerce_dict(value, element)
      if v == nil then return nil, err end
      local ok
      ok, err = run(checks, v)
      if not ok then return nil, err end
      for k, x in pairs(v) do
        ok, err = run(echecks, x)
        if not ok then return nil, format("key %s: %s", quote(k), err) end
      end
      return v
    end
  else
    base = function(value)
      local v, err = scalar(value)
      if v == nil then return nil, err end
      local ok
      ok, err = run(checks, v)
      if not ok then return nil, err end
      return v
    end
  end

  local collection = kind == "List" or kind == "Dict"
  F._coerce = function(value)
    if value == nil or value == null then
      -- a collection given null is back to its default (Glare keeps no
      -- null list or dict: `tags = null` reads []); otherwise oslo's rule,
      -- a non-nullable field given null takes its default
      if F.default ~= nil and (collection or not F.nullable) then
        return copy(F.default)
      end
      if F.nullable then return null end
      return nil, "Field cannot be null"
    end
    return base(value)
  end

  F._coerce_filter = function(value, elem)
    if kind == "Blob" or kind == "Folder" then
      return nil, "Blob fields cannot be filtered"
    end
    if kind == "Dict" and (elem == "key" or not elem) then
      local v, err = fields.coerce.String(value)
      if v == nil then return nil, err end
      local ok
      ok, err = run(kchecks, { [v] = true })
      if not ok then return nil, err end
      return v
    end
    if element then
      local v, err = ecoerce(value)
      if v == nil then return nil, err end
      local ok
      ok, err = run(echecks, v)
      if not ok then return nil, err end
      return v
    end
    return base(value)
  end
end

--- Compile one field spec into `F`. `base` marks the base fields.
function compile.field(name, spec, base)
  local kind = typedefs.kind_of(spec)
  local element = spec.of and typedefs.kind_of(spec.of) or nil
  local F = {
    name = name, kind = kind, element = element, base = base or false,
    system = spec.system or false, mutable = spec.mutable or false,
    required_on_activate = spec.required_on_activate or false,
    sortable = spec.sortable or false,
    nullable = spec.nullable ~= false,
    description = spec.description or "",
    -- a copy: the schema never reads the type's own tables at run time
    metadata = spec.metadata ~= nil and schema.to_json(spec.metadata) or nil,
  }
  local ops = spec.filter_ops or fields.filter_ops_for(kind, element).default
  F.filter_ops = json.array()
  for i, op in ipairs(ops) do F.filter_ops[i] = op end

  F._attrs = validators.with_defaults(kind, validator_attrs(spec), false)
  if element then
    F._eattrs = validators.with_defaults(element, validator_attrs(spec.of), true)
  end
  if kind == "Blob" or kind == "Folder" then
    F.max_blob_size = spec.max_blob_size or compile.DEFAULT_MAX_BLOB_SIZE
  end
  if kind == "Folder" then
    F.max_folder_size = spec.max_folder_size or compile.DEFAULT_MAX_FOLDER_SIZE
    F.same_sha256 = spec.same_sha256 or false
    F.select_location = spec.select_location
  end
  if kind == "Folder" or kind == "Dict" then
    F.max_key_length = F._attrs.max_key_length
    F.min_key_length = F._attrs.min_key_length
    F.max_keys = F._attrs.max_keys
  end
  build_coercers(F)

  if spec.default == null then
    F.default = nil   -- a List/Dict declining its implicit default
  elseif spec.default ~= nil then
    local v, err = F._coerce(spec.default)
    if v == nil then error("invalid default (the metaschema should have caught it): " .. err) end
    F.default = v
  elseif kind == "List" then
    F.default = json.array()
  elseif kind == "Dict" or kind == "Folder" then
    F.default = json.object()
  end
  return F
end

--- Coerce a default for the metaschema: compile the spec and run it.
function compile.coerce_default(spec, _, _, value)
  local bare = setmetatable({}, getmetatable(spec))
  for k, v in pairs(spec) do
    if k ~= "default" then bare[k] = v end
  end
  return compile.field("default", bare, false)._coerce(value)
end

local function add(T, F)
  T.fields[#T.fields + 1] = F
  T.by_name[F.name] = F
end

--- Compile a definition already accepted by the metaschema.
function compile.type(def)
  local T = {
    name = def.name,
    display_name = def.display_name,
    version = def.version or "1.0",
    description = def.description,
    fields = {}, by_name = {}, options = {}, hooks = {},
    format_all = def.format_all, to_dict = def.to_dict,
  }
  for _, name in ipairs(typedefs.BASE_FIELDS) do
    add(T, compile.field(name, typedefs[name], true))
  end
  for _, entry in ipairs(def.fields or {}) do
    local name, spec = next(entry)
    add(T, compile.field(name, spec, false))
  end
  for name, fn in pairs(def.hooks or {}) do T.hooks[name] = fn end
  for _, entry in ipairs(def.options or {}) do
    local name, o = next(entry)
    T.options[#T.options + 1] = { name = name, type = o.type, default = o.default,
      description = o.description }
  end
  return T
end

return compile
