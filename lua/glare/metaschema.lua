--- The metaschema: checks a type definition before it is compiled.
--
-- Everything a type file can get wrong is caught here, when it loads, with
-- a message naming the file and the place (Tarantool-style path prefix):
--
--   types/images.lua: field 'min_ram': validator 'max_length' does not apply to Integer fields (it applies to: String)
--
-- Unknown keys are rejected at every level (type, field, element, hooks,
-- options): a typo must not silently drop a constraint.
-- `check_noexc(def, chunkname)` returns `true` or `nil, message`.
local fields = require("glare.fields")
local json = require("glare.json")
local typedefs = require("glare.typedefs")
local validators = require("glare.validators")

local metaschema = {}

local type, pairs, ipairs, tostring, next = type, pairs, ipairs, tostring, next
local format, concat, sort = string.format, table.concat, table.sort
local math_type = math.type
local vdefs = validators.defs
local kind_of = typedefs.kind_of

--- Hooks a type may define (docs/glare-contract.md "Hooks"): GL_HOOKS
-- of src/ltype.h, which the server hands over as glare.hooks.
metaschema.HOOKS = require("glare.hooks")
local IS_HOOK = {}
for _, h in ipairs(metaschema.HOOKS) do IS_HOOK[h] = true end

metaschema.TOP_KEYS = { "name", "display_name", "version", "description",
  "fields", "hooks", "options", "to_dict", "format_all" }
local IS_TOP = {}
for _, k in ipairs(metaschema.TOP_KEYS) do IS_TOP[k] = true end

metaschema.OPTION_TYPES = { string = "string", integer = "integer", number = "number", boolean = "boolean" }

-- Field properties every kind accepts, with their argument check.
local function boolean(v) return type(v) == "boolean" or nil, "must be true or false" end
local COMMON = {
  description = function(v) return type(v) == "string" or nil, "must be a string" end,
  mutable = boolean, system = boolean, required_on_activate = boolean,
  sortable = boolean, nullable = boolean,
  metadata = function(v)
    return (type(v) == "table" and json.is_object(v)) or nil, "must be a table of key = value pairs"
  end,
  filter_ops = function(v)
    if type(v) ~= "table" or (next(v) ~= nil and not json.is_array(v)) then
      return nil, "must be a list of operators"
    end
    return true
  end,
  default = function() return true end,  -- checked by coercion below
}
local function pos_int(v)
  return (math_type(v) == "integer" and v > 0) or nil, "must be a positive integer"
end
-- Properties particular to some kinds.
local EXTRA = {
  max_blob_size = { kinds = { Blob = true, Folder = true }, check = pos_int },
  max_folder_size = { kinds = { Folder = true }, check = pos_int },
  same_sha256 = { kinds = { Folder = true }, check = boolean },
  select_location = { kinds = { Folder = true }, check = function(v)
    return type(v) == "function" or nil, "must be a function(ctx, af, folder, request)"
  end },
  of = { kinds = { List = true, Dict = true }, check = function() return true end },
}

local function sorted_keys(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  sort(t)
  return t
end

local function kinds_text(set)
  return concat(sorted_keys(set), ", ")
end

-- Raised inside the checker, caught by check_noexc; carries the message.
local Failure = {}
local function fail(ctx, fmt, ...)
  error(setmetatable({ msg = ctx .. format(fmt, ...) }, Failure), 0)
end

local function describe(v)
  local t = type(v)
  if t == "table" then return json.is_array(v) and "a list" or "a table" end
  return t == "nil" and "nothing" or ("a " .. t)
end

----------------------------------------------------------------------------
-- Validators and elements
----------------------------------------------------------------------------

local function check_validator(ctx, name, arg, kind, is_element)
  local d = vdefs[name]
  if not d.kinds[kind] then
    fail(ctx, "validator '%s' does not apply to %s %s (it applies to: %s)", name,
      kind, is_element and "elements" or "fields", concat(validators.kinds_of(name), ", "))
  end
  if is_element and d.collection then
    fail(ctx, "validator '%s' checks a whole collection and cannot be used on elements", name)
  end
  local ok, err = d.arg(arg, kind)
  if not ok then fail(ctx, "%s %s", name, err) end
end

local PAIRS = { { "min_length", "max_length" }, { "min", "max" },
  { "min_items", "max_items" }, { "min_keys", "max_keys" },
  { "min_key_length", "max_key_length" } }

local function check_consistency(ctx, spec)
  for _, p in ipairs(PAIRS) do
    local lo, hi = spec[p[1]], spec[p[2]]
    if lo ~= nil and hi ~= nil and lo > hi then
      fail(ctx, "%s (%s) is greater than %s (%s)", p[1], tostring(lo), p[2], tostring(hi))
    end
  end
  local seen
  for _, n in ipairs(validators.pattern_like) do
    if spec[n] ~= nil then
      if seen then
        fail(ctx, "'%s' and '%s' both publish a JSON-schema pattern; use only one", seen, n)
      end
      seen = n
    end
  end
end

local function check_element(ctx, of, kind)
  ctx = ctx .. "of: "
  local ekind = kind_of(of)
  if not ekind then
    fail(ctx, "must be a field kind such as glare.String, got %s", describe(of))
  end
  if ekind == "Blob" or ekind == "Folder" then
    if kind == "List" then
      fail(ctx, "a List of %s is not allowed (use a Folder for a set of named blobs)", ekind)
    end
    fail(ctx, "a Dict of %s is not allowed (use a Folder: glare.Folder { ... })", ekind)
  end
  if not fields.ELEMENT_KINDS[ekind] then
    fail(ctx, "%s elements are not supported (element kinds: %s)", ekind,
      kinds_text(fields.ELEMENT_KINDS))
  end
  for k, v in pairs(of) do
    if type(k) ~= "string" then fail(ctx, "unknown attribute %s", tostring(k)) end
    if vdefs[k] then
      check_validator(ctx, k, v, ekind, true)
    elseif COMMON[k] or EXTRA[k] then
      fail(ctx, "'%s' is a field property; an element only takes validators", k)
    else
      fail(ctx, "unknown attribute '%s'", k)
    end
  end
  check_consistency(ctx, of)
  return ekind
end

----------------------------------------------------------------------------
-- Fields
----------------------------------------------------------------------------

local function check_filter_ops(ctx, ops, kind, ekind)
  local row = fields.filter_ops_for(kind, ekind)
  local seen = {}
  for i, op in ipairs(ops) do
    if type(op) ~= "string" then fail(ctx, "filter_ops[%d] must be a string", i) end
    if seen[op] then fail(ctx, "filter op '%s' is listed twice", op) end
    seen[op] = true
    if not row.allowed[op] then
      local allowed = {}
      for _, o in ipairs(fields.ALL_OPS) do if row.allowed[o] then allowed[#allowed + 1] = o end end
      local what = ekind and (kind .. " of " .. ekind) or kind
      fail(ctx, "filter op '%s' is not allowed on %s fields (allowed: %s)", op, what,
        #allowed > 0 and concat(allowed, ", ") or "none")
    end
  end
end

-- Returns the coercion function for a spec (used to check defaults).
local function check_default(ctx, spec, kind, ekind, coerce_value)
  local d = spec.default
  if d == nil then return end
  if kind == "Blob" or kind == "Folder" then
    fail(ctx, "%s fields cannot have a default", kind)
  end
  if d == json.null then
    -- a collection's implicit []/{} default can be declined: unset, it reads null
    if kind == "List" or kind == "Dict" then return end
    fail(ctx, "default: leave it out instead of setting it to null")
  end
  local ok, err = coerce_value(spec, kind, ekind, d)
  if ok == nil then fail(ctx, "default: %s", err) end
end

local function check_field(ctx, spec, coerce_value)
  local kind = kind_of(spec)
  if not kind then
    fail(ctx, "must be a field such as glare.String { ... }, got %s", describe(spec))
  end
  for k, v in pairs(spec) do
    if type(k) ~= "string" then fail(ctx, "unknown attribute %s", tostring(k)) end
    if COMMON[k] then
      local ok, err = COMMON[k](v)
      if not ok then fail(ctx, "'%s' %s", k, err) end
    elseif EXTRA[k] then
      if not EXTRA[k].kinds[kind] then
        fail(ctx, "'%s' does not apply to %s fields (it applies to: %s)", k, kind,
          kinds_text(EXTRA[k].kinds))
      end
      local ok, err = EXTRA[k].check(v)
      if not ok then fail(ctx, "'%s' %s", k, err) end
    elseif vdefs[k] then
      check_validator(ctx, k, v, kind, false)
    else
      fail(ctx, "unknown attribute '%s'", k)
    end
  end
  check_consistency(ctx, spec)

  local ekind
  if kind == "List" or kind == "Dict" then
    if spec.of == nil then
      fail(ctx, "a %s needs an element type: of = glare.String (or %s)", kind,
        "Integer, Float, Boolean, Link")
    end
    ekind = check_element(ctx, spec.of, kind)
  end

  if spec.sortable then
    if kind == "List" or kind == "Dict" or kind == "Blob" or kind == "Folder" then
      fail(ctx, "a %s field cannot be sortable", kind)
    end
    if kind == "String" then
      local max = spec.max_length
      if max == nil and spec.allowed_values == nil then max = 255 end
      if max and max > 255 then
        fail(ctx, "a sortable String field must have max_length <= 255 (got %d)", max)
      end
    end
  end
  if spec.filter_ops ~= nil then check_filter_ops(ctx, spec.filter_ops, kind, ekind) end
  check_default(ctx, spec, kind, ekind, coerce_value)
end

local function check_fields(chunk, list, coerce_value)
  if list == nil then return end
  if type(list) ~= "table" or (next(list) ~= nil and not json.is_array(list)) then
    fail(chunk, "'fields' must be a list of one-key tables: fields = { { name = glare.String { ... } }, ... }")
  end
  local seen = {}
  for i, entry in ipairs(list) do
    local name, spec = nil, nil
    if type(entry) == "table" then name, spec = next(entry) end
    if type(name) ~= "string" or next(entry, name) ~= nil then
      fail(chunk, "fields[%d]: each entry must be a one-key table like { my_field = glare.String { ... } }", i)
    end
    local ctx = chunk .. format("field '%s': ", name)
    if not name:find("^[%a_][%w_]*$") or #name > 255 then
      fail(ctx, "a field name must be an identifier (letters, digits, underscores)")
    end
    if typedefs.IS_BASE[name] then
      fail(ctx, "overrides a base field (base fields: %s)", concat(typedefs.BASE_FIELDS, ", "))
    end
    if seen[name] then fail(ctx, "declared twice (fields[%d] and fields[%d])", seen[name], i) end
    seen[name] = i
    check_field(ctx, spec, coerce_value)
  end
end

----------------------------------------------------------------------------
-- Hooks, options, the type itself
----------------------------------------------------------------------------

local function check_hooks(chunk, hooks)
  if hooks == nil then return end
  if type(hooks) ~= "table" then fail(chunk, "'hooks' must be a table of functions") end
  for name, fn in pairs(hooks) do
    if type(name) ~= "string" or not IS_HOOK[name] then
      fail(chunk, "hook '%s': unknown hook name (known hooks: %s)", tostring(name),
        concat(metaschema.HOOKS, ", "))
    end
    if type(fn) ~= "function" then
      fail(chunk, "hook '%s': must be a function, got %s", name, describe(fn))
    end
  end
end

local OPTION_KEYS = { type = true, default = true, description = true }

local function option_value_ok(t, v)
  if t == "integer" then return math_type(v) == "integer" end
  return type(v) == t
end

local function check_options(chunk, options)
  if options == nil then return end
  if type(options) ~= "table" or (next(options) ~= nil and not json.is_array(options)) then
    fail(chunk, "'options' must be a list of one-key tables: options = { { my_option = { type = \"string\", default = \"x\" } } }")
  end
  local seen = {}
  for i, entry in ipairs(options) do
    local name, o = nil, nil
    if type(entry) == "table" then name, o = next(entry) end
    if type(name) ~= "string" or next(entry, name) ~= nil or type(o) ~= "table" then
      fail(chunk, "options[%d]: each entry must be a one-key table like { my_option = { type = \"string\" } }", i)
    end
    local ctx = chunk .. format("option '%s': ", name)
    if not name:find("^[%a_][%w_]*$") then fail(ctx, "an option name must be an identifier") end
    if seen[name] then fail(ctx, "declared twice") end
    seen[name] = true
    for k in pairs(o) do
      if not OPTION_KEYS[k] then fail(ctx, "unknown attribute '%s' (known: type, default, description)", tostring(k)) end
    end
    if not metaschema.OPTION_TYPES[o.type] then
      fail(ctx, "type must be one of string, integer, number, boolean")
    end
    if o.default ~= nil and not option_value_ok(o.type, o.default) then
      fail(ctx, "default must be a%s %s", o.type == "integer" and "n" or "", o.type)
    end
    if o.description ~= nil and type(o.description) ~= "string" then
      fail(ctx, "description must be a string")
    end
  end
end

local function check_type(chunk, def, coerce_value)
  if type(def) ~= "table" then
    fail(chunk, "the file must return a type definition (return glare.type { ... }), got %s", describe(def))
  end
  for k in pairs(def) do
    if type(k) ~= "string" or not IS_TOP[k] then
      fail(chunk, "unknown key '%s' in the type definition (known keys: %s)", tostring(k),
        concat(metaschema.TOP_KEYS, ", "))
    end
  end
  local name = def.name
  if type(name) ~= "string" or not name:find("^[a-z][a-z0-9_]*$") or #name > 255 then
    fail(chunk, "'name' must be a lower-case identifier such as \"my_artifacts\"")
  end
  if name == "all" then fail(chunk, "'all' is reserved for the meta-type listing every artifact") end
  for _, k in ipairs({ "display_name", "version", "description" }) do
    if def[k] ~= nil and type(def[k]) ~= "string" then fail(chunk, "'%s' must be a string", k) end
  end
  for _, k in ipairs({ "to_dict", "format_all" }) do
    if def[k] ~= nil and type(def[k]) ~= "function" then
      fail(chunk, "'%s' must be a function(af) returning the artifact", k)
    end
  end
  check_fields(chunk, def.fields, coerce_value)
  check_hooks(chunk, def.hooks)
  check_options(chunk, def.options)
end

--- Check a type definition. `chunkname` is the file as the caller names it
-- (a leading '@' or '=' is dropped). `coerce_value(spec, kind, ekind, v)`
-- coerces a default exactly as values will be (injected by the loader to
-- avoid a dependency cycle). Returns `true` or `nil, message`.
function metaschema.check_noexc(def, chunkname, coerce_value)
  local chunk = tostring(chunkname or "?"):gsub("^[@=]", "") .. ": "
  local ok, err = pcall(check_type, chunk, def, coerce_value)
  if ok then return true end
  if getmetatable(err) == Failure then return nil, err.msg end
  error(err, 0)
end

return metaschema
