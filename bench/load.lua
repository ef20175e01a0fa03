-- load.lua - the bulk loader of bench/meta.py (BENCH_META_LOAD=console):
-- creates sample_artifact artifacts through the engine in-process, the
-- same create path as POST /artifacts (validation, the type's hooks,
-- quotas, counters, scope copies), without HTTP in between.
--
--   glared console --config-file F --project P bench/load.lua PREFIX START COUNT IDS_FILE
--
-- The fields are bench/wrk.lua's create body, so a database loaded either
-- way answers the same listings.
local prefix, start, count, ids_file = arg[1], tonumber(arg[2]),
  tonumber(arg[3]), arg[4]
assert(prefix and start and count and ids_file,
       "usage: load.lua PREFIX START COUNT IDS_FILE")
local ids = assert(io.open(ids_file, "a"))
for n = start, start + count - 1 do
  local a = glare.create("sample_artifact", {
    name = prefix .. "-" .. n, version = "1." .. (n % 2),
    description = "benchmark artifact " .. n,
    int1 = n % 1000, int2 = n, str1 = "s" .. (n % 100),
    bool1 = (n % 2 == 0), tags = {"t" .. (n % 10)},
    dict_of_str = {k = "v" .. (n % 4)}})
  ids:write(a.id, "\n")
end
ids:close()
