#!/usr/bin/env bash
# Every evaluation of probe_v2a_bounce_from_v4 quoted in runs/README.md, in the order it ran (session 12,
# 2-core CPU): the probe's own setting (euler 50, audio guidance 1) on val and test, as for probe A 1200
# (runs/probe_v2a_bounce_1200/eval_*_euler50_ag1), then how much the audio velocity moves with the frames.
# Another probe run of the same kind is evaluated the same way by naming it:
#   bash runs/probe_v2a_bounce_from_v4/evaluate.sh probe_v2a_bounce_keys_from_v4
set -euo pipefail
RUN=${1:-probe_v2a_bounce_from_v4}
P=runs/$RUN/pipeline
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --pipeline $P --families bounce --tasks v2a"
for split in val test; do
  $E --split $split --sampler euler --steps 50 --audio-guidance 1 \
    --out runs/$RUN/eval_${split}_euler50_ag1
done
OMP_NUM_THREADS=2 python benchmarks/cross_modal_dependence.py $P --name $RUN --per-family 8
