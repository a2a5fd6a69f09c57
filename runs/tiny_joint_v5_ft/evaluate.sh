#!/usr/bin/env bash
# Every evaluation of tiny_joint_v5_ft quoted in runs/README.md, in the order it ran (session 11, 2-core CPU).
# Settings are picked on the val split (first block); the test split is scored after (second block).
set -euo pipefail
P=runs/tiny_joint_v5_ft/pipeline
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32"
S=runs/tiny_joint_v5_ft/sweep
# 1. val: video-to-audio at three audio guidance scales (the shipped heun 8 steps), bounce and talk.
for ag in 1 3 8; do
  $E --pipeline $P --split val --families bounce,talk --tasks v2a --audio-guidance $ag --out $S/val_v2a_ag$ag
done
# 2. val: text-to-audio-video, joint against video_first, at the shipped guidance and the best v2a scale.
AG=${AG:?set AG to the audio guidance picked in step 1}
$E --pipeline $P --split val --tasks t2av --out $S/val_t2av_joint_ag8
$E --pipeline $P --split val --tasks t2av --audio-guidance $AG --out $S/val_t2av_joint_ag$AG
$E --pipeline $P --split val --tasks t2av --audio-guidance $AG --order video_first --out $S/val_t2av_vfirst_ag$AG
