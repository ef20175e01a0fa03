--- Callable field prototypes (Kong style) and the base fields of every type.
--
-- `typedefs.String` is a field prototype of kind String; calling it with a
-- table of attributes returns a *new* spec (the prototype is never
-- mutated), itself callable again: `typedefs.name { description = "x" }`.
-- The kind lives in the spec's metatable, not in a key, so a type file
-- cannot change it and `kind_of` is a table lookup. Indexing an unknown
-- typedef raises at load time. Every prototype, and the module itself, is
-- read-only: a type file cannot change what `glare.String` or a base field
-- means, not even for itself.
local fields = require("glare.fields")
local sandbox = require("glare.sandbox")

local typedefs = {}
local defs = {}          -- name -> spec
local KIND_OF = {}       -- metatable -> kind

local pairs, type, setmetatable, getmetatable, error = pairs, type, setmetatable, getmetatable, error

local function specialise(proto, attrs)
  if type(attrs) ~= "table" then
    error(("%s expects a table of attributes: %s { ... }"):format(
      getmetatable(proto).__name, getmetatable(proto).__name), 2)
  end
  local t = {}
  for k, v in pairs(proto) do t[k] = v end
  for k, v in pairs(attrs) do t[k] = v end
  return setmetatable(t, getmetatable(proto))
end

for _, kind in ipairs(fields.KINDS) do
  local mt = { __name = "glare." .. kind, __call = specialise }
  KIND_OF[mt] = kind
  defs[kind] = setmetatable({}, mt)
end

--- Kind of a field spec built from a prototype, or nil for anything else.
function typedefs.kind_of(spec)
  if type(spec) ~= "table" then return nil end
  return KIND_OF[getmetatable(spec)]
end

----------------------------------------------------------------------------
-- Base fields (docs/glare-contract.md "Base fields"). Their order is the
-- order of the schema and of
-- the compiled field list.
----------------------------------------------------------------------------

local S, D = defs.String, defs.DateTime
local STR_OPS = { "eq", "neq", "in" }
local LIKE_OPS = { "like", "eq", "neq", "in" }
local TIME_OPS = { "lt", "gt" }

defs.id = S { system = true, sortable = true, nullable = false,
  required_on_activate = true, uuid = true, filter_ops = STR_OPS,
  description = "Unique identifier of the artifact, a UUID assigned at creation." }
defs.name = S { sortable = true, nullable = false, min_length = 1,
  filter_ops = LIKE_OPS,
  description = "Name of the artifact; with the version it identifies the artifact in its project." }
defs.owner = S { system = true, sortable = true, nullable = false,
  filter_ops = STR_OPS, description = "Project that owns the artifact." }
defs.status = S { sortable = true, nullable = false, mutable = true,
  required_on_activate = true, default = "drafted",
  allowed_values = { "drafted", "active", "deactivated", "deleted" },
  filter_ops = STR_OPS,
  description = "Lifecycle state: drafted, active, deactivated or deleted." }
defs.created_at = D { system = true, sortable = true, nullable = false,
  required_on_activate = true, filter_ops = TIME_OPS,
  description = "Time the artifact was created." }
defs.updated_at = D { system = true, sortable = true, nullable = false,
  mutable = true, required_on_activate = true, filter_ops = TIME_OPS,
  description = "Time the artifact was last changed." }
defs.activated_at = D { system = true, sortable = true, filter_ops = TIME_OPS,
  description = "Time the artifact last became active." }
defs.description = S { mutable = true, default = "", max_length = 4096,
  filter_ops = {}, description = "Free-form text about the artifact." }
defs.tags = defs.List { mutable = true, filter_ops = {}, unique = "convert_to_set",
  of = S { min_length = 1, max_length = 255, forbidden_chars = { ",", "/" } },
  description = "Labels attached to the artifact; repeats are dropped." }
defs.metadata = defs.Dict { filter_ops = STR_OPS,
  of = S { min_length = 1, max_length = 255 },
  description = "Key-value pairs describing the artifact." }
defs.visibility = S { sortable = true, nullable = false, mutable = true,
  required_on_activate = true, default = "private", filter_ops = STR_OPS,
  allowed_values = { "private", "public" },
  description = "Who can see the artifact: its project (private) or everyone (public)." }
defs.version = defs.Version { sortable = true, nullable = false,
  default = "0.0.0", filter_ops = { "eq", "neq", "in", "gt", "gte", "lt", "lte" },
  description = "Semantic version of the artifact (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])." }
-- Glare marks it required on activation: a type without a display name
-- can never be activated (docs/glare-contract.md "Quirks kept").
defs.display_type_name = S { system = true, sortable = true,
  required_on_activate = true, filter_ops = LIKE_OPS,
  description = "Human-readable name of the artifact type." }
-- Only on the `all` meta-type.
defs.type_name = S { sortable = true, required_on_activate = true,
  filter_ops = LIKE_OPS, description = "Name of the artifact type." }

--- Names of the base fields, in schema order.
typedefs.BASE_FIELDS = { "id", "name", "owner", "status", "created_at",
  "updated_at", "activated_at", "description", "tags", "metadata",
  "visibility", "version", "display_type_name" }
typedefs.IS_BASE = {}
for _, n in ipairs(typedefs.BASE_FIELDS) do typedefs.IS_BASE[n] = true end

-- A few prototypes for type authors.
defs.uuid = S { uuid = true, description = "A UUID." }
defs.semver = defs.Version {}

for name, d in pairs(defs) do
  sandbox.freeze_all(d, fields.IS_KIND[name] and "glare." .. name or "glare.typedefs." .. name)
end
setmetatable(typedefs, {
  __index = function(_, k)
    local d = defs[k]
    if d == nil then
      error(("glare typedef error: definition '%s' does not exist"):format(tostring(k)), 2)
    end
    return d
  end,
})
return sandbox.freeze_all(typedefs, "glare.typedefs")
