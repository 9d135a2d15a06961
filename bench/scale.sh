#!/usr/bin/env bash
# Scale: 10k, 100k and 1M classify rows through a zero-latency stub engine (nginx answering every
# chat completion with one valid vLLM-shaped response), release build. For each size prints rows/s
# and peak RSS of `run` (empty cache), a fully cached rerun, `inspect`, `diff` (the two runs) and
# `replay` (from the cache). Peak RSS must stay flat as rows grow: the bench fails (exit 1) when any
# command's peak RSS is 300 MB or more, or grows more than 1.5x from the smallest size to the
# largest.
# Usage: bench/scale.sh [SIZES="10000 100000 1000000"] [CONCURRENCY=64]
# Installs nginx (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${1:-"10000 100000 1000000"}
CONCURRENCY=${2:-64}
# LABELFORGE_BENCH_BIN: time this labelforge instead of a release build of the tree
# (bench/compare_builds.sh runs a bench with a baseline build and the tree's).
if [ -n "${LABELFORGE_BENCH_BIN:-}" ]; then BIN=$LABELFORGE_BENCH_BIN; else
  swift build -c release --product labelforge -q
  BIN=$(swift build -c release --show-bin-path)/labelforge
fi

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

# Every "<command> <peak MB>" measured, per size, for the check at the end.
: > "$work/rss"
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
  printf '%-8s %-8s %12s %10s\n' "$rows" run "$rate" "$rss"; echo "$rows run $rss" >> "$work/rss"
  first=$(ls -d "$work"/runs/* | head -1)
  read -r rate rss < <(measure "$rows" "$BIN" run --config "$work/config.yaml" --runs-dir "$work/runs" --cache-path "$work/cache.sqlite")
  printf '%-8s %-8s %12s %10s\n' "$rows" rerun "$rate" "$rss"; echo "$rows rerun $rss" >> "$work/rss"
  second=$(ls -d "$work"/runs/* | grep -v "$first" | head -1)
  read -r rate rss < <(measure "$rows" "$BIN" inspect "$first")
  printf '%-8s %-8s %12s %10s\n' "$rows" inspect "$rate" "$rss"; echo "$rows inspect $rss" >> "$work/rss"
  read -r rate rss < <(measure "$rows" "$BIN" diff "$first" "$second")
  printf '%-8s %-8s %12s %10s\n' "$rows" diff "$rate" "$rss"; echo "$rows diff $rss" >> "$work/rss"
  read -r rate rss < <(measure "$rows" "$BIN" replay --manifest "$first/manifest.jsonl" --runs-dir "$work/replays" --cache-path "$work/cache.sqlite")
  printf '%-8s %-8s %12s %10s\n' "$rows" replay "$rate" "$rss"; echo "$rows replay $rss" >> "$work/rss"
  rm -rf "$work/runs" "$work/replays"
done

# Flat RSS: under 300 MB everywhere, and at the largest size at most 1.5x the smallest's, per command.
python3 - "$work/rss" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
sizes = sorted({int(r[0]) for r in rows})
peak = {(int(n), c): int(mb) for n, c, mb in rows}
failures = [f"{c} at {n} rows: {mb} MB (limit 300)" for (n, c), mb in peak.items() if mb >= 300]
if len(sizes) > 1:
    for command in sorted({c for _, c in peak}):
        small, large = peak[(sizes[0], command)], peak[(sizes[-1], command)]
        if large > 1.5 * small:
            failures.append(f"{command}: {small} MB at {sizes[0]} rows, {large} MB at {sizes[-1]} rows (> 1.5x)")
print("flat RSS: " + ("no" if failures else "yes (every command under 300 MB, at most 1.5x from the smallest size)"))
for failure in failures:
    print("  " + failure)
sys.exit(1 if failures else 0)
PY
