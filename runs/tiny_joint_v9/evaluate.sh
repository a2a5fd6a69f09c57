#!/usr/bin/env bash
# Evaluations of tiny_joint_v9 quoted in runs/README.md, in the order they ran (session 19, 2-core CPU).
# v8's numbers beside them are runs/tiny_joint_v8/eval_test_g4 and runs/val_losses/v8.json.
set -euo pipefail
# 1. the test split at v8's shipped settings (heun 8, guidance 4 / 8, joint).
OMP_NUM_THREADS=2 avgen eval model --pipeline runs/tiny_joint_v9/pipeline --per-family 32 --split test --guidance 4 \
    --out runs/tiny_joint_v9/eval_test_g4
# 2. validation losses under the fixed per-task settings, v9 beside v4-v8 (256 val clips).
bash runs/val_losses/run.sh
# 3. text-to-audio-video on val at video guidance 4 and 6 (v8: tiny_joint_v8/sweep/val_t2av_g4): does v9 want
#    another guidance?
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --split val --pipeline runs/tiny_joint_v9/pipeline --tasks t2av"
$E --guidance 4 --out runs/tiny_joint_v9/sweep/val_t2av_g4
$E --guidance 6 --out runs/tiny_joint_v9/sweep/val_t2av_g6
