"""One rule for "are these the recorded bytes?" (issue 13): the engine's
reader (download.h) compares a whole read of an S3-stored blob with every
recorded digest, as it does an external blob's, and withholds the last
64 KiB until they match; a byte range passes unjudged. The HTTP download
and the console's glare.read both go through it.

The S3 object is changed behind glared's back (same size, other bytes),
which only the digests can tell."""
import hashlib
import os
import subprocess

import pytest
import requests

from conftest import GLARED, USER1, needs_s3, objects_under, s3, \
    s3_options

IM = "/artifacts/images"
OCTETS = {"Content-Type": "application/octet-stream"}
HOLD = 64 * 1024


def read_all(url, headers):
    """(status, bytes received, whether the body ended cleanly)."""
    got = b""
    with requests.get(url, headers=headers, stream=True, timeout=30) as r:
        try:
            for piece in r.iter_content(65536):
                got += piece
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ConnectionError):
            return r.status_code, got, False
        whole = int(r.headers.get("Content-Length", -1)) == len(got)
        return r.status_code, got, whole


@pytest.fixture
def changed_s3_blob(make_server):
    """A server on the S3 store with one image whose S3 object was then
    replaced by other bytes of the same size."""
    s = make_server(s3_options())
    prefix = s.options["glance_store.s3_store_prefix"]
    r = s.post(IM, {"name": "rule-" + os.urandom(4).hex()})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    body = os.urandom(300 * 1024)
    r = s.put("%s/%s/image" % (IM, aid), data=body, headers=OCTETS)
    assert r.status_code == 200, r.text
    assert r.json()["image"]["sha256"] == hashlib.sha256(body).hexdigest()
    keys = objects_under(prefix)
    assert len(keys) == 1, keys
    # before the change: whole and ranged reads serve the recorded bytes
    st, got, whole = read_all("%s%s/%s/image" % (s.url, IM, aid),
                              {"X-Auth-Token": USER1})
    assert (st, whole) == (200, True) and got == body
    other = bytes(b ^ 0xFF for b in body)
    assert s3("/" + keys[0], "PUT", body=other) in ("200", "201"), keys[0]
    return s, aid, body, other


@needs_s3
def test_whole_s3_read_is_judged(changed_s3_blob):
    s, aid, body, other = changed_s3_blob
    st, got, whole = read_all("%s%s/%s/image" % (s.url, IM, aid),
                              {"X-Auth-Token": USER1})
    assert st == 200
    assert not whole, "a changed S3 object was served whole"
    # the tail was withheld: the client never holds the complete bytes
    assert len(got) <= len(body) - HOLD
    assert got == other[:len(got)]
    assert "the S3 object differs from the record" in s.read_log()


@needs_s3
def test_s3_range_passes_unjudged(changed_s3_blob):
    s, aid, body, other = changed_s3_blob
    r = s.get("%s/%s/image" % (IM, aid), headers={"Range": "bytes=10-99"})
    assert r.status_code == 206, r.text
    assert r.content == other[10:100]


@needs_s3
def test_console_read_of_changed_s3_blob_fails(changed_s3_blob):
    s, aid, body, other = changed_s3_blob
    p = subprocess.run(
        [GLARED, "console", "--config-file", s.conf, "-e",
         "glare.read('images', '%s', 'image', %d)" % (aid, len(body))],
        capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "the S3 object differs from the record" in p.stderr + p.stdout
