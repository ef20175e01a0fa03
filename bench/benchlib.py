"""Shared helpers for the glared benchmarks (bench/*.py).

A glared process on loopback with a throw-away config (the approach of
tests/http/conftest.py), a static file server for reference figures, test
data files, the one-pass digest ceiling, process memory readings and the
result table every benchmark prints.

Only the standard library: run with Debian's /usr/bin/python3.
"""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
GLARED = os.environ.get("GLARED", os.path.join(ROOT, "glared"))
TOKEN = "bench:benchproject:member"
MiB = 1 << 20
GiB = 1 << 30

_cleanups = []


def _run_cleanups(*_):
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:          # keep cleaning up
            print("cleanup: %s" % e, file=sys.stderr)


def _on_signal(sig, _frame):
    _run_cleanups()
    sys.exit(128 + sig)


atexit.register(_run_cleanups)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def on_exit(fn):
    """Run fn at exit (also on SIGTERM/SIGINT), last registered first."""
    _cleanups.append(fn)


def env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


def workdir(prefix):
    """A fresh directory under BENCH_TMPDIR (default /tmp), removed at exit
    unless BENCH_KEEP=1."""
    base = os.environ.get("BENCH_TMPDIR") or "/tmp"
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    if os.environ.get("BENCH_KEEP") != "1":
        on_exit(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n):
    """A port P with P..P+n-1 free on loopback (scripts/s3.sh uses five,
    scripts/keystone.sh three)."""
    for _ in range(200):
        p = free_port()
        if p + n > 65535:
            continue
        ok = True
        for q in range(p, p + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
                    break
        if ok:
            return p
    raise RuntimeError("no %d consecutive free ports" % n)


def log(msg):
    print("  .. " + msg, flush=True)


# ---- processes -----------------------------------------------------------------

def proc_status(pid, key):
    """A /proc/<pid>/status value in kB (VmHWM, VmRSS), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_split(pid):
    """(user, system) CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def proc_cpu_seconds(pid):
    """user + system CPU seconds of a process so far."""
    return sum(proc_cpu_split(pid))


def _stop_proc(proc, timeout=20):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(argv, input=None):
    """subprocess.run(argv, capture_output=True, text=True), but the child
    is killed if we are interrupted (a wrk left behind would go on
    hammering a dead port for its whole duration)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input else None,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)

    def kill():
        if p.poll() is None:
            p.kill()
            p.wait()
    on_exit(kill)
    out, err = p.communicate(input)
    _cleanups.remove(kill)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def types_dir(d, names):
    """A directory d/types with copies of the named type files, from
    types/ (what ships) or tests/types/ (the test types, such as
    sample_artifact): a single directory every glared binary reads,
    whatever its own tree holds."""
    out = os.path.join(d, "types")
    os.makedirs(out, exist_ok=True)
    for n in names:
        for sub in ("types", os.path.join("tests", "types")):
            src = os.path.join(ROOT, sub, n + ".lua")
            if os.path.exists(src):
                shutil.copy(src, out)
                break
        else:
            raise FileNotFoundError("no type file %s.lua" % n)
    return out


class Glared:
    """glared serve on a free loopback port with a temp config (this
    tree's images and sample_artifact types unless options say else)."""

    def __init__(self, d, options=None, binary=None):
        self.dir = d
        self.port = free_port()
        opts = {
            "bind_host": "127.0.0.1",
            "bind_port": self.port,
            "workers": int(env_float("BENCH_WORKERS", 1)),
            "enabled_artifact_types": "images,sample_artifact",
            "database.connection": "sqlite:///%s/glare.db" % d,
            "glance_store.filesystem_store_datadir": "%s/blobs" % d,
            "healthcheck.disable_by_file_path": "%s/hc_disable" % d,
        }
        opts.update(options or {})
        if "types_path" not in opts:
            opts["types_path"] = types_dir(
                d, opts["enabled_artifact_types"].split(","))
        self.conf = os.path.join(d, "glare.conf")
        sections = {}
        for k, v in opts.items():
            sec, _, key = k.rpartition(".")
            sections.setdefault(sec or "DEFAULT", {})[key] = v
        with open(self.conf, "w") as f:
            for sec in ["DEFAULT"] + sorted(s for s in sections
                                            if s != "DEFAULT"):
                f.write("[%s]\n" % sec)
                for k, v in sections.get(sec, {}).items():
                    f.write("%s = %s\n" % (k, v))
        self.log_path = os.path.join(d, "glared.log")
        self.url = "http://127.0.0.1:%d" % self.port
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [binary or GLARED, "serve", "--config-file", self.conf],
                stdout=logf, stderr=subprocess.STDOUT)
        on_exit(self.stop)
        self.pid = self.proc.pid
        self._wait_ready()

    def _wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("glared exited %s:\n%s" %
                                   (self.proc.returncode, self.read_log()))
            try:
                st, _ = self.request("GET", "/healthcheck", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("glared did not start:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        _stop_proc(self.proc)

    def hwm_kb(self):
        return proc_status(self.pid, "VmHWM")

    def rss_kb(self):
        return proc_status(self.pid, "VmRSS")

    def request(self, method, path, body=None, headers=None, timeout=3600):
        c = http.client.HTTPConnection("127.0.0.1", self.port,
                                       timeout=timeout)
        try:
            h = {"X-Auth-Token": TOKEN}
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                h["Content-Type"] = "application/json"
            h.update(headers or {})
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, data
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None, expect=(200, 201)):
        st, data = self.request(method, path, body, headers)
        if st not in expect:
            raise RuntimeError("%s %s -> %d %s" % (method, path, st,
                                                   data[:500]))
        return json.loads(data) if data else None


class StaticServer:
    """python3 -m http.server over a directory: the reference download."""

    def __init__(self, d):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port),
             "--bind", "127.0.0.1", "--directory", d],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        on_exit(lambda: _stop_proc(self.proc))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("http.server did not start")

    def stop(self):
        _stop_proc(self.proc)


# ---- data and reference figures ---------------------------------------------------

def make_file(path, size):
    """size bytes of incompressible data (random 1 MiB blocks, cycled
    through a 64 MiB pool so a 2 GiB file takes seconds, not minutes)."""
    pool = [os.urandom(MiB) for _ in range(64)]
    left, i = size, 0
    with open(path, "wb") as f:
        while left > 0:
            b = pool[i % len(pool)]
            if i >= len(pool):           # keep every block distinct
                b = i.to_bytes(8, "little") + b[8:]
            n = min(left, len(b))
            f.write(b[:n])
            left -= n
            i += 1
    return path


def build_digest_tool(d):
    """Compile bench/digest.c (md5+sha1+sha256 in one pass through OpenSSL
    EVP, what glared does) into d; return its path."""
    exe = os.path.join(d, "digest")
    subprocess.run(["cc", "-O2", "-o", exe,
                    os.path.join(ROOT, "bench", "digest.c"), "-lcrypto"],
                   check=True)
    return exe


def digest_ceiling(exe, path, runs=2):
    """(best MB/s, sha256 hex) of the one-pass triple digest over path,
    read from the page cache (the first run warms it)."""
    best, sha = 0.0, None
    for _ in range(runs):
        out = subprocess.run([exe, path], check=True, capture_output=True,
                             text=True).stdout.split()
        best = max(best, float(out[0]))
        sha = out[3]
    return best, sha


def run_out(argv):
    """Run a command, return its stdout split on white space."""
    return subprocess.run(argv, check=True, capture_output=True,
                          text=True).stdout.split()


def curl(args):
    """Run curl, return the -w output split on spaces."""
    out = subprocess.run(["curl", "-sS", "--fail"] + args, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def percentiles(samples, ps=(50, 95, 99)):
    s = sorted(samples)
    if not s:
        return [float("nan")] * len(ps)
    return [s[min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1)]
            for p in ps]


# ---- output ------------------------------------------------------------------------

def mb(v):
    return "%.0f MB/s" % v


def table(title, rows, notes=()):
    """rows: (metric, value, baseline, ratio, target, met) strings; met is
    True/False/None (no target). Prints the table; returns the count of
    targets missed."""
    head = ("metric", "value", "baseline", "ratio", "target", "met")
    cells = [head] + [tuple("" if c is None else
                            ("yes" if c is True else "NO" if c is False
                             else str(c)) for c in r) for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(head))]
    line = "+" + "+".join("-" * (x + 2) for x in w) + "+"
    print()
    print(title)
    print(line)
    for n, r in enumerate(cells):
        print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")
        if n == 0:
            print(line)
    print(line)
    for n in notes:
        print("  " + n)
    sys.stdout.flush()
    return sum(1 for r in rows if r[5] is False)


def grid(title, head, rows, notes=()):
    """A plain table with its own columns (numbers right-aligned)."""
    cells = [tuple(head)] + [tuple("" if c is None else str(c) for c in r)
                             for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(head))]
    line = "+" + "+".join("-" * (x + 2) for x in w) + "+"
    print()
    print(title)
    print(line)
    for n, r in enumerate(cells):
        out = []
        for i, c in enumerate(r):
            out.append(c.ljust(w[i]) if i == 0 or n == 0 else c.rjust(w[i]))
        print("| " + " | ".join(out) + " |")
        if n == 0:
            print(line)
    print(line)
    for n in notes:
        print("  " + n)
    sys.stdout.flush()
