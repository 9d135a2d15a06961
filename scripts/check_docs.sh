#!/usr/bin/env bash
# Builds the library modules' API docs with DocC (swift-docc-plugin) and fails on any DocC warning.
# (SwiftPM's own notes about dependencies' manifests, e.g. swift-distributed-tracing's unhandled
# file, are not DocC's and are not counted.)
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for target in LabelForgeCore LabelForgeIO LabelForgeLLM LabelForgeCache LabelForgeEval LabelForgeVectors LabelForgeKernel LabelForgePipelines; do
  log=$(swift package generate-documentation --target "$target" 2>&1) || { echo "$log"; exit 1; }
  warnings=$(echo "$log" | grep -E "^(warning|error):" | grep -v "which are unhandled" || true)
  if [ -n "$warnings" ]; then
    echo "$target:"; echo "$log" | grep -A8 -E "^(warning|error):" | grep -v "which are unhandled"; status=1
  else
    echo "docs: $target built without warnings"
  fi
done
exit $status
