--- Issue 20 item 2: declaration prototypes. Each attempt to change a field
-- prototype or a base field definition is recorded in the schema (the
-- description of `declared`); a witness type loaded afterwards must still
-- get the stock limits.
local out = {}
local function try(name, f)
  local ok, err = pcall(f)
  out[#out + 1] = name .. "=" .. (ok and "CHANGED" or tostring(err):gsub("^[^:]*:%d+: ", ""))
end

try("String.max_length", function() glare.String.max_length = 7 end)
try("List.max_items", function() glare.List.max_items = 1 end)
try("typedefs.description.custom_validator", function()
  glare.typedefs.description.custom_validator = function(v) return nil, "seen " .. v end
end)
try("typedefs.name.max_length", function() glare.typedefs.name.max_length = 3 end)
try("typedefs.owner.system", function() glare.typedefs.owner.system = false end)
try("typedefs.BASE_FIELDS", function() glare.typedefs.BASE_FIELDS[3] = "id" end)
try("typedefs.tags.of", function() glare.typedefs.tags.of.max_length = 1 end)
try("typedefs.new", function() glare.typedefs.extra = glare.String {} end)
try("pairs(typedefs)", function()
  local _, T = pairs(glare.typedefs)
  T.name = glare.String { max_length = 2 }
end)

return glare.type {
  name = "proto_artifact",
  display_name = "Proto",
  version = "1.0",
  fields = {
    { declared = glare.String { description = table.concat(out, "; ") } },
  },
}
