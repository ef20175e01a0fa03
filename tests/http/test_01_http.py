"""The HTTP/1.1 layer, seen from a raw socket: framing, limits, keep-alive,
pipelining, 100-continue, timeouts, connection cap, shutdown."""
import json
import re
import os
import signal
import socket
import threading
import time

import requests

from conftest import USER1, raw, status_of

TOKEN = "X-Auth-Token: %s\r\n" % USER1


def all_statuses(out):
    return [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]


def head_of(resp):
    return resp.split(b"\r\n\r\n", 1)[0].decode()


def test_keepalive_two_requests_one_connection(server):
    s = requests.Session()
    r1 = s.get(server.url + "/versions")
    r2 = s.get(server.url + "/versions")
    assert r1.status_code == r2.status_code == 300
    out = raw(server.port,
              "GET /versions HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert all_statuses(out) == [300, 200]


def test_pipelined_responses_in_order(server):
    reqs = ("GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /versions HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /nope HTTP/1.1\r\nHost: x\r\n" + TOKEN + "\r\n"
            "GET /healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw(server.port, reqs)
    statuses = all_statuses(out)
    assert statuses == [200, 300, 404, 200]


def test_http10_closes_by_default(server):
    out = raw(server.port, "GET /healthcheck HTTP/1.0\r\n\r\n")
    assert status_of(out) == 200
    assert out.endswith(b"OK")


def test_header_line_too_long_431(server):
    out = raw(server.port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-Big: " +
              "a" * 17000 + "\r\n\r\n")
    assert status_of(out) == 431
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == 431


def test_header_line_at_limit_ok(server):
    # name + value up to 16384 bytes is accepted
    out = raw(server.port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-Big: " +
              "a" * 16000 + "\r\nConnection: close\r\n\r\n")
    assert status_of(out) == 200


def test_total_headers_too_large_431(server):
    hdrs = "".join("X-H%d: %s\r\n" % (i, "b" * 8000) for i in range(10))
    out = raw(server.port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n" + hdrs +
              "\r\n")
    assert status_of(out) == 431


def test_uri_too_long_414(server):
    out = raw(server.port, "GET /" + "x" * 17000 + " HTTP/1.1\r\n\r\n")
    assert status_of(out) == 414


def test_content_length_and_transfer_encoding_400(server):
    out = raw(server.port,
              "POST /artifacts/images HTTP/1.1\r\nHost: x\r\n" + TOKEN +
              "Content-Type: application/json\r\nContent-Length: 5\r\n"
              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status_of(out) == 400
    assert b"Connection: close" in out


def test_duplicate_content_length_400(server):
    out = raw(server.port,
              "POST /artifacts/images HTTP/1.1\r\nHost: x\r\n" + TOKEN +
              "Content-Type: application/json\r\nContent-Length: 2\r\n"
              "Content-Length: 2\r\n\r\n{}")
    assert status_of(out) == 400


def test_invalid_content_length_400(server):
    out = raw(server.port,
              "POST /artifacts/images HTTP/1.1\r\nHost: x\r\n" + TOKEN +
              "Content-Length: 12abc\r\n\r\n{}")
    assert status_of(out) == 400


def test_unsupported_transfer_encoding_400(server):
    out = raw(server.port,
              "POST /artifacts/images HTTP/1.1\r\nHost: x\r\n" + TOKEN +
              "Transfer-Encoding: gzip\r\n\r\n")
    assert status_of(out) == 400


def test_malformed_request_line_400(server):
    out = raw(server.port, "THIS IS NOT HTTP\r\n\r\n")
    assert status_of(out) in (400, 501)
    out = raw(server.port, "GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert status_of(out) == 400


def test_unknown_method_501(server):
    out = raw(server.port, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 501


def test_expect_100_continue_sent_when_body_accepted(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    body = b'{"name": "x"}'
    s.sendall(("POST /artifacts/sample_artifact HTTP/1.1\r\nHost: x\r\n" +
               TOKEN + "Content-Type: application/json\r\n"
               "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" %
               len(body)).encode())
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(body)
    rest = b""
    while b"\r\n\r\n" not in rest:
        rest += s.recv(65536)
    assert status_of(rest) in (200, 201)
    s.close()


def test_expect_100_continue_not_sent_on_early_reject(server):
    # no token: 401 is decided from the head; no 100, no body read
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"PUT /artifacts/images/x/image HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/octet-stream\r\n"
              b"Expect: 100-continue\r\nContent-Length: 1000000000\r\n\r\n")
    first = s.recv(4096)
    assert status_of(first) == 401
    assert b"100 Continue" not in first
    s.close()


def test_get_with_body_400(server):
    r = server.req("GET", "/artifacts/images", data=b"xyz")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == \
        "A body is not expected with this request"


def test_delete_artifact_with_body_400(server):
    r = server.req("DELETE", "/artifacts/images/123", data=b"xyz")
    assert r.status_code == 400


def test_early_reply_small_body_keeps_connection(server):
    # 404 decided at the head; the small body is discarded and the next
    # pipelined request is still served
    body = "x" * 100
    out = raw(server.port,
              "POST /nothing-here HTTP/1.1\r\nHost: x\r\n" + TOKEN +
              "Content-Length: %d\r\n\r\n%s" % (len(body), body) +
              "GET /healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    statuses = all_statuses(out)
    assert statuses == [404, 200]


def test_early_reply_large_body_closes(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST /nothing-here HTTP/1.1\r\nHost: x\r\n" +
              TOKEN.encode() + b"Content-Length: 50000000\r\n\r\n")
    s.sendall(b"x" * 100000)
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        out += b
    assert status_of(out) == 404
    assert b"Connection: close" in out
    s.close()


def test_chunked_request_body(server):
    body = b'{"name": "chunky"}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (1, body[i:i + 1])
                      for i in range(len(body))) + b"0\r\n\r\n"
    out = raw(server.port,
              b"POST /artifacts/sample_artifact HTTP/1.1\r\nHost: x\r\n" +
              TOKEN.encode() + b"Content-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
              chunks)
    assert status_of(out) in (200, 201)


def test_head_versions_has_no_body(server):
    out = raw(server.port, "HEAD /versions HTTP/1.1\r\nHost: x\r\n"
                           "Connection: close\r\n\r\n")
    assert status_of(out) == 300
    head, _, body = out.partition(b"\r\n\r\n")
    assert body == b""
    assert b"Content-Length: " in head


def test_header_timeout_408(make_server):
    s = make_server({"header_timeout": 1})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    c.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n")  # never ends
    t0 = time.time()
    out = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        out += b
    assert status_of(out) == 408
    assert 0.5 < time.time() - t0 < 4


def test_idle_timeout_closes(make_server):
    s = make_server({"client_socket_timeout": 1})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    t0 = time.time()
    assert c.recv(10) == b""   # closed by the server, silently
    assert 0.5 < time.time() - t0 < 4


def test_slow_body_timeout(make_server):
    s = make_server({"client_socket_timeout": 1})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    c.sendall(("POST /artifacts/sample_artifact HTTP/1.1\r\nHost: x\r\n" +
               TOKEN + "Content-Type: application/json\r\n"
               "Content-Length: 100\r\n\r\n{").encode())
    t0 = time.time()
    while c.recv(4096):
        pass
    assert time.time() - t0 < 4


def test_keepalive_off_closes_after_response(make_server):
    s = make_server({"http_keepalive": False})
    out = raw(s.port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 1
    assert b"Connection: close" in out


def test_connection_cap_503(make_server):
    """Busy connections (a head on its way) hold their slots: the next one
    gets 503. Idle ones give way instead (test_12_wire)."""
    s = make_server({"max_connections": 2})
    held = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
    for c in held:
        c.sendall(b"GET /healthcheck HTTP/1.1\r\n")
    time.sleep(0.2)
    out = raw(s.port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 503
    for c in held:
        c.close()
    time.sleep(0.2)
    out = raw(s.port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n"
              "Connection: close\r\n\r\n")
    assert status_of(out) == 200


def test_sigterm_finishes_inflight_then_exits_0(make_server):
    s = make_server()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    body = b'{"name": "late"}'
    # head sent, body pending: the request is in flight
    c.sendall(("POST /artifacts/sample_artifact HTTP/1.1\r\nHost: x\r\n" +
               TOKEN + "Content-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % len(body)).encode())
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert s.proc.poll() is None        # still finishing our request
    # new connections are refused meanwhile
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    c.sendall(body)
    out = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        out += b
    assert status_of(out) in (200, 201)
    assert b"Connection: close" in out
    assert s.proc.wait(10) == 0


def test_access_log_line(make_server):
    s = make_server()
    r = s.get("/versions")
    rid = r.headers["x-openstack-request-id"]
    time.sleep(0.2)
    line = [l for l in s.read_log().splitlines() if rid in l][0]
    assert "access: GET /versions 300 " in line
    assert "ms " + rid in line


def test_bad_config_stops_startup(tmp_path):
    import subprocess
    from conftest import GLARED
    conf = tmp_path / "bad.conf"
    conf.write_text("[DEFAULT]\nbind_port = notaport\n")
    p = subprocess.run([GLARED, "serve", "--config-file", str(conf)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "bind_port" in p.stderr and "not an integer" in p.stderr
    conf.write_text("[DEFAULT\nx = 1\n")
    p = subprocess.run([GLARED, "serve", "--config-file", str(conf)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "malformed section" in p.stderr


def test_unknown_option_warns(make_server):
    s = make_server({"no_such_option": "1"})
    assert "unknown option [DEFAULT] no_such_option ignored" in s.read_log()


def test_env_overrides_option(tmp_path):
    import subprocess
    from conftest import GLARED, Server, free_port
    srv = Server(wait=False)
    srv.stop(signal.SIGKILL)
    # a fresh free port: srv.port + 1 is odd, and Linux hands odd ports
    # to outgoing connections, so it was sometimes taken
    port = free_port()
    env = dict(os.environ, GLARED_DEFAULT_BIND_PORT=str(port))
    p = subprocess.Popen([GLARED, "serve", "--config-file", srv.conf],
                         env=env, stderr=subprocess.PIPE, text=True)
    try:
        r = None
        deadline = time.time() + 30     # slow under ASan on a busy machine
        while r is None and time.time() < deadline and p.poll() is None:
            try:
                r = requests.get("http://127.0.0.1:%d/healthcheck" % port,
                                 timeout=1)
            except requests.RequestException:
                time.sleep(0.05)
        assert r is not None, "not serving on %d (exit %s)" % (port, p.poll())
        assert r.status_code == 200
    finally:
        p.kill()
        p.wait()


def test_workers_share_one_port(make_server):
    s = make_server(workers=2)
    pids = set()
    # the second worker may still be loading its types when the first
    # answers: ask again (bounded) until both have served
    deadline = time.time() + 30
    while len(pids) < 2 and time.time() < deadline:
        for _ in range(40):
            r = requests.get(s.url + "/healthcheck")
            assert r.status_code == 200
        time.sleep(0.3)
        with open(s.log_path) as f:         # the first node's workers
            for line in f:
                if "access: GET /healthcheck" in line:
                    pids.add(line.split("glared[")[1].split("]")[0])
    # SO_REUSEPORT spreads connections over both workers
    assert len(pids) == 2
    assert "master: 2 workers" in s.read_log()
    # the master forwards TERM and every worker exits cleanly
    assert s.stop() == 0
