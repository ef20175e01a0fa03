--- JSON value conventions shared by the C core and the Lua type runtime.
--
-- C converts JSON to Lua (and back) with jansson; this module only fixes the
-- markers both sides agree on: a unique `null` sentinel and two metatables
-- telling arrays from objects (an empty Lua table is ambiguous otherwise).
-- See docs/lua-runtime.md, "Values".
local json = {}

local setmetatable, getmetatable, pairs, type = setmetatable, getmetatable, pairs, type
local math_type = math.type

--- The JSON `null` sentinel. Compare with `==`; it is never equal to `nil`.
-- It is frozen so that a hook cannot store data in it (it is shared by every
-- type in the worker).
json.null = setmetatable({}, {
  __name = "json.null",
  __tostring = function() return "null" end,
  __newindex = function() error("json.null is read-only", 2) end,
  __metatable = "json.null",
})

--- Metatable marking a table as a JSON array.
json.array_mt = { __name = "json.array" }
--- Metatable marking a table as a JSON object.
json.object_mt = { __name = "json.object" }

-- Both markers are shared by every artifact of the state. Sandboxed code
-- never sees them (`glare.json` at run time has no `array_mt`/`object_mt`,
-- and there is no getmetatable); the guard is for library code.
local guard = {
  __newindex = function() error("JSON marker metatables are read-only", 2) end,
  __metatable = "json marker",
}
setmetatable(json.array_mt, guard)
setmetatable(json.object_mt, guard)

--- Mark `t` (default: a new table) as a JSON array and return it.
function json.array(t)
  return setmetatable(t or {}, json.array_mt)
end

--- Mark `t` (default: a new table) as a JSON object and return it.
function json.object(t)
  return setmetatable(t or {}, json.object_mt)
end

--- True when `t` converts to a JSON array: marked as one, or unmarked with
-- keys exactly `1..n`, `n >= 1` (the rule C applies to unmarked tables).
-- Read-only tables are looked at through `pairs`.
function json.is_array(t)
  if type(t) ~= "table" then return false end
  local mt = getmetatable(t)
  if mt == json.array_mt then return true end
  if mt == json.object_mt or t == json.null then return false end
  local n, max = 0, 0
  for k in pairs(t) do
    if math_type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
    if k > max then max = k end
  end
  return n >= 1 and max == n
end

--- True when `t` converts to a JSON object (marked, or an unmarked table that
-- is not an array, including `{}`).
function json.is_object(t)
  if type(t) ~= "table" or t == json.null then return false end
  local mt = getmetatable(t)
  if mt == json.object_mt then return true end
  if mt == json.array_mt then return false end
  return not json.is_array(t)
end

return json
