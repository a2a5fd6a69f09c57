#!/usr/bin/env bash
# The evaluation of tiny_joint_v17 quoted in runs/README.md (session 29, 2-core CPU). The DiT is paired with
# the shipped mouth decoder and stored as it ships (float16), then judged on the validation split first:
# bounce in all three tasks and talk a2v / t2av, heun 8, guidance 4 / 8, video sync 4, against v16 (avgen-tiny
# as shipped in session 28) on the same clips and seeds. v16's talk rows are runs/tiny_joint_v16/sweep/
# val_talk_video_sync_4, its bounce t2av row runs/tiny_joint_v16/sweep_bounce/val_default.
set -euo pipefail
RUN=runs/tiny_joint_v17
export OMP_NUM_THREADS=2
ev() { [ -f "$2/report.json" ] || avgen eval model --pipeline "$1" --per-family 32 --split val --out "$2" "${@:3}"; }
avgen model export $RUN/pipeline $RUN/pipeline_mouth --overwrite --video-decoder runs/tiny_video_decoder_mouth/codec
ev $RUN/pipeline_mouth $RUN/eval_val_bounce --families bounce --tasks t2av,a2v,v2a
ev avgen-tiny runs/tiny_joint_v16/sweep_bounce/val_a2v_v2a --families bounce --tasks a2v,v2a
ev $RUN/pipeline_mouth $RUN/eval_val_talk --families talk --tasks a2v,t2av
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py runs/tiny_joint_v16/sweep/val_talk_video_sync_4 $RUN/eval_val_talk
