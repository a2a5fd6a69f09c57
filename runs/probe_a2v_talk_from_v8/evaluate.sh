#!/usr/bin/env bash
# Every evaluation of probe_a2v_talk_from_v8 quoted in runs/README.md, in the order it ran (session 23,
# 2-core CPU): audio-to-video on talk, 32 clips, at avgen-tiny's defaults (heun 8, video guidance 4) for the
# shipped model and the probe on val, then the probe at other guidance, on test, and its text-to-audio-video.
set -euo pipefail
RUN=runs/probe_a2v_talk_from_v8
E="env OMP_NUM_THREADS=2 avgen eval model --per-family 32 --families talk"
$E --pipeline runs/avgen-tiny-v8 --split val --tasks a2v --out $RUN/eval_val_shipped
$E --pipeline $RUN/pipeline --split val --tasks a2v --out $RUN/eval_val
$E --pipeline $RUN/pipeline --split val --tasks a2v --guidance 1 --out $RUN/eval_val_g1
$E --pipeline $RUN/pipeline --split val --tasks a2v --guidance 7 --out $RUN/eval_val_g7
$E --pipeline $RUN/pipeline --split test --tasks a2v --out $RUN/eval_test
$E --pipeline $RUN/pipeline --split val --tasks t2av --out $RUN/eval_val_t2av
# text-to-audio-video made as sound first, then the frames from it as audio-to-video (pipeline order)
$E --pipeline $RUN/pipeline --split val --tasks t2av --order audio_first --out $RUN/eval_val_t2av_audio_first
$E --pipeline runs/avgen-tiny-v8 --split val --tasks t2av --order audio_first --out $RUN/eval_val_t2av_audio_first_shipped
