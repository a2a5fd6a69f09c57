#!/usr/bin/env bash
# The evaluation of tiny_joint_v14 quoted in runs/README.md (session 26, 2-core CPU): the full test split at
# the settings it would ship with (heun 8, video guidance 4, audio guidance 8; every family and task, 32
# clips each), then the lip-sync table of its talk audio-to-video clips.
set -euo pipefail
RUN=runs/tiny_joint_v14
OMP_NUM_THREADS=2 avgen eval model --pipeline $RUN/pipeline --per-family 32 --split test --out $RUN/eval_test
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test
# Then (session 26, after the full run above showed lit bars down to 72 % and lip sync up): keys colour at
# video guidance 5 and 7, talk audio-to-video at video guidance 7 (probe 3 drew more mouths there on val).
for G in 5 7; do
    OMP_NUM_THREADS=2 avgen eval model --pipeline $RUN/pipeline --per-family 32 --split test --families keys \
        --tasks t2av --guidance $G --out $RUN/eval_test_keys_g$G
done
OMP_NUM_THREADS=2 avgen eval model --pipeline $RUN/pipeline --per-family 32 --split test --families talk \
    --tasks a2v --guidance 7 --out $RUN/eval_test_a2v_talk_g7
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test_a2v_talk_g7
