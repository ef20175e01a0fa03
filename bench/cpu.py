"""Server CPU per request as instruction counts (callgrind), issue #18.

Wall-clock CPU shares move with whatever else runs on the machine;
instruction counts do not. glared (sqlite, quotas on: max_artifact_number
and max_uploaded_data set) is filled through the API to BENCH_CPU_N
artifacts (default 1000) by wrk, then restarted under
`valgrind --tool=callgrind --instr-atstart=no`; instrumentation is
switched on for BENCH_CPU_COUNT requests (default 100) of each kind, sent
one after the other on a keep-alive connection, and the instructions
executed in glared (every thread) are divided by the count:

  healthcheck   GET /healthcheck (the HTTP layer alone: the baseline)
  show          GET /artifacts/sample_artifact/<id>
  list          GET ...?str1=eq:s<k>&sort=int1:desc (the issue's
                side-by-side workload: a custom-string filter, a custom
                sort, ~N/100 matches)
  create        POST /artifacts/sample_artifact (quota checks included)

With BENCH_BEFORE=/path/to/another/glared the same runs on that binary
(same types and Lua library, its own fresh data) give a second column.
Instructions are not time: at ~1-2 instructions per ns on the dev
machine, 1M instructions are 0.5-1 ms.

  /usr/bin/python3 bench/cpu.py
"""
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

WRK_LUA = os.path.join(B.ROOT, "bench", "wrk.lua")
TYPE = "sample_artifact"


def measure(binary, d, n, count):
    opts = {"lua_path": os.path.join(B.ROOT, "lua"),
            "max_artifact_number": "10000000",
            "max_uploaded_data": "1000000000000"}
    srv = B.Glared(d, opts, binary=binary)
    ids = os.path.join(d, "ids.txt")
    p = B.run(["wrk", "-t1", "-c8", "-d3600s", "-s", WRK_LUA, srv.url,
               "--", "create", TYPE, "load", "0", str(n), ids, B.TOKEN])
    if p.returncode != 0:
        raise RuntimeError("loader failed: %s" % p.stderr)
    srv.stop()
    with open(ids) as f:
        some_id = f.read().split()[0]
    out = os.path.join(d, "callgrind.out")
    vg = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         "--callgrind-out-file=" + out, binary or B.GLARED, "serve",
         "--config-file", srv.conf],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(d, "valgrind.log"), "w"))
    B.on_exit(lambda: vg.poll() is None and vg.kill())
    deadline = time.time() + 120
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
            c.request("GET", "/healthcheck")
            c.getresponse().read()
            break
        except OSError:
            if time.time() > deadline or vg.poll() is not None:
                raise RuntimeError("glared under valgrind did not start")
            time.sleep(0.2)
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    hdr = {"X-Auth-Token": B.TOKEN, "Content-Type": "application/json"}
    base = "/artifacts/%s" % TYPE
    kinds = [
        ("healthcheck", lambda i: ("GET", "/healthcheck", None)),
        ("show", lambda i: ("GET", "%s/%s" % (base, some_id), None)),
        ("list str1=eq, sort int1", lambda i: (
            "GET", "%s?str1=eq:s%d&sort=int1:desc" % (base, i % 100),
            None)),
        ("create", lambda i: ("POST", base, json.dumps(
            {"name": "cpu-%d" % i, "version": "1.0", "int1": i % 1000,
             "int2": i, "str1": "s%d" % (i % 100), "bool1": True,
             "tags": ["t%d" % (i % 10)]}))),
    ]
    res = {}
    last = 0
    for k, (label, mk) in enumerate(kinds):
        def send(i):
            m, path, body = mk(i)
            c.request(m, path, body=body, headers=hdr)
            r = c.getresponse()
            data = r.read()
            if r.status not in (200, 201):
                raise RuntimeError("%s %s -> %d %s" % (m, path, r.status,
                                                       data[:200]))
        for i in range(3):
            send(100000 * k + i)            # warm caches and statements
        subprocess.run(["callgrind_control", "-i", "on", str(vg.pid)],
                       capture_output=True)
        for i in range(count):
            send(100000 * k + 10 + i)
        subprocess.run(["callgrind_control", "-i", "off", str(vg.pid)],
                       capture_output=True)
        subprocess.run(["callgrind_control", "-d", str(vg.pid)],
                       capture_output=True)
        tot = 0
        for fn in glob.glob(out + "*"):
            with open(fn) as f:
                for line in f:
                    if line.startswith("totals:"):
                        tot += int(line.split()[1])
        res[label] = (tot - last) / count
        last = tot
    vg.send_signal(signal.SIGTERM)
    vg.wait()
    return [label for label, _ in kinds], res


def main():
    n = int(B.env_float("BENCH_CPU_N", 1000))
    count = int(B.env_float("BENCH_CPU_COUNT", 100))
    before = os.environ.get("BENCH_BEFORE")
    d = B.workdir("glared-bench-cpu-")
    print("== cpu: instructions per request under callgrind, %d artifacts, "
          "%d requests per kind (%s)" % (n, count, d), flush=True)
    runs = [("glared", None)] + ([("before", before)] if before else [])
    cols = {}
    labels = []
    for name, binary in runs:
        sd = os.path.join(d, name)
        os.makedirs(sd)
        B.log("%s: load %d, then callgrind" % (name, n))
        labels, cols[name] = measure(binary, sd, n, count)
    rows = []
    for label in labels:
        r = [label, "%.0f" % cols["glared"][label]]
        if before:
            r += ["%.0f" % cols["before"][label],
                  "%.2f" % (cols["glared"][label] / cols["before"][label])]
        rows.append(r)
    head = ["request", "Ir/request"]
    if before:
        head += ["before", "ratio"]
    B.grid("cpu: glared instructions per request (callgrind), sqlite, "
           "quotas on, %d artifacts" % n, head, rows,
           ["load: %s (instruction counts do not depend on it)"
            % open("/proc/loadavg").read().strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
