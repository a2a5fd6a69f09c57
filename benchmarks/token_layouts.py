"""What a video token layout costs: tokens per clip, values per token against the width, parameters and
forward FLOPs of the "default" DiT, for avgen-tiny's 2-s 64x64 clips over its shipped codecs.

Counts are exact (``FlopCounterMode`` on a real forward, the CPU SDPA kernel counted as in
``benchmarks.perf.flops``), so they need no quiet machine; one guided step is a batch of 2. The report says
why fewer values per token than the width matters (JiT: velocity prediction collapses when a token holds
about as many values as the transformer is wide) and what each layout costs in attention.

    python -m benchmarks.token_layouts            # writes benchmarks/results/token_layouts.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avgen.atomic import write_text
from avgen.geometry import ClipGeometry
from avgen.model.dit import JointDiT, dit_config
from avgen.tokens import TokenSpec
from benchmarks.perf.flops import counted_flops, example_inputs

VIDEO_CHANNELS, AUDIO_CHANNELS, TEXT_DIM = 16, 32, 384  # avgen-tiny's codecs and MiniLM
LAYOUTS = [  # (video_patch, DiTConfig overrides)
    ((4, 2, 2), {}),
    ((2, 2, 2), {}),
    ((1, 2, 2), {}),
    ((4, 2, 2), {"video_bottleneck": 128}),
    ((2, 2, 2), {"modality_blocks": 1}),
]


def row(patch: tuple[int, int, int], overrides: dict, text_tokens: int = 16) -> dict:
    """Token counts, parameters and forward FLOPs (batch 2) of one layout on a 2-s 64x64 24-fps clip."""
    spec = TokenSpec(video_channels=VIDEO_CHANNELS, audio_channels=AUDIO_CHANNELS, video_patch=patch)
    geom = ClipGeometry.from_duration(
        2.0,
        24,
        height=64,
        width=64,
        sample_rate=16000,
        temporal_downsample=1,
        spatial_downsample=8,
        hop_length=320,
    )
    t, h, w = geom.video_latent_shape
    video = -(-t // patch[0]) * -(-h // patch[1]) * -(-w // patch[2])
    audio = -(-geom.audio_latent_length // spec.audio_patch)
    cfg = dit_config("default", tokens=spec, text_dim=TEXT_DIM, **overrides)
    torch.manual_seed(0)
    model = JointDiT(cfg).eval()
    inputs = example_inputs(model, 2, video, audio, text_tokens)
    with torch.no_grad():
        flops, per_op = counted_flops(lambda: model(**inputs))
    attention = sum(v for k, v in per_op.items() if "attention" in k)
    return {
        "layout": "x".join(map(str, patch)) + "".join(f", {k} {v}" for k, v in overrides.items()),
        "video_tokens": video,
        "audio_tokens": audio,
        "values_per_video_token": spec.video_dim,
        "width": cfg.width,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": flops / 1e9,
        "attention_gflops": attention / 1e9,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "token_layouts.md")
    args = ap.parse_args(argv)
    rows = [row(p, o) for p, o in LAYOUTS]
    base = rows[0]["gflops"]
    lines = [
        "# Video token layouts of the default DiT on a 2-s 64x64 clip",
        "",
        "Exact counts (`python -m benchmarks.token_layouts`); forward of one guided step (batch 2), 16 text "
        "tokens. Width 256; JiT found velocity prediction to collapse when a token holds about as many "
        "values as the width.",
        "",
        "| video layout | video + audio tokens | values / video token | parameters | GFLOPs | of it attention "
        "(QK, AV) | vs 4x2x2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['layout']} | {r['video_tokens']} + {r['audio_tokens']} | {r['values_per_video_token']} | "
            f"{r['params_m']:.2f}M | {r['gflops']:.2f} | {r['attention_gflops']:.2f} | "
            f"{r['gflops'] / base:.2f}x |"
        )
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
