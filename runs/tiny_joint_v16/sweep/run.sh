#!/usr/bin/env bash
# Session 28: video sync guidance (AVPipeline video_sync: the picture pushed towards what the sound implies,
# avgen.diffusion.guidance) on avgen-tiny v16's talk clips, test split, from the clip's own speech (a2v) and
# from text (t2av); same seeds as runs/tiny_joint_v16/eval_test (video_sync 0). Then the lip table.
set -euo pipefail
export OMP_NUM_THREADS=2
RUN=runs/tiny_joint_v16
for s in ${@:-2 4}; do
    avgen eval model --pipeline $RUN/pipeline_mouth --per-family 32 --split test --families talk --tasks a2v,t2av \
        --video-sync "$s" --out $RUN/sweep/talk_video_sync_$s
done
python runs/probe_a2v_talk_bridge_from_v8/lip_table.py $RUN/eval_test $RUN/sweep/talk_video_sync_*
# Then (after video_sync 2 and 4 above) the whole test split at video_sync 4, against eval_test (0), as in
# ../evaluate.sh:
#   avgen eval model --pipeline runs/tiny_joint_v16/pipeline_mouth --per-family 32 --split test --video-sync 4 \
#       --out runs/tiny_joint_v16/eval_test_video_sync_4
# And the same talk sweep on the validation split (video_sync 0, 2, 4, then 6), where a default should be chosen:
#   for s in 0 2 4 6; do avgen eval model --pipeline runs/tiny_joint_v16/pipeline_mouth --per-family 32 --split val \
#       --families talk --tasks a2v,t2av --video-sync $s --out runs/tiny_joint_v16/sweep/val_talk_video_sync_$s; done
# Last, the whole test split at video_sync 6 (lit bars 75 %: 4 stays):
#   avgen eval model --pipeline runs/tiny_joint_v16/pipeline_mouth --per-family 32 --split test --video-sync 6 \
#       --out runs/tiny_joint_v16/eval_test_video_sync_6
