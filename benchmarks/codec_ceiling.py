"""The codec ceiling: sync and adherence scores of held-out test clips passed through the codecs alone.

A generated clip is decoded by the same codecs, so what the codecs lose no joint model can put back. This
runs ``avgen eval model``'s scoring with ``tasks=("codec",)`` (``AVPipeline.reconstruct``: encode, then
decode, at the clip's own size, fps and length) on a pipeline's codecs, or with either codec swapped for a
trained codec folder, to compare candidate codecs before training a joint model on them:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/codec_ceiling.py --per-family 8 \\
        --out benchmarks/results/codec_ceiling_avgen_tiny.json
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/codec_ceiling.py --per-family 8 \\
        --video-codec runs/tiny_video_vae_t2/checkpoints/step_00001193/codec --out benchmarks/results/codec_ceiling_vae_t2_step1193.json

The ``gt`` rows score the test clips themselves (the ceiling of the ceiling). ``impulse`` is the video
codec's temporal impulse response: a 32x32 square lit for one frame (at each position within one latent
frame's span) on a dark 64x64 clip, and at which frame and with what share of its contrast it comes back:
brief events (a mouth opening, the frame of an impact) survive only if that share is high and in place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def impulse_response(pipe: Any, first: int = 20, frames: int = 48) -> list[dict[str, Any]]:
    """For a one-frame flash at frames ``first .. first + temporal_downsample``: the decoded peak frame and
    the kept share of the flash's contrast (1 = exact)."""
    import numpy as np

    from avgen.clip import AVClip

    rows = []
    for k in range(first, first + pipe.video_codec.temporal_downsample + 1):
        video = np.full((frames, 64, 64, 3), 40, np.uint8)
        video[k, 16:48, 16:48] = 230
        silent = np.zeros((1, frames * 16000 // 24), np.float32)
        out = pipe.reconstruct(AVClip(video=video, fps=24, audio=silent, sample_rate=16000))
        level = out.video[:, 16:48, 16:48].astype(np.float64).mean(axis=(1, 2, 3))
        rows.append(
            {
                "flash_frame": k,
                "peak_frame": int(level.argmax()),
                "kept_contrast": round(float((level.max() - level[0]) / (230 - 40)), 3),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="avgen-tiny", help="pipeline folder or shipped model name")
    p.add_argument("--video-codec", type=Path, help="a trained video codec folder to use instead")
    p.add_argument("--audio-codec", type=Path, help="a trained audio codec folder to use instead")
    p.add_argument("--per-family", type=int, default=16, help="test clips per family (default 16)")
    p.add_argument("--out", type=Path, help="JSON summary to write (atomically)")
    args = p.parse_args(argv)

    from avgen.atomic import write_text
    from avgen.codecs import load_codec
    from avgen.metrics.model_eval import ModelEvalConfig, evaluate_model, summary_markdown
    from avgen.pipeline import AVPipeline

    pipe = AVPipeline.from_pretrained(args.pipeline)
    if args.video_codec:
        pipe.video_codec = load_codec(args.video_codec)
    if args.audio_codec:
        pipe.audio_codec = load_codec(args.audio_codec)
    cfg = ModelEvalConfig(per_family=args.per_family, tasks=("codec",))
    report = evaluate_model(pipe, cfg, None)
    result = {
        "command": " ".join(["python", "benchmarks/codec_ceiling.py", *(argv or sys.argv[1:])]),
        "pipeline": str(args.pipeline),
        "video_codec": str(args.video_codec or f"{args.pipeline}/video_codec"),
        "audio_codec": str(args.audio_codec or f"{args.pipeline}/audio_codec"),
        "per_family": args.per_family,
        "summary": report["summary"],
        "impulse": impulse_response(pipe),
        "seconds": report["seconds"],
    }
    text = json.dumps(result, indent=2)
    if args.out:
        write_text(args.out, text + "\n", mkdir_parents=True)
        write_text(args.out.with_suffix(".md"), summary_markdown(report), mkdir_parents=True)
    print(summary_markdown(report))
    for row in result["impulse"]:
        print(
            f"flash at frame {row['flash_frame']}: peak at {row['peak_frame']}, contrast kept {row['kept_contrast']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
