#!/usr/bin/env bash
# `make test`'s last step: the whole suite against the built labelforge. A failure's lines are
# repeated at the end, so the tail of the log (all a CI page or fresh-clone-check shows) names the
# failing tests and their expectations.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# SWIFT may hold arguments (`xcrun swift`): split into words, as make does.
# shellcheck disable=SC2086
LABELFORGE_BIN="${LABELFORGE_BIN:-$PWD/.build/debug/labelforge}" ${SWIFT:-swift} test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo
  echo "== failing tests (from above) =="
  grep -E "✘|error:|Fatal error|Test Case .* failed" "$log" | grep -v "^✘ Test run with" | cut -c1-400 | tail -25
  grep -E "^✘ Test run with|Executed .* with [1-9]" "$log" | tail -2
fi
exit "$status"
