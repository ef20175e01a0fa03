#!/bin/sh
# test-rockspec.sh - check that the glare-types rock lints, installs offline
# with `luarocks make`, and that the installed modules (and nothing from the
# work tree) load a stock type file.
#
#   scripts/test-rockspec.sh            (from anywhere; uses a fresh tree)
#   TREE=/tmp/rt scripts/test-rockspec.sh
#
# Last line: "rockspec: N passed, N failed"; exit status non-zero on failure.
set -u

cd "$(dirname "$0")/.." || exit 2
ROCKSPEC=rockspec/glare-types-scm-1.rockspec
TREE=${TREE:-$(mktemp -d /tmp/glare-rock.XXXXXX)}
LOG=$(mktemp /tmp/glare-rock-log.XXXXXX)
pass=0
fail=0

check() { # name, command...
	name=$1; shift
	if "$@" >"$LOG" 2>&1; then
		pass=$((pass + 1)); echo "ok - $name"
	else
		fail=$((fail + 1)); echo "not ok - $name"; sed 's/^/#   /' "$LOG"
	fi
}

check "luarocks lint" luarocks lint "$ROCKSPEC"
check "luarocks make (offline, tree $TREE)" \
	luarocks --lua-version=5.4 --tree="$TREE" make "$ROCKSPEC"

# Every module of lua/glare is in the build map (a forgotten module would
# only fail for rock users).
check "every lua/glare module is installed" sh -c '
	for f in lua/glare/*.lua; do
		test -f "$0/share/lua/5.4/glare/$(basename "$f")" || { echo "missing: $f"; exit 1; }
	done' "$TREE"

# Load types with package.path pointing at the tree only.
check "installed glare.loader loads types/images.lua" lua5.4 -e "
	package.path = '$TREE/share/lua/5.4/?.lua;$TREE/share/lua/5.4/?/init.lua'
	local loader = require('glare.loader')
	assert(package.searchpath('glare.loader', package.path):find('$TREE', 1, true))
	local T = assert(loader.load_file('types/images.lua'))
	assert(T.name == 'images' and T.by_name.image.max_blob_size == 1073741824000)
	local s = require('glare.runtime').schema(T)
	assert(s.title == 'Artifact type images of version 1.0')
	print('images: ' .. #T.fields .. ' fields')"

check "installed runtime loads every stock type" lua5.4 -e "
	package.path = '$TREE/share/lua/5.4/?.lua;$TREE/share/lua/5.4/?/init.lua'
	local loader = require('glare.loader')
	for f in io.popen('ls types'):lines() do
		assert(loader.load_file('types/' .. f))
	end"

rm -f "$LOG"
[ -z "${KEEP_TREE:-}" ] && case "$TREE" in /tmp/glare-rock.*) rm -rf "$TREE" ;; esac
echo "rockspec: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
