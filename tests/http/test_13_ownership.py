"""Process and upload ownership (issue 19): uploads of any duration succeed
while their owner lives; a dead owner's upload is rolled back by another
worker or node and nothing of it remains; a failed S3 abort is retried
until it succeeds; workers never outlive their master; glared never shares
its port.

upload_heartbeat = 1 and upload_takeover_after = 3 make the takeover pass
run every 1.5 s, so these tests see several passes in a few seconds.
Runs in both passes of make test (SQLite + files, and two nodes on
PostgreSQL + S3) unless a test says otherwise."""
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import (CLUSTER, GLARED, USER1, free_port, group_pids,
                      kill_group, needs_s3, s3, s3_options, uploads_under,
                      write_conf)

IM = "/artifacts/images"     # blobs of up to 1000 GiB
FAST = {"upload_heartbeat": 1, "upload_takeover_after": 3}
OCTETS = {"Content-Type": "application/octet-stream"}


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def new_artifact(s, url=None):
    r = requests.post((url or s.url) + IM,
                      json={"name": "own-" + os.urandom(6).hex()},
                      headers={"X-Auth-Token": USER1})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def blob_of(url, aid):
    return requests.get("%s%s/%s" % (url, IM, aid),
                        headers={"X-Auth-Token": USER1}).json()["image"]


def slow_upload(url, aid, seconds, out):
    """PUT a chunked body that trickles in over `seconds`; out gets the
    status, the answer and the sha256 of what was sent."""
    h = hashlib.sha256()
    pieces = int(seconds / 0.25)

    def body():
        for i in range(pieces):
            piece = os.urandom(48 * 1024)
            h.update(piece)
            yield piece
            time.sleep(0.25)
    try:
        r = requests.put("%s%s/%s/image" % (url, IM, aid), data=body(),
                         headers=dict(OCTETS, **{"X-Auth-Token": USER1}),
                         timeout=120)
        out.update(status=r.status_code, text=r.text, sha=h.hexdigest(),
                   url=url, aid=aid)
    except requests.RequestException as e:
        out.update(status=None, text=str(e), url=url, aid=aid)


def owner_worker(s, datadir):
    """The worker of node A holding a temp file of datadir open: the owner
    of the upload in progress there."""
    tmp = os.path.join(datadir, "tmp")
    for pid in group_pids(s.procs[0].pid):
        if pid == s.procs[0].pid:
            continue
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith(tmp + "/") and target.endswith(".part"):
                return pid
    return None


def start_put(port, aid, length, send):
    """A raw PUT of `length` bytes of which `send` are sent now."""
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    c.sendall(("PUT %s/%s/image HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
               "Content-Type: application/octet-stream\r\n"
               "Content-Length: %d\r\n\r\n" % (IM, aid, USER1, length))
              .encode())
    data = os.urandom(1 << 20)
    for _ in range(send >> 20):
        c.sendall(data)
    return c, data


def wait_for(cond, seconds, step=0.2):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# ---- uploads of any duration ---------------------------------------------------

def test_long_uploads_outlast_takeover_passes(make_server):
    """Uploads lasting more than twice upload_takeover_after succeed on
    every store and worker count (before: the owner's own takeover pass
    rolled them back). On S3, a multipart upload that no record names and
    that is older than twice the takeover time is swept meanwhile, but the
    live ones, just as old, are not."""
    variants = []
    if not CLUSTER:
        variants += [("file", 1), ("file", 2)]
    if CLUSTER or os.environ.get("GLARED_S3_ENDPOINT"):
        variants += [("s3", 1), ("s3", 2)]
    servers, orphans = [], []
    for store, workers in variants:
        opts = dict(FAST)
        if store == "s3" and not CLUSTER:
            opts.update(s3_options())
        s = make_server(opts, workers=workers)
        servers.append((store, workers, s))
        if store == "s3":
            prefix = s.options["glance_store.s3_store_prefix"]
            s3("/%sobjects/orphan?uploads=" % prefix, method="POST")
            orphans.append(prefix)
    for prefix in orphans:
        assert uploads_under(prefix) == [prefix + "objects/orphan"]
    results, threads = [], []
    for store, workers, s in servers:
        # two at once: on two workers or on two nodes, as it falls
        for i in range(2):
            url = s.urls[i % len(s.urls)]
            out = {"variant": "%s, %d worker(s), %s" % (store, workers, url)}
            results.append(out)
            threads.append(threading.Thread(
                target=slow_upload, args=(url, new_artifact(s, url), 8,
                                          out)))
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    for out in results:
        assert out.get("status") == 200, out
        got = requests.get("%s%s/%s/image" % (out["url"], IM, out["aid"]),
                           headers={"X-Auth-Token": USER1})
        assert sha256(got.content) == out["sha"], out["variant"]
    for _, _, s in servers:
        assert "rolled back" not in s.read_log()
    for prefix in orphans:
        # the sweep's candidates are > 6 s old: the orphan was, the
        # uploads of 8 s were too while they ran
        assert wait_for(lambda: uploads_under(prefix) == [], 10), prefix
    assert not orphans or any("sweep: S3 multipart upload of objects/orphan"
                              in s.read_log() for _, _, s in servers)


# ---- a dead owner's upload ---------------------------------------------------------

@pytest.mark.parametrize("store", ["file", "s3"])
def test_killed_worker_upload_rolled_back(make_server, store):
    """A worker SIGKILLed mid-upload: another worker (or node) rolls the
    upload back and nothing of it remains."""
    if store == "file" and CLUSTER:
        pytest.skip("the two-node pass stores in S3")
    opts = dict(FAST)
    if store == "s3" and not CLUSTER:
        if not os.environ.get("GLARED_S3_ENDPOINT"):
            pytest.skip("no S3 endpoint (scripts/s3.sh)")
        opts.update(s3_options())
    s = make_server(opts, workers=2)
    prefix = s.options.get("glance_store.s3_store_prefix")
    aid = new_artifact(s)
    assert s.put("%s/%s/image" % (IM, aid), data=b"kept",
                 headers=OCTETS).status_code == 200
    # 12 MiB of 32: the temp file exists, and on S3 a part is out
    c, _ = start_put(s.port, aid, 32 << 20, 12 << 20)
    datadir = s.datadirs()[0]
    assert wait_for(lambda: owner_worker(s, datadir), 10)
    if store == "s3":
        assert wait_for(lambda: uploads_under(prefix), 10)
    assert blob_of(s.urls[-1], aid)["status"] == "saving"
    os.kill(owner_worker(s, datadir), signal.SIGKILL)
    c.close()
    tmp = os.path.join(datadir, "tmp")

    def clean():
        try:    # a connection the dying worker had queued is reset
            b = blob_of(s.urls[-1], aid)
        except requests.ConnectionError:
            return False
        return (b["status"] == "active" and os.listdir(tmp) == [] and
                (store != "s3" or uploads_under(prefix) == []))
    # the owner's pid is dead on this host: the next pass takes over
    assert wait_for(clean, 3 * 3), (blob_of(s.urls[-1], aid),
                                    os.listdir(tmp))
    r = requests.get("%s%s/%s/image" % (s.urls[-1], IM, aid),
                     headers={"X-Auth-Token": USER1})
    assert r.content == b"kept"
    assert "rolled back (its owner is gone)" in s.read_log()


# ---- S3 goes away mid-upload -------------------------------------------------------

class Relay:
    """A TCP relay on a loopback port of its own in front of the test S3
    endpoint. For the glared behind it, stopping the relay is S3 going
    away (connections cut, new ones refused) and starting it again on the
    same port is S3 coming back; the shared endpoint itself, which other
    tests use, never stops."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.lsock = None
        self.socks = []
        self.lock = threading.Lock()

    def start(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        ls.settimeout(0.1)
        self.lsock = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while self.lsock is ls:
            try:
                a, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                a.close()
                continue
            with self.lock:
                self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y),
                                 daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        ls, self.lsock = self.lsock, None
        if ls:
            ls.close()
        with self.lock:
            socks, self.socks = self.socks, []
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()


@needs_s3
def test_s3_outage_mid_upload(make_server):
    """S3 goes away mid-upload: the client gets a 5xx; the abort of the
    multipart upload fails and is retried with backoff until S3 is back;
    then it is aborted and a new upload succeeds."""
    target = int(os.environ["GLARED_S3_ENDPOINT"].rsplit(":", 1)[1])
    relay = Relay(target)
    relay.start()
    try:
        opts = dict(FAST, **s3_options("http://127.0.0.1:%d" % relay.port))
        s = make_server(opts)
        prefix = s.options["glance_store.s3_store_prefix"]
        aid = new_artifact(s)
        c, data = start_put(s.port, aid, 32 << 20, 10 << 20)
        assert wait_for(lambda: uploads_under(prefix), 10)
        relay.stop()
        answer = b""
        try:    # the rest: glared notices at its next part or at the end
            for _ in range(22):
                c.sendall(data)
        except OSError:
            pass
        try:
            c.settimeout(10)
            while b"\r\n\r\n" not in answer:
                got = c.recv(65536)
                if not got:
                    break
                answer += got
        except OSError:
            pass
        c.close()
        status = int(answer.split()[1]) if answer.startswith(b"HTTP/") \
            else None
        assert status is not None and 500 <= status < 600, answer[:300]
        assert blob_of(s.url, aid) is None            # nothing recorded
        # S3 is away: the abort cannot have happened, and it is retried
        assert wait_for(lambda: s.read_log().count("cleanup: s3_abort") >= 2,
                        10), s.read_log()[-3000:]
        assert uploads_under(prefix) != []
        relay.start()                                 # S3 is back
        # backoff 1, 2, 3, 3 ... s (capped at upload_takeover_after)
        assert wait_for(lambda: uploads_under(prefix) == [], 12), \
            s.read_log()[-3000:]
        # (S3 forgets the upload a moment before glared hears so)
        assert wait_for(lambda: "done after earlier failures" in
                        s.read_log(), 5), \
            "\n".join(l[:200] for l in s.read_log().splitlines()
                      if "cleanup" in l or "S3 multipart" in l)
        body = os.urandom(9 << 20)                    # two parts
        r = s.put("%s/%s/image" % (IM, aid), data=body, headers=OCTETS)
        assert r.status_code == 200, r.text
        assert r.json()["image"]["sha256"] == sha256(body)
        got = s.get("%s/%s/image" % (IM, aid))
        assert sha256(got.content) == sha256(body)
    finally:
        relay.stop()


# ---- processes ----------------------------------------------------------------------

def test_workers_die_with_their_master(make_server):
    """The master SIGKILLed with workers = 2: within a second no worker is
    left and the port is free; a restart serves the new configuration
    only."""
    s = make_server(workers=2)
    for proc in s.procs:
        assert wait_for(lambda: len(group_pids(proc.pid)) == 3, 10)
    assert s.get("/artifacts/sample_artifact").status_code == 200
    for proc in s.procs:
        proc.send_signal(signal.SIGKILL)              # the master only
    t0 = time.time()
    for proc in s.procs:
        proc.wait(5)
    assert wait_for(lambda: not any(group_pids(p.pid) for p in s.procs),
                    1.0, 0.02), [group_pids(p.pid) for p in s.procs]
    took = time.time() - t0
    assert took < 1.0
    for port, _, _ in s.nodes:
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", port))           # no SO_REUSE*: free
            probe.listen(1)
        finally:
            probe.close()
    # the restart without sample_artifact: every connection must know it
    s.options["enabled_artifact_types"] = "images"
    s.write_confs()
    s.start()
    for i in range(30):
        r = requests.get("%s/artifacts/sample_artifact" %
                         s.urls[i % len(s.urls)],
                         headers={"X-Auth-Token": USER1,
                                  "Connection": "close"})
        assert r.status_code == 404, (i, r.text)
    assert s.get("/artifacts/images").status_code == 200


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("reuseport", [True, False])
def test_refuses_a_port_in_use(tmp_path, workers, reuseport):
    """Something listens on the port (orphaned workers share it with
    SO_REUSEPORT; another server does not): glared refuses to start,
    naming the port, and starts once it is free."""
    squat = socket.socket()
    if reuseport:
        squat.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    squat.bind(("127.0.0.1", 0))
    squat.listen(1)
    port = squat.getsockname()[1]
    conf = str(tmp_path / "glare.conf")
    write_conf(conf, {
        "bind_host": "127.0.0.1", "bind_port": port, "workers": workers,
        "enabled_artifact_types": "images",
        "database.connection": "sqlite:///%s/glare.db" % tmp_path,
        "glance_store.filesystem_store_datadir": "%s/blobs" % tmp_path})
    p = subprocess.Popen([GLARED, "serve", "--config-file", conf],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        _, err = p.communicate(timeout=20)
    finally:
        kill_group(p.pid)       # had it started, it must not stay
        squat.close()
    assert p.returncode != 0
    assert "another process listens on port %d" % port in err, err
    assert "serving on" not in err
    srv = subprocess.Popen([GLARED, "serve", "--config-file", conf],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: _healthy(port), 10)
    finally:
        srv.terminate()
        srv.wait(20)
        kill_group(srv.pid)


def _healthy(port):
    try:
        return requests.get("http://127.0.0.1:%d/healthcheck" % port,
                            timeout=1).status_code == 200
    except requests.RequestException:
        return False
