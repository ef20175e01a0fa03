"""Scale-out: two glared nodes on one PostgreSQL and one S3 bucket behave
as one service (issue 9). Runs only in the two-node pass of make test
(GLARED_TEST_CLUSTER=1); the rest of the black-box suite runs there too."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import (ADMIN, CLUSTER, GLARED, USER1, Server, objects_under,
                      status_of, uploads_under)

pytestmark = pytest.mark.skipif(not CLUSTER,
                                reason="needs the two-node deployment")

SA = "/artifacts/sample_artifact"


def test_nodes_share_state(server, uniq):
    a, b = server.urls
    h = {"X-Auth-Token": USER1}
    af = requests.post(a + SA, json={"name": uniq()}, headers=h).json()
    # created on A: visible, patchable and uploadable on B
    assert requests.get(b + SA + "/" + af["id"], headers=h).status_code == 200
    r = requests.patch(b + SA + "/" + af["id"], data='[{"op": "replace", '
                       '"path": "/int1", "value": 5}]',
                       headers=dict(h, **{"Content-Type":
                                          "application/json-patch+json"}))
    assert r.status_code == 200
    data = os.urandom(7 * 1024 * 1024)
    r = requests.put(b + SA + "/" + af["id"] + "/blob", data=data,
                     headers=dict(h, **{"Content-Type":
                                        "application/octet-stream"}))
    assert r.status_code == 200, r.text
    assert requests.get(a + SA + "/" + af["id"] + "/blob",
                        headers=h).content == data
    rng = requests.get(a + SA + "/" + af["id"] + "/blob",
                       headers=dict(h, Range="bytes=5242870-5242889"))
    assert rng.status_code == 206 and rng.content == data[5242870:5242890]


def test_nodes_start_together_on_a_fresh_database(make_server):
    """Both nodes, each with its start-up recovery and two workers (six
    opens of one fresh database at the same moment), come up every time:
    none fails with "the database has tables but no glared schema
    version". Bounded: 5 rounds."""
    for _ in range(5):
        s = make_server(workers=2)  # raises if a node exits
        for url in s.urls:
            assert requests.get(url + "/healthcheck",
                                timeout=10).status_code == 200
        assert s.stop() == 0
        log = s.read_log()
        assert "schema version" not in log and "recovery:" not in log, log


def test_quota_holds_across_nodes(make_server, uniq):
    s = make_server({"max_artifact_number": 3})
    codes = [s.post(SA, {"name": uniq()}).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 403, 403]     # alternating nodes


def test_race_across_nodes_one_wins(make_server, uniq):
    import threading
    s = make_server()
    n = uniq()
    codes = []

    def go():
        codes.append(s.post(SA, {"name": n, "version": "1.0"}).status_code)
    ts = [threading.Thread(target=go) for _ in range(10)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert codes.count(201) == 1 and set(codes) <= {201, 409}


def test_deleted_data_leaves_s3(make_server, uniq):
    s = make_server({"upload_heartbeat": 1, "upload_takeover_after": 10})
    prefix = s.options["glance_store.s3_store_prefix"]
    af = s.post(SA, {"name": uniq()}).json()
    assert s.put("%s/%s/blob" % (SA, af["id"]), data=b"x" * 1000,
                 headers={"Content-Type": "application/octet-stream"}) \
        .status_code == 200
    assert len(objects_under(prefix)) == 1
    assert s.delete("%s/%s" % (SA, af["id"])).status_code == 204
    for _ in range(50):                     # the maintenance timer's job
        if not objects_under(prefix):
            break
        time.sleep(0.2)
    assert objects_under(prefix) == []


def test_node_killed_mid_upload_leaves_nothing(make_server, uniq):
    s = make_server({"upload_heartbeat": 1, "upload_takeover_after": 5})
    prefix = s.options["glance_store.s3_store_prefix"]
    IM = "/artifacts/images"
    af = s.post(IM, {"name": uniq()}).json()
    s.put("%s/%s/image" % (IM, af["id"]), data=b"kept",
          headers={"Content-Type": "application/octet-stream"})
    # 12 MiB of a 64 MiB upload to node A: two parts are out in S3
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(("PUT %s/%s/image HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
               "Content-Type: application/octet-stream\r\n"
               "Content-Length: %d\r\n\r\n" % (IM, af["id"], USER1,
                                              64 << 20)).encode())
    chunk = os.urandom(1 << 20)
    for _ in range(12):
        c.sendall(chunk)
    deadline = time.time() + 10
    while not uploads_under(prefix) and time.time() < deadline:
        time.sleep(0.2)
    assert uploads_under(prefix), "no multipart upload in progress"
    rec = requests.get(s.urls[1] + "%s/%s" % (IM, af["id"]),
                       headers={"X-Auth-Token": USER1}).json()
    assert rec["image"]["status"] == "saving"
    s.procs[0].send_signal(signal.SIGKILL)  # node A dies
    c.close()
    # node B takes the dead node's upload over once its heartbeat is stale
    deadline = time.time() + 30
    while time.time() < deadline:
        rec = requests.get(s.urls[1] + "%s/%s" % (IM, af["id"]),
                           headers={"X-Auth-Token": USER1}).json()
        if rec["image"]["status"] == "active" and not uploads_under(prefix):
            break
        time.sleep(0.5)
    assert rec["image"]["status"] == "active"     # the previous blob, back
    r = requests.get(s.urls[1] + "%s/%s/image" % (IM, af["id"]),
                     headers={"X-Auth-Token": USER1})
    assert r.content == b"kept"
    assert uploads_under(prefix) == []            # no orphaned parts
    assert "rolled back" in s.read_log()


def test_scrub_and_verify_run_on_any_node(make_server, uniq):
    s = make_server({"delayed_delete": True})
    af = s.post(SA, {"name": uniq()}).json()
    s.delete("%s/%s" % (SA, af["id"]))
    # scrubbers started against both nodes' configs at once: one purge
    ps = [subprocess.Popen([GLARED, "scrub", "--config-file", conf],
                           stderr=subprocess.PIPE, text=True)
          for _, conf, _ in s.nodes]
    errs = [p.communicate(timeout=60)[1] for p in ps]
    purged = sum(int(m) for e in errs
                 for m in re.findall(r"(\d+) artifact\(s\) purged", e))
    assert purged == 1, errs
    assert s.get("%s/%s" % (SA, af["id"])).status_code == 404
