--- Micro-benchmark: one create-validation of a full sample_artifact body
-- (every user-settable field coerced and validated), in µs per operation.
--
--   lua5.4 bench/lua_validate.lua [iterations]
--
-- Run from the repository root (or anywhere: paths are taken relative to
-- this file).
local here = arg and arg[0] and arg[0]:match("^(.*)/bench/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path

local json = require("glare.json")
local loader = require("glare.loader")
local runtime = require("glare.runtime")

local T = assert(loader.load_file(here .. "/tests/types/sample_artifact.lua"))
local A, O = json.array, json.object

-- What a client sends to POST /artifacts/sample_artifact, decoded by C.
local body = O({
  name = "benchmark artifact", version = "1.2:3", description = "A body with every field set.",
  tags = A({ "alpha", "beta", "gamma", "alpha" }),
  metadata = O({ owner_team = "storage", tier = "gold" }),
  link1 = "/artifacts/images/8d6c1d7c-2b6e-4a3e-9c39-9b1c1f3f0a11", link2 = "http://example.com/x",
  bool1 = "yes", bool2 = false, int1 = 2050, int2 = "17", float1 = 1.5, float2 = "2.25",
  str1 = "some string", list_of_str = A({ "a", "b", 3 }), list_of_int = A({ 1, "2", 3.7 }),
  dict_of_str = O({ a = "x", b = 2 }), dict_of_int = O({ one = 1, two = "2" }),
  dict_of_links = O({ l = "/artifacts/images/8d6c1d7c-2b6e-4a3e-9c39-9b1c1f3f0a11" }),
  list_of_links = A({ "https://example.com/a" }), string_mutable = "m", string_regex = "deadBEEF",
  string_required = "r", string_validators = "bb", int_validators = 15,
  list_validators = A({ "x", "y", "z" }), dict_validators = O({ abc = "1", jkl = "2" }),
  metadata_attribute = "md",
})

local names = {}
for k in pairs(body) do names[#names + 1] = k end
table.sort(names)

local function validate()
  for i = 1, #names do
    local name = names[i]
    local v, err = runtime.coerce(T, name, body[name])
    if v == nil then error(err) end
  end
end

local n = tonumber(arg and arg[1]) or 20000
for _ = 1, 200 do validate() end          -- warm up
local t0 = os.clock()
for _ = 1, n do validate() end
local dt = os.clock() - t0
print(string.format("lua_validate: sample_artifact create body, %d fields: %.2f us/op (%d ops, %s)",
  #names, dt / n * 1e6, n, _VERSION))
