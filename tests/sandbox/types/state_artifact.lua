--- Issue 20 item 3: state carried from one request to the next. The
-- artifact's name is "<mechanism>:<payload>"; every mechanism tries to keep
-- the payload for a later request (another tenant's) and reports in the
-- description what it found from before.
local ENV0 = _ENV
local seen = {}
local last, count = nil, 0
STORE = setmetatable({}, { __index = function() return nil end })
local function helper() return "original" end
local last_output

local mechanisms = {}
mechanisms.local_table = function(payload)
  seen[#seen + 1] = payload -- @local_table
  return "stored"
end
mechanisms.local_scalar = function(payload)
  local prev = last
  last = payload
  count = count + 1
  return "previous " .. tostring(prev) .. ", count " .. count
end
mechanisms.global_mt = function(payload)
  STORE.last = payload -- @global_mt
  return "stored"
end
mechanisms.env_set = function(payload)
  _ENV = setmetatable({ LEAK = payload }, { __index = ENV0 })
  return "set"
end
mechanisms.env_get = function()
  local ok, v = pcall(function() return LEAK end)
  return ok and ("LEAK " .. tostring(v)) or "no LEAK"
end
mechanisms.helper_swap = function(payload)
  local before = helper()
  helper = function() return payload end
  return "helper " .. before
end

return glare.type {
  name = "state_artifact",
  display_name = "State",
  version = "1.0",
  hooks = {
    pre_create = function(ctx, af)
      local mech, payload = af.name:match("^([%w_]+):(.*)$")
      af.description = mechanisms[mech](payload)
      return af
    end,
  },
  to_dict = function(af)
    af.__previous__ = tostring(last_output)
    last_output = af.name
    return af
  end,
}
