"""The peer: diffusers' ``LTX2VideoTransformer3DModel`` at avgen's width, depth, heads and token counts.

Runs in the benchmark venv (``benchmarks/perf/.venv-peer``: torch + diffusers, no avgen); ``mfu.py`` starts
it as a child and reads the one JSON line it prints. Matched to the JointDiT: both streams (video and
audio) ``heads x head_dim = width``, ``num_layers = depth``, MLP 4x (diffusers' FeedForward), the video
tokens' ``in_channels`` = avgen's video token features, the audio tokens' likewise, the text width
(``caption_channels``) = avgen's ``text_dim``, and ``cross_attention_dim`` = width (after the caption
projection, as in LTX-2). Patch sizes are 1: the inputs are already avgen's patch tokens, a (T, H, W) grid
of video tokens and a run of audio tokens. LTX-2 is two streams (video and audio self-attention, text
cross-attention for each, audio-to-video and video-to-audio cross-attention, two MLPs), so at the same
sizes it does more FLOPs per forward than the one-stream JointDiT; utilisation divides each model's own
FLOPs (counted by ``FlopCounterMode``) by its own time.

    benchmarks/perf/.venv-peer/bin/python -m benchmarks.perf.peer_ltx2 --width 256 --depth 6 --heads 4
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def build(args: argparse.Namespace) -> Any:
    """An ``LTX2VideoTransformer3DModel`` with random weights at the matched sizes (fp32, eval)."""
    import torch
    from diffusers import LTX2VideoTransformer3DModel

    if args.width % args.heads:
        raise SystemExit(f"--heads {args.heads} must divide --width {args.width}")
    head_dim = args.width // args.heads
    torch.manual_seed(0)
    model = LTX2VideoTransformer3DModel(
        in_channels=args.video_dim,
        out_channels=args.video_dim,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=args.heads,
        attention_head_dim=head_dim,
        cross_attention_dim=args.width,
        audio_in_channels=args.audio_dim,
        audio_out_channels=args.audio_dim,
        audio_patch_size=1,
        audio_patch_size_t=1,
        audio_num_attention_heads=args.heads,
        audio_attention_head_dim=head_dim,
        audio_cross_attention_dim=args.width,
        audio_sampling_rate=args.sample_rate,
        audio_hop_length=args.hop_length,
        audio_scale_factor=args.audio_patch,
        num_layers=args.depth,
        caption_channels=args.text_dim,
    )
    return model.eval().requires_grad_(False)


def inputs(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """One forward's keyword arguments: ``batch`` sequences of a ``(T, H, W)`` video token grid and
    ``audio_tokens`` audio tokens, random text states with an all-True mask, t = 0.5 (x1000, LTX scale)."""
    import torch

    g = torch.Generator().manual_seed(0)
    t, h, w = args.video_grid
    b = args.batch
    return {
        "hidden_states": torch.randn(b, t * h * w, args.video_dim, generator=g).to(device),
        "audio_hidden_states": torch.randn(b, args.audio_tokens, args.audio_dim, generator=g).to(device),
        "encoder_hidden_states": torch.randn(b, args.text_tokens, args.text_dim, generator=g).to(device),
        "audio_encoder_hidden_states": torch.randn(b, args.text_tokens, args.text_dim, generator=g).to(
            device
        ),
        "encoder_attention_mask": torch.ones(b, args.text_tokens).to(device),
        "audio_encoder_attention_mask": torch.ones(b, args.text_tokens).to(device),
        "timestep": torch.full((b,), 500.0, device=device),
        "num_frames": t,
        "height": h,
        "width": w,
        "fps": args.fps,
        "audio_num_frames": args.audio_tokens,
        "return_dict": False,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--video-dim", type=int, default=64, help="features per video token (avgen video_dim)")
    p.add_argument("--audio-dim", type=int, default=64, help="features per audio token (avgen audio_dim)")
    p.add_argument("--text-dim", type=int, default=384)
    p.add_argument("--video-grid", type=int, nargs=3, default=(13, 4, 4), metavar=("T", "H", "W"))
    p.add_argument("--audio-tokens", type=int, default=50)
    p.add_argument("--text-tokens", type=int, default=16)
    p.add_argument("--batch", type=int, default=2, help="2 = one clip with guidance batched")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--hop-length", type=int, default=320)
    p.add_argument("--audio-patch", type=int, default=2, help="audio latents per token (RoPE times only)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds each timing repeat loops for")
    p.add_argument("--limit", action="store_true", help="also measure the matmul limit in this process")
    p.add_argument(
        "--phase", choices=["speed", "memory"], default="speed", help="memory: one forward, peak RSS only"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import os

    import torch

    from benchmarks.perf.machine import current_rss_mb, machine_info, peak_rss_mb
    from benchmarks.perf.matmul import best_time, linear_shapes, measure_limit

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device(args.device)
    rss_import = current_rss_mb()
    model = build(args).to(device)
    kwargs = inputs(args, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def forward() -> Any:
        with torch.no_grad(), autocast:
            return model(**kwargs)

    out: dict[str, Any] = {
        "model": "diffusers.LTX2VideoTransformer3DModel",
        "parameters": sum(p.numel() for p in model.parameters()),
        "video_tokens": kwargs["hidden_states"].shape[1],
        "audio_tokens": args.audio_tokens,
        "text_tokens": args.text_tokens,
        "batch": args.batch,
        "rss_after_import_mb": rss_import,
    }
    try:
        import diffusers

        out["diffusers"] = diffusers.__version__
    except (ImportError, AttributeError):
        pass
    if args.phase == "memory":
        forward()
        out["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(out))
        return 0
    from benchmarks.perf.flops import counted_flops

    flops, per_op = counted_flops(forward)
    seconds = best_time(forward, repeats=args.repeats, min_time=args.min_time, device=device)
    out.update(
        flops=flops,
        flops_per_op=per_op,
        forward_s=seconds,
        achieved_gflops=flops / seconds / 1e9,
        machine=machine_info(),
    )
    if args.limit:
        rows = args.batch * (out["video_tokens"] + args.audio_tokens)
        out["limit"] = measure_limit(
            linear_shapes(rows, args.width, 4 * args.width), device=device, repeats=args.repeats
        )
        out["utilisation"] = out["achieved_gflops"] / out["limit"]["peak_gflops"]
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
