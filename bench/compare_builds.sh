#!/usr/bin/env bash
# Before and after in one run: each bench named runs first with a baseline labelforge, then with a
# release build of the tree, on the same machine in the same invocation, and both outputs are
# printed one after the other (a refactor must not make any figure worse).
#   bench/compare_builds.sh BASELINE_BIN [BENCH[:ARGS] ...]
# e.g. bench/compare_builds.sh /tmp/labelforge-main client_overhead:5000,64 scale:"10000 100000" dedup mining
# (a bench's arguments follow its name after a colon, separated by commas)
# BASELINE_BIN: a release labelforge of the commit to compare against (build one in a worktree:
# git worktree add /tmp/base <rev> && (cd /tmp/base && swift build -c release --product labelforge)).
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=$(realpath "$1")
shift
swift build -c release --product labelforge -q
tree=$(swift build -c release --show-bin-path)/labelforge
[ $# -gt 0 ] || set -- client_overhead scale dedup mining
for item in "$@"; do
  name=${item%%:*}
  # ARGS: the bench's arguments, split at commas (scale:"10000 100000" passes one argument).
  args=()
  [ "$item" != "$name" ] && IFS=, read -r -a args <<<"${item#*:}"
  for side in baseline tree; do
    bin=$baseline
    [ $side = tree ] && bin=$tree
    echo "=== bench/$name.sh ${args[*]:-} — $side ($bin)"
    # A bench that exits non-zero (a target it reports missed) does not end the comparison.
    { LABELFORGE_BENCH_BIN=$bin bench/"$name".sh ${args[@]+"${args[@]}"} 2>&1 || echo "(bench/$name.sh exited $?)"; } |
      grep -v "^\s*$"
  done
done
