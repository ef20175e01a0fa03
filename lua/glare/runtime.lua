--- What the C core calls on a compiled type, and the API hooks see.
--
-- Functions return a value on success or `nil, message` on a data error;
-- they raise only on programming errors (docs/lua-runtime.md). Note that
-- `false` is a valid result (a Boolean field): test for `nil`.
--
-- Hooks see `glare` = { log, fail, json, semver, options, type_name }, all
-- read-only. `glare.fail(status, message)` raises a failure object whose
-- status (4xx) and message are fixed when it is made (`runtime.is_failure`);
-- `glare.log(level, ...)` goes to the log sink the C core installs with
-- `set_log_sink`.
local json = require("glare.json")
local sandbox = require("glare.sandbox")
local schema = require("glare.schema")
local semver = require("glare.semver")

local runtime = {}

local type, tostring, select, pcall, xpcall, error = type, tostring, select, pcall, xpcall, error
local setmetatable, ipairs, pairs, rawget = setmetatable, ipairs, pairs, rawget
local format, concat = string.format, table.concat
local math_type = math.type
local traceback = debug.traceback
-- The C core puts the type's locals back after every call it makes (also
-- when the call fails); offline, the functions below do it themselves.
local restore = not sandbox.core and sandbox.restore or function() end

----------------------------------------------------------------------------
-- Logging
----------------------------------------------------------------------------

local function default_sink(level, message, type_name)
  local io_ = io
  if io_ and io_.stderr then
    io_.stderr:write(format("glare %s [%s] %s\n", level, type_name or "-", message))
  end
end
local sink = default_sink

--- Install the log sink: `fn(level, message, type_name)`. `nil` restores
-- the default (stderr). Levels are free-form short words; the stock ones
-- are debug, info, warning, error, and `hook` (hooks_artifact's record).
function runtime.set_log_sink(fn)
  sink = fn or default_sink
end

--- Log `...` (joined with spaces, tostring'ed) at `level` for `type_name`.
function runtime.log(type_name, level, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  sink(tostring(level), concat(parts, " "), type_name)
end

----------------------------------------------------------------------------
-- Failures raised by hooks
----------------------------------------------------------------------------

-- Failures are read-only views (sandbox.view): status and message are
-- fixed when glare.fail makes one; only those made here are failures.
local FAILURES = setmetatable({}, { __mode = "k" })
local FAILURE_MT = {
  __name = "glare.failure",
  __tostring = function(e)
    local c = sandbox.contents(e)
    return format("%d: %s", c.status, c.message)
  end,
}

--- Raise a client error from a hook: `status` must be an integer 400..499.
function runtime.fail(status, message)
  if math_type(status) ~= "integer" or status < 400 or status > 499 then
    error(format("glare.fail: status must be a 4xx integer, got %s", tostring(status)), 2)
  end
  local e = sandbox.view({ status = status, message = tostring(message or "") },
    "glare failure", FAILURE_MT)
  FAILURES[e] = true
  error(e)
end

--- True when `e` was raised by `glare.fail`.
function runtime.is_failure(e)
  return type(e) == "table" and FAILURES[e] == true
end

-- The message of anything raised, for the log.
local function error_text(err)
  if type(err) == "table" and type(rawget(err, "message")) == "string" then
    return err.message
  end
  return tostring(err)
end

--- Map an error raised by a hook to `status, message`: a `glare.fail`
-- keeps its own (4xx); anything else is the hook's failure, a 500 whose
-- message (for the log) names the hook and the type.
function runtime.hook_error(T, hook, err)
  if runtime.is_failure(err) then return err.status, err.message end
  return 500, format("Hook %s of type %s failed: %s", hook, T.name, error_text(err))
end

-- The message handler of hook calls: a traceback for the log. It may run
-- inside the instruction hook (no budget), so it runs no type code.
local function handler(e)
  if type(e) == "string" then return traceback(e, 2) end
  return e
end

-- `true, result`, or `false, status, message, detail`: `detail` is the
-- error itself with its traceback (for the server's log).
local function outcome(T, name, ok, res)
  if ok then return true, res end
  local status, msg = runtime.hook_error(T, name, res)
  if status < 500 then return false, status, msg end
  if type(res) ~= "string" then
    return false, status, msg, format("(error object is a %s) %s", type(res), error_text(res))
  end
  -- the first line is the error itself, then the traceback
  msg = format("Hook %s of type %s failed: %s", name, T.name, res:match("^[^\n]*"))
  return false, status, msg, res
end

--- Convenience for the C core: call hook `name` of `T` with `...`.
-- Returns `true, result` (also when the type has no such hook) or
-- `false, status, message[, detail]`: a `glare.fail` keeps its 4xx status
-- and message; any other error is `500, "Hook <name> of type <type>
-- failed: <error>"` with the error and its traceback in `detail`. File-level locals the
-- hook assigned are put back afterwards.
function runtime.run_hook(T, name, ...)
  local fn = T.hooks[name]
  if fn == nil then return true, nil end
  local ok, res = xpcall(fn, handler, ...)
  if T._boxes then restore(T._boxes) end
  return outcome(T, name, ok, res)
end

--- A Folder field's select_location hook, like run_hook: `true, key` (a
-- string, or nil to let the server decide) or `false, status, message,
-- detail`.
function runtime.run_select(T, field, ctx, af, folder, request)
  local F = T.by_name[field]
  local fn = F and F.select_location
  if fn == nil then return true, nil end
  local ok, res = xpcall(fn, handler, ctx, af, folder, request)
  if T._boxes then restore(T._boxes) end
  if ok and type(res) ~= "string" then res = nil end
  return outcome(T, "select_location", ok, res)
end

----------------------------------------------------------------------------
-- Options
----------------------------------------------------------------------------

local BOOL = { ["true"] = true, yes = true, on = true, ["1"] = true,
  ["false"] = false, no = false, off = false, ["0"] = false }

local function convert_option(kind, v)
  if kind == "string" then
    if type(v) == "string" then return v end
    if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  elseif kind == "integer" then
    if math_type(v) == "integer" then return v end
    local n = type(v) == "string" and v:find("^%s*[+-]?%d+%s*$") and tonumber(v)
    if math_type(n) == "integer" then return n end
  elseif kind == "number" then
    local n = tonumber(v)
    if n and n == n then return n end
  elseif kind == "boolean" then
    if type(v) == "boolean" then return v end
    local b = type(v) == "string" and BOOL[v:lower():match("^%s*(.-)%s*$")]
    if b ~= nil then return b end
  end
  return nil, format("must be a%s %s", kind == "integer" and "n" or "", kind)
end

--- Set the values of `T`'s declared options from the configuration
-- (`[artifact_type:<name>]`): `values` maps option names to strings (as
-- read from the INI file) or typed values. Missing options take their
-- default; unknown names are ignored (the section also holds generic
-- options such as default_store). Returns `true` or `nil, message`.
function runtime.configure(T, values)
  local out = {}
  for _, o in ipairs(T.options) do
    local v = values and values[o.name]
    if v == nil then
      v = o.default
    else
      local err
      v, err = convert_option(o.type, v)
      if v == nil then
        return nil, format("[artifact_type:%s] %s %s", T.name, o.name, err)
      end
    end
    out[o.name] = v
  end
  -- hooks hold a read-only view of this table: refill it, keep its identity
  local cur = T._option_values
  if not cur then T._option_values = out return true end
  for k in pairs(cur) do cur[k] = nil end
  for k, v in pairs(out) do cur[k] = v end
  return true
end

----------------------------------------------------------------------------
-- The runtime API table of a type
----------------------------------------------------------------------------

local DECLARATION_ONLY = { type = true, typedefs = true }
for _, k in ipairs(require("glare.fields").KINDS) do DECLARATION_ONLY[k] = true end

-- What `glare.json` and `glare.semver` offer type code (the JSON marker
-- metatables are the library's own and stay out of reach).
local JSON_API = { "null", "array", "object", "is_array", "is_object" }
local SEMVER_API = { "coerce", "parse", "compare", "tostring", "version_key" }

local function pick(mod, names)
  local t = {}
  for _, k in ipairs(names) do t[k] = mod[k] end
  return t
end

--- The read-only `glare.json` of type code.
function runtime.json_api() return sandbox.view(pick(json, JSON_API), "glare.json") end
--- The read-only `glare.semver` of type code.
function runtime.semver_api() return sandbox.view(pick(semver, SEMVER_API), "glare.semver") end

--- Build the `glare` table hooks of `T` see (read-only).
function runtime.api(T)
  if not T._option_values then runtime.configure(T, nil) end
  local api = {
    log = function(level, ...) runtime.log(T.name, level, ...) end,
    fail = runtime.fail,
    json = runtime.json_api(),
    semver = runtime.semver_api(),
    options = sandbox.view(T._option_values, "glare.options"),
    type_name = T.name,
  }
  return sandbox.view(api, "glare", {
    __index = function(_, k)
      if DECLARATION_ONLY[k] then
        error(format("glare.%s is part of the declaration API: it is not available once the type has loaded (in hooks)", k), 2)
      end
      error(format("glare.%s does not exist", tostring(k)), 2)
    end,
  })
end

----------------------------------------------------------------------------
-- Called by the C core
----------------------------------------------------------------------------

local function field_of(T, field)
  if type(field) == "table" then return field end
  return T.by_name[field]
end

local function wrap(T, F, err)
  return format("Type: %s. Field: %s. Exception: %s", T.name, F.name, err)
end

--- Coerce and validate one field value (docs/glare-contract.md "Field types
--- and coercion", "Implicit limits", "Validators"). Returns the stored
-- value (for null: a List/Dict's default, else `json.null` on a nullable
-- field, else the default of a non-nullable one) or `nil, message`.
function runtime.coerce(T, field, value)
  local F = field_of(T, field)
  if not F then
    return nil, format("Type: %s. Field: %s. Exception: unknown field", T.name, tostring(field))
  end
  local v, err = F._coerce(value)
  if v == nil then return nil, wrap(T, F, err) end
  return v
end

--- Coerce a filter value (a string from the query) to the field's kind,
-- or to its element kind when `element` is true (List/Dict value filters).
-- `element == "key"` (or a falsy `element` on a Dict) coerces a Dict key
-- (`field=key` presence filters).
function runtime.coerce_filter(T, field, value, element)
  local F = field_of(T, field)
  if not F then
    return nil, format("Type: %s. Field: %s. Exception: unknown field", T.name, tostring(field))
  end
  local v, err = F._coerce_filter(value, element)
  if v == nil then return nil, wrap(T, F, err) end
  return v
end

--- `prefix, suffix, meta` of a coerced version (see glare.semver).
function runtime.version_key(v)
  return semver.version_key(v)
end

--- The JSON schema of `T` (marked tables).
function runtime.schema(T)
  return schema.type(T)
end

local function post_process(T, fn, what, artifact)
  if fn == nil then return artifact end
  local ok, res = xpcall(fn, handler, artifact)
  if T._boxes then restore(T._boxes) end
  if not ok then
    local _, _, msg, detail = outcome(T, what, false, res)
    return nil, msg, detail
  end
  if res == nil then return artifact end
  return res
end

--- The type's `to_dict` post-processing of an artifact (identity if none);
-- `nil, message, detail` if it raises.
function runtime.output(T, artifact)
  return post_process(T, T.to_dict, "to_dict", artifact)
end

--- The type's `format_all` for `/artifacts/all` (identity if none).
function runtime.format_all(T, artifact)
  return post_process(T, T.format_all, "format_all", artifact)
end

return runtime
