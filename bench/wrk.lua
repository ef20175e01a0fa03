-- wrk.lua - the request generator bench/meta.py drives wrk with (one
-- thread: run wrk with -t1).
--
--   wrk -t1 -cC -dD -s bench/wrk.lua URL -- get PATHS_FILE TOKEN
--       cycle through the request paths listed in PATHS_FILE (one a line)
--   wrk -t1 -cC -dD -s bench/wrk.lua URL -- create TYPE PREFIX START COUNT IDS_FILE TOKEN
--       POST artifacts named PREFIX-<n> (n = START, START+1, ...) to
--       /artifacts/TYPE and append the new ids to IDS_FILE; with COUNT > 0
--       exit as soon as COUNT responses arrived (the bulk loader: wrk
--       itself would only stop at the end of the duration, so there is no
--       summary line then), with COUNT = 0 run for the duration
--
-- done() prints one line "WRK {json}" with the request count, duration and
-- latency percentiles in microseconds, for the caller to parse.

local mode, paths, idx = nil, {}, 0
local typ, prefix, start, count, ids_file, token
local sent, received, ids = 0, 0, nil

function init(args)
  mode = args[1]
  if mode == "get" then
    for line in io.lines(args[2]) do
      if #line > 0 then paths[#paths + 1] = line end
    end
    token = args[3]
    assert(#paths > 0, "no paths in " .. args[2])
    response = nil          -- wrk then skips handing bodies to Lua
  elseif mode == "create" then
    typ, prefix = args[2], args[3]
    start, count = tonumber(args[4]), tonumber(args[5])
    ids_file, token = args[6], args[7]
    ids = assert(io.open(ids_file, "a"))
  else
    error("wrk.lua: unknown mode " .. tostring(mode))
  end
  wrk.headers["X-Auth-Token"] = token
end

function request()
  if mode == "get" then
    idx = idx % #paths + 1
    return wrk.format("GET", paths[idx])
  end
  local n = start + sent
  sent = sent + 1
  local body = string.format(
    '{"name": "%s-%d", "version": "1.%d", "description": "benchmark artifact %d", ' ..
    '"int1": %d, "int2": %d, "str1": "s%d", "bool1": %s, "tags": ["t%d"], ' ..
    '"dict_of_str": {"k": "v%d"}}',
    prefix, n, n % 2, n, n % 1000, n, n % 100, (n % 2 == 0) and "true" or "false",
    n % 10, n % 4)
  return wrk.format("POST", "/artifacts/" .. typ,
                    { ["Content-Type"] = "application/json",
                      ["X-Auth-Token"] = token }, body)
end

function response(status, headers, body)
  if mode ~= "create" then return end
  received = received + 1
  if status == 201 then
    local id = body:match('"id": *"([^"]+)"')
    if id then ids:write(id, "\n") end
  end
  if count > 0 and received >= count then
    ids:close()
    os.exit(0)
  end
end

function done(summary, latency, requests)
  if ids then ids:close() end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, ' ..
    '"err_timeout": %d, "mean": %.1f, "p50": %d, "p95": %d, "p99": %d, "max": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
