#!/usr/bin/env bash
# The evaluation of tiny_video_decoder_mouth quoted in runs/README.md (session 27, 2-core CPU): the decoder
# swapped into a pipeline whose DiT draws mouths that follow speech (DIT, default tiny_joint_v14's), against
# the same DiT with avgen-tiny's own decoder. Same DiT, sampler and seeds, and the new codec encodes exactly
# as the old one (export checks it), so every difference comes from the decoder.
#   make avgen-tiny-v8    # the old decoder and v8's DiT as shipped in sessions 18-26, the baseline
#   bash runs/tiny_video_decoder_mouth/evaluate.sh [DIT_PIPELINE]
set -euo pipefail
run=runs/tiny_video_decoder_mouth
dit=${1:-runs/tiny_joint_v14/pipeline}
name=$(basename "$(dirname "$dit")")
[[ -d $run/codec ]] || { echo "no codec folder at $run/codec: train the run first" >&2; exit 2; }
[[ -d $dit ]] || { echo "no pipeline at $dit: train that run first (its config names the command)" >&2; exit 2; }
export OMP_NUM_THREADS=2
# 1. video autoencoder held-out quality, old and new decoder (lossless val renders).
avgen codec eval --codec runs/avgen-tiny-v8/video_codec --data data/synth_lossless/val --limit 32
avgen codec eval --codec $run/codec --data data/synth_lossless/val --limit 32
# 2. the pipeline with the new decoder; talk on test: real clips through the codecs (the lip-sync ceiling)
#    and audio-to-video (speech given), at the pipeline's settings (heun 8, video guidance 4).
avgen model export "$dit" "$run/pipeline_$name" --fp32 --overwrite --video-decoder "$run/codec"
for p in "$dit" "$run/pipeline_$name"; do
    out=$run/eval_test_talk_$name$([[ $p == "$dit" ]] && echo _old_decoder || true)
    avgen eval model --pipeline "$p" --per-family 32 --split test --families talk --tasks codec,a2v --out "$out"
    python runs/probe_a2v_talk_bridge_from_v8/lip_table.py "$out"
done
# 3. (run after the above showed the ceiling raised) the shippable pair: avgen-tiny as shipped (v8's DiT) with
#    the new decoder, stored as it would ship (float16), on the whole test split at its settings, against
#    avgen-tiny as shipped (runs/tiny_video_decoder_fg/eval_test_g4_shipped: same DiT, sampler and seeds).
if [[ -z ${1:-} ]]; then
    avgen model export runs/avgen-tiny-v8 "$run/pipeline_avgen-tiny" --overwrite --video-decoder "$run/codec"
    avgen eval model --pipeline "$run/pipeline_avgen-tiny" --per-family 32 --split test --guidance 4 --out "$run/eval_test_g4"
    python runs/probe_a2v_talk_bridge_from_v8/lip_table.py "$run/eval_test_g4"
    # 4. (then) v14's bridged DiT with the new decoder on the whole test split, against
    #    runs/tiny_joint_v14/eval_test (same DiT and seeds, old decoder): what the decoder does to a DiT that
    #    listens, beyond talk.
    avgen eval model --pipeline "$run/pipeline_tiny_joint_v14" --per-family 32 --split test --out "$run/eval_test_v14"
    python runs/probe_a2v_talk_bridge_from_v8/lip_table.py "$run/eval_test_v14"
fi
