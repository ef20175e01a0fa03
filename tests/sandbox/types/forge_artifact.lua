--- Issue 20 item 7: failures whose status is changed after glare.fail made
-- them, out-of-range statuses and look-alike tables.
local attacks = {}

attacks.forge_quiet = function()
  local _, e = pcall(glare.fail, 404, "not here")
  pcall(function() e.status = 200 end)
  pcall(function() e.message = "changed" end)
  error(e)
end
attacks.forge_status = function()
  local _, e = pcall(glare.fail, 404, "not here")
  e.status = 200 -- @forge_status
  error(e)
end
attacks.forge_setmetatable = function()
  local _, e = pcall(glare.fail, 404, "not here")
  setmetatable(e, nil) -- @forge_setmetatable
end
attacks.maxint = function() glare.fail(math.maxinteger, "x") end -- @maxint
attacks.status_5xx = function() glare.fail(503, "busy") end -- @status_5xx
attacks.look_alike = function() error({ status = 200, message = "fine" }) end

return glare.type {
  name = "forge_artifact",
  display_name = "Forge",
  version = "1.0",
  hooks = {
    pre_create = function(ctx, af)
      local attack = attacks[af.name]
      if attack then attack() end
    end,
  },
}
