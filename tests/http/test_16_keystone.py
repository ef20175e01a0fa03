"""flavor = keystone against the real Keystone of scripts/keystone.sh.

run-tests.sh starts it once per run and exports GLARED_KEYSTONE_*; without
them (the fixture did not start, or a hand run without it) every test here
is skipped. The tests that stop Keystone or revoke glared's own token run
last and use private glared servers.
"""
import json
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import CLUSTER, raw, status_of

KS = os.environ.get("GLARED_KEYSTONE_URL")
KS_SHORT = os.environ.get("GLARED_KEYSTONE_SHORT_URL")
KS_PORT = os.environ.get("GLARED_KEYSTONE_PORT")
GLARE_PORT = int(os.environ.get("GLARED_KEYSTONE_GLARE_PORT", "0"))
ADMIN_PW = os.environ.get("GLARED_KEYSTONE_ADMIN_PASSWORD")
SVC_USER = os.environ.get("GLARED_KEYSTONE_SERVICE_USER")
SVC_PW = os.environ.get("GLARED_KEYSTONE_SERVICE_PASSWORD")
USER_PW = os.environ.get("GLARED_KEYSTONE_USER_PASSWORD")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

pytestmark = [
    pytest.mark.skipif(not KS, reason="no Keystone: scripts/keystone.sh "
                       "did not start (run-tests.sh exports GLARED_KEYSTONE_*)"),
    pytest.mark.skipif(CLUSTER, reason="identity does not depend on the "
                       "storage back end: run once, on the single node"),
]


def ks_token(user, project, password=None, url=None):
    """A project-scoped token: (token, token document)."""
    r = requests.post((url or KS) + "/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"},
            "password": password or USER_PW}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}},
        timeout=60)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"], r.json()["token"]


_admin = []


def admin_headers():
    if not _admin:
        _admin.append(ks_token("admin", "admin", ADMIN_PW)[0])
    return {"X-Auth-Token": _admin[0]}


def ks_options(**extra):
    opts = {
        "debug": True,
        "paste_deploy.flavor": "keystone",
        "keystone_authtoken.www_authenticate_uri": KS,
        # the unversioned root: glared finds /v3 itself
        "keystone_authtoken.auth_url": KS.rsplit("/v3", 1)[0],
        "keystone_authtoken.auth_type": "password",
        "keystone_authtoken.username": SVC_USER,
        "keystone_authtoken.password": SVC_PW,
        "keystone_authtoken.project_name": "service",
        "keystone_authtoken.user_domain_name": "Default",
        "keystone_authtoken.project_domain_name": "Default",
        "keystone_authtoken.region_name": "RegionOne",
        "keystone_authtoken.token_cache_time": 300,
        "keystone_authtoken.http_connect_timeout": 5,
        "keystone_authtoken.http_request_max_retries": 1,
        # auth_token options glared has no use for, as real glare.conf
        # files carry them
        "keystone_authtoken.memcached_servers": "127.0.0.1:11211",
        "keystone_authtoken.service_token_roles_required": "true",
    }
    opts.update({k.replace("__", "."): v for k, v in extra.items()})
    return opts


def get(srv, path, token=None, headers=None, **kw):
    h = dict(headers or {})
    if token:
        h["X-Auth-Token"] = token
    return requests.get(srv.url + path, headers=h, timeout=60, **kw)


def create(srv, token, name, headers=None):
    h = {"Content-Type": "application/json", "X-Auth-Token": token}
    h.update(headers or {})
    return requests.post(srv.url + "/artifacts/images", json={"name": name},
                         headers=h, timeout=60)


def assert_401(r):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers.get("WWW-Authenticate") == 'Keystone uri="%s"' % KS
    err = r.json()["error"]
    assert err["type"] == "Unauthorized"
    # generic: the reason goes to the log only
    assert err["message"] == \
        "The request you have made requires authentication."


@pytest.fixture(scope="module")
def ksrv():
    """One keystone-flavored glared on the port the catalog names."""
    from conftest import Server
    s = Server(ks_options(bind_port=GLARE_PORT))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def alice():
    return ks_token("alice", "demo")


@pytest.fixture(scope="module")
def short_lived(ksrv):
    """A token of the 8-second Keystone, accepted (and cached: glared
    caches for 300 s) at once; the test that wants it refused runs later
    in this module, when its end has passed."""
    # glared logs in first: the short token's 8 s are for its check
    assert get(ksrv, "/artifacts/images",
               ks_token("bob", "demo")[0]).status_code == 200
    tok, doc = ks_token("alice", "demo", url=KS_SHORT)
    r = get(ksrv, "/artifacts/images", tok)
    return tok, doc["expires_at"], r.status_code


@pytest.fixture(scope="module")
def revoked():
    """A private server caching for 6 s; a token it accepted, then revoked
    in Keystone. Returns (server, token, when accepted, status right after
    the revocation)."""
    from conftest import Server
    s = Server(ks_options(keystone_authtoken__token_cache_time=6))
    tok, _ = ks_token("alice", "demo")
    assert get(s, "/artifacts/images", tok).status_code == 200
    t0 = time.time()
    r = requests.delete(KS + "/auth/tokens", headers=dict(
        admin_headers(), **{"X-Subject-Token": tok}), timeout=60)
    assert r.status_code == 204
    after = get(s, "/artifacts/images", tok).status_code \
        if time.time() - t0 < 4 else None
    yield s, tok, t0, after
    s.stop()


def test_tokens_accepted_while_valid_and_cached(short_lived, revoked):
    # accepted while valid ...
    assert short_lived[2] == 200
    # ... and a revoked token while its cache entry lasts (skipped on a
    # machine so slow that 4 s went by)
    assert revoked[3] in (200, None)
    # Keystone itself refuses it now
    r = requests.get(KS + "/auth/tokens", headers=dict(
        admin_headers(), **{"X-Subject-Token": revoked[1]}), timeout=60)
    assert r.status_code == 404


def test_versions_and_healthcheck_need_no_token(ksrv):
    assert get(ksrv, "/").status_code == 300
    assert get(ksrv, "/versions").status_code == 300
    r = get(ksrv, "/healthcheck")
    assert r.status_code == 200 and r.text == "OK"


def test_auth_token_options_glared_lacks_get_one_warning_each(ksrv):
    log = ksrv.read_log()
    for name in ("memcached_servers", "service_token_roles_required"):
        assert log.count("unknown option [keystone_authtoken] %s ignored"
                         % name) == 1, log
    # the options glared has are taken without a word
    assert "unknown option [keystone_authtoken] auth_type" not in log


def test_no_token_is_401_with_the_keystone_challenge(ksrv):
    assert_401(get(ksrv, "/artifacts/images"))
    assert_401(get(ksrv, "/schemas"))


def test_valid_token_gives_identity_and_project_owner(ksrv, alice, uniq):
    tok, doc = alice
    demo_id = doc["project"]["id"]
    r = create(ksrv, tok, uniq("ks"))
    assert r.status_code == 201, r.text
    art = r.json()
    # the owner is the project's id, never its name
    assert art["owner"] == demo_id and art["owner"] != "demo"
    assert len(demo_id) == 32 and int(demo_id, 16) >= 0
    # same project (bob reads demo): visible; another project: not
    bob, _ = ks_token("bob", "demo")
    carol, _ = ks_token("carol", "other")
    assert get(ksrv, "/artifacts/images/" + art["id"], bob).status_code == 200
    assert get(ksrv, "/artifacts/images/" + art["id"],
               carol).status_code == 404


def test_keystone_roles_drive_policy(make_server, tmp_path, uniq):
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({
        "artifact:create": "role:member",
        "artifact:type_list": "user_domain_id:default and "
                              "project_domain_id:default",
    }))
    s = make_server(ks_options(oslo_policy__policy_file=str(pol),
                               metrics_access="admin"))
    alice_t, _ = ks_token("alice", "demo")
    bob_t, _ = ks_token("bob", "demo")
    admin_t, _ = ks_token("admin", "admin", ADMIN_PW)
    # member: yes; reader only: no; admin implies member (Keystone expands)
    assert create(s, alice_t, uniq("m")).status_code == 201
    r = create(s, bob_t, uniq("r"))
    assert r.status_code == 403 and "artifact:create" in r.text
    assert create(s, admin_t, uniq("a")).status_code == 201
    # the default rules: quotas are for admins
    assert get(s, "/quotas", admin_t).status_code == 200
    assert get(s, "/quotas", alice_t).status_code == 403
    # Keystone's domain ids are credentials rules can name
    assert get(s, "/schemas", bob_t).status_code == 200
    # the operator endpoints, for admins only here: checked the same way
    for path in ("/metrics", "/healthcheck?detailed=true"):
        assert_401(get(s, path))
        assert get(s, path, alice_t).status_code == 403
        assert get(s, path, admin_t).status_code == 200
    assert get(s, "/healthcheck").status_code == 200


def test_bad_tokens_are_401(ksrv, alice):
    tok, _ = alice
    altered = tok[:-6] + ("AAAAAA" if not tok.endswith("AAAAAA")
                          else "BBBBBB")
    for bad in ("garbage", altered, "x" * 9000,
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."):
        assert_401(get(ksrv, "/artifacts/images", bad))


def test_upload_waits_for_the_check_then_goes_on(ksrv, alice, uniq):
    """A body held during the check is read once the token is accepted,
    also from a client that sent everything and half-closed."""
    tok, _ = alice
    aid = create(ksrv, tok, uniq("up")).json()["id"]
    fresh, _ = ks_token("bob", "demo")   # not cached yet: a check is out
    req = ("PUT /artifacts/images/%s/image HTTP/1.1\r\nHost: x\r\n"
           "X-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\n"
           "Content-Length: 5\r\n\r\nhello" % (aid, fresh))
    out = raw(ksrv.port, req, timeout=60, shut=True)
    assert status_of(out) == 200, out[:300]
    r = get(ksrv, "/artifacts/images/%s/image" % aid, tok)
    assert r.status_code == 200 and r.content == b"hello"


def test_trusted_token_form_is_just_a_bad_token(ksrv):
    for t in ("alice:demo:admin", "admin:admin:admin"):
        assert_401(get(ksrv, "/artifacts/images", t))
        assert_401(create(ksrv, t, "x"))


def test_forged_identity_headers_are_ignored(ksrv, alice, uniq):
    tok, doc = alice
    _, other = ks_token("carol", "other")
    forged = {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": "evil",
        "X-Project-Id": other["project"]["id"],
        "X-Tenant-Id": other["project"]["id"],
        "X-Roles": "admin",
        "X-Service-Roles": "admin",
        "X-Is-Admin-Project": "True",
    }
    r = create(ksrv, tok, uniq("f"), headers=forged)
    assert r.status_code == 201 and r.json()["owner"] == doc["project"]["id"]
    assert get(ksrv, "/quotas", tok, headers=forged).status_code == 403
    # and without a token they are nothing at all
    assert_401(get(ksrv, "/artifacts/images", headers=forged))


def test_refused_token_is_remembered_briefly(ksrv):
    bad = "never-issued-" + os.urandom(8).hex()
    for _ in range(3):
        assert_401(get(ksrv, "/artifacts/images", bad))
    log = ksrv.read_log()
    # Keystone was asked once; the other two came from the cache
    assert log.count("refused: Keystone does not know it") >= 1
    import hashlib
    tag = "sha256:" + hashlib.sha256(bad.encode()).hexdigest()[:8]
    assert log.count("token %s refused: Keystone" % tag) == 1, log
    assert log.count("token %s refused (cached)" % tag) == 2, log


def test_concurrent_requests_share_one_check(ksrv):
    tok, _ = ks_token("alice", "demo")
    results = []

    def one():
        results.append(get(ksrv, "/artifacts/images", tok).status_code)
    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 6
    import hashlib
    tag = "sha256:" + hashlib.sha256(tok.encode()).hexdigest()[:8]
    assert ksrv.read_log().count("auth: token %s: user" % tag) == 1


def test_openstack_cli_artifact_list(ksrv, alice, uniq):
    """python3-openstackclient + glareclient's plugin: Keystone session,
    the artifact endpoint from the catalog (it points at ksrv)."""
    tok, _ = alice
    name = uniq("osc")
    aid = create(ksrv, tok, name).json()["id"]
    env = dict(os.environ, OS_AUTH_URL=KS, OS_USERNAME="alice",
               OS_PASSWORD=USER_PW, OS_PROJECT_NAME="demo",
               OS_USER_DOMAIN_ID="default", OS_PROJECT_DOMAIN_ID="default",
               OS_IDENTITY_API_VERSION="3", OS_REGION_NAME="RegionOne")
    p = subprocess.run(["openstack", "artifact", "list", "images", "-f",
                        "json"], capture_output=True, text=True, timeout=120,
                       env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    listed = {a["Id"]: a for a in json.loads(p.stdout)}
    assert aid in listed and listed[aid]["Name"] == name
    # a wrong password never reaches glared
    env["OS_PASSWORD"] = "wrong"
    p = subprocess.run(["openstack", "artifact", "list", "images"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode != 0


def test_glare_cli_with_a_keystone_token(ksrv, alice, uniq):
    tok, _ = alice
    name = uniq("cli")
    aid = create(ksrv, tok, name).json()["id"]

    def cli(token, *args):
        return subprocess.run(["/usr/bin/glare", "--os-glare-url", ksrv.url,
                               "--auth-token", token] + list(args),
                              capture_output=True, text=True, timeout=60)
    p = cli(tok, "list", "images", "-f", "json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert aid in p.stdout
    p = cli("alice:demo:admin", "list", "images")
    assert p.returncode != 0


def test_tokens_never_reach_the_log(ksrv, alice):
    tok, _ = alice
    assert get(ksrv, "/artifacts/images", tok).status_code == 200
    log = ksrv.read_log()
    assert tok not in log and tok[:40] not in log
    import hashlib
    assert "sha256:" + hashlib.sha256(tok.encode()).hexdigest()[:8] in log


def test_expired_token_is_401_even_while_cached(ksrv, short_lived):
    tok, end, _ = short_lived
    deadline = time.time() + 20
    while time.time() < deadline:
        r = get(ksrv, "/artifacts/images", tok)
        if r.status_code != 200:
            break
        time.sleep(0.5)
    assert_401(r)
    assert time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) >= end[:19]


def test_revoked_token_refused_once_its_cache_entry_ends(revoked):
    s, tok, t0, _ = revoked
    time.sleep(max(0, t0 + 6.5 - time.time()))
    assert_401(get(s, "/artifacts/images", tok))


class SilentKeystone:
    """A TCP listener that accepts and never answers: a hung Keystone."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_a_hung_keystone_stalls_nothing_else(make_server):
    hung = SilentKeystone()
    try:
        s = make_server(ks_options(
            keystone_authtoken__auth_url="http://127.0.0.1:%d" % hung.port))
        out = {}

        def waiting():
            out["r"] = get(s, "/artifacts/images", "some-token")
        t = threading.Thread(target=waiting)
        t.start()
        # a PUT with a body waits for the verdict without its body being
        # read: no "100 Continue" while the check is out
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"PUT /artifacts/images/x/image HTTP/1.1\r\nHost: x\r\n"
                  b"X-Auth-Token: other-token\r\nContent-Length: 5\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        c.settimeout(1.5)
        with pytest.raises(socket.timeout):
            c.recv(100)
        # meanwhile the worker serves everyone else at once
        for _ in range(5):
            t0 = time.time()
            assert get(s, "/healthcheck").status_code == 200
            assert time.time() - t0 < 1
        assert t.is_alive()
    finally:
        hung.close()
    # Keystone gone: 503, never 401 and never 500
    t.join(60)
    assert out["r"].status_code == 503, out["r"].text
    assert out["r"].json()["error"]["type"] == "ServiceUnavailable"
    assert "WWW-Authenticate" not in out["r"].headers
    c.settimeout(30)
    got = b""
    while b"\r\n\r\n" not in got:
        b = c.recv(4096)
        if not b:
            break
        got += b
    c.close()
    assert status_of(got) == 503 and b"100 Continue" not in got


def ks_script(cmd):
    env = dict(os.environ, GLARED_KEYSTONE_PORT=KS_PORT)
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "keystone.sh"),
                        cmd], capture_output=True, text=True, timeout=180,
                       env=env)
    assert p.returncode == 0, p.stdout + p.stderr


def test_keystone_down_503_while_cached_tokens_work(make_server):
    s = make_server(ks_options())
    cached, _ = ks_token("alice", "demo")
    fresh, _ = ks_token("carol", "other")
    assert get(s, "/artifacts/images", cached).status_code == 200
    ks_script("down")
    try:
        for _ in range(3):
            assert get(s, "/artifacts/images", cached).status_code == 200
        r = get(s, "/artifacts/images", fresh)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "ServiceUnavailable"
        assert "WWW-Authenticate" not in r.headers
    finally:
        ks_script("up")
    # Keystone back: the same token is checked and accepted (a 503 is
    # never remembered as a refusal)
    assert get(s, "/artifacts/images", fresh).status_code == 200
    assert "Keystone unreachable" in s.read_log()


def test_service_token_renewed_before_it_ends(make_server):
    # glared logs in to the 8-second Keystone: its own token must be
    # renewed while user tokens are checked (none cached) throughout
    s = make_server(ks_options(
        keystone_authtoken__auth_url=KS_SHORT.rsplit("/v3", 1)[0],
        keystone_authtoken__token_cache_time=-1))
    tok, _ = ks_token("alice", "demo")
    t0 = time.time()
    n = 0
    while time.time() - t0 < 14:    # at most ~28 rounds
        r = get(s, "/artifacts/images", tok)
        assert r.status_code == 200, (time.time() - t0, r.text)
        n += 1
        time.sleep(0.5)
    log = s.read_log()
    assert log.count("glared logged in") >= 2, log
    # renewed because it was ending, not because Keystone refused it
    assert "service token was refused" not in log
    assert n >= 5


def test_service_token_revoked_glared_logs_in_again(make_server, uniq):
    # a service user of this test's own: revoking its tokens disturbs no
    # other glared
    h = admin_headers()
    name = uniq("svc")
    r = requests.post(KS + "/users", headers=h, timeout=60, json={"user": {
        "name": name, "password": "pw-" + name, "domain_id": "default"}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    pid = requests.get(KS + "/projects", params={"name": "service"},
                       headers=h, timeout=60).json()["projects"][0]["id"]
    rid = requests.get(KS + "/roles", params={"name": "service"}, headers=h,
                       timeout=60).json()["roles"][0]["id"]
    assert requests.put("%s/projects/%s/users/%s/roles/%s" % (
        KS, pid, uid, rid), headers=h, timeout=60).status_code == 204
    try:
        s = make_server(ks_options(keystone_authtoken__username=name,
                                   keystone_authtoken__password="pw-" + name))
        first, _ = ks_token("alice", "demo")
        assert get(s, "/artifacts/images", first).status_code == 200
        # setting a password (the same one) revokes every token of the
        # user, glared's service token included
        time.sleep(1.1)
        r = requests.patch(KS + "/users/" + uid, headers=h, timeout=60,
                           json={"user": {"password": "pw-" + name}})
        assert r.status_code == 200, r.text
        time.sleep(1.1)  # Keystone's revocations have 1-second resolution
        second, _ = ks_token("bob", "demo")
        assert get(s, "/artifacts/images", second).status_code == 200
        log = s.read_log()
        assert "service token was refused, logging in again" in log
        assert log.count("glared logged in") == 2
    finally:
        requests.delete(KS + "/users/" + uid, headers=h, timeout=60)
