#!/usr/bin/env bash
# The evaluation of tiny_joint_v15 quoted in runs/README.md (session 27, 2-core CPU): the full test split at
# the settings it would ship with (heun 8, video guidance 4, audio guidance 8; every family and task, 32
# clips each), then the lip-sync table of its talk audio-to-video clips.
set -euo pipefail
RUN=runs/tiny_joint_v15
OMP_NUM_THREADS=2 avgen eval model --pipeline $RUN/pipeline --per-family 32 --split test --out $RUN/eval_test
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test
