"""Lua costs: create-body validation offline (issue #4), and the type
runtime inside glared (issue #20: one state per type, sealed types, one
budget per request).

Part 1. lua_validate.lua coerces and validates every field of a full
sample_artifact create body through glare.runtime and prints µs per body.
The baseline, measured in the same run by the same lua5.4, is the
interpreter's floor for that loop: one call of a trivial Lua function per
field (same field count, same iteration count), so the ratio is what the
type library costs per field above a bare call.

Part 2. A glared with BENCH_LUA_N artifacts of sample_artifact (whose
to_dict runs for every artifact shown) and of images (no output hook)
answers list (limit=100), show and create requests one at a time; the
table gives the server's CPU time per request (from /proc, summed over
all rounds: robust on a shared machine) and the latency (median of
BENCH_LUA_ROUNDS rounds of BENCH_LUA_REQS requests, shows 5 times as
many). The same-run baseline is another glared binary,
BENCH_BASELINE_GLARED (e.g. a build of the previous commit, with its own
lua/ beside it; both read copies of this tree's type files), loaded with
the same data and measured in
alternating rounds; without it the images rows (no Lua per artifact) are
the reference. Start-up: CPU time of `glared check-types` over the stock
types, and the worker's RSS once serving.

  /usr/bin/python3 bench/lua.py  (BENCH_LUA_ITERS, default 20000;
  BENCH_LUA_N 200, BENCH_LUA_REQS 100, BENCH_LUA_ROUNDS 5)
"""
import os
import re
import resource
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

FLOOR = r"""
local nfields, n = tonumber(arg[1]), tonumber(arg[2])
local names, body = {}, {}
for i = 1, nfields do names[i] = "f" .. i; body[names[i]] = i end
local function coerce(_, _, v) return v end
local function validate()
  for i = 1, #names do
    local v = coerce(nil, names[i], body[names[i]])
    if v == nil then error("nil") end
  end
end
for _ = 1, 200 do validate() end
local t0 = os.clock()
for _ = 1, n do validate() end
print(string.format("%.4f", (os.clock() - t0) / n * 1e6))
"""


STOCK = ("images,heat_templates,heat_environments,tosca_templates,"
         "murano_packages,secrets,sample_artifact,hooks_artifact,"
         "non_nullable_fields_artifact,regional_images")


def check_types_cpu(binary, d, runs=5):
    """CPU seconds (user + sys) of `glared check-types` on the stock types,
    the best of runs."""
    conf = os.path.join(d, "check.conf")
    with open(conf, "w") as f:
        f.write("[DEFAULT]\nenabled_artifact_types = %s\ntypes_path = %s\n"
                % (STOCK, B.types_dir(d, STOCK.split(","))))
    best = None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([binary, "check-types", "--config-file", conf],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime +
               after.ru_stime - before.ru_stime)
        best = cpu if best is None else min(best, cpu)
    return best


def timed(srv, path, n):
    t0 = time.perf_counter()
    for _ in range(n):
        st, _ = srv.request("GET", path)
        if st != 200:
            raise RuntimeError("GET %s -> %d" % (path, st))
    return (time.perf_counter() - t0) / n * 1000


def timed_creates(srv, tag, n):
    t0 = time.perf_counter()
    for i in range(n):
        srv.json("POST", "/artifacts/sample_artifact",
                 {"name": "c-%s-%d" % (tag, i), "int1": i, "str1": "s",
                  "list_of_str": ["a", "b"], "dict_of_int": {"k": i}})
    return (time.perf_counter() - t0) / n * 1000


def server_part():
    n = int(B.env_float("BENCH_LUA_N", 200))
    reqs = int(B.env_float("BENCH_LUA_REQS", 100))
    rounds = int(B.env_float("BENCH_LUA_ROUNDS", 5))
    base_bin = os.environ.get("BENCH_BASELINE_GLARED")
    bins = [("this build", B.GLARED)]
    if base_bin:
        bins.append(("baseline", base_bin))
    print("== lua: the type runtime in glared, %d artifacts per type, "
          "%d requests x %d rounds" % (n, reqs, rounds), flush=True)
    servers = {}
    for label, binary in bins:
        d = B.workdir("glared-bench-lua-")
        srv = B.Glared(d, {"enabled_artifact_types": STOCK}, binary=binary)
        servers[label] = srv
        for i in range(n):
            srv.json("POST", "/artifacts/sample_artifact",
                     {"name": "s%d" % i, "int1": i, "str1": "v%d" % (i % 7),
                      "list_of_str": ["a", "b"], "dict_of_int": {"k": i}})
            srv.json("POST", "/artifacts/images", {"name": "i%d" % i})
        srv.show = srv.json("GET", "/artifacts/sample_artifact?limit=1")[
            "artifacts"][0]["id"]
    ncreate = max(10, reqs // 2)
    kinds = [
        ("list sample_artifact (to_dict x100)", reqs,
         lambda s: timed(s, "/artifacts/sample_artifact?limit=100", reqs)),
        ("list images (no Lua per artifact)", reqs,
         lambda s: timed(s, "/artifacts/images?limit=100", reqs)),
        ("show sample_artifact", 5 * reqs,
         lambda s: timed(s, "/artifacts/sample_artifact/%s" % s.show,
                         5 * reqs)),
        ("create sample_artifact (5 fields + hooks)", ncreate,
         lambda s: timed_creates(s, "%d" % time.time_ns(), ncreate)),
    ]
    lat = {(k, lb): [] for k, _, _ in kinds for lb, _ in bins}
    cpu = {(k, lb): 0.0 for k, _, _ in kinds for lb, _ in bins}
    for _ in range(rounds):
        for k, _, fn in kinds:
            for lb, _ in bins:       # alternate: the same load conditions
                srv = servers[lb]
                c0 = B.proc_cpu_seconds(srv.pid)
                lat[(k, lb)].append(fn(srv))
                cpu[(k, lb)] += B.proc_cpu_seconds(srv.pid) - c0
    rows = []
    for k, n, _ in kinds:
        us = {lb: cpu[(k, lb)] / (n * rounds) * 1e6 for lb, _ in bins}
        ms = {lb: statistics.median(lat[(k, lb)]) for lb, _ in bins}
        if base_bin:
            rows.append((k + ", server CPU", "%.0f µs" % us["this build"],
                         "%.0f µs" % us["baseline"],
                         "%.2fx" % (us["this build"] / us["baseline"]),
                         "", None))
            rows.append(("  latency", "%.2f ms" % ms["this build"],
                         "%.2f ms" % ms["baseline"],
                         "%.2fx" % (ms["this build"] / ms["baseline"]),
                         "", None))
        else:
            rows.append((k + ", server CPU", "%.0f µs" % us["this build"],
                         "", "", "", None))
            rows.append(("  latency", "%.2f ms" % ms["this build"], "", "",
                         "", None))
    for lb, binary in bins:
        rows.append(("check-types CPU, stock types (%s)" % lb,
                     "%.0f ms" % (check_types_cpu(binary, B.workdir(
                         "glared-bench-ct-")) * 1000), "", "", "", None))
        rows.append(("worker RSS serving (%s)" % lb,
                     "%.1f MB" % (servers[lb].rss_kb() / 1024.0), "", "", "",
                     None))
    B.table("lua: the type runtime in glared, per request, one request at a "
            "time (CPU summed over %d rounds, latency their median)" % rounds,
            rows,
            ["baseline: %s" % (base_bin or "none given "
                               "(BENCH_BASELINE_GLARED); compare with the "
                               "images rows"),
             "no target: the isolation of issue #20 must not make "
             "list/show slower in a way that matters"])
    for srv in servers.values():
        srv.stop()


def main():
    iters = int(B.env_float("BENCH_LUA_ITERS", 20000))
    lua = os.environ.get("LUA", "lua5.4")
    print("== lua: create-body validation, %d iterations" % iters,
          flush=True)
    out = B.run([lua, os.path.join(B.ROOT, "bench", "lua_validate.lua"),
                 str(iters)]).stdout
    print("  " + out.strip())
    m = re.search(r"(\d+) fields: ([0-9.]+) us/op", out)
    if not m:
        print("lua: cannot parse lua_validate.lua output")
        return 2
    nfields, us = int(m.group(1)), float(m.group(2))
    floor = float(B.run([lua, "-", str(nfields), str(iters)],
                        input=FLOOR).stdout)
    B.table("lua: one full sample_artifact create body (%d fields), µs/op"
            % nfields,
            [("validate + coerce, per body", "%.2f µs" % us,
              "%.2f µs bare calls" % floor, "%.0fx" % (us / floor), "", None),
             ("  per field", "%.2f µs" % (us / nfields),
              "%.3f µs" % (floor / nfields), "", "", None)],
            ["baseline: the same loop calling a trivial function per field "
             "(the interpreter's floor); issue #4 sets no target"])
    server_part()
    return 0


if __name__ == "__main__":
    sys.exit(main())
