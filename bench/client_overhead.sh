#!/usr/bin/env bash
# Client overhead of the hot path: a release build of labelforge runs N classify rows against a
# zero-latency OpenAI-compatible stub (nginx, `return 200` with one valid chat completion), then
# the same number of requests go through Python's `openai` AsyncOpenAI + asyncio at the same
# concurrency. Each side is timed two ways, and both are printed: its whole process (start-up,
# imports, for labelforge also SQLite, manifest, outputs and reports), and its request loop alone
# (labelforge: the summary's "time", from the first row to the last output; Python: the gather).
# Also a fully cached rerun's rate, and labelforge's peak RSS at N and at 10×N rows (it should not
# grow with the row count).
# Usage: bench/client_overhead.sh [ROWS=20000] [CONCURRENCY=64]
# Installs nginx (Debian) and, into a git-ignored .venv-bench, the `openai` package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-20000}
CONCURRENCY=${2:-64}
BIG=$((ROWS * 10))

if [ ! -x .venv-bench/bin/python3 ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/python3 -c "import openai" 2>/dev/null || .venv-bench/bin/python3 -m pip -q install openai
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

python3 - "$work" "$BIG" <<'PY'
import json, sys
work, big = sys.argv[1], int(sys.argv[2])
with open(f"{work}/reviews.jsonl", "w") as f:
    for i in range(big):
        f.write(json.dumps({"id": f"b{i:07d}", "text": f"Review number {i}: the blender is fine and works as described."}) + "\n")
PY
mkdir -p "$work/prompts"
printf 'name: bench\nversion: "1"\n' > "$work/prompts/pack.yaml"
printf 'Classify the sentiment of this review.\nReview: {{text}}\nAnswer with one of {{label_names}}.\n' > "$work/prompts/classify.mustache"
config() {
  cat > "$work/$1.yaml" <<YAML
run: {name: bench, seed: 1, limit: $2}
dataset: {path: $work/reviews.jsonl, id_field: id}
engines:
  - {name: stub, kind: openai, dialect: vllm, base_url: "http://127.0.0.1:$port", model: {id: bench, revision: r1}, max_in_flight: $CONCURRENCY, max_retries: 0}
prompts: {pack: $work/prompts}
stages:
  - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
YAML
}
config small "$ROWS"
config big "$BIG"

# Prints "<rows/s over the whole process> <rows/s over the request loop> <peak RSS MB>" of one run.
run() {
  local rows=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$BIN" run "$@" >"$work/stdout" 2>"$work/stderr" || { cat "$work/stderr"; exit 1; }
  read -r seconds kb < "$work/time"
  loop=$(sed -n 's/^time: *\([0-9.]*\) s.*/\1/p' "$work/stdout")
  python3 -c "print(f'{$rows / $seconds:.0f} {$rows / max($loop, 0.001):.0f} {$kb / 1024:.0f}')"
}
read -r first first_loop first_rss < <(run "$ROWS" --config "$work/small.yaml" --runs-dir "$work/runs" --cache-path "$work/small.sqlite")
read -r cached cached_loop cached_rss < <(run "$ROWS" --config "$work/small.yaml" --runs-dir "$work/runs" --cache-path "$work/small.sqlite")
read -r big_rate big_loop big_rss < <(run "$BIG" --config "$work/big.yaml" --runs-dir "$work/runs" --cache-path "$work/big.sqlite")

/usr/bin/time -f "%e" -o "$work/python.time" .venv-bench/bin/python3 - "$port" "$ROWS" "$CONCURRENCY" > "$work/python.out" <<'PY'
import asyncio, sys, time
from openai import AsyncOpenAI
port, rows, concurrency = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

async def main():
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="bench", max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    async def one(i):
        async with gate:
            prompt = (f"Classify the sentiment of this review.\nReview: Review number {i}: the blender is fine and "
                      "works as described.\nAnswer with one of positive, negative, neutral.\n")
            r = await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=16, seed=i,
                extra_body={"structured_outputs": {"choice": ["positive", "negative", "neutral"]}})
            assert r.choices[0].message.content == "positive"
    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(rows)))
    print(f"{rows / (time.perf_counter() - start):.0f}")
    await client.close()

asyncio.run(main())
PY
python_loop=$(cat "$work/python.out")
python_rate=$(python3 -c "print(f'{$ROWS / $(cat "$work/python.time"):.0f}')")

echo "client_overhead: nginx stub on 127.0.0.1:$port, concurrency $CONCURRENCY, release build"
echo "labelforge, $ROWS classify rows, first run (cache writes + manifest): $first rows/s whole process, $first_loop rows/s request loop, peak RSS $first_rss MB"
echo "labelforge, $ROWS rows, fully cached rerun: $cached rows/s whole process, $cached_loop rows/s request loop, peak RSS $cached_rss MB"
echo "labelforge, $BIG rows, first run: $big_rate rows/s whole process, $big_loop rows/s request loop, peak RSS $big_rss MB"
echo "python openai AsyncOpenAI + asyncio, $ROWS requests: $python_rate req/s whole process, $python_loop req/s request loop"
python3 -c "print(f'ratio labelforge / python: {$first / $python_rate:.2f}x whole process, {$first_loop / $python_loop:.2f}x request loop')"
