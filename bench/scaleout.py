"""The metadata and blob benchmarks on sqlite + local files and on
PostgreSQL + S3, in one run, side by side (issue #9).

Two glared nodes run at the same time, one per back end:

  sqlite+file  [database] connection = sqlite:///..., default_store = file
  PG+S3        [database] connection = postgresql://... (scripts/pg.sh:
               PostgreSQL 15 on loopback, fsync off), default_store = s3
               against OpenStack Swift's S3 API (scripts/s3.sh: Swift +
               s3api on loopback, one replica, what the project's CI runs;
               Ceph RGW, the issue's example, is not started here)

PostgreSQL and Swift are started for this benchmark on free ports and
stopped (their data removed) when it ends, also on SIGTERM/SIGINT.
After the bulk load PostgreSQL gets VACUUM ANALYZE and a CHECKPOINT (what
autovacuum and the checkpointer would do during the measured rows
otherwise). The two nodes (workers = BENCH_WORKERS, default 1) are
measured in turn, row by row, so both columns see the same machine load:

  meta   BENCH_SCALEOUT_N artifacts (default 10000) created through the API
         by wrk (bench/wrk.lua, 8 connections: the bulk-load rate), then
         healthcheck, show, four lists and create, each for BENCH_META_SECS
         seconds (default 5) on BENCH_CONNS keep-alive connections (4), as
         bench/meta.py does
  blob   one file of BENCH_SCALEOUT_GB GiB (default BENCH_SIZE_GB / 2, so
         1 GiB) uploaded with `curl -T` to an `images` artifact and
         downloaded back to /dev/null (best of 2); stored size and sha256
         checked; server peak RSS

References measured in the same run: the md5+sha1+sha256 one-pass digest
ceiling over the same file (bench/digest.c), and Swift alone: the same file
PUT to and GET from Swift with curl through its native API (one request,
no glared), i.e. what the object store manages by itself on this machine.
No targets: #9 asks for the figures.

  /usr/bin/python3 bench/scaleout.py     (BENCH_SCALEOUT_GB=0.25
                                          BENCH_SCALEOUT_N=2000 for a quick run)
"""
import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import meta as M  # noqa: E402

TYPE = M.TYPE
PG_SH = os.path.join(B.ROOT, "scripts", "pg.sh")
S3_SH = os.path.join(B.ROOT, "scripts", "s3.sh")


def script(path, action, env):
    p = subprocess.run(["sh", path, action], env=env, capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("%s %s failed (%d):\n%s%s" % (
            os.path.basename(path), action, p.returncode, p.stdout,
            p.stderr))
    return p.stdout


def start_backends():
    """Start PostgreSQL and Swift (s3api); return (pg_url, s3 settings,
    s3 state dir). Their stop is registered before their start."""
    env = dict(os.environ)
    env["GLARED_PG_PORT"] = os.environ.get("BENCH_PG_PORT") or \
        str(B.free_port())
    env["GLARED_S3_PORT"] = os.environ.get("BENCH_S3_PORT") or \
        str(B.free_port_range(5))
    B.on_exit(lambda: script(PG_SH, "stop", env))
    B.log("starting PostgreSQL on port %s (scripts/pg.sh)" %
          env["GLARED_PG_PORT"])
    t0 = time.time()
    pg_url = script(PG_SH, "start", env).split()[-1]
    B.log("  up in %.1f s: %s" % (time.time() - t0, pg_url))
    B.on_exit(lambda: script(S3_SH, "stop", env))
    B.log("starting Swift + s3api on port %s (scripts/s3.sh)" %
          env["GLARED_S3_PORT"])
    t0 = time.time()
    s3 = {}
    for line in script(S3_SH, "start", env).splitlines():
        k, _, v = line.partition("=")
        if k.startswith("GLARED_S3_"):
            s3[k[len("GLARED_S3_"):]] = v
    B.log("  up in %.1f s: %s" % (time.time() - t0, s3["ENDPOINT"]))
    return (pg_url, s3, "/tmp/glared-pg-%s" % env["GLARED_PG_PORT"],
            "/tmp/glared-s3-%s" % env["GLARED_S3_PORT"])


def children(pid):
    """Pids of pid's child processes."""
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/stat" % e) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(e))
            except (OSError, ValueError, IndexError):
                pass
    return out


def tree_cpu(pid):
    """CPU seconds of a glared and of its workers (workers > 1)."""
    return cpu_of([pid] + children(pid))


def tree_hwm_kb(pid):
    """The largest VmHWM among a glared and its workers."""
    return max(B.proc_status(p, "VmHWM") or 0 for p in [pid] + children(pid))


def pg_cpu(pg_dir):
    """CPU seconds of the PostgreSQL cluster so far: the postmaster, its
    live children (glared's backend among them) and the children it has
    reaped."""
    try:
        with open(os.path.join(pg_dir, "data", "postmaster.pid")) as f:
            pm = int(f.readline())
    except (OSError, ValueError):
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    t = 0.0
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(e), int(fields[1])
        if pid == pm:
            t += sum(int(x) for x in fields[11:15]) / hz
        elif ppid == pm:
            t += (int(fields[11]) + int(fields[12])) / hz
    return t


def swift_pids(s3_dir):
    pids = []
    for n in ("proxy", "object", "container", "account", "memcached"):
        try:
            with open(os.path.join(s3_dir, n + ".pid")) as f:
                pids.append(int(f.read().strip()))
        except (OSError, ValueError):
            pass
    return pids


def cpu_of(pids):
    t = 0.0
    for p in pids:
        try:
            t += B.proc_cpu_seconds(p)
        except OSError:
            pass
    return t


class Swift:
    """The Swift endpoint through its own API (tempauth): the object
    store alone, without glared."""

    def __init__(self, s3):
        acct_user = s3["ACCESS_KEY"]
        out = subprocess.run(
            ["curl", "-sS", "--fail", "-D", "-", "-o", "/dev/null",
             "-H", "X-Auth-User: " + acct_user,
             "-H", "X-Auth-Key: " + s3["SECRET_KEY"],
             s3["ENDPOINT"] + "/auth/v1.0"],
            check=True, capture_output=True, text=True).stdout
        hdr = {}
        for line in out.splitlines():
            k, _, v = line.partition(":")
            hdr[k.strip().lower()] = v.strip()
        self.token = hdr["x-auth-token"]
        self.url = "%s/%s" % (hdr["x-storage-url"], s3["BUCKET"])

    def put(self, path, name):
        sp, code = B.curl(["-H", "X-Auth-Token: " + self.token, "-T", path,
                           "-o", "/dev/null", "-w",
                           "%{speed_upload} %{http_code}",
                           "%s/%s" % (self.url, name)])
        return float(sp) / 1e6

    def get(self, name, size):
        sp, n = B.curl(["-H", "X-Auth-Token: " + self.token, "-o",
                        "/dev/null", "-w", "%{speed_download} %{size_download}",
                        "%s/%s" % (self.url, name)])
        if int(n) != size:
            raise RuntimeError("Swift GET returned %s bytes, not %d" %
                               (n, size))
        return float(sp) / 1e6

    def delete(self, name):
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-X", "DELETE",
                        "-H", "X-Auth-Token: " + self.token,
                        "%s/%s" % (self.url, name)], check=False)


class Node:
    """One glared with its back end. store_cpu: a function returning the
    CPU seconds of PostgreSQL + Swift so far (for the sqlite+file node:
    to check that they idle meanwhile)."""

    def __init__(self, label, srv, d, store_cpu=None):
        self.label, self.srv, self.dir = label, srv, d
        self.store_cpu = store_cpu
        self.ids_file = os.path.join(d, "ids.txt")
        open(self.ids_file, "w").close()
        self.res = {}
        self.have = 0

    def timed(self, fn):
        """Run fn(); return (its result, seconds, glared CPU share, store
        CPU share or None)."""
        c0 = tree_cpu(self.srv.pid)
        s0 = self.store_cpu() if self.store_cpu else None
        t0 = time.time()
        r = fn()
        dt = time.time() - t0
        cpu = (tree_cpu(self.srv.pid) - c0) / dt
        st = (self.store_cpu() - s0) / dt if self.store_cpu else None
        return r, dt, cpu, st


def meta_rows(nodes, n, secs, conns, pg_url):
    """Fill every node to n artifacts, then run each request kind on each
    node in turn; results go to node.res[label]."""
    bulk = "bulk load (wrk -c%d)" % M.LOAD_CONNS
    for nd in nodes:
        B.log("%s: loading %d artifacts" % (nd.label, n))
        have = M.total(nd.srv)
        rate, dt, cpu, st = nd.timed(
            lambda: M.load(nd.srv, have, n - have, nd.ids_file))
        nd.res[bulk] = {"rate": rate, "unit": "/s", "cpu": cpu,
                        "store": st, "have": "%d->%d" % (have, n)}
        nd.have = M.total(nd.srv)      # wrk may overshoot by a few
        if nd.have < n:
            raise RuntimeError("%s: %d artifacts after loading, not %d" %
                               (nd.label, nd.have, n))
    # PostgreSQL's planner statistics: autovacuum would ANALYZE the new
    # rows within its naptime (1 min); do it now so that the rows below do
    # not depend on when it happens to run
    # (VACUUM too, and a checkpoint: autovacuum would otherwise vacuum
    # the freshly inserted rows, and the checkpointer flush them, during
    # the measured rows of either node)
    B.log("VACUUM ANALYZE + CHECKPOINT on PostgreSQL")
    subprocess.run(["psql", "-X", "-q", pg_url, "-c", "VACUUM ANALYZE"],
                   check=True, capture_output=True, timeout=300)
    admin = pg_url.replace("//glared@", "//postgres@", 1)
    subprocess.run(["psql", "-X", "-q", admin, "-c", "CHECKPOINT"],
                   check=True, capture_output=True, timeout=300)
    rnd = random.Random(42)
    base = "/artifacts/%s" % TYPE
    K = 2000
    kinds = [
        ("healthcheck", lambda ids: ["/healthcheck"]),
        ("show", lambda ids: ["%s/%s" % (base, rnd.choice(ids))
                              for _ in range(K)]),
        ("list name=eq (1 match)",
         lambda ids: ["%s?name=load-%d" % (base, rnd.randrange(n))
                      for _ in range(K)]),
        ("list int1=eq, sort created_at",
         lambda ids: ["%s?int1=eq:%d&sort=created_at:desc" %
                      (base, rnd.randrange(1000)) for _ in range(K)]),
        ("list str1=eq, sort int1",
         lambda ids: ["%s?str1=eq:s%d&sort=int1:asc" %
                      (base, rnd.randrange(100)) for _ in range(K)]),
        ("list status=drafted (all)",
         lambda ids: ["%s?status=drafted&sort=created_at:desc" % base]),
    ]
    for label, mk in kinds:
        for nd in nodes:
            with open(nd.ids_file) as f:
                ids = [x for x in f.read().split() if x]
            B.log("%s: %s" % (nd.label, label))
            fn = M.paths_file(nd.dir, "so-%d" % len(nd.res), mk(ids))
            r, _, cpu, st = nd.timed(
                lambda: M.wrk_run(nd.srv, conns, secs, ["get", fn, B.TOKEN]))
            nd.res[label] = wrk_res(r, nd.have, cpu, st)
    for nd in nodes:
        B.log("%s: create" % nd.label)
        r, _, cpu, st = nd.timed(lambda: M.wrk_run(
            nd.srv, conns, secs,
            ["create", TYPE, "c", "0", "0",
             os.path.join(nd.dir, "ids-create.txt"), B.TOKEN]))
        nd.res["create"] = wrk_res(r, "%d+" % nd.have, cpu, st)
    return [bulk] + [k for k, _ in kinds] + ["create"]


def wrk_res(r, have, cpu, store):
    secs = r["duration_us"] / 1e6
    errs = sum(r[k] for k in ("err_connect", "err_read", "err_write",
                              "err_status", "err_timeout"))
    return {"rate": r["requests"] / secs, "p50": r["p50"] / 1000.0,
            "p99": r["p99"] / 1000.0, "cpu": cpu, "errors": errs,
            "have": have, "store": store}


def blob_rows(nodes, path, size, sha256):
    """Upload and download the file through each node."""
    hdr = ["-H", "X-Auth-Token: " + B.TOKEN]
    up_k, down_k = "blob upload (curl -T)", "blob download (curl)"
    for nd in nodes:
        srv = nd.srv
        art = srv.json("POST", "/artifacts/images",
                       {"name": "bench-scaleout", "version": "1.0"})
        url = "%s/artifacts/images/%s/image" % (srv.url, art["id"])
        B.log("%s: upload" % nd.label)
        _, dt, cpu, st = nd.timed(lambda: B.curl(
            hdr + ["-H", "Content-Type: application/octet-stream",
                   "-T", path, "-o", "/dev/null", "-w", "%{http_code}", url]))
        nd.res[up_k] = {"rate": size / dt / 1e6, "unit": "MB/s",
                        "cpu": cpu, "store": st}
        blob = srv.json("GET", "/artifacts/images/%s" % art["id"])["image"]
        ok = bool(blob) and blob.get("status") == "active" and \
            blob.get("size") == size and blob.get("sha256") == sha256
        for i in range(2):
            B.log("%s: download %d" % (nd.label, i + 1))
            (got,), dt, cpu, st = nd.timed(lambda: B.curl(
                hdr + ["-o", "/dev/null", "-w", "%{size_download}", url]))
            ok = ok and int(got) == size
            r = {"rate": size / dt / 1e6, "unit": "MB/s", "cpu": cpu,
                 "store": st}
            if down_k not in nd.res or r["rate"] > nd.res[down_k]["rate"]:
                nd.res[down_k] = r
        nd.res["blob size + sha256"] = {"ok": ok}
        nd.res["server peak RSS (VmHWM)"] = {"hwm": tree_hwm_kb(srv.pid)}
        if not ok:
            raise RuntimeError("%s: stored blob does not match: %s" %
                               (nd.label, blob))
    return [up_k, down_k, "server peak RSS (VmHWM)", "blob size + sha256"]


def cells(r, store_col):
    """(rate, p50, p99, CPU[, store CPU]) cells of one node's result."""
    pct = lambda x: "" if x is None else "%.0f%%" % (100 * x)  # noqa: E731
    if r is None:
        c = ("-", "", "", "", "")
    elif "ok" in r:
        c = ("yes" if r["ok"] else "NO", "", "", "", "")
    elif "hwm" in r:
        c = ("%.1f MB" % (r["hwm"] / 1024.0), "", "", "", "")
    elif "p50" in r:
        rate = "%.0f/s" % r["rate"]
        if r.get("errors"):
            rate += " (%d err)" % r["errors"]
        c = (rate, "%.2f" % r["p50"], "%.2f" % r["p99"], pct(r["cpu"]),
             pct(r.get("store")))
    else:
        c = ("%.0f %s" % (r["rate"], r["unit"]), "", "", pct(r["cpu"]),
             pct(r.get("store")))
    return c if store_col else c[:4]


def main():
    n = int(B.env_float("BENCH_SCALEOUT_N", 10000))
    size_gb = B.env_float("BENCH_SCALEOUT_GB",
                          B.env_float("BENCH_SIZE_GB", 2) / 2)
    size = int(size_gb * B.GiB)
    secs = int(B.env_float("BENCH_META_SECS", 5))
    conns = int(B.env_float("BENCH_CONNS", 4))
    d = B.workdir("glared-bench-scaleout-")
    print("== scaleout: sqlite+file vs PostgreSQL+S3 (Swift s3api), %d "
          "artifacts, %.2f GiB blob, %d s per row, %d connections (%s)" %
          (n, size / B.GiB, secs, conns, d), flush=True)

    data_dir = os.path.join(d, "data")
    os.makedirs(data_dir)
    path = os.path.join(data_dir, "blob.bin")
    B.log("writing %d bytes of test data" % size)
    B.make_file(path, size)
    exe = B.build_digest_tool(d)
    ceiling, sha256 = B.digest_ceiling(exe, path)

    pg_url, s3, pg_dir, s3_dir = start_backends()
    swift_p = swift_pids(s3_dir)

    nodes = []
    for label, opts, store_cpu in [
            ("sqlite+file", {}, lambda: pg_cpu(pg_dir) + cpu_of(swift_p)),
            ("PG+S3", {
                "database.connection": pg_url,
                "glance_store.default_store": "s3",
                "glance_store.s3_store_host": s3["ENDPOINT"],
                "glance_store.s3_store_region": s3["REGION"],
                "glance_store.s3_store_bucket": s3["BUCKET"],
                "glance_store.s3_store_access_key": s3["ACCESS_KEY"],
                "glance_store.s3_store_secret_key": s3["SECRET_KEY"],
                "glance_store.s3_store_prefix": "bench/",
            }, lambda: pg_cpu(pg_dir) + cpu_of(swift_p))]:
        nd_dir = os.path.join(d, label.replace("+", "-"))
        os.makedirs(nd_dir)
        nd = Node(label, B.Glared(nd_dir, opts), nd_dir, store_cpu)
        nodes.append(nd)
        B.log("%s: glared pid %d on %s" % (label, nd.srv.pid, nd.srv.url))

    order = meta_rows(nodes, n, secs, conns, pg_url)
    order += blob_rows(nodes, path, size, sha256)

    # the object store alone, same file, same client
    sw = Swift(s3)
    B.log("Swift alone: PUT + 2 GETs")
    c0, t0 = cpu_of(swift_p), time.time()
    sw_up = sw.put(path, "bench-swift-alone")
    sw_up_cpu = (cpu_of(swift_p) - c0) / (time.time() - t0)
    c0, t0 = cpu_of(swift_p), time.time()
    sw_down = max(sw.get("bench-swift-alone", size) for _ in range(2))
    sw_down_cpu = (cpu_of(swift_p) - c0) / (time.time() - t0)
    sw.delete("bench-swift-alone")

    for nd in nodes:
        nd.srv.stop()

    a, b = nodes
    # PG and Swift should idle while the sqlite+file node is measured
    bg = max([r["store"] for r in a.res.values()
              if r.get("store") is not None] or [0])
    rows = []
    for k in order:
        ra, rb = a.res.get(k), b.res.get(k)
        have = str((ra or {}).get("have", ""))
        if rb and str(rb.get("have", "")) != have:
            have += "/%s" % rb["have"]
        if k.startswith("blob up") or k.startswith("blob down"):
            have = "%.2f GiB" % (size / B.GiB)
        ratio = ""
        if ra and rb and "rate" in ra and "rate" in rb and ra["rate"]:
            ratio = "%.2f" % (rb["rate"] / ra["rate"])
        rows.append((k, have) + cells(ra, False) + cells(rb, True) +
                    (ratio,))
    up_a = a.res["blob upload (curl -T)"]
    up_b = b.res["blob upload (curl -T)"]
    B.grid("scaleout: %s vs %s, one glared node each (workers=%s), "
           "wrk -t1 -c%d, %d s per row, latency in ms, MB = 10^6 bytes" %
           (a.label, b.label, os.environ.get("BENCH_WORKERS") or "1",
            conns, secs),
           ("operation", "size", a.label, "p50", "p99", "CPU",
            b.label, "p50", "p99", "CPU", "PG/Swift CPU", "PG+S3/sqlite"),
           rows,
           ["PG+S3 = PostgreSQL 15 (scripts/pg.sh, loopback TCP, fsync "
            "off; VACUUM ANALYZE after the bulk load) + OpenStack Swift s3api "
            "(scripts/s3.sh, one replica)",
            "CPU = glared's CPU time over the row's wall time (100%% = one "
            "core, workers included); PG/Swift CPU = the same for the PostgreSQL and Swift "
            "processes (at most %.0f%% while the sqlite+file rows ran); "
            "bulk load: wrk on %d connections" % (100 * bg, M.LOAD_CONNS),
            "upload vs the md5+sha1+sha256 digest ceiling (%s, "
            "bench/digest.c): %s %.0f%%, %s %.0f%%" %
            (B.mb(ceiling), a.label, 100 * up_a["rate"] / ceiling, b.label,
             100 * up_b["rate"] / ceiling),
            "Swift alone (curl through Swift's own API, one PUT / best of "
            "2 GETs of the same file, no glared): up %s (Swift CPU %.0f%%), "
            "down %s (Swift CPU %.0f%%)" % (B.mb(sw_up), 100 * sw_up_cpu,
                                            B.mb(sw_down),
                                            100 * sw_down_cpu)])
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--ports"]:
        # for bench/run.sh: ports for PostgreSQL and Swift, chosen up front
        # so that its own exit trap can stop them too
        s3p = B.free_port_range(5)
        pgp = B.free_port()
        while s3p <= pgp < s3p + 5:
            pgp = B.free_port()
        print(pgp, s3p)
        sys.exit(0)
    try:
        sys.exit(main())
    except Exception as e:           # 2: the benchmark could not run
        import traceback
        traceback.print_exc()
        print("scaleout: %s" % e, file=sys.stderr)
        sys.exit(2)
