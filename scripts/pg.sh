#!/bin/sh
# pg.sh start|stop|restart|status|url - a throwaway PostgreSQL for tests.
#
#   scripts/pg.sh start     initdb (first time) and start a server on
#                           127.0.0.1:$GLARED_PG_PORT (default 55432), with
#                           database and user "glared"; prints the URL
#   scripts/pg.sh url       print the connection URL, e.g.
#                           postgresql://glared@127.0.0.1:55432/glared
#   scripts/pg.sh restart   restart the server (reconnect tests)
#   scripts/pg.sh status    exit 0 if it runs
#   scripts/pg.sh stop      stop it and remove its data directory
#
# Typical use:  scripts/pg.sh start && GLARED_PG_URL=$(scripts/pg.sh url) \
#               build/unit-tests meta_pg
#
# Idempotent: start on a running server, stop on a stopped one do nothing.
# No systemd: initdb + pg_ctl directly, as user postgres when run as root
# (initdb refuses root). Trust authentication on loopback only, and fsync
# off: the data is disposable. Needs the Debian package postgresql-15 (any
# installed major version under /usr/lib/postgresql works).
set -eu

PORT=${GLARED_PG_PORT:-55432}
DIR=/tmp/glared-pg-$PORT
DATA=$DIR/data
LOG=$DIR/pg.log
URL="postgresql://glared@127.0.0.1:$PORT/glared"

bindir() {
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
		[ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
	done
	echo "pg.sh: PostgreSQL is not installed" \
	     "(apt-get install postgresql-15)" >&2
	return 1
}

# run a server binary as the cluster's owner
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

running() {
	[ -f "$DATA/postmaster.pid" ] &&
		as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_admin() {
	"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" \
		-U postgres -d postgres "$@"
}

start() {
	if ! [ -f "$DATA/PG_VERSION" ]; then
		rm -rf "$DIR"
		mkdir -p "$DIR"
		[ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
		as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust \
			-E UTF8 --locale=C.UTF-8 --no-sync \
			>"$DIR/initdb.log" 2>&1 || {
			cat "$DIR/initdb.log" >&2
			exit 1
		}
	fi
	if ! running; then
		opts="-c listen_addresses=127.0.0.1 -p $PORT -k $DIR"
		opts="$opts -c fsync=off -c synchronous_commit=off"
		opts="$opts -c full_page_writes=off -c max_connections=200"
		as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 \
			-o "$opts" start >/dev/null || {
			tail -20 "$LOG" >&2
			exit 1
		}
	fi
	# the role and database, once
	q="SELECT 1 FROM pg_roles WHERE rolname = 'glared'"
	[ -n "$(psql_admin -tA -c "$q")" ] ||
		psql_admin -c "CREATE ROLE glared LOGIN PASSWORD 'glared'"
	# tests make a database per server (the two-node runs)
	psql_admin -c "ALTER ROLE glared CREATEDB"
	q="SELECT 1 FROM pg_database WHERE datname = 'glared'"
	[ -n "$(psql_admin -tA -c "$q")" ] ||
		psql_admin -c "CREATE DATABASE glared OWNER glared"
	echo "$URL"
}

stop() {
	if [ -f "$DATA/postmaster.pid" ]; then
		as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop \
			>/dev/null 2>&1 || true
	fi
	rm -rf "$DIR"
}

case "${1:-}" in
start)
	BIN=$(bindir)
	start
	;;
stop)
	BIN=$(bindir)
	stop
	;;
restart)
	BIN=$(bindir)
	running || { echo "pg.sh: not running" >&2; exit 1; }
	as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -m fast -w -t 30 \
		restart >/dev/null
	;;
status)
	BIN=$(bindir)
	running
	;;
url)
	echo "$URL"
	;;
*)
	echo "usage: scripts/pg.sh start|stop|restart|status|url" >&2
	exit 2
	;;
esac
