"""External locations: fetch and verify on registration, SSRF guard,
trust mode, redirect/proxy downloads, re-verification, delete semantics,
location selection. Contract: issue 7 (over docs/glare-contract.md
"Locations")."""
import hashlib
import http.server
import os
import socket
import socketserver
import subprocess
import threading
import time

import pytest
import requests

from conftest import ADMIN, GLARED, USER1, USER2, Server

SA = "/artifacts/sample_artifact"
LOC = {"Content-Type": "application/vnd+openstack.glare-custom-location+json"}


def data_of(n):
    return bytes((i * 7 + 3) % 251 for i in range(n))


class Fixture(http.server.BaseHTTPRequestHandler):
    """Paths: /data/N (N bytes), /mutable (settable), /slow, /404,
    /redir/K (K hops to /data/100), /loop, /to-private, /chunked/N."""
    mutable = data_of(5000)
    mutable_gone = False
    hits = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_bytes(self, data, ct="application/x-test"):
        self.send_response(200)
        self.send_header("Content-Type", ct)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        Fixture.hits.append(self.path)
        p = self.path.split("?")[0]
        port = self.server.server_address[1]
        if p.startswith("/data/"):
            self.send_bytes(data_of(int(p[6:])))
        elif p == "/mutable":
            if Fixture.mutable_gone:
                self.send_error(404)
            else:
                self.send_bytes(Fixture.mutable)
        elif p == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"s")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)
        elif p == "/404":
            self.send_error(404)
        elif p.startswith("/redir/"):
            k = int(p[7:])
            self.send_response(302)
            self.send_header("Location", "/redir/%d" % (k - 1) if k > 0
                             else "/data/100")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif p == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif p == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:%d/data/10" % port)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif p.startswith("/chunked/"):
            n = int(p[9:])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = data_of(n)
            for i in range(0, n, 1000):
                c = data[i:i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_error(404)


class TServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def fx():
    srv = TServer(("127.0.0.1", 0), Fixture)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def gs():
    s = Server({"external_location_allowed_networks": "127.0.0.1/32",
                "fetch_low_speed_limit": 100, "fetch_low_speed_time": 1,
                "fetch_timeout": 5, "fetch_max_redirects": 5,
                "artifact_type:hooks_artifact.external_download": "proxy",
                "artifact_type:images.external_location_verification":
                    "trust"})
    yield s
    s.stop()


def new(s, path=SA, token=USER1, **kw):
    body = {"name": "loc-%d" % time.time_ns()}
    body.update(kw)
    r = s.post(path, body, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def add_loc(s, af, field, body, path=SA, token=USER1):
    return s.put("%s/%s/%s" % (path, af["id"], field), json=body,
                 headers=dict(LOC), token=token)


def sums(data):
    return (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest())


def msg(r):
    return r.json()["error"]["message"]


def test_register_with_correct_checksums(gs, fx):
    af = new(gs)
    data = data_of(3000)
    md5, sha1, sha256 = sums(data)
    url = fx.url + "/data/3000"
    r = add_loc(gs, af, "blob", {"url": url, "md5": md5, "sha1": sha1,
                                 "sha256": sha256})
    assert r.status_code == 200, r.text
    blob = r.json()["blob"]
    assert blob.pop("verification")["status"] == "ok"   # fetched just now
    assert blob == {"url": url, "size": 3000, "md5": md5,
                                "sha1": sha1, "sha256": sha256,
                                "external": True, "status": "active",
                                "content_type": "application/x-test"}


def test_register_without_checksums_computes_them(gs, fx):
    af = new(gs)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/data/777",
                                 "location_type": "external"})
    assert r.status_code == 200, r.text
    b = r.json()["blob"]
    assert (b["md5"], b["sha1"], b["sha256"]) == sums(data_of(777))
    assert b["size"] == 777


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256"])
def test_each_mismatch_400_and_nothing_recorded(gs, fx, algo):
    af = new(gs)
    wrong = {"md5": "0" * 32, "sha1": "0" * 40, "sha256": "0" * 64}[algo]
    r = add_loc(gs, af, "blob", {"url": fx.url + "/data/500", algo: wrong})
    assert r.status_code == 400
    assert algo + " mismatch" in msg(r)
    assert gs.get("%s/%s" % (SA, af["id"])).json()["blob"] is None


def test_oversize_413(gs, fx):
    af = new(gs)
    r = add_loc(gs, af, "small_blob", {"url": fx.url + "/data/100"})
    assert r.status_code == 413
    r = add_loc(gs, af, "small_blob", {"url": fx.url + "/chunked/5000"})
    assert r.status_code == 413
    assert gs.get("%s/%s" % (SA, af["id"])).json()["small_blob"] is None


def test_slow_server_times_out(gs, fx):
    af = new(gs)
    t0 = time.time()
    r = add_loc(gs, af, "blob", {"url": fx.url + "/slow"})
    assert r.status_code == 400
    assert "timed out" in msg(r)
    assert time.time() - t0 < 15


def test_redirects(gs, fx):
    af = new(gs)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/redir/3"})
    assert r.status_code == 200 and r.json()["blob"]["size"] == 100
    af = new(gs)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/loop"})
    assert r.status_code == 400 and "redirect" in msg(r)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/redir/9"})
    assert r.status_code == 400 and "redirect" in msg(r)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/to-private"})
    assert r.status_code == 400 and "refusing to connect" in msg(r)


@pytest.mark.parametrize("host", [
    "127.0.0.2", "[::1]", "10.0.0.1", "172.16.3.4", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "240.0.0.1", "2130706434", "[::ffff:127.0.0.2]", "[::ffff:10.0.0.1]",
    "[64:ff9b::a00:1]", "[2002:a00:1::1]", "[fc00::1]", "[fe80::1]",
    "[::ffff:0:7f00:2]", "[::5efe:7f00:2]", "[2a00:1450::200:5efe:a00:1]",
    "198.18.0.1"])
def test_refused_address_forms(gs, fx, host):
    af = new(gs)
    port = fx.server_address[1]
    r = add_loc(gs, af, "blob", {"url": "http://%s:%d/data/10" % (host, port)})
    assert r.status_code == 400, (host, r.text)
    assert "refusing to connect" in msg(r), (host, msg(r))


def test_remote_404(gs, fx):
    af = new(gs)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/404"})
    assert r.status_code == 400 and "404" in msg(r)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd",
                                 "gopher://127.0.0.1/", "notaurl"])
def test_non_http_scheme_400(gs, url):
    af = new(gs)
    assert add_loc(gs, af, "blob", {"url": url}).status_code == 400


def test_location_body_validation(gs, fx):
    af = new(gs)
    assert add_loc(gs, af, "blob", {}).status_code == 400
    assert add_loc(gs, af, "blob", {"url": "http://x/" + "a" * 2050}) \
        .status_code == 400
    assert add_loc(gs, af, "blob", {"url": fx.url + "/data/1",
                                    "location_type": "bogus"}).status_code \
        == 400
    r = gs.put("%s/%s/blob" % (SA, af["id"]), data=b"[not json",
               headers=dict(LOC))
    assert r.status_code == 400
    # an existing blob or key cannot get a location: 409
    gs.put("%s/%s/blob" % (SA, af["id"]), data=b"x",
           headers={"Content-Type": "application/octet-stream"})
    assert add_loc(gs, af, "blob", {"url": fx.url + "/data/1"}).status_code \
        == 409


def test_location_policy(gs, fx):
    af = new(gs)
    r = add_loc(gs, af, "blob", {"url": fx.url + "/data/1"}, token=USER2)
    assert r.status_code == 404


def published_with_blobs(s, fx):
    """A public artifact of USER1 with an external "blob" and an uploaded
    mutable "small_blob"."""
    af = new(s, string_required="x")
    assert add_loc(s, af, "blob", {"url": fx.url + "/data/40"}).status_code \
        == 200
    assert s.put("%s/%s/small_blob" % (SA, af["id"]), data=b"v1",
                 headers={"Content-Type": "application/octet-stream"}
                 ).status_code == 200
    url = "%s/%s" % (SA, af["id"])
    assert s.patch(url, [{"op": "replace", "path": "/status",
                          "value": "active"}]).status_code == 200
    r = s.patch(url, [{"op": "replace", "path": "/visibility",
                       "value": "public"}], token=ADMIN)
    assert r.status_code == 200, r.text
    return af


def blob_ops(s, fx, af, token):
    """Statuses of: replace the mutable small_blob, delete the external
    blob, set a new location on it."""
    base = "%s/%s" % (SA, af["id"])
    up = s.put(base + "/small_blob", data=b"v2", token=token,
               headers={"Content-Type": "application/octet-stream"})
    de = s.delete(base + "/blob", token=token)
    lo = add_loc(s, af, "blob", {"url": fx.url + "/data/41"}, token=token)
    return up, de, lo


def test_public_blobs_change_only_by_admin(gs, fx):
    """Glared's deliberate difference from Glare: upload, set_location and
    delete_blob carry artifact:update_public, so the owner (a member)
    cannot change the content of their public artifact; an admin can."""
    af = published_with_blobs(gs, fx)
    for r in blob_ops(gs, fx, af, USER1):
        assert r.status_code == 403, r.text
        assert "Policy check for artifact:" in msg(r)
    got = gs.get("%s/%s/small_blob" % (SA, af["id"]))
    assert got.content == b"v1"
    up, de, lo = blob_ops(gs, fx, af, ADMIN)
    assert (up.status_code, de.status_code, lo.status_code) == (200, 200, 200)
    assert gs.get("%s/%s/small_blob" % (SA, af["id"])).content == b"v2"


def test_policy_file_restores_glare_blob_rules(make_server, fx, tmp_path):
    pol = tmp_path / "policy.yaml"
    pol.write_text("artifact:upload: rule:admin_or_owner\n"
                   "artifact:set_location: rule:admin_or_owner\n"
                   "artifact:delete_blob: rule:admin_or_owner\n")
    s = make_server({"oslo_policy.policy_file": str(pol),
                     "external_location_allowed_networks": "127.0.0.1/32"})
    af = published_with_blobs(s, fx)
    up, de, lo = blob_ops(s, fx, af, USER1)
    assert (up.status_code, de.status_code, lo.status_code) == (200, 200, 200)
    # another member still cannot
    for r in blob_ops(s, fx, af, USER2):
        assert r.status_code in (403, 404), r.text


def test_trust_mode_keeps_glare_behaviour(gs, fx):
    af = new(gs, path="/artifacts/images")
    r = add_loc(gs, af, "image", {"url": "http://does-not-exist.invalid/x"},
                path="/artifacts/images")
    assert r.status_code == 400 and "md5" in msg(r)
    hits = len(Fixture.hits)
    # the checksum is recorded as said, unchecked, but it must be one
    md5 = "0123456789abcdef" * 2
    r = add_loc(gs, af, "image", {"url": fx.url + "/data/10", "md5": md5},
                path="/artifacts/images")
    assert r.status_code == 200, r.text
    b = r.json()["image"]
    assert b["md5"] == md5 and b["size"] is None and b["external"] is True
    assert len(Fixture.hits) == hits            # nothing fetched


def test_redirect_download(gs, fx):
    af = new(gs)
    url = fx.url + "/data/64"
    add_loc(gs, af, "blob", {"url": url})
    r = gs.get("%s/%s/blob" % (SA, af["id"]), allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"] == url
    assert r.headers["Content-Length"] == "0"
    md5, sha1, sha256 = sums(data_of(64))
    assert r.headers["Content-MD5"] == md5
    assert r.headers["X-Openstack-Glare-Content-SHA1"] == sha1
    assert r.headers["X-Openstack-Glare-Content-SHA256"] == sha256


def test_proxy_download_and_tamper_detection(gs, fx):
    Fixture.mutable = data_of(200000)
    Fixture.mutable_gone = False
    af = new(gs, path="/artifacts/hooks_artifact")
    r = add_loc(gs, af, "blob", {"url": fx.url + "/mutable"},
                path="/artifacts/hooks_artifact")
    assert r.status_code == 200, r.text
    url = "/artifacts/hooks_artifact/%s/blob" % af["id"]
    r = gs.get(url)
    assert r.status_code == 200 and r.content == Fixture.mutable
    # same size, different bytes: the client never gets a complete body
    # (urllib3 1.26 does not enforce Content-Length, so look at the size)
    Fixture.mutable = bytes(reversed(Fixture.mutable))
    try:
        got = gs.get(url).content
    except requests.exceptions.RequestException:
        got = None
    assert got is None or len(got) < len(Fixture.mutable)
    # and the blob is flagged: downloads now refuse
    r = gs.get(url)
    assert r.status_code == 409 and "changed" in msg(r)


def test_verify_detects_change_and_clears(fx, tmp_path):
    s = Server({"external_location_allowed_networks": "127.0.0.1/32"})
    try:
        Fixture.mutable = data_of(4000)
        Fixture.mutable_gone = False
        af = new(s)
        assert add_loc(s, af, "blob", {"url": fx.url + "/mutable"}) \
            .status_code == 200
        run = lambda: subprocess.run([GLARED, "verify", "--config-file",
                                      s.conf], capture_output=True, text=True,
                                     timeout=60)
        p = run()
        assert p.returncode == 0, p.stderr
        assert "1 external blob(s), 0 changed" in p.stdout
        Fixture.mutable = data_of(4001)[1:]
        p = run()
        assert p.returncode == 3 and "1 changed" in p.stdout
        assert "changed" in p.stderr            # the log line for operators
        r = s.get("%s/%s/blob" % (SA, af["id"]), allow_redirects=False)
        assert r.status_code == 409
        Fixture.mutable_gone = True
        run()
        r = s.get("%s/%s/blob" % (SA, af["id"]), allow_redirects=False)
        assert r.status_code == 410
        Fixture.mutable_gone = False
        Fixture.mutable = data_of(4000)
        p = run()
        assert p.returncode == 0
        r = s.get("%s/%s/blob" % (SA, af["id"]), allow_redirects=False)
        assert r.status_code == 301             # verified again: cleared
    finally:
        s.stop()


def test_delete_semantics(gs, fx):
    af = new(gs)
    add_loc(gs, af, "blob", {"url": fx.url + "/data/50"})
    gs.put("%s/%s/small_blob" % (SA, af["id"]), data=b"inner",
           headers={"Content-Type": "application/octet-stream"})
    r = gs.delete("%s/%s/small_blob" % (SA, af["id"]))
    assert r.status_code == 403                 # uploaded data
    assert gs.delete("%s/%s/int1" % (SA, af["id"])).status_code == 400
    r = gs.delete("%s/%s/blob" % (SA, af["id"]))
    assert r.status_code == 200 and r.json()["blob"] is None
    assert gs.delete("%s/%s/blob" % (SA, af["id"])).status_code == 404
    # deleting an artifact never contacts the external URL
    af2 = new(gs)
    add_loc(gs, af2, "blob", {"url": fx.url + "/data/51"})
    hits = len(Fixture.hits)
    assert gs.delete("%s/%s" % (SA, af2["id"])).status_code == 204
    assert len(Fixture.hits) == hits


def test_internal_location(gs, fx):
    af = new(gs)
    body = {"url": fx.url + "/data/300", "location_type": "internal"}
    assert add_loc(gs, af, "blob", body).status_code == 403   # not admin
    r = add_loc(gs, af, "blob", body, token=ADMIN)
    assert r.status_code == 200, r.text
    b = r.json()["blob"]
    assert b["external"] is False
    assert b["url"] == "/artifacts/sample_artifact/%s/blob" % af["id"]
    assert gs.get("%s/%s/blob" % (SA, af["id"])).content == data_of(300)
    af2 = new(gs)
    r = add_loc(gs, af2, "blob", {"url": "file:///etc/passwd",
                                  "location_type": "internal"}, token=ADMIN)
    assert r.status_code == 403
    r = add_loc(gs, af2, "blob", {"url": "weird://x",
                                  "location_type": "internal"}, token=ADMIN)
    assert r.status_code == 400


def test_busy_blob_during_fetch(gs, fx):
    af = new(gs, string_required="x")
    done = {}

    def slow():
        done["r"] = add_loc(gs, af, "blob", {"url": fx.url + "/slow"})
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    # the server keeps serving everyone else meanwhile
    t0 = time.time()
    assert requests.get(gs.url + "/healthcheck").status_code == 200
    assert time.time() - t0 < 0.5
    r = gs.put("%s/%s/blob" % (SA, af["id"]), data=b"x",
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 409
    r = gs.patch("%s/%s" % (SA, af["id"]),
                 [{"op": "replace", "path": "/status", "value": "active"}])
    assert r.status_code == 409
    t.join()
    assert done["r"].status_code == 400
    assert gs.get("%s/%s" % (SA, af["id"])).json()["blob"] is None


def test_location_selection(gs, fx):
    path = "/artifacts/regional_images"
    af = new(gs, path=path)
    for region in ("RegionOne", "eu-west", "us-east"):
        r = add_loc(gs, af, "locations/" + region,
                    {"url": fx.url + "/data/1000?r=" + region}, path=path)
        assert r.status_code == 200, r.text
    # a copy with other bytes is refused: the folder holds one blob
    r = add_loc(gs, af, "locations/asia", {"url": fx.url + "/data/999"},
                path=path)
    assert r.status_code == 409
    url = "%s/%s/locations" % (path, af["id"])
    r = gs.get(url, headers={"X-Region": "eu-west"}, allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"].endswith("r=eu-west")
    r = gs.get(url, allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"].endswith("r=RegionOne")
    r = gs.get(url, headers={"X-Region": "mars"}, allow_redirects=False)
    assert r.headers["Location"].endswith("r=RegionOne")
    # without a selection hook a folder without key stays 400
    sa = new(gs)
    assert gs.get("%s/%s/dict_of_blobs" % (SA, sa["id"])).status_code == 400


def test_no_allow_list_refuses_loopback(fx):
    s = Server()
    try:
        af = new(s)
        r = add_loc(s, af, "blob", {"url": fx.url + "/data/10"})
        assert r.status_code == 400 and "refusing to connect" in msg(r)
    finally:
        s.stop()


def test_parallel_verifiers_split_the_work(fx):
    s = Server({"external_location_allowed_networks": "127.0.0.1/32"})
    try:
        n = 12
        for i in range(n):
            af = new(s)
            r = add_loc(s, af, "blob", {"url": fx.url + "/data/%d" % (2000 + i)})
            assert r.status_code == 200
        time.sleep(1.5)   # registration counts as a verification
        before = len([h for h in Fixture.hits if h.startswith("/data/2")])
        procs = [subprocess.Popen([GLARED, "verify", "--config-file", s.conf,
                                   "--min-age", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
        outs = [p.communicate(timeout=60)[0] for p in procs]
        fetched = len([h for h in Fixture.hits
                       if h.startswith("/data/2")]) - before
        # every blob checked once in all, whoever checked it
        assert fetched == n, (fetched, outs)
        total = sum(int(o.split()[1]) for o in outs)
        assert total == n, outs
    finally:
        s.stop()
