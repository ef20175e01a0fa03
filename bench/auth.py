"""Token validation cost (issue #14): µs per request by flavor.

The same request (GET /artifacts/images?limit=1 on an empty sqlite
database) is driven by wrk (bench/wrk.lua, one connection, then four)
against glared in each identity flavor, in one run:

  trusted      the default flavor: X-Auth-Token "user:project:roles" is
               believed - the baseline, no check at all
  keystone hit a Keystone token checked once, then served from the cache
  keystone miss  token_cache_time = -1: Keystone checks every request
               (GET /v3/auth/tokens through curl multi)
  keycloak hit / miss  an OIDC token (RS256, then ES256) whose signature
               glared verifies locally; miss = cache off, so every request
               parses the JWT and verifies the signature with OpenSSL

Keystone is scripts/keystone.sh's (Debian's keystone, uWSGI, sqlite) on
free ports of its own, started and stopped here; the OIDC issuer is
tests/http/oidc_issuer.py (python3-cryptography) in this process. As a
second baseline the Keystone row carries Keystone's own answer time for
the same check, asked directly and sequentially (python http.client).

Every row is measured BENCH_AUTH_ROUNDS times (default 3), the rows
interleaved so that a busy moment of the machine hits all of them, and the
best round is kept.

  /usr/bin/python3 bench/auth.py  (BENCH_AUTH_SECS per wrk run, default 3;
                                   BENCH_AUTH_SLOW_N sequential requests for
                                   the Keystone miss rows, default 20)
"""
import http.client
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in bench/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "http"))
import benchlib as B  # noqa: E402

WRK_LUA = os.path.join(B.ROOT, "bench", "wrk.lua")
PATH = "/artifacts/images?limit=1"


def keystone(cmd, port):
    env = dict(os.environ, GLARED_KEYSTONE_PORT=str(port))
    p = subprocess.run(["sh", os.path.join(B.ROOT, "scripts", "keystone.sh"),
                        cmd], capture_output=True, text=True, env=env,
                       timeout=600)
    if p.returncode != 0:
        raise RuntimeError("keystone.sh %s failed:\n%s" % (cmd, p.stderr))
    return dict(line.split("=", 1) for line in p.stdout.split()
                if "=" in line)


def ks_token(ks, user, project, password):
    c = http.client.HTTPConnection("127.0.0.1",
                                   int(ks["GLARED_KEYSTONE_PORT"]),
                                   timeout=60)
    body = json.dumps({"auth": {"identity": {"methods": ["password"],
                                             "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project,
                              "domain": {"id": "default"}}}}})
    c.request("POST", "/v3/auth/tokens", body=body,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 201:
        raise RuntimeError("Keystone login: %d" % r.status)
    return r.getheader("X-Subject-Token")


def keystone_direct_us(ks, svc, tok, n):
    """Keystone's own time for GET /v3/auth/tokens, sequential."""
    port = int(ks["GLARED_KEYSTONE_PORT"])
    t0 = time.time()
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/v3/auth/tokens?nocatalog",
                  headers={"X-Auth-Token": svc, "X-Subject-Token": tok})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError("Keystone check: %d" % r.status)
    return (time.time() - t0) / n * 1e6


def wrk(name, srv, token, conns, secs, paths_file):
    c0 = B.proc_cpu_seconds(srv.pid)
    p = B.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--timeout",
               "60s", "-s", WRK_LUA, srv.url, "--", "get", paths_file,
               token])
    cpu = B.proc_cpu_seconds(srv.pid) - c0
    for line in p.stdout.splitlines():
        if line.startswith("WRK "):
            r = json.loads(line[4:])
            if r["err_status"] or r["requests"] == 0:
                raise RuntimeError("%s: wrk: %d of %d answers were "
                                   "errors (token refused?)" %
                                   (name, r["err_status"], r["requests"]))
            secs_run = r["duration_us"] / 1e6
            r["rps"] = r["requests"] / secs_run
            r["us"] = 1e6 / r["rps"] * conns
            r["cpu_us"] = cpu / r["requests"] * 1e6
            return r
    raise RuntimeError("wrk failed (%d):\n%s\n%s" % (p.returncode,
                                                     p.stdout, p.stderr))


def sequential_us(port, headers, n, path=PATH):
    """Mean µs of n requests one after the other, a connection each (for
    the slow rows, where a wrk run of a few seconds sees a handful)."""
    t0 = time.time()
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError("GET %s: %d" % (path, r.status))
    return (time.time() - t0) / n * 1e6


def main():
    secs = B.env_float("BENCH_AUTH_SECS", 3)
    rounds = int(B.env_float("BENCH_AUTH_ROUNDS", 3))
    n_slow = int(B.env_float("BENCH_AUTH_SLOW_N", 20))
    d = B.workdir("glared-bench-auth-")
    paths = os.path.join(d, "paths")
    with open(paths, "w") as f:
        f.write(PATH + "\n")
    print("== auth: token validation per flavor, GET %s; wrk -t1, %g s "
          "per run, best of %d interleaved rounds" % (PATH, secs, rounds),
          flush=True)

    port = B.free_port_range(3)
    B.on_exit(lambda: keystone("stop", port))
    B.log("starting Keystone (scripts/keystone.sh) on port %d" % port)
    ks = keystone("start", port)
    from oidc_issuer import Issuer, Key
    issuer = Issuer()
    B.on_exit(issuer.close)
    rsa, ec = Key("RSA"), Key("EC")
    issuer.publish("bench", [rsa, ec])

    # the hit rows keep their entry for the whole run
    ks_opts = {
        "keystone_authtoken.token_cache_time": 7200,
        "paste_deploy.flavor": "keystone",
        "keystone_authtoken.www_authenticate_uri": ks["GLARED_KEYSTONE_URL"],
        "keystone_authtoken.auth_url": ks["GLARED_KEYSTONE_URL"],
        "keystone_authtoken.username": ks["GLARED_KEYSTONE_SERVICE_USER"],
        "keystone_authtoken.password": ks["GLARED_KEYSTONE_SERVICE_PASSWORD"],
        "keystone_authtoken.project_name": "service",
        "keystone_authtoken.user_domain_id": "default",
        "keystone_authtoken.project_domain_id": "default",
    }
    kc_opts = {"paste_deploy.flavor": "keycloak",
               "keycloak_oidc.token_cache_time": 7200,
               "keycloak_oidc.auth_url": issuer.base}
    user_tok = ks_token(ks, "alice", "demo",
                        ks["GLARED_KEYSTONE_USER_PASSWORD"])
    svc_tok = ks_token(ks, ks["GLARED_KEYSTONE_SERVICE_USER"], "service",
                       ks["GLARED_KEYSTONE_SERVICE_PASSWORD"])
    rs = issuer.token("bench", rsa, alg="RS256", lifetime=7200)
    es = issuer.token("bench", ec, alg="ES256", lifetime=7200)
    nocache_ks = dict(ks_opts, **{"keystone_authtoken.token_cache_time": -1})
    nocache_kc = dict(kc_opts, **{"keycloak_oidc.token_cache_time": -1})

    # name, options, token, measured by wrk (else sequentially)
    cases = [
        ("trusted-token (baseline)", {}, B.TOKEN, True),
        ("keystone, cache hit", ks_opts, user_tok, True),
        ("keycloak RS256, cache hit", kc_opts, rs, True),
        ("keycloak RS256, cache miss", nocache_kc, rs, True),
        ("keycloak ES256, cache miss", nocache_kc, es, True),
        ("keystone, cache miss", nocache_ks, user_tok, False),
    ]
    servers = []
    for n, (name, opts, tok, _) in enumerate(cases):
        sd = os.path.join(d, "s%d" % n)
        os.mkdir(sd)
        srv = B.Glared(sd, opts)
        st, _ = srv.request("GET", PATH, headers={"X-Auth-Token": tok})
        if st != 200:
            raise RuntimeError("%s: warm-up request answered %d" % (name, st))
        servers.append(srv)
    best = {}
    for rnd in range(rounds):
        for (name, _, tok, fast), srv in zip(cases, servers):
            if fast:
                one = wrk(name, srv, tok, 1, secs, paths)
                four = wrk(name, srv, tok, 4, secs, paths)
                r = (one["us"], one["cpu_us"], four["rps"], one["requests"])
            else:
                us = sequential_us(srv.port, {"X-Auth-Token": tok}, n_slow)
                r = (us, None, None, n_slow)
            if name not in best or r[0] < best[name][0]:
                best[name] = r
        direct = keystone_direct_us(ks, svc_tok, user_tok, n_slow)
        if "direct" not in best or direct < best["direct"][0]:
            best["direct"] = (direct, None, None, n_slow)
        B.log("round %d of %d done" % (rnd + 1, rounds))
    for srv in servers:
        srv.stop()
    base = best[cases[0][0]][0]
    rows = []
    for name, _, _, _ in cases:
        us, cpu, rps, n = best[name]
        rows.append((name, "%.0f" % us, "%+.0f" % (us - base),
                     "%.0f" % cpu if cpu is not None else "",
                     "%.0f" % rps if rps is not None else "", str(n)))
    us, _, _, n = best["direct"]
    rows.append(("  Keystone itself, the same check", "%.0f" % us, "", "",
                 "", str(n)))
    B.grid("auth: µs per request at 1 connection, over the trusted-token "
           "baseline; glared CPU µs per request; req/s at 4 connections",
           ("flavor", "µs/req", "vs trusted", "srv CPU µs/req",
            "req/s @4", "requests"), rows,
           ["cache miss = token_cache_time -1: every request is checked",
            "fast rows: wrk (bench/wrk.lua); the Keystone miss row and "
            "Keystone's own answer time: %d sequential requests, a "
            "connection each (python http.client)" % n_slow,
            "Keystone: scripts/keystone.sh (uWSGI, 1 process of 4 threads, "
            "sqlite, Keystone's in-memory cache)"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("auth: %s" % e)
        sys.exit(2)
