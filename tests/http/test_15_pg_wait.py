"""PostgreSQL behind a slow network (scripts/delayproxy.py adds a delay each
way): a worker waits for the database in coroutines, so its requests
overlap; a client that leaves, or a SIGTERM, while requests wait changes
nothing for the others and ends cleanly. Runs only in the two-node pass
of make test (GLARED_TEST_CLUSTER=1: PostgreSQL is there)."""
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import CLUSTER, ROOT, USER1, new_pg_database, raw, status_of

pytestmark = pytest.mark.skipif(not CLUSTER, reason="needs PostgreSQL")

SA = "/artifacts/sample_artifact"
H = {"X-Auth-Token": USER1}


@pytest.fixture
def slow_db():
    """A fresh database reached through a proxy that delays every byte by
    DELAY_MS each way; yields its URL."""
    url = new_pg_database()
    m = re.match(r"(postgresql://[^@]*@)([^:/]+):(\d+)(/.*)", url)
    assert m, url
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable,
                          os.path.join(ROOT, "scripts", "delayproxy.py"),
                          str(port), m.group(3), str(slow_db.delay_ms)],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield "%s127.0.0.1:%d%s" % (m.group(1), port, m.group(4))
    finally:
        p.terminate()
        p.wait(10)


slow_db.delay_ms = 100  # a round trip: +200 ms


def one_node(make_server, url, **opts):
    options = {"database.connection": url}
    options.update(opts)
    s = make_server(options)
    return s, s.urls[0]


def starts(log, path):
    """When each 200 to GET path began, in seconds: its access log line is
    written once the answer is out, with the time the request took."""
    out = []
    for m in re.finditer(r"^(\S+) glared\[\d+\] info: access: GET %s 200 "
                         r"\S+ ([\d.]+)ms" % re.escape(path), log, re.M):
        end = datetime.datetime.strptime(
            m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        out.append(end - float(m.group(2)) / 1000)
    return sorted(out)


def begun_together(began):
    """How many began within 150 ms of the first: less than one round
    trip to the database (200 ms), so a worker that blocks on it has
    begun no second one by then."""
    return sum(1 for t in began if t < began[0] + 0.15)


def test_requests_overlap_while_they_wait(make_server, slow_db):
    """Eight shows, each at least one 200 ms round trip: blocking, the
    worker would serve them one after the other; in coroutines they are
    in service at once (the server's own access log says when each began,
    so the machine's load does not decide). Meanwhile the
    healthcheck (no database) answers."""
    s, url = one_node(make_server, slow_db)
    af = requests.post(url + SA, json={"name": "w"}, headers=H).json()
    out = []

    def show():
        r = requests.get(url + SA + "/" + af["id"], headers=H, timeout=30)
        out.append(r.status_code)
    threads = [threading.Thread(target=show) for _ in range(8)]
    for t in threads:
        t.start()
    hc = requests.get(url + "/healthcheck", timeout=30)
    for t in threads:
        t.join(60)
    assert hc.status_code == 200
    assert out == [200] * 8
    began = starts(s.read_log(), SA + "/" + af["id"])
    assert len(began) == 8
    # in service at once: the pool's 5 connections wait together
    assert begun_together(began) >= 3, began


def test_blocking_queries_switch(make_server, slow_db):
    """[database] blocking_queries = true: the same shows one at a time."""
    s, url = one_node(make_server, slow_db,
                      **{"database.blocking_queries": True})
    af = requests.post(url + SA, json={"name": "w"}, headers=H).json()
    threads = [threading.Thread(target=lambda: requests.get(
        url + SA + "/" + af["id"], headers=H, timeout=30))
        for _ in range(6)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert time.monotonic() - t0 >= 6 * 0.2
    # each begins once the one before has had its answer from the
    # database (the same measure as the overlap case's)
    began = starts(s.read_log(), SA + "/" + af["id"])
    assert len(began) == 6
    assert begun_together(began) == 1, began


def send_and_leave(url, body):
    """POST a create and close the socket before any answer."""
    host, port = re.match(r"http://([^:]+):(\d+)", url).groups()
    data = ('POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n'
            'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s'
            % (SA, USER1, len(body), body)).encode()
    with socket.create_connection((host, int(port))) as c:
        c.sendall(data)
        time.sleep(0.05)  # the request is in, its coroutine waits


def test_client_leaves_while_its_request_waits(make_server, slow_db):
    """Clients that leave mid-wait: their requests run to their end (each
    create commits whole or not at all), the worker serves on."""
    s, url = one_node(make_server, slow_db)
    for i in range(6):
        send_and_leave(url, '{"name": "gone-%d"}' % i)
    time.sleep(2)  # the abandoned requests finish
    r = requests.get(url + SA + "?limit=100", headers=H, timeout=30)
    assert r.status_code == 200
    for a in r.json()["artifacts"]:
        assert a["name"].startswith("gone-")
        # a whole artifact, readable
        assert requests.get(url + SA + "/" + a["id"], headers=H,
                            timeout=30).status_code == 200
    r = requests.post(url + SA, json={"name": "after"}, headers=H, timeout=30)
    assert r.status_code == 201
    assert " error: " not in s.read_log()


def test_sigterm_while_requests_wait(make_server, slow_db):
    """SIGTERM with requests waiting for the database: graceful, they are
    answered and the worker exits 0; with shutdown_timeout = 0 the waits
    are cut (503 to no one), and it still exits 0, promptly."""
    for timeout, answered in ((30, True), (0, False)):
        s, url = one_node(make_server, slow_db, shutdown_timeout=timeout)
        r = requests.post(url + SA, json={"name": "t%d" % timeout},
                          headers=H)
        assert r.status_code == 201, r.text
        af = r.json()
        codes = []

        def show():
            try:
                r = requests.get(url + SA + "/" + af["id"], headers=H,
                                 timeout=30)
                codes.append(r.status_code)
            except requests.RequestException:
                codes.append(None)
        threads = [threading.Thread(target=show) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.1)  # in, and waiting
        t0 = time.monotonic()
        assert s.stop(signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 10
        for t in threads:
            t.join(30)
        if answered:
            assert codes == [200] * 4
        log = s.read_log()
        assert "did not finish" not in log, log


def half_closed(url, request):
    """Send request and half-close (the client has said all); the status
    and the whole answer."""
    port = int(url.rsplit(":", 1)[1])
    out = raw(port, request, timeout=30, shut=True)
    return status_of(out), out


def test_half_closed_client_is_answered_while_its_request_waits(
        make_server, slow_db):
    """A client that half-closes after its whole request (a GET, a POST
    with its body) while the request waits for the database still gets
    its answer: the end of its input is not the end of the request."""
    s, url = one_node(make_server, slow_db)
    af = requests.post(url + SA, json={"name": "h"}, headers=H).json()
    code, data = half_closed(
        url, "GET %s/%s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n\r\n"
        % (SA, af["id"], USER1))
    assert code == 200 and af["id"].encode() in data
    body = '{"name": "half"}'
    code, data = half_closed(
        url, "POST %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (SA, USER1, len(body), body))
    assert code == 201, data
    names = [a["name"] for a in requests.get(
        url + SA + "?limit=100", headers=H, timeout=30).json()["artifacts"]]
    assert "half" in names
    assert " error: " not in s.read_log()


def test_token_check_then_database_wait(make_server, slow_db):
    """Both ways a request waits, one after the other: its body held for
    a token check (the key set is fetched first), then its handler in a
    coroutine waiting for the database (upload: the artifact is read
    before the body is taken). Each is answered once, right; a client
    that leaves in either wait costs nothing."""
    from oidc_issuer import Issuer, Key
    issuer = Issuer()
    try:
        key = Key("RSA")
        issuer.publish("demo", [key])
        opts = {"paste_deploy.flavor": "keycloak",
                "keycloak_oidc.auth_url": issuer.base}
        tok = issuer.token("demo", key)
        th = {"X-Auth-Token": tok}
        # a fresh node: its first token waits for the key set
        s, url = one_node(make_server, slow_db, **opts)
        r = requests.post(url + SA, json={"name": "kc"}, headers=th,
                          timeout=30)
        assert r.status_code == 201, r.text
        af = r.json()
        assert issuer.fetches["demo"] == 1
        # another fresh node on the same database: an upload
        s2, url2 = one_node(make_server, slow_db, **opts)
        data = os.urandom(300000)
        r = requests.put(url2 + SA + "/" + af["id"] + "/blob", data=data,
                         headers=dict(th, **{
                             "Content-Type": "application/octet-stream"}),
                         timeout=30)
        assert r.status_code == 200, r.text
        assert issuer.fetches["demo"] == 2
        r = requests.get(url2 + SA + "/" + af["id"] + "/blob", headers=th,
                         timeout=30)
        assert r.status_code == 200 and r.content == data
        # a third node: clients that leave during the token check and
        # during the database wait; then it serves on
        s3, url3 = one_node(make_server, slow_db, **opts)
        host, port = re.match(r"http://([^:]+):(\d+)", url3).groups()
        for pause in (0, 0.3):
            body = '{"name": "left"}'
            with socket.create_connection((host, int(port))) as c:
                c.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n"
                           "X-Auth-Token: %s\r\nContent-Type: "
                           "application/json\r\nContent-Length: %d\r\n\r\n%s"
                           % (SA, tok, len(body), body)).encode())
                time.sleep(pause)
        time.sleep(1)
        r = requests.get(url3 + SA + "/" + af["id"], headers=th, timeout=30)
        assert r.status_code == 200
        for srv in (s, s2, s3):
            log = srv.read_log()
            assert " error: " not in log, log
            assert "Request not handled" not in log
    finally:
        issuer.close()
