"""What an operator watches: access lines, log_file and SIGHUP, JSON logs,
debug lines, /metrics (promtool-clean, summed over workers, bounded
labels, access control) and the detailed healthcheck."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import requests

from http_harness import ADMIN, USER1

PROMTOOL = shutil.which("promtool")


def access_lines(s, rid=None):
    lines = [l for l in s.read_log().splitlines() if "access" in l]
    return [l for l in lines if rid is None or rid in l]


def wait_for(pred, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def test_access_line_fields(make_server, uniq):
    s = make_server({"trusted_proxies": "127.0.0.1/32"})
    r = s.post("/artifacts/sample_artifact", {"name": uniq("acc")})
    rid = r.headers["x-openstack-request-id"]
    line = wait_for(lambda: access_lines(s, rid))[0]
    assert "access: POST /artifacts/sample_artifact 201 " in line
    assert "client=127.0.0.1 user=user1 project=project1" in line
    assert re.search(r" \d+B \d+\.\dms req-", line)
    assert re.search(r"received=\d+B", line)
    # behind a trusted proxy, X-Forwarded-For names the client: the last
    # hop that is not itself a trusted proxy
    r = s.get("/artifacts/sample_artifact",
              headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7, "
                                          "127.0.0.1"})
    rid = r.headers["x-openstack-request-id"]
    line = wait_for(lambda: access_lines(s, rid))[0]
    assert "client=198.51.100.7 " in line


def test_forwarded_for_ignored_from_untrusted_peers(make_server):
    s = make_server()          # no trusted proxies
    r = s.get("/artifacts/sample_artifact",
              headers={"X-Forwarded-For": "203.0.113.9"})
    rid = r.headers["x-openstack-request-id"]
    line = wait_for(lambda: access_lines(s, rid))[0]
    assert "client=127.0.0.1 " in line and "203.0.113.9" not in line


def test_log_file_and_sighup_reopen(make_server, tmp_path):
    log = tmp_path / "glared.log"
    s = make_server({"log_file": str(log)}, workers=2)
    # the server answers once one worker listens; the requests below
    # must find both (a loaded machine starts the second one late)
    assert wait_for(lambda: log.read_text().count("serving on") == 2, 60)
    r = s.get("/versions")
    rid1 = r.headers["x-openstack-request-id"]
    assert wait_for(lambda: rid1 in log.read_text())
    os.rename(log, tmp_path / "glared.log.1")       # logrotate
    s.signal_all(signal.SIGHUP)
    assert wait_for(lambda: log.exists(), 5)
    rids = set()
    for _ in range(20):                 # both workers reopened
        rids.add(s.get("/versions").headers["x-openstack-request-id"])
    text = wait_for(lambda: log.exists() and all(
        rid in log.read_text() for rid in rids) and log.read_text())
    assert text, "lines after SIGHUP must go to the new file"
    old = (tmp_path / "glared.log.1").read_text()
    assert rid1 in old and not any(rid in old for rid in rids)
    pids = set(re.findall(r"glared\[(\d+)\] info: access", text))
    assert len(pids) == 2


def test_json_log(make_server):
    s = make_server({"use_json": True, "debug": True})
    r = s.get("/artifacts/sample_artifact")
    rid = r.headers["x-openstack-request-id"]
    s.get("/artifacts/sample_artifact/nope")

    def parsed():
        out = []
        for line in s.read_log().splitlines():
            out.append(json.loads(line))      # every line is JSON
        return out
    recs = wait_for(lambda: [x for x in parsed()
                             if x.get("request_id") == rid])
    a = recs[0]
    assert a["message"] == "access" and a["method"] == "GET"
    assert a["path"] == "/artifacts/sample_artifact"
    assert a["route"] == "/artifacts/{type}" and a["status"] == 200
    assert a["user_id"] == "user1" and a["project_id"] == "project1"
    assert a["client"] == "127.0.0.1" and a["duration_ms"] >= 0
    assert {"time", "level", "pid", "program"} <= set(a)
    levels = {x["level"] for x in parsed()}
    assert "debug" in levels and "info" in levels
    # debug: policy decisions
    assert any(x["message"].startswith("policy: artifact:list allowed")
               or x["message"].startswith("policy: ") for x in parsed()
               if x["level"] == "debug")


def metrics(s, **kw):
    r = requests.get(s.url + "/metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text


def value(text, name, **labels):
    """Sum of the samples of name whose labels include labels."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        assert m, line
        if m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
            found = True
    return total if found else None


@pytest.mark.skipif(not PROMTOOL, reason="promtool (Debian: prometheus) "
                    "missing")
def test_metrics_promtool_clean_and_summed(make_server, uniq, tmp_path):
    s = make_server(workers=2)
    # the harness's wait: a request is counted once its answer has left
    # the worker, which may be after the client read it; and it may have
    # been answered before the worker was ready (not a 200)
    assert wait_for(lambda: value(metrics(s), "glared_http_requests_total",
                                  method="GET", route="/healthcheck")
                    is not None)
    text0 = metrics(s)
    hc0 = value(text0, "glared_http_requests_total", method="GET",
                route="/healthcheck", status="200") or 0
    hd0 = value(text0, "glared_http_request_duration_seconds_count",
                route="/healthcheck")
    for _ in range(30):
        assert s.get("/healthcheck").status_code == 200
    aid = s.post("/artifacts/sample_artifact",
                 {"name": uniq("m")}).json()["id"]
    data = os.urandom(300000)
    r = s.put("/artifacts/sample_artifact/%s/blob" % aid, data=data,
              headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    r = s.get("/artifacts/sample_artifact/%s/blob" % aid)
    assert r.content == data
    for i in range(25):            # distinct raw paths, one label
        s.get("/artifacts/sample_artifact/%s-%d" % (uniq("x"), i))
        s.get("/no/such/%d/path" % i)
    time.sleep(0.3)
    text = metrics(s)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    # both workers' counts are in the sum
    assert value(text, "glared_http_requests_total", method="GET",
                 route="/healthcheck", status="200") == hc0 + 30
    assert value(text, "glared_workers") == 2
    assert value(text, "glared_http_requests_total", method="PUT",
                 route="/artifacts/{type}/{id}/{field}", status="200") == 1
    assert value(text, "glared_blob_upload_bytes_total") == len(data)
    assert value(text, "glared_blob_download_bytes_total") == len(data)
    assert value(text, "glared_uploads_in_flight") == 0
    assert value(text, "glared_http_request_duration_seconds_count",
                 route="/healthcheck") == hd0 + 30
    assert value(text, "glared_lua_calls_total") > 0
    assert value(text, "process_resident_memory_bytes") > 1e6
    # raw paths never become labels
    assert "no/such" not in text and "-0" not in text
    assert value(text, "glared_http_requests_total",
                 route="/artifacts/{type}/{id}", status="404") == 25
    assert value(text, "glared_http_requests_total", route="unmatched",
                 status="404") == 25
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert len(routes) <= 15
    # counters only grow
    assert value(metrics(s), "glared_http_requests_total", method="GET",
                 route="/healthcheck", status="200") == hc0 + 30


def test_metrics_access_control(make_server):
    s = make_server({"metrics_access": "admin"})
    r = requests.get(s.url + "/metrics")
    assert r.status_code == 401 and r.json()["code"] == 401
    r = requests.get(s.url + "/metrics", headers={"X-Auth-Token": USER1})
    assert r.status_code == 403
    r = requests.get(s.url + "/metrics", headers={"X-Auth-Token": ADMIN})
    assert r.status_code == 200 and "glared_http_requests_total" in r.text
    # a forwarded header cannot make a client local either
    r = requests.get(s.url + "/metrics",
                     headers={"X-Forwarded-For": "127.0.0.1"})
    assert r.status_code == 401
    r = requests.post(s.url + "/metrics", headers={"X-Auth-Token": ADMIN})
    assert r.status_code == 405
    s2 = make_server({"metrics_access": "everyone"}, wait=False)
    assert s2.proc.wait(10) != 0
    assert "metrics_access" in s2.read_log()


def test_healthcheck_detailed(make_server):
    s = make_server()
    r = requests.get(s.url + "/healthcheck")
    assert r.status_code == 200 and r.text == "OK"       # Glare's answer
    r = requests.get(s.url + "/healthcheck?detailed=true")
    assert r.status_code == 200
    doc = r.json()
    assert doc["detailed"] is True
    parts = {x["class"]: x["reason"] for x in doc["reasons"]}
    assert parts == {"disable_by_file": "OK", "database": "OK",
                     "store:file": "OK", "lua": "OK"}
    # break the store: its directory becomes a file
    store = s.options["glance_store.filesystem_store_datadir"]
    shutil.rmtree(store)
    with open(store, "w") as f:
        f.write("not a directory")
    r = requests.get(s.url + "/healthcheck?detailed=true")
    assert r.status_code == 503
    doc = r.json()
    assert doc["failed"] == "store:file"
    bad = [x for x in doc["reasons"] if x["class"] == "store:file"][0]
    assert bad["reason"] != "OK"
    # the plain healthcheck stays Glare's (the disable file only)
    assert requests.get(s.url + "/healthcheck").status_code == 200
    with open(s.options["healthcheck.disable_by_file_path"], "w"):
        pass
    r = requests.get(s.url + "/healthcheck")
    assert r.status_code == 503 and r.text == "DISABLED BY FILE"
    r = requests.get(s.url + "/healthcheck?detailed=1")
    assert r.status_code == 503
    assert r.json()["failed"] == "disable_by_file"
