#!/usr/bin/env bash
# Evaluations of tiny_joint_v7 quoted in runs/README.md, in the order they ran (session 17, 2-core CPU).
# v6 (runs/tiny_joint_v6/pipeline) is rerun beside it where its reports predate the steadiness scores
# (change between frames, ball area variation), so both runs are read from the same report version.
set -euo pipefail
P=runs/tiny_joint_v7/pipeline
V6=runs/tiny_joint_v6/pipeline
S=runs/tiny_joint_v7/sweep
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --split val"
# 1. text-to-audio-video at the shipped settings (heun 8, guidance 7 / 8, joint): v6, then v7.
$E --pipeline $V6 --tasks t2av --out $S/v6_val_t2av
$E --pipeline $P --tasks t2av --out $S/val_t2av
# 2. video-to-audio, bounce, the probes' setting (v6: runs/tiny_joint_v6/sweep/val_v2a_bounce_euler50_ag1).
$E --pipeline $P --families bounce --tasks v2a --audio-guidance 1 --sampler euler --steps 50 \
    --out $S/val_v2a_bounce_euler50_ag1
# 3. a lower video guidance against how steady the picture is (text-to-audio-video, v7).
$E --pipeline $P --tasks t2av --guidance 3 --out $S/val_t2av_g3
# 4. the test split at the exported settings (heun 8, guidance 7 / 8, joint).
OMP_NUM_THREADS=2 avgen eval model --pipeline $P --per-family 32 --split test --out runs/tiny_joint_v7/eval_test
