"""Listing: limit, marker, sort, the filter grammar, dict/list/tags
filters, version ranges, latest, links. Contract: docs/glare-contract.md
"Listing", "Filter values"."""
import urllib.parse

import pytest

from conftest import ADMIN, USER1, USER2, Server

SA = "/artifacts/sample_artifact"


@pytest.fixture(scope="module")
def ls():
    """A server with a known set of sample artifacts (project1)."""
    s = Server()
    arts = []
    data = [
        dict(name="alpha", version="1.0", int1=1, float1=1.5, str1="aaa",
             bool1=True, tags=["a", "b"], list_of_int=[1, 2],
             dict_of_str={"k1": "v1"}, dict_of_int={"x": 5}),
        dict(name="alpha", version="2.0", int1=2, float1=2.5, str1="abc",
             tags=["b"], list_of_int=[3], dict_of_str={"k2": "v2"},
             dict_of_int={"x": 10}),
        dict(name="alpha", version="2.0-beta", int1=3, str1="xyz",
             tags=["c"], dict_of_int={"y": 1}),
        dict(name="beta", version="10-rc1", int1=4, str1="a,b", tags=["a"]),
        dict(name="gamma", version="0.0.1", int1=5, str1="ünï", tags=[]),
    ]
    for d in data:
        r = s.post(SA, d)
        assert r.status_code == 201, r.text
        arts.append(r.json())
    r = s.post(SA, {"name": "other"}, token=USER2)
    assert r.status_code == 201
    s.others = r.json()
    s.arts = arts
    yield s
    s.stop()


def names(r):
    assert r.status_code == 200, r.text
    return [(a["name"], a["version"]) for a in r.json()["artifacts"]]


def q(s, query, token=USER1):
    return s.get(SA + ("?" + query if query else ""), token=token)


def test_list_shape(ls):
    r = q(ls, "")
    body = r.json()
    assert body["type_name"] == "sample_artifact"
    assert body["first"] == SA
    assert body["schema"] == "/schemas/sample_artifact"
    assert body["total_count"] == 5
    assert "next" not in body
    # default sort: newest first
    assert [a["id"] for a in body["artifacts"]] == \
        [a["id"] for a in reversed(ls.arts)]
    assert body["artifacts"][0]["__some_meta_information__"] == "GAMMA"


def test_visibility_scope(ls):
    assert q(ls, "", token=USER2).json()["total_count"] == 1
    assert q(ls, "", token=ADMIN).json()["total_count"] >= 6


def test_limit_and_marker_pagination(ls):
    seen = []
    url = SA + "?limit=2&sort=int1:asc"
    while True:
        r = ls.get(url)
        body = r.json()
        assert body["total_count"] == 5
        seen += [a["int1"] for a in body["artifacts"]]
        if "next" not in body:
            break
        assert len(body["artifacts"]) == 2
        url = body["next"]
        assert "marker=" in url and "limit=2" in url
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("bad", ["limit=-1", "limit=abc", "limit=1.5",
                                 "sort=int1:up", "sort=nope",
                                 "sort=list_of_str", "sort=int1,float1",
                                 "sort=description"])
def test_bad_list_params_400(ls, bad):
    assert q(ls, bad).status_code == 400


def test_limit_zero_and_cap(ls):
    body = q(ls, "limit=0").json()
    assert body["artifacts"] == [] and body["total_count"] == 5
    assert q(ls, "limit=5000").status_code == 200


def test_marker_not_visible_404(ls):
    assert q(ls, "marker=" + ls.others["id"]).status_code == 404
    assert q(ls, "marker=00000000-0000-0000-0000-000000000000").status_code \
        == 404


def test_sort_keys(ls):
    assert names(q(ls, "sort=name:asc,version:asc")) == [
        ("alpha", "1.0.0"), ("alpha", "2.0.0-beta"), ("alpha", "2.0.0"),
        ("beta", "10.0.0-rc1"), ("gamma", "0.0.1")]
    assert [a["int1"] for a in q(ls, "sort=int1").json()["artifacts"]] == \
        [5, 4, 3, 2, 1]
    # custom sort key hides nulls (float1 set on two only)
    body = q(ls, "sort=float1:asc").json()
    assert [a["float1"] for a in body["artifacts"]] == [1.5, 2.5]


@pytest.mark.parametrize("query,expect", [
    ("name=alpha", 3), ("name=eq:alpha", 3), ("name=neq:alpha", 2),
    ("name=in:alpha,beta", 4), ("name=like:al%", 3), ("name=like:%mm%", 1),
    ("int1=gt:3", 2), ("int1=gte:3", 3), ("int1=lt:2", 1), ("int1=lte:2", 2),
    ("int1=in:1,5,9", 2), ("int1=neq:1", 4),
    ("float1=gt:2", 1), ("bool1=true", 1), ("bool1=false", 4),
    ("str1=in:\"a,b\",xyz", 2), ("str1=like:a%", 3),
    ("version=gte:2.0.0", 2), ("version=lt:2.0.1-beta", 4),
    ("version=in:0.0.1,10-rc1", 2), ("version=2.0", 1),
    ("name=alpha&int1=gt:1", 2),
    ("name=or:beta&int1=or:1", 2),
    ("name=or:beta&name=or:gamma&int1=gt:4", 1),
    ("list_of_int=3", 1), ("list_of_int=in:1,3", 2),
    ("dict_of_str=k1", 1), ("dict_of_str=in:k1,k2", 2),
    ("dict_of_int.x=5", 1), ("dict_of_int.x=in:5,10", 2),
    ("dict_of_int.y=1", 1),
    ("tags=b", 2), ("tags=a,b", 1), ("tags-any=a,c", 3), ("tags=", 5),
    ("status=drafted", 5), ("visibility=private", 5),
    ("owner=project1", 5), ("str1=ünï", 1),
    ("created_at=gt:2000-01-01T00:00:00Z", 5),
    ("created_at=lt:2000-01-01T00:00:00", 0),
])
def test_filters(ls, query, expect):
    r = q(ls, query)
    assert r.status_code == 200, (query, r.text)
    assert r.json()["total_count"] == expect, query


@pytest.mark.parametrize("query", [
    "nope=1", "int1=abc", "int1=like:1", "bool1=gt:true", "name=bla:x",
    "name=or:blah:t", "visibility=blabla", "name=", "status=gt:active",
    "description=x", "blob=x", "dict_of_blobs=x", "dict_of_str=neq:k1",
    "int1.x=1", "tags=eq:a", "dict_of_int.x=gte:5", "str1=in:\"a,b", "str1=in:a\"b\"",
    "created_at=eq:2017-01-01T00:00:00Z", "created_at=gt:notadate",
    "int_validators=5",
    # the operators a list or dict field declares (Glare's sample_artifact)
    "list_of_int=gt:1", "list_of_str=neq:a", "list_validators=a",
])
def test_bad_filters_400(ls, query):
    assert q(ls, query).status_code == 400, query


def test_latest(ls):
    assert names(q(ls, "version=latest&sort=name:asc")) == [
        ("alpha", "2.0.0"), ("beta", "10.0.0-rc1"), ("gamma", "0.0.1")]
    # other filters apply before the maximum is picked
    assert names(q(ls, "version=latest&int1=lt:2")) == [("alpha", "1.0.0")]
    assert q(ls, "version=latest").json()["total_count"] == 3


def test_links_keep_query_and_encode(ls):
    r = q(ls, "name=in:alpha,beta&limit=1&str1=neq:%C3%BC")
    body = r.json()
    first = body["first"]
    assert first.startswith(SA + "?")
    parsed = urllib.parse.parse_qs(urllib.parse.urlparse(first).query)
    assert parsed["name"] == ["in:alpha,beta"]
    assert parsed["str1"] == ["neq:ü"]
    assert "marker" not in parsed
    nxt = urllib.parse.parse_qs(urllib.parse.urlparse(body["next"]).query)
    assert nxt["marker"] == [body["artifacts"][0]["id"]]


def test_list_all_type(ls):
    r = ls.get("/artifacts/all?name=alpha")
    body = r.json()
    assert body["type_name"] == "all" and body["total_count"] == 3
    a = body["artifacts"][0]
    assert a["type_name"] == "sample_artifact" and "int1" not in a
    assert a["__some_meta_information__"] == "ALPHA"
    assert ls.get("/artifacts/all?type_name=sample_artifact&name=alpha") \
        .json()["total_count"] == 3
    assert ls.get("/artifacts/all?int1=1").status_code == 400


def test_deleted_hidden_from_lists(ls):
    r = ls.post(SA, {"name": "ephemeral"})
    ls.delete("%s/%s" % (SA, r.json()["id"]))
    assert q(ls, "name=ephemeral").json()["total_count"] == 0


def test_unknown_type_404(ls):
    assert ls.get("/artifacts/nothing").status_code == 404
