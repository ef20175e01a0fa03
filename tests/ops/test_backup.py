"""glared backup while uploads run, restore into a fresh directory, and
every artifact of the backup served with its recorded checksums."""
import hashlib
import json
import os
import subprocess
import threading
import time

from http_harness import ADMIN, GLARED, Server, write_conf

SA = "sample_artifact"


def run(*args, timeout=120):
    return subprocess.run([GLARED] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def test_backup_during_uploads_restores_and_serves(make_server, tmp_path):
    s = make_server(workers=2)
    stop = threading.Event()
    made = []
    deleted = set()
    errors = []

    def uploader(n):
        i = 0
        while not stop.is_set() and i < 200:
            r = s.post("/artifacts/" + SA, {"name": "bk-%d-%d" % (n, i)})
            if r.status_code != 201:
                errors.append(r.text)
                return
            aid = r.json()["id"]
            data = os.urandom(20000 + 1000 * i)
            r = s.put("/artifacts/%s/%s/blob" % (SA, aid), data=data,
                      headers={"Content-Type": "application/octet-stream"})
            if r.status_code != 200:
                errors.append(r.text)
                return
            made.append((aid, hashlib.sha256(data).hexdigest()))
            # some get deleted again: their objects go while backing up
            if i % 4 == 3:
                deleted.add(aid)
                s.delete("/artifacts/%s/%s" % (SA, aid))
            i += 1

    threads = [threading.Thread(target=uploader, args=(n,))
               for n in range(2)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while len(made) < 10 and time.time() < deadline:
        time.sleep(0.05)
    dest = tmp_path / "backup"
    before = [aid for aid, _ in made]     # complete when the backup began
    r = run("backup", "--config-file", s.conf, str(dest))
    during = len(made)
    time.sleep(0.3)              # uploads go on after the snapshot
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert r.returncode == 0, r.stdout + r.stderr
    assert during >= 10
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    assert manifest["format"] == "glared-backup-1"
    assert manifest["objects"] >= 1 and (dest / "glare.db").exists()
    # a backup never goes into a non-empty directory
    r2 = run("backup", "--config-file", s.conf, str(dest))
    assert r2.returncode == 1 and "not empty" in r2.stderr

    # restore into a fresh directory and serve it
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    conf = fresh / "glared.conf"
    opts = dict(s.options)
    opts.update({"database.connection": "sqlite:///glare.db",
                 "glance_store.filesystem_store_datadir": "blobs",
                 "healthcheck.disable_by_file_path": "hc_disable"})
    write_conf(str(conf), opts)
    r = run("restore", "--config-file", str(conf), str(dest))
    assert r.returncode == 0, r.stderr
    # a second restore over it refuses without --force
    r = run("restore", "--config-file", str(conf), str(dest))
    assert r.returncode == 1 and "--force" in r.stderr
    assert run("restore", "--config-file", str(conf), "--force",
               str(dest)).returncode == 0

    t = Server({"database.connection": "sqlite:///%s/glare.db" % fresh,
                "glance_store.filesystem_store_datadir": "%s/blobs" % fresh})
    try:
        arts = []
        url = "/artifacts/%s?limit=1000" % SA
        r = t.get(url, token=ADMIN)
        assert r.status_code == 200
        arts = [a for a in r.json()["artifacts"]
                if a["name"].startswith("bk-")]
        uploaded = {aid: sha for aid, sha in made}
        with_blob = [a for a in arts if a.get("blob") and
                     a["blob"]["status"] == "active"]
        ids = {a["id"] for a in with_blob}
        for aid in before:
            assert aid in ids or aid in deleted, aid
        for a in with_blob:
            r = t.get("/artifacts/%s/%s/blob" % (SA, a["id"]), token=ADMIN)
            assert r.status_code == 200, r.text
            got = hashlib.sha256(r.content).hexdigest()
            assert got == a["blob"]["sha256"]
            assert got == uploaded[a["id"]]
    finally:
        t.stop()


def test_backup_refuses_postgresql(tmp_path):
    conf = tmp_path / "g.conf"
    write_conf(str(conf), {"database.connection":
                           "postgresql://u:p@127.0.0.1:1/x"})
    r = run("backup", "--config-file", str(conf), str(tmp_path / "b"))
    assert r.returncode == 2 and "pg_dump" in r.stderr
    assert not (tmp_path / "b").exists()


def test_restore_refuses_what_is_not_a_backup(tmp_path):
    conf = tmp_path / "g.conf"
    write_conf(str(conf), {"database.connection": "sqlite:///g.db"})
    (tmp_path / "junk").mkdir()
    r = run("restore", "--config-file", str(conf), str(tmp_path / "junk"))
    assert r.returncode == 1 and "not a glared backup" in r.stderr
    assert not (tmp_path / "g.db").exists()
