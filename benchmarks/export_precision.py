"""How far the shipped float16 avgen-tiny is from the float32 run it was exported from: the same prompts
and seed through both, largest and mean absolute pixel difference and largest audio difference.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/export_precision.py [FP32_PIPELINE] [SHIPPED]

(default: runs/tiny_joint_v4/pipeline, the untracked run folder, against avgen-tiny).
"""

from __future__ import annotations

import sys

import numpy as np

from avgen.pipeline import AVPipeline

PROMPTS = ('an oval white face says "the boat is slow"', "two big white balls bounce quickly")


def main(argv: list[str]) -> int:
    fp32 = AVPipeline.from_pretrained(argv[0] if argv else "runs/tiny_joint_v4/pipeline")
    shipped = AVPipeline.from_pretrained(argv[1] if len(argv) > 1 else "avgen-tiny")
    for prompt in PROMPTS:
        a, b = fp32(prompt, seed=0, progress=False), shipped(prompt, seed=0, progress=False)
        dv = np.abs(a.video.astype(np.int64) - b.video.astype(np.int64))
        print(
            f"{prompt}: max |d pixel| {dv.max()}, mean {dv.mean():.4f}, audio max {np.abs(a.audio - b.audio).max():.2e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
