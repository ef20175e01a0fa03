#!/usr/bin/python3
"""pgwait.py - PostgreSQL behind a slow network: does a worker wait?

PostgreSQL (scripts/pg.sh) is reached through scripts/delayproxy.py, which
delays every byte by BENCH_PG_DELAY_MS (default 1 ms) each way, so every
round trip costs 2 ms more. One glared worker on that database is driven
by wrk (bench/wrk.lua) with BENCH_PG_CONNS (default 32) keep-alive
connections, BENCH_PG_SECS (default 5) seconds per row, for each request
kind: healthcheck (no database: the same-run baseline), show, list and
create, over BENCH_PG_N (default 1000) artifacts. Three configurations of
the same build, one after the other on the same database:

  blocking   [database] blocking_queries = true: every statement waits on
             the worker's loop (how glared worked before coroutines)
  pool 5     the default: requests run in coroutines and wait off the
             loop, up to max_pool_size = 5 connections
  pool 16    the same with max_pool_size = 16

Prints req/s and latency percentiles (ms) per configuration and the ratio
to blocking. Needs PostgreSQL 15 (Debian), wrk. Run: bench/run.sh pgwait.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import meta as M  # noqa: E402
import scaleout as S  # noqa: E402

TYPE = M.TYPE
PROXY = os.path.join(B.ROOT, "scripts", "delayproxy.py")


def start_pg():
    env = dict(os.environ)
    env["GLARED_PG_PORT"] = os.environ.get("BENCH_PG_PORT") or \
        str(B.free_port())
    B.on_exit(lambda: S.script(S.PG_SH, "stop", env))
    B.log("starting PostgreSQL on port %s (scripts/pg.sh)" %
          env["GLARED_PG_PORT"])
    url = S.script(S.PG_SH, "start", env).split()[-1]
    return url, int(env["GLARED_PG_PORT"])


def start_proxy(target_port, delay_ms):
    port = B.free_port()
    p = subprocess.Popen([sys.executable, PROXY, str(port),
                          str(target_port), str(delay_ms)],
                         stdout=subprocess.PIPE, text=True)
    B.on_exit(lambda: B._stop_proc(p))
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError("delayproxy did not start")
    return port


def new_database(url):
    name = "bench_pgwait_%d" % os.getpid()
    B.run(["psql", "-X", "-q", url, "-c", "DROP DATABASE IF EXISTS %s" %
           name])
    p = B.run(["psql", "-X", "-q", url, "-c", "CREATE DATABASE %s" % name])
    if p.returncode != 0:
        raise RuntimeError("CREATE DATABASE: %s" % p.stderr)
    return name


def main():
    delay = B.env_float("BENCH_PG_DELAY_MS", 1)
    conns = int(B.env_float("BENCH_PG_CONNS", 32))
    secs = int(B.env_float("BENCH_PG_SECS", 5))
    n = int(B.env_float("BENCH_PG_N", 1000))
    d = B.workdir("glared-bench-pgwait-")
    print("== pgwait: PostgreSQL behind +%g ms each way, %d connections, "
          "%d s per row, %d artifacts (%s)" % (delay, conns, secs, n, d),
          flush=True)
    url, pg_port = start_pg()
    db = new_database(url)
    proxy_port = start_proxy(pg_port, delay)
    slow_url = "postgresql://glared@127.0.0.1:%d/%s" % (proxy_port, db)
    configs = [("blocking", {"database.blocking_queries": "true"}),
               ("pool 5", {}),
               ("pool 16", {"database.max_pool_size": 16})]
    ids_file = os.path.join(d, "ids.txt")
    open(ids_file, "w").close()
    results = {}
    base = "/artifacts/%s" % TYPE
    for ci, (label, opts) in enumerate(configs):
        sd = os.path.join(d, "srv%d" % ci)
        os.makedirs(sd)
        o = {"database.connection": slow_url}
        o.update(opts)
        srv = B.Glared(sd, o)
        if ci == 0:
            B.log("loading %d artifacts" % n)
            M.load(srv, 0, n, ids_file)
        with open(ids_file) as f:
            ids = [x for x in f.read().split() if x][:n]
        runs = [
            ("healthcheck (baseline)", ["get", M.paths_file(
                d, "hc", ["/healthcheck"]), B.TOKEN]),
            ("show", ["get", M.paths_file(
                d, "show", ["%s/%s" % (base, ids[i % len(ids)])
                            for i in range(2000)]), B.TOKEN]),
            ("list int1=eq, sort created_at", ["get", M.paths_file(
                d, "list", ["%s?int1=eq:%d&sort=created_at:desc&limit=20"
                            % (base, i % 1000) for i in range(2000)]),
                B.TOKEN]),
            ("create", ["create", TYPE, "c%d" % ci, "0", "0",
                        os.path.join(d, "ids-c.txt"), B.TOKEN]),
        ]
        for op, args in runs:
            B.log("%s: %s" % (label, op))
            results[(label, op)] = M.wrk_run(srv, conns, secs, args)
        srv.stop()
    rows = []
    for op in [r[0] for r in runs]:
        blk = results[("blocking", op)]
        brate = blk["requests"] / (blk["duration_us"] / 1e6)
        row = [op]
        for label, _ in configs:
            r = results[(label, op)]
            rate = r["requests"] / (r["duration_us"] / 1e6)
            errs = sum(r[k] for k in ("err_connect", "err_read", "err_write",
                                      "err_status", "err_timeout"))
            row += ["%.0f" % rate, "%.2f" % (rate / brate),
                    "%.1f/%.1f" % (r["p50"] / 1000.0, r["p99"] / 1000.0)]
            if errs:
                row[-1] += " (%d err)" % errs
        rows.append(row)
    head = ["operation"]
    for label, _ in configs:
        head += [label + " req/s", "x", "p50/p99 ms"]
    B.grid("pgwait: one worker, PostgreSQL +%g ms each way (round trip +%g "
           "ms), wrk -t1 -c%d, %d s per row" % (delay, 2 * delay, conns, secs),
           head, rows,
           ["x = req/s relative to blocking in the same run; healthcheck "
            "reads no database and is the baseline",
            "blocking = [database] blocking_queries = true (the loop waits "
            "for every statement); pool N = coroutines, max_pool_size = N",
            "list pages are limit=20 of ~1 match per int1 value"])
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    B.log("pgwait: %.0f s" % (time.time() - t0))
    sys.exit(rc)
