#!/usr/bin/env bash
# avgen-tiny with its video decoder swapped for a fine-tuned one (configs/tiny_video_decoder_fg*.yaml), against
# avgen-tiny as shipped (runs/tiny_video_decoder_fg/eval_test_g4_shipped). The DiT, the sampler and the seeds
# are the same and the new codec encodes exactly as the old one (export checks it), so every difference
# comes from the decoder alone.
#   bash runs/evaluate_decoder.sh tiny_video_decoder_fg      (a run folder under runs/ with a codec/)
set -euo pipefail
run=runs/${1:?usage: bash runs/evaluate_decoder.sh tiny_video_decoder_fg}
name=${1#tiny_video_}
[[ -d $run/codec ]] || { echo "no codec folder at $run/codec: train the run first" >&2; exit 2; }
export OMP_NUM_THREADS=2
# 1. the pipeline: avgen-tiny's DiT and audio codec with the fine-tuned video decoder (float32 copy).
avgen model export runs/avgen-tiny-v8 "$run/pipeline" --fp32 --overwrite --video-decoder "$run/codec"
# 2. what the autoencoder alone keeps of each ball colour (8 real one-ball train clips per colour).
python runs/colour_drawn.py --real --pipeline "$run/pipeline" --seeds 8 --out "runs/colour_drawn/real_$name.json"
# 3. what a caption's colour comes out as through the new decoder (same prompts and seeds as avgen-tiny.json).
python runs/colour_drawn.py --pipeline "$run/pipeline" --seeds 8 --out "runs/colour_drawn/$name.json"
# 4. the test split at avgen-tiny's settings (guidance 4).
avgen eval model --pipeline "$run/pipeline" --per-family 32 --split test --guidance 4 --out "$run/eval_test_g4"
