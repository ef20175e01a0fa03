#!/bin/sh
# run.sh - the glared benchmarks, one after the other (what `make bench` runs).
#
#   bench/run.sh                  all: blob fetch meta create workers cpu
#                                 sql lua scaleout events auth pgwait
#   bench/run.sh blob meta        a subset, in the order given
#
#   pgwait PostgreSQL behind +1 ms each way: blocking vs coroutines, 32
#          clients (issue 18)                         bench/pgwait.py
#   blob   256 MiB and 2 GiB uploads (Content-Length and chunked) and
#          downloads over loopback vs digest ceiling and a static server,
#          RSS during both (issues #6, #18)             bench/blob.py
#   fetch  1 GiB external blob registration vs digest ceiling, RSS, latency
#          of other requests meanwhile (issue #7)      bench/fetch.py
#   meta   create/show/list rates and latency percentiles at 10k and 100k
#          artifacts through the API, with wrk (issue #5) bench/meta.py
#   create creates/s with durable commits (sqlite_durability normal / full
#          / group) and with quotas on as the catalogue grows (issue #18)
#                                                      bench/create.py
#   workers show/list with workers = 1 vs 2, server and client pinned
#          with taskset (issue #18)                     bench/workers.py
#   cpu    instructions per request under callgrind (show, list, create;
#          load-independent; issue #18)                bench/cpu.py
#   sql    bench/meta_list.c: the listing SQL alone at 100k artifacts
#   lua    bench/lua_validate.lua: µs per create-body validation (issue #4)
#   scaleout  the meta and blob benchmarks on sqlite + local files and on
#          PostgreSQL + S3 (scripts/pg.sh, scripts/s3.sh: Swift s3api),
#          side by side (issue #9)                     bench/scaleout.py
#   events RabbitMQ notifications published per second vs oslo.messaging's
#          notifier; API create rate with notifications on vs off
#          (issue #16; scripts/rabbitmq.sh)            bench/events.py
#   auth   µs per request by identity flavor: Keystone (scripts/
#          keystone.sh) and OIDC tokens, cache hit and miss, next to the
#          trusted-token flavor (issue #14)             bench/auth.py
#
# Sizes (environment):
#   BENCH_SIZE_GB=2          blob size in GiB (e.g. 0.25 for a quick run)
#   BENCH_BLOB_SIZES=        blob sizes in GiB (default "0.25 BENCH_SIZE_GB")
#   BENCH_FETCH_GB=          external blob size (default BENCH_SIZE_GB / 2)
#   BENCH_REPEAT=1           blob: uploads (and downloads) per figure, best kept
#   BENCH_META_N="10000 100000"   meta: artifact counts to measure at
#   BENCH_META_SECS=5        meta: seconds per measured row
#   BENCH_CONNS=4            meta: keep-alive connections per row
#   BENCH_WORKERS=1          glared `workers` for blob/fetch/meta
#   BENCH_CREATE_SECS=8      create: seconds per durability mode
#   BENCH_QUOTA_N=70000      create: artifacts created with quotas on
#   BENCH_WORKERS_SECS=5     workers: seconds per row (BENCH_WORKERS_N,
#                            _CONNS, _ROUNDS, _CLI_CPU, _SRV_CPUS: see
#                            bench/workers.py)
#   BENCH_SQL_N=100000       sql: artifacts in the meta_list database
#   BENCH_SCALEOUT_N=10000   scaleout: artifacts per back end
#   BENCH_SCALEOUT_GB=       scaleout: blob size (default BENCH_SIZE_GB / 2)
#   BENCH_EVENTS_N=20000     events: notifications drained from the outbox
#   BENCH_EVENTS_REF=2000    events: notifications oslo.messaging sends
#   BENCH_EVENTS_SECS=5      events: seconds per create-rate row
#   BENCH_EVENTS_ROUNDS=3    events: interleaved rounds of those rows (best kept)
#   BENCH_TMPDIR=/tmp        where data and servers live (removed at exit;
#                            BENCH_KEEP=1 keeps them)
#   GLARED=./glared          the binary under test
#
# Each benchmark prints its table; the summary at the end says which ones
# missed a target (exit status 1) or failed to run (exit status 2).
set -u

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

suites=${*:-blob fetch meta create workers cpu sql lua scaleout events auth pgwait}
for s in $suites; do
	case $s in
	blob|fetch|meta|create|workers|cpu|sql|lua|scaleout|events|auth|pgwait) ;;
	*) echo "run.sh: unknown benchmark '$s'" \
		"(blob fetch meta create workers cpu sql lua scaleout events" \
		"auth pgwait)" >&2
	   exit 2 ;;
	esac
done

TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/glared-bench.XXXXXX") || exit 2
child=""
pg_port=""
s3_port=""
# scaleout's PostgreSQL and Swift: bench/scaleout.py stops them itself;
# this is in case it could not (both stops are no-ops on a stopped server)
stop_backends() {
	[ -n "$pg_port" ] &&
		GLARED_PG_PORT=$pg_port sh scripts/pg.sh stop >/dev/null 2>&1
	[ -n "$s3_port" ] &&
		GLARED_S3_PORT=$s3_port sh scripts/s3.sh stop >/dev/null 2>&1
	pg_port=""
	s3_port=""
}
cleanup() { stop_backends; rm -rf "$TMP"; }
# the benchmarks run in the background so that a signal reaches this trap
# at once; it passes the signal on and waits for the child's own clean-up
# (servers stopped, data removed)
on_signal() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

bg() { "$@" & child=$!; wait "$child"; r=$?; child=""; return $r; }

have() { command -v "$1" >/dev/null 2>&1; }

# install a missing Debian package (as scripts/deps.sh does), if we can
need_pkg() {	# command package
	have "$1" && return 0
	if [ "$(id -u)" -eq 0 ] && have apt-get; then
		echo "run.sh: installing $2" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "$2" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "$2" >/dev/null 2>&1; }
	fi
	have "$1" || { echo "run.sh: '$1' is missing (Debian package $2)" >&2
		       return 1; }
}

if [ -z "${GLARED:-}" ] && [ ! -x ./glared ]; then
	make --no-print-directory glared >/dev/null || exit 2
fi

# meta_list.c's header carries its build command: use it, so the two
# cannot drift apart (only the output path changes).
meta_list_cc() {
	sed -n '/Build and run by hand/,/meta_list \[/p' bench/meta_list.c |
	sed -n '/^ \*  *cc /,/[^\\]$/p' |
	sed 's/^ \*  *//; s/\\$//' | tr '\n' ' ' |
	sed "s|-o /tmp/meta_list|-o $TMP/meta_list|"
}

run_sql() {
	n=${BENCH_SQL_N:-100000}
	echo "== sql: bench/meta_list.c, listing queries on $n artifacts"
	cmd=$(meta_list_cc)
	case $cmd in
	cc*"-o $TMP/meta_list"*) ;;
	*) echo "sql: no build command found in bench/meta_list.c"; return 2 ;;
	esac
	if ! sh -c "$cmd"; then
		echo "sql: bench/meta_list.c does not build ($cmd)"
		return 2
	fi
	mkdir -p "$TMP/sql"	# -d: the database lives (and dies) in $TMP
	bg "$TMP/meta_list" -n "$n" -d "$TMP/sql"
}

# PostgreSQL 15 for scaleout (scripts/s3.sh installs Swift by itself)
need_pg() {
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -eq 0 ] && have apt-get; then
		echo "run.sh: installing postgresql-15" >&2
		apt-get update -qq >/dev/null 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends postgresql-15 >/dev/null 2>&1
	fi
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 ||
	{ echo "run.sh: PostgreSQL is missing (Debian package" \
	       "postgresql-15)" >&2; return 1; }
}

run_scaleout() {
	need_pkg wrk wrk && need_pkg curl curl && need_pkg psql \
		postgresql-client-15 && need_pg || return 2
	ports=$("$PY" bench/scaleout.py --ports) || return 2
	pg_port=${ports% *}
	s3_port=${ports#* }
	BENCH_PG_PORT=$pg_port BENCH_S3_PORT=$s3_port \
		bg "$PY" bench/scaleout.py
	r=$?
	stop_backends
	return $r
}

summary=""
worst=0
start=$(date +%s)
for s in $suites; do
	t0=$(date +%s)
	echo
	case $s in
	blob)  need_pkg curl curl && bg "$PY" bench/blob.py ;;
	fetch) need_pkg curl curl && bg "$PY" bench/fetch.py ;;
	meta)  need_pkg wrk wrk && bg "$PY" bench/meta.py ;;
	create) need_pkg wrk wrk && bg "$PY" bench/create.py ;;
	workers) need_pkg wrk wrk && need_pkg taskset util-linux &&
		bg "$PY" bench/workers.py ;;
	cpu)   need_pkg wrk wrk && need_pkg valgrind valgrind &&
	       bg "$PY" bench/cpu.py ;;
	sql)   run_sql ;;
	lua)   need_pkg lua5.4 lua5.4 && bg "$PY" bench/lua.py ;;
	scaleout) run_scaleout ;;
	events) need_pkg wrk wrk && need_pkg rabbitmq-server rabbitmq-server &&
		bg "$PY" bench/events.py ;;
	auth)  need_pkg wrk wrk && bg "$PY" bench/auth.py ;;
	pgwait) need_pkg wrk wrk && need_pkg psql postgresql-client-15 &&
		need_pg && bg "$PY" bench/pgwait.py ;;
	esac
	rc=$?
	case $rc in
	0) st="ok" ;;
	1) st="TARGET MISSED" ;;
	*) st="FAILED (exit $rc)"; rc=2 ;;
	esac
	[ $rc -gt $worst ] && worst=$rc
	summary="$summary
  $(printf '%-8s %-18s %4ss' "$s" "$st" $(( $(date +%s) - t0 )))"
done

echo
echo "== summary ($(( $(date +%s) - start )) s)$summary"
exit $worst
