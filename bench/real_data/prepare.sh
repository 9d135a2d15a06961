# Sourced by the benches on real data (bench/real_data.sh, bench/embedding_engines.sh): stress-ng
# (Debian) and .venv-bench with bench/real_data/requirements-bench.txt when missing, the local
# engines and models (make setup), the corpus in runs/real_data/out (git-ignored) on first use, and a
# release labelforge. Sets cores, PY, BIN, work (a temporary directory, removed on exit unless
# KEEP_WORK is set) and stress_pid (a stress-ng to stop on exit).
cores=$(nproc)
command -v stress-ng >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null; }
[ -x .venv-bench/bin/python3 ] || python3 -m venv .venv-bench
PY=.venv-bench/bin/python3
$PY -c "import sentence_transformers, datasets, datasketch, tokenizers" 2>/dev/null \
  || $PY -m pip -q install -r bench/real_data/requirements-bench.txt
make -s setup >/dev/null
[ -f runs/real_data/out/pairs.jsonl ] || $PY bench/real_data/make_corpus.py runs/real_data/out >/dev/null
swift build -c release --product labelforge -q
BIN=$(swift build -c release --show-bin-path)/labelforge
work=$(mktemp -d)
stress_pid=
[ -n "${KEEP_WORK:-}" ] && echo "work: $work" >&2
trap '[ -n "$stress_pid" ] && kill "$stress_pid" 2>/dev/null; [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
