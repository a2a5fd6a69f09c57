"""Frames of real val clips next to runs' text-to-audio-video clips for the same captions (seed 0).

    OMP_NUM_THREADS=2 python runs/tiny_joint_v7/figures/steadiness.py   # v6, v7 -> runs/tiny_joint_v7/figures/steadiness.png
    OMP_NUM_THREADS=2 python runs/tiny_joint_v7/figures/steadiness.py --out runs/tiny_joint_v8/figures/steadiness.png \
        v7=runs/tiny_joint_v7/pipeline v8=runs/tiny_joint_v8/pipeline

Each row: every 4th frame of a 2-s clip, with its mean change between frames (8-bit levels) in the label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from einops import rearrange

from avgen import AVPipeline
from avgen.metrics.model_eval import ModelEvalConfig, test_samples
from avgen.metrics.synth import frame_change

RUNS = {"v6": "runs/tiny_joint_v6/pipeline", "v7": "runs/tiny_joint_v7/pipeline"}
OUT = Path(__file__).with_name("steadiness.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", metavar="NAME=PIPELINE", help="runs to show (default: v6 and v7)")
    ap.add_argument("--out", type=Path, default=OUT, help="PNG to write")
    args = ap.parse_args()
    runs = dict(r.split("=", 1) for r in args.runs) if args.runs else RUNS
    pipes = {k: AVPipeline.from_pretrained(v) for k, v in runs.items()}
    cfg = ModelEvalConfig(per_family=2, split="val", families=("talk", "bounce", "keys"))
    found = test_samples(cfg, next(iter(pipes.values())).audio_codec.sample_rate)
    samples = [next(s for s in found if s.family == f) for f in cfg.families]  # the first clip of each
    rows = []
    for s in samples:
        rows.append((f"real: {s.caption}", s.clip.video))
        for name, pipe in pipes.items():
            clip = pipe(s.caption, seconds=2.0, height=64, width=64, fps=24, seed=0, progress=False)
            rows.append((name, clip.video))
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.25 * len(rows)))
    for ax, (label, video) in zip(axes, rows, strict=True):
        strip = rearrange(video[::4], "t h w c -> h (t w) c")
        ax.imshow(strip)
        ax.set_axis_off()
        ax.set_title(f"{label}   (change between frames {frame_change(video):.1f})", fontsize=8, loc="left")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(args.out)  # atomic: a stopped run leaves the old figure, never half of a new one
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
