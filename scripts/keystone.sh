#!/bin/sh
# keystone.sh start|stop|down|up|status|env - a throwaway Keystone for tests.
#
#   scripts/keystone.sh start   set up (first time) and serve Keystone v3 on
#                               127.0.0.1:$GLARED_KEYSTONE_PORT (default
#                               55357); print the env lines below
#   scripts/keystone.sh env     print the settings, one VAR=value a line:
#       GLARED_KEYSTONE_URL=http://127.0.0.1:55357/v3
#       GLARED_KEYSTONE_PORT=55357
#       GLARED_KEYSTONE_GLARE_PORT=55358   the catalog's artifact endpoint
#       GLARED_KEYSTONE_ADMIN_PASSWORD=...  user admin, project admin
#       GLARED_KEYSTONE_SERVICE_USER=glared, ..._SERVICE_PASSWORD=...
#                                          (role service in project service)
#       GLARED_KEYSTONE_USER_PASSWORD=...  alice (member of demo), bob
#                                          (reader of demo), carol (member
#                                          of other)
#       GLARED_KEYSTONE_SHORT_URL=http://127.0.0.1:55359/v3  the same
#                                          Keystone, but the tokens it
#                                          issues end after 8 s (expiry
#                                          tests)
#   scripts/keystone.sh down    stop the (main) server, keep its data
#                               (outage tests)
#   scripts/keystone.sh up      serve the kept data again
#   scripts/keystone.sh status  exit 0 if it answers
#   scripts/keystone.sh stop    stop it (by PID) and remove its directory
#
# Typical use:  set -a; eval "$(scripts/keystone.sh start)"; set +a
#
# Debian's keystone package, its own configuration in
# /tmp/glared-keystone-$PORT: sqlite in WAL mode (in the default rollback
# mode Keystone's writes fail with "database is locked" as soon as two
# requests overlap), fernet tokens, Keystone's in-memory cache (without
# one a token check runs ~400 SQL queries: seconds on a busy machine; in
# memory it needs one server process, 4 threads, so that revocations and
# the cache agree), bcrypt at its lowest cost (every password login pays
# for one hash: 4 rounds instead of 12 make the tests' logins fast), served
# by uWSGI on loopback; its plain http-socket cannot keep connections
# alive, so every answer says "Connection: close" rather than resetting a
# client's next request.
# `keystone-manage bootstrap` makes the admin user, the admin / member /
# reader roles (admin implies member implies reader) and the identity
# service with public, internal and admin endpoints (clients and auth_token
# look the internal one up); the rest is made through the API: the service
# role and user glared's [keystone_authtoken] logs in as, the projects demo
# and other and their users, and an "artifact" service whose endpoints
# point at 127.0.0.1:$GLARED_KEYSTONE_GLARE_PORT, where the identity tests
# run their glared. Ready in about 10-20 s; the database, keys and
# entities are made once, so down/up take about 3 s.
#
# Idempotent: start on a running Keystone prints the settings; stop on a
# stopped one does nothing. No systemd: uWSGI runs under setsid with a PID
# file and is stopped by that PID. Installs the Debian packages if missing.
set -eu

PORT=${GLARED_KEYSTONE_PORT:-55357}
GLARE_PORT=${GLARED_KEYSTONE_GLARE_PORT:-$((PORT + 1))}
SHORT_PORT=${GLARED_KEYSTONE_SHORT_PORT:-$((PORT + 2))}
DIR=/tmp/glared-keystone-$PORT
URL="http://127.0.0.1:$PORT/v3"
SHORT_URL="http://127.0.0.1:$SHORT_PORT/v3"
ADMIN_PW=admin-secret
SERVICE_PW=glared-secret
USER_PW=user-secret
PKGS="keystone uwsgi-plugin-python3 python3-requests sqlite3"
PY=/usr/bin/python3

say() { echo "keystone.sh: $*" >&2; }
# shellcheck source=scripts/svc-lib.sh
. "$(dirname "$0")/svc-lib.sh"

env_lines() {
	echo "GLARED_KEYSTONE_URL=$URL"
	echo "GLARED_KEYSTONE_PORT=$PORT"
	echo "GLARED_KEYSTONE_GLARE_PORT=$GLARE_PORT"
	echo "GLARED_KEYSTONE_ADMIN_PASSWORD=$ADMIN_PW"
	echo "GLARED_KEYSTONE_SERVICE_USER=glared"
	echo "GLARED_KEYSTONE_SERVICE_PASSWORD=$SERVICE_PW"
	echo "GLARED_KEYSTONE_USER_PASSWORD=$USER_PW"
	echo "GLARED_KEYSTONE_SHORT_URL=$SHORT_URL"
}

alive() { # [name]
	f="$DIR/${1:-uwsgi}.pid"
	[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

answers() { # [url]
	curl -fs -o /dev/null "${1:-$URL}"
}

# keystone-manage, quiet unless it fails (its logging prints tracebacks
# at interpreter exit that mean nothing)
manage() {
	if ! keystone-manage --config-file "$DIR/keystone.conf" "$@" \
		>"$DIR/manage-$1.log" 2>&1; then
		say "keystone-manage $1 failed:"
		grep -v '^ \|^Traceback\|^AttributeError\|^Exception ignored' \
			"$DIR/manage-$1.log" | tail -n 20 >&2
		return 1
	fi
}

setup() {
	me=$(id -un)
	grp=$(id -gn)
	mkdir -p "$DIR/fernet-keys" "$DIR/credential-keys" \
		"$DIR/fernet-receipts"
	cat >"$DIR/keystone.conf" <<EOF
[DEFAULT]
use_stderr = true
log_file =
[database]
connection = sqlite:///$DIR/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $DIR/fernet-keys
[fernet_receipts]
key_repository = $DIR/fernet-receipts
[credential]
key_repository = $DIR/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
[identity]
password_hash_rounds = 4
EOF
	# the second server: same database and keys, 8-second tokens
	sed 's/^expiration = 3600$/expiration = 8/' "$DIR/keystone.conf" \
		>"$DIR/keystone-short.conf"
	# WAL is a property of the database file: set before the schema
	sqlite3 "$DIR/keystone.db" 'PRAGMA journal_mode=WAL;' >/dev/null
	# independent: one interpreter start each, side by side
	manage db_sync &
	p1=$!
	manage fernet_setup --keystone-user "$me" --keystone-group "$grp" &
	p2=$!
	manage credential_setup --keystone-user "$me" --keystone-group "$grp" &
	p3=$!
	ok=1
	for p in $p1 $p2 $p3; do
		wait "$p" || ok=0
	done
	[ "$ok" = 1 ] || return 1
	manage bootstrap --bootstrap-password "$ADMIN_PW" \
		--bootstrap-username admin --bootstrap-project-name admin \
		--bootstrap-role-name admin --bootstrap-service-name keystone \
		--bootstrap-region-id RegionOne \
		--bootstrap-admin-url "$URL" --bootstrap-internal-url "$URL" \
		--bootstrap-public-url "$URL"
}

serve() { # name conf port
	OS_KEYSTONE_CONFIG_FILES="$DIR/$2" setsid uwsgi \
		--plugin python3 --http-socket "127.0.0.1:$3" \
		--wsgi-file /usr/bin/keystone-wsgi-public --master \
		--processes 1 --threads 4 --die-on-term --disable-logging \
		--add-header "Connection: close" --buffer-size 32768 \
		--pidfile "$DIR/$1.pid" \
		</dev/null >>"$DIR/$1.log" 2>&1 &
}

launch() { # [main]: the main server only
	serve uwsgi keystone.conf "$PORT"
	[ -n "${1:-}" ] || alive short || serve short keystone-short.conf \
		"$SHORT_PORT"
	if ! wait_for 600 answers; then
		say "Keystone did not come up; its log:"
		tail -n 30 "$DIR/uwsgi.log" >&2
		return 1
	fi
	[ -n "${1:-}" ] && return 0
	if ! wait_for 600 answers "$SHORT_URL"; then
		say "the short-token Keystone did not come up; its log:"
		tail -n 30 "$DIR/short.log" >&2
		return 1
	fi
}

# Projects, users, roles and the artifact service, through the API.
populate() {
	$PY - "$URL" "$ADMIN_PW" "$SERVICE_PW" "$USER_PW" "$GLARE_PORT" <<'EOF'
import sys
import requests

url, admin_pw, service_pw, user_pw, glare_port = sys.argv[1:6]
s = requests.Session()
auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": admin_pw}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
r = s.post(url + "/auth/tokens", json=auth, timeout=30)
r.raise_for_status()
s.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]

def make(kind, key, body):
    r = s.post("%s/%s" % (url, kind), json={key: body}, timeout=30)
    r.raise_for_status()
    return r.json()[key]["id"]

def role_id(name):
    r = s.get(url + "/roles", params={"name": name}, timeout=30)
    r.raise_for_status()
    roles = r.json()["roles"]
    return roles[0]["id"] if roles else make("roles", "role",
                                             {"name": name})

def grant(project, user, role):
    s.put("%s/projects/%s/users/%s/roles/%s" % (url, project, user, role),
          timeout=30).raise_for_status()

roles = {n: role_id(n) for n in ("admin", "member", "reader", "service")}
projects = {n: make("projects", "project", {"name": n, "domain_id": "default"})
            for n in ("service", "demo", "other")}
for name, pw, project, role in (("glared", service_pw, "service", "service"),
                                ("alice", user_pw, "demo", "member"),
                                ("bob", user_pw, "demo", "reader"),
                                ("carol", user_pw, "other", "member")):
    uid = make("users", "user", {"name": name, "password": pw,
                                 "domain_id": "default"})
    grant(projects[project], uid, roles[role])
svc = make("services", "service", {"name": "glare", "type": "artifact"})
for itf in ("public", "internal", "admin"):
    make("endpoints", "endpoint", {
        "service_id": svc, "interface": itf, "region_id": "RegionOne",
        "url": "http://127.0.0.1:%s" % glare_port})
EOF
}

stop_server() { # [name port]
	name=${1:-uwsgi}
	[ -f "$DIR/$name.pid" ] || return 0
	kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
	reap "$DIR/$name.pid" 100
	# the port is closed when the function returns
	wait_for 50 port_free "${2:-$PORT}" || true
}

stop_all() {
	stop_server
	stop_server short "$SHORT_PORT"
}

start() {
	if [ -f "$DIR/ready" ] && alive && answers && alive short &&
		answers "$SHORT_URL"; then
		env_lines
		return 0
	fi
	if [ -f "$DIR/ready" ]; then
		stop_all
		launch
		env_lines
		return 0
	fi
	# a half-made earlier run: clear it
	stop_all
	rm -rf "$DIR"
	install_missing
	for p in $PORT $SHORT_PORT; do
		port_free "$p" || {
			say "port $p is in use (set GLARED_KEYSTONE_PORT)"
			exit 1
		}
	done
	mkdir -p "$DIR"
	setup || exit 1
	launch || exit 1
	if ! populate >"$DIR/populate.log" 2>&1; then
		say "cannot create the test entities:"
		tail -n 20 "$DIR/populate.log" >&2
		exit 1
	fi
	touch "$DIR/ready"
	env_lines
}

case "${1:-}" in
start)
	start
	;;
stop)
	stop_all
	rm -rf "$DIR"
	;;
down)
	stop_server
	;;
up)
	[ -f "$DIR/ready" ] || { say "not set up (run start)"; exit 1; }
	alive && answers && exit 0
	launch main
	;;
status)
	alive && answers
	;;
env)
	env_lines
	;;
*)
	echo "usage: scripts/keystone.sh start|stop|down|up|status|env" >&2
	exit 2
	;;
esac
