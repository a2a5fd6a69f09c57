"""``avgen demo``: write a short clip with a talking face and bouncing balls, and a PNG of it.

Until the default model ships, the demo renders the ground-truth avgen-synth scenes the model is trained
on (real espeak-ng speech, impacts on the frame they are seen), so the muxing, timing and plotting path a
generated clip takes is exercised end to end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avgen.clip import AVClip


def render_ground_truth(seed: int, size: tuple[int, int], duration: float) -> AVClip:
    """A talk scene followed by a bounce scene: uint8 (T, H, W, 3) at 24 fps, mono 16 kHz audio."""
    from avgen.data.synth import SynthConfig, make_sample

    parts = [
        make_sample(seed, "test", SynthConfig(sizes=(size,), durations=(duration,), families={family: 1.0}))
        for family in ("talk", "bounce")
    ]
    clips = [p.clip for p in parts]
    return AVClip(
        video=np.concatenate([c.video for c in clips]),
        fps=clips[0].fps,
        audio=np.concatenate([c.audio for c in clips], axis=1),
        sample_rate=clips[0].sample_rate,
        metadata={"prompt": " | ".join(p.caption for p in parts), "seed": str(seed), "model": "avgen-synth"},
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avgen demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo.mp4"), help="MP4 to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="192x192", help="HxW of each scene (default 192x192)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scene")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--no-png", action="store_true", help="skip the PNG of frames, waveform and events")
    args = parser.parse_args(argv)
    from avgen.data.synth.spec import parse_size
    from avgen.io import probe, write_av

    clip = render_ground_truth(args.seed, parse_size(args.size), args.duration)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = write_av(args.out, clip, overwrite=args.overwrite)
    info = probe(path)
    v, a = info["streams"]
    print(
        f"wrote {path}: {v['codec']} {v['width']}x{v['height']} @ {v['fps']} fps, {v['frames']} frames "
        f"({v['duration_s']:.3f} s) + {a['codec']} {a['sample_rate']} Hz ({a['duration_s']:.3f} s)"
    )
    print(f"prompt: {clip.metadata['prompt']}")
    if not args.no_png:
        from avgen.metrics.evaluate import evaluate_clip
        from avgen.metrics.report import plot_clip

        evaluation = evaluate_clip(clip.video, float(clip.fps), clip.audio, clip.sample_rate)
        png = plot_clip(
            args.out.with_suffix(".png"),
            clip.video,
            float(clip.fps),
            clip.audio,
            clip.sample_rate,
            evaluation,
            title=clip.metadata["prompt"],
        )
        print(f"wrote {png}")
    return 0
