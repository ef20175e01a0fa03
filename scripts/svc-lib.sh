# shellcheck shell=sh
# svc-lib.sh - what deps.sh and the throwaway-service scripts (s3.sh,
# keystone.sh) share. Sourced, not run; the sourcing script defines say()
# and PKGS.

# Install the Debian packages of $PKGS that are missing.
install_missing() {
	missing=""
	for p in $PKGS; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$st" in
		*" installed") ;;
		*) missing="$missing $p" ;;
		esac
	done
	[ -z "$missing" ] && return 0
	say "installing:$missing"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
}

port_free() {
	! (ss -Htln "sport = :$1" 2>/dev/null | grep -q .)
}

# wait up to $1 tenths of a second for the command after it to succeed
wait_for() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# The process of pid file $1 was sent SIGTERM: give it $2 tenths of a
# second to end, then SIGKILL; the pid file goes.
reap() {
	pid=$(cat "$1")
	n=$2
	while kill -0 "$pid" 2>/dev/null && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$1"
}
