#!/usr/bin/env bash
# Fuzzes the YAML config reader and the JSONL and CSV dataset readers with libFuzzer, SECONDS
# seconds each, starting from the checked-in configs and datasets. Builds Fuzz/main.swift with
# `-sanitize=fuzzer,address` into .build-fuzz (a first build takes about 10 minutes on 2 cores).
# Prints, per target, the executions and whether anything crashed; a crashing input is kept under
# .build-fuzz/findings/<target>/ (each one becomes a regression test in BadInputTests). Leak
# detection is off: Foundation's String(contentsOfFile:) leaks 4 KiB reading an empty file (seen
# with Swift 6.3.1), which is not ours to fix.
# Usage: bench/fuzz.sh [SECONDS=60]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
LABELFORGE_FUZZ=1 swift build -q --scratch-path .build-fuzz --product labelforge-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
BIN=.build-fuzz/debug/labelforge-fuzz
status=0
for target in config jsonl csv; do
  corpus=.build-fuzz/corpus/$target
  findings=.build-fuzz/findings/$target
  mkdir -p "$corpus" "$findings"
  case $target in
    config) cp configs/*.yaml "$corpus/" ;;
    jsonl) for f in $(find data -name "*.jsonl" | head -5); do head -c 4000 "$f" > "$corpus/$(basename "$f")"; done ;;
    csv) printf 'id,text\nr1,"a, quoted ""field"""\nr2,plain\n' > "$corpus/small.csv" ;;
  esac
  log=.build-fuzz/$target.log
  if ASAN_OPTIONS=detect_leaks=0 LABELFORGE_FUZZ_TARGET=$target "$BIN" "$corpus" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
      -artifact_prefix="$findings/" >"$log" 2>&1; then
    verdict="no crash"
  else
    verdict="FINDING (see $findings and $log)"; status=1
  fi
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
  echo "$target: ${runs:-0} executions in ${SECONDS_EACH}s, corpus $(ls "$corpus" | wc -l) inputs: $verdict"
done
exit $status
