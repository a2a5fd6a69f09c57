#!/usr/bin/env bash
# Evaluations of tiny_joint_v10 quoted in runs/README.md, in the order they ran (session 20, 2-core CPU).
# v8's numbers beside them are runs/tiny_joint_v8/eval_test_g4, runs/tiny_joint_v8/sweep/val_t2av_g4 and
# runs/val_losses/v8.json.
set -euo pipefail
# 1. the test split at v8's shipped settings (heun 8, guidance 4 / 8, joint).
OMP_NUM_THREADS=2 avgen eval model --pipeline runs/tiny_joint_v10/pipeline --per-family 32 --split test --guidance 4 \
    --out runs/tiny_joint_v10/eval_test_g4
# 2. text-to-audio-video on val at guidance 4 (seen caption pairs; v8 and v9 have the same).
OMP_NUM_THREADS=2 avgen eval model --per-family 32 --split val --pipeline runs/tiny_joint_v10/pipeline --tasks t2av \
    --guidance 4 --out runs/tiny_joint_v10/sweep/val_t2av_g4
# 3. validation losses under the fixed per-task settings (256 val clips), as runs/val_losses/run.sh's v10 line.
OMP_NUM_THREADS=2 avgen eval loss configs/tiny_joint_v8.yaml --set joint.data.val_n=256 \
    --pipeline runs/tiny_joint_v10/pipeline --out runs/val_losses/v10.json
