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
-- a transaction per BATCH creates (glare.batch): a create on its own
-- writes ~60 pages to the WAL, most of them the same for its neighbours
local BATCH = 1000
local function some(from, to)
  local out = {}
  for n = from, to do
    local a = glare.create("sample_artifact", {
      name = prefix .. "-" .. n, version = "1." .. (n % 2),
      description = "benchmark artifact " .. n,
      int1 = n % 1000, int2 = n, str1 = "s" .. (n % 100),
      bool1 = (n % 2 == 0), tags = {"t" .. (n % 10)},
      dict_of_str = {k = "v" .. (n % 4)}})
    out[#out + 1] = a.id
  end
  return out
end
-- glare.batch is sqlite's: elsewhere each create commits on its own
local batch = glare.try(glare.batch, function() end) and glare.batch
  or function(fn, ...) return fn(...) end
local last = start + count - 1
for from = start, last, BATCH do
  local made = batch(some, from, math.min(from + BATCH - 1, last))
  ids:write(table.concat(made, "\n"), "\n")
  ids:flush()
end
ids:close()
