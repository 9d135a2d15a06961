#!/usr/bin/env bash
# Crash safety on the real embedded engine: runs a config (strict mode, first N rows) once
# uninterrupted, then TRIALS times killed with SIGKILL and resumed with `labelforge run --resume`,
# each trial with an empty cache. The kill moments are spread over the whole run (trial k of T
# dies between (k-1)/T and k/T of the uninterrupted run's time, so the last trials land in the
# barrier stages and the final summary). After every kill it counts the llama.cpp engines of that
# trial still alive (must be 0). Then one more trial per crash point (LABELFORGE_CRASH_AT: the
# process kills itself inside the dataset-wide stage and around the final summary, moments a timer
# rarely hits; docs/run_contract.md). Prints per trial and in total: outputs byte-identical to the
# uninterrupted run, row records lost or duplicated, surviving engines.
# Usage: bench/kill_resume.sh [TRIALS=10] [ROWS=24] [CONFIG=configs/mvp-llm.yaml]
#   bench/kill_resume.sh 10 8 configs/synth.yaml   # fan-out (n: 3), a quality filter, a dedup barrier
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-10}
ROWS=${2:-24}
CONFIG=${3:-configs/mvp-llm.yaml}
make -s setup >/dev/null
swift build -q
BIN=$PWD/.build/debug/labelforge
work=$(mktemp -d)
# Strict determinism, so a resumed run's new requests give the answers the reference got. The
# copy sits beside the original, so the config's relative paths still resolve.
strict="$(dirname "$CONFIG")/.kill_resume.$$.yaml"
trap 'rm -f "$strict"; pkill -9 -f -- "--log-file $work/" 2>/dev/null || true; rm -rf "$work"' EXIT
if grep -q "determinism:" "$CONFIG"; then
  sed 's/determinism: standard/determinism: strict/' "$CONFIG" > "$strict"
else
  sed 's/^run:$/run:\n  determinism: strict/' "$CONFIG" > "$strict"
fi

outputs() { cat "$1"/outputs/*.jsonl "$1"/dataset.jsonl | sha256sum | cut -d' ' -f1; }
row_lines() { grep -c '"type":"row"' "$1/manifest.jsonl"; }
unique_rows() {
  grep '"type":"row"' "$1/manifest.jsonl" \
    | python3 -c "import sys,json; print(len({(l['row_id'],l['stage']) for l in map(json.loads, sys.stdin)}))"
}
engines() { { pgrep -f -- "--log-file $1/" || true; } | wc -l; }

start=$(date +%s.%N)
$BIN run --config "$strict" --limit "$ROWS" --runs-dir "$work/ref" --cache-path "$work/ref.sqlite" >/dev/null 2>&1
baseline=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
reference=$(outputs "$work"/ref/*)
reference_rows=$(row_lines "$(ls -d "$work"/ref/*)")
echo "$CONFIG, $ROWS rows: uninterrupted run ${baseline}s, $reference_rows row records, outputs $reference"

identical=0; lost_or_duplicated=0; survivors_total=0

# After a killed run in $runs (cache $cache): counts its surviving engines, finishes it (a fresh
# run when it died before its directory existed, `report` when it died after its summary, else
# `--resume`), compares it with the reference and prints "<label>: <verdict>…".
finish_trial() {
  local label=$1 survivors survivors_after dir rows unique missing duplicated verdict
  sleep 2   # the engine notices its parent is gone within 0.1 s
  survivors=$(engines "$runs")
  dir=$(ls -d "$runs"/* 2>/dev/null | head -1 || true)
  if [ -z "$dir" ]; then
    $BIN run --config "$strict" --limit "$ROWS" --runs-dir "$runs" --cache-path "$cache" >/dev/null 2>&1
    dir=$(ls -d "$runs"/* | head -1)
  elif grep -q '"status":"completed"' "$dir/manifest.jsonl"; then
    $BIN report "$dir" >/dev/null 2>&1   # killed after the commit point: at most the HTML report is missing
  else
    $BIN run --resume "$dir" --cache-path "$cache" >/dev/null 2>&1
  fi
  survivors_after=$(engines "$runs")
  survivors_total=$((survivors_total + survivors + survivors_after))
  rows=$(row_lines "$dir"); unique=$(unique_rows "$dir")
  missing=$((reference_rows - unique)); duplicated=$((rows - unique))
  lost_or_duplicated=$((lost_or_duplicated + missing + duplicated))
  if [ "$(outputs "$dir")" = "$reference" ] && [ "$missing" = 0 ] && [ "$duplicated" = 0 ] && [ -f "$dir/report.html" ]; then
    identical=$((identical + 1)); verdict=identical
  else
    verdict="DIFFERENT"
  fi
  echo "$label: $verdict; rows lost $missing, duplicated $duplicated;" \
    "engines alive after the kill $survivors, after the resume $survivors_after"
}

for trial in $(seq 1 "$TRIALS"); do
  runs="$work/trial$trial"
  cache="$work/cache$trial.sqlite"
  delay=$(python3 -c "import random; print(round(random.uniform(($trial - 1) / $TRIALS, $trial / $TRIALS) * $baseline, 2))")
  $BIN run --config "$strict" --limit "$ROWS" --runs-dir "$runs" --cache-path "$cache" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null && killed=killed || killed="finished before the kill"
  wait "$pid" 2>/dev/null || true
  finish_trial "trial $trial: $killed after ${delay}s"
done
points="before-summary after-summary"
if grep -qE "type: (dedup|mine)" "$CONFIG"; then
  points="barrier-input-committed barrier-outputs-written barrier-committed $points"
fi
total=$TRIALS
for point in $points; do
  total=$((total + 1))
  runs="$work/$point"
  cache="$work/$point.sqlite"
  # In a subshell, so bash's own "Killed" notice stays out of the output.
  (LABELFORGE_CRASH_AT=$point exec $BIN run --config "$strict" --limit "$ROWS" --runs-dir "$runs" \
    --cache-path "$cache" >/dev/null 2>&1) 2>/dev/null && killed="not killed" || killed=killed
  finish_trial "crash point $point: $killed"
done
echo "$identical/$total identical; rows lost or duplicated: $lost_or_duplicated; surviving engines: $survivors_total"
[ "$identical" = "$total" ] && [ "$lost_or_duplicated" = 0 ] && [ "$survivors_total" = 0 ]
