#!/usr/bin/env bash
# How runs/tiny_video_decoder_fg was evaluated (session 22), after avgen train configs/tiny_video_decoder_fg.yaml.
set -euo pipefail
bash runs/evaluate_decoder.sh tiny_video_decoder_fg
# avgen-tiny as shipped in sessions 18-26 (`make avgen-tiny-v8`), at the same settings: the baseline of every
# decoder candidate.
OMP_NUM_THREADS=2 avgen eval model --pipeline runs/avgen-tiny-v8 --per-family 32 --split test --guidance 4 \
    --out runs/tiny_video_decoder_fg/eval_test_g4_shipped
