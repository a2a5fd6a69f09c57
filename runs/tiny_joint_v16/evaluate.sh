#!/usr/bin/env bash
# The evaluation of tiny_joint_v16 quoted in runs/README.md (session 28, 2-core CPU): the DiT paired with the
# shipped mouth decoder (runs/tiny_video_decoder_mouth/codec), stored as it ships (float16), on the full test
# split (heun 8, video guidance 4, audio guidance 8; every family and task, 32 clips each), without video
# sync guidance (eval_test, 7.9 min) and with the shipped default of 4 (eval_test_video_sync_4, 10.1 min; the
# scale was chosen on val by sweep/run.sh), each followed by the lip-sync table of its talk clips. Same seeds
# as runs/tiny_video_decoder_mouth/eval_test_g4 (avgen-tiny as shipped in session 27) and eval_test_v14.
set -euo pipefail
RUN=runs/tiny_joint_v16
export OMP_NUM_THREADS=2
avgen model export $RUN/pipeline $RUN/pipeline_mouth --overwrite --video-decoder runs/tiny_video_decoder_mouth/codec
avgen eval model --pipeline $RUN/pipeline_mouth --per-family 32 --split test --video-sync 0 --out $RUN/eval_test
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test
avgen eval model --pipeline $RUN/pipeline_mouth --per-family 32 --split test --video-sync 4 \
    --out $RUN/eval_test_video_sync_4
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test_video_sync_4
