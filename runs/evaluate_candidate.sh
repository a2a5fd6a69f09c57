#!/usr/bin/env bash
# The evaluations every avgen-tiny candidate since v10 gets (issue 8), against v8's: runs/tiny_joint_v8/eval_test_g4,
# runs/tiny_joint_v8/sweep/val_t2av_g4 and runs/val_losses/v8.json.
#   bash runs/evaluate_candidate.sh tiny_joint_vN      (a run folder under runs/ with a pipeline/)
set -euo pipefail
run=${1:?usage: bash runs/evaluate_candidate.sh tiny_joint_vN}
pipe=runs/$run/pipeline
[[ -d $pipe ]] || { echo "no pipeline folder at $pipe: train the run first" >&2; exit 2; }
# 1. the test split at v8's shipped settings (heun 8, guidance 4 / 8, joint).
OMP_NUM_THREADS=2 avgen eval model --pipeline "$pipe" --per-family 32 --split test --guidance 4 \
    --out "runs/$run/eval_test_g4"
# 2. text-to-audio-video on val at guidance 4 (seen caption pairs).
OMP_NUM_THREADS=2 avgen eval model --per-family 32 --split val --pipeline "$pipe" --tasks t2av \
    --guidance 4 --out "runs/$run/sweep/val_t2av_g4"
# 3. validation losses under the fixed per-task settings (256 val clips), as runs/val_losses/run.sh's lines.
OMP_NUM_THREADS=2 avgen eval loss configs/tiny_joint_v8.yaml --set joint.data.val_n=256 \
    --pipeline "$pipe" --out "runs/val_losses/${run#tiny_joint_}.json"
