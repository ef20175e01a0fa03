"""Artifact events through the transactional outbox: webhook subscriptions
(API, policy, filters), every event type with Glare's payload, signatures,
retries with backoff, failure after the retry period, the SSRF guard on
every delivery, crash safety (SIGKILL between commit and delivery, and
during a delivery), exactly-once claims across workers / nodes, and
verification outcomes with conditional re-checks. Contract: issue 16
parts 2 and 3, docs/notifications.md."""
import hashlib
import hmac
import http.server
import json
import os
import signal
import socketserver
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ADMIN, CLUSTER, GLARED, USER1, USER2, Server

SA = "/artifacts/sample_artifact"
LOC = {"Content-Type": "application/vnd+openstack.glare-custom-location+json"}
PAYLOAD_KEYS = {"type", "id", "name", "version", "visibility", "status",
                "owner", "description", "created_at", "updated_at",
                "activated_at"}
VERIFY_KEYS = {"blob", "key", "url", "expected_size", "expected_sha256",
               "observed_size", "observed_sha256", "reason"}


class TServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Receiver:
    """A loopback webhook receiver. Each path /<name> is one subscriber
    with its own secret; `fail[name]` answers that many requests of each
    event with 500 before a 200; `hold` delays every answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []            # every request: dict
        self.secrets = {}
        self.fail = {}
        self.hold = 0.0
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                name = self.path.strip("/")
                secret = rcv.secrets.get(name)
                sig = self.headers.get("X-Glare-Signature")
                want = None
                if secret:
                    want = "sha256=" + hmac.new(secret.encode(), body,
                                                hashlib.sha256).hexdigest()
                doc = json.loads(body)
                with rcv.lock:
                    tries = sum(1 for g in rcv.got if g["name"] == name and
                                g["doc"]["event_id"] == doc["event_id"])
                    code = 500 if tries < rcv.fail.get(name, 0) else 200
                    rcv.got.append({
                        "name": name, "doc": doc, "code": code,
                        "t": time.time(),
                        "sig_ok": sig == want,
                        "event": self.headers.get("X-Glare-Event"),
                        "delivery": self.headers.get("X-Glare-Delivery"),
                        "ctype": self.headers.get("Content-Type")})
                if rcv.hold:
                    time.sleep(rcv.hold)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = TServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, name, host="127.0.0.1"):
        return "http://%s:%d/%s" % (host, self.port, name)

    def ok(self, name):
        """Successful receipts of a subscriber, in arrival order."""
        with self.lock:
            return [g for g in self.got if g["name"] == name and
                    g["code"] == 200]

    def all(self, name):
        with self.lock:
            return [g for g in self.got if g["name"] == name]

    def wait(self, name, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.ok(name)) >= n:
                return self.ok(name)
            time.sleep(0.05)
        return self.ok(name)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Data(http.server.BaseHTTPRequestHandler):
    """External blob fixture with validators: /blob serves `body`, 404 when
    `gone`; counts full and conditional (304) answers."""
    body = b"x" * 1000
    gone = False
    etag = '"v1"'
    full = 0
    not_modified = 0
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if Data.gone:
            self.send_error(404)
            return
        if self.headers.get("If-None-Match") == Data.etag:
            Data.not_modified += 1
            self.send_response(304)
            self.send_header("ETag", Data.etag)
            self.end_headers()
            return
        Data.full += 1
        self.send_response(200)
        self.send_header("ETag", Data.etag)
        self.send_header("Content-Length", str(len(Data.body)))
        self.end_headers()
        self.wfile.write(Data.body)


@pytest.fixture(scope="module")
def rcv():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def data_srv():
    srv = TServer(("127.0.0.1", 0), Data)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.url = "http://127.0.0.1:%d/blob" % srv.server_address[1]
    yield srv
    srv.shutdown()
    srv.server_close()


# what a second node adds nothing to runs in the single-node pass only
single = pytest.mark.skipif(CLUSTER, reason="node-independent; runs in the "
                                            "single-node pass")

OPTS = {"external_location_allowed_networks": "127.0.0.1/32",
        "events.retry_initial_delay_ms": 100,
        "events.retry_max_delay_ms": 400}


@pytest.fixture(scope="module")
def ws():
    # two workers on SQLite, two nodes on PostgreSQL: every test here runs
    # with several deliverers competing for the same outbox
    s = Server(dict(OPTS), workers=1 if CLUSTER else 2)
    yield s
    s.stop()


def subscribe(s, rcv, events=("*",), token=USER1, secret=None, **kw):
    name = "s-" + uuid.uuid4().hex[:10]
    body = {"url": rcv.url(name), "events": list(events)}
    if secret is None:
        secret = uuid.uuid4().hex
    if secret:
        body["secret"] = secret
        rcv.secrets[name] = secret
    body.update(kw)
    r = s.post("/subscriptions", body, token=token)
    assert r.status_code == 201, r.text
    return name, r.json()


def new(s, token=USER1, **kw):
    body = {"name": "ev-" + uuid.uuid4().hex[:10]}
    body.update(kw)
    r = s.post(SA, body, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def patch(s, af, ops, token=USER1):
    return s.patch("%s/%s" % (SA, af["id"]), ops, token=token)


def deliveries(s, sid):
    r = s.get("/subscriptions/%s/deliveries" % sid)
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def wait_status(s, sid, status, timeout=30):
    """The subscription's deliveries once the newest has `status`."""
    deadline = time.time() + timeout
    d = []
    while time.time() < deadline:
        d = deliveries(s, sid)
        if d and d[0]["status"] == status:
            break
        time.sleep(0.1)
    return d


def types_of(got):
    return [g["doc"]["event_type"].split(":", 1)[1] for g in got]


def by_delivery(got):
    return sorted(got, key=lambda g: int(g["delivery"]))


# ---- the API ---------------------------------------------------------------

def test_subscription_api(ws, rcv):
    name, sub = subscribe(ws, rcv, events=["create", "artifact.artifact:delete",
                                           "create"], secret="k1")
    assert sub["events"] == ["create", "delete"]
    assert sub["owner"] == "project1" and sub["has_secret"] is True
    assert "secret" not in sub and sub["all_projects"] is False
    assert sub["type"] is None and sub["artifact_id"] is None
    sid = sub["id"]
    r = ws.get("/subscriptions/" + sid)
    assert r.status_code == 200 and r.json() == sub
    ids = [x["id"] for x in ws.get("/subscriptions").json()["subscriptions"]]
    assert sid in ids
    # another project neither sees nor touches it; an admin sees all
    assert ws.get("/subscriptions/" + sid, token=USER2).status_code == 404
    assert ws.delete("/subscriptions/" + sid, token=USER2).status_code == 404
    assert ws.get("/subscriptions/%s/deliveries" % sid,
                  token=USER2).status_code == 404
    assert sid not in [x["id"] for x in ws.get(
        "/subscriptions", token=USER2).json()["subscriptions"]]
    assert sid in [x["id"] for x in ws.get(
        "/subscriptions", token=ADMIN).json()["subscriptions"]]
    assert ws.get("/subscriptions/" + sid, token=ADMIN).status_code == 200
    assert ws.get("/subscriptions", token=None).status_code in (401, 403)
    r = ws.get("/subscriptions/%s/deliveries?limit=0" % sid)
    assert r.status_code == 400
    assert ws.get("/subscriptions/%s/deliveries" % sid).json() == \
        {"deliveries": []}
    assert ws.req("PUT", "/subscriptions/" + sid).status_code == 405
    assert ws.delete("/subscriptions/" + sid).status_code == 204
    assert ws.get("/subscriptions/" + sid).status_code == 404
    assert ws.delete("/subscriptions/" + sid).status_code == 404


@single
@pytest.mark.parametrize("body", [
    None, [], {"events": ["*"]},
    {"url": "ftp://127.0.0.1/x", "events": ["*"]},
    {"url": "http://", "events": ["*"]},
    {"url": "http://127.0.0.1:1/x", "events": []},
    {"url": "http://127.0.0.1:1/x", "events": ["explode"]},
    {"url": "http://127.0.0.1:1/x", "events": "create"},
    {"url": "http://127.0.0.1:1/x", "events": [1]},
    {"url": "http://127.0.0.1:1/x", "events": ["*"], "secret": 5},
    {"url": "http://127.0.0.1:1/x", "events": ["*"], "secret": ""},
    {"url": "http://127.0.0.1:1/x", "events": ["*"], "color": "red"},
    {"url": "http://127.0.0.1:1/x", "events": ["*"], "type": "no_such"},
    {"url": "http://127.0.0.1:1/x", "events": ["*"],
     "artifact_id": str(uuid.uuid4())},
    {"url": "http://127.0.0.1:1/" + "x" * 3000, "events": ["*"]},
])
def test_subscription_bad_input(ws, body):
    before = len(ws.get("/subscriptions").json()["subscriptions"])
    r = ws.post("/subscriptions", body)
    assert 400 <= r.status_code < 500 and r.status_code != 403, r.text
    assert "message" in r.text or "title" in r.text
    assert len(ws.get("/subscriptions").json()["subscriptions"]) == before


@single
def test_subscription_guard_and_limit(make_server, rcv):
    s = make_server({"events.max_subscriptions": 2})
    # without an allow-list, loopback addresses are refused outright...
    r = s.post("/subscriptions", {"url": rcv.url("x"), "events": ["*"]})
    assert r.status_code == 400 and "loopback" in r.text
    r = s.post("/subscriptions", {"url": "http://[::1]:9/x", "events": ["*"]})
    assert r.status_code == 400
    # ...and names are judged at delivery (below): accepted here
    for i in range(2):
        r = s.post("/subscriptions", {"url": "http://localhost:9/%d" % i,
                                      "events": ["*"]})
        assert r.status_code == 201, r.text
    r = s.post("/subscriptions", {"url": "http://localhost:9/3",
                                  "events": ["*"]})
    assert r.status_code == 403 and "Maximum number" in r.text
    # the limit is per project
    r = s.post("/subscriptions", {"url": "http://localhost:9/3",
                                  "events": ["*"]}, token=USER2)
    assert r.status_code == 201


@single
def test_ssrf_guard_on_every_delivery(make_server, rcv):
    """A name that resolves to loopback passes creation; the guard refuses
    the connection when the webhook is sent, and keeps refusing."""
    s = make_server({"events.retry_initial_delay_ms": 100,
                     "events.retry_max_delay_ms": 200,
                     "events.webhook_retry_period": 2})
    name = "guard-" + uuid.uuid4().hex[:8]
    r = s.post("/subscriptions", {"url": rcv.url(name, host="localhost"),
                                  "events": ["create"]})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    new(s)
    d = wait_status(s, sid, "failed")
    assert d and d[0]["status"] == "failed", d
    assert d[0]["attempts"] >= 2
    assert "loopback" in d[0]["last_error"]
    assert d[0]["last_status_code"] is None
    assert rcv.all(name) == []          # nothing ever reached the receiver


# ---- events and payloads -----------------------------------------------------

def check_delivery(g, secret=True):
    assert g["sig_ok"], g
    assert g["ctype"] == "application/json"
    doc = g["doc"]
    assert g["event"] == doc["event_type"]
    assert doc["event_type"].startswith("artifact.artifact:")
    uuid.UUID(doc["event_id"])
    assert doc["time"].endswith("Z") and "T" in doc["time"]
    return doc


def test_every_event_type(ws, rcv, data_srv):
    name, _ = subscribe(ws, rcv)
    Data.gone = False
    af = new(ws, string_required="s", description="first")
    aid = af["id"]
    # a no-op patch and a refused one send nothing
    assert patch(ws, af, [{"op": "replace", "path": "/description",
                           "value": "first"}]).status_code == 200
    assert patch(ws, af, [{"op": "replace", "path": "/status",
                           "value": "deactivated"}]).status_code == 403
    assert patch(ws, af, [{"op": "replace", "path": "/description",
                           "value": "second"}]).status_code == 200
    r = ws.put("%s/%s/small_blob" % (SA, aid), data=b"12345",
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    r = ws.put("%s/%s/blob" % (SA, aid), json={"url": data_srv.url},
               headers=dict(LOC))
    assert r.status_code == 200, r.text
    assert ws.delete("%s/%s/blob" % (SA, aid)).status_code == 200
    assert patch(ws, af, [{"op": "replace", "path": "/status",
                           "value": "active"}]).status_code == 200
    assert patch(ws, af, [{"op": "replace", "path": "/visibility",
                           "value": "public"}], token=ADMIN).status_code == 200
    assert patch(ws, af, [{"op": "replace", "path": "/status",
                           "value": "deactivated"}],
                 token=ADMIN).status_code == 200
    assert patch(ws, af, [{"op": "replace", "path": "/status",
                           "value": "active"}], token=ADMIN).status_code == 200
    before = ws.get("%s/%s" % (SA, aid)).json()
    assert ws.delete("%s/%s" % (SA, aid), token=ADMIN).status_code == 204
    want = ["create", "update", "upload", "set_location", "delete_blob",
            "update", "activate", "update", "publish", "update",
            "deactivate", "update", "reactivate", "delete"]
    got = by_delivery(rcv.wait(name, len(want)))
    time.sleep(0.5)  # nothing more may come
    got = by_delivery(rcv.ok(name))
    assert types_of(got) == want
    ids = set()
    for g in got:
        doc = check_delivery(g)
        assert set(doc) == PAYLOAD_KEYS | {"event_type", "event_id", "time"}
        assert doc["type"] == "sample_artifact" and doc["id"] == aid
        assert doc["owner"] == "project1" and doc["name"] == af["name"]
        ids.add(doc["event_id"])
    assert len(ids) == len(want)            # one event id per event
    docs = [g["doc"] for g in got]
    assert docs[0]["description"] == "first" and docs[0]["status"] == \
        "drafted" and docs[0]["activated_at"] is None
    assert docs[0]["created_at"].startswith(af["created_at"][:19])
    assert docs[1]["description"] == "second"
    assert docs[6]["status"] == "active" and docs[6]["activated_at"]
    assert docs[8]["visibility"] == "public"
    assert docs[10]["status"] == "deactivated"
    # delete carries the state before deletion
    assert docs[13]["status"] == before["status"] == "active"
    assert docs[13]["visibility"] == "public"
    # the history of the subscription shows each, delivered
    sid = [x for x in ws.get("/subscriptions").json()["subscriptions"]
           if x["url"].endswith(name)][0]["id"]
    d = wait_status(ws, sid, "delivered")
    assert [x["status"] for x in d] == ["delivered"] * len(want)
    assert [x["event_type"].split(":")[1] for x in d] == want[::-1]
    assert all(x["last_status_code"] == 200 for x in d)


def test_set_quotas_event(ws, rcv):
    admin_name, admin_sub = subscribe(ws, rcv, events=["set_quotas"],
                                      token=ADMIN)
    assert admin_sub["all_projects"] is True
    user_name, _ = subscribe(ws, rcv, events=["set_quotas"])
    r = ws.req("PUT", "/quotas", token=ADMIN, json=[
        {"project_id": "p-" + uuid.uuid4().hex[:6], "project_quotas": [
            {"quota_name": "max_artifact_number", "quota_value": 5}]}],
        headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    got = rcv.wait(admin_name, 1)
    assert len(got) == 1
    doc = check_delivery(got[0])
    assert set(doc) == {"event_type", "event_id", "time"}   # null payload
    assert doc["event_type"] == "artifact.artifact:set_quotas"
    time.sleep(0.5)
    assert rcv.all(user_name) == []          # not a project's event


def test_filters_and_visibility(ws, rcv):
    a1 = new(ws)
    by_type, _ = subscribe(ws, rcv, events=["update"], type="sample_artifact")
    other_type, _ = subscribe(ws, rcv, events=["update"], type="images")
    by_id, _ = subscribe(ws, rcv, events=["update"], artifact_id=a1["id"])
    stranger, _ = subscribe(ws, rcv, events=["update", "publish"],
                            token=USER2)
    a2 = new(ws)
    for af in (a1, a2):
        assert patch(ws, af, [{"op": "replace", "path": "/description",
                               "value": "x"}]).status_code == 200
    assert len(rcv.wait(by_type, 2)) == 2
    assert [g["doc"]["id"] for g in rcv.wait(by_id, 1)] == [a1["id"]]
    # another project does not see private artifacts...
    time.sleep(0.5)
    assert rcv.all(other_type) == [] and rcv.all(stranger) == []
    assert len(rcv.ok(by_id)) == 1
    # ...but sees public ones
    assert patch(ws, a1, [{"op": "replace", "path": "/string_required",
                           "value": "s"},
                          {"op": "replace", "path": "/status",
                           "value": "active"}]).status_code == 200
    assert patch(ws, a1, [{"op": "replace", "path": "/visibility",
                           "value": "public"}], token=ADMIN).status_code == 200
    got = rcv.wait(stranger, 2)
    assert types_of(by_delivery(got)) == ["update", "publish"]


def test_retries_then_delivered(ws, rcv):
    name, sub = subscribe(ws, rcv, events=["create"])
    rcv.fail[name] = 3                      # three 500s for each event
    af = new(ws)
    got = rcv.wait(name, 1)
    assert len(got) == 1 and got[0]["doc"]["id"] == af["id"]
    tries = rcv.all(name)
    assert [g["code"] for g in tries] == [500, 500, 500, 200]
    assert len({g["doc"]["event_id"] for g in tries}) == 1
    assert len({g["delivery"] for g in tries}) == 1   # same delivery id
    assert all(g["sig_ok"] for g in tries)
    # the receiver's 200 comes before glared records it
    d = wait_status(ws, sub["id"], "delivered")[0]
    assert d["status"] == "delivered" and d["attempts"] == 4
    assert d["last_status_code"] == 200 and d["last_error"] is None
    time.sleep(0.6)
    assert len(rcv.all(name)) == 4          # no duplicate after success


@single
def test_backoff_grows(make_server, rcv):
    """Exponential backoff with jitter: the n-th retry waits between half
    and all of initial * 2^(n-1) (capped), never less."""
    s = make_server(dict(OPTS, **{"events.retry_initial_delay_ms": 300,
                                  "events.retry_max_delay_ms": 1200}))
    name, _ = subscribe(s, rcv, events=["create"])
    rcv.fail[name] = 4
    new(s)
    rcv.wait(name, 1, timeout=40)
    t = rcv.all(name)
    assert [g["code"] for g in t] == [500] * 4 + [200]
    gaps = [b["t"] - a["t"] for a, b in zip(t, t[1:])]
    for gap, d in zip(gaps, (0.3, 0.6, 1.2, 1.2)):
        assert gap >= d / 2 - 0.05, gaps
    assert gaps[2] >= 0.55 and gaps[0] < 2.5, gaps


@single
def test_failed_after_retry_period(make_server, rcv):
    s = make_server(dict(OPTS, **{"events.webhook_retry_period": 2}))
    name, sub = subscribe(s, rcv, events=["create"])
    rcv.fail[name] = 10 ** 6
    new(s)
    d = wait_status(s, sub["id"], "failed")
    assert d[0]["status"] == "failed" and d[0]["last_status_code"] == 500
    assert d[0]["finished_at"] and d[0]["next_attempt_at"] is None
    n = len(rcv.all(name))
    assert n >= 2
    time.sleep(1)
    assert len(rcv.all(name)) == n           # given up: no more attempts


@single
def test_delete_subscription_drops_pending(make_server, rcv):
    s = make_server(dict(OPTS, **{"events.retry_initial_delay_ms": 1000}))
    name, sub = subscribe(s, rcv, events=["create"])
    rcv.fail[name] = 10 ** 6
    new(s)
    deadline = time.time() + 10
    while not rcv.all(name) and time.time() < deadline:
        time.sleep(0.05)
    assert s.delete("/subscriptions/" + sub["id"]).status_code == 204
    n = len(rcv.all(name))
    time.sleep(2.5)
    assert len(rcv.all(name)) == n


# ---- crash safety and exactly-once claims --------------------------------------

def test_sigkill_between_commit_and_delivery(make_server, rcv):
    """A node that only writes the outbox is killed; the events committed
    before the kill are delivered after the restart, once each."""
    s = make_server(dict(OPTS, **{"events.deliver": False}))
    name, _ = subscribe(s, rcv, events=["create", "update"])
    ids = []
    for _ in range(5):
        af = new(s)
        ids.append(af["id"])
        assert patch(s, af, [{"op": "replace", "path": "/description",
                              "value": "k"}]).status_code == 200
    time.sleep(0.5)
    assert rcv.all(name) == []               # nothing delivered yet
    s.stop(signal.SIGKILL)
    for opts in ([s.nodes[i][1] for i in range(len(s.nodes))]):
        with open(opts) as f:
            text = f.read()
        with open(opts, "w") as f:
            f.write(text.replace("deliver = false", "deliver = true"))
    s.start()
    got = rcv.wait(name, 10)
    time.sleep(0.5)
    got = rcv.ok(name)
    assert len(got) == 10
    assert sorted(g["doc"]["id"] for g in got) == sorted(ids * 2)
    assert len({g["doc"]["event_id"] for g in got}) == 10


def test_sigkill_during_delivery(make_server, rcv):
    """A webhook in flight when its node is killed: the claim of the dead
    process is released at restart and the event is delivered (at least
    once: the receiver may see it twice, with one event id)."""
    s = make_server(dict(OPTS))
    name, _ = subscribe(s, rcv, events=["create"])
    rcv.hold = 3.0
    try:
        af = new(s)
        deadline = time.time() + 10
        while not rcv.all(name) and time.time() < deadline:
            time.sleep(0.02)
        assert rcv.all(name)                 # the request is in flight
        s.stop(signal.SIGKILL)
    finally:
        rcv.hold = 0.0
    s.start()
    deadline = time.time() + 30
    while time.time() < deadline and len(rcv.all(name)) < 2:
        time.sleep(0.05)
    got = rcv.all(name)
    assert len(got) >= 2
    assert {g["doc"]["event_id"] for g in got} == {got[0]["doc"]["event_id"]}
    assert got[0]["doc"]["id"] == af["id"]
    sid = s.get("/subscriptions").json()["subscriptions"][0]["id"]
    assert wait_status(s, sid, "delivered")[0]["status"] == "delivered"


def test_each_event_delivered_once(ws, rcv):
    """Every worker (SQLite) or node (PostgreSQL) delivers; each event
    reaches the receiver exactly once."""
    name, _ = subscribe(ws, rcv, events=["create", "update"])
    n = 30
    afs = []
    errors = []

    def burst(k):
        try:
            for _ in range(k):
                af = new(ws)
                afs.append(af["id"])
                assert patch(ws, af, [{"op": "replace", "path":
                                       "/description", "value": "z"}]) \
                    .status_code == 200
        except AssertionError as e:
            errors.append(e)
    ts = [threading.Thread(target=burst, args=(n // 3,)) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    got = rcv.wait(name, 2 * n, timeout=60)
    time.sleep(1)
    got = rcv.all(name)
    assert len(got) == 2 * n, len(got)
    assert len({g["doc"]["event_id"] for g in got}) == 2 * n
    assert len({g["delivery"] for g in got}) == 2 * n
    assert sorted(g["doc"]["id"] for g in got) == sorted(afs * 2)


# ---- watched external locations ----------------------------------------------------

def run_verify(s):
    return subprocess.run([GLARED, "verify", "--config-file", s.conf],
                          capture_output=True, text=True, timeout=120)


def test_verify_events(make_server, rcv, data_srv):
    s = make_server(dict(OPTS))
    name, _ = subscribe(s, rcv, events=["verify_changed", "verify_gone",
                                        "verify_restored"])
    Data.body = b"v" * 1000
    Data.gone = False
    Data.etag = '"a"'
    af = new(s)
    r = s.put("%s/%s/blob" % (SA, af["id"]), json={"url": data_srv.url},
              headers=dict(LOC))
    assert r.status_code == 200, r.text
    sha = hashlib.sha256(Data.body).hexdigest()
    assert run_verify(s).returncode == 0      # unchanged: no event
    Data.body = b"w" * 1001
    Data.etag = '"b"'
    assert run_verify(s).returncode == 3
    assert run_verify(s).returncode == 3      # still changed: no new event
    Data.gone = True
    assert run_verify(s).returncode == 3
    Data.gone = False
    Data.body = b"v" * 1000
    assert run_verify(s).returncode == 0
    got = by_delivery(rcv.wait(name, 3))
    time.sleep(0.5)
    got = by_delivery(rcv.ok(name))
    assert types_of(got) == ["verify_changed", "verify_gone",
                             "verify_restored"]
    for g in got:
        doc = check_delivery(g)
        assert set(doc) == PAYLOAD_KEYS | VERIFY_KEYS | \
            {"event_type", "event_id", "time"}
        assert doc["id"] == af["id"] and doc["blob"] == "blob"
        assert doc["key"] is None and doc["url"] == data_srv.url
        assert doc["expected_size"] == 1000 and doc["expected_sha256"] == sha
    ch, gone, back = (g["doc"] for g in got)
    assert ch["observed_size"] is None or ch["observed_size"] != 1000
    assert "more bytes" in ch["reason"] or "size" in ch["reason"]
    assert gone["observed_size"] is None and gone["observed_sha256"] is None
    assert back["observed_size"] == 1000 and back["observed_sha256"] == sha
    assert back["reason"] is None


@single
def test_conditional_checks_between_rehashes(make_server, rcv, data_srv):
    s = make_server(dict(OPTS, **{
        "artifact_type:sample_artifact.external_location_check_interval": 1,
        "artifact_type:sample_artifact.external_location_rehash_interval":
            4}))
    name, _ = subscribe(s, rcv, events=["verify_changed"])
    Data.body = b"c" * 500
    Data.gone = False
    Data.etag = '"c1"'
    af = new(s)
    assert s.put("%s/%s/blob" % (SA, af["id"]), json={"url": data_srv.url},
                 headers=dict(LOC)).status_code == 200
    full0 = Data.full
    assert run_verify(s).returncode == 0     # registered just now: not due
    assert Data.full == full0
    time.sleep(1.2)
    t_first = time.time()
    assert run_verify(s).returncode == 0     # first check: a full re-hash
    assert Data.full == full0 + 1
    # within the check interval: nothing is fetched (on a machine so busy
    # that both runs take the whole interval the check is due again: a
    # 304 then)
    nm0 = Data.not_modified
    assert run_verify(s).returncode == 0
    if time.time() - t_first < 1:
        assert Data.not_modified == nm0
    assert Data.full == full0 + 1
    nm0 = Data.not_modified
    # due again, within the re-hash interval: a conditional request, 304
    time.sleep(1.2)
    assert run_verify(s).returncode == 0
    assert Data.not_modified == nm0 + 1 and Data.full == full0 + 1
    # a change the validator reveals: 200 with new bytes, hashed, flagged
    Data.body = b"d" * 500
    Data.etag = '"c2"'
    time.sleep(1.2)
    assert run_verify(s).returncode == 3
    assert Data.full == full0 + 2
    got = rcv.wait(name, 1)
    assert types_of(got) == ["verify_changed"]
    assert got[0]["doc"]["observed_sha256"] == \
        hashlib.sha256(Data.body).hexdigest()
    # a flagged blob is never judged by a 304: the next check re-hashes
    time.sleep(1.2)
    assert run_verify(s).returncode == 3
    assert Data.full == full0 + 3
    # the re-hash schedule holds even when the validator never changes
    Data.body = b"c" * 500
    Data.etag = '"c1"'
    time.sleep(1.2)
    assert run_verify(s).returncode == 0          # restored by a re-hash
    full1 = Data.full
    time.sleep(1.2)
    run_verify(s)                                 # 304
    assert Data.full == full1
    time.sleep(3.0)                               # past the re-hash interval
    run_verify(s)
    assert Data.full == full1 + 1
