"""Artifacts: create, show, update (JSON-patch), lifecycle, visibility,
uniqueness, delete. Contract: E4-E7 in docs/glare-contract.md "Status codes
by endpoint", "Change rules", "Status machine", "Policy rules"."""
import re
import threading
import time

import pytest
import requests

from conftest import ADMIN, USER1, USER2

SA = "/artifacts/sample_artifact"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def create(server, body, token=USER1, path=SA):
    r = server.post(path, body, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def patch(server, af, ops, token=USER1, path=SA):
    return server.patch("%s/%s" % (path, af["id"]), ops, token=token)


def activate(server, af, token=USER1):
    extra = [] if af.get("string_required") else [
        {"op": "replace", "path": "/string_required", "value": "x"}]
    r = patch(server, af, extra + [
        {"op": "replace", "path": "/status", "value": "active"}], token=token)
    assert r.status_code == 200, r.text
    return r.json()


def err(r, code):
    assert r.status_code == code, r.text
    return r.json()["error"]["message"]


# ---- create -----------------------------------------------------------------

def test_create_defaults(server, uniq):
    af = create(server, {"name": uniq()})
    assert re.match(r"^[0-9a-f-]{36}$", af["id"])
    assert af["status"] == "drafted"
    assert af["visibility"] == "private"
    assert af["version"] == "0.0.0"
    assert af["owner"] == "project1"
    assert af["display_type_name"] == "Sample Artifact"
    assert ISO.match(af["created_at"]) and ISO.match(af["updated_at"])
    assert af["activated_at"] is None
    assert af["tags"] == [] and af["metadata"] == {}
    assert af["description"] == ""
    assert af["blob"] is None and af["dict_of_blobs"] == {}
    assert af["bool1"] is False and af["int1"] is None
    assert af["list_of_str"] == [] and af["dict_of_str"] == {}
    assert af["system_attribute"] == "default"
    assert af["__some_meta_information__"] == af["name"].upper()


def test_create_all_values_and_show(server, uniq):
    big = 2 ** 62 + 1
    body = {"name": uniq(), "version": "1.2", "int1": big, "float1": 1.5,
            "str1": "ünïcödé", "bool1": True, "list_of_int": [1, 2, 3],
            "dict_of_str": {"a": "b"}, "tags": ["x", "y", "x"],
            "metadata": {"k": "v"}, "description": "d"}
    af = create(server, body)
    assert af["version"] == "1.2.0"
    assert af["int1"] == big          # exact, not through a double
    assert af["float1"] == 1.5
    assert af["str1"] == "ünïcödé"
    assert sorted(af["tags"]) == ["x", "y"]
    r = server.get("%s/%s" % (SA, af["id"]))
    assert r.status_code == 200
    assert r.json() == af
    assert "ünïcödé" in r.text        # UTF-8, not \\u escapes


def test_create_media_type(server, uniq):
    body = ('{"name": "%s"}' % uniq()).encode()
    r = server.req("POST", SA, data=body,
                   headers={"Content-Type": "text/plain"})
    err(r, 415)
    r = server.req("POST", SA, data=body)
    assert "Content-Type" in err(r, 400)
    r = server.req("POST", SA, data=body,
                   headers={"Content-Type": "application/json; charset=UTF-8"})
    assert r.status_code == 201


def test_create_bad_bodies(server):
    for body in (b"[1]", b'"str"', b"{bad json", b""):
        r = server.req("POST", SA, data=body,
                       headers={"Content-Type": "application/json"})
        err(r, 400)


@pytest.mark.parametrize("field", ["status", "visibility", "display_type_name"])
def test_create_forbidden_keys_400(server, field):
    err(server.post(SA, {"name": "x", field: "active"}), 400)


@pytest.mark.parametrize("field,value", [
    ("id", "11111111-1111-1111-1111-111111111111"), ("owner", "p"),
    ("created_at", "2017-01-01T00:00:00Z"), ("system_attribute", "x")])
def test_create_system_fields_403(server, field, value):
    err(server.post(SA, {"name": "x", field: value}), 403)


def test_create_validation_400(server):
    cases = [{}, {"name": ""}, {"name": None}, {"name": "a" * 256},
             {"name": "x", "description": "d" * 4097},
             {"name": "x", "version": "abc"}, {"name": "x", "version": ":"},
             {"name": "x", "unknown": 1}, {"name": "x", "blob": {}},
             {"name": "x", "dict_of_blobs": {}},
             {"name": "x", "int1": "abc"}, {"name": "x", "int1": "3.0"},
             {"name": "x", "list_of_str": "notalist"},
             {"name": "x", "int_validators": 21},
             {"name": "x", "string_validators": "ccccccccccc"},
             {"name": "x", "string_regex": "xyz"},
             {"name": "x", "list_validators": ["a", "a"]},
             {"name": "x", "dict_validators": {"zzz": "a"}},
             {"name": "x", "str1": "s" * 256},
             {"name": "x", "str1": [1]}]
    for body in cases:
        r = server.post(SA, body)
        assert r.status_code == 400, (body, r.text)


def test_validator_message_format(server):
    msg = err(server.post(SA, {"name": "x", "int_validators": 5}), 400)
    assert msg.startswith("Type: sample_artifact. Field: int_validators. "
                          "Exception: ")


def test_create_coercion(server, uniq):
    af = create(server, {"name": uniq(), "int1": "2", "float1": 1,
                         "str1": 5, "bool1": "yes", "list_of_str": [1, 2],
                         "int2": True})
    assert af["int1"] == 2 and af["int2"] == 1
    assert af["float1"] == 1.0 and isinstance(af["float1"], float)
    assert af["str1"] == "5" and af["bool1"] is True
    assert af["list_of_str"] == ["1", "2"]
    af = create(server, {"name": uniq(), "bool1": 2.1, "str1": True})
    assert af["bool1"] is False and af["str1"] == "True"


@pytest.mark.parametrize("given,stored", [
    ("1", "1.0.0"), ("1.0", "1.0.0"), (2.0, "2.0.0"), ("1-alpha", "1.0.0-alpha"),
    ("1:0", "1.0.0-0"), ("1:0:0", "1.0.0-0-0"), ("2:0-0", "2.0.0-0-0")])
def test_version_coercion(server, uniq, given, stored):
    assert create(server, {"name": uniq(), "version": given})["version"] == stored


def test_4byte_utf8_rejected(server):
    err(server.post(SA, {"name": "x\U0001F600"}), 400)
    err(server.post(SA, {"name": "x", "dict_of_str": {"\U0001F600": "a"}}), 400)


def test_create_unknown_type_404_and_all_403(server):
    err(server.post("/artifacts/nope", {"name": "x"}), 404)
    err(server.post("/artifacts/all", {"name": "x"}), 403)


def test_non_nullable_fields(server, uniq):
    r = server.post("/artifacts/non_nullable_fields_artifact", {"name": uniq()})
    err(r, 400)


def test_name_version_unique_private_scope(server, uniq):
    n = uniq()
    create(server, {"name": n, "version": "1.0"})
    err(server.post(SA, {"name": n, "version": "1.0.0"}), 409)   # semver equal
    create(server, {"name": n, "version": "1.0.1"})
    create(server, {"name": n, "version": "1.0"}, token=USER2)   # other owner


def test_concurrent_creates_one_wins(make_server, uniq):
    s = make_server(workers=2)
    n = uniq()
    results = []

    def go():
        r = s.post(SA, {"name": n, "version": "3.0"})
        results.append(r.status_code)
    ts = [threading.Thread(target=go) for _ in range(12)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert sorted(results).count(201) == 1
    assert all(c in (201, 409) for c in results)
    r = s.get(SA + "?name=" + n)
    assert r.json()["total_count"] == 1


# ---- show / visibility ---------------------------------------------------------

def test_show_visibility(server, uniq):
    af = create(server, {"name": uniq()})
    path = "%s/%s" % (SA, af["id"])
    assert server.get(path).status_code == 200
    err(server.get(path, token=USER2), 404)                 # other tenant
    assert server.get(path, token=ADMIN).status_code == 200  # admin sees all
    err(server.get("%s/%s" % (SA, "00000000-0000-0000-0000-000000000000")), 404)
    err(server.get("/artifacts/images/%s" % af["id"]), 404)  # wrong type
    r = server.get("/artifacts/all/%s" % af["id"])
    assert r.status_code == 200
    a = r.json()
    assert a["type_name"] == "sample_artifact" and "int1" not in a
    assert a["__some_meta_information__"] == af["name"].upper()


# ---- update -------------------------------------------------------------------

def test_patch_media_type(server, uniq):
    af = create(server, {"name": uniq()})
    r = server.req("PATCH", "%s/%s" % (SA, af["id"]),
                   data=b'[]', headers={"Content-Type": "application/json"})
    err(r, 415)


def test_patch_ops_on_fields_lists_dicts(server, uniq):
    af = create(server, {"name": uniq(), "list_of_int": [1, 2],
                         "dict_of_str": {"a": "1"}})
    r = patch(server, af, [
        {"op": "add", "path": "/list_of_int/-", "value": 3},
        {"op": "add", "path": "/list_of_int/0", "value": 0},
        {"op": "replace", "path": "/list_of_int/1", "value": 10},
        {"op": "remove", "path": "/list_of_int/2"},
        {"op": "add", "path": "/dict_of_str/b", "value": "2"},
        {"op": "replace", "path": "/dict_of_str/a", "value": "x"},
        {"op": "copy", "from": "/dict_of_str/b", "path": "/dict_of_str/c"},
        {"op": "move", "from": "/dict_of_str/c", "path": "/dict_of_str/d"},
        {"op": "test", "path": "/dict_of_str/d", "value": "2"},
        {"op": "replace", "path": "/int1", "value": 7},
        {"op": "add", "path": "/description", "value": "new"},
        {"op": "add", "path": "/tags/-", "value": "t1"},
    ])
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["list_of_int"] == [0, 10, 3]
    assert a["dict_of_str"] == {"a": "x", "b": "2", "d": "2"}
    assert a["int1"] == 7 and a["description"] == "new" and a["tags"] == ["t1"]
    assert a["updated_at"] >= af["updated_at"]


def test_patch_null_resets_to_default(server, uniq):
    af = create(server, {"name": uniq(), "int1": 5, "bool1": True,
                         "list_of_str": ["a"], "description": "d"})
    r = patch(server, af, [{"op": "replace", "path": p, "value": None}
                           for p in ("/int1", "/bool1", "/list_of_str",
                                     "/description")])
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["int1"] is None and a["bool1"] is False
    assert a["list_of_str"] == [] and a["description"] is None
    err(patch(server, af, [{"op": "replace", "path": "/name", "value": None}]),
        400)


@pytest.mark.parametrize("ops", [
    {"op": "add", "path": "/int1", "value": 1},                 # not a list
    [{"op": "bad", "path": "/int1", "value": 1}],
    [{"op": "replace", "path": "/int1"}],                     # no value
    [{"op": "replace", "path": "/", "value": 1}],
    [{"op": "replace", "path": "//", "value": 1}],
    [{"op": "replace", "path": None, "value": 1}],
    [{"op": "replace", "path": "/nope", "value": 1}],
    [{"op": "remove", "path": "/int1"}],                      # whole field
    [{"op": "replace", "path": "/blob", "value": {}}],
    [{"op": "add", "path": "/dict_of_blobs/-", "value": {}}],
    [{"op": "replace", "path": "/list_of_int/9", "value": 1}],
    [{"op": "replace", "path": "/dict_of_str/missing", "value": "a"}],
    [{"op": "replace", "path": "/status", "value": "bogus"}],
    [{"op": "replace", "path": "/visibility", "value": "shared"}],
    [{"op": "replace", "path": "/int_validators", "value": 100}],
    [{"op": "test", "path": "/int1", "value": 42}],
])
def test_patch_400(server, uniq, ops):
    af = create(server, {"name": uniq(), "list_of_int": [1]})
    err(patch(server, af, ops), 400)


def test_patch_system_field_403(server, uniq):
    af = create(server, {"name": uniq()})
    for f in ("id", "owner", "created_at", "system_attribute"):
        err(patch(server, af, [{"op": "replace", "path": "/" + f,
                                "value": "x"}]), 403)


def test_noop_patch_writes_nothing(server, uniq):
    af = create(server, {"name": uniq(), "int1": 3})
    time.sleep(1.1)
    r = patch(server, af, [{"op": "replace", "path": "/int1", "value": 3}])
    assert r.status_code == 200
    assert r.json()["updated_at"] == af["updated_at"]


def test_activate_requires_fields(server, uniq):
    af = create(server, {"name": uniq()})
    msg = err(patch(server, af, [{"op": "replace", "path": "/status",
                                  "value": "active"}]), 403)
    assert "string_required" in msg
    a = activate(server, af)
    assert a["status"] == "active" and ISO.match(a["activated_at"])


def test_lifecycle_transitions(server, uniq):
    af = create(server, {"name": uniq(), "string_required": "x"})
    st = lambda v: [{"op": "replace", "path": "/status", "value": v}]
    err(patch(server, af, st("deactivated"), token=ADMIN), 403)  # from drafted
    err(patch(server, af, st("deleted")), 403)
    a = activate(server, af)
    assert patch(server, af, st("active")).status_code == 200     # idempotent
    err(patch(server, af, st("drafted")), 403)
    err(patch(server, af, st("deactivated")), 403)                # not admin
    r = patch(server, af, st("deactivated"), token=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    err(patch(server, af, [{"op": "replace", "path": "/string_mutable",
                            "value": "z"}], token=ADMIN), 403)    # frozen
    err(patch(server, af, st("active")), 403)                     # reactivate
    r = patch(server, af, st("active"), token=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert r.json()["activated_at"] >= a["activated_at"]


def test_immutable_after_activation(server, uniq):
    af = activate(server, create(server, {"name": uniq()}))
    err(patch(server, af, [{"op": "replace", "path": "/int1", "value": 1}]), 403)
    err(patch(server, af, [{"op": "replace", "path": "/name", "value": "n"}]),
        403)
    err(patch(server, af, [{"op": "add", "path": "/metadata/k", "value": "v"}]),
        403)
    r = patch(server, af, [{"op": "replace", "path": "/string_mutable",
                            "value": "ok"},
                           {"op": "add", "path": "/tags/-", "value": "t"},
                           {"op": "replace", "path": "/description",
                            "value": "d"}])
    assert r.status_code == 200, r.text


def test_publish_rules(server, uniq):
    n = uniq()
    af = create(server, {"name": n, "string_required": "x"})
    pub = [{"op": "replace", "path": "/visibility", "value": "public"}]
    err(patch(server, af, pub, token=ADMIN), 403)          # not active
    activate(server, af)
    err(patch(server, af, pub), 403)                       # not admin
    r = patch(server, af, pub, token=ADMIN)
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    # now visible to others, but not writable by them, nor by the owner
    assert server.get("%s/%s" % (SA, af["id"]), token=USER2).status_code == 200
    err(patch(server, af, [{"op": "replace", "path": "/string_mutable",
                            "value": "x"}], token=USER2), 403)
    err(patch(server, af, [{"op": "replace", "path": "/string_mutable",
                            "value": "x"}]), 403)
    assert patch(server, af, [{"op": "replace", "path": "/string_mutable",
                               "value": "x"}], token=ADMIN).status_code == 200
    err(patch(server, af, [{"op": "replace", "path": "/visibility",
                            "value": "private"}], token=ADMIN), 403)
    # public scope clash: another tenant's artifact with the same name/version
    other = activate(server, create(server, {"name": n, "string_required": "x"},
                                    token=USER2), token=USER2)
    err(patch(server, other, pub, token=ADMIN), 409)


def test_rename_into_taken_scope_409(server, uniq):
    a = create(server, {"name": uniq("a")})
    b = create(server, {"name": uniq("b")})
    err(patch(server, b, [{"op": "replace", "path": "/name",
                           "value": a["name"]}]), 409)


def test_combined_patch_with_status(server, uniq):
    af = create(server, {"name": uniq()})
    r = patch(server, af, [
        {"op": "replace", "path": "/string_required", "value": "s"},
        {"op": "replace", "path": "/int1", "value": 3},
        {"op": "replace", "path": "/status", "value": "active"}])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["int1"] == 3


def test_update_other_tenant_404(server, uniq):
    af = create(server, {"name": uniq()})
    err(patch(server, af, [{"op": "replace", "path": "/int1", "value": 1}],
              token=USER2), 404)
    err(server.patch("/artifacts/all/" + af["id"],
                     [{"op": "replace", "path": "/int1", "value": 1}]), 403)


def test_concurrent_patches_no_lost_update(make_server, uniq):
    s = make_server(workers=2)
    af = s.post(SA, {"name": uniq()}).json()
    codes = {}

    def go(i):
        r = s.patch("%s/%s" % (SA, af["id"]),
                    [{"op": "add", "path": "/tags/-", "value": "t%d" % i}])
        codes[i] = r.status_code
    ts = [threading.Thread(target=go, args=(i,)) for i in range(16)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert set(codes.values()) <= {200, 409}
    tags = set(s.get("%s/%s" % (SA, af["id"])).json()["tags"])
    won = {"t%d" % i for i, c in codes.items() if c == 200}
    # every 200 is reflected; nothing else is
    assert won <= tags and tags <= {"t%d" % i for i in range(16)}


# ---- delete -----------------------------------------------------------------------

def test_delete(server, uniq):
    af = create(server, {"name": uniq()})
    err(server.delete("%s/%s" % (SA, af["id"]), token=USER2), 404)
    r = server.delete("%s/%s" % (SA, af["id"]))
    assert r.status_code == 204 and r.content == b""
    err(server.get("%s/%s" % (SA, af["id"])), 404)
    err(server.delete("%s/%s" % (SA, af["id"])), 404)


def test_delete_public_and_deactivated_admin_only(server, uniq):
    af = activate(server, create(server, {"name": uniq()}))
    patch(server, af, [{"op": "replace", "path": "/visibility",
                        "value": "public"}], token=ADMIN)
    err(server.delete("%s/%s" % (SA, af["id"])), 403)
    b = activate(server, create(server, {"name": uniq()}))
    patch(server, b, [{"op": "replace", "path": "/status",
                       "value": "deactivated"}], token=ADMIN)
    err(server.delete("%s/%s" % (SA, b["id"])), 403)
    assert server.delete("%s/%s" % (SA, b["id"]),
                         token=ADMIN).status_code == 204
    assert server.delete("%s/%s" % (SA, af["id"]),
                         token=ADMIN).status_code == 204


def test_delayed_delete_and_scrubber(make_server, uniq):
    import subprocess
    from conftest import GLARED
    s = make_server({"delayed_delete": True, "scrubber.scrub_time": 1})
    af = s.post(SA, {"name": uniq()}).json()
    assert s.delete("%s/%s" % (SA, af["id"])).status_code == 204
    r = s.get("%s/%s" % (SA, af["id"]))
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert s.get(SA + "?name=" + af["name"]).json()["total_count"] == 0
    err(s.patch("%s/%s" % (SA, af["id"]),
                [{"op": "replace", "path": "/int1", "value": 1}]), 403)
    # scrub_time not reached: nothing purged
    p = subprocess.run([GLARED, "scrub", "--config-file", s.conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert s.get("%s/%s" % (SA, af["id"])).status_code == 200
    time.sleep(1.2)
    p = subprocess.run([GLARED, "scrub", "--config-file", s.conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "1 artifact(s) purged" in p.stderr
    err(s.get("%s/%s" % (SA, af["id"])), 404)


def test_per_type_delayed_delete(make_server, uniq):
    s = make_server({"artifact_type:sample_artifact.delayed_delete": True})
    a = s.post(SA, {"name": uniq()}).json()
    s.delete("%s/%s" % (SA, a["id"]))
    assert s.get("%s/%s" % (SA, a["id"])).json()["status"] == "deleted"
    b = s.post("/artifacts/images", {"name": uniq()}).json()
    s.delete("/artifacts/images/%s" % b["id"])
    err(s.get("/artifacts/images/%s" % b["id"]), 404)


def test_anonymous_read_only(make_server, uniq):
    s = make_server({"allow_anonymous_access": True})
    af = s.post(SA, {"name": uniq(), "string_required": "x"}).json()
    activate(s, af)
    s.patch("%s/%s" % (SA, af["id"]), [{"op": "replace", "path": "/visibility",
                                        "value": "public"}], token=ADMIN)
    priv = s.post(SA, {"name": uniq()}).json()
    # trusted auth: tenant "none" is the anonymous user
    anon = "anonymous:none:"
    ids = {a["id"] for a in s.get(SA, token=anon).json()["artifacts"]}
    assert af["id"] in ids and priv["id"] not in ids
    assert s.get("%s/%s" % (SA, priv["id"]), token=anon).status_code == 404
    assert s.get("%s/%s" % (SA, af["id"]), token=anon).status_code == 200
    r = s.delete("%s/%s" % (SA, af["id"]), token=anon)
    assert r.status_code in (403, 404)
    # without any token it stays 401, as in Glare
    assert requests.get(s.url + SA).status_code == 401


def test_links(server, uniq):
    target = create(server, {"name": uniq()})
    other = create(server, {"name": uniq()}, token=USER2)
    good = "/artifacts/sample_artifact/" + target["id"]
    af = create(server, {"name": uniq(), "link1": good,
                         "link2": "http://example.com/some/thing",
                         "list_of_links": [good]})
    assert af["link1"] == good
    for bad in ("/artifacts/sample_artifact/" + other["id"],     # invisible
                "/artifacts/sample_artifact/00000000-0000-0000-0000-000000000000",
                "/artifacts/x", "ftp://example.com/x", "nolink"):
        r = server.post(SA, {"name": uniq(), "link1": bad})
        assert r.status_code == 400, (bad, r.text)
    err(patch(server, af, [{"op": "add", "path": "/list_of_links/-",
                            "value": "/artifacts/images/" + other["id"]}]),
        400)


def test_create_and_patch_refused_before_body(server, uniq):
    import socket
    from conftest import status_of
    af = create(server, {"name": uniq()})
    for method, path, ct in (
            ("POST", "/artifacts/nope", "application/json"),
            ("POST", "/artifacts/all", "application/json"),
            ("PATCH", "%s/%s" % (SA, "0" * 36), "application/json-patch+json"),
            ("PATCH", "%s/%s" % (SA, af["id"]), "application/json")):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
                   "Content-Type: %s\r\nExpect: 100-continue\r\n"
                   "Content-Length: 1000\r\n\r\n" % (method, path, USER2, ct))
                  .encode())
        out = s.recv(65536)
        s.close()
        assert status_of(out) in (403, 404, 415), (method, path, out[:80])
        assert b"100 Continue" not in out
