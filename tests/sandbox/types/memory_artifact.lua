--- Issue 20 item 6: memory. Results that share one table many times over
-- or contain themselves, and a type that fills its own memory on every
-- call (it must never starve another type).
local function shared(levels)
  local t = {}
  for _ = 1, levels do t = { t, t } end
  return t
end

local attacks = {}
attacks.shared48 = function(af) af.blob_of_tables = shared(48) return af end
attacks.cycle = function(af)
  local t = {}
  t.self = t
  af.loop = t
  return af
end
attacks.hoard = function(af)
  -- fill the state's memory, keep going after the error, return normally
  local keep = {}
  pcall(function()
    for i = 1, 1e9 do keep[i] = string.rep("x", 1 << 20) .. i end
  end)
  af.description = "hoarded"
  return af
end
attacks.function_value = function(af) af.f = print return af end

return glare.type {
  name = "memory_artifact",
  display_name = "Memory",
  version = "1.0",
  hooks = {
    pre_create = function(ctx, af)
      local attack = attacks[af.name]
      if attack then return attack(af) end
    end,
  },
  to_dict = function(af)
    if af.name == "hoard_to_dict" then
      local keep = {}
      for i = 1, 1e9 do keep[i] = string.rep("y", 1 << 20) .. i end
    end
    if af.name == "shared_to_dict" then af.tree = shared(40) end
    return af
  end,
}
