"""flavor = keycloak: OIDC access tokens checked locally against the
realm's key set, with the issuer of oidc_issuer.py on loopback."""
import hashlib
import time

import pytest
import requests

from conftest import CLUSTER
from oidc_issuer import Issuer, Key, b64u, b64u_json

pytestmark = pytest.mark.skipif(
    CLUSTER, reason="identity does not depend on the storage back end: run "
    "once, on the single node")

REFETCH = 2   # jwks_refetch_interval of the servers here


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    yield i
    i.close()


@pytest.fixture(scope="module")
def keys(issuer):
    k = {"rsa": Key("RSA"), "ec": Key("EC")}
    issuer.publish("demo", [k["rsa"], k["ec"]])
    return k


def kc_options(issuer, **extra):
    opts = {
        "debug": True,
        "paste_deploy.flavor": "keycloak",
        "keycloak_oidc.auth_url": issuer.base,
        "keycloak_oidc.jwks_refetch_interval": REFETCH,
        "keycloak_oidc.leeway": 30,
    }
    opts.update({k.replace("__", "."): v for k, v in extra.items()})
    return opts


@pytest.fixture(scope="module")
def kc(issuer, keys):
    from conftest import Server
    s = Server(kc_options(issuer))
    yield s
    s.stop()


def get(srv, path, token=None, bearer=False, **kw):
    h = {}
    if token is not None:
        if bearer:
            h["Authorization"] = "Bearer " + token
        else:
            h["X-Auth-Token"] = token
    return requests.get(srv.url + path, headers=h, timeout=60, **kw)


def assert_401(r):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert r.json()["error"]["message"] == \
        "The request you have made requires authentication."


@pytest.mark.parametrize("alg,kind", [("RS256", "rsa"), ("PS256", "rsa"),
                                      ("ES256", "ec")])
def test_valid_tokens_of_each_algorithm(kc, issuer, keys, alg, kind, uniq):
    tok = issuer.token("demo", keys[kind], alg=alg, user="u-" + alg)
    assert get(kc, "/artifacts/images", tok).status_code == 200
    r = requests.post(kc.url + "/artifacts/images", json={"name": uniq(alg)},
                      headers={"X-Auth-Token": tok}, timeout=60)
    assert r.status_code == 201, r.text
    # the realm is the project (Glare's keycloak flavor did the same)
    assert r.json()["owner"] == "demo"


def test_authorization_bearer_is_accepted(kc, issuer, keys):
    tok = issuer.token("demo", keys["rsa"])
    assert get(kc, "/artifacts/images", tok, bearer=True).status_code == 200
    assert_401(get(kc, "/artifacts/images", "not-a-jwt", bearer=True))


def test_realm_roles_drive_policy(kc, issuer, keys):
    admin = issuer.token("demo", keys["ec"], alg="ES256", roles=["admin"],
                         user="root")
    member = issuer.token("demo", keys["ec"], alg="ES256", user="bob")
    assert get(kc, "/quotas", admin).status_code == 200
    assert get(kc, "/quotas", member).status_code == 403


def test_no_token_and_trusted_form_are_401(kc):
    assert_401(get(kc, "/artifacts/images"))
    assert_401(get(kc, "/artifacts/images", "alice:demo:admin"))
    assert get(kc, "/healthcheck").status_code == 200
    assert get(kc, "/versions").status_code == 300


def test_time_claims(kc, issuer, keys):
    now = int(time.time())
    k = keys["rsa"]
    assert_401(get(kc, "/artifacts/images", issuer.token(
        "demo", k, claims={"exp": now - 120, "iat": now - 500})))
    assert_401(get(kc, "/artifacts/images", issuer.token(
        "demo", k, claims={"nbf": now + 300})))
    assert_401(get(kc, "/artifacts/images", issuer.token(
        "demo", k, claims={"iat": now + 300})))
    assert_401(get(kc, "/artifacts/images", issuer.token(
        "demo", k, claims={"exp": None})))
    # within the leeway (30 s) clocks may disagree
    assert get(kc, "/artifacts/images", issuer.token(
        "demo", k, claims={"exp": now - 10, "iat": now - 100})
    ).status_code == 200
    assert get(kc, "/artifacts/images", issuer.token(
        "demo", k, claims={"nbf": now + 10})).status_code == 200


def test_wrong_key_under_a_known_kid(kc, issuer, keys):
    for alg, kind in (("RS256", "RSA"), ("ES256", "EC")):
        stranger = Key(kind)
        mine = keys["rsa" if kind == "RSA" else "ec"]
        assert_401(get(kc, "/artifacts/images", issuer.token(
            "demo", mine, alg=alg, sign_with=stranger)))
    # an EC token under an RSA key's kid
    assert_401(get(kc, "/artifacts/images", issuer.token(
        "demo", keys["ec"], alg="ES256", header={"kid": keys["rsa"].kid})))


def test_alg_none_and_hmac_are_refused(kc, issuer, keys):
    now = int(time.time())
    claims = {"exp": now + 300, "iat": now, "iss": issuer.iss("demo"),
              "sub": "mallory", "realm_access": {"roles": ["admin"]}}
    for alg in ("none", "None", "NONE"):
        hdr = {"alg": alg, "kid": keys["rsa"].kid}
        assert_401(get(kc, "/artifacts/images", Issuer.unsigned(hdr, claims)))
        assert_401(get(kc, "/artifacts/images",
                       Issuer.unsigned(hdr, claims, b"x" * 32)))
    assert_401(get(kc, "/artifacts/images",
                   issuer.hs256_with_public_key("demo", keys["rsa"])))
    log = kc.read_log()
    assert "alg none refused" in log and "alg HS256 refused" in log


def test_foreign_issuers(kc, issuer, keys):
    before = issuer.requests
    for iss in ("http://127.0.0.1:1/auth/realms/demo",
                issuer.base + "-evil/realms/demo",
                issuer.base + "/realms/demo/extra",
                issuer.base + "/realms/",
                issuer.base + "/realms/..",
                issuer.base + "/realms/demo?x=",
                issuer.base + "/realms/demo#",
                issuer.base + "/realms/de mo",
                issuer.base.replace("/auth", "") + "/realms/demo"):
        assert_401(get(kc, "/artifacts/images", issuer.token(
            "demo", keys["rsa"], claims={"iss": iss})))
    # none of them made glared ask anyone for keys
    assert issuer.requests == before
    # a realm the issuer does not have: its key set is a 404
    issuer.publish("ghost", [])
    del issuer.realms["ghost"]
    assert_401(get(kc, "/artifacts/images", issuer.token(
        "ghost", keys["rsa"])))


def test_malformed_tokens(kc, issuer, keys):
    k = keys["rsa"]
    good = issuer.token("demo", k)
    h, p, s = good.split(".")
    huge = b64u_json({"alg": "RS256", "kid": k.kid, "x": "y" * 4000})
    dup = b64u(b'{"sub":"a","sub":"b","exp":9999999999,"iss":"%s"}'
               % issuer.iss("demo").encode())
    for bad in ("a.b.c", "..", h + "." + p, good + ".x", h + "." + p + ".",
                h + "." + p + "." + s[:-8], h + "." + p + "." + s + "A",
                "!" + good[1:], huge + "." + p + "." + s,
                h + "." + dup + "." + s,
                b64u(b"[1,2]") + "." + p + "." + s):
        assert_401(get(kc, "/artifacts/images", bad))
    # and the server is fine afterwards
    assert get(kc, "/artifacts/images", good).status_code == 200


def test_unknown_kid_refetch_is_rate_limited(make_server, issuer):
    k1, k2, k3 = Key("RSA"), Key("RSA"), Key("RSA")
    issuer.publish("rl", [k1])
    s = make_server(kc_options(issuer))
    t0 = time.time()
    assert get(s, "/artifacts/images", issuer.token("rl", k1)).status_code \
        == 200
    assert issuer.fetches["rl"] == 1
    # a key set fetched this moment is not fetched again for a new kid
    assert_401(get(s, "/artifacts/images", issuer.token("rl", k2)))
    assert issuer.fetches["rl"] <= 1 + (time.time() - t0) // REFETCH
    time.sleep(REFETCH + 0.5)
    # later an unknown kid: one refetch, then still unknown
    window = time.time()
    n0 = issuer.fetches["rl"]
    assert_401(get(s, "/artifacts/images", issuer.token("rl", k2,
                                                        user="again")))
    assert issuer.fetches["rl"] == n0 + 1
    # garbage kids: fetches start at least REFETCH s apart, so the window
    # since the refetch above holds one more per REFETCH s at the most (on
    # a quick machine the 20 requests take less: none at all)
    junk = [Key("RSA", kid="junk"), Key("EC", kid="junk2")]
    for i in range(20):
        j = junk[i % 2]
        assert_401(get(s, "/artifacts/images", issuer.token(
            "rl", j, alg="RS256" if j.kind == "RSA" else "ES256",
            user="u%d" % i)))
    elapsed = time.time() - window
    assert issuer.fetches["rl"] - n0 <= 1 + elapsed // REFETCH, elapsed
    n0 = issuer.fetches["rl"]
    time.sleep(REFETCH + 0.5)
    assert_401(get(s, "/artifacts/images", issuer.token("rl", k3)))
    assert issuer.fetches["rl"] == n0 + 1


def test_tokens_naming_new_realms_are_rate_limited(make_server, issuer,
                                                  keys):
    s = make_server(kc_options(issuer))
    good = issuer.token("demo", keys["rsa"], user="steady")
    assert get(s, "/artifacts/images", good).status_code == 200
    # garbage tokens, each naming a realm the issuer does not have: a
    # burst of 16 lookups (glared's realm table), then one per REFETCH s
    n0, t0 = issuer.requests, time.time()
    codes = []
    for i in range(40):
        codes.append(get(s, "/artifacts/images", issuer.token(
            "nowhere%d" % i, keys["rsa"])).status_code)
    elapsed = time.time() - t0
    assert set(codes) <= {401, 503}, codes
    assert issuer.requests - n0 <= 16 + 1 + elapsed // REFETCH, elapsed
    # each lookup is a 404 (a 401 for the client); the rest wait: 503
    assert codes.count(401) == issuer.requests - n0
    # the realm in use kept its keys: a new token of it needs no lookup
    n0 = issuer.requests
    assert get(s, "/artifacts/images", issuer.token(
        "demo", keys["ec"], alg="ES256", user="steady2")).status_code == 200
    assert issuer.requests == n0


def test_key_rotation(make_server, issuer):
    old, new = Key("RSA"), Key("EC")
    issuer.publish("rot", [old])
    s = make_server(kc_options(issuer))
    assert get(s, "/artifacts/images",
               issuer.token("rot", old)).status_code == 200
    # the issuer rotates: the new key is published, the old one withdrawn
    issuer.publish("rot", [new])
    time.sleep(REFETCH + 0.5)
    assert get(s, "/artifacts/images", issuer.token(
        "rot", new, alg="ES256")).status_code == 200
    assert issuer.fetches["rot"] == 2
    # tokens of the withdrawn key are refused from now on
    assert_401(get(s, "/artifacts/images", issuer.token("rot", old,
                                                        user="late")))


def test_audience(make_server, issuer, keys):
    s = make_server(kc_options(issuer, keycloak_oidc__audience="glared"))
    k = keys["rsa"]
    for claims in ({"aud": "glared"}, {"aud": ["account", "glared"]},
                   {"aud": "account", "azp": "glared"}):
        assert get(s, "/artifacts/images", issuer.token(
            "demo", k, claims=claims)).status_code == 200, claims
    for claims in ({"aud": "account"}, {"aud": ["a", "b"], "azp": "c"},
                   {"aud": None, "azp": None}):
        assert_401(get(s, "/artifacts/images",
                       issuer.token("demo", k, claims=claims)))


def test_issuer_down(make_server, issuer):
    k = Key("EC")
    issuer.publish("down", [k])
    issuer.publish("never-seen", [k])
    s = make_server(kc_options(issuer))
    assert get(s, "/artifacts/images", issuer.token(
        "down", k, alg="ES256")).status_code == 200
    issuer.down = True
    try:
        # known keys: signatures are checked locally, the outage is moot
        assert get(s, "/artifacts/images", issuer.token(
            "down", k, alg="ES256", user="new")).status_code == 200
        # a realm whose keys glared never had: 503, not 401, not 500
        r = get(s, "/artifacts/images", issuer.token("never-seen", k,
                                                     alg="ES256"))
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "ServiceUnavailable"
    finally:
        issuer.down = False
    time.sleep(REFETCH + 0.5)
    assert get(s, "/artifacts/images", issuer.token(
        "never-seen", k, alg="ES256", user="later")).status_code == 200


def test_userinfo_option(make_server, issuer, keys):
    s = make_server(kc_options(issuer, keycloak_oidc__use_userinfo=True))
    k = keys["rsa"]
    calls = issuer.userinfo_calls
    assert get(s, "/artifacts/images", issuer.token("demo", k)).status_code \
        == 200
    assert issuer.userinfo_calls == calls + 1
    revoked = issuer.token("demo", k, user="gone")
    issuer.revoked.add(revoked)
    assert_401(get(s, "/artifacts/images", revoked))
    issuer.down = True
    try:
        r = get(s, "/artifacts/images", issuer.token("demo", k, user="x"))
        assert r.status_code == 503
    finally:
        issuer.down = False


def test_userinfo_is_off_by_default(kc, issuer, keys):
    calls = issuer.userinfo_calls
    assert get(kc, "/artifacts/images", issuer.token(
        "demo", keys["rsa"], user="quiet")).status_code == 200
    assert issuer.userinfo_calls == calls


def test_tokens_never_reach_the_log(kc, issuer, keys):
    tok = issuer.token("demo", keys["rsa"], user="logcheck")
    assert get(kc, "/artifacts/images", tok).status_code == 200
    bad = issuer.token("demo", keys["rsa"], sign_with=Key("RSA"))
    assert_401(get(kc, "/artifacts/images", bad))
    log = kc.read_log()
    for t in (tok, bad):
        assert t not in log and t.split(".")[2][:20] not in log
        assert "sha256:" + hashlib.sha256(t.encode()).hexdigest()[:8] in log
    assert "bad signature" in log


def test_unusable_identity_values_are_400(kc, issuer, keys):
    """A signed token still cannot carry values glared refuses everywhere
    (control characters, over-long ids, too many roles): 400, as for the
    test flavors' identities."""
    k = keys["rsa"]
    for kw in ({"roles": ["member", "bad\u0001role"]},
               {"sub": "u" * 300},
               {"roles": ["r%d" % i for i in range(100)]}):
        r = get(kc, "/artifacts/images", issuer.token("demo", k, **kw))
        assert r.status_code == 400, (kw, r.text)
        assert r.json()["error"]["type"] == "BadRequest"
    assert get(kc, "/artifacts/images", issuer.token(
        "demo", k, user="fine")).status_code == 200
