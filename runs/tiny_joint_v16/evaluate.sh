#!/usr/bin/env bash
# The evaluation of tiny_joint_v16 quoted in runs/README.md (session 28, 2-core CPU): the DiT paired with the
# shipped mouth decoder (runs/tiny_video_decoder_mouth/codec), stored as it would ship (float16), on the full
# test split at the settings it would ship with (heun 8, video guidance 4, audio guidance 8; every family and
# task, 32 clips each), then the lip-sync table of its talk clips. Same seeds as
# runs/tiny_video_decoder_mouth/eval_test_g4 (avgen-tiny as shipped) and eval_test_v14 (v14 + mouth decoder).
set -euo pipefail
RUN=runs/tiny_joint_v16
export OMP_NUM_THREADS=2
avgen model export $RUN/pipeline $RUN/pipeline_mouth --overwrite --video-decoder runs/tiny_video_decoder_mouth/codec
avgen eval model --pipeline $RUN/pipeline_mouth --per-family 32 --split test --out $RUN/eval_test
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test
