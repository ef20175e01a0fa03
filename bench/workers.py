"""Show and list with workers = 1 against workers = 2, CPU-pinned (#18).

The #18 target: `workers = 2` serves >= 1.7x the one-worker rate on reads
when the client runs elsewhere, measured with the client pinned to one
core and the server to another. On a machine with at least three cores
that is configuration `apart` with BENCH_WORKERS_SRV_CPUS naming two
cores the client does not use. With two cores (`nproc`), a server with
two cores of its own and a client on a third cannot be arranged, so each
configuration below says what it can show:

  apart    server on BENCH_WORKERS_SRV_CPUS (default: every core but the
           client's), client on BENCH_WORKERS_CLI_CPU (default 0). With
           two cores the server gets one: workers = 2 cannot be faster,
           and the ratio shows what a second worker costs on a shared core
  shared   server on every core, client on one of them: workers = 2 gets
           the other core whole and shares the client's, so the ratio is
           bounded by the client's own use of that core

glared (sqlite) is started through `taskset -c` (its workers inherit the
mask), wrk (-t1, BENCH_WORKERS_CONNS connections, default 16, so that
SO_REUSEPORT spreads them over both workers) through `taskset -c` too.
BENCH_WORKERS_N artifacts (default 2000) are loaded once; each
configuration then starts a workers = 1 and a workers = 2 glared, each
on its own copy of the data, and runs BENCH_WORKERS_ROUNDS rounds
(default 3; best kept) of every request kind for BENCH_WORKERS_SECS
seconds (default 5) on one server and at once on the other (the order
alternating by round), so the two figures of a row are seconds apart:

  healthcheck   the baseline: what the client and the HTTP layer manage
  show          GET /artifacts/sample_artifact/<random id>
  list page     the default listing: a page of 25 and total_count
  list int1=eq  a custom-property filter with sort=created_at

Reported per row: req/s with each worker count and their ratio; the
server's CPU (master and workers) per request, and the share of it each
worker did (balance). "CPU-bound 2 cores" = 2 x (CPU/req with one worker)
/ (CPU/req with two): the ratio two workers would reach with two cores of
their own and a client that keeps up, if the per-request cost seen here
holds (a projection from measured CPU, not a measured rate).

  /usr/bin/python3 bench/workers.py
"""
import json
import os
import random
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import meta as M  # noqa: E402

TYPE = "sample_artifact"


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree_cpu(pid):
    """{pid: CPU seconds} of a process and its children."""
    r = {}
    for p in [pid] + children(pid):
        try:
            r[p] = B.proc_cpu_seconds(p)
        except OSError:
            pass
    return r


def wrapper(d, cpus):
    """A script that runs GLARED pinned to cpus (exec: same pid)."""
    fn = os.path.join(d, "glared-on-%s" % cpus.replace(",", "_"))
    with open(fn, "w") as f:
        f.write('#!/bin/sh\nexec taskset -c %s "%s" "$@"\n' % (cpus,
                                                             B.GLARED))
    os.chmod(fn, 0o755)
    return fn


def wrk(srv, cli_cpu, conns, secs, paths_file):
    c0 = tree_cpu(srv.pid)
    p = B.run(["taskset", "-c", cli_cpu, "wrk", "-t1", "-c%d" % conns,
               "-d%ds" % secs, "--timeout", "30s", "-s", M.WRK_LUA, srv.url,
               "--", "get", paths_file, B.TOKEN])
    c1 = tree_cpu(srv.pid)
    for line in p.stdout.splitlines():
        if line.startswith("WRK "):
            r = json.loads(line[4:])
            errs = sum(r[k] for k in ("err_connect", "err_read",
                                      "err_write", "err_status",
                                      "err_timeout"))
            if errs:
                raise RuntimeError("%d errors in %s" % (errs, paths_file))
            per = {p: c1[p] - c0.get(p, 0) for p in c1}
            return {"rate": r["requests"] / (r["duration_us"] / 1e6),
                    "n": r["requests"], "cpu": sum(per.values()),
                    "workers": sorted((v for p, v in per.items()
                                       if p != srv.pid), reverse=True)}
    raise RuntimeError("wrk failed (%d):\n%s\n%s" %
                       (p.returncode, p.stdout, p.stderr))


def main():
    ncpu = os.cpu_count()
    n = int(B.env_float("BENCH_WORKERS_N", 2000))
    secs = int(B.env_float("BENCH_WORKERS_SECS", 5))
    conns = int(B.env_float("BENCH_WORKERS_CONNS", 16))
    rounds = int(B.env_float("BENCH_WORKERS_ROUNDS", 3))
    cli = os.environ.get("BENCH_WORKERS_CLI_CPU", "0")
    apart = os.environ.get("BENCH_WORKERS_SRV_CPUS") or ",".join(
        str(c) for c in range(ncpu) if str(c) != cli)
    every = ",".join(str(c) for c in range(ncpu))
    d = B.workdir("glared-bench-workers-")
    print("== workers: show/list, workers=1 vs 2, %d vCPU, %d artifacts "
          "(%s)" % (ncpu, n, d), flush=True)
    print("  load: %s" % open("/proc/loadavg").read().strip(), flush=True)

    srv_dir = os.path.join(d, "srv")
    os.makedirs(srv_dir)
    srv = B.Glared(srv_dir, {"workers": 1})
    ids_file = os.path.join(d, "ids.txt")
    B.log("loading %d artifacts" % n)
    M.load(srv, 0, n, ids_file)
    srv.stop()
    with open(ids_file) as f:
        ids = [x for x in f.read().split() if x]
    rnd = random.Random(18)
    base = "/artifacts/" + TYPE
    kinds = [
        ("healthcheck (baseline)", ["/healthcheck"]),
        ("show", ["%s/%s" % (base, rnd.choice(ids)) for _ in range(2000)]),
        ("list page (25 + total)", [base]),
        ("list int1=eq, sort created_at",
         ["%s?int1=eq:%d&sort=created_at:desc" % (base, rnd.randrange(1000))
          for _ in range(2000)]),
    ]
    files = [M.paths_file(d, "k%d" % i, p) for i, (_, p) in enumerate(kinds)]

    # one copy of the data per worker count, both servers up at once, so
    # that the two figures of a row are measured seconds apart (the load
    # of a shared machine drifts over minutes)
    dirs = {}
    for w in (1, 2):
        dirs[w] = os.path.join(d, "srv-w%d" % w)
        shutil.copytree(srv_dir, dirs[w], ignore=shutil.ignore_patterns(
            "glared.log", "glare.conf", "types"))
    configs = [("apart", apart, cli), ("shared", every, cli)]
    best = {}
    for cname, scpus, ccpu in configs:
        wrap = wrapper(d, scpus)
        srvs = {w: B.Glared(dirs[w], {"workers": w}, binary=wrap)
                for w in (1, 2)}
        for rd in range(rounds):
            B.log("%s (server on %s, client on %s), round %d" %
                  (cname, scpus, ccpu, rd + 1))
            for k, fn in enumerate(files):
                for w in ((1, 2) if rd % 2 == 0 else (2, 1)):
                    r = wrk(srvs[w], ccpu, conns, secs, fn)
                    key = (cname, k, w)
                    if key not in best or r["rate"] > best[key]["rate"]:
                        best[key] = r
        for s in srvs.values():
            s.stop()

    rows = []
    for cname, scpus, ccpu in configs:
        for k, (label, _) in enumerate(kinds):
            a, b = best[(cname, k, 1)], best[(cname, k, 2)]
            c1, c2 = a["cpu"] / a["n"], b["cpu"] / b["n"]
            split = "/".join("%.0f" % (100 * v / max(1e-9, sum(b["workers"])))
                             for v in b["workers"])
            rows.append(("%s: srv %s, cli %s" % (cname, scpus, ccpu), label,
                         "%.0f" % a["rate"], "%.0f" % b["rate"],
                         "%.2fx" % (b["rate"] / a["rate"]),
                         "%.0f" % (1e6 * c1), "%.0f" % (1e6 * c2),
                         "%.0f%%" % (100 * b["cpu"] / secs), split,
                         "%.2fx" % (2 * c1 / c2)))
    B.grid("workers: wrk -t1 -c%d, %d s per row, best of %d rounds; "
           "target workers=2 >= 1.7x workers=1 on reads, server and client "
           "on separate cores" % (conns, secs, rounds),
           ("config", "request", "w=1 req/s", "w=2 req/s", "ratio",
            "w=1 CPU us/req", "w=2 CPU us/req", "w=2 srv CPU",
            "w=2 split %", "CPU-bound 2 cores"), rows,
           ["CPU = glared's master + workers (user + system); srv CPU: 100% "
            "= one core busy; split: each worker's share of that CPU",
            "CPU-bound 2 cores = 2 x (w=1 CPU/req) / (w=2 CPU/req): a "
            "projection from the measured cost, not a measured rate",
            "%d vCPU: %s" % (ncpu, "the server cannot have two cores while "
                             "the client has its own, the target is not "
                             "judgeable here" if ncpu < 3 else
                             "`apart` is the target's configuration"),
            "load after: %s" % open("/proc/loadavg").read().strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
