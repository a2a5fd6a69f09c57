#!/usr/bin/env bash
# Every evaluation of tiny_joint_v5_ft quoted in runs/README.md, in the order it ran (session 11, 2-core CPU,
# val split only: the run was not shipped, so the test split stays for the model that is).
set -euo pipefail
P=runs/tiny_joint_v5_ft/pipeline
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --pipeline $P --split val"
S=runs/tiny_joint_v5_ft/sweep
# 1. video-to-audio at three audio guidance scales (the shipped heun 8 steps), bounce and talk; then the
#    probes' own setting (euler 50, audio guidance 1) on bounce.
for ag in 1 3 8; do
  $E --families bounce,talk --tasks v2a --audio-guidance $ag --out $S/val_v2a_ag$ag
done
$E --families bounce --tasks v2a --audio-guidance 1 --sampler euler --steps 50 --out $S/val_v2a_bounce_euler50_ag1
# 2. text-to-audio-video: the shipped settings (joint, heun 8, guidance 7 / 8), and frames first with the
#    sound made from them at the best video-to-audio scale (3).
$E --tasks t2av --out $S/val_t2av_joint_ag8
$E --tasks t2av --audio-guidance 3 --order video_first --out $S/val_t2av_vfirst_ag3
# 3. how much each stream's velocity moves with the other stream (against v4 and probe_v2a_bounce_1200).
OMP_NUM_THREADS=2 python benchmarks/cross_modal_dependence.py $P --name avgen_tiny_v5_ft --per-family 8
OMP_NUM_THREADS=2 python benchmarks/cross_modal_dependence.py runs/probe_v2a_bounce_1200/pipeline \
  --name probe_v2a_bounce_1200 --per-family 8
