"""Model FLOP utilisation: JointDiT forward GFLOP/s against this machine's matmul limit, and the peer's.

In one process: (a) the matmul limit (square sizes and the model's own linear shapes), measured before
and after the model so load drift shows; (b) the JointDiT forward for a preset at its real token count
(the clip geometry of the default codecs: 64x64, 2 s, 24 fps -> 208 video + 50 audio tokens), guidance
batched (batch 2 per clip), its FLOPs counted exactly (``flops.py``), achieved GFLOP/s and utilisation =
achieved / limit, and a profile of where its time goes. Then, back to back, (c) the peer
(``peer_ltx2.py``, diffusers' LTX-2 transformer at matched sizes) in the benchmark venv, which measures
the same limit again in its own process. Peak resident memory of each model is taken in its own child
process (one forward, ``os.wait4`` rusage).

    OMP_NUM_THREADS=2 python -m benchmarks.perf.mfu --out benchmarks/perf/results/mfu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.perf.machine import ROOT

PEER_PYTHON = ROOT / "benchmarks" / "perf" / ".venv-peer" / "bin" / "python"


def parse_size(text: str) -> tuple[int, int]:
    """``"64x96"`` -> ``(64, 96)`` (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 64x64, got {text!r}") from None
    return h, w


def token_counts(size: tuple[int, int], seconds: float, fps: int, preset: str) -> dict[str, Any]:
    """Video/audio token counts and the grid for a clip under the default codecs' geometry (16 kHz audio,
    hop 320; video 4x temporal, 8x spatial downsampling) and the preset's patching."""
    from avgen.geometry import ClipGeometry
    from avgen.model.dit import dit_config

    geom = ClipGeometry.from_duration(seconds, fps, height=size[0], width=size[1], sample_rate=16000)
    spec = dit_config(preset).tokens
    t, h, w = geom.video_latent_shape
    grid = [-(-n // p) for n, p in zip((t, h, w), spec.video_patch)]
    audio = -(-geom.audio_latent_length // spec.audio_patch)
    return {
        "video_grid": grid,
        "video_tokens": grid[0] * grid[1] * grid[2],
        "audio_tokens": audio,
        "geom": geom,
    }


def model_inputs(model: Any, geom: Any, batch: int, text_tokens: int, device: Any) -> dict[str, Any]:
    """What the sampler passes the DiT for a text-to-audio-video step with guidance batched: packed noise,
    one t per sample, the real positions (seconds) and modality ids, text states with a full mask."""
    import torch

    from avgen.tokens import pack

    spec = model.config.tokens
    g = torch.Generator().manual_seed(0)
    v = torch.randn(batch, spec.video_channels, *geom.video_latent_shape, generator=g)
    a = torch.randn(batch, spec.audio_channels, geom.audio_latent_length, generator=g)
    packed = pack(spec, v, a, geom.video_times(), geom.audio_times())
    return {
        "x": packed.tokens.to(device),
        "t": torch.full((batch,), 0.5, device=device),
        "positions": packed.positions.to(device),
        "modality": packed.modality.to(device),
        "text": torch.randn(batch, text_tokens, model.config.text_dim, generator=g).to(device),
        "text_mask": torch.ones(batch, text_tokens, dtype=torch.bool, device=device),
    }


def profile_ops(fn: Any, top: int = 12) -> list[dict[str, Any]]:
    """Self CPU time per aten op over one call of ``fn``, largest first: name, ms, share, calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "self_ms": e.self_cpu_time_total / 1000,
            "share": e.self_cpu_time_total / total,
            "calls": e.count,
        }
        for e in events[:top]
    ]


def build_model(preset: str, device: Any) -> Any:
    """``JointDiT`` of ``preset`` with the default codecs' channels and MiniLM's 384-d text; random weights
    with the adaLN-zero layers made live (zeros would not change the FLOPs, but keep the data realistic)."""
    import torch

    from avgen.model.dit import JointDiT, dit_config

    torch.manual_seed(0)
    model = JointDiT(dit_config(preset)).eval().requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model.to(device)


def child_memory(child: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS (MiB) of a memory-phase child from its ``wait4`` rusage, and its RSS after imports."""
    out = {
        "peak_rss_mb": child["peak_rss_mb"],
        "rss_after_import_mb": (child["result"] or {}).get("rss_after_import_mb"),
    }
    if child["returncode"] or child["result"] is None:
        out["error"] = child["stderr_tail"][-500:]
    return out


def avgen_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Child phase: one JointDiT forward; peak RSS."""
    import torch

    from benchmarks.perf.machine import current_rss_mb, peak_rss_mb

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    rss_import = current_rss_mb()
    counts = token_counts(args.size, args.seconds, args.fps, args.preset)
    model = build_model(args.preset, args.device)
    inputs = model_inputs(model, counts["geom"], args.batch, args.text_tokens, args.device)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device == "cuda"):
        model(**inputs)
    return {"rss_after_import_mb": rss_import, "peak_rss_mb": peak_rss_mb()}  # the parent uses wait4's


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Parts (a), (b) and, where its venv works, (c); see the module docstring."""
    import torch

    from benchmarks.perf.flops import counted_flops, jointdit_flops
    from benchmarks.perf.machine import machine_info, run_child
    from benchmarks.perf.matmul import best_time, linear_shapes, measure_limit

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    counts = token_counts(args.size, args.seconds, args.fps, args.preset)
    model = build_model(args.preset, device)
    cfg = model.config
    seq = counts["video_tokens"] + counts["audio_tokens"]
    shapes = linear_shapes(
        args.batch * seq, cfg.width, int(cfg.width * cfg.mlp_ratio), args.batch * args.text_tokens
    )
    timing = {"repeats": args.repeats, "min_time": args.min_time, "device": args.device}
    sizes = (256, 512) if args.quick else (256, 512, 1024, 2048)

    limit_before = measure_limit(shapes, sizes=sizes, **timing)
    inputs = model_inputs(model, counts["geom"], args.batch, args.text_tokens, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def forward() -> Any:
        with torch.no_grad(), autocast:
            return model(**inputs)

    counted, per_op = counted_flops(forward)
    analytic = jointdit_flops(
        cfg, args.batch, counts["video_tokens"], counts["audio_tokens"], args.text_tokens
    )
    seconds = best_time(forward, **timing)
    limit_after = measure_limit(shapes, sizes=sizes, **timing)
    peak = max(limit_before["peak_gflops"], limit_after["peak_gflops"])
    achieved = analytic.total / seconds / 1e9
    avgen = {
        "preset": args.preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "width": cfg.width,
        "depth": cfg.depth,
        "heads": cfg.heads,
        "flops": analytic.to_dict(),
        "flops_counted": counted,
        "flops_counted_per_op": per_op,
        "forward_s": seconds,
        "achieved_gflops": achieved,
        "utilisation": achieved / peak,
        "utilisation_of_shape_limit": achieved / limit_before["shape_mean_gflops"],
        "profile": profile_ops(forward) if device.type == "cpu" else [],
    }
    result: dict[str, Any] = {
        "benchmark": "mfu",
        "command": args.command,
        "machine": machine_info(),
        "threads": threads,
        "clip": {
            "size": list(args.size),
            "seconds": args.seconds,
            "fps": args.fps,
            "video_grid": counts["video_grid"],
            "video_tokens": counts["video_tokens"],
            "audio_tokens": counts["audio_tokens"],
            "text_tokens": args.text_tokens,
            "batch": args.batch,
        },
        "limit": {"before": limit_before, "after": limit_after, "peak_gflops": peak},
        "avgen": avgen,
    }
    common = [
        f"--threads={threads}",
        f"--device={args.device}",
        f"--text-tokens={args.text_tokens}",
        f"--batch={args.batch}",
    ]
    if not args.no_memory:
        me = [sys.executable, "-m", "benchmarks.perf.mfu", "--phase=memory", f"--preset={args.preset}"]
        size = f"--size={args.size[0]}x{args.size[1]}"
        child = run_child([*me, size, f"--seconds={args.seconds}", f"--fps={args.fps}", *common])
        avgen["memory"] = child_memory(child)
    result["peer"] = None if args.no_peer else run_peer(args, cfg, counts, common, peak, achieved / peak)
    return result


def run_peer(
    args: argparse.Namespace, cfg: Any, counts: dict[str, Any], common: list[str], peak: float, ours: float
) -> dict[str, Any]:
    """Part (c) in the peer venv; ``{"skipped": reason}`` where that venv or diffusers is missing."""
    from benchmarks.perf.machine import run_child

    python = Path(args.peer_python)
    if not python.exists():
        return {"skipped": f"{python} not found (make the peer venv: see benchmarks/perf/README.md)"}
    probe = run_child([str(python), "-c", "import diffusers, torch; print('{}')"])
    if probe["returncode"]:
        return {"skipped": f"diffusers does not import in {python}: {probe['stderr_tail'][-300:]}"}
    spec = cfg.tokens
    cmd = [
        str(python),
        "-m",
        "benchmarks.perf.peer_ltx2",
        f"--width={cfg.width}",
        f"--depth={cfg.depth}",
        f"--heads={cfg.heads}",
        f"--video-dim={spec.video_dim}",
        f"--audio-dim={spec.audio_dim}",
        f"--text-dim={cfg.text_dim}",
        "--video-grid",
        *map(str, counts["video_grid"]),
        f"--audio-tokens={counts['audio_tokens']}",
        f"--fps={args.fps}",
        f"--audio-patch={spec.audio_patch}",
        f"--repeats={args.repeats}",
        f"--min-time={args.min_time}",
        *common,
    ]
    speed = run_child([*cmd, "--limit"])
    if speed["returncode"] or speed["result"] is None:
        return {"error": speed["stderr_tail"] or speed["stdout_tail"], "command": " ".join(cmd)}
    peer = speed["result"]
    peer["utilisation_own_limit"] = peer.pop("utilisation", None)
    peer["utilisation"] = peer["achieved_gflops"] / peak
    peer["avgen_to_peer_utilisation"] = ours / peer["utilisation"]
    if not args.no_memory:
        peer["memory"] = child_memory(run_child([*cmd, "--phase=memory"]))
    return peer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--size", type=parse_size, default=(64, 64), help="HxW pixels")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--text-tokens", type=int, default=16, help="padded prompt length (MiniLM: ~16)")
    p.add_argument("--batch", type=int, default=2, help="sequences per forward (2 = guidance batched)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (bf16 autocast; limit in bf16)")
    p.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds each timing repeat loops for")
    p.add_argument("--peer-python", default=str(PEER_PYTHON), help="python of the venv with diffusers")
    p.add_argument("--no-peer", action="store_true", help="skip the diffusers peer")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, short loops, small squares")
    p.add_argument("--out", type=Path, help="JSON file to write (atomically)")
    p.add_argument("--phase", choices=["all", "memory"], default="all", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.repeats, args.min_time = 1, 0.02
    if args.phase == "memory":
        print(json.dumps(avgen_memory(args)))
        return 0
    from benchmarks.perf.machine import command_line, emit_result

    args.command = command_line("benchmarks.perf.mfu", argv)
    emit_result(measure(args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
