#!/usr/bin/env bash
# The evaluations of probe_a2v_talk_bridge_mouth50 quoted in runs/README.md (session 24, 2-core CPU): as for
# probe 3 (runs/probe_a2v_talk_bridge_from_v8/evaluate.sh), audio-to-video on talk, 32 clips, heun 8, video
# guidance 4 on val and test, then 7 on val; the mouth figure; the table.
set -euo pipefail
RUN=runs/probe_a2v_talk_bridge_mouth50
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --families talk --tasks a2v"
$E --pipeline $RUN/pipeline --split val --out $RUN/eval_val
$E --pipeline $RUN/pipeline --split test --out $RUN/eval_test
$E --pipeline $RUN/pipeline --split val --guidance 7 --out $RUN/eval_val_g7
OMP_NUM_THREADS=2 python runs/probe_a2v_talk_from_v8/figures/mouth.py probe_a2v_talk_bridge_mouth50
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_val $RUN/eval_test $RUN/eval_val_g7
