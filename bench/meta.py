"""Metadata API rates and latency percentiles at 10k and 100k artifacts
(issue #5).

One glared (sqlite, workers = BENCH_WORKERS, default 1) is filled through
the API with `sample_artifact` artifacts (name load-<n>, int1 = n % 1000,
int2 = n, str1 = s<n % 100>, bool1, one tag) by wrk with keep-alive
(bench/wrk.lua, 8 connections). At each level of BENCH_META_N (default
"10000 100000") wrk then runs each request kind for BENCH_META_SECS
seconds (default 5) on BENCH_CONNS keep-alive connections (default 4):

  healthcheck     GET /healthcheck: the baseline, what the client and the
                  HTTP layer alone manage in the same run
  show            GET /artifacts/sample_artifact/<random id>
  list int1=eq    custom-property filter (N/1000 matches), sort=created_at
  list int1>=900  custom-property range (N/10 matches), sort=created_at
  list str1 +sort custom filter (N/100 matches), custom sort int1:asc
  list name=eq    base filter, one match
  list status     base filter matching every artifact, sort=created_at
                  (a page of 25 plus total_count over N)
  create          POST /artifacts/sample_artifact (adds artifacts: run
                  last, so the reads above see exactly N)

BENCH_META_LOAD=console loads through the engine in-process instead:
the server stops, `glared console --project benchproject bench/load.lua`
creates the artifacts (the same create path without HTTP; sqlite with
`sqlite_durability = normal` while loading, the data is rebuilt if lost),
and the server starts again on the loaded database; for the 1,000,000
level, which the API at a few hundred creates/s would take hours to fill.

BENCH_META_DB=postgresql://... puts the metadata in that (empty)
PostgreSQL database instead of sqlite. BENCH_META_DIR=<dir> reuses the directory of an earlier run kept with
BENCH_KEEP=1 (its database and ids.txt: no reload for the artifacts
already there). BENCH_BEFORE=<glared> measures that binary first at
each level (it also does the loading), then upgrades the same database
with `glared db upgrade` (timed) and measures GLARED on it: the same
data, one run, before and after.

Every list returns a page of 25 (the default limit) and total_count.
Latencies are wrk's, in ms; "srv CPU" is glared's CPU time over the run's
wall time (100% = one core busy).

  /usr/bin/python3 bench/meta.py
"""
import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

WRK_LUA = os.path.join(B.ROOT, "bench", "wrk.lua")
TYPE = "sample_artifact"
LOAD_CONNS = 8


def wrk_run(srv, conns, secs, args):
    c0 = B.proc_cpu_seconds(srv.pid)
    p = B.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs,
               "--timeout", "60s", "-s", WRK_LUA, srv.url, "--"] + args)
    cpu = B.proc_cpu_seconds(srv.pid) - c0
    for line in p.stdout.splitlines():
        if line.startswith("WRK "):
            r = json.loads(line[4:])
            r["cpu"] = cpu / (r["duration_us"] / 1e6)
            return r
    raise RuntimeError("wrk failed (%d):\n%s\n%s" %
                       (p.returncode, p.stdout, p.stderr))


def load(srv, start, count, ids_file):
    """Create `count` artifacts load-<start>...; return the rate."""
    if count <= 0:
        return None
    t0 = time.time()
    p = B.run(["wrk", "-t1", "-c%d" % LOAD_CONNS, "-d3600s",
               "-s", WRK_LUA, srv.url, "--", "create", TYPE, "load",
               str(start), str(count), ids_file, B.TOKEN])
    if p.returncode != 0:
        raise RuntimeError("loader failed:\n%s\n%s" % (p.stdout, p.stderr))
    return count / (time.time() - t0)


def console_load(srv, binary, start, count, ids_file):
    """load() through the engine in-process (BENCH_META_LOAD=console);
    the server must be stopped. Returns the rate."""
    if count <= 0:
        return None
    conf = srv.conf + ".load"
    with open(srv.conf) as f, open(conf, "w") as out:
        for line in f:
            out.write(line)
            if line.strip() == "[database]":
                out.write("sqlite_durability = normal\n")
    t0 = time.time()
    p = B.run([binary or B.GLARED, "console", "--config-file", conf,
               "--project", B.TOKEN.split(":")[1],
               os.path.join(B.ROOT, "bench", "load.lua"), "load",
               str(start), str(count), ids_file])
    if p.returncode != 0:
        raise RuntimeError("console loader failed:\n%s\n%s" %
                           (p.stdout, p.stderr))
    return count / (time.time() - t0)


def total(srv):
    return srv.json("GET", "/artifacts/%s?limit=1" % TYPE)["total_count"]


def paths_file(d, name, paths):
    fn = os.path.join(d, "paths-%s.txt" % name)
    with open(fn, "w") as f:
        f.write("\n".join(paths) + "\n")
    return fn


def main():
    levels = [int(x) for x in
              os.environ.get("BENCH_META_N", "10000 100000").split()]
    secs = int(B.env_float("BENCH_META_SECS", 5))
    conns = int(B.env_float("BENCH_CONNS", 4))
    d = os.environ.get("BENCH_META_DIR") or B.workdir("glared-bench-meta-")
    before = os.environ.get("BENCH_BEFORE")
    print("== meta: create/show/list at %s artifacts, %d s per run, %d "
          "connections (%s)" % (" and ".join(map(str, levels)), secs, conns,
                                d), flush=True)
    srv_dir = os.path.join(d, "srv")
    os.makedirs(srv_dir, exist_ok=True)
    db = os.environ.get("BENCH_META_DB")
    opts = {"database.connection": db} if db else None
    srv = B.Glared(srv_dir, opts, binary=before)
    ids_file = os.path.join(d, "ids.txt")
    open(ids_file, "a").close()
    base = "/artifacts/%s" % TYPE

    rows, notes = [], []
    with open(ids_file) as f:     # load-<n> names used so far
        loaded = len(f.read().split())
    for n in levels:
        have = total(srv)
        B.log("loading %d -> %d artifacts" % (have, n))
        if n > have and os.environ.get("BENCH_META_LOAD") == "console":
            srv.stop()
            rate = console_load(srv, before, loaded, n - have, ids_file)
            srv = B.Glared(srv_dir, opts, binary=before)
            how = "glared console, in-process"
        else:
            rate = load(srv, loaded, n - have, ids_file) if n > have \
                else None
            how = "wrk, %d connections" % LOAD_CONNS
        if rate:
            loaded += n - have
            notes.append("bulk load %d -> %d: %.0f creates/s (%s)"
                         % (have, n, rate, how))
        have = total(srv)
        with open(ids_file) as f:
            ids = [x for x in f.read().split() if x]
        for binary in ([before, None] if before else [None]):
            if binary is None and before:
                srv.stop()
                t0 = time.time()
                B.run([B.GLARED, "db", "upgrade", "--config-file",
                       srv.conf])
                notes.append("glared db upgrade at %d artifacts: %.1f s"
                             % (have, time.time() - t0))
                srv = B.Glared(srv_dir, opts)
            tag = "" if not before else "before: " if binary else "now: "
            hc_rate = measure(srv, d, base, have, loaded, ids, secs, conns,
                              tag, rows)
        # runs last, so the reads above see exactly N
        B.log("%d: create" % have)
        # names of their own: a reused directory has the last run's
        prefix = "c%d-%d" % (n, time.time())
        r = wrk_run(srv, conns, secs, ["create", TYPE, prefix, "0", "0",
                                       os.path.join(d, "ids-create.txt"),
                                       B.TOKEN])
        rows.append(row("create", "%d+" % have, r, hc_rate))
    hwm = srv.hwm_kb()
    srv.stop()
    B.grid("meta: %s, workers=%s, wrk -t1 -c%d, %d s per row, latency "
           "in ms" % ("postgresql" if db else "sqlite",
                      os.environ.get("BENCH_WORKERS") or "1", conns, secs),
           ("operation", "artifacts", "req/s", "vs hc", "p50", "p95", "p99",
            "max", "errors", "srv CPU"), rows,
           notes + ["vs hc = req/s relative to healthcheck in the same run; "
                    "errors = non-2xx + socket errors",
                    "server peak RSS (VmHWM): %.1f MB" % (hwm / 1024.0),
                    "load average: %s" % open("/proc/loadavg").read()
                    .split(" ", 3)[:3]])
    return 0


def measure(srv, d, base, have, loaded, ids, secs, conns, tag, rows):
    """The read rows at one level, the healthcheck first."""
    rnd = random.Random(42)
    K = 2000
    runs = [
        ("healthcheck (baseline)", ["/healthcheck"]),
        ("show", ["%s/%s" % (base, rnd.choice(ids)) for _ in range(K)]),
        ("list int1=eq, sort created_at",
         ["%s?int1=eq:%d&sort=created_at:desc" % (base, rnd.randrange(1000))
          for _ in range(K)]),
        ("list int1>=900, sort created_at",
         ["%s?int1=gte:900&sort=created_at:desc" % base]),
        ("list str1=eq, sort int1 (custom)",
         ["%s?str1=eq:s%d&sort=int1:asc" % (base, rnd.randrange(100))
          for _ in range(K)]),
        ("list name=eq (base, 1 match)",
         ["%s?name=load-%d" % (base, rnd.randrange(loaded))
          for _ in range(K)]),
        ("list status=drafted (base, all)",
         ["%s?status=drafted&sort=created_at:desc" % base]),
        ("list tags=t3 (10%)", ["%s?tags=t3" % base]),
        ("list version>=1.1 (semver, half)",
         ["%s?version=gte:1.1" % base]),
        ("list dict_of_str.k=v1 (dict, 1/4)",
         ["%s?dict_of_str.k=eq:v1" % base]),
        ("list limit=100", ["%s?limit=100" % base]),
        ("list page 50 (next markers)", [page_50(srv, base)]),
        ("list /artifacts/all", ["/artifacts/all"]),
    ]
    hc_rate = None
    for label, paths in runs:
        B.log("%d: %s%s" % (have, tag, label))
        fn = paths_file(d, "%d-%d" % (have, len(rows)), paths)
        r = wrk_run(srv, conns, secs, ["get", fn, B.TOKEN])
        rows.append(row(tag + label, have, r, hc_rate))
        if hc_rate is None:
            hc_rate = r["requests"] / (r["duration_us"] / 1e6)
    return hc_rate


def page_50(srv, base):
    """The path of the 50th page of the default listing, reached by
    following `next` from the first."""
    path = base
    for _ in range(49):
        path = srv.json("GET", path)["next"]
    return path


def row(label, have, r, hc_rate):
    secs = r["duration_us"] / 1e6
    rate = r["requests"] / secs
    errs = sum(r[k] for k in ("err_connect", "err_read", "err_write",
                              "err_status", "err_timeout"))
    return (label, have, "%.0f" % rate,
            "%.2f" % (rate / hc_rate) if hc_rate else "1",
            "%.2f" % (r["p50"] / 1000.0), "%.2f" % (r["p95"] / 1000.0),
            "%.2f" % (r["p99"] / 1000.0), "%.1f" % (r["max"] / 1000.0),
            str(errs), "%.0f%%" % (100 * r["cpu"]))


if __name__ == "__main__":
    sys.exit(main())
