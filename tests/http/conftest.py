"""Black-box test harness: real glared processes on loopback.

`server` is one shared server (default options, every stock and test type
enabled). `make_server(**options)` starts a private one with extra config
options, for tests that need special settings or kill the process.
Options are "section.key" → value, or plain keys for [DEFAULT].

With GLARED_TEST_CLUSTER=1 (and GLARED_PG_URL + GLARED_S3_* from
scripts/pg.sh and scripts/s3.sh) every "server" is a two-node deployment:
two glared processes on their own ports and local temp dirs, sharing a
fresh PostgreSQL database and an S3 prefix; requests alternate between the
nodes, so every test that makes more than one request crosses nodes.
Raw-socket tests talk to the first node.

Each glared starts in a process group of its own (a new session); stopping
a server ends the whole group, so no worker outlives its test whatever
happened to its master. scripts/run-tests.sh checks at the end that no
glared of the run is left.

GLARED_RABBIT_URL (scripts/rabbitmq.sh) names the RabbitMQ the
notification tests publish to; without it they are skipped.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GLARED = os.environ.get("GLARED", os.path.join(ROOT, "glared"))
CLUSTER = os.environ.get("GLARED_TEST_CLUSTER") == "1"

# tests that look at the local content-addressed file store
local_store = pytest.mark.skipif(
    CLUSTER, reason="inspects the local file store; the cluster stores in S3")


def new_pg_database():
    base = os.environ["GLARED_PG_URL"]
    name = "t_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-X", "-q", base, "-c",
                    "CREATE DATABASE %s" % name], check=True,
                   capture_output=True, timeout=30)
    return base.rsplit("/", 1)[0] + "/" + name

HAVE_S3 = bool(os.environ.get("GLARED_S3_ENDPOINT"))
needs_s3 = pytest.mark.skipif(not HAVE_S3,
                              reason="no S3 endpoint (scripts/s3.sh)")


def s3_options(endpoint=None):
    """The options of the S3 blob store on the test endpoint, under a
    fresh prefix of the shared bucket."""
    env = os.environ
    return {
        "glance_store.default_store": "s3",
        "glance_store.s3_store_host": endpoint or env["GLARED_S3_ENDPOINT"],
        "glance_store.s3_store_region": env["GLARED_S3_REGION"],
        "glance_store.s3_store_bucket": env["GLARED_S3_BUCKET"],
        "glance_store.s3_store_access_key": env["GLARED_S3_ACCESS_KEY"],
        "glance_store.s3_store_secret_key": env["GLARED_S3_SECRET_KEY"],
        "glance_store.s3_store_prefix": "t-%s/" % uuid.uuid4().hex[:12],
    }


def s3(path, method="GET", body=None):
    """A signed request to the test S3 endpoint (curl does SigV4; netrc
    because Swift's access keys contain ':'). Returns the body; with body
    (bytes, sent as the request body), the HTTP status instead."""
    env = os.environ
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("machine 127.0.0.1 login %s password %s\n" %
                (env["GLARED_S3_ACCESS_KEY"], env["GLARED_S3_SECRET_KEY"]))
        netrc = f.name
    try:
        if body is not None:
            send = ["--data-binary", "@-", "-o", "/dev/null", "-w",
                    "%{http_code}"]
        else:
            send = ["-d", ""] if method == "POST" else []
        p = subprocess.run(
            ["curl", "-s", "-X", method] + send + ["--netrc-file", netrc,
             "--aws-sigv4", "aws:amz:%s:s3" % env["GLARED_S3_REGION"], "-H",
             "x-amz-content-sha256: UNSIGNED-PAYLOAD",
             "%s/%s%s" % (env["GLARED_S3_ENDPOINT"], env["GLARED_S3_BUCKET"],
                          path)], input=body, capture_output=True,
            timeout=30)
        return p.stdout.decode(errors="replace")
    finally:
        os.unlink(netrc)


def uploads_under(prefix):
    """Keys of the multipart uploads in progress under an S3 prefix."""
    xml = s3("?uploads=")
    return [k for k in re.findall(r"<Key>([^<]*)</Key>", xml)
            if k.startswith(prefix)]


def objects_under(prefix):
    xml = s3("?list-type=2&prefix=" + prefix.replace("/", "%2F"))
    return re.findall(r"<Key>([^<]*)</Key>", xml)


# the shipped types, then the ones that exist for the tests (tests/types)
TYPES_PATH = "%s:%s" % (os.path.join(ROOT, "types"),
                        os.path.join(ROOT, "tests", "types"))
ALL_TYPES = ("images,heat_templates,heat_environments,tosca_templates,"
             "murano_packages,secrets,sample_artifact,hooks_artifact,"
             "non_nullable_fields_artifact,regional_images")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(path, options):
    sections = {}
    for k, v in options.items():
        sec, _, key = k.rpartition(".")
        sections.setdefault(sec or "DEFAULT", {})[key] = v
    with open(path, "w") as f:
        for sec in ["DEFAULT"] + sorted(s for s in sections if s != "DEFAULT"):
            f.write("[%s]\n" % sec)
            for k, v in sections.get(sec, {}).items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                f.write("%s = %s\n" % (k, v))


def kill_group(pgid):
    """SIGKILL every process of a group (a server's master and workers)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_pids(pgid):
    """The live processes of a group, from /proc (zombies excluded)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


class Server:
    def __init__(self, options=None, workers=1, wait=True):
        self.dir = tempfile.mkdtemp(prefix="glared-test-")
        # a test may need a fixed port (a service catalog points at it)
        self.port = int((options or {}).get("bind_port") or free_port())
        self.options = {
            "bind_host": "127.0.0.1",
            "bind_port": self.port,
            "workers": workers,
            "enabled_artifact_types": ALL_TYPES,
            "types_path": TYPES_PATH,
            "database.connection": "sqlite:///%s/glare.db" % self.dir,
            "glance_store.filesystem_store_datadir": "%s/blobs" % self.dir,
            "healthcheck.disable_by_file_path": "%s/hc_disable" % self.dir,
        }
        if CLUSTER:
            self.options["database.connection"] = new_pg_database()
            self.options.update(s3_options())
        self.options.update(options or {})
        self.conf = os.path.join(self.dir, "glare.conf")
        # node B: same service, own port and local temp space
        self.nodes = [(self.port, self.conf, os.path.join(self.dir,
                                                          "glared.log"))]
        if CLUSTER:
            self.nodes.append((free_port(),
                               os.path.join(self.dir, "glare-b.conf"),
                               os.path.join(self.dir, "glared-b.log")))
        self.write_confs()
        self.log_path = self.nodes[0][2]
        self.proc = None
        self.procs = []
        self.url = "http://127.0.0.1:%d" % self.port
        self.urls = ["http://127.0.0.1:%d" % p for p, _, _ in self.nodes]
        self.turn = 0
        self.start(wait)

    def write_confs(self):
        """Each node's configuration file from self.options (node B: its
        own port and local temp space)."""
        for i, (port, conf, _) in enumerate(self.nodes):
            opts = dict(self.options, bind_port=port)
            if i:
                opts["glance_store.filesystem_store_datadir"] = \
                    "%s/blobs-b" % self.dir
            write_conf(conf, opts)

    def datadirs(self):
        """Each node's local blob directory."""
        return [self.options["glance_store.filesystem_store_datadir"]] + \
            ["%s/blobs-b" % self.dir] * (len(self.nodes) - 1)

    def start(self, wait=True):
        self.logs = [open(log, "ab") for _, _, log in self.nodes]
        self.procs = [subprocess.Popen(
            [GLARED, "serve", "--config-file", conf], stdout=lg,
            stderr=subprocess.STDOUT, start_new_session=True)
            for (_, conf, _), lg in zip(self.nodes, self.logs)]
        self.proc = self.procs[0]
        self.log = self.logs[0]
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        for proc, url in zip(self.procs, self.urls):
            while True:
                if proc.poll() is not None:
                    self.kill()     # the other nodes: nobody stops them
                    raise RuntimeError("glared exited %s:\n%s" %
                                       (proc.returncode, self.read_log()))
                try:
                    requests.get(url + "/healthcheck", timeout=1)
                    break
                except requests.RequestException:
                    if time.time() > deadline:
                        self.kill()
                        raise RuntimeError("glared did not start:\n" +
                                           self.read_log())
                    time.sleep(0.05)

    def kill(self):
        """SIGKILL every node's process group, without the checks of
        stop() (a server that failed to start)."""
        for proc in self.procs:
            kill_group(proc.pid)
            proc.wait()

    def read_log(self):
        """Every node's log, lines merged in time order (a line without a
        timestamp stays with the one before it)."""
        entries = []
        for n, (_, _, log) in enumerate(self.nodes):
            if not os.path.exists(log):
                continue
            with open(log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            ts = ""
            for i, line in enumerate(text.splitlines(True)):
                if re.match(r"^\d{4}-\d\d-\d\dT", line):
                    ts = line[:24]
                entries.append((ts, n, i, line))
        entries.sort()
        return "".join(e[3] for e in entries)

    def signal_all(self, sig):
        for proc in self.procs:
            proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal each node and wait for it. SIGKILL goes to the whole
        process group; other signals to the master alone (it forwards them:
        a worker signalled twice stops at once instead of finishing its
        requests). Whatever is left of a group afterwards is killed."""
        for proc in self.procs:
            if proc.poll() is None:
                if sig == signal.SIGKILL:
                    kill_group(proc.pid)
                else:
                    proc.send_signal(sig)
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            kill_group(proc.pid)
        for lg in getattr(self, "logs", []):
            lg.close()
        if self.procs:
            self.check_sanitizers()
        return self.proc.returncode if self.proc else None

    def check_sanitizers(self):
        """Under `make asan` a memory error in the server must fail the
        tests, not only show up as a dropped connection."""
        log = self.read_log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:"):
            if marker in log:
                i = log.index(marker)
                raise AssertionError("sanitizer report in %s:\n%s" %
                                     (self.log_path, log[i:i + 3000]))

    def peak_rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    # -- requests helpers ---------------------------------------------------
    def req(self, method, path, token="user1:project1:member", **kw):
        headers = kw.pop("headers", {}) or {}
        if token is not None and "X-Auth-Token" not in headers:
            headers["X-Auth-Token"] = token
        # alternate between the nodes of a cluster
        url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        return requests.request(method, url + path, headers=headers,
                                timeout=kw.pop("timeout", 60), **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        headers = kw.pop("headers", {}) or {}
        headers.setdefault("Content-Type", "application/json")
        return self.req("POST", path, json=body, headers=headers, **kw)

    def patch(self, path, ops, **kw):
        headers = kw.pop("headers", {}) or {}
        headers.setdefault("Content-Type", "application/json-patch+json")
        import json
        return self.req("PATCH", path, data=json.dumps(ops), headers=headers,
                        **kw)

    def put(self, path, data=None, **kw):
        return self.req("PUT", path, data=data, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)


ADMIN = "admin:adminproject:admin"
USER1 = "user1:project1:member"
USER2 = "user2:project2:member"


def raw(port, data, timeout=5, shut=False, read_until_close=True,
        source="127.0.0.1"):
    """Send raw bytes (from the loopback address source), return everything
    read until the server closes or the timeout passes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        if isinstance(data, str):
            data = data.encode()
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
            if not read_until_close and b"\r\n\r\n" in out:
                break
        return out
    finally:
        s.close()


def status_of(resp_bytes):
    line = resp_bytes.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/") else None


class Tmux:
    """An interactive program in a detached tmux session of its own:
    keys in, screen out."""
    def __init__(self, cmd, env):
        self.sock = "glared-test-%s" % uuid.uuid4().hex[:8]
        envs = " ".join("%s=%s" % kv for kv in env.items())
        self.tmux("new-session", "-d", "-s", "t", "-x", "150", "-y", "60",
                  "env %s %s" % (envs, cmd))

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock] + list(args),
                              capture_output=True, text=True, timeout=10)

    def send(self, text):
        """Keys typed as text, no Enter."""
        self.tmux("send-keys", "-t", "t", "-l", text)

    def type(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.tmux("send-keys", "-t", "t", "Enter")

    def key(self, k):
        self.tmux("send-keys", "-t", "t", k)

    def screen(self):
        return self.tmux("capture-pane", "-t", "t", "-p", "-J", "-S", "-200").stdout

    def wait(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.1)
        raise AssertionError("screen never matched:\n" + self.screen())

    def prompts(self):
        return self.screen().count("glared> ")

    def run(self, text, expect, timeout=10):
        n = self.prompts()
        self.type(text)
        return self.wait(lambda s: s.count("glared> ") > n and expect in s,
                         timeout)

    def close(self):
        self.tmux("kill-server")



@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


def server_maker(sig):
    """Generator behind make_server: servers made through it are stopped
    with sig at the end."""
    servers = []

    def make(options=None, **kw):
        s = Server(options, **kw)
        servers.append(s)
        return s
    yield make
    errors = []
    for s in servers:
        try:
            s.stop(sig)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def make_server():
    yield from server_maker(signal.SIGKILL)


@pytest.fixture
def uniq():
    return lambda prefix="a": "%s-%s" % (prefix, uuid.uuid4().hex[:10])
