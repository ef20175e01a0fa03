#!/bin/sh
# run-tests.sh BUILD_DIR - run every test suite against BUILD_DIR/glared and
# print one summary line per suite, the skips ("N skipped": a skipped test
# is neither passed nor failed, it did not run), then the last line, the
# total the project's CI reads: "N passed, N failed".
#
# Suites: the design references of the sources (scripts/check-refs.py),
# C unit tests, busted specs (lua/ and types/), the Lua sandbox
# escape tests, the rockspec install check, the black-box HTTP tests
# (pytest against real glared processes on loopback, with PostgreSQL, S3
# and RabbitMQ services of their own), the operator suite (tests/ops:
# command line, metrics, install, backup, README), when GLARED_FUZZ names
# a directory of built harnesses (make asan) each libFuzzer harness for
# FUZZ_SECONDS (default 25) from its seed corpus; last, a check that no
# glared process started by the run outlives it.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
case "$BUILD" in /*) BIN=$BUILD ;; *) BIN=$ROOT/$BUILD ;; esac
LOGDIR=$(mktemp -d /tmp/glared-tests.XXXXXX)
# every process of the run inherits this: the leftover check finds them
GLARED_TEST_RUN=$LOGDIR
export GLARED_TEST_RUN
PY=/usr/bin/python3
total_pass=0
total_fail=0
total_skip=0

add() { # suite passed failed [skipped]
	echo "== $1: $2 passed, $3 failed, ${4:-0} skipped"
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	total_skip=$((total_skip + ${4:-0}))
}

num() { # regex file -> first captured number or 0
	n=$(grep -Eo "$1" "$2" | tail -1 | grep -Eo '[0-9]+' | head -1)
	echo "${n:-0}"
}

# ---- services the scale-out, notification and identity tests run against ------
# A throwaway PostgreSQL, an S3 endpoint (Swift + s3api), a RabbitMQ and a
# Keystone on loopback, started once per run, stopped at exit.
# Free loopback ports unless the caller chose them, so runs from several
# checkouts at once neither share nor stop each other's services. Below the
# kernel's ephemeral range (32768+), where an outgoing connection could take
# a port between the pick and the service's bind.
free_ports() { # count -> the first of count consecutive free ports
	$PY -c '
import random, socket, sys
n = int(sys.argv[1])
lo, hi = int(sys.argv[2]), int(sys.argv[3])
for _ in range(200):
    base = random.randrange(lo, hi - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit(1)' "$1" 20000 32000
}
: "${GLARED_PG_PORT:=$(free_ports 1)}"
: "${GLARED_S3_PORT:=$(free_ports 5)}"
# RabbitMQ's three: AMQP, epmd, distribution (scripts/rabbitmq.sh)
: "${GLARED_RABBIT_PORT:=$(free_ports 3)}"
# Keystone, the glared its catalog points at, the short-token Keystone
: "${GLARED_KEYSTONE_PORT:=$(free_ports 3)}"
export GLARED_PG_PORT GLARED_S3_PORT GLARED_RABBIT_PORT GLARED_KEYSTONE_PORT
trap 'scripts/pg.sh stop >/dev/null 2>&1; scripts/s3.sh stop >/dev/null 2>&1
scripts/rabbitmq.sh stop >/dev/null 2>&1
scripts/keystone.sh stop >/dev/null 2>&1' EXIT
# the broker boots slowly (Erlang): it starts in the background while the
# other services start and the first suites run
scripts/rabbitmq.sh start > "$LOGDIR/rabbit.log" 2>&1 &
rabbit_pid=$!
# so does Keystone (its set-up takes 10-20 s)
scripts/keystone.sh start > "$LOGDIR/keystone.env" 2> "$LOGDIR/keystone.log" &
keystone_pid=$!
services=1
if scripts/pg.sh start > "$LOGDIR/pg.log" 2>&1; then
	GLARED_PG_URL=$(scripts/pg.sh url)
	export GLARED_PG_URL
else
	echo "== PostgreSQL did not start (see $LOGDIR/pg.log)"
	tail -5 "$LOGDIR/pg.log"
	total_fail=$((total_fail + 1))
	services=0
fi
if scripts/s3.sh start > "$LOGDIR/s3.env" 2> "$LOGDIR/s3.log"; then
	set -a
	. "$LOGDIR/s3.env"
	set +a
else
	echo "== the S3 endpoint did not start (see $LOGDIR/s3.log)"
	tail -5 "$LOGDIR/s3.log"
	total_fail=$((total_fail + 1))
	services=0
fi

# ---- design references (scripts/check-refs.py) ------------------------------
# Every docs/<file>.md "<section>" and endpoint id the sources cite exists.
if $PY scripts/check-refs.py > "$LOGDIR/refs.log" 2>&1; then
	add refs 1 0
else
	grep -v '^refs:' "$LOGDIR/refs.log" | head -20
	add refs 0 1
fi

# ---- C unit tests --------------------------------------------------------
if [ -x "$BUILD/unit-tests" ]; then
	"$BUILD/unit-tests" > "$LOGDIR/unit.log" 2>&1
	rc=$?
	grep -E '^FAIL' "$LOGDIR/unit.log"
	p=$(num '[0-9]+ passed' "$LOGDIR/unit.log")
	f=$(num '[0-9]+ failed' "$LOGDIR/unit.log")
	s=$(num '[0-9]+ skipped' "$LOGDIR/unit.log")
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { f=1; tail -20 "$LOGDIR/unit.log"; }
	add unit "$p" "$f" "$s"
else
	echo "== unit: $BUILD/unit-tests missing"
	add unit 0 1
fi

# ---- busted specs (lua/ and types/) -------------------------------------------
if [ -d tests/lua ] && ls tests/lua/*_spec.lua >/dev/null 2>&1; then
	busted --lua=lua5.4 -o utfTerminal tests/lua > "$LOGDIR/busted.log" 2>&1
	rc=$?
	p=$(num '[0-9]+ success' "$LOGDIR/busted.log")
	f1=$(num '[0-9]+ failure' "$LOGDIR/busted.log")
	f2=$(num '[0-9]+ error' "$LOGDIR/busted.log")
	s=$(num '[0-9]+ pending' "$LOGDIR/busted.log")
	f=$((f1 + f2))
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	[ "$f" -ne 0 ] && tail -40 "$LOGDIR/busted.log"
	add lua "$p" "$f" "$s"
fi

# ---- rockspec packaging -----------------------------------------------------
if [ -x scripts/test-rockspec.sh ]; then
	scripts/test-rockspec.sh > "$LOGDIR/rockspec.log" 2>&1
	p=$(num '[0-9]+ passed' "$LOGDIR/rockspec.log")
	f=$(num '[0-9]+ failed' "$LOGDIR/rockspec.log")
	[ "$f" -ne 0 ] && tail -20 "$LOGDIR/rockspec.log"
	add rockspec "$p" "$f"
fi

if wait "$rabbit_pid"; then
	GLARED_RABBIT_URL=$(scripts/rabbitmq.sh url)
	export GLARED_RABBIT_URL
else
	echo "== RabbitMQ did not start (see $LOGDIR/rabbit.log)"
	tail -5 "$LOGDIR/rabbit.log"
	total_fail=$((total_fail + 1))
fi
if wait "$keystone_pid"; then
	set -a
	. "$LOGDIR/keystone.env"
	set +a
else
	# the identity tests skip themselves; the run still fails
	echo "== Keystone did not start (see $LOGDIR/keystone.log)"
	tail -5 "$LOGDIR/keystone.log"
	total_fail=$((total_fail + 1))
fi

# ---- black-box HTTP tests (tests/http, tests/sandbox) ----------------------------
run_pytest() { # name dir
	[ -d "$2" ] || return 0
	ls "$2"/test_*.py >/dev/null 2>&1 || return 0
	GLARED="$BIN/glared" $PY -m pytest -q -p no:cacheprovider \
		-o console_output_style=classic "$2" > "$LOGDIR/$1.log" 2>&1
	p=$(num '[0-9]+ passed' "$LOGDIR/$1.log")
	f1=$(num '[0-9]+ failed' "$LOGDIR/$1.log")
	f2=$(num '[0-9]+ error' "$LOGDIR/$1.log")
	s=$(num '[0-9]+ skipped' "$LOGDIR/$1.log")
	f=$((f1 + f2))
	[ "$f" -ne 0 ] && grep -E '^(FAILED|ERROR)' "$LOGDIR/$1.log"
	[ "$p" -eq 0 ] && [ "$f" -eq 0 ] && { f=1; tail -30 "$LOGDIR/$1.log"; }
	add "$1" "$p" "$f" "$s"
}
run_pytest sandbox tests/sandbox
run_pytest http tests/http
run_pytest ops tests/ops
# the same black-box suite against two nodes on PostgreSQL + S3
if [ "$services" = 1 ]; then
	GLARED_TEST_CLUSTER=1
	export GLARED_TEST_CLUSTER
	run_pytest http-2nodes tests/http
	unset GLARED_TEST_CLUSTER
fi

# ---- fuzz harnesses (make asan) ----------------------------------------------
# One suite line per harness: passed if it ran its time without a finding.
# New inputs go to a scratch copy of the corpus, findings to the log dir.
if [ -n "${GLARED_FUZZ:-}" ]; then
	for bin in "$GLARED_FUZZ"/fuzz_*; do
		[ -x "$bin" ] || continue
		name=$(basename "$bin")
		name=${name#fuzz_}
		corpus="$LOGDIR/corpus-$name"
		mkdir -p "$corpus"
		cp tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
		dict=""
		[ -f "tests/fuzz/fuzz_$name.dict" ] && \
			dict="-dict=tests/fuzz/fuzz_$name.dict"
		# shellcheck disable=SC2086
		"$bin" -max_total_time="${FUZZ_SECONDS:-25}" -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 $dict \
			-artifact_prefix="$LOGDIR/fuzz-$name-" "$corpus" \
			> "$LOGDIR/fuzz-$name.log" 2>&1
		rc=$?
		runs=$(num 'Done [0-9]+ runs' "$LOGDIR/fuzz-$name.log")
		if [ "$rc" -eq 0 ]; then
			echo "   fuzz-$name: $runs inputs in ${FUZZ_SECONDS:-25} s"
			add "fuzz-$name" 1 0
		else
			grep -E 'ERROR|SUMMARY|Test unit written' \
				"$LOGDIR/fuzz-$name.log" | head -5
			add "fuzz-$name" 0 1
		fi
	done
fi

# ---- no glared outlives the run ---------------------------------------------------
# A glared process of this run (its environment has our GLARED_TEST_RUN)
# still alive now outlived its test: an orphaned worker, a server a test
# forgot. Servers still finishing a graceful stop get a few seconds.
leftovers() {
	for p in /proc/[0-9]*; do
		case "$(readlink "$p/exe" 2>/dev/null)" in
		*/glared | */glared" (deleted)") ;;
		*) continue ;;
		esac
		tr '\0' '\n' < "$p/environ" 2>/dev/null |
			grep -qxF "GLARED_TEST_RUN=$GLARED_TEST_RUN" &&
			echo "${p#/proc/}"
	done
}
left=$(leftovers)
n=50
while [ -n "$left" ] && [ $n -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
	left=$(leftovers)
done
if [ -n "$left" ]; then
	echo "== glared processes outlived the tests (killed now):"
	for pid in $left; do
		echo "   $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
		kill -9 "$pid" 2>/dev/null
	done
	add leftovers 0 1
else
	add leftovers 1 0
fi

echo "logs: $LOGDIR"
echo "$total_skip skipped"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
