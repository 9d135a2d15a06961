#!/usr/bin/env bash
# The release build's own check, run by .ci/run after `make test`: the optimizer can break what a
# debug build (every test) runs right — a release build of Swift 6.3.1 once gave every embedding
# classifier the wrong label vectors (StageContext.executeAll). Builds a release labelforge, runs
# the demo (configs/mvp.yaml) with it, and holds every field to what LocalEngineTests holds the
# debug build to: accuracy at least 10 points over the most common label.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product labelforge
BIN=$(swift build -c release --show-bin-path)/labelforge
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
"$BIN" run --config configs/mvp.yaml --runs-dir "$runs" > /dev/null
python3 - "$runs"/*/manifest.jsonl <<'PY'
import json, sys
summary = [json.loads(line) for line in open(sys.argv[1])][-1]
gold = summary.get("gold") or []
assert summary.get("status") == "completed" and gold, f"release demo run: {summary.get('status')}, no gold scores"
for score in gold:
    field, accuracy, majority = f"{score['stage']}.{score['field']}", score["accuracy"], score["majority_baseline"]
    print(f"release build, configs/mvp.yaml: {field} {accuracy:.1%} (most common label {majority:.1%})")
    assert accuracy >= majority + 0.10, f"{field}: {accuracy:.1%} is not 10 points over {majority:.1%}"
PY
