#!/usr/bin/env bash
# Label quality on real text that chose no method: Debian package descriptions labeled with their
# archive Section (8 Sections), drawn from the corpus's packages that are NOT in the 4,000-row set
# docs/quality.md chose its methods on (runs/real_data/out/labeled.jsonl). Every figure comes with
# its bootstrap 95% interval and the chance level beside it, all sides in one invocation:
#   1. embedding zero-shot against the embedded chat model zero-shot, on the same LLM_ROWS rows:
#      accuracy with intervals, rows/s, and the paired difference (`labelforge diff`);
#   2. the embedding classifier with a pool of POOL examples per Section (prototypes) on PER_CLASS
#      rows per Section, against zero-shot on the same rows;
#   3. a cascade (prototypes, then the chat model below the confidence that sends ≤ 30% of the rows
#      to it) against the chat model alone, on the LLM_ROWS rows;
#   4. `calibrate` (isotonic) on the prototypes' confidences: ECE on the held-out half, before/after;
#   5. review: the share of wrong labels among the 20% least confident rows (`export --order
#      confidence`), against 20% for a random 20%, and the most any ordering could find.
# Usage: bench/label_quality.sh [PER_CLASS=200] [POOL=64] [LLM_ROWS=160]
# LF_BIN picks the labelforge binary (default: a release build, made here). Needs `make setup`
# (local engines and models) and builds the corpus into runs/real_data/out (git-ignored) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
PER_CLASS=${1:-200}
POOL=${2:-64}
LLM_ROWS=${3:-160}
make -s setup >/dev/null
[ -f runs/real_data/out/docs.jsonl ] || python3 bench/real_data/make_corpus.py runs/real_data/out >/dev/null
if [ -z "${LF_BIN:-}" ]; then
  swift build -c release --product labelforge -q
  LF_BIN=$(swift build -c release --show-bin-path)/labelforge
fi
work=$(mktemp -d)
[ -n "${KEEP_WORK:-}" ] && echo "work: $work" >&2
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
# A fresh cache unless one is given (LABELFORGE_CACHE_DIR: a rerun from it sends no request).
export LABELFORGE_CACHE_DIR="${LABELFORGE_CACHE_DIR:-$work/cache}"

# The sets: per Section, the first POOL unseen packages are the pool, the next PER_CLASS the test
# rows (Sections with too few unseen packages give what they have); LLM_ROWS of them, balanced, for
# the chat model.
python3 - "$work" "$PER_CLASS" "$POOL" "$LLM_ROWS" <<'PY'
import json, sys
work, per_class, pool_size, llm_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
src = "runs/real_data/out"
seen = {json.loads(l)["id"] for l in open(f"{src}/labeled.jsonl", encoding="utf-8")}
sections = sorted({json.loads(l)["label"] for l in open(f"{src}/labeled.jsonl", encoding="utf-8")})
by_section = {s: [] for s in sections}
for line in open(f"{src}/docs.jsonl", encoding="utf-8"):
    d = json.loads(line)
    if d["id"] not in seen and d.get("label") in by_section:
        by_section[d["label"]].append({"id": d["id"], "text": d["text"], "label": d["label"]})
def write(name, rows):
    with open(f"{work}/{name}.jsonl", "w", encoding="utf-8") as f:
        for row in rows: f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
write("pool", [r for s in sections for r in by_section[s][:pool_size]])
test = [r for s in sections for r in by_section[s][pool_size:pool_size + per_class]]
write("test", test)
per = llm_rows // len(sections)
write("llm", [r for s in sections for r in by_section[s][pool_size:pool_size + per]])
print(f"sets: {len(test)} test rows ({per_class} per Section at most), pool {pool_size} per Section, "
      f"{per * len(sections)} rows for the chat model; none of them in runs/real_data/out/labeled.jsonl")
PY

labels='    labels:
      - {name: libs, description: a shared library}
      - {name: libdevel, description: headers and static files to build against a library}
      - {name: python, description: a Python module or tool}
      - {name: doc, description: documentation}
      - {name: perl, description: a Perl module or tool}
      - {name: devel, description: a development tool}
      - {name: utils, description: a general utility}
      - {name: haskell, description: a Haskell library or tool}
    gold_field: label'
config() {   # config NAME DATASET STAGE_OPTIONS [EXTRA_STAGES]: a config with both local engines
  cat > "$work/$1.yaml" <<YAML
run: {name: $1, seed: 20261206}
dataset: {path: $work/$2.jsonl, id_field: id}
engines:
  - {name: local, kind: local, model: {id: smollm2-135m-instruct-q4_1}, slots: 2, max_in_flight: 4}
  - {name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2}}
prompts: {pack: $PWD/prompts/debian}
stages:
  - id: section
    type: classify
$3
$labels
    sampling: {temperature: 0, max_tokens: 8, top_logprobs: 20}
${4:-}
YAML
}
embedding='    method: embedding
    engine: embedder
    field: text
    label_prefix: "A Debian package: "'
config zero test "$embedding"
config proto test "$embedding
    examples: {path: $work/pool.jsonl}" "  - {id: calibrated, type: calibrate, stage: section, gold_field: label, method: isotonic}"
config llm llm '    engine: local
    template: classify_section'
config zero_small llm "$embedding"
config proto_small llm "$embedding
    examples: {path: $work/pool.jsonl}"

run() {   # run NAME: the run directory in $work/NAME.dir, wall seconds in $work/NAME.seconds
  local start end
  start=$(date +%s.%N)
  "$LF_BIN" run --config "$work/$1.yaml" --runs-dir "$work/runs-$1" > "$work/$1.log" 2>&1 \
    || { echo "labelforge run $1 failed:"; tail -5 "$work/$1.log"; exit 1; }
  end=$(date +%s.%N)
  ls -d "$work/runs-$1"/*/ | head -1 > "$work/$1.dir"
  python3 -c "print($end - $start)" > "$work/$1.seconds"
}
for name in zero proto zero_small proto_small llm; do run "$name"; done

# The cascade's threshold: the proto confidence under which at most 30% of the small set falls.
below=$(python3 - "$(cat "$work/proto_small.dir")" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/outputs/section.jsonl")]
confidences = sorted(r["confidence"] for r in rows if "confidence" in r)
print(confidences[max(0, int(len(confidences) * 0.3) - 1)])
PY
)
config cascade llm "$embedding
    examples: {path: $work/pool.jsonl}
    template: classify_section
    fallback: {below: $below, engine: local}"
run cascade

for name in zero proto zero_small llm proto_small cascade; do
  rows=$(python3 -c "import json,sys; print(sum(1 for _ in open(sys.argv[1] + '/outputs/section.jsonl')))" "$(cat "$work/$name.dir")")
  printf "%-12s %s  (%.1f rows/s, whole run with engine start)\n" "$name" "$(grep -E '^accuracy' "$work/$name.log" | sed 's/^accuracy section.label vs label: //')" \
    "$(python3 -c "print($rows / $(cat "$work/$name.seconds"))")"
done
echo
echo "paired differences (labelforge diff):"
for pair in "zero_small llm" "zero proto" "llm cascade"; do
  set -- $pair
  printf "  %s → %s: " "$1" "$2"
  # diff exits 1 when the outputs differ, as they do here.
  { "$LF_BIN" diff "$(cat "$work/$1.dir")" "$(cat "$work/$2.dir")" || true; } | grep "b − a" | sed 's/^ *b − a: //'
done
echo
python3 - "$(cat "$work/proto.dir")" "$(cat "$work/cascade.dir")" <<'PY'
import json, sys
proto, cascade = sys.argv[1], sys.argv[2]
calibration = json.load(open(proto + "/outputs/calibrated.calibration.json"))
print(f"calibrate (isotonic) on the prototypes: held-out ECE {calibration['ece_before']:.3f} → "
      f"{calibration['ece_after']:.3f} ({calibration['eval_rows']} rows; target ≤ 0.05)")
rows = [json.loads(l) for l in open(proto + "/dataset.jsonl")]
pairs = [(r["outputs"]["section"]["confidence"], r["outputs"]["section"]["label"] == r["input"]["label"]) for r in rows]
wrong = sum(1 for _, ok in pairs if not ok)
order = sorted(range(len(pairs)), key=lambda i: (pairs[i][0], i))
top = order[:len(pairs) // 5]
found = sum(1 for i in top if not pairs[i][1])
print(f"review: the 20% least confident rows hold {found} of {wrong} wrong labels ({found / max(1, wrong):.1%}; "
      f"a random 20% holds 20%, the best ordering {min(1, len(top) / max(1, wrong)):.1%}; target ≥ 50%)")
routes = [json.loads(l)["route"] for l in open(cascade + "/outputs/section.jsonl")]
print(f"cascade: {routes.count('llm')} of {len(routes)} rows ({routes.count('llm') / len(routes):.1%}) went to the chat model "
      f"(target ≤ 30%)")
PY
