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

say() { echo "deps: $*" >&2; }
PKGS="$BUILD"
[ "${1:-}" = "test" ] && PKGS="$PKGS $TEST"
# shellcheck source=scripts/svc-lib.sh
. "$(dirname "$0")/svc-lib.sh"
install_missing
