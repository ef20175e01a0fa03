"""Blob upload and download over loopback (issue #6).

One file of BENCH_SIZE_GB GiB (default 2) is uploaded with `curl -T` to an
`images` artifact's `image` blob and downloaded back with curl to
/dev/null. Baselines measured in the same run over the same bytes:

  * upload ceiling: md5+sha1+sha256 in one pass (bench/digest.c, OpenSSL
    EVP as glared uses it) over the file in the page cache. glared has to
    compute exactly these three digests on every byte it stores.
  * for reference, the same digests plus write() of each chunk to a file
    and fdatasync at the end, one thread, no overlap (bench/digest.c FILE
    OUT): what storing costs without the network and without threads.
  * download reference: curl of the same file from `python3 -m http.server`.

Also reported: the server's peak RSS (VmHWM of /proc/<pid>/status) before
and after the transfers. Targets: upload >= 80% of the digest ceiling,
download within 1.5x of the static server, peak RSS < 32 MB.

  /usr/bin/python3 bench/blob.py      (BENCH_SIZE_GB=0.25 for a quick run)
"""
import os
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def main():
    size_gb = B.env_float("BENCH_SIZE_GB", 2)
    repeat = max(1, int(B.env_float("BENCH_REPEAT", 1)))
    size = int(size_gb * B.GiB)
    d = B.workdir("glared-bench-blob-")
    print("== blob: %.2f GiB upload/download over loopback (%s)" %
          (size / B.GiB, d), flush=True)

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
    hdr = ["-H", "X-Auth-Token: " + B.TOKEN]

    up_speed, up_secs = 0.0, 0.0
    art = None
    for i in range(repeat):
        art = srv.json("POST", "/artifacts/images",
                       {"name": "bench-blob-%d" % i, "version": "1.0"})
        url = "%s/artifacts/images/%s/image" % (srv.url, art["id"])
        B.log("upload %d" % (i + 1))
        cpu0 = B.proc_cpu_split(srv.pid)
        t0 = time.time()
        sp, code = B.curl(hdr + ["-H", "Content-Type: application/octet-stream",
                                 "-T", path, "-o", "/dev/null",
                                 "-w", "%{speed_upload} %{http_code}", url])
        dt = time.time() - t0
        cpu1 = B.proc_cpu_split(srv.pid)
        if float(sp) / 1e6 > up_speed:
            up_speed, up_secs = float(sp) / 1e6, dt
            up_cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
    hwm_upload = srv.hwm_kb()
    blob = srv.json("GET", "/artifacts/images/%s" % art["id"])["image"]
    ok = blob and blob.get("size") == size and blob.get("sha256") == sha256

    down_speed = 0.0
    for i in range(downloads):
        B.log("download %d" % (i + 1))
        sp, n = B.curl(hdr + ["-o", "/dev/null",
                              "-w", "%{speed_download} %{size_download}", url])
        if int(n) != size:
            ok = False
        down_speed = max(down_speed, float(sp) / 1e6)
    hwm = srv.hwm_kb()
    srv.stop()

    rows = [
        ("upload (curl -T)", B.mb(up_speed), B.mb(ceiling) + " digest",
         "%.0f%%" % (100 * up_speed / ceiling), ">= 80%",
         up_speed >= 0.8 * ceiling),
        ("  for reference: digest+write+fdatasync", B.mb(store_speed),
         B.mb(ceiling) + " digest", "%.0f%%" % (100 * store_speed / ceiling),
         "", None),
        ("download (curl -o /dev/null)", B.mb(down_speed),
         B.mb(static_speed) + " static", "%.2fx the time" %
         (static_speed / down_speed), "<= 1.5x", static_speed <= 1.5 * down_speed),
        ("server peak RSS (VmHWM)", "%.1f MB" % (hwm / 1024.0),
         "%.1f MB idle" % (hwm_idle / 1024.0), "", "< 32 MB",
         hwm < 32 * 1024),
        ("stored size + sha256 match", "yes" if ok else "NO", "", "", "yes", ok),
    ]
    missed = B.table(
        "blob: %.2f GiB, best of %d uploads and %d downloads, MB = 10^6 "
        "bytes" % (size / B.GiB, repeat, downloads),
        rows,
        ["upload took %.1f s; server CPU meanwhile: user %.1f s + system "
         "%.1f s (%.0f%% of one core)" % (up_secs, up_cpu[0], up_cpu[1],
                                         100 * sum(up_cpu) / up_secs),
         "digest ceiling = bench/digest.c over the same file from the page "
         "cache",
         "static = python3 -m http.server, same file, same curl options"])
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
