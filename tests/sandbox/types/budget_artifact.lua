--- Issue 20 item 4: Lua that used to run outside the budget. to_dict and
-- format_all loop for the names "loop_to_dict" / "loop_format_all"; the
-- pre_create hook runs the attack named by the artifact's name.
local GC = { __gc = function() while true do end end }
local attacks = {}

attacks.xpcall_handler = function()
  -- the handler used to run inside the count hook, with hooks off
  return xpcall(function() while true do end end, function() while true do end end)
end
attacks.handler_after_budget = function()
  return xpcall(function() while true do end end, function(m) return m end)
end
attacks.gc_marker = function()
  glare.json.array_mt.__gc = function() while true do end end -- @gc_marker
end
attacks.gc_setmetatable = function()
  setmetatable({}, { __gc = function() while true do end end }) -- @gc_setmetatable
end
attacks.gc_frozen = function()
  setmetatable({}, GC) -- @gc_frozen
end
attacks.gc_later = function()
  -- __gc added after setmetatable never makes a finalizer (Lua 5.4)
  local mt = {}
  local t = setmetatable({}, mt)
  mt.__gc = function() while true do end end
  return t
end
attacks.close_handler = function()
  local x <close> = setmetatable({}, { __close = function() while true do end end }) -- @close_handler
end
attacks.error_tostring = function()
  error(setmetatable({}, { __tostring = function() while true do end end }))
end

local function loop_for(name, wanted)
  if name == wanted then while true do end end
end

return glare.type {
  name = "budget_artifact",
  display_name = "Budget",
  version = "1.0",
  hooks = {
    pre_create = function(ctx, af)
      local attack = attacks[af.name]
      if attack then attack() end
    end,
  },
  to_dict = function(af)
    loop_for(af.name, "loop_to_dict")
    return af
  end,
  format_all = function(af)
    loop_for(af.name, "loop_format_all")
    return af
  end,
}
