"""The README's walkthrough, run as written: its ```sh blocks under
"## Walkthrough" go into one shell script, in a scratch directory,
against a real server (GLARED_URL points the blocks at it; they default
to make run's address)."""
import os
import re
import subprocess

from http_harness import ROOT


def walkthrough_blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("\n## Walkthrough")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)


def test_readme_walkthrough_runs(make_server, tmp_path):
    blocks = walkthrough_blocks()
    assert len(blocks) >= 5
    s = make_server()
    script = "set -eu\n" + "\n".join(blocks)
    env = dict(os.environ, GLARED_URL=s.url)
    p = subprocess.run(["bash", "-c", script], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout,
                                                            p.stderr)
    out = p.stdout
    assert "downloaded.img: OK" in out and "same bytes" in out
    assert re.search(r"^active 1048576 [0-9a-f]{64}$", out, re.M), out
    assert "Artifact with id=00000000-0000-0000-0000-000000000000 not " \
           "found" in out
    assert (tmp_path / "sample.img").stat().st_size == 1048576
    # the walkthrough's artifact is really there, active, on the server
    aid = re.search(r"^artifact (\S+)$", out, re.M).group(1)
    r = s.get("/artifacts/images/" + aid,
              token="alice:project1:member")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert r.json()["disk_format"] == "raw"


def test_readme_blocks_default_to_make_run():
    """As written, the blocks talk to `make run`'s server."""
    first = walkthrough_blocks()[0]
    assert "URL=${GLARED_URL:-http://127.0.0.1:9494}" in first
    conf = open(os.path.join(ROOT, "etc", "glared.conf")).read()
    assert re.search(r"^bind_port = 9494$", conf, re.M)
    assert re.search(r"^bind_host = 127\.0\.0\.1$", conf, re.M)
