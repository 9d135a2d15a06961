#!/usr/bin/env bash
# Reading Parquet: ROWS generated rows (id, text, label, score; row groups of 100k) written by
# pyarrow, then, in this one invocation:
#   1. pyarrow's own read of the file into a table (the anchor);
#   2. scripts/parquet_io.py, LabelForge's reader (polars), streaming the rows as JSON lines;
#   3. `labelforge run` of a filter-only pipeline on the Parquet file, and on its JSONL twin;
#   4. the same run on the Parquet file with `outputs: {format: parquet}`: how fast it wrote its
#      Parquet views (outputs/kept.parquet and dataset.parquet), from the run's `parquet views:` line.
# Prints rows/s and peak RSS of each (a run's peak includes its reader child), and the ratio to the
# anchor's rows/s. Debug build unless LABELFORGE_BENCH_BIN names another binary.
# Usage: bench/parquet_read.sh [ROWS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
BIN=${LABELFORGE_BENCH_BIN:-.build/debug/labelforge}
PY=.venv/bin/python3
"$PY" -c "import pyarrow, polars" 2>/dev/null || { echo "needs make setup and scripts/test_deps.sh (polars, pyarrow)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" - "$work" "$ROWS" <<'PY'
import json, random, sys, pyarrow as pa, pyarrow.parquet as pq
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
labels = ["positive", "negative", "neutral"]
for start in range(0, n, 500_000):
    m = min(500_000, n - start)
    ids = list(range(start, start + m))
    table = pa.table({
        "id": pa.array([f"r{i}" for i in ids]),
        "text": pa.array([f"Review {i}: {rng.random():.6f} and some more words" for i in ids]),
        "label": pa.array([labels[i % 3] for i in ids]),
        "score": pa.array([rng.random() for _ in ids], pa.float64()),
    })
    if start == 0:
        writer = pq.ParquetWriter(out + "/rows.parquet", table.schema)
    writer.write_table(table, row_group_size=100_000)
    with open(out + "/rows.jsonl", "a") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row) + "\n")
writer.close()
PY
cat > "$work/p.yaml" <<YAML
run: {name: parquet-bench, seed: 1}
dataset: {path: $work/rows.parquet, id_field: id}
stages:
  - {id: kept, type: filter, keep: {field: score, gte: 0.5}}
YAML
sed "s#rows.parquet#rows.jsonl#" "$work/p.yaml" > "$work/j.yaml"

measure() {  # label, command…: prints "label rows/s peakMB ratio", leaves the seconds in $work/seconds
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/err" || { cat "$work/err"; exit 1; }
  read -r seconds kb < "$work/time"
  echo "$seconds" > "$work/seconds"
  python3 -c "
rate = $ROWS / max($seconds, 0.01)
anchor = ${ANCHOR:-0} or rate
print(f'{\"$label\":<40} {rate:>10.0f} rows/s {$kb / 1024:>7.0f} MB peak {rate / anchor:>7.3f}x  ({$seconds} s)')"
}
echo "$ROWS rows, $(nproc) cores"
measure "pyarrow read_table (anchor)" "$PY" -c "import pyarrow.parquet as pq, sys; pq.read_table(sys.argv[1])" "$work/rows.parquet"
ANCHOR=$(python3 -c "print($ROWS / max($(cat "$work/seconds"), 0.01))")
measure "parquet_io.py read (polars)" "$PY" scripts/parquet_io.py read "$work/rows.parquet"
measure "labelforge run, Parquet" "$BIN" run --config "$work/p.yaml" --runs-dir "$work/runs" --cache-path "$work/c.sqlite"
measure "labelforge run, JSONL twin" "$BIN" run --config "$work/j.yaml" --runs-dir "$work/runs" --cache-path "$work/c.sqlite"
a=$(ls -d "$work"/runs/*/ | head -1); b=$(ls -d "$work"/runs/*/ | tail -1)
cmp "$a/outputs/kept.jsonl" "$b/outputs/kept.jsonl" && echo "outputs/kept.jsonl: Parquet and JSONL runs byte-identical"
rm -rf "$work/runs"
printf '\noutputs: {format: parquet}\n' >> "$work/p.yaml"
"$BIN" run --config "$work/p.yaml" --runs-dir "$work/runs" --cache-path "$work/c.sqlite" > "$work/out" 2>&1 || {
  cat "$work/out"; exit 1; }
python3 - "$work/out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
found = re.search(r"parquet views: +(\d+) rows in ([0-9.]+) s", text)
assert found, "no 'parquet views' line:\n" + text
rows, seconds = int(found[1]), float(found[2])
print(f"{'labelforge run, Parquet views written':<40} {rows / max(seconds, 0.01):>10.0f} rows/s ({rows} rows in {seconds} s)")
PY
