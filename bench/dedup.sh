#!/usr/bin/env bash
# Near-duplicate removal, LabelForge's `dedup` (method: minhash) against datasketch 2.0's MinHash +
# MinHashLSH, on the same documents in one invocation.
# Generates (fixed seed) DOCS documents of 60-120 random words, a fifth of them edited copies of an
# earlier document (1-8% of the words replaced); word 3-gram shingles, 128 permutations, threshold
# 0.8 for both. LabelForge runs a one-stage pipeline (release build: read the JSONL, shingle, sign,
# index, verify every candidate by exact Jaccard, write the outputs); datasketch builds the index
# (insert) and queries every document, the usual dedup loop, twice: at its defaults (its own bands
# and rows, candidates taken as pairs), and matched to LabelForge (LabelForge's bands and rows, and
# every candidate verified by exact Jaccard as LabelForge verifies it), so that the matched line
# compares tools, not settings. Prints docs/s of each, the ratios, and each one's pair precision and
# recall against exact Jaccard >= 0.8, computed over every pair any run proposed and every planted
# pair (unplanted pairs of random documents share no 3-gram).
# Usage: bench/dedup.sh [DOCS=100000]
# Installs datasketch 2.0.0 into the git-ignored .venv-bench when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-100000}
[ -x .venv-bench/bin/python3 ] || python3 -m venv .venv-bench
.venv-bench/bin/python3 -c "import datasketch, sys; sys.exit(datasketch.__version__ != '2.0.0')" 2>/dev/null \
  || .venv-bench/bin/python3 -m pip -q install datasketch==2.0.0
# LABELFORGE_BENCH_BIN: time this labelforge instead of a release build of the tree
# (bench/compare_builds.sh runs a bench with a baseline build and the tree's).
if [ -n "${LABELFORGE_BENCH_BIN:-}" ]; then BIN=$LABELFORGE_BENCH_BIN; else
  swift build -c release --product labelforge -q
  BIN=$(swift build -c release --show-bin-path)/labelforge
fi
work=$(mktemp -d)
[ -n "${KEEP_WORK:-}" ] && echo "work: $work" >&2 || trap 'rm -rf "$work"' EXIT

.venv-bench/bin/python3 - "$work" "$DOCS" <<'PY'
import sys, json, random
work, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261126)
vocab = [f"w{i}" for i in range(50000)]
docs, planted = [], []
for i in range(n):
    if i > 100 and rng.random() < 0.2:
        source = rng.randrange(len(docs))
        words = docs[source].split()
        rate = rng.uniform(0.01, 0.08)
        for _ in range(max(1, round(len(words) * rate))):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        docs.append(" ".join(words)); planted.append((source, i))
    else:
        docs.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(60, 120))))
with open(f"{work}/docs.jsonl", "w") as f:
    for i, d in enumerate(docs):
        f.write(json.dumps({"id": f"d{i}", "text": d}) + "\n")
json.dump(planted, open(f"{work}/planted.json", "w"))
open(f"{work}/config.yaml", "w").write("""run: {name: dedup-bench, seed: 1}
dataset: {path: %s/docs.jsonl, id_field: id}
cache: {path: %s/cache.sqlite}
stages:
  - {id: dedup, type: dedup, field: text, method: minhash, threshold: 0.8, num_perm: 128, shingle: word, ngram: 3}
""" % (work, work))
PY

start=$(date +%s.%N)
/usr/bin/time -f "%e %M" -o "$work/lf.time" "$BIN" run --config "$work/config.yaml" --runs-dir "$work/runs" > "$work/lf.out" 2>&1 \
  || { cat "$work/lf.out"; exit 1; }
end=$(date +%s.%N)
run=$(ls -d "$work"/runs/*/ | head -1)

.venv-bench/bin/python3 - "$work" "$run" "$DOCS" "$(echo "$end - $start" | bc)" <<'PY'
import sys, json, time
from datasketch import MinHash, MinHashLSH
work, run, n, lf_seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
docs = [json.loads(l)["text"] for l in open(f"{work}/docs.jsonl")]
planted = [tuple(p) for p in json.load(open(f"{work}/planted.json"))]
def shingles(text):
    w = text.lower().split()
    return {" ".join(w[i:i + 3]) for i in range(max(1, len(w) - 2))}

stats = json.load(open(f"{run}/outputs/dedup.dedup.json"))
bands, rows = stats["parameters"]["bands"], stats["parameters"]["rows"]
sets = {}
def jaccard(a, b):
    x = sets.setdefault(a, shingles(docs[a])); y = sets.setdefault(b, shingles(docs[b]))
    return len(x & y) / len(x | y)

def lsh_default_params():
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    return f"{lsh.b}x{lsh.r}"

def datasketch(params=None, verify=False):
    """datasketch's dedup loop: sign and insert every document, query every one; with `verify`,
    keep a candidate only at exact Jaccard >= 0.8 (the shingle sets are built inside the timing)."""
    start = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128, params=params)
    signatures, shingle_sets = [], []
    for i, d in enumerate(docs):
        s = shingles(d)
        shingle_sets.append(s)
        m = MinHash(num_perm=128)
        m.update_batch([x.encode() for x in s])
        lsh.insert(i, m)
        signatures.append(m)
    pairs = set()
    for i, m in enumerate(signatures):
        for j in lsh.query(m):
            if j == i:
                continue
            pair = (min(i, j), max(i, j))
            if pair in pairs:
                continue
            if verify:
                a, b = shingle_sets[pair[0]], shingle_sets[pair[1]]
                if len(a & b) / len(a | b) < 0.8:
                    continue
            pairs.add(pair)
    return pairs, time.perf_counter() - start

ds_pairs, ds_seconds = datasketch()
matched_pairs, matched_seconds = datasketch(params=(bands, rows), verify=True)

index = {f"d{i}": i for i in range(n)}
lf_pairs = set()
for line in open(f"{run}/outputs/dedup.pairs.jsonl"):
    p = json.loads(line)
    a, b = index[p["first"]], index[p["second"]]
    lf_pairs.add((min(a, b), max(a, b)))

universe = ds_pairs | matched_pairs | lf_pairs | {(min(a, b), max(a, b)) for a, b in planted}
truth = {p for p in universe if jaccard(*p) >= 0.8}
def pr(found):
    hit = len(found & truth)
    return (hit / len(found) if found else 1.0), hit / len(truth)
lp, lr = pr(lf_pairs); dp, dr = pr(ds_pairs); mp, mr = pr(matched_pairs)
lf_rate, ds_rate, matched_rate = n / lf_seconds, n / ds_seconds, n / matched_seconds
print(f"documents: {n}, planted near-duplicates: {len(planted)}, true pairs (Jaccard >= 0.8): {len(truth)}")
print(f"LabelForge minhash (bands x rows {bands}x{rows}, candidates verified): "
      f"{lf_seconds:.2f} s (whole process), {lf_rate:,.0f} docs/s, precision {lp:.4f}, recall {lr:.4f}, "
      f"removed {stats['removed']} in {stats['clusters']} clusters")
print(f"datasketch 2.0, its defaults ({lsh_default_params()} bands x rows, unverified): "
      f"{ds_seconds:.2f} s, {ds_rate:,.0f} docs/s, precision {dp:.4f}, recall {dr:.4f}")
print(f"datasketch 2.0, matched ({bands}x{rows}, candidates verified by exact Jaccard): "
      f"{matched_seconds:.2f} s, {matched_rate:,.0f} docs/s, precision {mp:.4f}, recall {mr:.4f}")
print(f"ratio LabelForge / datasketch docs/s: {lf_rate / ds_rate:.1f}x at its defaults, "
      f"{lf_rate / matched_rate:.1f}x matched")
PY
echo "LabelForge process: $(cut -d' ' -f1 "$work/lf.time") s wall, peak RSS $(( $(cut -d' ' -f2 "$work/lf.time") / 1024 )) MB"
