#!/usr/bin/env bash
# The evaluations of probe_a2v_talk_mouth_from_v8 quoted in runs/README.md (session 23, 2-core CPU): as for
# the first probe (evaluate.sh), audio-to-video on talk, 32 clips, heun 8, video guidance 4, val then test,
# and the mouth figure of the same four val clips.
set -euo pipefail
RUN=runs/probe_a2v_talk_mouth_from_v8
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --families talk --tasks a2v"
$E --pipeline $RUN/pipeline --split val --out $RUN/eval_val
$E --pipeline $RUN/pipeline --split test --out $RUN/eval_test
OMP_NUM_THREADS=2 python runs/probe_a2v_talk_from_v8/figures/mouth.py probe_a2v_talk_mouth_from_v8
