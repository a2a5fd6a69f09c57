#!/usr/bin/env bash
# The evaluations of probe_a2v_talk_bridge_from_v8 quoted in runs/README.md (session 24, 2-core CPU), in the
# order they ran: audio-to-video on talk, 32 clips, heun 8, video guidance 4 (avgen-tiny's defaults), val
# then test; the shipped model and the two earlier probes again on val, for the new mouth columns
# (mouth shown, opening std); the one-step denoising diagnostic of all four; the mouth figure.
# The earlier probes' weights are not committed: configs/probe_a2v_talk(_mouth)_from_v8.yaml remake them.
set -euo pipefail
RUN=runs/probe_a2v_talk_bridge_from_v8
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --families talk --tasks a2v"
$E --pipeline $RUN/pipeline --split val --out $RUN/eval_val
$E --pipeline $RUN/pipeline --split test --out $RUN/eval_test
$E --pipeline runs/avgen-tiny-v8 --split val --out $RUN/eval_val_shipped
$E --pipeline runs/probe_a2v_talk_from_v8/pipeline --split val --out $RUN/eval_val_probe1
$E --pipeline runs/probe_a2v_talk_mouth_from_v8/pipeline --split val --out $RUN/eval_val_probe2
OMP_NUM_THREADS=2 python $RUN/figures/denoise.py runs/avgen-tiny-v8 runs/probe_a2v_talk_from_v8/pipeline \
    runs/probe_a2v_talk_mouth_from_v8/pipeline $RUN/pipeline
OMP_NUM_THREADS=2 python runs/probe_a2v_talk_from_v8/figures/mouth.py probe_a2v_talk_bridge_from_v8
# then, on val: video guidance 7, and text-to-audio-video made sound first (then the frames from it)
$E --pipeline $RUN/pipeline --split val --guidance 7 --out $RUN/eval_val_g7
env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --families talk --tasks t2av --order audio_first \
    --pipeline $RUN/pipeline --split val --out $RUN/eval_val_t2av_audio_first
