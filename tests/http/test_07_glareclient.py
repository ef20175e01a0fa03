"""python-glareclient (Debian's `glare` CLI, trusted-token flavor) against
glared: the wire format is Glare's, so the stock client works unchanged."""
import json
import os
import subprocess

import requests

from conftest import USER1

GLARE = "/usr/bin/glare"


def cli(server, *args):
    p = subprocess.run([GLARE, "--os-glare-url", server.url, "--auth-token",
                        USER1] + list(args), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_type_list(server):
    out = cli(server, "type-list", "-f", "json")
    names = {t["Name"] if isinstance(t, dict) else t[0]
             for t in json.loads(out)}
    assert {"images", "sample_artifact", "heat_templates"} <= names


def test_create_show_list(server, uniq):
    name = uniq("cli")
    out = json.loads(cli(server, "create", "images", name,
                         "--artifact-version", "1.2", "--property",
                         "min_ram=512", "-f", "json"))
    props = {p["Field"]: p["Value"] for p in out} if isinstance(out, list) \
        else out
    aid = props["id"]
    r = requests.get(server.url + "/artifacts/images/" + aid,
                     headers={"X-Auth-Token": USER1}).json()
    assert r["name"] == name and r["version"] == "1.2.0" and r["min_ram"] == 512
    show = cli(server, "show", "images", aid, "--id", "-f", "json")
    assert name in show
    lst = cli(server, "list", "images", "-f", "json")
    assert aid in lst


def test_upload_then_download_with_curl(server, uniq, tmp_path):
    name = uniq("up")
    out = json.loads(cli(server, "create", "images", name, "-f", "json"))
    props = {p["Field"]: p["Value"] for p in out} if isinstance(out, list) \
        else out
    aid = props["id"]
    f = tmp_path / "payload.bin"
    data = os.urandom(50000)
    f.write_bytes(data)
    cli(server, "upload", "images", aid, "--id", "--file", str(f),
        "--blob-property", "image")
    got = tmp_path / "got.bin"
    p = subprocess.run(["curl", "-sf", "-H", "X-Auth-Token: " + USER1, "-o",
                        str(got), "%s/artifacts/images/%s/image" %
                        (server.url, aid)], timeout=60)
    assert p.returncode == 0
    assert got.read_bytes() == data


def test_update_location_and_delete(make_server, uniq):
    # images take locations on trust here, as in Glare: nothing is fetched
    s = make_server({"artifact_type:images.external_location_verification":
                     "trust"})
    out = json.loads(cli(s, "create", "images", uniq("loc"), "-f", "json"))
    aid = ({p["Field"]: p["Value"] for p in out} if isinstance(out, list)
           else out)["id"]
    url = s.url + "/artifacts/images/" + aid
    h = {"X-Auth-Token": USER1}
    cli(s, "update", "images", aid, "--id", "--property", "min_ram=64",
        "-f", "json")
    assert requests.get(url, headers=h).json()["min_ram"] == 64
    out = cli(s, "location", "images", aid, "--id", "--url",
              "http://images.invalid/disk.qcow2", "--md5", "0" * 32,
              "-f", "json")
    assert "images.invalid" in out
    image = requests.get(url, headers=h).json()["image"]
    assert image["external"] is True and image["md5"] == "0" * 32
    # remove-location through the library: the CLI command itself fails
    # formatting its (empty) result after the call succeeded
    from glareclient import client
    gc = client.Client("1", endpoint=s.url, auth_token=USER1)
    gc.artifacts.remove_external_location(aid, "image", type_name="images")
    assert requests.get(url, headers=h).json()["image"] is None
    cli(s, "delete", "images", aid, "--id")
    assert requests.get(url, headers=h).status_code == 404
