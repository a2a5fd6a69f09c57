"""``avgen model presets``: list the JointDiT presets with their sizes and parameter counts."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avgen model", description="Inspect JointDiT model presets.")
    sub = parser.add_subparsers(dest="command", required=True)
    presets = sub.add_parser("presets", help="print each preset's width, depth, heads and parameter count")
    presets.add_argument("--text-dim", type=int, default=384, help="text encoder width (384: MiniLM)")
    args = parser.parse_args(argv)

    from avgen.model.dit import dit_config, parameter_count
    from avgen.model.presets import PRESETS

    print(f"{'preset':<8} {'width':>5} {'depth':>5} {'heads':>5} {'params':>12}")
    for name in PRESETS:
        cfg = dit_config(name, text_dim=args.text_dim)
        n = parameter_count(cfg)
        print(f"{name:<8} {cfg.width:>5} {cfg.depth:>5} {cfg.heads:>5} {n:>12,d} ({n / 1e6:.1f}M)")
    return 0
