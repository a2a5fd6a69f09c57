#!/usr/bin/env bash
# Issue 9's benchmarks on a quiet machine, then benchmarks/RESULTS.md from their JSON.
# Usage (from the repository root): benchmarks/perf/run_all.sh [PIPELINE]   (default: avgen-tiny)
# PIPELINE is a pipeline folder, avgen-tiny, or random:default (speed only: random weights score nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
PIPELINE="${1:-avgen-tiny}"
PY="${PY:-.venv/bin/python}"
OUT="benchmarks/perf/results"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}" HF_HUB_OFFLINE=1
mkdir -p "$OUT"

"$PY" -m benchmarks.perf.mfu --out "$OUT/mfu.json" > /dev/null
"$PY" -m benchmarks.perf.pipeline_speed --pipeline "$PIPELINE" --out "$OUT/pipeline_speed.json" > /dev/null
reports=(--mfu "$OUT/mfu.json" --pipeline-speed "$OUT/pipeline_speed.json")
if [[ "$PIPELINE" != random:* ]]; then
  "$PY" -m benchmarks.perf.quality_steps --pipeline "$PIPELINE" --out "$OUT/quality_steps.json"
  reports+=(--quality "$OUT/quality_steps.json")
fi
"$PY" -m benchmarks.perf.report "${reports[@]}" --out benchmarks/RESULTS.md
