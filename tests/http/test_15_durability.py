"""Durable commits, [database] sqlite_durability (docs/storage.md): in
every mode writes sent at once are all answered and all kept, replies
held for their sync included; an unknown mode stops the start. (Durability
itself, surviving a power loss, is not testable from here: the group
commit's waits and checkpoints are checked in the unit suite, meta.)"""
import concurrent.futures
import os
import subprocess

import pytest

from conftest import GLARED

SA = "/artifacts/sample_artifact"


@pytest.mark.parametrize("mode", ["group", "full", "normal"])
def test_writes_at_once_all_answered_and_kept(make_server, uniq, mode):
    s = make_server({"database.sqlite_durability": mode})
    names = [uniq("d") for _ in range(24)]

    def create(n):
        r = s.post(SA, {"name": n, "int1": 7})
        return r.status_code, r.json().get("id")

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(create, names))
    assert [st for st, _ in got] == [201] * len(names)

    def patch(i):
        return s.req("PATCH", "%s/%s" % (SA, got[i][1]),
                     json=[{"op": "replace", "path": "/int1", "value": i}],
                     headers={"Content-Type":
                              "application/json-patch+json"}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        assert set(ex.map(patch, range(len(names)))) == {200}
    r = s.get(SA + "?int1=lt:100&limit=100&sort=int1:asc")
    assert r.status_code == 200
    body = r.json()
    assert body["total_count"] == len(names)
    assert [a["int1"] for a in body["artifacts"]] == list(range(len(names)))
    # a failed write is answered too (its reply waits like the others)
    assert s.post(SA, {"name": names[0], "int1": 1}).status_code == 409


def test_unknown_durability_stops_startup(tmp_path):
    conf = tmp_path / "glare.conf"
    conf.write_text("[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = 0\n"
                    "[database]\nconnection = sqlite:///%s/g.db\n"
                    "sqlite_durability = fast\n" % tmp_path)
    p = subprocess.run([GLARED, "serve", "--config-file", str(conf)],
                       capture_output=True, text=True, timeout=20,
                       cwd=os.path.dirname(os.path.abspath(__file__)))
    assert p.returncode != 0
    assert "sqlite_durability must be group, full or normal" in p.stderr


def test_refusal_before_the_body_waits_with_the_writes(make_server, uniq):
    """A request refused before its body is read (401: no token) while
    other requests' commits wait for their sync: its answer waits like
    theirs and the body stays unread meanwhile: never a 500 "Request not
    handled". Writes and refusals race, so each round gives the refusal
    a chance to land inside a sync window."""
    s = make_server({"database.sqlite_durability": "group"})

    def create(n):
        return s.post(SA, {"name": n, "int1": 1}).status_code

    def refused(_):
        r = s.req("POST", SA, token=None, json={"name": uniq("r")})
        return r.status_code

    for _ in range(20):
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            writes = [ex.submit(create, uniq("w")) for _ in range(4)]
            refusals = [ex.submit(refused, i) for i in range(4)]
            assert [f.result() for f in writes] == [201] * 4
            assert [f.result() for f in refusals] == [401] * 4
