#!/usr/bin/env bash
# Byte identity across a refactor: runs every checked-in config that runs here (local engines) with
# BEFORE then AFTER, both on one fresh cache, and compares what they wrote.
#
#   scripts/compare_outputs.sh BEFORE_BIN AFTER_BIN [limit]     (limit: 20)
#
# Outputs (outputs/*.jsonl, *.npy, dataset.jsonl) must be equal byte for byte (`cmp`), and every
# manifest row line must name the same request keys, output hash and error: a cache key or a seed
# that changed would send AFTER's requests to the engine instead of the cache, and show here.
# AFTER must answer every request from the cache BEFORE filled. The VLM configs need a vLLM server
# and are skipped.
set -euo pipefail
before=$(realpath "$1")
after=$(realpath "$2")
limit=${3:-20}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
export LABELFORGE_CACHE_DIR="$work/cache"
status=0
for config in configs/*.yaml; do
  name=$(basename "$config" .yaml)
  grep -q "kind: openai" "$config" && { echo "skip  $name (needs a vLLM server)"; continue; }
  grep -q "^matrix:" "$config" && { echo "skip  $name (an ablation: its variants are runs of its base)"; continue; }
  for side in before after; do
    bin=$before; [ "$side" = after ] && bin=$after
    mkdir -p "$work/$side/$name"
    "$bin" run --config "$config" --limit "$limit" --runs-dir "$work/$side/$name" \
      > "$work/$side/$name.log" 2>&1 || { echo "FAIL  $name: $side exited $? ($work/$side/$name.log)"; status=1; continue 2; }
  done
  a=$(ls -d "$work"/before/"$name"/*/ | head -1)
  b=$(ls -d "$work"/after/"$name"/*/ | head -1)
  diffs=0
  for file in $(cd "$a" && ls outputs/* dataset.jsonl 2>/dev/null); do
    cmp -s "$a/$file" "$b/$file" || { echo "      $name: $file differs"; diffs=1; }
  done
  [ "$(cd "$a" && ls outputs)" = "$(cd "$b" && ls outputs)" ] || { echo "      $name: different output files"; diffs=1; }
  python3 - "$a/manifest.jsonl" "$b/manifest.jsonl" <<'EOF' || diffs=1
import json, sys
def rows(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        if r.get("type") == "row":
            out.append(tuple(r.get(k) for k in ("row_id", "stage", "request_keys", "output_hash", "error", "tokens_in", "tokens_out", "dropped", "parent_row_id", "sample_index")))
        if r.get("type") == "summary":
            summary = r
    return out, summary
a, _ = rows(sys.argv[1])
b, summary = rows(sys.argv[2])
if a != b:
    diff = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) if len(a) == len(b) else None
    print(f"      manifest row lines differ ({len(a)} vs {len(b)} lines; first at {diff}: {a[diff] if diff is not None else ''} vs {b[diff] if diff is not None else ''})")
    sys.exit(1)
misses = sum(s.get("cache_misses", 0) for s in summary.get("counts", {}).get("stages", {}).values())
if misses:
    print(f"      AFTER sent {misses} requests the cache should have answered")
    sys.exit(1)
EOF
  if [ $diffs = 0 ]; then echo "same  $name ($(cd "$a" && ls outputs | wc -l) output files)"; else echo "DIFF  $name"; status=1; fi
done
echo "runs and logs: $work"
exit $status
