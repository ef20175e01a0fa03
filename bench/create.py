"""Create rate with durable commits and with quotas on (issue #18).

Table 1, durability: one glared (sqlite, workers = BENCH_WORKERS, default
1) per `[database] sqlite_durability` mode, in turn, each on a fresh
database warmed with BENCH_CREATE_WARM creates (default 2000); then wrk
runs creates on BENCH_CREATE_CONNS keep-alive connections (default 8) for
BENCH_CREATE_SECS seconds (default 8):

  normal   synchronous=NORMAL: commits are not durable (a power loss can
           lose the last ones); the ceiling of the CPU
  full     synchronous=FULL: an fsync of the WAL inside every COMMIT, on
           the event loop (durable, one request at a time)
  group    the default: commits made durable by a syncer thread, many per
           fdatasync; replies wait for it (docs/storage.md)

Each row reports creates/s, wrk's latency percentiles, glared's CPU share
(100% = one core) and its CPU time per create. `fdatasync` is the same
disk's latency for one 8 KiB overwrite + fdatasync, measured in the same
run: with C connections, at most one commit per connection can share a
sync, so C / (that latency) bounds the group rate.

Table 2, quotas on: group mode, max_artifact_number = 10,000,000 and
max_uploaded_data = 1 TB (global and for the type), creates in blocks of
BENCH_QUOTA_BLOCK (default 10000) up to BENCH_QUOTA_N (default 70000);
the rate of each block must not fall as the catalogue grows. With
BENCH_BEFORE=/path/to/an/older/glared the same blocks run on that binary
too, for comparison (it gets no sqlite_durability option).

  /usr/bin/python3 bench/create.py
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

WRK_LUA = os.path.join(B.ROOT, "bench", "wrk.lua")
TYPE = "sample_artifact"


def wrk_create(srv, conns, secs, prefix, ids):
    c0 = B.proc_cpu_seconds(srv.pid)
    p = B.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--timeout",
               "60s", "-s", WRK_LUA, srv.url, "--", "create", TYPE, prefix,
               "0", "0", ids, B.TOKEN])
    cpu = B.proc_cpu_seconds(srv.pid) - c0
    for line in p.stdout.splitlines():
        if line.startswith("WRK "):
            r = json.loads(line[4:])
            r["cpu"] = cpu
            return r
    raise RuntimeError("wrk failed (%d):\n%s\n%s" %
                       (p.returncode, p.stdout, p.stderr))


def load(srv, prefix, count, conns, ids):
    """count creates by wrk on conns connections: (creates/s, CPU s)."""
    c0 = B.proc_cpu_seconds(srv.pid)
    t0 = time.time()
    p = B.run(["wrk", "-t1", "-c%d" % conns, "-d3600s", "-s", WRK_LUA,
               srv.url, "--", "create", TYPE, prefix, "0", str(count), ids,
               B.TOKEN])
    if p.returncode != 0:
        raise RuntimeError("loader failed:\n%s\n%s" % (p.stdout, p.stderr))
    dt = time.time() - t0
    return count / dt, B.proc_cpu_seconds(srv.pid) - c0


def fsync_latency(d, n=60):
    """p50 ms of an 8 KiB overwrite + fdatasync in d (what a WAL sync
    costs on this disk now)."""
    fn = os.path.join(d, "fsync.bin")
    fd = os.open(fn, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.write(fd, b"\0" * (1 << 20))
        os.fsync(fd)
        ts = []
        for i in range(n):
            os.pwrite(fd, os.urandom(8192), (i * 8192) % (1 << 20))
            t = time.perf_counter()
            os.fdatasync(fd)
            ts.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(fn)
    return B.percentiles([t * 1e3 for t in ts], (50,))[0]


def total(srv):
    return srv.json("GET", "/artifacts/%s?limit=1" % TYPE)["total_count"]


def main():
    secs = int(B.env_float("BENCH_CREATE_SECS", 8))
    conns = int(B.env_float("BENCH_CREATE_CONNS", 8))
    warm = int(B.env_float("BENCH_CREATE_WARM", 2000))
    qn = int(B.env_float("BENCH_QUOTA_N", 70000))
    block = int(B.env_float("BENCH_QUOTA_BLOCK", 10000))
    before = os.environ.get("BENCH_BEFORE")
    d = B.workdir("glared-bench-create-")
    print("== create: durable commits and quotas, %d connections (%s)"
          % (conns, d), flush=True)
    print("  load: %s" % open("/proc/loadavg").read().strip())

    rows = []
    fs = fsync_latency(d)
    for mode in ("normal", "full", "group"):
        sd = os.path.join(d, mode)
        os.makedirs(sd)
        srv = B.Glared(sd, {"database.sqlite_durability": mode})
        ids = os.path.join(sd, "ids.txt")
        B.log("%s: warm-up, %d creates" % (mode, warm))
        load(srv, "w", warm, conns, ids)
        B.log("%s: %d s of creates" % (mode, secs))
        r = wrk_create(srv, conns, secs, "c", ids)
        n = total(srv)
        srv.stop()
        wall = r["duration_us"] / 1e6
        rate = r["requests"] / wall
        errs = sum(r[k] for k in ("err_connect", "err_read", "err_write",
                                  "err_status", "err_timeout"))
        rows.append((mode, "%.0f" % rate, "%.2f" % (r["p50"] / 1e3),
                     "%.2f" % (r["p99"] / 1e3), "%.0f%%" %
                     (100 * r["cpu"] / wall),
                     "%.3f" % (1e3 * r["cpu"] / max(1, r["requests"])),
                     str(errs), str(n)))
    B.grid("create: sqlite, workers=%s, wrk -t1 -c%d, %d s per mode after "
           "%d creates" % (os.environ.get("BENCH_WORKERS") or "1", conns,
                           secs, warm),
           ("sqlite_durability", "creates/s", "p50 ms", "p99 ms", "srv CPU",
            "CPU ms/create", "errors", "artifacts"), rows,
           ["fdatasync of an 8 KiB overwrite on this disk, same run: p50 "
            "%.2f ms, so %d connections allow at most ~%.0f grouped "
            "commits/s" % (fs, conns, conns / (fs / 1e3)),
            "durable: full and group; normal may lose the last commits on "
            "a power loss",
            "load after: %s" % open("/proc/loadavg").read().strip()])

    qrows = []
    quota = {"max_artifact_number": "10000000",
             "max_uploaded_data": "1000000000000"}
    runs = [("group", B.GLARED, {"database.sqlite_durability": "group"})]
    if before:
        runs.append(("before", before, {}))
    for label, binary, opts in runs:
        sd = os.path.join(d, "quota-" + label)
        os.makedirs(sd)
        o = dict(quota)
        o.update(opts)
        # another binary may live elsewhere: this tree's types and library
        o["lua_path"] = os.path.join(B.ROOT, "lua")
        o["artifact_type:%s.max_artifact_number" % TYPE] = "10000000"
        o["artifact_type:%s.max_uploaded_data" % TYPE] = "1000000000000"
        srv = B.Glared(sd, o, binary=binary)
        ids = os.path.join(sd, "ids.txt")
        done = 0
        while done < qn:
            k = min(block, qn - done)
            B.log("quotas, %s: %d -> %d" % (label, done, done + k))
            rate, cpu = load(srv, "q%d" % done, k, conns, ids)
            qrows.append((label, "%d-%d" % (done, done + k), "%.0f" % rate,
                          "%.3f" % (1e3 * cpu / k)))
            done += k
        srv.stop()
    B.grid("create with quotas on (max_artifact_number 10M, "
           "max_uploaded_data 1 TB), wrk -c%d" % conns,
           ("binary", "artifacts", "creates/s", "CPU ms/create"), qrows,
           ["load after: %s" % open("/proc/loadavg").read().strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
