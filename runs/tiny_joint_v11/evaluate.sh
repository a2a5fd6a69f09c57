#!/usr/bin/env bash
# Evaluations of tiny_joint_v11 quoted in runs/README.md, in the order they ran (session 21, 2-core CPU).
# v8's numbers beside them are runs/tiny_joint_v8/eval_test_g4, runs/tiny_joint_v8/sweep/val_t2av_g4,
# runs/val_losses/v8.json and runs/colour_drawn/avgen-tiny.json.
set -euo pipefail
# 1. the test split at v8's shipped settings (heun 8, guidance 4 / 8, joint).
OMP_NUM_THREADS=2 avgen eval model --pipeline runs/tiny_joint_v11/pipeline --per-family 32 --split test --guidance 4 \
    --out runs/tiny_joint_v11/eval_test_g4
# 2. text-to-audio-video on val at guidance 4 (seen caption pairs).
OMP_NUM_THREADS=2 avgen eval model --per-family 32 --split val --pipeline runs/tiny_joint_v11/pipeline --tasks t2av \
    --guidance 4 --out runs/tiny_joint_v11/sweep/val_t2av_g4
# 3. validation losses under the fixed per-task settings (256 val clips), as runs/val_losses/run.sh's v11 line.
OMP_NUM_THREADS=2 avgen eval loss configs/tiny_joint_v8.yaml --set joint.data.val_n=256 \
    --pipeline runs/tiny_joint_v11/pipeline --out runs/val_losses/v11.json
# 4. which colour it draws for each asked colour (8 seeds each, as runs/colour_drawn/avgen-tiny.json).
OMP_NUM_THREADS=2 python runs/colour_drawn.py --pipeline runs/tiny_joint_v11/pipeline --seeds 8 \
    --out runs/colour_drawn/v11.json
# 5. the test split at video guidance 3 (v8's steadier setting: runs/tiny_joint_v8/eval_test_g3).
OMP_NUM_THREADS=2 avgen eval model --pipeline runs/tiny_joint_v11/pipeline --per-family 32 --split test --guidance 3 \
    --out runs/tiny_joint_v11/eval_test_g3
