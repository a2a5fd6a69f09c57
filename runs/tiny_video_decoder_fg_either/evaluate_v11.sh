#!/usr/bin/env bash
# v11's DiT (runs/tiny_joint_v11, the object-weighted one that draws the asked hue more often) with the
# `either` decoder, on test at guidance 4, against runs/tiny_joint_v11/eval_test_g4. v11's pipeline is first
# stored as float16 like a shipped model, so its encoder equals the one the decoder was fine-tuned with.
set -euo pipefail
export OMP_NUM_THREADS=2
out=runs/tiny_video_decoder_fg_either
avgen model export runs/tiny_joint_v11/pipeline "$out/v11_fp16" --overwrite
avgen model export "$out/v11_fp16" "$out/v11_pipeline" --fp32 --overwrite --video-decoder "$out/codec"
avgen eval model --pipeline "$out/v11_pipeline" --per-family 32 --split test --guidance 4 --out "$out/eval_v11_test_g4"
# the same pair at video guidance 3 (v11 alone: runs/tiny_joint_v11/eval_test_g3)
avgen eval model --pipeline "$out/v11_pipeline" --per-family 32 --split test --guidance 3 --out "$out/eval_v11_test_g3"
