"""Blobs: streaming upload, blob dicts, limits, quotas, re-upload, hooks,
download with Range/HEAD/ETag, stores, crash safety. Contract:
docs/glare-contract.md "Blobs", issue 6."""
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import ADMIN, USER1, USER2, GLARED, local_store, raw, status_of

SA = "/artifacts/sample_artifact"
OCT = {"Content-Type": "application/octet-stream"}


def new(s, **kw):
    body = {"name": kw.pop("name", "b-%d" % time.time_ns())}
    body.update(kw)
    r = s.post(SA, body)
    assert r.status_code == 201, r.text
    return r.json()


def put(s, af, field, data, ct="application/octet-stream", token=USER1,
        headers=None):
    h = {"Content-Type": ct} if ct else {}
    h.update(headers or {})
    return s.put("%s/%s/%s" % (SA, af["id"], field), data=data, headers=h,
                 token=token)


def get(s, af, field, token=USER1, **kw):
    return s.get("%s/%s/%s" % (SA, af["id"], field), token=token, **kw)


def sums(data):
    return (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest())


def test_upload_and_download(server):
    af = new(server)
    data = os.urandom(100000)
    r = put(server, af, "blob", data, ct="application/x-test; charset=binary")
    assert r.status_code == 200, r.text
    b = r.json()["blob"]
    md5, sha1, sha256 = sums(data)
    assert b == {"url": "/artifacts/sample_artifact/%s/blob" % af["id"],
                 "size": len(data), "md5": md5, "sha1": sha1,
                 "sha256": sha256, "external": False, "status": "active",
                 "content_type": "application/x-test"}
    r = get(server, af, "blob")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Content-Type"] == "application/x-test"
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Content-MD5"] == md5
    assert r.headers["X-Openstack-Glare-Content-SHA1"] == sha1
    assert r.headers["X-Openstack-Glare-Content-SHA256"] == sha256
    assert r.headers["ETag"] == '"%s"' % sha256
    assert r.headers["Accept-Ranges"] == "bytes"


def test_chunked_upload(server):
    af = new(server)
    data = os.urandom(300000)

    def gen():
        for i in range(0, len(data), 7000):
            yield data[i:i + 7000]
    r = put(server, af, "blob", gen())
    assert r.status_code == 200, r.text
    assert r.json()["blob"]["size"] == len(data)
    assert get(server, af, "blob").content == data


def test_empty_blob(server):
    af = new(server)
    r = put(server, af, "blob", b"")
    assert r.status_code == 200 and r.json()["blob"]["size"] == 0
    assert get(server, af, "blob").content == b""


def test_upload_requires_content_type(server):
    af = new(server)
    r = put(server, af, "blob", b"x", ct=None)
    assert r.status_code == 400


def test_upload_errors(server):
    af = new(server)
    assert put(server, af, "nope", b"x").status_code == 400
    assert put(server, af, "int1", b"x").status_code == 400
    assert put(server, af, "blob/key", b"x").status_code == 400
    assert put(server, af, "dict_of_blobs", b"x").status_code == 400
    assert put(server, af, "dict_of_blobs/", b"x").status_code == 400
    assert put(server, af, "blob", b"x", token=USER2).status_code == 404
    assert server.put("%s/%s/blob" % (SA, "0" * 36), data=b"x",
                      headers=OCT).status_code == 404


def test_small_blob_limit_413(server):
    af = new(server)
    assert put(server, af, "small_blob", b"0123456789").status_code == 200
    r = put(server, af, "small_blob", b"0123456789A")
    assert r.status_code == 413
    # without Content-Length the cut happens while streaming
    r = put(server, af, "small_blob", iter([b"01234", b"56789", b"X"]))
    assert r.status_code == 413
    assert get(server, af, "small_blob").content == b"0123456789"


def test_oversize_rejected_before_body_is_read(server):
    af = new(server)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(("PUT %s/%s/small_blob HTTP/1.1\r\nHost: x\r\n"
               "X-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\n"
               "Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
               % (SA, af["id"], USER1)).encode())
    out = s.recv(65536)
    assert status_of(out) == 413 and b"100 Continue" not in out
    s.close()


@local_store
def test_reupload_replaces_and_releases(server):
    af = new(server)
    assert put(server, af, "blob", b"first").status_code == 200
    r = put(server, af, "blob", b"second")
    assert r.status_code == 200
    assert r.json()["blob"]["sha256"] == sums(b"second")[2]
    assert get(server, af, "blob").content == b"second"
    objs = os.path.join(server.dir, "blobs", "objects")
    found = {f for _, _, fs in os.walk(objs) for f in fs}
    assert sums(b"second")[2] in found
    assert sums(b"first")[2] not in found       # released, no leak


def test_failed_hook_rejects_and_restores(server):
    af = new(server)
    assert put(server, af, "blob", b"good data").status_code == 200
    r = put(server, af, "blob", b"invalid_data")
    assert r.status_code == 400
    assert "invalid_data" in r.json()["error"]["message"]
    a = server.get("%s/%s" % (SA, af["id"])).json()
    assert a["blob"]["sha256"] == sums(b"good data")[2]
    assert a["blob"]["status"] == "active"
    assert get(server, af, "blob").content == b"good data"


@local_store
def test_content_addressed_dedup(server):
    data = os.urandom(5000)
    a, b = new(server), new(server)
    put(server, a, "blob", data)
    put(server, b, "blob", data)
    sha = sums(data)[2]
    path = os.path.join(server.dir, "blobs", "objects", sha[:2], sha)
    assert os.path.exists(path)
    server.delete("%s/%s" % (SA, a["id"]))
    assert os.path.exists(path)                 # still referenced by b
    server.delete("%s/%s" % (SA, b["id"]))
    assert not os.path.exists(path)             # last reference gone


def test_blob_dict(server):
    af = new(server)
    key = "folder/sub/file.txt"
    r = put(server, af, "dict_of_blobs/" + key, b"hello")
    assert r.status_code == 200, r.text
    entry = r.json()["dict_of_blobs"][key]
    assert entry["url"] == "/artifacts/sample_artifact/%s/dict_of_blobs/%s" % (
        af["id"], key)
    assert get(server, af, "dict_of_blobs/" + key).content == b"hello"
    assert get(server, af, "dict_of_blobs/missing").status_code == 404
    assert get(server, af, "dict_of_blobs").status_code == 400   # no key
    long_key = "k" * 900
    assert put(server, af, "dict_of_blobs/" + long_key, b"x").status_code == 200
    assert put(server, af, "dict_of_blobs/" + "k" * 1001, b"x").status_code \
        == 400


def test_folder_size_limit(server):
    af = new(server)
    assert put(server, af, "dict_of_blobs/a", b"a" * 1000).status_code == 200
    assert put(server, af, "dict_of_blobs/b", b"b" * 999).status_code == 200
    assert put(server, af, "dict_of_blobs/c", b"c").status_code == 200  # 2000
    assert put(server, af, "dict_of_blobs/d", b"d").status_code == 413
    # replacing a key frees its own share
    assert put(server, af, "dict_of_blobs/a", b"A" * 1000).status_code == 200


def test_upload_after_activation(server):
    af = new(server, string_required="x")
    put(server, af, "dict_of_blobs/k", b"x")
    r = server.patch("%s/%s" % (SA, af["id"]),
                     [{"op": "replace", "path": "/status", "value": "active"}])
    assert r.status_code == 200
    assert put(server, af, "blob", b"mutable ok").status_code == 200
    assert put(server, af, "dict_of_blobs/k2", b"x").status_code == 403


def test_download_rules(server):
    af = new(server, string_required="x")
    assert get(server, af, "blob").status_code == 404          # never set
    assert get(server, af, "int1").status_code == 400
    assert get(server, af, "nope").status_code == 400
    put(server, af, "blob", b"data")
    assert get(server, af, "blob", token=USER2).status_code == 404
    assert get(server, af, "blob", token=ADMIN).status_code == 200
    server.patch("%s/%s" % (SA, af["id"]),
                 [{"op": "replace", "path": "/status", "value": "active"}])
    server.patch("%s/%s" % (SA, af["id"]),
                 [{"op": "replace", "path": "/status", "value": "deactivated"}],
                 token=ADMIN)
    assert get(server, af, "blob").status_code == 403          # deactivated
    assert get(server, af, "blob", token=ADMIN).status_code == 200


def test_download_deleted_403(make_server):
    s = make_server({"delayed_delete": True})
    af = new(s)
    put(s, af, "blob", b"x")
    s.delete("%s/%s" % (SA, af["id"]))
    assert get(s, af, "blob").status_code == 403


def test_range_head_etag(server):
    af = new(server)
    data = bytes(range(256)) * 40
    put(server, af, "blob", data)
    r = get(server, af, "blob", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/%d" % len(data)
    r = get(server, af, "blob", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = get(server, af, "blob", headers={"Range": "bytes=10000-"})
    assert r.status_code == 206 and r.content == data[10000:]
    r = get(server, af, "blob", headers={"Range": "bytes=999999-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */%d" % len(data)
    r = get(server, af, "blob", headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == data
    etag = '"%s"' % sums(data)[2]
    r = get(server, af, "blob", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = get(server, af, "blob", headers={"Range": "bytes=0-0",
                                         "If-Range": etag})
    assert r.status_code == 206
    r = get(server, af, "blob", headers={"Range": "bytes=0-0",
                                         "If-Range": '"other"'})
    assert r.status_code == 200 and r.content == data
    r = server.req("HEAD", "%s/%s/blob" % (SA, af["id"]))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Length"] == str(len(data))


def test_uploaded_data_quota(make_server):
    s = make_server({"max_uploaded_data": 100})
    a = new(s)
    assert put(s, a, "blob", b"x" * 60).status_code == 200
    b = new(s)
    assert put(s, b, "blob", b"x" * 41).status_code == 413
    assert put(s, b, "blob", iter([b"x" * 41])).status_code == 413
    assert put(s, b, "blob", b"x" * 40).status_code == 200
    # re-upload counts the replaced blob as freed
    assert put(s, a, "blob", b"y" * 60).status_code == 200


def test_concurrent_upload_same_blob_409(server):
    af = new(server)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(("PUT %s/%s/blob HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
               "Content-Type: application/octet-stream\r\n"
               "Content-Length: 1000\r\n\r\nabc" % (SA, af["id"], USER1))
              .encode())
    time.sleep(0.3)
    assert put(server, af, "blob", b"other").status_code == 409
    r = server.patch("%s/%s" % (SA, af["id"]),
                     [{"op": "replace", "path": "/string_required",
                       "value": "x"},
                      {"op": "replace", "path": "/status", "value": "active"}])
    assert r.status_code == 409                     # saving blocks status
    assert server.delete("%s/%s" % (SA, af["id"])).status_code == 409
    s.sendall(b"x" * 997)
    out = b""
    while b"\r\n\r\n" not in out:
        out += s.recv(65536)
    assert status_of(out) == 200
    s.close()


def test_client_disconnect_mid_upload_restores(server):
    af = new(server)
    put(server, af, "blob", b"keep me")
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(("PUT %s/%s/blob HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
               "Content-Type: application/octet-stream\r\n"
               "Content-Length: 100000\r\n\r\n" % (SA, af["id"], USER1))
              .encode() + b"z" * 5000)
    time.sleep(0.3)
    s.close()
    time.sleep(0.3)
    a = server.get("%s/%s" % (SA, af["id"])).json()
    assert a["blob"]["status"] == "active"
    assert get(server, af, "blob").content == b"keep me"


def test_database_store(make_server):
    s = make_server({"artifact_type:sample_artifact.default_store": "database"})
    af = new(s)
    data = os.urandom(300000)
    assert put(s, af, "blob", data).status_code == 200
    assert get(s, af, "blob").content == data
    r = get(s, af, "blob", headers={"Range": "bytes=100000-100099"})
    assert r.status_code == 206 and r.content == data[100000:100100]
    objs = os.path.join(s.dir, "blobs", "objects")
    assert not any(fs for _, _, fs in os.walk(objs))


def test_crash_mid_upload_recovers(make_server):
    s = make_server()
    af = new(s)
    assert put(s, af, "blob", b"committed").status_code == 200
    other = new(s)
    c1 = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c1.sendall(("PUT %s/%s/blob HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Length: 10000000\r\n\r\n" % (SA, af["id"], USER1))
               .encode() + b"q" * 300000)
    c2 = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c2.sendall(("PUT %s/%s/blob HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" % (SA, other["id"], USER1))
               .encode() + b"1000\r\n" + b"w" * 4096 + b"\r\n")
    time.sleep(0.5)
    assert s.get("%s/%s" % (SA, af["id"])).json()["blob"]["status"] == "saving"
    tmpdir = os.path.join(s.dir, "blobs", "tmp")
    assert len(os.listdir(tmpdir)) == 2
    s.stop(signal.SIGKILL)
    c1.close()
    c2.close()
    s.start()
    a = s.get("%s/%s" % (SA, af["id"])).json()
    assert a["blob"]["status"] == "active"
    assert a["blob"]["sha256"] == sums(b"committed")[2]
    assert get(s, af, "blob").content == b"committed"
    assert s.get("%s/%s" % (SA, other["id"])).json()["blob"] is None
    assert os.listdir(tmpdir) == []
