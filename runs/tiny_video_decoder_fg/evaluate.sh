#!/usr/bin/env bash
# avgen-tiny with its video decoder swapped for the object-weighted fine-tune (configs/tiny_video_decoder_fg.yaml),
# against avgen-tiny as shipped. The DiT, the sampler and the seeds are the same, and the new codec encodes
# exactly as the old one (export checks it), so every difference below comes from the decoder alone.
#   bash runs/tiny_video_decoder_fg/evaluate.sh     (after avgen train configs/tiny_video_decoder_fg.yaml)
set -euo pipefail
run=runs/tiny_video_decoder_fg
export OMP_NUM_THREADS=2
# 1. the pipeline: avgen-tiny's DiT and audio codec with the fine-tuned video decoder (float32 copy).
avgen model export avgen/weights/avgen-tiny "$run/pipeline" --fp32 --overwrite --video-decoder "$run/codec"
# 2. what the autoencoder alone keeps of each ball colour (8 real one-ball train clips per colour).
python runs/colour_drawn.py --real --pipeline "$run/pipeline" --seeds 8 --out runs/colour_drawn/real_decoder_fg.json
# 3. what a caption's colour comes out as through the new decoder (same prompts and seeds as avgen-tiny.json).
python runs/colour_drawn.py --pipeline "$run/pipeline" --seeds 8 --out runs/colour_drawn/decoder_fg.json
# 4. the test split at avgen-tiny's settings (guidance 4), with the shipped and the new decoder.
avgen eval model --pipeline avgen-tiny --per-family 32 --split test --guidance 4 --out "$run/eval_test_g4_shipped"
avgen eval model --pipeline "$run/pipeline" --per-family 32 --split test --guidance 4 --out "$run/eval_test_g4"
