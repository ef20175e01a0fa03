"""Blob upload and download over loopback (issues #6 and #18).

For each size in BENCH_BLOB_SIZES (GiB, default "0.25 BENCH_SIZE_GB", i.e.
256 MiB and 2 GiB), one file of random bytes is uploaded to an `images`
artifact's `image` blob with `curl -T`, once with Content-Length and once
with `Transfer-Encoding: chunked` (a client streaming a body of unknown
length), and downloaded back with curl to /dev/null. Baselines measured
in the same run over the same bytes:

  * upload ceiling: md5+sha1+sha256 in one pass (bench/digest.c, OpenSSL
    EVP as glared uses it) over the file in the page cache. glared has to
    compute exactly these three digests on every byte it stores.
  * for reference, the same digests plus write() of each chunk to a file
    and fdatasync at the end, one thread, no overlap (bench/digest.c FILE
    OUT): what storing costs without the network and without threads.
  * download reference: curl of the same file from `python3 -m http.server`.

Memory: the server's VmRSS is sampled every 20 ms during each transfer
(the highest sample is reported per phase) and its VmHWM (peak RSS over
its life) is read before and after. Targets: upload with Content-Length
>= 80% of the digest ceiling (#6), chunked upload >= 85% of it (#18),
download at least as fast as the static server (#18; #6 allowed 1.5x its
time), RSS < 32 MB throughout.

  /usr/bin/python3 bench/blob.py      (BENCH_BLOB_SIZES=0.25 for a quick run)
"""
import os
import sys
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


class RssSampler:
    """Highest VmRSS (kB) of a process while the `with` block runs."""

    def __init__(self, pid, every=0.02):
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()

    def _loop(self):
        while not self._stop.is_set():
            v = B.proc_status(self.pid, "VmRSS") or 0
            self.peak = max(self.peak, v)
            self._stop.wait(self.every)

    def __enter__(self):
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._t.join()


def objects(srv):
    """Files in the server's content-addressed blob store."""
    n = 0
    for _, _, files in os.walk(os.path.join(srv.dir, "blobs", "objects")):
        n += len(files)
    return n


def upload(srv, path, size, sha256, repeat, chunked, label, keep):
    """Best of `repeat` uploads to fresh artifacts: (MB/s, seconds,
    (user, sys) CPU s of that best upload, highest RSS kB over all, the
    kept artifact's id or None, every stored size + sha256 right).

    Every upload must store new bytes: the same bytes again would find
    their object in the store and take another path (the temp file is
    dropped instead of renamed, and freeing its blocks on close is
    charged to the upload). So each artifact is deleted after its upload
    (its object goes with it) but the last when `keep`."""
    hdr = ["-H", "X-Auth-Token: " + B.TOKEN,
           "-H", "Content-Type: application/octet-stream"]
    if chunked:
        hdr += ["-H", "Transfer-Encoding: chunked"]
    best, secs, cpu, rss, ok = 0.0, 0.0, (0, 0), 0, True
    for i in range(repeat):
        if objects(srv):
            raise RuntimeError("the blob store is not empty before an "
                               "upload: it would not store new bytes")
        art = srv.json("POST", "/artifacts/images",
                       {"name": "bench-%s-%d" % (label, i),
                        "version": "1.0"})["id"]
        url = "%s/artifacts/images/%s/image" % (srv.url, art)
        B.log("upload, %s, %d" % (label, i + 1))
        c0 = B.proc_cpu_split(srv.pid)
        t0 = time.time()
        with RssSampler(srv.pid) as s:
            sp, code = B.curl(hdr + ["-T", path, "-o", "/dev/null", "-w",
                                     "%{speed_upload} %{http_code}", url])
        dt = time.time() - t0
        c1 = B.proc_cpu_split(srv.pid)
        rss = max(rss, s.peak)
        if code not in ("200", "201"):
            raise RuntimeError("upload answered %s" % code)
        if float(sp) / 1e6 > best:
            best, secs = float(sp) / 1e6, dt
            cpu = (c1[0] - c0[0], c1[1] - c0[1])
        blob = srv.json("GET", "/artifacts/images/%s" % art)["image"]
        ok = ok and bool(blob) and blob.get("size") == size and \
            blob.get("sha256") == sha256
        if keep and i == repeat - 1:
            return best, secs, cpu, rss, art, ok
        srv.json("DELETE", "/artifacts/images/%s" % art,
                 expect=(200, 204))
    return best, secs, cpu, rss, None, ok


def one_size(d, size, repeat):
    print("\n-- %.2f GiB (%s), load: %s" % (
        size / B.GiB, d, open("/proc/loadavg").read().strip()), flush=True)
    data_dir = os.path.join(d, "static")
    os.makedirs(data_dir)
    path = os.path.join(data_dir, "blob.bin")
    B.log("writing %d bytes of test data" % size)
    B.make_file(path, size)

    exe = B.build_digest_tool(d)
    B.log("digest ceiling (md5+sha1+sha256, one pass)")
    ceiling, sha256 = B.digest_ceiling(exe, path)
    B.log("digest + write + fdatasync, one thread")
    store_out = os.path.join(d, "store-copy.bin")
    store_speed = float(B.run_out([exe, path, store_out])[0])
    os.unlink(store_out)

    static = B.StaticServer(data_dir)
    static_speed = 0.0
    downloads = max(3, repeat + 1)       # short and noisy: best of 3
    for _ in range(downloads):
        (sp,) = B.curl(["-o", "/dev/null", "-w", "%{speed_download}",
                        static.url + "/blob.bin"])
        static_speed = max(static_speed, float(sp) / 1e6)
    static.stop()

    srv_dir = os.path.join(d, "srv")
    os.makedirs(srv_dir)
    srv = B.Glared(srv_dir)
    hwm_idle = srv.hwm_kb()

    up = upload(srv, path, size, sha256, repeat, False, "length", False)
    ch = upload(srv, path, size, sha256, repeat, True, "chunked", True)
    ok = up[5] and ch[5]
    url = "%s/artifacts/images/%s/image" % (srv.url, ch[4])

    hdr = ["-H", "X-Auth-Token: " + B.TOKEN]
    down_speed, down_rss = 0.0, 0
    for i in range(downloads):
        B.log("download %d" % (i + 1))
        with RssSampler(srv.pid) as s:
            sp, n = B.curl(hdr + ["-o", "/dev/null", "-w",
                                  "%{speed_download} %{size_download}", url])
        down_rss = max(down_rss, s.peak)
        if int(n) != size:
            ok = False
        down_speed = max(down_speed, float(sp) / 1e6)
    hwm = srv.hwm_kb()
    srv.stop()
    os.unlink(path)

    def pct(v):
        return "%.0f%%" % (100 * v / ceiling)
    mbk = lambda kb: "%.1f MB" % (kb / 1024.0)  # noqa: E731
    rows = [
        ("upload, Content-Length (curl -T)", B.mb(up[0]),
         B.mb(ceiling) + " digest", pct(up[0]), ">= 80%",
         up[0] >= 0.8 * ceiling),
        ("upload, chunked (curl -T, TE: chunked)", B.mb(ch[0]),
         B.mb(ceiling) + " digest", pct(ch[0]), ">= 85%",
         ch[0] >= 0.85 * ceiling),
        ("  for reference: digest+write+fdatasync", B.mb(store_speed),
         B.mb(ceiling) + " digest", pct(store_speed), "", None),
        ("download (curl -o /dev/null)", B.mb(down_speed),
         B.mb(static_speed) + " static", "%.2fx its speed" %
         (down_speed / static_speed), ">= 1x", down_speed >= static_speed),
        ("server RSS during uploads (max sample)", mbk(max(up[3], ch[3])),
         mbk(hwm_idle) + " idle", "", "< 32 MB",
         max(up[3], ch[3]) < 32 * 1024),
        ("server RSS during downloads (max sample)", mbk(down_rss),
         mbk(hwm_idle) + " idle", "", "< 32 MB", down_rss < 32 * 1024),
        ("server peak RSS over its life (VmHWM)", mbk(hwm),
         mbk(hwm_idle) + " idle", "", "< 32 MB", hwm < 32 * 1024),
        ("stored size + sha256 match", "yes" if ok else "NO", "", "", "yes",
         ok),
    ]
    notes = []
    for name, u in (("Content-Length", up), ("chunked", ch)):
        notes.append("%s upload took %.1f s; server CPU meanwhile: user "
                     "%.1f s + system %.1f s (%.0f%% of one core)" %
                     (name, u[1], u[2][0], u[2][1],
                      100 * sum(u[2]) / u[1]))
    notes += ["digest ceiling = bench/digest.c over the same file from the "
              "page cache",
              "static = python3 -m http.server, same file, same curl options",
              "load after: %s" % open("/proc/loadavg").read().strip()]
    return B.table(
        "blob: %.2f GiB, best of %d uploads per framing and %d downloads, "
        "MB = 10^6 bytes" % (size / B.GiB, repeat, downloads), rows, notes)


def main():
    size_gb = B.env_float("BENCH_SIZE_GB", 2)
    sizes = os.environ.get("BENCH_BLOB_SIZES") or \
        " ".join(sorted({"0.25", "%g" % size_gb}, key=float))
    repeat = max(1, int(B.env_float("BENCH_REPEAT", 1)))
    print("== blob: %s GiB upload (Content-Length and chunked) / download "
          "over loopback, %d vCPU" % (sizes, os.cpu_count()), flush=True)
    missed = 0
    for gb in sizes.split():
        d = B.workdir("glared-bench-blob-")
        missed += one_size(d, int(float(gb) * B.GiB), repeat)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
