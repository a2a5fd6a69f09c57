"""``avgen generate "PROMPT" -o out.mp4``: text-to-audio-video, or audio-to-video / video-to-audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from avgen.diffusion import settings
from avgen.errors import ConfigError
from avgen.io import read_av, write_av
from avgen.pipeline import AVPipeline


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avgen generate", description=__doc__.splitlines()[0])
    parser.add_argument("prompt", help="what to see and hear, e.g. 'a round green face says \"hello\"'")
    parser.add_argument("-o", "--out", type=Path, default=Path("out.mp4"), help="MP4 (or MKV) to write")
    parser.add_argument("--pipeline", default="avgen-tiny", help="pipeline folder or shipped model name")
    parser.add_argument("--audio", type=Path, help="audio-to-video: generate frames for this sound file")
    parser.add_argument("--video", type=Path, help="video-to-audio: generate sound for this (silent) video")
    parser.add_argument("--extend", type=Path, help="continuation: keep this clip and extend it to --seconds")
    parser.add_argument(
        "--seconds", "--duration", type=float, help="clip length (text-to-AV; default: the pipeline's)"
    )
    parser.add_argument("--fps", help="frame rate, e.g. 24 or 30000/1001 (default: the pipeline's)")
    parser.add_argument("--size", help="HxW in pixels, e.g. 64x96 (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    settings.add_arguments(parser)
    args = parser.parse_args(argv)

    height = width = None
    if args.size:
        try:
            height, width = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--size {args.size!r}: expected HxW, e.g. 64x96") from None
    # Fail before minutes of sampling, not after.
    if args.out.is_dir():
        raise ConfigError(f"-o {args.out}: is a folder; give the file to write, e.g. {args.out / 'out.mp4'}")
    if args.out.exists() and not args.overwrite:
        raise ConfigError(f"{args.out}: exists; pass --overwrite to replace it")
    if not args.out.parent.is_dir():
        raise ConfigError(f"-o {args.out}: the folder {args.out.parent} does not exist; create it first")
    pipe = AVPipeline.from_pretrained(args.pipeline, device=args.device)
    clip = pipe(
        args.prompt,
        seconds=args.seconds,
        height=height,
        width=width,
        fps=args.fps,
        seed=args.seed,
        audio=read_av(args.audio, streams="a") if args.audio else None,
        video=read_av(args.video, streams="v") if args.video else None,
        extend=read_av(args.extend) if args.extend else None,
        **settings.from_arguments(args),
    )
    write_av(args.out, clip, overwrite=args.overwrite)
    print(f"wrote {args.out} ({clip.duration:.2f} s, {clip.width}x{clip.height} @ {clip.fps} fps)")
    return 0
