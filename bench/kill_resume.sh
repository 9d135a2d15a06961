#!/usr/bin/env bash
# Crash safety on the real embedded engine: runs configs/mvp.yaml (strict mode, first N rows)
# once uninterrupted, then TRIALS times killed with SIGKILL at a random moment and resumed with
# `labelforge run --resume`, each trial with an empty cache. Prints how many trials ended with
# outputs byte-identical to the uninterrupted run, e.g. `10/10 identical`.
# Usage: bench/kill_resume.sh [TRIALS=10] [ROWS=24]
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-10}
ROWS=${2:-24}
make -s setup >/dev/null
swift build -q
BIN=.build/debug/labelforge
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed 's/determinism: standard/determinism: strict/' configs/mvp.yaml > "$work/strict.yaml"

outputs() { cat "$1"/outputs/*.jsonl "$1"/dataset.jsonl | sha256sum | cut -d' ' -f1; }

start=$(date +%s)
$BIN run --config "$work/strict.yaml" --limit "$ROWS" --runs-dir "$work/ref" --cache-path "$work/ref.sqlite" >/dev/null 2>&1
reference=$(outputs "$work"/ref/*)
baseline=$(( $(date +%s) - start ))
echo "uninterrupted run: ${baseline}s, outputs $reference"

identical=0
for trial in $(seq 1 "$TRIALS"); do
  runs="$work/trial$trial"
  cache="$work/cache$trial.sqlite"
  delay=$(python3 -c "import random; print(round(random.uniform(2, $baseline * 0.9), 2))")
  $BIN run --config "$work/strict.yaml" --limit "$ROWS" --runs-dir "$runs" --cache-path "$cache" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 1   # the engine exits with its parent
  dir=$(ls -d "$runs"/* 2>/dev/null | head -1 || true)
  if [ -z "$dir" ]; then
    $BIN run --config "$work/strict.yaml" --limit "$ROWS" --runs-dir "$runs" --cache-path "$cache" >/dev/null 2>&1
    dir=$(ls -d "$runs"/* | head -1)
  elif ! grep -q '"status":"completed"' "$dir/manifest.jsonl"; then
    $BIN run --resume "$dir" --cache-path "$cache" >/dev/null 2>&1
  fi
  rows=$(grep -c '"type":"row"' "$dir/manifest.jsonl")
  unique=$(grep '"type":"row"' "$dir/manifest.jsonl" | python3 -c "import sys,json; print(len({(l['row_id'],l['stage']) for l in map(json.loads, sys.stdin)}))")
  got=$(outputs "$dir")
  if [ "$got" = "$reference" ] && [ "$rows" = "$unique" ] && [ "$rows" = "$(( ROWS * 2 ))" ]; then
    identical=$((identical + 1)); verdict=identical
  else
    verdict="DIFFERENT (row lines $rows, unique $unique)"
  fi
  echo "trial $trial: killed after ${delay}s: $verdict"
done
echo "$identical/$TRIALS identical"
[ "$identical" = "$TRIALS" ]
