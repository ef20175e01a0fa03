--- Issue 20 item 5: C library calls the instruction count cannot see, and
-- many calls each just under any per-call budget. The pre_create hook runs
-- the attack named by the artifact's name; fields f1..f200 each have a
-- validator that burns BURN instructions.
local attacks = {}

attacks.rep_empty = function()
  return string.rep("", math.maxinteger) .. ("").rep("", math.maxinteger, "")
end
attacks.move_strings = function() return table.move({}, "1", "1e15", 2) end
attacks.backref = function()
  return string.find(string.rep("a", 14 * 1024), "(a*)%1%1%1b")
end
attacks.aab = function() return string.find(string.rep("a", 840), "a*a*b") end
attacks.lazy = function()
  return string.find(string.rep("a", 26), string.rep("a-", 12) .. "b")
end
attacks.gmatch = function()
  for _ in string.gmatch(string.rep("a", 3000), "a-a-a-b") do end
end
attacks.insert_len = function()
  table.insert(setmetatable({}, { __len = function() return 1 << 40 end }), 1, 0)
end
attacks.remove_len = function()
  table.remove(setmetatable({}, { __len = function() return 1 << 40 end }), 1)
end
attacks.sort_type = function()
  table.sort(setmetatable({}, { __index = type, __len = function() return (1 << 31) - 2 end }))
end
attacks.concat_index = function()
  return table.concat(setmetatable({}, { __index = function() return "" end,
    __len = function() return 1 << 50 end }))
end
attacks.unpack_index = function()
  return select("#", table.unpack(setmetatable({}, { __index = type }), 1, 100000))
end

local BURN = 400000
local function burn()
  local n = 0
  for i = 1, BURN do n = n + i end
  return n > 0
end
local fields = {}
for i = 1, 200 do fields[i] = { ["f" .. i] = glare.String { custom_validator = burn } } end

return glare.type {
  name = "cbomb_artifact",
  display_name = "C bombs",
  version = "1.0",
  fields = fields,
  hooks = {
    pre_create = function(ctx, af)
      local attack = attacks[af.name]
      if attack then attack() end
    end,
  },
}
