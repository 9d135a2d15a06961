#!/usr/bin/env bash
# Faults on the wire: runs FaultTests' 2,000-row pipeline (classify → generate n: 2 → exact dedup →
# classify) against the fault-injecting stub engine (vLLM's wire format; 20% of chat requests get
# one of: HTTP 500, 503, 429 with Retry-After, an answer 1 s later than the 3 s timeout, a connection
# dropped mid-body, truncated JSON, invalid UTF-8, an answer that ignores the schema), after the
# same pipeline fault-free, then `--resume --retry-failed` on a healthy server. Prints the faults
# injected by kind, the retries, the rows that failed and the rows identical to the fault-free run.
# Usage: bench/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests -q
figures=$(mktemp)
trap 'rm -f "$figures"' EXIT
LABELFORGE_BIN=$PWD/.build/debug/labelforge LABELFORGE_FAULT_FIGURES="$figures" \
  swift test --skip-build --filter "FaultTests/twentyPercentFaults" >/dev/null 2>&1 \
  || { echo "FaultTests failed: run swift test --filter FaultTests for details"; exit 1; }
python3 - "$figures" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
print(f"{f['rows']} rows, {f['fault_rate']:.0%} of chat requests faulted")
print(f"fault-free run: {f['clean_run']['requests']} requests in {f['clean_run']['seconds']:.1f}s; "
      f"under faults: {f['faulty_run']['requests']} requests in {f['faulty_run']['seconds']:.1f}s")
print("faults injected by kind:")
for kind, n in sorted(f["injected"].items()):
    print(f"  {kind:18} {n}")
print(f"  {'total':18} {f['injected_total']}")
print(f"retries (requests sent again): {f['requests_resent']}; Retry-After not honoured: {f['retry_after_violations']}")
print(f"requests whose retries ran out: {f['requests_out_of_retries']}")
print(f"rows failed: {f['rows_failed']} (failures by class: {f['failures_by_class']})")
print(f"rows identical to the fault-free run: {f['rows_identical']}/{f['rows']} "
      f"(all but the failed ones: {f['rows_identical'] == f['rows'] - f['rows_failed']})")
print(f"after --retry-failed ({f['requests_on_retry_failed']} requests): outputs byte-identical to the fault-free run: "
      f"{f['identical_after_retry_failed']}")
PY
