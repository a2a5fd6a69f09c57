"""Does the caption drown out the given frames? Bounce video-to-audio with and without the caption.

Generates sound for the val split's first 32 bounce clips from their own frames (euler 50 steps, audio
guidance 1, as ``val_v2a_bounce_euler50_ag1``), once with the clip's caption and once with the empty one, and
scores both against the real caption (``avgen.metrics.model_eval``: impact F1, shuffled pairs, AV-Align).

    OMP_NUM_THREADS=2 python runs/tiny_joint_v5_ft8/v2a_caption.py runs/tiny_joint_v5_ft8/pipeline \
        > runs/tiny_joint_v5_ft8/v2a_caption.txt
"""

from __future__ import annotations

import dataclasses
import sys
import time

from avgen.metrics.model_eval import ModelEvalConfig, _generate, score_clip, summarize, test_samples
from avgen.pipeline import AVPipeline

KEYS = ("impact_f1", "impact_f1_shuffled", "av_align", "av_align_chance", "onsets_per_clip")


def main(path: str) -> None:
    pipe = AVPipeline.from_pretrained(path)
    cfg = ModelEvalConfig(
        per_family=32,
        families=("bounce",),
        split="val",
        tasks=("v2a",),
        steps=50,
        sampler="euler",
        audio_guidance=1.0,
    )
    samples = test_samples(cfg, pipe.audio_codec.sample_rate)
    print(f"{path}: val bounce, {len(samples)} clips, v2a euler 50, audio guidance 1")
    for name in ("caption", "empty caption"):
        t0 = time.perf_counter()
        given = samples if name == "caption" else [dataclasses.replace(s, caption="") for s in samples]
        clips = _generate(pipe, "v2a", given, cfg)  # what `avgen eval model` runs, seeds included
        rows = [
            score_clip(c.video, cfg.fps, c.audio, c.sample_rate, s.caption) for s, c in zip(samples, clips)
        ]
        got = summarize(rows, cfg.fps)
        print(
            f"{name:>14}: "
            + ", ".join(f"{k} {got[k]:.3f}" for k in KEYS)
            + f" ({time.perf_counter() - t0:.0f} s)"
        )


if __name__ == "__main__":
    main(sys.argv[1])
