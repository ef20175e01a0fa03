#!/bin/sh
# s3.sh start|stop|status|env - a throwaway S3 endpoint for tests.
#
#   scripts/s3.sh start    start OpenStack Swift with its S3 API (s3api) on
#                          127.0.0.1:$GLARED_S3_PORT (default 57480), create
#                          the bucket "glared", print the env lines below
#   scripts/s3.sh env      print the settings, one VAR=value a line:
#                          GLARED_S3_ENDPOINT=http://127.0.0.1:57480
#                          GLARED_S3_REGION=us-east-1
#                          GLARED_S3_BUCKET=glared
#                          GLARED_S3_ACCESS_KEY=test:tester
#                          GLARED_S3_SECRET_KEY=testing
#   scripts/s3.sh status   exit 0 if it runs
#   scripts/s3.sh stop     stop it (by PID) and remove its state directory
#
# Typical use:  set -a; eval "$(scripts/s3.sh start)"; set +a
#               build/unit-tests s3
#
# Why Swift and not Ceph RGW: both come from Debian packages and both run
# glared's multipart uploads byte-identically, but on this machine class
# Swift is ready in about 5 s against about 18 s for a monitor, an OSD and
# radosgw (plus the first pool), and has fewer ways to hang (radosgw waits
# 300 s on an auth mismatch). Swift uses more memory (~260 MiB).
#
# One replica, one device, the proxy, object, container and account
# servers in one process each (workers = 0), memcached for the proxy, and
# tempauth for users: the S3 access key is "account:user", so it contains
# a ':' (the client must set user and password separately). Ports:
# proxy P, object P+1, container P+2, account P+3, memcached P+4.
#
# Idempotent: start on a running endpoint only makes sure the bucket
# exists; stop on a stopped one does nothing. No systemd (package scripts
# do not start services here): daemons run under setsid with PID files and
# are stopped by those PIDs. Everything lives in /tmp/glared-s3-$PORT.
# Installs the Debian packages if they are missing (see PKGS).
set -eu

PORT=${GLARED_S3_PORT:-57480}
DIR=/tmp/glared-s3-$PORT
REGION=us-east-1
BUCKET=glared
ACCOUNT="test"
USER_=tester
KEY=testing
PKGS="swift swift-proxy swift-object swift-account swift-container memcached"
DAEMONS="memcached object container account proxy"

say() { echo "s3.sh: $*" >&2; }
# shellcheck source=scripts/svc-lib.sh
. "$(dirname "$0")/svc-lib.sh"

env_lines() {
	echo "GLARED_S3_ENDPOINT=http://127.0.0.1:$PORT"
	echo "GLARED_S3_REGION=$REGION"
	echo "GLARED_S3_BUCKET=$BUCKET"
	echo "GLARED_S3_ACCESS_KEY=$ACCOUNT:$USER_"
	echo "GLARED_S3_SECRET_KEY=$KEY"
}

alive() {
	[ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null
}

running() {
	for d in $DAEMONS; do
		alive "$d" || return 1
	done
	curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthcheck" || return 1
}

write_config() {
	OP=$((PORT + 1)); CP=$((PORT + 2)); AP=$((PORT + 3)); MP=$((PORT + 4))
	mkdir -p "$DIR/etc" "$DIR/srv/d1" "$DIR/log" "$DIR/cache"
	cat >"$DIR/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = $(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
swift_hash_path_prefix = glared
[storage-policy:0]
name = Policy-0
default = yes
EOF
	runas=""
	[ "$(id -u)" = 0 ] && runas="user = swift"
	common="[DEFAULT]
devices = $DIR/srv
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
workers = 0
swift_dir = $DIR/etc
recon_cache_path = $DIR/cache
log_level = WARNING
$runas"
	for s in object:$OP container:$CP account:$AP; do
		n=${s%%:*}
		printf '%s\nbind_port = %s\n[pipeline:main]\npipeline = %s-server\n[app:%s-server]\nuse = egg:swift#%s\n' \
			"$common" "${s##*:}" "$n" "$n" "$n" >"$DIR/etc/$n-server.conf"
	done
	# one-replica rings with one device each: one python process
	# instead of nine swift-ring-builder calls (Debian's python, where
	# the swift module is, not whatever python3 comes first in PATH)
	/usr/bin/python3 - "$DIR/etc" "$OP" "$CP" "$AP" <<'EOF'
import sys
from swift.common.ring import RingBuilder
d = sys.argv[1]
for name, port in zip(("object", "container", "account"), sys.argv[2:5]):
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
               "port": int(port), "device": "d1", "weight": 100})
    b.rebalance()
    b.save("%s/%s.builder" % (d, name))
    b.get_ring().save("%s/%s.ring.gz" % (d, name))
EOF
	# s3api: 10,000 parts like S3 (Swift's defaults are 1000 parts and
	# 1000 SLO segments), region us-east-1 for SigV4
	cat >"$DIR/etc/proxy-server.conf" <<EOF
$common
bind_port = $PORT
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
[filter:tempauth]
use = egg:swift#tempauth
user_${ACCOUNT}_${USER_} = $KEY .admin
[filter:s3api]
use = egg:swift#s3api
location = $REGION
max_upload_part_num = 10000
[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MP
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
	[ "$(id -u)" = 0 ] && chown -R swift:swift "$DIR"
	return 0
}

launch() {
	MP=$((PORT + 4))
	if [ "$(id -u)" = 0 ]; then
		setsid memcached -l 127.0.0.1 -p "$MP" -U 0 -m 64 -u nobody \
			</dev/null >"$DIR/log/memcached.log" 2>&1 &
	else
		setsid memcached -l 127.0.0.1 -p "$MP" -U 0 -m 64 \
			</dev/null >"$DIR/log/memcached.log" 2>&1 &
	fi
	echo $! >"$DIR/memcached.pid"
	for n in object container account proxy; do
		setsid "swift-$n-server" "$DIR/etc/$n-server.conf" \
			</dev/null >"$DIR/log/$n.log" 2>&1 &
		echo $! >"$DIR/$n.pid"
	done
}

token() {
	curl -fs -D - -o /dev/null -H "X-Auth-User: $ACCOUNT:$USER_" \
		-H "X-Auth-Key: $KEY" "http://127.0.0.1:$PORT/auth/v1.0" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "x-auth-token" { print $2 }'
}

# A Swift container is an S3 bucket. The Swift API is used because a
# plain curl cannot sign for a key with a ':' in it; the first call also
# creates the account (account_autocreate), so retry until the account
# and container servers answer.
make_bucket() {
	tok=$(token)
	[ -n "$tok" ] || return 1
	code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
		-H "X-Auth-Token: $tok" \
		"http://127.0.0.1:$PORT/v1/AUTH_$ACCOUNT/$BUCKET")
	case "$code" in
	201 | 202) return 0 ;;
	*) return 1 ;;
	esac
}

stop_daemons() {
	for d in $DAEMONS; do
		[ -f "$DIR/$d.pid" ] || continue
		pid=$(cat "$DIR/$d.pid")
		kill "$pid" 2>/dev/null || true
	done
	for d in $DAEMONS; do
		[ -f "$DIR/$d.pid" ] || continue
		reap "$DIR/$d.pid" 50
	done
}

start() {
	if ! running; then
		# a half-dead earlier run: clear it
		stop_daemons
		rm -rf "$DIR"
		install_missing
		for p in $PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 4)); do
			port_free "$p" || {
				say "port $p is in use (set GLARED_S3_PORT)"
				exit 1
			}
		done
		mkdir -p "$DIR"
		write_config
		launch
		if ! wait_for 300 curl -fs "http://127.0.0.1:$PORT/healthcheck"; then
			say "the Swift proxy did not come up; logs in $DIR/log:"
			tail -n 20 "$DIR"/log/*.log >&2
			exit 1
		fi
	fi
	if ! wait_for 300 make_bucket; then
		say "cannot create the bucket; logs in $DIR/log:"
		tail -n 20 "$DIR"/log/*.log >&2
		exit 1
	fi
	env_lines
}

case "${1:-}" in
start)
	start
	;;
stop)
	stop_daemons
	rm -rf "$DIR"
	;;
status)
	running
	;;
env)
	env_lines
	;;
*)
	echo "usage: scripts/s3.sh start|stop|status|env" >&2
	exit 2
	;;
esac
