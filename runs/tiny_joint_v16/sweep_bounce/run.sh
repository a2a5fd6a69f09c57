#!/usr/bin/env bash
# Session 29: can sampling settings give avgen-tiny (v16 + mouth decoder, as shipped) text-to-audio-video bounce
# sync? Validation split, bounce, t2av, 32 clips, heun 8, guidance 4 / 8, video sync 4 unless the name says
# otherwise. audio_sync: each step also predicts the sound with the picture replaced by noise and pushes the
# sound by the scale times the difference (avgen.diffusion.guidance); video_first: the frames first, then
# their sound as video-to-audio (the task whose bounce targets are met).
set -euo pipefail
export OMP_NUM_THREADS=2
P=avgen-tiny
OUT=runs/tiny_joint_v16/sweep_bounce
ev() { name=$1; shift; [ -f $OUT/$name/report.json ] || avgen eval model --pipeline $P --per-family 32 --split val \
    --families bounce --tasks t2av --out $OUT/$name "$@"; }
ev val_default
ev val_audio_sync_4 --audio-sync 4
ev val_video_first --order video_first
ev val_audio_sync_8 --audio-sync 8
ev val_video_first_vs0 --order video_first --video-sync 0
# Then the video's starting noise correlated over time (a = 0.5, then 0.2; correlated_noise.py says how):
#   python runs/tiny_joint_v16/sweep_bounce/correlated_noise.py 0.5 --pipeline avgen-tiny --per-family 32 --split val \
#       --families bounce --tasks t2av --out runs/tiny_joint_v16/sweep_bounce/val_corr_noise_0.5
# Session 30: the video's clean estimate smoothed over time at every step (smoothed_x0.py LAM ITERS TMIN),
# joint and frames first; then frames_figure.py (its docstring has the commands) draws frames.png.
sm() { name=$1; shift; [ -f $OUT/$name/report.json ] || python $OUT/smoothed_x0.py "$@" --pipeline $P \
    --per-family 32 --split val --families bounce --tasks t2av --out $OUT/$name; }
for cfg in "0.5 1 0" "0.5 2 0" "1.0 1 0" "1.0 2 0" "1.0 2 0.5" "1.0 2 0.75"; do
    set -- $cfg
    sm val_smooth_x0_l$1_i$2_t$3 $1 $2 $3
    if [ "$3" = 0 ]; then sm val_video_first_smooth_x0_l$1_i$2_t$3 $1 $2 $3 --order video_first; fi
done
