#!/usr/bin/env bash
# Scale: 10k, 100k and 1M classify rows through a zero-latency stub engine (nginx answering every
# chat completion with one valid vLLM-shaped response), release build. For each size prints rows/s
# and peak RSS of `run` (empty cache), a fully cached rerun, `inspect`, `diff` (the two runs) and
# `replay` (from the cache). Peak RSS must stay flat (< 300 MB) as rows grow.
# Usage: bench/scale.sh [SIZES="10000 100000 1000000"] [CONCURRENCY=64]
# Installs nginx (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${1:-"10000 100000 1000000"}
CONCURRENCY=${2:-64}
swift build -c release --product labelforge -q
BIN=$(swift build -c release --show-bin-path)/labelforge

work=$(mktemp -d)
. bench/nginx_stub.sh
trap 'stop_nginx_stub "$work"; rm -rf "$work"' EXIT
start_nginx_stub "$work"

mkdir -p "$work/prompts"
printf 'name: bench\nversion: "1"\n' > "$work/prompts/pack.yaml"
printf 'Classify the sentiment of this review.\nReview: {{text}}\nAnswer with one of {{label_names}}.\n' > "$work/prompts/classify.mustache"

# Runs one command under /usr/bin/time; prints "<rows/s> <peak RSS MB>".
measure() {
  local rows=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr" \
    || { [ "$1" = "$BIN" ] && [ "$2" = diff ] || { cat "$work/stderr"; exit 1; }; }
  read -r seconds kb < "$work/time"
  python3 -c "print(f'{$rows / max($seconds, 0.01):.0f} {$kb / 1024:.0f}')"
}

printf '%-8s %-8s %12s %10s\n' rows command rows_per_s peak_MB
for rows in $SIZES; do
  python3 - "$work/data.jsonl" "$rows" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(rows):
        f.write('{"id":"b%07d","text":"Review number %d: the blender is fine and works as described."}\n' % (i, i))
PY
  cat > "$work/config.yaml" <<YAML
run: {name: scale, seed: 1}
dataset: {path: $work/data.jsonl, id_field: id}
engines:
  - {name: stub, kind: openai, dialect: vllm, base_url: "http://127.0.0.1:$port", model: {id: bench, revision: r1}, max_in_flight: $CONCURRENCY, max_retries: 0}
prompts: {pack: $work/prompts}
stages:
  - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
YAML
  rm -rf "$work/runs" "$work/cache.sqlite"*
  read -r rate rss < <(measure "$rows" "$BIN" run --config "$work/config.yaml" --runs-dir "$work/runs" --cache-path "$work/cache.sqlite")
  printf '%-8s %-8s %12s %10s\n' "$rows" run "$rate" "$rss"
  first=$(ls -d "$work"/runs/* | head -1)
  read -r rate rss < <(measure "$rows" "$BIN" run --config "$work/config.yaml" --runs-dir "$work/runs" --cache-path "$work/cache.sqlite")
  printf '%-8s %-8s %12s %10s\n' "$rows" rerun "$rate" "$rss"
  second=$(ls -d "$work"/runs/* | grep -v "$first" | head -1)
  read -r rate rss < <(measure "$rows" "$BIN" inspect "$first")
  printf '%-8s %-8s %12s %10s\n' "$rows" inspect "$rate" "$rss"
  read -r rate rss < <(measure "$rows" "$BIN" diff "$first" "$second")
  printf '%-8s %-8s %12s %10s\n' "$rows" diff "$rate" "$rss"
  read -r rate rss < <(measure "$rows" "$BIN" replay --manifest "$first/manifest.jsonl" --runs-dir "$work/replays" --cache-path "$work/cache.sqlite")
  printf '%-8s %-8s %12s %10s\n' "$rows" replay "$rate" "$rss"
  rm -rf "$work/runs" "$work/replays"
done
