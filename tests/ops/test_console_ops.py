"""Console conveniences: help, exit and quit, locals that persist between
lines, Tab completion (tmux), and --attach sharing the worker with HTTP
traffic while a long command runs."""
import os
import subprocess
import threading
import time
import uuid

import pytest
import requests

from http_harness import GLARED, Tmux


def console(s, *args, input=None, timeout=60):
    return subprocess.run([GLARED, "console", "--config-file", s.conf] +
                          list(args), input=input, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def attached(make_server):
    d = "/tmp/gl-%s" % uuid.uuid4().hex[:8]
    os.mkdir(d)
    s = make_server({"admin_socket": d + "/g.sock"})
    s.sock = d + "/g.sock"
    deadline = time.time() + 10
    while not os.path.exists(s.sock) and time.time() < deadline:
        time.sleep(0.05)
    yield s


LINES = ("local x = 41\nx + 1\nlocal function twice(v) return 2 * v end\n"
         "twice(x)\nx = 1\ntwice(x)\nlocal a, b = 'p', 'q'\na .. b\n"
         "do local hidden = 1 end\nhidden\n")
WANT = "42\n82\n2\npq\nnil\n"


@pytest.mark.parametrize("mode", ["direct", "attach"])
def test_locals_persist_between_lines(make_server, attached, mode):
    s = attached
    args = ["--attach"] if mode == "attach" else []
    r = console(s, *args, input=LINES)
    assert r.returncode == 0, r.stderr
    assert r.stdout == WANT
    # and between -e chunks of one run
    r = console(s, *args, "-e", "local y = 5", "-e", "y * 2")
    assert r.stdout == "10\n", r.stderr
    # a local is not a global: another session does not see it
    r = console(s, *args, "-e", "y == nil")
    assert r.stdout == "true\n"


@pytest.mark.parametrize("mode", ["direct", "attach"])
def test_help_exit_quit(attached, mode):
    s = attached
    args = ["--attach"] if mode == "attach" else []
    r = console(s, *args, input="help\n1 + 1\nexit\nprint('after')\n")
    assert r.returncode == 0, r.stderr
    assert "glare.create(type, {field = value})" in r.stdout
    assert "glare.upload(" in r.stdout
    assert r.stdout.rstrip().endswith("2") and "after" not in r.stdout
    r = console(s, *args, input="quit\nprint('after')\n")
    assert r.returncode == 0 and r.stdout == ""
    # as a name inside code, `help` is still Lua
    r = console(s, *args, input="local help = 3\nhelp + 1\n")
    assert r.stdout == "4\n"


def test_attach_long_command_does_not_stall_http(attached):
    s = attached
    p = subprocess.Popen(
        [GLARED, "console", "--config-file", s.conf, "--attach",
         "--timeout", "60", "-e",
         "local t = os.time() local n = 0 "
         "while os.time() - t < 3 do n = n + 1 end return n > 0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert p.poll() is None
    worst = 0.0
    for _ in range(20):
        t0 = time.time()
        r = requests.get(s.url + "/healthcheck", timeout=5)
        worst = max(worst, time.time() - t0)
        assert r.status_code == 200
        time.sleep(0.05)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0 and out == "true\n", err
    # the command ran while requests were answered in well under a second
    assert worst < 1.0, worst
    # a cancel between slices still stops it
    p = subprocess.Popen([GLARED, "console", "--config-file", s.conf,
                          "--attach", "--timeout", "60", "-e",
                          "while true do end"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    assert requests.get(s.url + "/healthcheck", timeout=2).status_code == 200
    p.send_signal(2)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 1 and "interrupted!" in err


@pytest.mark.parametrize("mode", ["direct", "attach"])
def test_tab_completion(attached, tmp_path, mode):
    s = attached
    os.chdir(tmp_path)
    (tmp_path / "glare_file_not_to_complete").write_text("")
    cmd = "%s console --config-file %s%s" % (
        GLARED, s.conf, " --attach" if mode == "attach" else "")
    t = Tmux(cmd, {"TERM": "xterm", "GLARED_HISTORY": tmp_path / "hist"})
    try:
        t.wait(lambda sc: "glared> " in sc and "Tab completes" in sc)
        # a unique member completes in place
        t.send("glare.crea")
        t.key("Tab")
        t.wait(lambda sc: "glare.create(" in sc)
        t.key("C-u")
        # a global
        t.send("tostr")
        t.key("Tab")
        t.wait(lambda sc: "tostring(" in sc)
        t.key("C-u")
        # several candidates: a second Tab lists them
        t.send("glare.de")
        t.key("Tab")
        t.key("Tab")
        sc = t.wait(lambda sc: "glare.delete_blob(" in sc and
                    "glare.decode(" in sc)
        assert "glare_file_not_to_complete" not in sc
        t.key("C-u")
        # session locals complete too (direct mode knows them here)
        if mode == "direct":
            t.send("local my_long_local = 7")
            t.key("Enter")
            t.send("my_long_lo")
            t.key("Tab")
            t.wait(lambda sc: "my_long_local" in sc.splitlines()[-1] or
                   any(l.rstrip().endswith("my_long_local")
                       for l in sc.splitlines()))
            t.key("Enter")
            t.wait(lambda sc: "\n7\n" in sc)
        t.send("exit")
        t.key("Enter")
        deadline = time.time() + 10
        while time.time() < deadline and \
                t.tmux("has-session", "-t", "t").returncode == 0:
            time.sleep(0.1)
        assert t.tmux("has-session", "-t", "t").returncode != 0
    finally:
        t.close()
