"""Glare to the letter (issue 15): the behaviours Glare clients depend on,
and the two integrity rules of the locations design, seen on the wire.

The schema test compares glared's whole GET /schemas document with real
Glare's output for the stock types (tests/http/data/glare-schemas.json,
descriptions removed), allowing only the documented `verification`
member of blob schemas (docs/types.md)."""
import copy
import hashlib
import json
import os
import socket
import subprocess
import time

import jsonschema
import pytest

from conftest import (ADMIN, CLUSTER, GLARED, ROOT, USER1, Server, raw,
                      status_of)
from test_09_locations import Fixture, data_of, fx  # noqa: F401 (fixture)

SA = "/artifacts/sample_artifact"
RI = "/artifacts/regional_images"
LOC = {"Content-Type": "application/vnd+openstack.glare-custom-location+json"}
OCTETS = {"Content-Type": "application/octet-stream"}


def created(s, path=SA, token=USER1, **body):
    body.setdefault("name", "letter-%d" % time.time_ns())
    r = s.post(path, body, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def msg(r):
    return r.json()["error"]["message"]


# ---- 1. every response carries exactly one Content-Type ----------------------

def content_types(r):
    """Every Content-Type header of a requests response, repeats kept."""
    return r.raw.headers.getlist("Content-Type")


def raw_content_types(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return [h.split(":", 1)[1].strip() for h in head[1:]
            if h.lower().startswith("content-type:")]


def test_every_response_has_one_content_type(make_server, fx):  # noqa
    s = make_server({"artifact_type:images.external_location_verification":
                     "trust", "max_json_body": 4096,
                     "external_location_allowed_networks": "127.0.0.1/32",
                     "artifact_type:hooks_artifact.external_download":
                         "proxy"})
    seen = {}

    def check(what, r, status, ctype=None):
        assert r.status_code == status, (what, r.status_code, r.text[:200])
        cts = content_types(r)
        assert len(cts) == 1, (what, cts)
        if ctype:
            assert cts[0] == ctype, (what, cts)
        seen[what] = cts[0]
        return r

    json_ct = "application/json; charset=UTF-8"
    check("versions", s.get("/", token=None), 300, json_ct)
    check("healthcheck", s.get("/healthcheck", token=None), 200)
    check("schemas", s.get("/schemas"), 200,
          "application/schema+json; charset=UTF-8")
    check("schema", s.get("/schemas/images"), 200,
          "application/schema+json; charset=UTF-8")
    check("list", s.get(SA), 200, json_ct)
    check("list all", s.get("/artifacts/all"), 200, json_ct)
    af = check("create", s.post(SA, {"name": "ct", "string_required": "x"}),
               201, json_ct).json()
    url = "%s/%s" % (SA, af["id"])
    check("show", s.get(url), 200, json_ct)
    check("show all", s.get("/artifacts/all/" + af["id"]), 200, json_ct)
    check("patch", s.patch(url, [{"op": "replace", "path": "/int1",
                                  "value": 1}]), 200, json_ct)
    check("upload", s.put(url + "/blob", data=b"0123456789",
                          headers={"Content-Type": "text/x-letter"}), 200,
          json_ct)
    check("upload into a dict", s.put(url + "/dict_of_blobs/k", data=b"abc",
                                      headers=OCTETS), 200, json_ct)
    check("download", s.get(url + "/blob"), 200, "text/x-letter")
    check("download HEAD", s.req("HEAD", url + "/blob"), 200,
          "text/x-letter")
    check("range", s.get(url + "/blob", headers={"Range": "bytes=2-4"}), 206,
          "text/x-letter")
    etag = s.get(url + "/blob").headers["ETag"]
    check("not modified", s.get(url + "/blob",
                                headers={"If-None-Match": etag}), 304)
    check("range outside", s.get(url + "/blob",
                                 headers={"Range": "bytes=50-60"}), 416,
          json_ct)
    im = created(s, "/artifacts/images")
    iurl = "/artifacts/images/%s" % im["id"]
    check("location", s.put(iurl + "/image", headers=dict(LOC), json={
        "url": "http://glare-letter.invalid/x", "md5": "0" * 32}), 200,
        json_ct)
    check("redirect", s.get(iurl + "/image", allow_redirects=False), 301,
          "application/json")
    check("delete external blob", s.delete(iurl + "/image"), 200, json_ct)
    check("internal location", s.put(iurl + "/image", headers=dict(LOC),
                                      token=ADMIN, json={
        "url": fx.url + "/data/10", "location_type": "internal"}), 200,
        json_ct)
    check("download through glared", s.get(iurl + "/image"), 200,
          "application/octet-stream")
    hk = created(s, "/artifacts/hooks_artifact")
    hurl = "/artifacts/hooks_artifact/%s/blob" % hk["id"]
    check("fetched location", s.put(hurl, headers=dict(LOC), json={
        "url": fx.url + "/data/20"}), 200, json_ct)
    check("proxied download", s.get(hurl), 200, "application/x-test")
    check("delete", s.delete(iurl), 204, "text/html; charset=UTF-8")
    check("quotas set", s.req("PUT", "/quotas", token=ADMIN, json=[],
                              headers={"Content-Type": "application/json"}),
          200, json_ct)
    check("quotas", s.get("/quotas", token=ADMIN), 200, json_ct)
    check("project quotas", s.get("/project-quotas"), 200, json_ct)
    # errors, from every layer
    check("not found", s.get("/nope"), 404, json_ct)
    check("method", s.req("POST", "/schemas"), 405, json_ct)
    check("no token", s.get(SA, token=None), 401, json_ct)
    check("bad version", s.get("/schemas", headers={
        "OpenStack-API-Version": "artifact 9.0"}), 406, json_ct)
    check("media type", s.req("POST", SA, data=b"{}", headers={
        "Content-Type": "text/plain"}), 415, json_ct)
    check("bad json", s.req("POST", SA, data=b"{x", headers={
        "Content-Type": "application/json"}), 400, json_ct)
    check("too large", s.req("POST", SA, data=b" " * 5000, headers={
        "Content-Type": "application/json"}), 413, json_ct)
    check("forbidden", s.patch(url, [{"op": "replace", "path": "/id",
                                      "value": "x"}]), 403, json_ct)
    # protocol errors answered below the API
    for what, req in (
            ("unknown verb", b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("bad request line", b"GET\r\n\r\n"),
            ("bad expectation", b"GET / HTTP/1.1\r\nHost: x\r\n"
                                b"Expect: tea\r\n\r\n")):
        out = raw(s.port, req, read_until_close=False)
        assert status_of(out) and status_of(out) >= 400, (what, out[:80])
        assert len(raw_content_types(out)) == 1, (what, out[:300])


# ---- 2. schemas equal Glare's -----------------------------------------------

def glare_schemas():
    """Real Glare's GET /schemas output for the stock types (descriptions
    removed), kept in the repository so a clean clone checks against it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                        "glare-schemas.json")
    with open(path) as f:
        return json.load(f)["schemas"]


def without_descriptions(v):
    if isinstance(v, dict):
        return {k: without_descriptions(x) for k, x in v.items()
                if k != "description"}
    if isinstance(v, list):
        return [without_descriptions(x) for x in v]
    return v


def without_verification(schema):
    """glared's one documented addition to Glare's schemas: blob values
    carry `verification` (docs/types.md). Removed exactly where it is
    expected, so anything else that differs still shows."""
    schema = copy.deepcopy(schema)
    for name, p in schema["properties"].items():
        blob = {"Blob": p, "BlobDict": p.get("additionalProperties")}.get(
            p["glareType"])
        if blob is not None:
            assert "verification" in blob["properties"], name
            assert "verification" not in blob["required"], name
            del blob["properties"]["verification"]
    return schema


def test_schemas_equal_glare(server):
    want = glare_schemas()
    got = server.get("/schemas").json()["schemas"]
    for name, glare in want.items():
        mine = without_verification(without_descriptions(got[name]))
        assert mine == without_descriptions(glare), name
        one = server.get("/schemas/" + name).json()["schemas"]
        assert list(one) == [name] and one[name] == got[name]


def test_deployer_types_get_the_same_treatment(tmp_path):
    d = tmp_path / "types"
    d.mkdir()
    (d / "firmware.lua").write_text("""
return glare.type {
  name = "firmware",
  version = "2.1",
  fields = {
    { board = glare.String { allowed_values = { "a", "b" }, required_on_activate = true } },
    { notes = glare.List { of = glare.String, mutable = true } },
    { files = glare.Folder { required_on_activate = true } },
    { labels = glare.Dict { of = glare.Integer, filter_ops = { "eq" },
        default = glare.json.null } },
    { image = glare.Blob {} },
  },
}
""")
    s = Server({"types_path": str(d), "enabled_artifact_types": "firmware"})
    try:
        p = s.get("/schemas/firmware").json()["schemas"]["firmware"][
            "properties"]
        stock = glare_schemas()["images"]["properties"]
        for base in ("visibility", "status", "tags", "metadata", "name",
                     "version", "id"):
            assert without_descriptions(p[base]) == \
                without_descriptions(stock[base]), base
        assert p["board"] == {"type": ["string", "null"], "glareType": "String",
                              "enum": ["a", "b"],
                              "filter_ops": ["eq", "neq", "in"]}
        assert p["notes"]["filter_ops"] == ["eq", "neq", "in"]
        assert p["notes"]["default"] == [] and p["notes"]["mutable"] is True
        assert p["notes"]["required_on_activate"] is False
        assert "required_on_activate" not in p["files"]
        assert p["labels"]["filter_ops"] == ["eq"] and "default" not in p["labels"]
        assert p["image"]["filter_ops"] == [] and \
            p["image"]["required_on_activate"] is False
        # the declared absence of a default shows: unset and null read null
        af = created(s, "/artifacts/firmware")
        assert af["labels"] is None and af["notes"] == []
    finally:
        s.stop()


# ---- 3. order of checks on create ------------------------------------------------

def test_unparsable_body_before_type_lookup(server):
    ct = {"Content-Type": "application/json"}
    r = server.req("POST", "/artifacts/no_such_type", data=b"{not json",
                   headers=ct)
    assert r.status_code == 400, r.text
    r = server.req("POST", "/artifacts/no_such_type", data=b"[1, 2]",
                   headers=ct)
    assert r.status_code == 400, r.text
    r = server.req("POST", "/artifacts/no_such_type", data=b'{"name": "x"}',
                   headers=ct)
    assert r.status_code == 404, r.text
    # a patch as well: malformed before the artifact is looked up
    r = server.req("PATCH", SA + "/" + "0" * 36, data=b"{not json",
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 400, r.text


# ---- 4. a PATCH is judged on its result ----------------------------------------

def test_reactivate_and_change_in_one_patch(server):
    af = created(server, string_required="x", string_mutable="before")
    url = "%s/%s" % (SA, af["id"])
    st = lambda v: {"op": "replace", "path": "/status", "value": v}
    assert server.patch(url, [st("active")]).status_code == 200
    assert server.patch(url, [st("deactivated")], token=ADMIN) \
        .status_code == 200
    r = server.patch(url, [st("active"), {"op": "replace",
                                          "path": "/string_mutable",
                                          "value": "after"}], token=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["string_mutable"] == "after"
    got = server.get(url).json()
    assert (got["status"], got["string_mutable"]) == ("active", "after")
    # the result is an active artifact: immutable fields stay as they are
    assert server.patch(url, [st("deactivated")], token=ADMIN) \
        .status_code == 200
    r = server.patch(url, [st("active"), {"op": "replace", "path": "/int1",
                                          "value": 9}], token=ADMIN)
    assert r.status_code == 403, r.text
    # and a deactivated result is frozen
    r = server.patch(url, [{"op": "replace", "path": "/string_mutable",
                            "value": "x"}], token=ADMIN)
    assert r.status_code == 403
    got = server.get(url).json()
    assert (got["status"], got["int1"], got["string_mutable"]) == \
        ("deactivated", None, "after")


# ---- 5. null collections return to their default -------------------------------

def test_null_collections_read_their_default(server):
    af = created(server, tags=["a"], metadata={"k": "v"},
                 list_of_int=[1], dict_of_str={"a": "b"})
    r = server.patch("%s/%s" % (SA, af["id"]), [
        {"op": "replace", "path": "/" + f, "value": None}
        for f in ("tags", "metadata", "list_of_int", "dict_of_str",
                  "dict_validators")])
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["tags"] == [] and a["metadata"] == {}
    assert a["list_of_int"] == [] and a["dict_of_str"] == {}
    assert a["dict_validators"] is None          # declared without a default
    assert server.get("%s/%s" % (SA, af["id"])).json()["tags"] == []
    a = created(server, tags=None, metadata=None)
    assert a["tags"] == [] and a["metadata"] == {}


# ---- 6. internal locations in trust mode ---------------------------------------

def test_internal_location_trusted_without_fetch(make_server, fx):  # noqa
    s = make_server({"external_location_allowed_networks": "127.0.0.1/32",
                     "artifact_type:sample_artifact."
                     "external_location_verification": "trust"})
    af = created(s)
    url = "%s/%s" % (SA, af["id"])
    # taken as said, but a checksum must be one (issue 12, item 8)
    given = "0123456789abcdef" * 2
    body = {"url": fx.url + "/data/300", "location_type": "internal",
            "md5": given}
    hits = len(Fixture.hits)
    r = s.put(url + "/blob", json=body, headers=dict(LOC), token=ADMIN)
    assert r.status_code == 200, r.text
    assert len(Fixture.hits) == hits              # recorded, nothing fetched
    b = r.json()["blob"]
    assert b["external"] is False and b["url"] == url + "/blob"
    assert (b["md5"], b["size"], b["status"]) == (given, None, "active")
    assert "verification" not in b
    # served through glared from the URL it was given
    r = s.get(url + "/blob")
    assert r.status_code == 200 and r.content == data_of(300)
    # not an external blob: it cannot be deleted as one
    assert s.delete(url + "/blob").status_code == 403
    # fetch mode (the default) still imports the bytes
    f = make_server({"external_location_allowed_networks": "127.0.0.1/32"})
    af = created(f)
    r = f.put("%s/%s/blob" % (SA, af["id"]), json=body, headers=dict(LOC),
              token=ADMIN)
    assert r.status_code == 400 and "md5" in msg(r)   # checked, not trusted
    del body["md5"]
    hits = len(Fixture.hits)
    r = f.put("%s/%s/blob" % (SA, af["id"]), json=body, headers=dict(LOC),
              token=ADMIN)
    assert r.status_code == 200, r.text
    assert len(Fixture.hits) == hits + 1
    assert r.json()["blob"]["sha256"] == hashlib.sha256(data_of(300)) \
        .hexdigest()


# ---- 7. same_sha256 holds for direct uploads ------------------------------------

def stored_objects(s):
    """What the refused upload could have left in the blob store."""
    if CLUSTER:
        from test_11_scaleout import objects_under, uploads_under
        prefix = s.options["glance_store.s3_store_prefix"]
        return sorted(objects_under(prefix)) + sorted(uploads_under(prefix))
    found = []
    for base, _, files in os.walk(os.path.join(s.dir, "blobs")):
        found += [os.path.join(base, f) for f in files]
    return sorted(found)


def test_same_sha256_refuses_a_different_upload(make_server):
    s = make_server()
    af = created(s, RI)
    url = "%s/%s/locations/" % (RI, af["id"])
    one, other = b"one image " * 100, b"another image " * 100
    assert s.put(url + "eu-west", data=one, headers=OCTETS).status_code == 200
    before = stored_objects(s)
    r = s.put(url + "us-east", data=other, headers=OCTETS)
    assert r.status_code == 409, r.text
    assert "sha256" in msg(r)
    got = s.get("%s/%s" % (RI, af["id"])).json()["locations"]
    assert list(got) == ["eu-west"]
    # nothing of it remains (an aborted S3 upload goes away soon after)
    deadline = time.time() + 10
    while stored_objects(s) != before and time.time() < deadline:
        time.sleep(0.2)
    assert stored_objects(s) == before
    # the same bytes are a copy, welcome under any key
    r = s.put(url + "us-east", data=one, headers=OCTETS)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["locations"]) == ["eu-west", "us-east"]
    # replacing the only copy's bytes is refused too while another exists
    assert s.put(url + "eu-west", data=other,
                 headers=OCTETS).status_code == 409
    assert s.get(url + "eu-west").content == one


# ---- 8. verification state in the blob's JSON ------------------------------------

def test_verification_visible_in_show_and_list(make_server, fx):  # noqa
    s = make_server({"external_location_allowed_networks": "127.0.0.1/32"})
    Fixture.mutable = data_of(4000)
    Fixture.mutable_gone = False
    af = created(s)
    url = "%s/%s" % (SA, af["id"])
    t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    r = s.put(url + "/blob", json={"url": fx.url + "/mutable"},
              headers=dict(LOC))
    assert r.status_code == 200, r.text
    v = r.json()["blob"]["verification"]
    assert v["status"] == "ok" and v["checked_at"] >= t0 and "detail" not in v
    # uploaded data has nothing to check at a URL
    s.put(url + "/small_blob", data=b"x", headers=OCTETS)
    assert "verification" not in s.get(url).json()["small_blob"]
    # the member as the blob field's schema documents it
    schema = s.get("/schemas/sample_artifact").json()["schemas"][
        "sample_artifact"]["properties"]["blob"]["properties"]["verification"]

    def state():
        shown = s.get(url).json()
        listed = [a for a in s.get(SA + "?name=" + af["name"]).json()[
            "artifacts"] if a["id"] == af["id"]]
        assert len(listed) == 1
        assert listed[0]["blob"] == shown["blob"]
        v = shown["blob"]["verification"]
        jsonschema.Draft4Validator(schema).validate(v)
        return v

    def verify():
        p = subprocess.run([GLARED, "verify", "--config-file", s.conf],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode in (0, 3), p.stderr

    Fixture.mutable = data_of(4001)[1:]
    time.sleep(1.1)                                # checked_at moves on
    verify()
    v = state()
    assert v["status"] == "changed" and v["checked_at"] > t0
    assert "recorded" in v["detail"]
    changed_at = v["checked_at"]
    Fixture.mutable_gone = True
    verify()
    v = state()
    assert v["status"] == "gone" and "404" in v["detail"]
    Fixture.mutable_gone = False
    Fixture.mutable = data_of(4000)
    time.sleep(1.1)
    verify()
    v = state()
    assert v["status"] == "ok" and "detail" not in v
    assert v["checked_at"] > changed_at
