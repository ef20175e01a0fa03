"""make install: the files where a distribution puts them, a man page
that documents every command and option, a hardened systemd unit that
systemd-analyze accepts, and an installed binary that finds its Lua
library and types."""
import os
import re
import shutil
import subprocess

import pytest

from http_harness import GLARED, ROOT

COMMANDS = ["serve", "db upgrade", "scrub", "verify", "check-types",
            "check-config", "console", "backup", "restore"]


def make_install(tmp_path, *args):
    # the same binary the suite tests (make install would rebuild ./glared)
    p = subprocess.run(["make", "-s", "-C", ROOT, "install"] + list(args),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_install_layout(tmp_path):
    dest = tmp_path / "root"
    make_install(tmp_path, "PREFIX=/usr", "DESTDIR=%s" % dest)
    for f in ["usr/sbin/glared", "usr/share/glared/lua/glare/loader.lua",
              "usr/share/glared/types/images.lua",
              "usr/share/man/man8/glared.8",
              "usr/lib/systemd/system/glared.service",
              "usr/lib/sysusers.d/glared.conf", "etc/glared/glared.conf"]:
        assert (dest / f).exists(), f
    assert os.access(dest / "usr/sbin/glared", os.X_OK)
    # exactly the shipped types; the test suites' own (tests/types) stay
    # behind
    shipped = sorted(os.listdir(os.path.join(ROOT, "types")))
    assert sorted(os.listdir(dest / "usr/share/glared/types")) == shipped
    assert "images.lua" in shipped
    assert not set(shipped) & set(os.listdir(os.path.join(ROOT, "tests",
                                                          "types")))
    conf = (dest / "etc/glared/glared.conf").read_text()
    assert "sqlite:////var/lib/glared/glare.db" in conf
    assert "/var/lib/glared/blobs" in conf and "../data" not in conf
    unit = (dest / "usr/lib/systemd/system/glared.service").read_text()
    assert "ExecStart=/usr/sbin/glared serve --config-file " \
           "/etc/glared/glared.conf" in unit
    for hard in ["NoNewPrivileges=yes", "ProtectSystem=strict",
                 "User=glared", "ExecReload=/bin/kill -HUP $MAINPID",
                 "KillMode=mixed", "StateDirectory=glared"]:
        assert hard in unit
    # an operator's edited config survives a second install
    with open(dest / "etc/glared/glared.conf", "a") as f:
        f.write("# mine\n")
    make_install(tmp_path, "PREFIX=/usr", "DESTDIR=%s" % dest)
    assert "# mine" in (dest / "etc/glared/glared.conf").read_text()


def test_installed_binary_runs(tmp_path):
    prefix = tmp_path / "usr"
    make_install(tmp_path, "PREFIX=%s" % prefix)
    conf = tmp_path / "g.conf"
    conf.write_text("[database]\nconnection = sqlite:///state/g.db\n"
                    "[glance_store]\nfilesystem_store_datadir = state/b\n")
    p = subprocess.run([str(prefix / "sbin/glared"), "check-config",
                        "--config-file", str(conf)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # types come from the installed share/glared, not the source tree
    assert "types: " in p.stdout and \
        str(prefix / "share/glared/types") in p.stdout


@pytest.mark.skipif(not shutil.which("systemd-analyze"),
                    reason="systemd-analyze (Debian: systemd) missing")
def test_systemd_analyze_verify(tmp_path):
    prefix = tmp_path / "usr"
    make_install(tmp_path, "PREFIX=%s" % prefix)
    unit = prefix / "lib/systemd/system/glared.service"
    env = dict(os.environ, MANPATH=str(prefix / "share/man"),
               SYSTEMD_LOG_LEVEL="notice")
    p = subprocess.run(["systemd-analyze", "verify", str(unit)],
                       capture_output=True, text=True, timeout=120, env=env)
    mine = [l for l in (p.stdout + p.stderr).splitlines()
            if "glared" in l]
    assert p.returncode == 0 and not mine, p.stdout + p.stderr
    # it does check: a unit with a typo fails
    bad = tmp_path / "glared.service"
    bad.write_text(unit.read_text().replace("ExecStart=", "ExecStrat="))
    p = subprocess.run(["systemd-analyze", "verify", str(bad)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode != 0 or "ExecStrat" in p.stderr


def test_man_page_documents_every_command_and_option():
    page = open(os.path.join(ROOT, "man", "glared.8")).read()
    text = page.replace("\\-", "-")
    for cmd in COMMANDS:
        assert re.search(r'^\.SS "%s[ "]' % re.escape(cmd), text, re.M), cmd
        out = subprocess.run([GLARED] + cmd.split() + ["--help"],
                             capture_output=True, text=True,
                             timeout=10).stdout
        for opt in set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", out)):
            assert opt in text, (cmd, opt)
    for opt in ["log_file", "use_json", "trusted_proxies", "metrics_access",
                "SIGHUP", "/metrics", "detailed=true"]:
        assert opt in text, opt
    if shutil.which("man"):
        p = subprocess.run(["man", "--warnings", "-l", "-Tutf8",
                            os.path.join(ROOT, "man", "glared.8")],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH="80"))
        assert p.returncode == 0 and "GLARED(8)" in p.stdout
        assert p.stderr == "", p.stderr
