"""Registering an external blob from a local static server (issue #7).

A file of BENCH_FETCH_GB GiB (default: half of BENCH_SIZE_GB, so 1 GiB) is
served by `python3 -m http.server`; an `images` artifact's `image` blob is
set to its URL (PUT with Content-Type
application/vnd+openstack.glare-custom-location+json), which makes glared
download and hash the whole file before it answers. Reported, next to
baselines measured in the same run:

  * fetch MB/s (size / duration of the PUT) vs the md5+sha1+sha256 one-pass
    ceiling over the same bytes (bench/digest.c) and a plain curl download
    of the file from the same static server;
  * the server's peak RSS (VmHWM) while fetching;
  * the latency of other API requests (healthcheck, show, list), sent one
    after the other on a keep-alive connection while the fetch runs, next
    to the same requests with the server idle.

  /usr/bin/python3 bench/fetch.py
"""
import http.client
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

LOC_CT = "application/vnd+openstack.glare-custom-location+json"


class Prober:
    """Keep-alive client timing GET healthcheck / show / list in turn."""

    def __init__(self, port, show_id):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.paths = [("healthcheck", "/healthcheck"),
                      ("show", "/artifacts/images/%s" % show_id),
                      ("list", "/artifacts/images?name=bench-other&limit=25")]
        self.h = {"X-Auth-Token": B.TOKEN}

    def once(self, out):
        for kind, path in self.paths:
            t0 = time.perf_counter()
            self.c.request("GET", path, headers=self.h)
            r = self.c.getresponse()
            r.read()
            dt = time.perf_counter() - t0
            if r.status != 200:
                raise RuntimeError("%s -> %d" % (path, r.status))
            out.setdefault(kind, []).append(dt * 1000.0)

    def run_for(self, secs):
        out, end = {}, time.time() + secs
        while time.time() < end:
            self.once(out)
        return out

    def run_while(self, busy):
        out = {}
        while busy.is_set():
            self.once(out)
        return out


def main():
    size_gb = B.env_float("BENCH_FETCH_GB",
                          B.env_float("BENCH_SIZE_GB", 2) / 2)
    size = int(size_gb * B.GiB)
    d = B.workdir("glared-bench-fetch-")
    print("== fetch: register a %.2f GiB external blob from a local static "
          "server (%s)" % (size / B.GiB, d), flush=True)

    data_dir = os.path.join(d, "static")
    os.makedirs(data_dir)
    path = os.path.join(data_dir, "ext.bin")
    B.log("writing %d bytes of test data" % size)
    B.make_file(path, size)
    exe = B.build_digest_tool(d)
    B.log("digest ceiling (md5+sha1+sha256, one pass)")
    ceiling, sha256 = B.digest_ceiling(exe, path)

    static = B.StaticServer(data_dir)
    src = static.url + "/ext.bin"
    (sp,) = B.curl(["-o", "/dev/null", "-w", "%{speed_download}", src])
    static_speed = float(sp) / 1e6

    srv_dir = os.path.join(d, "srv")
    os.makedirs(srv_dir)
    srv = B.Glared(srv_dir, {
        "external_location_allowed_networks": "127.0.0.1/32",
    })
    other = srv.json("POST", "/artifacts/images",
                     {"name": "bench-other", "version": "1.0"})
    art = srv.json("POST", "/artifacts/images",
                   {"name": "bench-fetch", "version": "1.0"})

    probe = Prober(srv.port, other["id"])
    B.log("request latency, server idle")
    idle = probe.run_for(3)
    hwm_idle = srv.hwm_kb()

    busy = threading.Event()
    busy.set()
    result = {}

    def register():
        try:
            t0 = time.time()
            st, body = srv.request(
                "PUT", "/artifacts/images/%s/image" % art["id"],
                body=json.dumps({"url": src}),
                headers={"Content-Type": LOC_CT})
            result["secs"] = time.time() - t0
            result["status"] = st
            result["body"] = body
        finally:
            busy.clear()

    rss_max = [0]

    def sample_rss():
        while busy.is_set():
            rss_max[0] = max(rss_max[0], srv.rss_kb() or 0)
            time.sleep(0.05)

    B.log("registering %s" % src)
    th = threading.Thread(target=register)
    th.start()
    ts = threading.Thread(target=sample_rss)
    ts.start()
    time.sleep(0.05)                      # let the fetch start first
    during = probe.run_while(busy)
    th.join()
    ts.join()
    hwm = srv.hwm_kb()
    if result.get("status") != 200:
        print("fetch failed: %s %s" % (result.get("status"),
                                       result.get("body", b"")[:500]))
        return 2
    blob = json.loads(result["body"])["image"]
    ok = blob.get("size") == size and blob.get("sha256") == sha256
    speed = size / result["secs"] / 1e6
    srv.stop()
    static.stop()

    rows = [
        ("fetch + hash (PUT url)", B.mb(speed), B.mb(ceiling) + " digest",
         "%.0f%%" % (100 * speed / ceiling), ">= 80%", speed >= 0.8 * ceiling),
        ("  same file, plain curl", B.mb(static_speed), "", "", "", None),
        ("server peak RSS (VmHWM)", "%.1f MB" % (hwm / 1024.0),
         "%.1f MB idle" % (hwm_idle / 1024.0), "", "< 32 MB",
         hwm < 32 * 1024),
    ]
    for kind in ("healthcheck", "show", "list"):
        b50, b99 = B.percentiles(idle[kind], (50, 99))
        d50, d99, dmax = B.percentiles(during[kind], (50, 99, 100))
        rows.append(("%s p50 during fetch" % kind, "%.2f ms" % d50,
                     "%.2f ms idle" % b50, "%.1fx" % (d50 / b50), "", None))
        rows.append(("%s p99 / max during fetch" % kind,
                     "%.2f / %.1f ms" % (d99, dmax), "%.2f ms idle" % b99,
                     "%.1fx" % (d99 / b99), "p99 < 50 ms", d99 < 50))
    rows.append(("stored size + sha256 match", "yes" if ok else "NO", "",
                 "", "yes", ok))
    missed = B.table(
        "fetch: %.2f GiB external blob, MB = 10^6 bytes" % (size / B.GiB),
        rows,
        ["fetch took %.1f s; %d probe round(s) during it (healthcheck, show, "
         "list, one after the other on one keep-alive connection), %d idle"
         % (result["secs"], len(during.get("show", [])), len(idle["show"])),
         "the 80% and 50 ms targets are the benchmark's (issue #7 asks for "
         "the figures); the RSS one is issue #6's",
         "peak VmRSS sampled every 50 ms during the fetch: %.1f MB"
         % (rss_max[0] / 1024.0)])
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
