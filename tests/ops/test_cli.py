"""The command line: strict options per command, --help that does nothing
else, --version, check-types, check-config, relative paths."""
import os
import shutil
import socket
import sqlite3
import subprocess
import time

import pytest

from http_harness import ADMIN, GLARED, ROOT, free_port, write_conf

COMMANDS = ["serve", "db upgrade", "scrub", "verify", "check-types",
            "check-config", "console", "backup", "restore"]


def run(*args, timeout=60, cwd=None, input=None):
    return subprocess.run([GLARED] + list(args), capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, input=input)


def deleted_artifact(make_server, uniq):
    """A server with delayed delete and one artifact deleted long enough
    ago for the scrubber: what `scrub` would purge."""
    s = make_server({"delayed_delete": True})
    r = s.post("/artifacts/sample_artifact", {"name": uniq("scrubme")})
    assert r.status_code == 201
    aid = r.json()["id"]
    assert s.delete("/artifacts/sample_artifact/" + aid).status_code == 204
    return s, aid


def status_of(s, aid):
    r = s.get("/artifacts/sample_artifact/" + aid, token=ADMIN)
    return r.json()["status"] if r.status_code == 200 else r.status_code


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_scrub_help_purges_nothing(make_server, uniq, flag):
    s, aid = deleted_artifact(make_server, uniq)
    assert status_of(s, aid) == "deleted"
    r = run("scrub", "--config-file", s.conf, flag)
    assert r.returncode == 0 and r.stdout.startswith("usage: glared scrub")
    assert r.stderr == ""
    # options after --help are not acted upon either
    r = run("scrub", flag, "--config-file", s.conf, "--daemon")
    assert r.returncode == 0
    assert status_of(s, aid) == "deleted"
    # the same command without --help does purge: the check above can fail
    r = run("scrub", "--config-file", s.conf)
    assert r.returncode == 0, r.stderr
    assert status_of(s, aid) == 404


def test_bad_options_do_nothing(make_server, uniq):
    s, aid = deleted_artifact(make_server, uniq)
    cases = [
        (["scrub", "--config-file", s.conf, "--bogus"], "unknown option '--bogus'"),
        (["scrub", "--config-file", s.conf, "-x"], "unknown option '-x'"),
        (["scrub", "--config-file", s.conf, "--daemon=yes"], "'--daemon' takes no value"),
        (["scrub", "--config-file"], "'--config-file' needs a value"),
        (["scrub", "--config-file", s.conf, "extra"], "unexpected argument 'extra'"),
        (["verify", "--config-file", s.conf, "--interval"], "'--interval' needs a value"),
        (["verify", "--config-file", s.conf, "--interval", "soon"], "'--interval' takes an integer"),
        (["verify", "--config-file", s.conf, "--min-age", "-5"], "'--min-age' takes an integer"),
        (["serve", "--config-file", s.conf, "--port", "70000"], "'--port' takes an integer"),
        (["console", "--config-file", s.conf, "--timeout", "0"], "'--timeout' takes an integer"),
        (["console", "--config-file", s.conf, "-e"], "'-e' needs a value"),
        (["backup", "--config-file", s.conf], "missing argument"),
        (["db", "downgrade"], "unknown subcommand 'downgrade'"),
        (["nonsense"], "unknown command 'nonsense'"),
    ]
    for args, msg in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    assert status_of(s, aid) == "deleted"


def test_serve_help_does_not_listen(tmp_path):
    port = free_port()
    conf = tmp_path / "g.conf"
    write_conf(str(conf), {"bind_host": "127.0.0.1", "bind_port": port,
                           "database.connection": "sqlite:///db/g.db"})
    t0 = time.time()
    r = run("serve", "--config-file", str(conf), "--help", timeout=10)
    assert r.returncode == 0 and "--port P" in r.stdout
    assert time.time() - t0 < 5
    with socket.socket() as sock:       # nothing took the port
        sock.bind(("127.0.0.1", port))
    assert not (tmp_path / "db").exists()   # not even the database


def test_every_command_has_help():
    for cmd in COMMANDS:
        r = run(*cmd.split(), "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert r.stdout.startswith("usage: glared %s" % cmd), r.stdout
        assert "--config-file F" in r.stdout and "--help" in r.stdout
        r2 = run("help", *cmd.split())
        assert r2.returncode == 0 and r2.stdout == r.stdout
    r = run("--help")
    assert r.returncode == 0
    for cmd in COMMANDS:
        assert cmd in r.stdout
    r = run()
    assert r.returncode == 2 and "usage:" in r.stderr


def test_version():
    for args in (["--version"], ["version"]):
        r = run(*args)
        assert r.returncode == 0
        assert r.stdout.startswith("glared 0.1.0 (Lua 5.4")
    assert run("version", "x").returncode == 2


def test_check_types_files(tmp_path):
    types = os.path.join(ROOT, "types")
    r = run("check-types", os.path.join(types, "images.lua"),
            os.path.join(types, "secrets.lua"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "2 of 2 type file(s) OK\n" and r.stderr == ""
    r = run("check-types", "--schemas", os.path.join(types, "images.lua"))
    assert r.returncode == 0
    assert '"images"' in r.stdout and '"disk_format"' in r.stdout
    bad = tmp_path / "broken.lua"
    bad.write_text("return glare.type { name = 'broken', fields = 12 }\n")
    r = run("check-types", os.path.join(types, "images.lua"), str(bad))
    assert r.returncode == 1
    assert r.stdout == "1 of 2 type file(s) OK\n"
    lines = [l for l in r.stderr.splitlines() if "broken" in l]
    assert len(lines) == 1, r.stderr       # each error once
    r = run("check-types", str(tmp_path / "missing.lua"))
    assert r.returncode == 1 and "missing" in r.stderr
    r = run("check-types")                  # the enabled stock types
    assert r.returncode == 0 and " type(s) OK from " in r.stdout


def good_conf(tmp_path, **extra):
    opts = {"bind_host": "127.0.0.1", "bind_port": free_port(),
            "database.connection": "sqlite:///data/glare.db",
            "glance_store.filesystem_store_datadir": "data/blobs"}
    opts.update(extra)
    conf = tmp_path / "glared.conf"
    write_conf(str(conf), opts)
    return conf


def test_check_config(tmp_path):
    conf = good_conf(tmp_path)
    r = run("check-config", "--config-file", str(conf))
    assert r.returncode == 0, r.stderr
    for part in ("database: OK", "store:file: OK", "lua: OK",
                 "configuration OK"):
        assert part in r.stdout
    # a misspelled section: a warning with the nearest name, and failure
    with open(conf, "a") as f:
        f.write("[databse]\nconnection = sqlite:///other.db\n")
    r = run("check-config", "--config-file", str(conf))
    assert r.returncode == 1
    assert "unknown section [databse] ignored (did you mean [database]?)" \
        in r.stderr
    # a misspelled option
    conf = good_conf(tmp_path, bind_prot=1)
    r = run("check-config", "--config-file", str(conf))
    assert r.returncode == 1 and "(did you mean bind_port?)" in r.stderr
    # a policy file that does not parse
    pol = tmp_path / "policy.yaml"
    pol.write_text("this is: [not: valid\n")
    conf = good_conf(tmp_path, **{"oslo_policy.policy_file": "policy.yaml"})
    r = run("check-config", "--config-file", str(conf))
    assert r.returncode == 1 and "policy file" in r.stderr
    # a database that cannot be reached
    conf = good_conf(tmp_path, **{
        "database.connection": "postgresql://u:secret@127.0.0.1:%d/x"
        % free_port()})
    r = run("check-config", "--config-file", str(conf), timeout=60)
    assert r.returncode == 1 and "database" in r.stderr
    assert "secret" not in r.stderr
    # a store directory that is a file
    (tmp_path / "notadir").write_text("x")
    conf = good_conf(tmp_path, **{
        "glance_store.filesystem_store_datadir": "notadir"})
    r = run("check-config", "--config-file", str(conf))
    assert r.returncode == 1
    # unknown type enabled
    conf = good_conf(tmp_path, enabled_artifact_types="images,nope")
    r = run("check-config", "--config-file", str(conf))
    assert r.returncode == 1 and "nope" in r.stderr


def test_relative_paths_follow_the_config_file(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    conf = etc / "glared.conf"
    write_conf(str(conf), {
        "database.connection": "sqlite:///../var/glare.db",
        "glance_store.filesystem_store_datadir": "../var/blobs"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run("db", "upgrade", "--config-file", os.path.join("..", "etc",
                                                           "glared.conf"),
            cwd=str(elsewhere))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "var" / "glare.db").exists()
    assert os.listdir(elsewhere) == []
    r = run("check-config", "--config-file", str(conf), cwd="/")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "var" / "blobs" / "objects").is_dir()


def test_shipped_config_does_not_depend_on_the_cwd(tmp_path):
    """etc/glared.conf, copied into a tree of its own, puts its data beside
    that tree's etc/ whatever the working directory."""
    (tmp_path / "etc").mkdir()
    shutil.copy(os.path.join(ROOT, "etc", "glared.conf"),
                tmp_path / "etc" / "glared.conf")
    env_port = {"GLARED_DEFAULT_BIND_PORT": str(free_port())}
    p = subprocess.run([GLARED, "check-config", "--config-file",
                        str(tmp_path / "etc" / "glared.conf")],
                       capture_output=True, text=True, timeout=60, cwd="/",
                       env=dict(os.environ, **env_port))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "data" / "glare.db").exists()
    assert not os.path.exists(os.path.join(ROOT, "var"))


def test_startup_summary_masks_credentials(tmp_path):
    conf = good_conf(tmp_path, workers=1, **{
        "database.connection":
            "postgresql://glare:s3cr3t@127.0.0.1:%d/glare" % free_port()})
    r = run("serve", "--config-file", str(conf), timeout=60)
    assert r.returncode != 0         # nothing listens there
    line = [l for l in r.stderr.splitlines() if "starting:" in l][0]
    assert "s3cr3t" not in r.stderr
    assert "postgresql://***@127.0.0.1" in line
    for part in ("glared 0.1.0", "config %s" % conf, "store file",
                 "types ", "flavor trusted", "workers 1", "bind 127.0.0.1:"):
        assert part in line, line


def test_startup_summary_sqlite(make_server):
    s = make_server(workers=2)
    line = [l for l in s.read_log().splitlines() if "starting:" in l][0]
    assert "database sqlite:////" in line and "workers 2" in line
    assert "bind 127.0.0.1:%d" % s.port in line


def test_check_config_identity(tmp_path):
    ks = {"paste_deploy.flavor": "keystone",
          "keystone_authtoken.auth_url": "http://127.0.0.1:5000"}
    r = run("check-config", "--config-file", str(good_conf(tmp_path, **ks)))
    assert r.returncode == 1
    assert "identity: [keystone_authtoken] username, password and " \
        "project_name are required" in r.stderr
    ks.update({"keystone_authtoken.username": "glare",
               "keystone_authtoken.password": "x",
               "keystone_authtoken.project_name": "service"})
    r = run("check-config", "--config-file", str(good_conf(tmp_path, **ks)))
    assert r.returncode == 0, r.stderr
    assert "identity: flavor keystone" in r.stdout
    kc = {"paste_deploy.flavor": "keycloak",
          "keycloak_oidc.auth_url": "ftp://sso"}
    r = run("check-config", "--config-file", str(good_conf(tmp_path, **kc)))
    assert r.returncode == 1 and "identity: [keycloak_oidc] auth_url" \
        in r.stderr
