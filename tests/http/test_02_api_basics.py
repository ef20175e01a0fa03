"""API basics: versions, negotiation, fault format, request ids,
healthcheck, authentication flavors, router, policy file."""
import json
import os
import re

import requests

from conftest import ADMIN, USER1, raw, status_of

RID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                 r"[0-9a-f]{12}$")


def check_fault(r, code, etype=None):
    assert r.status_code == code
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["code"] == code
    assert body["title"] == r.reason
    assert isinstance(body["explanation"], str) and body["explanation"]
    assert isinstance(body["error"]["message"], str)
    if etype:
        assert body["error"]["type"] == etype
    return body


def test_versions_document(server):
    for path in ("/", "/versions"):
        r = requests.get(server.url + path)   # no auth needed
        assert r.status_code == 300
        vs = r.json()["versions"]
        assert [(v["version"], v["status"]) for v in vs] == \
            [("1.0", "STABLE"), ("1.1", "EXPERIMENTAL")]
        for v in vs:
            assert v["media-type"] == \
                "application/vnd.openstack.artifacts-" + v["version"]
            assert v["links"] == [{"rel": "describedby", "type": "text/html",
                                   "href": "http://docs.openstack.org/"}]


def test_versions_wrong_method_405(server):
    r = requests.post(server.url + "/versions")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"


def test_request_id_on_every_response(server):
    for r in (requests.get(server.url + "/versions"),
              requests.get(server.url + "/healthcheck"),
              requests.get(server.url + "/artifacts/images"),     # 401
              server.get("/nowhere")):                             # 404
        assert RID.match(r.headers["x-openstack-request-id"])
    a = server.get("/schemas").headers["x-openstack-request-id"]
    b = server.get("/schemas").headers["x-openstack-request-id"]
    assert a != b


def test_default_version_headers(server):
    r = server.get("/schemas")
    assert r.headers["OpenStack-API-Version"] == "artifact 1.0"
    assert r.headers["Vary"] == "OpenStack-API-Version"


def test_version_via_accept(server):
    r = server.get("/schemas", headers={
        "Accept": "application/vnd.openstack.artifacts-1.1"})
    assert r.headers["OpenStack-API-Version"] == "artifact 1.1"
    r = server.get("/schemas", headers={
        "Accept": "application/vnd.openstack.artifacts-latest"})
    assert r.headers["OpenStack-API-Version"] == "artifact 1.1"


def test_version_via_microversion_header(server):
    r = server.get("/schemas", headers={
        "OpenStack-API-Version": "artifact 1.1"})
    assert r.headers["OpenStack-API-Version"] == "artifact 1.1"
    r = server.get("/schemas", headers={
        "OpenStack-API-Version": "compute 2.1, artifact latest"})
    assert r.headers["OpenStack-API-Version"] == "artifact 1.1"
    # another service only: default
    r = server.get("/schemas", headers={
        "OpenStack-API-Version": "compute 2.1"})
    assert r.headers["OpenStack-API-Version"] == "artifact 1.0"


def test_accept_wins_over_header(server):
    r = server.get("/schemas", headers={
        "Accept": "application/vnd.openstack.artifacts-1.0",
        "OpenStack-API-Version": "artifact 1.1"})
    assert r.headers["OpenStack-API-Version"] == "artifact 1.0"


def test_malformed_version_400(server):
    for v in ("1", "1.01", "01.0", "abc", "1.0.0", "0.9"):
        r = server.get("/schemas", headers={
            "OpenStack-API-Version": "artifact " + v})
        check_fault(r, 400)


def test_out_of_range_version_406(server):
    for v in ("1.2", "2.0", "9.9"):
        r = server.get("/schemas", headers={
            "Accept": "application/vnd.openstack.artifacts-" + v})
        body = check_fault(r, 406, "InvalidGlobalAPIVersion")
        assert body["min_version"] == "1.0"
        assert body["max_version"] == "1.1"


def test_versions_answered_before_negotiation(server):
    r = requests.get(server.url + "/versions", headers={
        "OpenStack-API-Version": "artifact 7.7"})
    assert r.status_code == 300


def test_healthcheck(make_server):
    s = make_server()
    r = requests.get(s.url + "/healthcheck")
    assert r.status_code == 200 and r.text == "OK"
    flag = s.options["healthcheck.disable_by_file_path"]
    open(flag, "w").close()
    r = requests.get(s.url + "/healthcheck")
    assert r.status_code == 503
    os.unlink(flag)
    assert requests.get(s.url + "/healthcheck").status_code == 200


def test_router_unknown_path_404(server):
    for p in ("/nope", "/artifacts", "/schemas/a/b", "/artifacts//x",
              "/quotas/x"):
        check_fault(server.get(p), 404)


def test_router_wrong_method_405_with_allow(server):
    cases = {
        ("PUT", "/artifacts/images"): "GET, HEAD, POST",
        ("POST", "/artifacts/images/x"): "GET, HEAD, PATCH, DELETE",
        ("POST", "/artifacts/images/x/image"): "GET, HEAD, PUT, DELETE",
        ("DELETE", "/schemas"): "GET, HEAD",
        ("POST", "/quotas"): "GET, HEAD, PUT",
        ("PUT", "/project-quotas"): "GET, HEAD",
        ("OPTIONS", "/artifacts/images"): "GET, HEAD, POST",
    }
    for (m, p), allow in cases.items():
        r = server.req(m, p)
        check_fault(r, 405)
        assert r.headers["Allow"] == allow, (m, p)


def test_router_unknown_verb_on_unknown_path_501(server):
    r = server.req("OPTIONS", "/nope")
    check_fault(r, 501)


def test_trusted_auth_token_formats(server):
    r = requests.get(server.url + "/schemas")
    assert check_fault(r, 401)["error"]["message"] == \
        "Auth token must be provided"
    for bad in ("justuser", "a:b", "a:b:c:d"):
        r = server.get("/schemas", token=bad)
        check_fault(r, 401)
        assert "user:tenant:roles" in r.json()["error"]["message"]
    r = server.get("/schemas", token="user::admin")
    assert "Tenant must be specified" in check_fault(r, 401)["error"]["message"]
    # tenant "none" is anonymous: refused unless anonymous access is on
    check_fault(server.get("/schemas", token="u:none:admin"), 401)
    assert server.get("/schemas", token="u:p:member ").status_code == 200


def test_anonymous_access(make_server):
    s = make_server({"allow_anonymous_access": True})
    # trusted auth needs a token even then; tenant "none" is anonymous
    check_fault(requests.get(s.url + "/schemas"), 401)
    assert s.get("/schemas", token="u:none:").status_code == 200
    r = s.post("/artifacts/images", {"name": "x"}, token="u:none:")
    check_fault(r, 403)


def test_noauth_flavor_headers(make_server):
    s = make_server({"paste_deploy.flavor": "noauth"})
    h = {"X-Identity-Status": "Confirmed", "X-User-Id": "u1",
         "X-Project-Id": "p1", "X-Roles": "member"}
    assert s.get("/schemas", token=None, headers=h).status_code == 200
    h2 = dict(h, **{"X-Identity-Status": "Invalid"})
    check_fault(s.get("/schemas", token=None, headers=h2), 401)
    # legacy X-Tenant-Id
    h3 = {"X-Identity-Status": "Confirmed", "X-User-Id": "u1",
          "X-Tenant-Id": "p1", "X-Roles": "member"}
    assert s.get("/schemas", token=None, headers=h3).status_code == 200


def test_policy_file_override_json(make_server, tmp_path):
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({"artifact:type_list": "role:reader"}))
    s = make_server({"oslo_policy.policy_file": str(pol)})
    r = s.get("/schemas", token="u:p:member")
    body = check_fault(r, 403, "PolicyException")
    assert body["error"]["message"] == \
        "Policy check for artifact:type_list failed with user credentials."
    assert s.get("/schemas", token="u:p:Reader").status_code == 200


def test_policy_file_override_yaml(make_server, tmp_path):
    pol = tmp_path / "policy.yaml"
    pol.write_text("# only admins may list types\n"
                   "\"artifact:type_list\": \"rule:context_is_admin\"\n")
    s = make_server({"oslo_policy.policy_file": str(pol)})
    check_fault(s.get("/schemas", token="u:p:member"), 403)
    assert s.get("/schemas", token="u:p:ADMIN").status_code == 200


def test_bad_policy_file_stops_startup(tmp_path):
    import subprocess
    from conftest import GLARED, Server, write_conf
    srv = Server(wait=False)
    srv.stop()
    pol = tmp_path / "policy.json"
    pol.write_text('{"artifact:create": "role:a and (role:b"}')
    opts = dict(srv.options)
    opts["oslo_policy.policy_file"] = str(pol)
    write_conf(srv.conf, opts)
    p = subprocess.run([GLARED, "serve", "--config-file", srv.conf],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "artifact:create" in p.stderr


def test_errors_keep_server_serving(server):
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
                 b"POST /artifacts/images HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        out = raw(server.port, junk)
        assert status_of(out) in (400, 401, 404, 501) or out == b""
    assert requests.get(server.url + "/healthcheck").status_code == 200


def test_believing_flavors_warn_beyond_loopback(tmp_path):
    """The trusted-token and noauth flavors shout when they listen beyond
    loopback, first thing at start-up. 127.0.0.1:P is held here, so glared's
    bind of 0.0.0.0:P fails: nothing ever listens outside loopback."""
    import socket
    import subprocess
    from conftest import GLARED, Server, write_conf
    srv = Server(wait=False)
    srv.stop()
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    port = hold.getsockname()[1]
    try:
        for flavor, loud in (("", True), ("trusted-auth", True),
                             ("noauth", True), ("keycloak", False)):
            opts = dict(srv.options)
            opts["paste_deploy.flavor"] = flavor
            write_conf(srv.conf, opts)
            p = subprocess.run([GLARED, "serve", "--config-file", srv.conf,
                                "--host", "0.0.0.0", "--port", str(port)],
                               capture_output=True, text=True, timeout=20)
            assert p.returncode != 0, p.stderr   # the bind failed
            assert ("INSECURE: listening on 0.0.0.0" in p.stderr) == loud, \
                (flavor, p.stderr)
    finally:
        hold.close()
    # an unknown flavor is a configuration error, not trusted-token
    opts = dict(srv.options)
    opts["paste_deploy.flavor"] = "keystone-typo"
    write_conf(srv.conf, opts)
    p = subprocess.run([GLARED, "serve", "--config-file", srv.conf],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "flavor" in p.stderr


def test_no_warning_on_loopback(server):
    assert "INSECURE" not in server.read_log()
