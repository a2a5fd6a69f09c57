#!/usr/bin/env bash
# Evaluations of tiny_joint_v5_ft8 quoted in runs/README.md, in the order they ran (session 14, 2-core CPU:
# 2.1, 1.5, 1.8 and 3.0 min, then ~1 min for the dependence benchmark).
# The val split first, the same settings as tiny_joint_v5_ft/evaluate.sh so the two runs compare directly.
set -euo pipefail
P=runs/tiny_joint_v5_ft8/pipeline
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --pipeline $P --split val"
S=runs/tiny_joint_v5_ft8/sweep
# 1. video-to-audio, the probes' setting (euler 50, audio guidance 1), bounce; then heun 8 at guidance 3,
#    bounce and talk.
$E --families bounce --tasks v2a --audio-guidance 1 --sampler euler --steps 50 --out $S/val_v2a_bounce_euler50_ag1
$E --families bounce,talk --tasks v2a --audio-guidance 3 --out $S/val_v2a_ag3
# 2. text-to-audio-video: the shipped settings (joint, heun 8, guidance 7 / 8), and frames first with the
#    sound made from them (audio guidance 3).
$E --tasks t2av --out $S/val_t2av_joint_ag8
$E --tasks t2av --audio-guidance 3 --order video_first --out $S/val_t2av_vfirst_ag3
# 3. how much the audio velocity moves with the frames given clean.
OMP_NUM_THREADS=2 python benchmarks/cross_modal_dependence.py $P --name avgen_tiny_v5_ft8 --per-family 8
