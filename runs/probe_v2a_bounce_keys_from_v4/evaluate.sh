#!/usr/bin/env bash
# Evaluations for probe_v2a_bounce_keys_from_v4, the same as probe_v2a_bounce_from_v4/evaluate.sh so the two
# compare directly: bounce video-to-audio at the probes' setting (euler 50, audio guidance 1) on val and test,
# then how much the audio velocity moves with the frames.
set -euo pipefail
P=runs/probe_v2a_bounce_keys_from_v4/pipeline
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --pipeline $P --families bounce --tasks v2a"
for split in val test; do
  $E --split $split --sampler euler --steps 50 --audio-guidance 1 \
    --out runs/probe_v2a_bounce_keys_from_v4/eval_${split}_euler50_ag1
done
OMP_NUM_THREADS=2 python benchmarks/cross_modal_dependence.py $P --name probe_v2a_bounce_keys_from_v4 --per-family 8
