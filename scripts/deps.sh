#!/bin/sh
# deps.sh - install the Debian 12 packages glared needs, only if missing.
#
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh test     ... plus what the test suites use
#
# Idempotent: dpkg-query decides what is missing; apt-get runs only then.
set -eu

BUILD="build-essential pkg-config libevent-dev libhttp-parser-dev
libjansson-dev liblua5.4-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev
libedit-dev libpq-dev librabbitmq-dev"
TEST="lua5.4 lua-busted luarocks python3 python3-pytest python3-requests
python3-jsonschema python3-glareclient sqlite3 curl tmux postgresql-15
swift swift-proxy swift-object swift-account swift-container memcached
prometheus systemd man-db rabbitmq-server python3-oslo.messaging
clang-14 libclang-rt-14-dev keystone uwsgi-plugin-python3
python3-openstackclient python3-cryptography"

want="$BUILD"
[ "${1:-}" = "test" ] && want="$want $TEST"

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
