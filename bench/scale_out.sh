#!/usr/bin/env bash
# Scale-out figures for docs/perf_tuning.md, each against its baseline in this same invocation:
#   1. max_in_flight against one server that holds 64 requests at once (100 ms each);
#   2. replicas: 1, 2, 4 servers of 8 slots each behind one engine (base_urls);
#   3. shards: 2 shard processes + merge against 1 process, on 4 replicas;
#   4. the cache: a fully cached rerun from SQLite, S3 (SeaweedFS) and tiered;
#   5. Ray: the same rows through a local Ray head (Ray Data LLM jobs) against plain HTTP, with the
#      job files in a shared directory and in the S3 bucket.
# The engine is bench/latency_stub.py (a GPU server's shape: fixed latency, bounded batch), so the
# figures measure LabelForge and its plumbing, not a model. Needs .venv/bin/weed and .venv-ray
# (scripts/test_deps.sh) for parts 4 and 5. usage: bench/scale_out.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-200}
BIN=${LABELFORGE_BIN:-$PWD/.build/debug/labelforge}
[ -x "$BIN" ] || swift build
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 130" INT TERM
free_port() { python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
stub() { # LATENCY CAPACITY -> sets $stub_port (not a $(...): the server would hold its pipe open)
  stub_port=$(free_port)
  python3 bench/latency_stub.py "$stub_port" "$1" "$2" > /dev/null 2>&1 & pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$stub_port/v1/models" >/dev/null && break; sleep 0.1; done
}
mkdir -p "$work/data" "$work/prompts"
python3 -c "
import json
with open('$work/data/rows.jsonl', 'w') as f:
    for i in range($ROWS): f.write(json.dumps({'id': 'r%d' % i, 'text': 'review number %d' % i}) + '\n')"
printf 'name: bench\nversion: 1\n' > "$work/prompts/pack.yaml"
printf 'Sentiment of: {{text}}\nAnswer with one of {{label_names}}.\n' > "$work/prompts/classify.mustache"
config() { # NAME ENGINE-BLOCK CACHE-BLOCK
  cat > "$work/$1.yaml" <<YAML
run: {seed: 1}
dataset: {path: $work/data/rows.jsonl, id_field: id}
engines:
$2
prompts: {pack: $work/prompts}
cache: $3
stages:
  - {id: sentiment, type: classify, labels: [positive, negative, neutral]}
YAML
}
seconds() { # prints the run's wall seconds; args: labelforge arguments
  local start end; start=$(date +%s.%N)
  "$BIN" "$@" > "$work/last.out" 2> "$work/last.err" || { cat "$work/last.err"; exit 1; }
  end=$(date +%s.%N); python3 -c "print(f'{$end - $start:.2f}')"
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
# Runs config $1 and prints "$2: S s, R rows/s, Nx $3"; a section's first run (base="") is its baseline.
timed() {
  local s; s=$(seconds run --config "$work/$1.yaml" --runs-dir "$work/runs")
  [ -z "$base" ] && base=$s
  echo "$2: $s s, $(python3 -c "print(f'{$ROWS / $s:.1f}')") rows/s, $(ratio "$base" "$s")x $3"
}

echo "== 1. max_in_flight: one server, 64 slots, 100 ms a request, $ROWS rows"
stub 0.1 64; port=$stub_port
base=""
for n in 1 4 16 64; do
  config "c$n" "  - {name: e, kind: openai, dialect: vllm, base_url: \"http://127.0.0.1:$port\", model: {id: bench, revision: r}, max_in_flight: $n}" "{path: $work/c$n.sqlite}"
  timed "c$n" "max_in_flight $n" "max_in_flight 1"
done

echo "== 2. replicas: servers of 8 slots each, 100 ms a request, max_in_flight 8 per replica"
ports=()
for _ in 1 2 3 4; do stub 0.1 8; ports+=("$stub_port"); done
base=""
for r in 1 2 4; do
  urls=$(for p in "${ports[@]:0:$r}"; do printf '"http://127.0.0.1:%s", ' "$p"; done)
  config "r$r" "  - {name: e, kind: openai, dialect: vllm, base_urls: [${urls%, }], model: {id: bench, revision: r}, max_in_flight: $((8 * r)), max_in_flight_per_replica: 8}" "{path: $work/r$r.sqlite}"
  timed "r$r" "replicas $r" "1 replica"
done

echo "== 3. shards: 2 shard processes at once + merge, against 1 process (4 replicas, max_in_flight 16 per process)"
urls=$(for p in "${ports[@]}"; do printf '"http://127.0.0.1:%s", ' "$p"; done)
engine="  - {name: e, kind: openai, dialect: vllm, base_urls: [${urls%, }], model: {id: bench, revision: r}, max_in_flight: 16, max_in_flight_per_replica: 8}"
config one "$engine" "{path: $work/one.sqlite}"
one=$(seconds run --config "$work/one.yaml" --runs-dir "$work/runs-one")
config sharded "$engine" "{path: $work/sharded.sqlite}"
start=$(date +%s.%N)
"$BIN" run --config "$work/sharded.yaml" --shard 0/2 --runs-dir "$work/shards" > /dev/null 2>&1 & a=$!
"$BIN" run --config "$work/sharded.yaml" --shard 1/2 --runs-dir "$work/shards" > /dev/null 2>&1 & b=$!
wait $a $b
mid=$(date +%s.%N)
"$BIN" merge "$work"/shards/* --runs-dir "$work/merged" > /dev/null 2>&1
end=$(date +%s.%N)
shards=$(python3 -c "print(f'{$mid - $start:.2f}')"); merge=$(python3 -c "print(f'{$end - $mid:.2f}')")
total=$(python3 -c "print(f'{$end - $start:.2f}')")
echo "1 process: $one s; 2 shards: $shards s + merge $merge s = $total s, $(ratio "$one" "$total")x 1 process"
cmp -s "$work"/runs-one/*/outputs/sentiment.jsonl "$work"/merged/*/outputs/sentiment.jsonl && echo "merged outputs byte-identical to 1 process: yes"

if [ -x .venv/bin/weed ]; then
  echo "== 4. a fully cached rerun ($ROWS rows): SQLite, S3 (SeaweedFS on loopback), tiered"
  wp=($(for _ in $(seq 10); do free_port; done))
  mkdir -p "$work/weed"
  echo '{"identities":[{"name":"b","credentials":[{"accessKey":"bench","secretKey":"bench-secret"}],"actions":["Admin","Read","Write","List"]}]}' > "$work/weed/s3.json"
  .venv/bin/weed mini -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$work/weed/s3.json" -webdav=false \
    -admin.ui=false -master.telemetry=false -s3.port.iceberg=0 -s3.port.lance=0 -bucket=bench \
    -master.port=${wp[0]} -master.port.grpc=${wp[1]} -volume.port=${wp[2]} -volume.port.grpc=${wp[3]} \
    -filer.port=${wp[4]} -filer.port.grpc=${wp[5]} -s3.port=${wp[6]} -s3.port.grpc=${wp[7]} \
    -admin.port=${wp[8]} -admin.port.grpc=${wp[9]} > "$work/weed.log" 2>&1 & pids+=($!)
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
  engine="  - {name: e, kind: openai, dialect: vllm, base_url: \"http://127.0.0.1:${ports[0]}\", model: {id: bench, revision: r}, max_in_flight: 8}"
  config sq "$engine" "{path: $work/sq.sqlite}"
  config s3 "$engine" "{kind: s3, bucket: bench, prefix: p, endpoint: \"http://127.0.0.1:${wp[6]}\"}"
  config ti "$engine" "{kind: tiered, path: $work/ti.sqlite, bucket: bench, prefix: p, endpoint: \"http://127.0.0.1:${wp[6]}\"}"
  for _ in $(seq 100); do "$BIN" cache stats --config "$work/s3.yaml" >/dev/null 2>&1 && break; sleep 0.2; done
  seconds run --config "$work/sq.yaml" --runs-dir "$work/runs" >/dev/null
  seconds run --config "$work/s3.yaml" --runs-dir "$work/runs" >/dev/null
  seconds run --config "$work/ti.yaml" --runs-dir "$work/runs" >/dev/null   # fills the local tier from S3
  sq=$(seconds run --config "$work/sq.yaml" --runs-dir "$work/runs")
  s3=$(seconds run --config "$work/s3.yaml" --runs-dir "$work/runs")
  ti=$(seconds run --config "$work/ti.yaml" --runs-dir "$work/runs")
  grep -q "engine requests sent: 0" "$work/last.out" || { echo "the tiered rerun sent requests"; exit 1; }
  echo "cached rerun: SQLite $sq s; S3 $s3 s ($(ratio "$s3" "$sq")x SQLite); tiered $ti s ($(ratio "$ti" "$sq")x SQLite)"
fi

if [ -x .venv-ray/bin/ray ]; then
  echo "== 5. Ray Data LLM jobs against plain HTTP ($ROWS rows, the same server: 64 slots, 100 ms)"
  rp=($(for _ in $(seq 9); do free_port; done))
  mkdir -p "/tmp/lfb-$$"
  # Token authentication, with a token of its own (labelforge reads RAY_AUTH_TOKEN as Ray's clients do).
  export RAY_AUTH_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0 .venv-ray/bin/ray start --head --block --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 \
    --include-dashboard=true --num-cpus=2 --temp-dir="/tmp/lfb-$$" --disable-usage-stats --port=${rp[0]} \
    --dashboard-port=${rp[1]} --ray-client-server-port=${rp[2]} --object-manager-port=${rp[3]} \
    --node-manager-port=${rp[4]} --dashboard-agent-listen-port=${rp[5]} --dashboard-agent-grpc-port=${rp[6]} \
    --runtime-env-agent-port=${rp[7]} --metrics-export-port=${rp[8]} --min-worker-port=22000 --max-worker-port=22099 \
    > "$work/ray.log" 2>&1 & head=$!
  for _ in $(seq 120); do curl -sf -H "Authorization: Bearer $RAY_AUTH_TOKEN" "http://127.0.0.1:${rp[1]}/api/version" >/dev/null && break; sleep 0.5; done
  config http "  - {name: e, kind: openai, dialect: vllm, base_url: \"http://127.0.0.1:$port\", model: {id: bench, revision: r}, max_in_flight: 64}" "{path: $work/http.sqlite}"
  http=$(seconds run --config "$work/http.yaml" --runs-dir "$work/runs")
  echo "HTTP: $http s"
  # The HTTP processor awaits a batch's requests one after another: parallelism comes from actors.
  for shape in "64 1" "16 2"; do
    set -- $shape
    config "ray$1" "  - {name: e, kind: ray, dialect: vllm, address: \"http://127.0.0.1:${rp[1]}\", base_url: \"http://127.0.0.1:$port\", python: $PWD/.venv-ray/bin/python, output_dir: $work/ray-out, model: {id: bench, revision: r}, max_in_flight: 512, batch_size: $1, concurrency: $2}" "{path: $work/ray$1.sqlite}"
    ray=$(seconds run --config "$work/ray$1.yaml" --runs-dir "$work/runs")
    echo "Ray, one job of $ROWS requests, batch_size $1, concurrency $2: $ray s ($(ratio "$ray" "$http")x HTTP)"
    [ "$1" = 64 ] && shared=$ray
  done
  if [ -n "${wp[6]:-}" ]; then
    # The same job with its request file and results in the S3 cache's bucket (no output_dir); the
    # head got the bucket's credentials from the environment section 4 exported.
    config raybucket "  - {name: e, kind: ray, dialect: vllm, address: \"http://127.0.0.1:${rp[1]}\", base_url: \"http://127.0.0.1:$port\", python: $PWD/.venv-ray/bin/python, model: {id: bench, revision: r}, max_in_flight: 512, batch_size: 64, concurrency: 1}" "{kind: s3, bucket: bench, prefix: raybucket, endpoint: \"http://127.0.0.1:${wp[6]}\"}"
    bucket=$(seconds run --config "$work/raybucket.yaml" --runs-dir "$work/runs")
    echo "Ray, the same job (batch_size 64) with its files through the bucket: $bucket s ($(ratio "$bucket" "$shared")x the shared directory)"
  fi
  tree=$(ps -o pid= --ppid $head; for c in $(ps -o pid= --ppid $head); do ps -o pid= --ppid $c; done)
  kill $head 2>/dev/null; sleep 3; kill -9 $head $tree 2>/dev/null || true; rm -rf "/tmp/lfb-$$"
fi
