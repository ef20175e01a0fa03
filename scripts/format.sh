#!/bin/sh
# format.sh [--check] - the project's C through clang-format (.clang-format).
#
#   scripts/format.sh           rewrite every tracked C file in place
#   scripts/format.sh --check   change nothing; print each file that would
#                               change with the number of its lines that
#                               would, then the total; exit 1 if any would
#
# The files: src/, tests/unit/, tests/fuzz/ and bench/ (*.c, *.h), as git
# tracks them. Blocks between /* clang-format off */ and
# /* clang-format on */ (SQL text, tables, enum lists) stay as written.
# Needs clang-format 14 (Debian clang-format-14; scripts/deps.sh test).
set -eu
cd "$(dirname "$0")/.."

CF=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$CF" ] || { echo "format: clang-format not found" >&2; exit 2; }
files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'tests/unit/*.h' \
	'tests/fuzz/*.c' 'bench/*.c')

if [ "${1:-}" != "--check" ]; then
	# shellcheck disable=SC2086
	"$CF" -i --style=file $files
	exit 0
fi

total=0 lines=0
for f in $files; do
	# lines of the file that the formatter would replace
	n=$("$CF" --style=file "$f" | diff "$f" - | grep -c '^<' || true)
	lines=$((lines + $(wc -l < "$f")))
	if [ "$n" -gt 0 ]; then
		printf '%6d %s\n' "$n" "$f"
		total=$((total + n))
	fi
done
echo "format: $total of $lines lines would change"
[ "$total" -eq 0 ]
