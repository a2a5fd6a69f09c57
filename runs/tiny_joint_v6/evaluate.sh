#!/usr/bin/env bash
# Evaluations of tiny_joint_v6 quoted in runs/README.md, in the order they ran (session 16, 2-core CPU).
# The val split, first with tiny_joint_v5_ft8/evaluate.sh's settings so the two runs (the same recipe without
# and with group_loss_weights) compare directly, then the audio guidance for frames-first sampling.
set -euo pipefail
P=runs/tiny_joint_v6/pipeline
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --pipeline $P --split val"
S=runs/tiny_joint_v6/sweep
# 1. video-to-audio, the probes' setting (euler 50, audio guidance 1), bounce; then heun 8 at guidance 3,
#    bounce and talk.
$E --families bounce --tasks v2a --audio-guidance 1 --sampler euler --steps 50 --out $S/val_v2a_bounce_euler50_ag1
$E --families bounce,talk --tasks v2a --audio-guidance 3 --out $S/val_v2a_ag3
# 2. text-to-audio-video, heun 8, video guidance 7: frames first at audio guidance 8,
#    3 and 1, then joint (v4's order; the one exported, written into pipeline.json after these ran).
$E --tasks t2av --order video_first --out $S/val_t2av_vfirst_ag8
$E --families bounce,talk --tasks t2av --order video_first --audio-guidance 3 --out $S/val_t2av_vfirst_ag3
$E --families bounce,talk --tasks t2av --order video_first --audio-guidance 1 --out $S/val_t2av_vfirst_ag1
$E --tasks t2av --order joint --out $S/val_t2av_joint_ag8
# 3. how much the audio velocity moves with the frames given clean.
OMP_NUM_THREADS=2 python benchmarks/cross_modal_dependence.py $P --name avgen_tiny_v6 --per-family 8
# 4. the test split at the exported settings (heun 8, guidance 7 / 8, joint).
OMP_NUM_THREADS=2 avgen eval model --pipeline $P --per-family 32 --split test --out runs/tiny_joint_v6/eval_test
