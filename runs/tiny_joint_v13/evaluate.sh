#!/usr/bin/env bash
# The evaluation of tiny_joint_v13 quoted in runs/README.md (session 25, 2-core CPU, 1.3 min): talk
# audio-to-video on the test split at the settings it would ship with (heun 8, guidance 4 / 8). The full test
# evaluation (every task and family, ~8 min) did not run this session.
set -euo pipefail
RUN=runs/tiny_joint_v13
OMP_NUM_THREADS=2 avgen eval model --pipeline $RUN/pipeline --per-family 32 --split test --families talk \
    --tasks a2v --out $RUN/eval_test_a2v_talk
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test_a2v_talk
