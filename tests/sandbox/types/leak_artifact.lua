--- Issue 20 item 1: library tables reached through pairs. Every attempt
-- to take the table behind a library (or glare) table from `pairs` and
-- plant a function in it is recorded: at declaration in the schema (the
-- description of `declared`), at run time in the artifact's description.
local function attempts()
  local out = {}
  local targets = {
    { "string", function() return string end, "upper" },
    { "table", function() return table end, "concat" },
    { "math", function() return math end, "floor" },
    { "utf8", function() return utf8 end, "char" },
    { "os", function() return os end, "time" },
    { "glare", function() return glare end, "log" },
    { "glare.json", function() return glare.json end, "is_array" },
    { "glare.semver", function() return glare.semver end, "coerce" },
  }
  for _, t in ipairs(targets) do
    local ok, err = pcall(function()
      local _, S = pairs(t[2]())
      S[t[3]] = function() return "PWNED" end
    end)
    out[#out + 1] = t[1] .. "=" .. (ok and "CHANGED" or tostring(err):gsub("^[^:]*:%d+: ", ""))
  end
  -- the raw view shows nothing either
  out[#out + 1] = "next(string)=" .. tostring(next(string))
  return table.concat(out, "; ")
end

local declared = attempts()

return glare.type {
  name = "leak_artifact",
  display_name = "Leak",
  version = "1.0",
  fields = {
    { declared = glare.String { description = declared } },
  },
  options = { { o = { type = "string", default = "v" } } },
  hooks = {
    pre_create = function(ctx, af)
      local out = attempts()
      local ok, err = pcall(function()
        local _, O = pairs(glare.options)
        O.o = "PWNED"
      end)
      af.description = out .. "; glare.options=" .. (ok and "CHANGED" or tostring(err):gsub("^[^:]*:%d+: ", ""))
      return af
    end,
  },
}
