#!/usr/bin/env bash
# The embedded engine when the machine is busy: runs configs/mvp-llm.yaml (first ROWS rows, empty cache
# each time) on an idle machine and next to `stress-ng --cpu <cores>` (every core busy, as during a
# build), for llama.cpp's own defaults (threads: every core, poll 50) and for the settings a shared
# machine calls for (one thread fewer than cores; poll 0, so idle ggml threads sleep instead of
# spinning). Prints each setting's time idle and loaded and the slowdown.
# Usage: bench/engine_contention.sh [ROWS=40] [SETTINGS="default threads poll threads+poll"]
# Installs stress-ng (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-40}
SETTINGS=${2:-"default threads poll threads+poll"}
command -v stress-ng >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null; }
make -s setup >/dev/null
swift build -q
BIN=$PWD/.build/debug/labelforge
cores=$(nproc)
work=$(mktemp -d)
config="configs/.contention.$$.yaml"   # beside the original, so its relative paths resolve
trap 'rm -f "$config"; pkill -f "stress-ng --cpu $cores --timeout 3600" 2>/dev/null || true; rm -rf "$work"' EXIT

# The engine block's settings for one named setting (0 threads = llama.cpp decides; no poll = 50).
engine_lines() {
  case "$1" in
    default) echo "    threads: 0" ;;
    threads) echo "    threads: $((cores > 1 ? cores - 1 : 1))" ;;
    poll) printf '    threads: 0\n    poll: 0\n' ;;
    threads+poll) printf '    threads: %s\n    poll: 0\n' "$((cores > 1 ? cores - 1 : 1))" ;;
    auto) ;;   # whatever LabelForge's defaults are now
  esac
}

run_once() {   # prints seconds
  local start end
  start=$(date +%s.%N)
  $BIN run --config "$config" --limit "$ROWS" --runs-dir "$work/runs" --cache-path "$work/c$RANDOM$RANDOM.sqlite" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "print(round($end - $start, 1))"
}

echo "configs/mvp-llm.yaml, $ROWS rows, $cores cores; loaded = next to stress-ng --cpu $cores"
printf '%-14s %10s %10s %9s\n' setting idle_s loaded_s slowdown
for setting in $SETTINGS; do
  awk -v lines="$(engine_lines "$setting")" '{ print } /^    max_in_flight:/ && lines != "" { print lines }' \
    configs/mvp-llm.yaml > "$config"
  idle=$(run_once)
  stress-ng --cpu "$cores" --timeout 3600 >/dev/null 2>&1 &
  stress=$!
  sleep 1
  loaded=$(run_once)
  kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null || true
  printf '%-14s %10s %10s %8sx\n' "$setting" "$idle" "$loaded" "$(python3 -c "print(round($loaded / $idle, 1))")"
done
