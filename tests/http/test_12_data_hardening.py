"""Hardening of the data side (issue 12, items 2, 3, 4, 6, 8): U+0000 is
refused in every request document and changes nothing; a stored row that
cannot be decoded never fails a listing, a show or a delete; a JSON-patch
has a bounded cost; oversized values are refused in C before the type
runtime sees them (4xx, never 500); trust-mode blobs proxy without a size
and only bytes that were read and differ flag a blob; checksums and URLs
are checked wherever they enter and before a stored one goes out."""
import contextlib
import hashlib
import json
import sqlite3
import subprocess
import uuid

import pytest
import requests

from conftest import ADMIN, GLARED, USER1, Server
from test_09_locations import Fixture, data_of, fx  # noqa: F401 (fixture)

SA = "/artifacts/sample_artifact"
LOC = {"Content-Type": "application/vnd+openstack.glare-custom-location+json"}
JSON = {"Content-Type": "application/json"}
NUL = "a\u0000b"


def msg(r):
    return r.json()["error"]["message"]


def new(s, token=USER1, **kw):
    body = {"name": "h-%s" % uuid.uuid4().hex[:10]}
    body.update(kw)
    r = s.post(SA, body, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def count(s, token=USER1):
    """Artifacts the token's project owns (public ones of others aside)."""
    r = s.get(SA + "?limit=0&owner=" + token.split(":")[1], token=token)
    assert r.status_code == 200, r.text
    return r.json()["total_count"]


def db_exec(s, sql):
    """Statements run on the server's database beside the API (sqlite file
    or PostgreSQL database), as a careless hand or an old release would."""
    conn = s.options["database.connection"]
    if conn.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(conn[len("sqlite:///"):],
                                                timeout=30)) as c:
            c.executescript(sql)
    else:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", conn,
                        "-c", sql], check=True, capture_output=True,
                       timeout=30)


def is_sqlite(s):
    return s.options["database.connection"].startswith("sqlite:")


# ---- item 2: U+0000 is refused in every request document -------------------

@pytest.mark.parametrize("body", [
    {"name": NUL},
    {"name": "n", "description": NUL},
    {"name": "n", "str1": NUL},
    {"name": "n", "string_mutable": "x" + NUL},
    {"name": "n", "list_of_str": ["ok", NUL]},
    {"name": "n", "dict_of_str": {NUL: "v"}},
    {"name": "n", "dict_of_str": {"k": NUL}},
    {"name": "n", "tags": [NUL]},
    {"name": "n", "metadata": {"k": NUL}},
    {"name": "n", "metadata": {NUL: "v"}},
    {"name": "n", "link1": "http://example.com/" + NUL},
    {"name": "n", "version": "1.0.0-" + NUL},
], ids=lambda b: ",".join(b)[-20:])
def test_nul_refused_on_create(server, uniq, body):
    token = "u:%s:member" % uniq("p")
    r = server.post(SA, body, token=token)
    assert r.status_code == 400, r.text
    assert "U+0000" in msg(r)
    assert count(server, token) == 0


@pytest.mark.parametrize("ops", [
    [{"op": "replace", "path": "/name", "value": NUL}],
    [{"op": "replace", "path": "/description", "value": NUL}],
    [{"op": "add", "path": "/list_of_str/-", "value": NUL}],
    [{"op": "add", "path": "/dict_of_str/" + NUL, "value": "v"}],
    [{"op": "add", "path": "/tags/-", "value": NUL}],
    [{"op": "add", "path": "/metadata/k", "value": NUL}],
    [{"op": "replace", "path": "/str1" + NUL, "value": "x"}],
    [{"op": "test", "path": "/str1", "value": NUL}],
    [{"op": "copy", "from": "/str1" + NUL, "path": "/string_mutable"}],
])
def test_nul_refused_on_patch(server, ops):
    af = new(server, str1="s")
    r = server.patch("%s/%s" % (SA, af["id"]), ops)
    assert r.status_code == 400, r.text
    assert "U+0000" in msg(r)
    got = server.get("%s/%s" % (SA, af["id"])).json()
    assert got == af


@pytest.mark.parametrize("body", [
    {"url": "http://127.0.0.1/" + NUL},
    {"url": "http://127.0.0.1/x", "md5": "0" * 31 + NUL},
    {"url": "http://127.0.0.1/x", "location_type": "ex" + NUL},
])
def test_nul_refused_in_locations(server, body):
    af = new(server)
    r = server.put("%s/%s/blob" % (SA, af["id"]), data=json.dumps(body),
                   headers=dict(LOC))
    assert r.status_code == 400, r.text
    assert "U+0000" in msg(r)
    assert server.get("%s/%s" % (SA, af["id"])).json()["blob"] is None


@pytest.mark.parametrize("body", [
    [{"project_id": NUL, "project_quotas": []}],
    [{"project_id": "p", "project_quotas": [
        {"quota_name": "max_artifact_number:" + NUL, "quota_value": 1}]}],
])
def test_nul_refused_in_quotas(server, body):
    before = server.get("/quotas", token=ADMIN).json()
    r = server.put("/quotas", data=json.dumps(body), headers=dict(JSON),
                   token=ADMIN)
    assert r.status_code == 400, r.text
    assert "U+0000" in msg(r)
    assert server.get("/quotas", token=ADMIN).json() == before


def test_escaped_backslash_u0000_is_text(server):
    # "\\u0000" is a backslash and five characters, not U+0000
    af = new(server, str1="a\\u0000b")
    assert server.get("%s/%s" % (SA, af["id"])).json()["str1"] == "a\\u0000b"


# ---- item 2: reading a stored row is total ------------------------------------

def ids_of(r):
    assert r.status_code == 200, r.text
    return {a["id"] for a in r.json()["artifacts"]}


def test_damaged_rows_list_show_delete(make_server, uniq):
    s = make_server()
    owner = "u:%s:member" % uniq("p")
    afs = [new(s, token=owner, str1="s%d" % i) for i in range(6)]
    ids = [a["id"] for a in afs]
    r = s.put("%s/%s/small_blob" % (SA, ids[4]), data=b"abc",
              headers={"Content-Type": "application/octet-stream"},
              token=owner)
    assert r.status_code == 200, r.text
    r = s.put("%s/%s/small_blob" % (SA, ids[5]), data=b"xyz",
              headers={"Content-Type": "application/octet-stream"},
              token=owner)
    assert r.status_code == 200, r.text
    damage = [
        "UPDATE artifacts SET doc = 'not json' WHERE id = '%s'" % ids[0],
        # stored before U+0000 was refused: reads back as it was written
        "UPDATE artifacts SET doc = '{\"str1\": \"x\\u0000y\","
        " \"list_of_str\": [\"a\\u0000\"]}' WHERE id = '%s'" % ids[1],
        "UPDATE artifacts SET doc = '[1, 2]',"
        " created_at = 9223372036854775807,"
        " activated_at = -9223372036854775807 WHERE id = '%s'" % ids[2],
        "UPDATE artifacts SET doc = '{\"tags\": 5, \"int1\": \"x\","
        " \"list_of_str\": {}}' WHERE id = '%s'" % ids[3],
        # a blob record with garbage beside it and a checksum that would
        # inject a header
        "UPDATE blobs SET prev = 'garbage', extra = '{bad',"
        " md5 = 'zz' || chr(13) || chr(10) || 'X-Injected: 1'"
        " WHERE artifact_id = '%s'" % ids[4],
        # an external record whose URL would inject a header
        "UPDATE blobs SET external = (1 = 1), store = 'external',"
        " url = 'http://x/' || chr(13) || chr(10) || 'X-Injected: 1'"
        " WHERE artifact_id = '%s'" % ids[5],
    ]
    if is_sqlite(s):
        damage = [d.replace("chr(", "char(") for d in damage]
        # only sqlite holds text that is not UTF-8 or has NUL bytes
        damage += [
            "UPDATE artifacts SET name = CAST(x'61ff62' AS TEXT),"
            " description = CAST(x'610062' AS TEXT) WHERE id = '%s'"
            % ids[1],
            "UPDATE artifacts SET doc = CAST(x'7b2273747231223a2261ff62227d'"
            " AS TEXT) WHERE id = '%s'" % ids[3],
        ]
    db_exec(s, ";\n".join(damage) + ";")

    # every listing that includes them answers, with all of them
    for path, token in ((SA, owner), (SA, ADMIN), ("/artifacts/all", owner),
                        ("/artifacts/all", ADMIN),
                        (SA + "?sort=name:asc&limit=2", owner)):
        seen, url = set(), path
        for _ in range(10):
            r = s.get(url, token=token)
            seen |= ids_of(r)
            url = r.json().get("next")
            if not url:
                break
        assert set(ids) <= seen, (path, token)
    for i in ids:
        r = s.get("%s/%s" % (SA, i), token=owner)
        assert r.status_code == 200, r.text
    got = s.get("%s/%s" % (SA, ids[0]), token=owner).json()
    assert got["str1"] is None and got["list_of_str"] == []  # a new doc
    got = s.get("%s/%s" % (SA, ids[1]), token=owner).json()
    assert got["list_of_str"] == ["a\u0000"] and got["str1"] == "x\u0000y"
    if is_sqlite(s):
        assert got["name"] == "a\ufffdb" and got["description"] == NUL
    assert s.get("%s/%s" % (SA, ids[2]), token=owner).json()["created_at"] \
        is None
    # a stored checksum that is not one is never sent
    r = s.get("%s/%s/small_blob" % (SA, ids[4]), token=owner)
    assert r.status_code == 200 and r.content == b"abc"
    assert "Content-MD5" not in r.headers and "X-Injected" not in r.headers
    # a stored URL that would not be accepted today is not redirected to
    r = s.get("%s/%s/small_blob" % (SA, ids[5]), token=owner,
              allow_redirects=False)
    assert r.status_code == 409 and "X-Injected" not in r.headers
    assert "not usable" in msg(r)

    # logged, once per worker and damage
    log = s.read_log()
    n = log.count("artifact %s: the stored document is damaged" % ids[0])
    assert 1 <= n <= len(s.nodes), log[-3000:]

    # and each can still be deleted
    for i in ids:
        r = s.delete("%s/%s" % (SA, i), token=owner)
        assert r.status_code == 204, r.text
    assert ids_of(s.get(SA, token=owner)) == set()


# ---- item 3: a patch has a bounded cost ------------------------------------------

def doubling_patch(n=22):
    return [{"op": "copy", "from": "/list_of_str", "path": "/list_of_str/-"}
            for _ in range(n)]


def test_doubling_patch_answers_400(server):
    af = new(server, list_of_str=["a"])
    ops = doubling_patch()
    assert len(json.dumps(ops)) < 1500
    # the request bound is a hang guard; without the budget this patch
    # builds 2^22 nested lists (seconds of blocked loop, gigabytes)
    r = server.patch("%s/%s" % (SA, af["id"]), ops, timeout=20)
    assert r.status_code == 400, r.text
    assert "more than 20000 values" in msg(r)
    assert server.get("%s/%s" % (SA, af["id"])).json() == af


@pytest.mark.parametrize("ops,part", [
    # over max_items (3) in the middle, back under it at the end
    ([{"op": "add", "path": "/list_validators/-", "value": "c"},
      {"op": "add", "path": "/list_validators/-", "value": "d"},
      {"op": "remove", "path": "/list_validators/0"}],
     "List must have at most 3 items"),
    # over max_keys (3) in the middle
    ([{"op": "add", "path": "/dict_validators/ghi", "value": "x"},
      {"op": "add", "path": "/dict_validators/jkl", "value": "x"},
      {"op": "remove", "path": "/dict_validators/abc"}],
     "Dict must have at most 3 keys"),
    # a string copied into a field that takes at most 10 characters
    ([{"op": "replace", "path": "/description", "value": "x" * 300},
      {"op": "copy", "from": "/description", "path": "/string_validators"}],
     "String length must be at most 10"),
    ([{"op": "add", "path": "/list_of_str/-", "value": "x"}] * 1001,
     "at most 1000 are allowed"),
    # each copy of a dict into itself nests it one level deeper
    ([{"op": "add", "path": "/metadata/a", "value": "v"}] +
     [{"op": "copy", "from": "/metadata", "path": "/metadata/a"}] * 40,
     "nested deeper than 32 levels"),
])
def test_limits_hold_during_a_patch(server, ops, part):
    af = new(server, list_validators=["a", "b"],
             dict_validators={"abc": "1", "def": "2"})
    r = server.patch("%s/%s" % (SA, af["id"]), ops, timeout=20)
    assert r.status_code == 400, r.text
    assert part in msg(r), msg(r)
    assert server.get("%s/%s" % (SA, af["id"])).json() == af


# ---- item 4: limits before work, 4xx not 500 --------------------------------------

def nested(depth):
    v = "x"
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize("field,value,part", [
    ("list_of_str", ["a"] * 1000000, "more than 20000 values"),
    ("dict_of_str", {str(i): "a" for i in range(200000)},
     "more than 20000 values"),
    ("list_of_str", ["a"] * 300, "List must have at most 255 items (got 300)"),
    ("dict_of_str", {str(i): "a" for i in range(256)},
     "Dict must have at most 255 keys (got 256)"),
    ("list_of_str", ["x" * 256], "item 0: String length must be at most 255"),
    ("str1", "x" * 1000, "String length must be at most 255 (got 1000)"),
    ("dict_of_str", {"k" * 256: "v"}, "longer than 255 characters"),
    ("description", "d" * 5000, "at most 4096"),
    ("list_of_str", nested(40), "nested deeper than 32 levels"),
    ("int1", list(range(30000)), "more than 20000 values"),
], ids=lambda v: str(v)[:24])
def test_too_big_refused_before_work(server, uniq, field, value, part):
    token = "u:%s:member" % uniq("p")
    body = json.dumps({"name": "big", field: value})
    r = server.req("POST", SA, data=body, headers=dict(JSON), token=token,
                   timeout=30)
    assert r.status_code == 400, r.text[:500]
    assert part in msg(r), msg(r)
    assert count(server, token) == 0
    # the same value by PATCH
    af = new(server, token=token)
    r = server.req("PATCH", "%s/%s" % (SA, af["id"]),
                   data=json.dumps([{"op": "add", "path": "/" + field,
                                     "value": value}]),
                   headers={"Content-Type": "application/json-patch+json"},
                   token=token, timeout=30)
    assert r.status_code == 400, r.text[:500]
    assert part in msg(r), msg(r)
    assert server.get("%s/%s" % (SA, af["id"]), token=token).json() == af


def test_limits_are_configurable(make_server):
    s = make_server({"max_json_values": 100, "max_json_depth": 3,
                     "max_patch_operations": 2})
    r = s.post(SA, {"name": "x", "list_of_str": ["a"] * 120})
    assert r.status_code == 400 and "more than 100 values" in msg(r)
    r = s.post(SA, {"name": "x", "metadata": {"k": "v"}})
    assert r.status_code == 201, r.text
    r = s.post(SA, {"name": "y", "list_of_str": [[["a"]]]})
    assert r.status_code == 400 and "deeper than 3" in msg(r)
    af = s.post(SA, {"name": "z"}).json()
    r = s.patch("%s/%s" % (SA, af["id"]),
                [{"op": "add", "path": "/tags/-", "value": "t"}] * 3)
    assert r.status_code == 400 and "at most 2 are allowed" in msg(r)


# ---- items 2-4 by the other roads to the engine: console and hooks ----------

def console(s, chunk):
    return subprocess.run([GLARED, "console", "--config-file", s.conf,
                           "-e", chunk], capture_output=True, text=True,
                          timeout=60)


def test_console_keeps_to_the_same_rules(make_server):
    s = make_server({})
    big = 'local l = {} for i = 1, 300 do l[i] = "x" end '
    for chunk, part in [
            ('glare.create("sample_artifact", {name = "c\\0x"})',
             "400 Bad Request: The request body has a string with U+0000"),
            (big + 'glare.create("sample_artifact", {name = "c-big", '
             'list_of_str = l})',
             "List must have at most 255 items (got 300)"),
            ('local af = glare.create("sample_artifact", {name = "c-dbl", '
             'list_of_str = {"a", "b"}}) local p = {} for i = 1, 40 do '
             'p[i] = {op = "copy", from = "/list_of_str", '
             'path = "/list_of_str/-"} end '
             'glare.update("sample_artifact", af.id, p)',
             "the patch would create more than 20000 values")]:
        r = console(s, chunk)
        assert r.returncode == 1 and part in r.stderr, r.stderr
    # only the artifact the refused patch was for, unchanged
    r = s.get(SA, token=ADMIN).json()["artifacts"]
    assert [(a["name"], a["list_of_str"]) for a in r] == \
        [("c-dbl", ["a", "b"])]


POISON = """
return glare.type {
  name = "poison_artifact", display_name = "Poison", version = "1.0",
  fields = { { note = glare.String {} },
             { items = glare.List { of = glare.String } } },
  hooks = {
    pre_create = function(ctx, af)
      if af.name == "nul" then af.note = "a\\0b" end
      if af.name == "many" then
        local l = {}
        for i = 1, 300 do l[i] = "x" end
        af.items = l
      end
      return af
    end,
  },
}
"""


def test_hook_output_keeps_to_the_same_rules(make_server, tmp_path):
    (tmp_path / "poison_artifact.lua").write_text(POISON)
    s = make_server({"types_path": str(tmp_path),
                     "enabled_artifact_types": "poison_artifact"})
    for name, part in [("nul", "Field 'note': U+0000 is not allowed"),
                       ("many", "Field: items. Exception: List must have "
                        "at most 255 items (got 300)")]:
        r = s.post("/artifacts/poison_artifact", {"name": name})
        assert r.status_code == 400, r.text
        assert part in msg(r), msg(r)
    assert s.post("/artifacts/poison_artifact",
                  {"name": "fine"}).status_code == 201
    r = s.get("/artifacts/poison_artifact")
    assert [a["name"] for a in r.json()["artifacts"]] == ["fine"]


# ---- item 6: trust mode and proxied downloads ------------------------------------

TRUST = {"external_location_allowed_networks": "127.0.0.1/32",
         "fetch_timeout": 10,
         "artifact_type:sample_artifact.external_location_verification":
             "trust",
         "artifact_type:sample_artifact.external_download": "proxy",
         "artifact_type:hooks_artifact.external_download": "proxy"}


@pytest.fixture(scope="module")
def ts():
    s = Server(TRUST)
    yield s
    s.stop()


def sums(data):
    return {"md5": hashlib.md5(data).hexdigest(),
            "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest()}


def trusted(s, url, data, field="blob"):
    af = new(s)
    body = dict(sums(data), url=url)
    r = s.put("%s/%s/%s" % (SA, af["id"], field), data=json.dumps(body),
              headers=dict(LOC))
    assert r.status_code == 200, r.text
    assert r.json()[field]["size"] is None          # trust: nothing fetched
    return "%s/%s/%s" % (SA, af["id"], field)


def try_get(s, url, token=USER1):
    """(status, body or None when the transfer broke off)."""
    try:
        r = s.get(url, timeout=30, token=token)
        return r.status_code, r.content
    except requests.exceptions.RequestException:
        return None, None


def test_trust_mode_proxy_download_without_size(ts, fx):
    data = data_of(3000)
    url = trusted(ts, fx.url + "/data/3000", data)
    for _ in range(2):
        status, body = try_get(ts, url)
        assert status == 200 and body == data
    # a HEAD says what it can: no length is known
    r = ts.req("HEAD", url)
    assert r.status_code == 200


@pytest.mark.parametrize("where", ["remote-404", "refused-address",
                                   "over-the-field-limit"])
def test_failed_or_refused_fetch_never_flags(ts, fx, where):
    data = data_of(3000)
    port = fx.server_address[1]
    if where == "remote-404":
        url = trusted(ts, fx.url + "/404", data)
    elif where == "refused-address":
        url = trusted(ts, "http://127.0.0.2:%d/data/3000" % port, data)
    else:   # small_blob takes 10 bytes: the unknown size is read to 10
        url = trusted(ts, fx.url + "/data/3000", data, field="small_blob")
    for _ in range(2):
        status, body = try_get(ts, url)
        assert status != 409, "flagged after a failed fetch"
        assert body != data
    assert "flagged" not in ts.read_log()[-20000:]


def test_trusted_internal_location_bounded(ts, fx):
    # taken on trust, passed through as it is, but never more than the
    # field holds (small_blob: 10 bytes)
    af = new(ts, token=ADMIN)
    for field, n, whole in (("blob", 300, True), ("small_blob", 3000, False)):
        r = put_loc(ts, "%s/%s/%s" % (SA, af["id"], field),
                    {"url": fx.url + "/data/%d" % n,
                     "location_type": "internal"}, token=ADMIN)
        assert r.status_code == 200, r.text
        status, body = try_get(ts, "%s/%s/%s" % (SA, af["id"], field),
                               token=ADMIN)
        assert (body == data_of(n)) == whole, (field, status)


def test_bytes_that_differ_flag(ts, fx):
    Fixture.mutable = data_of(5000)
    Fixture.mutable_gone = False
    data = Fixture.mutable
    url = trusted(ts, fx.url + "/mutable", data)
    assert try_get(ts, url) == (200, data)
    Fixture.mutable = bytes(reversed(data))
    status, body = try_get(ts, url)
    assert body != Fixture.mutable          # never the whole wrong body
    r = ts.get(url)
    assert r.status_code == 409 and "changed" in msg(r)


def test_verify_trust_mode_blobs(fx):
    # glared verify reads blobs of unknown size up to the field's limit;
    # a refused fetch is an error, a vanished URL gone, other bytes changed
    s = Server(TRUST)
    try:
        Fixture.mutable = data_of(6000)
        Fixture.mutable_gone = False
        port = fx.server_address[1]
        ok = trusted(s, fx.url + "/mutable", Fixture.mutable)
        refused = trusted(s, "http://127.0.0.2:%d/data/10" % port,
                          data_of(10))
        gone = trusted(s, fx.url + "/404", data_of(10))

        def verify():
            return subprocess.run([GLARED, "verify", "--config-file", s.conf],
                                  capture_output=True, text=True, timeout=120)
        p = verify()
        assert "3 external blob(s), 1 changed" in p.stdout, p.stdout + p.stderr
        assert try_get(s, ok) == (200, Fixture.mutable)
        assert try_get(s, refused)[0] != 409
        assert s.get(gone).status_code == 410
        Fixture.mutable = bytes(reversed(Fixture.mutable))
        p = verify()
        assert p.returncode == 3 and "2 changed" in p.stdout, p.stdout
        r = s.get(ok)
        assert r.status_code == 409 and "changed" in msg(r)
        assert try_get(s, refused)[0] != 409
    finally:
        s.stop()


def test_known_size_failed_fetch_never_flags(ts, fx):
    # fetch mode (hooks_artifact), proxied: the URL goes away for a while
    Fixture.mutable = data_of(4000)
    Fixture.mutable_gone = False
    r = ts.post("/artifacts/hooks_artifact", {"name": "k"})
    af = r.json()
    path = "/artifacts/hooks_artifact/%s/blob" % af["id"]
    r = ts.put(path, data=json.dumps({"url": fx.url + "/mutable"}),
               headers=dict(LOC))
    assert r.status_code == 200 and r.json()["blob"]["size"] == 4000
    Fixture.mutable_gone = True
    try:
        assert try_get(ts, path)[0] != 409
        assert try_get(ts, path)[0] != 409
    finally:
        Fixture.mutable_gone = False
    assert try_get(ts, path) == (200, data_of(4000))


# ---- item 8: checksums and URLs wherever they enter -----------------------------

BAD_SUMS = [
    {"md5": "zz"},
    {"md5": "0" * 31},
    {"md5": "g" * 32},
    {"sha1": "0" * 41},
    {"sha256": "z" * 64},
    {"sha256": 5},
]
BAD_URLS = [
    "http://127.0.0.1/a\r\nX-Injected: 1",
    "http://127.0.0.1/a b",
    "http://127.0.0.1/a\tb",
    "http://127.0.0.1/\u00e9",
    "http://127.0.0.1/\x7f",
    "http://127.0.0.1/" + "a" * 2040,
    "http:///nohost",
]


def put_loc(s, path, body, token=USER1):
    return s.put(path, data=json.dumps(body), headers=dict(LOC), token=token)


@pytest.mark.parametrize("mode", ["fetch", "trust", "internal"])
@pytest.mark.parametrize("bad", BAD_SUMS + [{"url": u} for u in BAD_URLS],
                         ids=lambda b: repr(b)[:30])
def test_bad_checksums_and_urls_refused(ts, server, fx, mode, bad):
    # ts: sample_artifact in trust mode; server: fetch mode
    s = ts if mode == "trust" else server
    token = ADMIN if mode == "internal" else USER1
    af = new(s, token=token)
    body = {"url": fx.url + "/data/10"}
    if mode != "trust" and "url" not in bad:
        body.update(sums(data_of(10)))
    if mode == "trust" and "md5" not in bad:
        body["md5"] = sums(data_of(10))["md5"]
    if mode == "internal":
        body["location_type"] = "internal"
    body.update(bad)
    path = "%s/%s/blob" % (SA, af["id"])
    r = put_loc(s, path, body, token=token)
    assert r.status_code == 400, r.text
    assert s.get("%s/%s" % (SA, af["id"]), token=token).json()["blob"] is None


@pytest.mark.parametrize("field,value", [
    ("link1", "http://example.com/a\r\nX-Injected: 1"),
    ("link1", "https://example.com/a b"),
    ("link1", "http://" + "a" * 2050),
    ("list_of_links", ["http://example.com/ok", "http://example.com/\t"]),
    ("dict_of_links", {"k": "http://example.com/\u00e9"}),
], ids=lambda v: repr(v)[:24])
def test_bad_link_urls_refused(server, uniq, field, value):
    token = "u:%s:member" % uniq("p")
    r = server.post(SA, {"name": "l", field: value}, token=token)
    assert r.status_code == 400, r.text
    assert count(server, token) == 0
    af = new(server, token=token)
    r = server.patch("%s/%s" % (SA, af["id"]),
                     [{"op": "add", "path": "/" + field, "value": value}],
                     token=token)
    assert r.status_code == 400, r.text
    ok = server.post(SA, {"name": "l2", "link1": "http://example.com/x?a=b"},
                     token=token)
    assert ok.status_code == 201, ok.text

