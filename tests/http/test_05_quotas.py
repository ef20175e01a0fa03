"""Quotas: static (config) and dynamic (PUT /quotas), artifact count and
uploaded data. Contract: docs/glare-contract.md "Quotas", E13-E16."""
import pytest

from conftest import ADMIN, USER1, USER2

SA = "/artifacts/sample_artifact"


def put_quotas(s, body, token=ADMIN):
    return s.req("PUT", "/quotas", json=body, token=token,
                 headers={"Content-Type": "application/json"})


def test_static_count_quota(make_server, uniq):
    s = make_server({"max_artifact_number": 2,
                     "artifact_type:images.max_artifact_number": 1})
    assert s.post(SA, {"name": uniq()}).status_code == 201
    assert s.post("/artifacts/images", {"name": uniq()}).status_code == 201
    r = s.post("/artifacts/images", {"name": uniq()})
    assert r.status_code == 403, r.text                 # type limit
    r = s.post(SA, {"name": uniq()})
    assert r.status_code == 403                         # global limit
    assert s.post(SA, {"name": uniq()}, token=USER2).status_code == 201


def test_quota_api(make_server, uniq):
    s = make_server({"max_uploaded_data": 1000})
    body = [{"project_id": "project1", "project_quotas": [
        {"quota_name": "max_artifact_number", "quota_value": 1},
        {"quota_name": "max_uploaded_data:images", "quota_value": 500}]}]
    r = put_quotas(s, body)
    assert r.status_code == 200 and r.json() is None
    assert s.post(SA, {"name": uniq()}).status_code == 201
    assert s.post(SA, {"name": uniq()}).status_code == 403
    r = s.get("/quotas", token=ADMIN)
    assert r.status_code == 200
    got = r.json()
    assert got["global_quotas"] == {"max_artifact_number": -1,
                                    "max_uploaded_data": 1000}
    assert got["quotas"] == [{"project_id": "project1", "project_quotas": [
        {"quota_name": "max_artifact_number", "quota_value": 1},
        {"quota_name": "max_uploaded_data:images", "quota_value": 500}]}]
    r = s.get("/project-quotas")
    pq = {q["quota_name"]: q["quota_value"]
          for q in r.json()[0]["project_quotas"]}
    assert r.json()[0]["project_id"] == "project1"
    assert pq == {"max_artifact_number": 1, "max_uploaded_data": 1000,
                  "max_uploaded_data:images": 500}
    # replace: the listed project's quotas are all replaced
    put_quotas(s, [{"project_id": "project1", "project_quotas": [
        {"quota_name": "max_artifact_number", "quota_value": 5}]}])
    got = s.get("/quotas", token=ADMIN).json()["quotas"]
    assert got == [{"project_id": "project1", "project_quotas": [
        {"quota_name": "max_artifact_number", "quota_value": 5}]}]
    assert s.post(SA, {"name": uniq()}).status_code == 201


def test_quota_api_access(server):
    assert put_quotas(server, [], token=USER1).status_code == 403
    assert server.get("/quotas", token=USER1).status_code == 403
    assert server.get("/project-quotas/project2", token=USER1).status_code \
        == 403
    assert server.get("/project-quotas/project2", token=ADMIN).status_code \
        == 200
    r = server.req("PUT", "/quotas", data=b"[]", token=ADMIN,
                   headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


@pytest.mark.parametrize("body", [
    {}, [{}], [{"project_id": "", "project_quotas": []}],
    [{"project_id": "p" * 256, "project_quotas": []}],
    [{"project_id": "p", "project_quotas": [{"quota_name": "a:b:c",
                                             "quota_value": 1}]}],
    [{"project_id": "p", "project_quotas": [{"quota_name": "x",
                                             "quota_value": -2}]}],
    [{"project_id": "p", "project_quotas": [{"quota_name": "x",
                                             "quota_value": "1"}]}],
    [{"project_id": "p", "project_quotas": [{"quota_name": "",
                                             "quota_value": 1}]}],
    [{"project_id": "p", "project_quotas": [], "extra": 1}],
])
def test_quota_body_validation(server, body):
    assert put_quotas(server, body).status_code == 400
