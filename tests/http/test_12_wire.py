"""Wire hardening (issue 12): HTTP framing corners (RFC 9112), connection
slots under silent and idle connections, one decision per response header,
and request values validated at the edge."""
import http.server
import json
import re
import socket
import socketserver
import threading
import time

import pytest

from conftest import ADMIN, USER1, raw, status_of

SA = "/artifacts/sample_artifact"
TOKEN = "X-Auth-Token: %s\r\n" % USER1
NEXT = "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"


def statuses(out):
    return [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]


def fault(out):
    """The error message of the first fault body in out."""
    m = re.search(rb"\{\"code.*?\}\}", out)
    assert m, out[:400]
    return json.loads(m.group(0))["error"]["message"]


# ---- framing corners: each is refused, answered once, and the connection
# closes (the pipelined request after it is never served) -----------------

REFUSED = [
    # whitespace before the colon or inside a field name (RFC 9112 5.1)
    ("space_before_colon",
     "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
     "Transfer-Encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" % (SA, TOKEN),
     400, "Invalid character in a header field name"),
    ("tab_before_colon",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n",
     400, None),
    ("space_in_name", "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n",
     400, "Invalid character in a header field name"),
    ("paren_in_name", "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n",
     400, None),
    ("del_in_name", "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX\x7fA: 1\r\n\r\n",
     400, None),
    ("empty_name", "GET /healthcheck HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
     400, None),
    # obs-fold (5.2) and whitespace before the first field (2.2)
    ("obs_fold",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  more\r\n\r\n",
     400, "Obsolete line folding in a header field"),
    ("obs_fold_tab",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tmore\r\n\r\n",
     400, "Obsolete line folding in a header field"),
    ("ws_before_first_field",
     "GET /healthcheck HTTP/1.1\r\n Host: x\r\n\r\n",
     400, "Whitespace before the first header field"),
    # bare CR (2.2)
    ("bare_cr_in_value",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
     400, "Bare CR in the request head"),
    ("bare_cr_in_request_line",
     "GET /healthcheck\rHTTP/1.1\r\nHost: x\r\n\r\n",
     400, "Bare CR in the request head"),
    ("bare_cr_ending_head",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\rX",
     400, "Bare CR in the request head"),
    # field values: controls, DEL, NUL, not UTF-8
    ("ctl_in_value", "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
     400, None),
    ("del_in_value", "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n",
     400, None),
    ("nul_in_value", "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
     400, None),
    ("latin1_value",
     b"GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n",
     400, "A header field value is not valid UTF-8"),
    ("overlong_utf8_value",
     b"GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-A: \xc0\xaf\r\n\r\n",
     400, "A header field value is not valid UTF-8"),
    # Content-Length: sign, list, junk, overflow
    ("cl_plus",
     "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
     "Content-Length: +2\r\n\r\n{}" % (SA, TOKEN), 400,
     "Invalid Content-Length"),
    ("cl_minus",
     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: -2\r\n\r\n{}" % SA,
     400, "Invalid Content-Length"),
    ("cl_list",
     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}" % SA,
     400, "Invalid Content-Length"),
    ("cl_junk",
     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2x\r\n\r\n{}" % SA,
     400, "Invalid Content-Length"),
    ("cl_overflow",
     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999"
     "\r\n\r\n{}" % SA, 400, "Invalid Content-Length"),
    ("cl_twice",
     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
     "Content-Length: 2\r\n\r\n{}" % SA, 400, None),
    # Transfer-Encoding
    ("te_and_cl",
     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % SA, 400, None),
    ("te_list",
     "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n"
     "\r\n0\r\n\r\n" % SA, 400, "Unsupported Transfer-Encoding"),
    # a name http-parser would half-take for Transfer-Encoding
    ("te_name_suffix",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\nTransfer-Encodingx: 1\r\n\r\n",
     400, "Invalid message framing"),
    ("te_gzip",
     "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" % SA,
     400, "Unsupported Transfer-Encoding"),
    # chunk framing
    ("chunk_size_sign",
     "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n" % (SA, TOKEN),
     400, None),
    ("chunk_size_overflow",
     "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n{}\r\n0\r\n\r\n"
     % (SA, TOKEN), 400, "Invalid chunk size"),
    ("chunk_ext_huge",
     "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\n2;e=%s\r\n{}\r\n0\r\n\r\n"
     % (SA, TOKEN, "a" * 100000), 400,
     "Chunk-size line or trailer section too long"),
    ("chunk_data_overrun",
     "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
     "Transfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n" % (SA, TOKEN),
     400, None),
    # Host (RFC 9112 3.2) and version
    ("no_host", "GET /healthcheck HTTP/1.1\r\n\r\n", 400, "Missing Host header"),
    ("two_hosts", "GET /healthcheck HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
     400, "Duplicate Host header"),
    ("two_hosts_http10",
     "GET /healthcheck HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400,
     "Duplicate Host header"),
    ("bad_host", "GET /healthcheck HTTP/1.1\r\nHost: a b\r\n\r\n", 400,
     "Invalid Host header"),
    ("bad_host_slash", "GET /healthcheck HTTP/1.1\r\nHost: a/b\r\n\r\n", 400,
     "Invalid Host header"),
    ("http2", "GET /healthcheck HTTP/2.0\r\nHost: x\r\n\r\n", 505, None),
    ("http09", "GET /healthcheck\r\n\r\n", 505, None),
    ("too_many_fields",
     "GET /healthcheck HTTP/1.1\r\nHost: x\r\n" +
     "".join("X-%d: 1\r\n" % i for i in range(101)) + "\r\n",
     431, "Too many header fields"),
]


@pytest.mark.parametrize("name,req,status,message", REFUSED,
                         ids=[c[0] for c in REFUSED])
def test_framing_corner_refused(server, name, req, status, message):
    if isinstance(req, str):
        req = req.encode("latin-1")
    out = raw(server.port, req + NEXT.encode())
    assert statuses(out) == [status], out[:600]
    if message:
        assert fault(out) == message
    assert b"Connection: close" in out
    # the server is fine afterwards
    assert status_of(raw(server.port, "GET /healthcheck HTTP/1.1\r\nHost: x"
                         "\r\nConnection: close\r\n\r\n")) == 200


def test_http10_chunked_served_then_closed(server):
    """RFC 9112 6.1: HTTP/1.0 with Transfer-Encoding is faulty framing:
    the request is served, then the connection closes; the pipelined one
    after it is never read, even with keep-alive asked for."""
    body = json.dumps({"name": "h10-%d" % time.time_ns()})
    out = raw(server.port,
              "POST %s HTTP/1.0\r\nConnection: keep-alive\r\n%s"
              "Content-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
              % (SA, TOKEN, len(body), body) + NEXT)
    assert statuses(out) == [201], out[:600]
    assert b"Connection: close" in out


def test_content_length_ows_is_fine(server):
    """Optional whitespace around a field value is not part of it (the
    parser takes trailing spaces, not tabs, after a Content-Length)."""
    body = json.dumps({"name": "ows-%d" % time.time_ns()})
    out = raw(server.port,
              "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json"
              "\r\nContent-Length: \t %d  \r\nConnection: close\r\n\r\n%s"
              % (SA, TOKEN, len(body), body))
    assert statuses(out) == [201], out[:600]


def test_small_chunk_extensions_and_trailers_ignored(server):
    """Chunk extensions are skipped; trailer fields are read and dropped:
    a Content-Length or Transfer-Encoding there changes no framing, and
    the next pipelined request is parsed where it starts."""
    body = json.dumps({"name": "tr-%d" % time.time_ns()}).encode()
    out = raw(server.port,
              b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json"
              b"\r\nTransfer-Encoding: chunked\r\n\r\n%x;a=b;c=\"d\"\r\n%s\r\n"
              b"0;last\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
              b"X-Trailer: 1\r\n\r\n%s"
              % (SA.encode(), TOKEN.encode(), len(body), body,
                 b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n"
                 b"Connection: close\r\n\r\n"))
    assert statuses(out) == [201, 200], out[:800]


def test_http10_without_host_is_fine(server):
    out = raw(server.port, "GET /healthcheck HTTP/1.0\r\n\r\n")
    assert status_of(out) == 200


def test_bare_lf_line_ends_accepted(server):
    """RFC 9112 2.2 lets a recipient take a lone LF as a line end."""
    out = raw(server.port, "GET /healthcheck HTTP/1.1\nHost: x\n"
              "Connection: close\n\n")
    assert status_of(out) == 200


# ---- connection slots ------------------------------------------------------

def connect_from(port, src="127.0.0.1", timeout=10):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s, wait=0.0):
    """True if the server closed s (EOF or reset) within wait seconds."""
    s.settimeout(wait if wait > 0 else 0.001)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def get_ok(port, src="127.0.0.1"):
    return status_of(raw(port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n\r\n", source=src))


def test_first_byte_timeout_closes_silent_connection(make_server):
    s = make_server({"first_byte_timeout": 1, "header_timeout": 30})
    silent = connect_from(s.port)
    talker = connect_from(s.port)
    talker.sendall(b"GET /healthcheck HTTP/1.1\r\n")  # the head is on its way
    t0 = time.time()
    assert closed_by_server(silent, wait=5)
    assert time.time() - t0 < 4.5
    # silent: closed without a word; the talker is under header_timeout
    assert not closed_by_server(talker, wait=0.5)
    talker.sendall(b"Host: x\r\n\r\n")
    assert talker.recv(100).startswith(b"HTTP/1.1 200")
    silent.close()
    talker.close()


def test_silent_connections_do_not_starve_others(make_server):
    """Far more silent connections than slots, from several addresses:
    each new connection takes the slot of the longest idle one, so other
    clients are still served, at once."""
    s = make_server({"max_connections": 40, "max_connections_per_client": 0,
                     "first_byte_timeout": 60})
    silent = []
    for i in range(120):
        silent.append(connect_from(s.port, "127.0.0.%d" % (2 + i % 3)))
    time.sleep(0.3)
    for _ in range(20):
        assert get_ok(s.port) == 200
    gone = sum(closed_by_server(c, wait=0.01) for c in silent)
    # 120 silent arrivals over 40 slots: 80 had to yield, and one more for
    # the first served connection (each one after it found its slot free)
    assert gone == 81
    for c in silent:
        c.close()


def test_idle_keepalive_connections_yield(make_server):
    s = make_server({"max_connections": 10, "max_connections_per_client": 0})
    kept = []
    for _ in range(10):
        c = connect_from(s.port)
        c.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv(1000).startswith(b"HTTP/1.1 200")
        kept.append(c)             # keep-alive, idle from now on
    assert get_ok(s.port) == 200
    # the oldest idle one gave its slot
    assert closed_by_server(kept[0], wait=2)
    assert not closed_by_server(kept[-1], wait=0.1)
    for c in kept:
        c.close()


def test_per_client_cap(make_server):
    """One address cannot take every slot: past max_connections_per_client
    its idle connections yield to its own new ones, busy ones make its next
    connection a 503, and other addresses are served meanwhile."""
    s = make_server({"max_connections": 100, "max_connections_per_client": 5,
                     "header_timeout": 30})
    busy = [connect_from(s.port, "127.0.0.2") for _ in range(5)]
    for c in busy:
        c.sendall(b"GET /healthcheck HTTP/1.1\r\n")
    time.sleep(0.2)
    extra = connect_from(s.port, "127.0.0.2")
    extra.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
    out = extra.recv(4096)
    assert status_of(out) == 503
    assert fault(out) == "Too many connections"
    extra.close()
    assert get_ok(s.port, "127.0.0.1") == 200
    for c in busy:
        c.close()
    # five silent connections from one address: its sixth is served
    silent = [connect_from(s.port, "127.0.0.3") for _ in range(5)]
    time.sleep(0.2)
    assert get_ok(s.port, "127.0.0.3") == 200
    assert sum(closed_by_server(c, wait=0.2) for c in silent) == 1
    for c in silent:
        c.close()
    assert "per-client connection cap reached" in s.read_log()


# ---- one decision per response header -------------------------------------

class Blobs(http.server.BaseHTTPRequestHandler):
    """/data/N: N bytes, for external locations."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        n = int(self.path.rsplit("/", 1)[1])
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ext")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(b"e" * n)


@pytest.fixture(scope="module")
def ext():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Blobs)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def exchange(port, method, path, headers=None, body=b""):
    """One request on its own connection; (status, [(name, value)], body)
    with the header lines exactly as sent."""
    h = {"Host": "x", "Connection": "close"}
    h.update(headers or {})
    if body:
        h["Content-Length"] = str(len(body))
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join(
        "%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    out = raw(port, head.encode() + body, timeout=10)
    top, _, rest = out.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    fields = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
    return int(lines[0].split()[1]), fields, rest


def test_no_response_repeats_a_header(make_server, ext):
    s = make_server({"external_location_allowed_networks": "127.0.0.1/32",
                     "artifact_type:images.external_download": "proxy",
                     "max_json_body": 4096})
    p = s.port
    tok = {"X-Auth-Token": USER1}
    js = dict(tok, **{"Content-Type": "application/json"})
    loc = dict(tok, **{"Content-Type":
                       "application/vnd+openstack.glare-custom-location+json"})
    octet = dict(tok, **{"Content-Type": "application/octet-stream"})
    seen = {}

    def ex(kind, method, path, headers=None, body=b"", want=None):
        st, fields, rest = exchange(p, method, path, headers, body)
        seen[kind] = (st, fields)
        if want:
            assert st == want, (kind, st, rest[:300])
        return st, fields, rest

    _, _, b = ex("json 201", "POST", SA, js, b'{"name": "hdr"}', 201)
    af = json.loads(b)["id"]
    base = "%s/%s" % (SA, af)
    ex("versions 300", "GET", "/versions", want=300)
    ex("versions HEAD", "HEAD", "/versions", want=300)
    ex("healthcheck", "GET", "/healthcheck", want=200)
    ex("schema", "GET", "/schemas/sample_artifact", tok, want=200)
    ex("list", "GET", SA, tok, want=200)
    ex("patch", "PATCH", base, dict(tok, **{"Content-Type":
                                            "application/json-patch+json"}),
       b'[{"op": "replace", "path": "/int1", "value": 1}]', 200)
    ex("upload", "PUT", base + "/small_blob", octet, b"0123456789", 200)
    _, _, _ = ex("file 200", "GET", base + "/small_blob", tok, want=200)
    etag = dict(seen["file 200"][1])["ETag"]
    ex("file HEAD", "HEAD", base + "/small_blob", tok, want=200)
    ex("range 206", "GET", base + "/small_blob",
       dict(tok, Range="bytes=2-5"), want=206)
    ex("range 416", "GET", base + "/small_blob",
       dict(tok, Range="bytes=50-"), want=416)
    ex("not modified 304", "GET", base + "/small_blob",
       dict(tok, **{"If-None-Match": etag}), want=304)
    ex("location", "PUT", base + "/blob", loc,
       json.dumps({"url": ext + "/data/300"}).encode(), 200)
    ex("redirect 301", "GET", base + "/blob", tok, want=301)
    _, _, b = ex("images 201", "POST", "/artifacts/images", js,
                 b'{"name": "px"}', 201)
    img = "/artifacts/images/%s" % json.loads(b)["id"]
    ex("images location", "PUT", img + "/image", loc,
       json.dumps({"url": ext + "/data/500"}).encode(), 200)
    _, _, b = ex("proxy 200", "GET", img + "/image", tok, want=200)
    assert b == b"e" * 500
    ex("proxy HEAD", "HEAD", img + "/image", tok, want=200)
    ex("delete 204", "DELETE", "/artifacts/images/%s" %
       img.rsplit("/", 1)[1], tok, want=204)
    # errors, from every layer
    ex("404", "GET", "/nowhere", tok, want=404)
    ex("405", "PUT", SA, tok, want=405)
    ex("401", "GET", SA, want=401)
    ex("400 json", "POST", SA, js, b"{", 400)
    ex("413", "POST", SA, js, b"{" + b" " * 5000 + b"}", 413)
    ex("415", "POST", SA, dict(tok, **{"Content-Type": "text/plain"}),
       b"x", 415)
    ex("406", "GET", SA, dict(tok, **{"OpenStack-API-Version":
                                      "artifact 9.0"}), want=406)
    ex("404 other project", "PATCH", base,
       {"X-Auth-Token": "u:p2:member",
        "Content-Type": "application/json-patch+json"}, b"[]", 404)
    ex("403 policy", "PATCH", base,
       dict(tok, **{"Content-Type": "application/json-patch+json"}),
       b'[{"op": "replace", "path": "/visibility", "value": "public"}]',
       403)
    ex("400 no such field", "GET", base + "/blob2", tok, want=400)
    ex("framing 400", "GET", "/healthcheck", {"X A": "1"}, want=400)
    ex("431", "GET", "/healthcheck", {"X-Big": "a" * 70000}, want=431)

    for kind, (st, fields) in seen.items():
        names = [n.lower() for n, _ in fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        assert not dup, "%s (%d) repeats %s: %s" % (kind, st, dup, fields)
        assert names.count("date") == 1, kind
    redirect = dict(seen["redirect 301"][1])
    assert redirect["Location"] == ext + "/data/300"
    assert redirect["Content-Type"] == "application/json"
    # an error does not carry the headers of the success it replaced
    assert "ETag" not in dict(seen["range 416"][1])
    assert dict(seen["range 416"][1])["Content-Range"] == "bytes */10"
    assert "Allow" in dict(seen["405"][1])
    proxied = dict(seen["proxy 200"][1])
    assert proxied["Content-Type"] == "application/x-ext"
    assert proxied["Content-Length"] == "500"


# ---- request values validated at the edge ----------------------------------

def api(port, method, path, headers=None, body=b""):
    h = {"X-Auth-Token": USER1}
    h.update(headers or {})
    st, _, rest = exchange(port, method, path, h, body)
    msg = json.loads(rest)["error"]["message"] if st >= 400 else None
    return st, msg


@pytest.fixture(scope="module")
def edge_af(server):
    r = server.post(SA, {"name": "edge-%d" % time.time_ns()})
    assert r.status_code == 201, r.text
    return r.json()["id"]


EDGE = [
    # path segments, after percent-decoding
    ("type_not_utf8", "GET", "/artifacts/sample%FFartifact",
     "Invalid artifact type name in the request path: not valid UTF-8"),
    ("type_control", "GET", "/artifacts/sample%01",
     "Invalid artifact type name in the request path: contains a control "
     "character"),
    ("type_too_long", "GET", "/artifacts/" + "t" * 256,
     "Invalid artifact type name in the request path: longer than 255 "
     "bytes"),
    ("schema_type_not_utf8", "GET", "/schemas/%C0%AF",
     "Invalid artifact type name in the request path: not valid UTF-8"),
    ("id_not_utf8", "GET", SA + "/%E9t%E9",
     "Invalid artifact id in the request path: not valid UTF-8"),
    ("id_too_long", "DELETE", SA + "/" + "i" * 300,
     "Invalid artifact id in the request path: longer than 255 bytes"),
    ("field_not_utf8", "GET", SA + "/{af}/blob%FF",
     "Invalid blob field in the request path: not valid UTF-8"),
    ("field_control", "PUT", SA + "/{af}/blob%0A",
     "Invalid blob field in the request path: contains a control "
     "character"),
    ("blob_key_not_utf8", "GET", SA + "/{af}/dict_of_blobs/k%FF%FE",
     "Invalid blob key in the request path: not valid UTF-8"),
    ("blob_key_control", "PUT", SA + "/{af}/dict_of_blobs/a%0D%0Ab",
     "Invalid blob key in the request path: contains a control character"),
    ("blob_key_too_long", "GET", SA + "/{af}/dict_of_blobs/" + "k" * 4097,
     "Invalid blob key in the request path: longer than 4096 bytes"),
    ("project_not_utf8", "GET", "/project-quotas/p%FF",
     "Invalid project id in the request path: not valid UTF-8"),
    # raw bytes in the target: a URI is ASCII
    ("raw_high_byte", "GET", SA + "/\xe9",
     "Invalid character in the request target"),
    # query parameters
    ("query_value_not_utf8", "GET", SA + "?name=%FF",
     "Invalid query parameter: not valid UTF-8"),
    ("query_name_not_utf8", "GET", SA + "?n%FFme=x",
     "Invalid query parameter: not valid UTF-8"),
    ("query_control", "GET", SA + "?name=a%09b",
     "Invalid query parameter: contains a control character"),
    ("query_too_long", "GET", SA + "?name=" + "q" * 8193,
     "Invalid query parameter: longer than 8192 bytes"),
    ("query_too_many", "GET", SA + "?" + "&".join("n%d=1" % i
                                                 for i in range(257)),
     "More than 256 query parameters"),
    ("query_nul", "GET", SA + "?name=a%00b",
     "Malformed percent-encoding in the query string"),
]


@pytest.mark.parametrize("name,method,path,message", EDGE,
                         ids=[c[0] for c in EDGE])
def test_edge_value_refused(server, edge_af, name, method, path, message):
    path = path.replace("{af}", edge_af)
    body = b"x" if method == "PUT" else b""
    hdr = {"Content-Type": "application/octet-stream"} if body else {}
    st, msg = api(server.port, method, path.encode("latin-1").decode(
        "latin-1"), hdr, body)
    assert (st, msg) == (400, message)


def token_case(token):
    return ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "X-Auth-Token: " % SA).encode() + token + b"\r\n\r\n"


@pytest.mark.parametrize("token,message", [
    (b"u\xff:p:member", "A header field value is not valid UTF-8"),
    (b"u:p\xc3:member", "A header field value is not valid UTF-8"),
    (b"u:p:mem\xed\xa0\x80ber", "A header field value is not valid UTF-8"),
    (b"u\t1:p:member", "The user id in the auth token contains a control "
     "character"),
    (b"u:p\tq:member", "The project id in the auth token contains a "
     "control character"),
    (b"u:p:a\tb", "The role in the auth token contains a control "
     "character"),
    (b"u" * 256 + b":p:member", "The user id in the auth token is longer "
     "than 255 bytes"),
    (b"u:" + b"p" * 256 + b":member", "The project id in the auth token is "
     "longer than 255 bytes"),
    (b"u:p:" + b"r" * 256, "The role in the auth token is longer than 255 "
     "bytes"),
    (b"u:p:" + b",".join(b"r%d" % i for i in range(65)),
     "More than 64 roles in the auth token"),
], ids=["user_utf8", "project_utf8", "role_surrogate", "user_tab",
        "project_tab", "role_tab", "user_long", "project_long", "role_long",
        "roles_many"])
def test_identity_in_token_refused(server, token, message):
    out = raw(server.port, token_case(token))
    assert status_of(out) == 400
    assert fault(out) == message


def test_identity_headers_refused(make_server):
    s = make_server({"paste_deploy.flavor": "noauth"})
    base = (b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-Identity-Status: Confirmed\r\n" % SA.encode())
    cases = [
        (b"X-User-Id: u\tv\r\nX-Project-Id: p\r\n",
         "The user id in the identity headers contains a control "
         "character"),
        (b"X-User-Id: u\r\nX-Project-Id: " + b"p" * 256 + b"\r\n",
         "The project id in the identity headers is longer than 255 bytes"),
        (b"X-User-Id: u\r\nX-Tenant-Id: p\tq\r\n",
         "The project id in the identity headers contains a control "
         "character"),
        (b"X-User-Id: u\r\nX-Project-Id: p\r\nX-Roles: a,b\tc\r\n",
         "The role in the identity headers contains a control character"),
        (b"X-User-Id: u\r\nX-Project-Id: p\xff\r\n",
         "A header field value is not valid UTF-8"),
    ]
    for hdrs, message in cases:
        out = raw(s.port, base + hdrs + b"\r\n")
        assert status_of(out) == 400, out[:300]
        assert fault(out) == message
    ok = raw(s.port, base + b"X-User-Id: u\r\nX-Project-Id: p\r\n"
             b"X-Roles: member\r\n\r\n")
    assert status_of(ok) == 200


def test_valid_unicode_passes_the_edge(server):
    """The edge refuses bad bytes, not non-ASCII text."""
    name = "caf\u00e9-\u6f22-%d" % time.time_ns()
    r = server.post(SA, {"name": name},
                    token="us\u00e9r:pr\u00f8ject:member".encode())
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "pr\u00f8ject"
    r = server.get(SA, params={"name": name},
                   token="us\u00e9r:pr\u00f8ject:member".encode())
    assert r.status_code == 200
    assert [a["name"] for a in r.json()["artifacts"]] == [name]
