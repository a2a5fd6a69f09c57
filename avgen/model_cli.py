"""The ``avgen model`` command.

``avgen model presets``: list the JointDiT presets with their sizes and parameter counts.
``avgen model export SRC DST``: copy a pipeline folder with float16 weights, the form of the packaged models.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avgen.atomic import check_writable_dir
from avgen.export import export_pipeline
from avgen.model.dit import dit_config, parameter_count
from avgen.model.presets import PRESETS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avgen model", description="Inspect JointDiT model presets.")
    sub = parser.add_subparsers(dest="command", required=True)
    presets = sub.add_parser("presets", help="print each preset's width, depth, heads and parameter count")
    presets.add_argument("--text-dim", type=int, default=384, help="text encoder width (384: MiniLM)")
    export = sub.add_parser("export", help="copy a pipeline folder with its weights stored as float16")
    export.add_argument(
        "src", help="pipeline folder (AVPipeline.save_pretrained), e.g. the pipeline/ of a training run"
    )
    export.add_argument("dst", help="output folder, e.g. avgen/weights/avgen-tiny")
    export.add_argument("--card", default=None, help="markdown model card copied in as MODEL_CARD.md")
    export.add_argument("--fp32", action="store_true", help="keep float32 weights")
    export.add_argument(
        "--video-decoder",
        default=None,
        help="video codec folder to ship instead of SRC's: a decoder fine-tuned with its encoder frozen",
    )
    export.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    args = parser.parse_args(argv)
    if args.command == "export":
        # The copy is built beside DST and renamed into place: its folder must take new entries.
        check_writable_dir(Path(args.dst).parent, what=f"DST {args.dst}: its folder")
        sizes = export_pipeline(
            args.src,
            args.dst,
            dtype=torch.float32 if args.fp32 else torch.float16,
            card=args.card,
            video_decoder=args.video_decoder,
            overwrite=args.overwrite,
        )
        for name, size in sizes.items():
            print(f"{name}: {size / 1e6:.2f} MB")
        print(f"-> {args.dst} ({sum(sizes.values()) / 1e6:.2f} MB of weights)")
        return 0

    print(f"{'preset':<8} {'width':>5} {'depth':>5} {'heads':>5} {'params':>12}")
    for name in PRESETS:
        cfg = dit_config(name, text_dim=args.text_dim)
        n = parameter_count(cfg)
        print(f"{name:<8} {cfg.width:>5} {cfg.depth:>5} {cfg.heads:>5} {n:>12,d} ({n / 1e6:.1f}M)")
    return 0
