#!/usr/bin/env bash
# Evaluations of tiny_joint_v11 quoted in runs/README.md, in the order they ran (session 21, 2-core CPU).
# v8's numbers beside them are runs/tiny_joint_v8/eval_test_g4, runs/tiny_joint_v8/sweep/val_t2av_g4,
# runs/val_losses/v8.json and runs/colour_drawn/avgen-tiny.json.
set -euo pipefail
# 1-3. the test split and val at guidance 4, and runs/val_losses/v11.json.
bash runs/evaluate_candidate.sh tiny_joint_v11
# 4. which colour it draws for each asked colour (8 seeds each, as runs/colour_drawn/avgen-tiny.json).
OMP_NUM_THREADS=2 python runs/colour_drawn.py --pipeline runs/tiny_joint_v11/pipeline --seeds 8 \
    --out runs/colour_drawn/v11.json
# 5. the test split at video guidance 3 (v8's steadier setting: runs/tiny_joint_v8/eval_test_g3).
OMP_NUM_THREADS=2 avgen eval model --pipeline runs/tiny_joint_v11/pipeline --per-family 32 --split test --guidance 3 \
    --out runs/tiny_joint_v11/eval_test_g3
