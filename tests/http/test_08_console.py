"""The operator console (issue 8, docs/console.md): -e and script mode,
piped input, the glare.* API on the engine (direct, beside a running
server), the admin socket (--attach), and an interactive session in tmux
(continuation lines, printing, history, Ctrl-C)."""
import http.server
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ADMIN, CLUSTER, GLARED, Tmux

SA = "sample_artifact"


def console(s, *args, input=None, timeout=60, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(
        [GLARED, "console", "--config-file", s.conf] + list(args),
        input=input, capture_output=True, text=True, timeout=timeout, env=e)


def ok(r):
    assert r.returncode == 0, "rc=%s\nstdout:\n%s\nstderr:\n%s" % (
        r.returncode, r.stdout, r.stderr)
    return r.stdout


def lua_str(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


@pytest.fixture
def attached(make_server):
    """A server with an admin socket."""
    d = "/tmp/gl-%s" % uuid.uuid4().hex[:8]
    os.mkdir(d)
    s = make_server({"admin_socket": d + "/glared.sock",
                     "external_location_allowed_networks": "127.0.0.1/32"})
    s.sock = d + "/glared.sock"
    deadline = time.time() + 10
    while not os.path.exists(s.sock) and time.time() < deadline:
        time.sleep(0.05)
    yield s
    s.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def www(tmp_path):
    """A loopback HTTP server for external locations: files in tmp_path,
    and /slow which never finishes its body."""
    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def do_GET(self):
            if self.path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(20)
                return
            super().do_GET()

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.dir = tmp_path
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    yield srv
    srv.shutdown()


# ---- -e, scripts, piped input ------------------------------------------------

def test_eval_prints_values(server):
    out = ok(console(server, "-e", "1+1", "-e", "x = 20", "-e", "x + 1",
                     "-e", "'raw', 1.5, nil, glare.null",
                     "-e", "print('p') return {b = {1, 2}, a = 'x'}"))
    assert out == ('2\n21\nraw\t1.5\tnil\tnull\np\n'
                   '{\n  "a": "x",\n  "b": [\n    1,\n    2\n  ]\n}\n')


def test_eval_non_json_tables_render_as_lua(server):
    out = ok(console(server, "-e", "local t = {1, f = print} t.self = t "
                                   "return t"))
    assert out.startswith("{\n  1,\n  f = function: ")
    assert "self = <cycle>" in out


def test_eval_error_exit_status(server):
    r = console(server, "-e", "local function f() error('boom') end f()")
    assert r.returncode == 1
    assert "boom" in r.stderr and "stack traceback:" in r.stderr
    assert "in local 'f'" in r.stderr or "in function 'f'" in r.stderr
    assert "[C]: in ?" not in r.stderr.rstrip().splitlines()[-1]
    # a later -e does not run after a failing one
    r = console(server, "-e", "error('x')", "-e", "print('not reached')")
    assert r.returncode == 1 and "not reached" not in r.stdout
    r = console(server, "-e", "syntax error here")
    assert r.returncode == 1 and "syntax error" in r.stderr or \
        "expected" in r.stderr


def test_glare_errors_carry_status(server):
    r = console(server, "-e", "glare.get('sample_artifact', 'nope')")
    assert r.returncode == 1
    assert "404 Not Found: Artifact with id=nope not found" in r.stderr
    assert "in function 'glare.get'" in r.stderr
    out = ok(console(server, "-e",
                     "glare.try(glare.get, 'sample_artifact', 'nope')"))
    assert out == "nil\t404 Not Found: Artifact with id=nope not found\t404\n"
    out = ok(console(server, "-e",
                     "glare.try(function() return glare.create('nope', {}) "
                     "end)"))
    assert out.startswith("nil\t404 Not Found: ") and out.endswith("\t404\n")
    out = ok(console(server, "-e", "glare.try(function(a) return a, 2 end, 1)"))
    assert out == "1\t2\n"


def test_script_args_and_exit_status(server, tmp_path):
    script = tmp_path / "s.lua"
    script.write_text("#!/usr/bin/env glared console\n"
                      "print(arg[0], arg[1], arg[2], #arg, select('#', ...))\n"
                      "local a, b = ...\n"
                      "print(a .. b)\n"
                      "if a == 'fail' then error('failed: ' .. b) end\n"
                      "if a == 'exit' then os.exit(tonumber(b)) end\n")
    out = ok(console(server, str(script), "x", "y"))
    assert out == "%s\tx\ty\t2\t2\nxy\n" % script
    r = console(server, str(script), "fail", "z")
    assert r.returncode == 1 and "s.lua:5: failed: z" in r.stderr
    assert console(server, str(script), "exit", "3").returncode == 3
    # the script from stdin
    out = ok(console(server, "-", "a", "b", input="print(...)\n"))
    assert out == "a\tb\n"
    r = console(server, str(tmp_path / "missing.lua"))
    assert r.returncode == 1 and "cannot open" in r.stderr


def test_piped_lines_act_as_the_repl(server):
    r = console(server, input="1+1\nfunction f(x)\n  return x * 3\nend\n"
                              "f(5)\nprint('hi')\n")
    assert ok(r) == "2\n15\nhi\n"
    r = console(server, input="1+1\nerror('bad')\n2+2\n")
    assert r.stdout == "2\n4\n"          # goes on after an error ...
    assert r.returncode == 1             # ... but the run fails
    assert "bad" in r.stderr
    r = console(server, input="for i = 1, 2 do\n")
    assert r.returncode == 1 and "incomplete" in r.stderr


def test_usage_errors(server):
    r = console(server, "--bogus")
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr
    r = console(server, "--attach")       # no admin_socket configured
    assert r.returncode == 2 and "admin_socket" in r.stderr
    r = console(server, "--help")
    assert r.returncode == 0 and "--attach" in r.stdout


# ---- the glare.* API ---------------------------------------------------------

def test_artifact_life_cycle_matches_http(server, uniq):
    name = uniq("con")
    code = """
local a = glare.create('sample_artifact', {name = %s, int1 = 3,
                       string_required = 'x'})
assert(math.type(a.int1) == 'integer')
a = glare.update('sample_artifact', a.id, {str1 = 'hello', int2 = 7,
                 description = glare.null})
assert(a.str1 == 'hello' and a.description == glare.null)
a = glare.update('sample_artifact', a.id,
                 {{op = 'add', path = '/tags/-', value = 'blue'}})
a = glare.update('sample_artifact', a.id, {list_of_str = glare.array()})
assert(glare.json(a.list_of_str) == '[]')
print(a.id)
""" % lua_str(name)
    aid = ok(console(server, "-e", code)).strip()
    r = server.get("/artifacts/sample_artifact/%s" % aid, token=ADMIN)
    assert r.status_code == 200
    got = r.json()
    assert (got["name"], got["int1"], got["str1"], got["int2"],
            got["tags"], got["owner"]) == (name, 3, "hello", 7, ["blue"],
                                           "console")
    # list: query string, table, the whole page, every page
    out = ok(console(server, "-e", "#glare.list('sample_artifact', "
                     "'name=%s')" % name,
                     "-e", "glare.list('sample_artifact', {name = %s, "
                     "tags = {'blue'}})[1].id" % lua_str(name),
                     "-e", "glare.page('sample_artifact', 'name=%s')"
                     ".total_count" % name,
                     "-e", "#glare.all('sample_artifact', {name = %s, "
                     "limit = 1})" % lua_str(name)))
    assert out == "1\n%s\n1\n1\n" % aid
    # the engine's rules apply: system fields, unknown types
    r = console(server, "-e", "glare.update('sample_artifact', '%s', "
                "{id = 'x'})" % aid)
    assert r.returncode == 1 and "403 Forbidden" in r.stderr
    out = ok(console(server, "-e", "glare.activate('sample_artifact', "
                     "'%s').status" % aid,
                     "-e", "glare.publish('sample_artifact', '%s')"
                     ".visibility" % aid,
                     "-e", "glare.deactivate('sample_artifact', '%s')"
                     ".status" % aid,
                     "-e", "glare.reactivate('sample_artifact', '%s')"
                     ".status" % aid))
    assert out == "active\npublic\ndeactivated\nactive\n"
    assert server.get("/artifacts/sample_artifact/%s" % aid).json()[
        "visibility"] == "public"
    r = console(server, "-e", "glare.delete('sample_artifact', '%s')" % aid)
    assert ok(r) == "true\n"
    assert server.get("/artifacts/sample_artifact/%s" % aid,
                      token=ADMIN).status_code == 404


def test_types_schema_json_helpers(server):
    out = ok(console(server, "-e", "glare.json(glare.types())"))
    types = json.loads(out)
    assert "sample_artifact" in types and types == sorted(types)
    out = ok(console(server, "-e", "glare.schema('images').name",
                     "-e", "glare.schema().sample_artifact ~= nil",
                     "-e", "glare.json(glare.decode('{\"a\":[1,2.5,null]}'))",
                     "-e", "glare.reload()"))
    assert out == 'images\ntrue\n{"a": [1, 2.5, null]}\ntrue\n'
    got = json.loads(ok(console(server, "-e",
                                "glare.json(glare.schema('images'))")))
    assert got == server.get("/schemas/images").json()["schemas"]["images"]


def test_blobs_upload_download_read(server, tmp_path, uniq):
    src = tmp_path / "in.bin"
    data = os.urandom(3 * (1 << 20) + 17)     # several 1 MiB pieces
    src.write_bytes(data)
    (tmp_path / "small.txt").write_text("hello")
    code = """
local a = glare.create('sample_artifact', {name = %s})
a = glare.upload('sample_artifact', a.id, 'blob', %s, 'application/x-test')
assert(a.blob.size == %d and a.blob.status == 'active')
local d = glare.download('sample_artifact', a.id, 'blob', %s)
assert(d.size == a.blob.size and d.sha256 == a.blob.sha256)
a = glare.upload('sample_artifact', a.id, 'dict_of_blobs/k/1', %s)
assert(a.dict_of_blobs['k/1'].content_type == 'application/octet-stream')
assert(glare.read('sample_artifact', a.id, 'dict_of_blobs/k/1') == 'hello')
local ok, err, st = glare.try(glare.upload, 'sample_artifact', a.id,
                              'small_blob', %s)
print(a.id, st)
""" % (lua_str(uniq("blob")), lua_str(str(src)), len(data),
       lua_str(str(tmp_path / "out.bin")), lua_str(str(tmp_path / "small.txt")),
       lua_str(str(src)))
    aid, st = ok(console(server, "-e", code)).split()
    assert st == "413"
    assert (tmp_path / "out.bin").read_bytes() == data
    r = server.get("/artifacts/sample_artifact/%s/blob" % aid, token=ADMIN)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Type"] == "application/x-test"
    r = server.get("/artifacts/sample_artifact/%s/dict_of_blobs/k/1" % aid,
                   token=ADMIN)
    assert r.content == b"hello"
    r = console(server, "-e", "glare.upload('sample_artifact', '%s', 'blob', "
                "'/nonexistent')" % aid)
    assert r.returncode == 1 and "cannot open /nonexistent" in r.stderr


def test_quotas(make_server):
    s = make_server({"max_uploaded_data": 1000})
    out = ok(console(s, "-e", "glare.set_quotas('project1', "
                     "{max_artifact_number = 1, "
                     "['max_uploaded_data:images'] = 500})",
                     "-e", "glare.json(glare.quotas('project1'))",
                     "-e", "glare.json(glare.quotas().quotas)"))
    lines = out.splitlines()
    assert lines[0] == "true"
    assert json.loads(lines[1]) == {"max_artifact_number": 1,
                                    "max_uploaded_data": 1000,
                                    "max_uploaded_data:images": 500}
    assert json.loads(lines[2]) == [{"project_id": "project1",
                                     "project_quotas": [
        {"quota_name": "max_artifact_number", "quota_value": 1},
        {"quota_name": "max_uploaded_data:images", "quota_value": 500}]}]
    # the server enforces what the console set
    assert s.post("/artifacts/sample_artifact", {"name": "q1"}).status_code \
        == 201
    assert s.post("/artifacts/sample_artifact", {"name": "q2"}).status_code \
        == 403
    # the raw PUT /quotas body works too
    ok(console(s, "-e", "glare.set_quotas({{project_id = 'project1', "
                        "project_quotas = glare.array()}})"))
    assert s.post("/artifacts/sample_artifact", {"name": "q3"}).status_code \
        == 201


def test_external_location_direct(make_server, www, uniq):
    s = make_server({"external_location_allowed_networks": "127.0.0.1/32"})
    data = os.urandom(5000)
    (www.dir / "ext.bin").write_bytes(data)
    out_path = www.dir / "got.bin"
    code = """
local a = glare.create('sample_artifact', {name = %s})
a = glare.add_location('sample_artifact', a.id, 'blob', %s)
assert(a.blob.external and a.blob.size == 5000)
local d = glare.download('sample_artifact', a.id, 'blob', %s)
assert(d.external and d.url == %s)
d = glare.download('sample_artifact', a.id, 'blob', %s, {fetch = true})
assert(d.size == 5000)
local _, err, st = glare.try(glare.add_location, 'sample_artifact', a.id,
                             'dict_of_blobs/x', %s)
print(st)
""" % (lua_str(uniq("ext")), lua_str(www.url + "/ext.bin"),
       lua_str(str(out_path)), lua_str(www.url + "/ext.bin"),
       lua_str(str(out_path)), lua_str(www.url + "/missing"))
    assert ok(console(s, "-e", code)) == "400\n"
    assert out_path.read_bytes() == data


# ---- attach -----------------------------------------------------------------

def test_attach_socket_and_basics(attached, uniq):
    s = attached
    st = os.stat(s.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    out = ok(console(s, "--attach", "-e", "glare.mode",
                     "-e", "print('out') return glare.pid ~= nil",
                     "-e", "x = 41", "-e", "x + 1"))
    assert out == "attach\nout\ntrue\n42\n"  # one session per console
    name = uniq("att")
    aid = ok(console(s, "--attach", "-e", "glare.create('sample_artifact', "
                     "{name = %s}).id" % lua_str(name))).strip()
    r = s.get("/artifacts/sample_artifact/%s" % aid, token=ADMIN)
    assert r.status_code == 200 and r.json()["name"] == name
    r = console(s, "--attach", "-e", "glare.get('sample_artifact', 'nope')")
    assert r.returncode == 1 and "404 Not Found" in r.stderr
    r = console(s, "--attach", "-e", "os.exit(1)")
    assert r.returncode == 1 and "not available in attach mode" in r.stderr
    assert s.get("/healthcheck").status_code == 200
    # the state lives as long as the connection: piped lines share it
    r = console(s, "--attach", input="y = 2\ny * 21\n")
    assert ok(r) == "42\n"


def test_attach_script(attached, tmp_path):
    script = tmp_path / "a.lua"
    script.write_text("#!/bin/false\nprint(arg[0], ...)\n"
                      "error('at line 3')\n")
    r = console(attached, "--attach", str(script), "p", "q")
    assert r.stdout == "%s\tp\tq\n" % script
    assert r.returncode == 1 and "a.lua:3: at line 3" in r.stderr


def test_attach_timeout_keeps_server_responsive(attached):
    t0 = time.time()
    r = console(attached, "--attach", "--timeout", "1", "-e",
                "while true do pcall(function() while true do end end) end")
    assert r.returncode == 1 and "timeout" in r.stderr
    assert time.time() - t0 < 10
    assert attached.get("/healthcheck").status_code == 200
    out = ok(console(attached, "--attach", "-e", "1+1"))
    assert out == "2\n"


def test_attach_ctrl_c_cancels(attached):
    p = subprocess.Popen([GLARED, "console", "--config-file", attached.conf,
                          "--attach", "--timeout", "300", "-e",
                          "while true do end"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1)
    assert p.poll() is None
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert time.time() - t0 < 5
    assert p.returncode == 1 and "interrupted!" in err
    assert attached.get("/healthcheck").status_code == 200


def test_attach_location_waits_in_the_loop(attached, www, uniq):
    """add_location yields the session: the server answers HTTP meanwhile,
    and a Ctrl-C cancels the wait."""
    (www.dir / "e.bin").write_bytes(b"z" * 1234)
    out = ok(console(attached, "--attach", "-e", """
local a = glare.create('sample_artifact', {name = %s})
a = glare.try(glare.add_location, 'sample_artifact', a.id, 'blob', %s)
return a.blob.size, a.blob.external""" % (lua_str(uniq("loc")),
                                          lua_str(www.url + "/e.bin"))))
    assert out == "1234\ttrue\n"
    p = subprocess.Popen([GLARED, "console", "--config-file", attached.conf,
                          "--attach", "-e",
                          "local a = glare.create('sample_artifact', "
                          "{name = %s}) glare.add_location('sample_artifact',"
                          " a.id, 'blob', %s)" % (lua_str(uniq("slow")),
                                                  lua_str(www.url + "/slow"))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.5)
    assert attached.get("/healthcheck", timeout=3).status_code == 200
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 1 and "interrupted!" in err
    assert "glare.add_location" in err
    assert attached.get("/healthcheck").status_code == 200


def test_attach_refused_without_server(make_server, tmp_path):
    s = make_server({"admin_socket": str(tmp_path / "none.sock")})
    s.stop()
    r = console(s, "--attach", "-e", "1")
    assert r.returncode == 1 and "cannot connect" in r.stderr


# ---- interactive, through tmux ------------------------------------------------

def unvis(line):
    """libedit's history file encodes characters as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line)


@pytest.mark.parametrize("mode", ["direct", "attach"])
def test_interactive_session(make_server, tmp_path, mode):
    opts = {}
    if mode == "attach":
        opts["admin_socket"] = str(tmp_path / "g.sock")
    s = make_server(opts)
    hist = tmp_path / "history"
    cmd = "%s console --config-file %s%s" % (
        GLARED, s.conf, " --attach --timeout 120" if mode == "attach" else "")
    t = Tmux(cmd, {"GLARED_HISTORY": str(hist), "TERM": "xterm"})
    try:
        t.wait(lambda sc: "glared> " in sc and "Ctrl-D" in sc)
        t.run("1+1", "\n2\n")
        # an incomplete statement continues on the next line
        t.type("function f(x)")
        t.wait(lambda sc: "glared>> " in sc)
        t.type("return x * 2")
        n = t.prompts()
        t.type("end")
        t.wait(lambda sc: sc.count("glared> ") > n)
        t.run("f(21)", "\n42\n")
        sc = t.run("{b = {1, 2}, a = glare.null}", '"b": [')
        assert '{\n  "a": null,\n  "b": [\n    1,\n    2\n  ]\n}' in sc
        sc = t.run("error('boom')", "stack traceback:")
        assert "stdin:1: boom" in sc
        # Ctrl-C interrupts a running command, the console stays
        t.type("while true do end")
        time.sleep(1)
        assert t.screen().rstrip().endswith("while true do end")
        t.key("C-c")
        t.wait(lambda sc: "interrupted!" in sc and
               sc.rstrip().endswith("glared>"))
        t.run("f(2) + 1", "\n5\n")
        # Ctrl-C at the prompt drops the line
        t.tmux("send-keys", "-t", "t", "-l", "half typed")
        t.key("C-c")
        t.run("'still here'", "\nstill here\n")
        # Ctrl-D exits
        t.key("C-d")
        deadline = time.time() + 10
        while time.time() < deadline and t.tmux("has-session", "-t",
                                                "t").returncode == 0:
            time.sleep(0.1)
        assert t.tmux("has-session", "-t", "t").returncode != 0
    finally:
        t.close()
    lines = [unvis(l) for l in hist.read_text().splitlines()]
    for want in ["1+1", "function f(x)", "return x * 2", "end", "f(21)",
                 "while true do end", "'still here'"]:
        assert want in lines, lines
    assert "half typed" not in lines
    assert stat.S_IMODE(os.stat(hist).st_mode) == 0o600


def test_batch_and_project(server, uniq):
    """--project owns what the console creates; glare.batch runs many
    writes in one transaction: a failed write inside undoes itself alone,
    an error out of the function undoes the whole batch. sqlite only: on
    PostgreSQL (the cluster) it is refused and nothing is written."""
    name = uniq("bat")
    if CLUSTER:
        r = console(server, "--project", "bulkproj", "-e",
                    "glare.batch(function() glare.create('sample_artifact',"
                    " {name = %s}) end)" % lua_str(name))
        assert r.returncode == 1
        assert "400" in r.stderr and "sqlite" in r.stderr
        ok(console(server, "--project", "bulkproj", "-e",
                   "glare.create('sample_artifact', {name = %s})"
                   % lua_str(name)))
        got = server.get("/artifacts/sample_artifact?name=%s" % name,
                         token=ADMIN).json()
        assert [a["owner"] for a in got["artifacts"]] == ["bulkproj"]
        return
    code = """
local made = glare.batch(function(n)
  local ids = {}
  for i = 1, n do
    ids[i] = glare.create('sample_artifact', {name = %s, version = '1.' .. i}).id
  end
  -- a refused write inside the batch: undone alone, the batch goes on
  local ok, msg, st = glare.try(glare.create, 'sample_artifact',
                                {name = %s, version = '1.1'})
  assert(ok == nil and st == 409, msg)
  return ids
end, 3)
print(#made)
local ok, msg = glare.try(glare.batch, function()
  glare.create('sample_artifact', {name = %s .. '-gone'})
  error('undo all')
end)
print(ok, msg:match('undo all'))
print(#glare.all('sample_artifact', {name = %s .. '-gone'}))
""" % (lua_str(name), lua_str(name), lua_str(name), lua_str(name))
    out = ok(console(server, "--project", "bulkproj", "-e", code))
    assert out == "3\nnil\tundo all\n0\n"
    r = server.get("/artifacts/sample_artifact?name=%s" % name, token=ADMIN)
    got = r.json()
    assert got["total_count"] == 3
    assert {a["owner"] for a in got["artifacts"]} == {"bulkproj"}
    assert sorted(a["version"] for a in got["artifacts"]) == [
        "1.1.0", "1.2.0", "1.3.0"]
    assert server.get("/artifacts/sample_artifact?name=%s-gone" % name,
                      token=ADMIN).json()["total_count"] == 0
    # nested batches and usage errors are refused, nothing half-done
    r = console(server, "-e", "glare.batch(function() glare.batch("
                "function() end) end)")
    assert r.returncode == 1 and "a batch is open already" in r.stderr
    r = console(server, "--project", "", "-e", "1")
    assert r.returncode == 2 and "--project" in r.stderr
    r = console(server, "--project", "p", "--attach", "-e", "1")
    assert r.returncode == 2 and "direct mode" in r.stderr
