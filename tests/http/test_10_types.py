"""The Lua type runtime seen from outside: schemas (docs/glare-contract.md
"Schemas", draft-04),
check-types, hot reload (SIGHUP), custom type modules, hooks."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import jsonschema
import pytest
import requests

from conftest import ADMIN, GLARED, ROOT, USER1, Server


def test_schemas_all_types(server):
    r = server.get("/schemas")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/schema+json")
    schemas = r.json()["schemas"]
    assert {"images", "heat_templates", "heat_environments",
            "tosca_templates", "murano_packages", "secrets",
            "sample_artifact", "all"} <= set(schemas)
    for name, sch in schemas.items():
        jsonschema.Draft4Validator.check_schema(sch)
        assert sch["name"] == name
        assert sch["type"] == "object"
        assert sch["required"] == ["name"]
        assert sch["title"] == "Artifact type %s of version %s" % (
            name, sch["version"])
        for f, p in sch["properties"].items():
            assert "glareType" in p and "filter_ops" in p, (name, f)


def test_schema_one_and_unknown(server):
    r = server.get("/schemas/images")
    assert list(r.json()["schemas"]) == ["images"]
    assert server.get("/schemas/nothing").status_code == 404


def test_sample_artifact_schema_details(server):
    s = server.get("/schemas/sample_artifact").json()["schemas"][
        "sample_artifact"]
    p = s["properties"]
    assert s["display_name"] == "Sample Artifact" and s["version"] == "1.0"
    assert p["int_validators"]["minimum"] == 10
    assert p["int_validators"]["maximum"] == 20
    assert p["string_validators"]["enum"] == ["aa", "bb", "ccccccccccc", None] \
        or set(p["string_validators"]["enum"]) >= {"aa", "bb", "ccccccccccc"}
    assert p["string_validators"]["maxLength"] == 10
    assert p["system_attribute"]["readOnly"] is True
    assert p["int1"]["sortable"] is True
    assert p["int1"]["required_on_activate"] is False
    assert "required_on_activate" not in p["string_required"]
    assert p["string_mutable"]["mutable"] is True
    assert p["bool1"]["filter_ops"] == ["eq"] and p["bool1"]["default"] is False
    assert p["metadata_attribute"]["metadata"] == {"metadata1": "value1",
                                                   "metadata2": "blahblahblah"}
    assert p["list_validators"]["maxItems"] == 3
    assert p["list_validators"]["uniqueItems"] is True
    blob = p["blob"]
    assert blob["glareType"] == "Blob"
    assert set(blob["properties"]) == {"size", "md5", "sha1", "sha256",
                                       "external", "status", "content_type",
                                       "verification"}
    assert blob["additionalProperties"] is False
    assert p["dict_of_blobs"]["glareType"] == "BlobDict"
    assert p["status"]["enum"] == ["drafted", "active", "deactivated",
                                   "deleted"]
    assert p["created_at"]["format"] == "date-time"
    assert p["description"]["filter_ops"] == []


def test_artifacts_validate_against_their_schema(server, uniq):
    sch = server.get("/schemas/sample_artifact").json()["schemas"][
        "sample_artifact"]
    af = server.post("/artifacts/sample_artifact",
                     {"name": uniq(), "int1": 3, "list_of_str": ["a"],
                      "dict_of_int": {"a": 1},
                      # an enum without null, as Glare publishes it
                      "string_validators": "aa"}).json()
    af.pop("__some_meta_information__")
    # Glare publishes the version pattern slash-delimited (JS style), which
    # as an ECMA regex matches nothing: validate everything else
    sch["properties"]["version"].pop("pattern")
    jsonschema.Draft4Validator(sch).validate(af)


def types_copy(tmp_path):
    d = tmp_path / "types"
    shutil.copytree(os.path.join(ROOT, "types"), d)
    return d


def test_check_types_ok_and_broken(tmp_path):
    d = types_copy(tmp_path)
    conf = tmp_path / "g.conf"
    conf.write_text("[DEFAULT]\nenabled_artifact_types = images,secrets\n")
    p = subprocess.run([GLARED, "check-types", "--config-file", str(conf),
                        "--types-path", str(d), "--schemas"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout[:p.stdout.rindex("}") + 1])
    assert set(out) == {"images", "secrets", "all"}
    (d / "secrets.lua").write_text(
        "return glare.type { name = 'secrets', fields = {"
        " { bits = glare.Integer { sortable = true, max_length = 3 } } } }\n")
    p = subprocess.run([GLARED, "check-types", "--config-file", str(conf),
                        "--types-path", str(d)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0
    assert re.search(r"types/secrets\.lua: field 'bits': .*max_length",
                     p.stderr), p.stderr


def test_types_path_search_list(tmp_path):
    """types_path a:b: each type's file comes from the first directory that
    has it; a file in neither is reported in the first directory."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for d in (first, second):
        (d / "secrets.lua").write_text(
            "return glare.type { name = 'secrets', fields = {"
            " { from_%s = glare.String {} } } }\n" % d.name)
    shutil.copy(os.path.join(ROOT, "types", "images.lua"), str(second))
    conf = tmp_path / "g.conf"
    conf.write_text("[DEFAULT]\nenabled_artifact_types = images,secrets\n"
                    "types_path = first:second\n")
    p = subprocess.run([GLARED, "check-types", "--config-file", str(conf),
                        "--schemas"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout[:p.stdout.rindex("}") + 1])
    assert set(out) == {"images", "secrets", "all"}
    assert "from_first" in out["secrets"]["properties"]
    assert "from_second" not in out["secrets"]["properties"]
    assert "disk_format" in out["images"]["properties"]
    conf.write_text("[DEFAULT]\nenabled_artifact_types = images,nothere\n"
                    "types_path = first:second\n")
    p = subprocess.run([GLARED, "check-types", "--config-file", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert p.stderr == ("glared check-types: artifact type nothere: "
                        "%s/nothere.lua: No such file or directory\n"
                        % first), p.stderr


def test_broken_type_stops_startup(tmp_path):
    d = types_copy(tmp_path)
    (d / "images.lua").write_text("return glare.type { name = 'images', "
                                  "fields = { { x = glare.Nope {} } } }\n")
    s = Server({"types_path": str(d), "enabled_artifact_types": "images"},
               wait=False)
    assert s.proc.wait(20) != 0
    assert "types/images.lua" in s.read_log()


def test_sighup_reload(tmp_path):
    d = types_copy(tmp_path)
    s = Server({"types_path": str(d),
                "enabled_artifact_types": "images,heat_environments"})
    try:
        props = lambda: s.get("/schemas/images").json()["schemas"][
            "images"]["properties"]
        assert "flavor_hint" not in props()
        src = (d / "images.lua").read_text()
        (d / "images.lua").write_text(src.replace(
            "fields = {", "fields = {\n    { flavor_hint = glare.String {} },",
            1))
        s.signal_all(signal.SIGHUP)   # every node reloads its own set
        for _ in range(50):
            if "flavor_hint" in props():
                break
            time.sleep(0.1)
        assert "flavor_hint" in props() and "flavor_hint" in props()
        assert "reload: type files reloaded" in s.read_log()
        # a broken file leaves the current set serving
        (d / "images.lua").write_text("return 42\n")
        s.signal_all(signal.SIGHUP)
        for _ in range(100):    # each node loads a whole set, then refuses
            if s.read_log().count("old set keeps serving") >= len(s.nodes):
                break
            time.sleep(0.1)
        assert "flavor_hint" in props()
        assert "old set keeps serving" in s.read_log()
        r = s.post("/artifacts/images", {"name": "after", "flavor_hint": "m1"})
        assert r.status_code == 201
    finally:
        s.stop()


def test_custom_type_module_dotted_name(make_server):
    s = make_server({"enabled_artifact_types": "images",
                     "custom_artifact_types_modules":
                         "glare.tests.sample_artifact"})
    assert s.get("/schemas/sample_artifact").status_code == 200
    assert s.get("/schemas/heat_templates").status_code == 404


def test_unknown_enabled_type_stops_startup():
    s = Server({"enabled_artifact_types": "images,no_such_type"}, wait=False)
    assert s.proc.wait(20) != 0
    assert "no_such_type" in s.read_log()


def test_hooks_run_in_order(make_server, tmp_path):
    s = make_server({"artifact_type:hooks_artifact.temp_file_path": "tagX"})
    HA = "/artifacts/hooks_artifact"
    af = s.post(HA, {"name": "h"}).json()
    r = s.patch("%s/%s" % (HA, af["id"]),
                [{"op": "replace", "path": "/description", "value": "d"},
                 {"op": "replace", "path": "/status", "value": "active"}],
                token=USER1)
    assert r.status_code == 200, r.text
    s.patch("%s/%s" % (HA, af["id"]),
            [{"op": "replace", "path": "/status", "value": "deactivated"}],
            token=ADMIN)
    s.patch("%s/%s" % (HA, af["id"]),
            [{"op": "replace", "path": "/status", "value": "active"},
             {"op": "replace", "path": "/visibility", "value": "public"}],
            token=ADMIN)
    s.put("%s/%s/blob" % (HA, af["id"]), data=b"data", token=ADMIN,
          headers={"Content-Type": "application/octet-stream"})
    s.get("%s/%s/blob" % (HA, af["id"]), token=ADMIN)
    s.delete("%s/%s" % (HA, af["id"]), token=ADMIN)
    time.sleep(0.3)
    calls = re.findall(r"hook (\w+) tagX", s.read_log())
    assert calls == [
        "pre_create", "post_create",
        "pre_update", "pre_activate", "post_update", "post_activate",
        "pre_update", "pre_deactivate", "post_deactivate",
        "pre_update", "pre_reactivate", "pre_publish", "post_reactivate",
        "post_publish",
        "pre_upload", "post_upload", "pre_download", "post_download",
        "pre_delete", "post_delete"], calls


def test_hook_memory_and_budget_configurable(make_server):
    # the defaults serve the stock types; tiny limits still load them
    s = make_server({"lua_memory_limit": 8388608,
                     "lua_instruction_limit": 100000})
    assert s.post("/artifacts/sample_artifact", {"name": "m"}).status_code \
        == 201


# ---- errors of type code and of the type runtime (issues 12.9, 15.9) ------

OOPS = """
return glare.type {
  name = "oops_artifact", display_name = "Oops", version = "1.0",
  fields = { { note = glare.String {} } },
  hooks = {
    pre_create = function(ctx, af)
      if af.name == "bug" then
        local missing = nil
        return missing.field
      end
      if af.name == "refuse" then glare.fail(422, "refused by the type") end
    end,
  },
}
"""


@pytest.fixture(scope="module")
def oops(tmp_path_factory):
    d = tmp_path_factory.mktemp("types")
    shutil.copy(os.path.join(ROOT, "tests", "types", "sample_artifact.lua"),
                str(d))
    (d / "oops_artifact.lua").write_text(OOPS)
    # max_json_depth above the type runtime's own 64 levels, so that
    # deep values reach (and test) its guard rather than the C limit
    # checked first (test_12_data_hardening tests that one)
    s = Server({"types_path": str(d),
                "enabled_artifact_types": "sample_artifact,oops_artifact",
                "max_json_depth": 128})
    yield s
    s.stop()


def test_hook_runtime_error_is_a_500_without_paths(oops):
    r = oops.post("/artifacts/oops_artifact", {"name": "bug"})
    rid = r.headers["x-openstack-request-id"]
    assert r.status_code == 500
    assert r.json()["error"]["message"] == (
        "Hook pre_create of artifact type oops_artifact failed (internal "
        "error; see the server log for request %s)" % rid)
    assert ".lua" not in r.text
    # the log has the error with its file:line and the request id
    want = ("request %s: Hook pre_create of artifact type oops_artifact "
            "failed: types/oops_artifact.lua:9: attempt to index a nil value "
            "(local 'missing')|stack traceback:" % rid)
    assert want in oops.read_log()
    # nothing was created
    assert oops.get("/artifacts/oops_artifact?name=bug").json()[
        "artifacts"] == []


def test_hook_refusal_stays_a_4xx_with_its_message(oops):
    r = oops.post("/artifacts/oops_artifact", {"name": "refuse"})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "refused by the type"
    assert oops.post("/artifacts/oops_artifact",
                     {"name": "fine"}).status_code == 201


def nested(depth, leaf):
    v = leaf
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize("field,value", [
    ("list_of_str", nested(100, "x")),
    ("dict_of_str", {"a": nested(100, "x")}),
    ("string_mutable", nested(70, 1)),
])
def test_input_nested_too_deep_is_a_400(oops, field, value):
    r = oops.post("/artifacts/sample_artifact", {"name": "deep", field: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == (
        "Type: sample_artifact. Field: %s. Exception: value nested deeper "
        "than 64 levels" % field)
    af = oops.post("/artifacts/sample_artifact",
                   {"name": "deep-" + field}).json()
    r = oops.patch("/artifacts/sample_artifact/%s" % af["id"],
                   [{"op": "add", "path": "/%s" % field, "value": value}])
    assert r.status_code == 400, r.text
    assert ".lua" not in r.text


def test_versions_long_or_with_many_parts(oops):
    r = oops.post("/artifacts/sample_artifact",
                  {"name": "v300", "version": "1" * 300})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Type: sample_artifact. Field: version. Exception: '%s...' is not a "
        "valid version: version is longer than 255 characters" % ("1" * 57))
    r = oops.post("/artifacts/sample_artifact",
                  {"name": "vbig", "version": "1." * 5000})
    assert r.status_code == 400
    assert "version is longer than 255 characters" in \
        r.json()["error"]["message"]
    # 120 prerelease identifiers are a valid version of 245 characters
    v = "1.0.0-" + ".".join(["a"] * 120)
    r = oops.post("/artifacts/sample_artifact", {"name": "v120", "version": v})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == v
    v = "1.0.0-" + ".".join(["1"] * 120)
    r = oops.post("/artifacts/sample_artifact", {"name": "v120n", "version": v})
    assert r.status_code == 201, r.text
    r = oops.get("/artifacts/sample_artifact?version=gt:1.0.0-1")
    assert r.status_code == 200 and r.json()["artifacts"]


@pytest.mark.parametrize("field,value,message", [
    ("int1", "1" + " " * 70000 + "2", "'1                                  "
     "                      ...' is not an integer"),
    ("float1", "1" * 100000 + "x", "'%s...' is not a number" % ("1" * 57)),
    ("int1", " " * 100000 + "7" + " " * 100000, None),
])
def test_big_inputs_are_judged_not_choked_on(oops, field, value, message):
    r = oops.post("/artifacts/sample_artifact",
                  {"name": "big-%d" % len(value), field: value})
    if message is None:
        assert r.status_code == 201, r.text
        assert r.json()[field] == 7
        return
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == (
        "Type: sample_artifact. Field: %s. Exception: %s" % (field, message))
