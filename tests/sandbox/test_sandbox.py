"""Lua sandbox escapes, one test per class (style-anchors §2): each attack
runs inside a real hook of a hostile type in a real glared, must be
refused with a clear 400, and the worker must keep serving."""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import requests

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "http"))
from conftest import GLARED, ROOT, USER1, Server  # noqa: E402

EVIL = "/artifacts/evil_artifact"


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    d = tmp_path_factory.mktemp("types")
    for f in os.listdir(os.path.join(ROOT, "types")):
        shutil.copy(os.path.join(ROOT, "types", f), d)
    shutil.copy(os.path.join(HERE, "types", "evil_artifact.lua"), d)
    s = Server({"types_path": str(d),
                "enabled_artifact_types": "sample_artifact,evil_artifact",
                "lua_memory_limit": 33554432,
                "lua_instruction_limit": 2000000})
    yield s
    s.stop()


# attack -> words the refusal must mention
REFUSED = {
    "io": "io", "os_execute": "execute", "os_getenv": "getenv",
    "require": "require", "load": "load", "loadstring": "loadstring",
    "dofile": "dofile", "debug": "debug", "package": "package",
    "collectgarbage": "collectgarbage", "rawset": "rawset",
    "getmetatable_string": "getmetatable", "string_dump": "dump",
    "setmetatable_gc": "__gc", "glare_readonly": "read-only",
    "options_readonly": "read-only", "global_write": "read-only",
    "bytecode": "load", "string_mt_via_method": "rep",
    "memory_table": "memory", "memory_string": "rep",
    "concat_bomb": "memory", "instructions": "instruction budget",
    "instructions_pcall": "instruction budget", "pattern": "pattern",
    "gsub_growth": "gsub", "recursion": "(stack overflow|memory)",
    "coroutine_escape": "coroutine", "unpack_huge": "unpack",
    "format_huge": "invalid conversion", "utf8_bad": "out of range",
    "select_huge": "select",
}


@pytest.mark.parametrize("attack", sorted(REFUSED))
def test_attack_refused_worker_keeps_serving(evil, attack):
    t0 = time.time()
    r = evil.post(EVIL, {"name": attack})
    assert r.status_code == 400, (attack, r.status_code, r.text)
    msg = r.json()["error"]["message"]
    assert "pre_create" in msg, msg
    assert re.search(REFUSED[attack], msg), (attack, msg)
    assert time.time() - t0 < 30
    # the same worker still answers, and a harmless create works
    assert requests.get(evil.url + "/healthcheck").status_code == 200
    assert evil.post(EVIL, {"name": "fine-%s" % attack}).status_code == 201


def test_int_min_argument_is_harmless(evil):
    # string.rep with a negative count is just "": no crash, no error
    r = evil.post(EVIL, {"name": "int_min"})
    assert r.status_code == 201


def test_string_metatable_not_replaced(evil):
    evil.post(EVIL, {"name": "getmetatable_string"})
    # validators still work (they use string methods of the same state)
    r = evil.post("/artifacts/sample_artifact",
                  {"name": "sm", "string_regex": "0123abcd"})
    assert r.status_code == 201


def test_load_time_infinite_loop_fails_fast(tmp_path):
    d = tmp_path / "types"
    d.mkdir()
    (d / "loop_artifact.lua").write_text(
        "while true do end\nreturn glare.type { name = 'loop_artifact', "
        "fields = {} }\n")
    conf = tmp_path / "g.conf"
    conf.write_text("[DEFAULT]\nenabled_artifact_types = loop_artifact\n"
                    "types_path = %s\nlua_instruction_limit = 100000\n" % d)
    t0 = time.time()
    p = subprocess.run([GLARED, "check-types", "--config-file", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "instruction budget" in p.stderr
    assert time.time() - t0 < 30


def test_load_time_bytecode_refused(tmp_path):
    d = tmp_path / "types"
    d.mkdir()
    (d / "bc_artifact.lua").write_bytes(b"\x1bLuaT\x00\x19\x93\r\n\x1a\n")
    conf = tmp_path / "g.conf"
    conf.write_text("[DEFAULT]\nenabled_artifact_types = bc_artifact\n"
                    "types_path = %s\n" % d)
    p = subprocess.run([GLARED, "check-types", "--config-file", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "binary chunk" in p.stderr
