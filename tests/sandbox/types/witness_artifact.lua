--- A harmless type whose answers depend on the string, table, math and
-- utf8 libraries, the field prototypes and the JSON marks: if another
-- type could change any of them, it would show here.
local String = glare.String

return glare.type {
  name = "witness_artifact",
  display_name = "Witness",
  version = "1.0",
  fields = {
    { label = String { description = "Set by pre_create from the name." } },
    { note = String { description = "Free text, the default 255 characters at most." } },
    { words = glare.List { of = String, description = "Any words." } },
  },
  hooks = {
    pre_create = function(ctx, af)
      af.label = string.format("%s|%s|%d", string.upper(af.name), table.concat({ "a", "b" }, "+"), #af.name)
      return af
    end,
  },
  to_dict = function(af)
    local words = af.words or glare.json.array()
    af.__witness__ = table.concat({ (af.name or ""):upper(), table.concat(words, ","),
      tostring(math.floor(2.5)), utf8.char(65), tostring(glare.json.is_array(words)),
      tostring(select("#", string.byte("abc", 1, -1))) }, ":")
    return af
  end,
}
