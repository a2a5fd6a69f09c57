"""The hardware limit: dense matmul GFLOP/s of this machine, best-of-N, at square and model shapes.

Imports only torch, so the peer's venv uses the same code. fp32 on CPU; bf16 on CUDA (what the model
runs there under autocast).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

SQUARE_SIZES = (256, 512, 1024, 2048)


def sync(device: Any) -> None:
    """Wait for queued CUDA work (no-op on CPU), so wall time covers the kernels."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def best_time(
    fn: Callable[[], Any], *, repeats: int = 5, min_time: float = 0.05, device: Any = "cpu"
) -> float:
    """Best-of-``repeats`` seconds per call of ``fn``; each repeat loops ``fn`` for at least ``min_time``
    seconds (after one untimed warm-up call) and counts the mean of that loop."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            sync(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        best = min(best, elapsed / n)
    return best


def matmul_gflops(
    m: int,
    k: int,
    n: int,
    *,
    device: Any = "cpu",
    dtype: Any = None,
    repeats: int = 5,
    min_time: float = 0.05,
) -> float:
    """GFLOP/s of ``(m, k) @ (k, n)`` (``2*m*k*n`` FLOPs), best of ``repeats``; fp32 on CPU, bf16 on CUDA
    unless ``dtype`` is given."""
    import torch

    if dtype is None:
        dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=g).to(device, dtype)
    b = torch.randn(k, n, generator=g).to(device, dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    seconds = best_time(lambda: torch.mm(a, b, out=out), repeats=repeats, min_time=min_time, device=device)
    return 2 * m * k * n / seconds / 1e9


def linear_shapes(rows: int, width: int, hidden: int, text_rows: int = 0) -> dict[str, tuple[int, int, int]]:
    """The (m, k, n) of a transformer's main linears for ``rows`` tokens: qkv, out, MLP in and out (and the
    text key/value projection when ``text_rows``)."""
    shapes = {
        "qkv": (rows, width, 3 * width),
        "out": (rows, width, width),
        "mlp_in": (rows, width, hidden),
        "mlp_out": (rows, hidden, width),
    }
    if text_rows:
        shapes["text_kv"] = (text_rows, width, 2 * width)
    return shapes


def measure_limit(
    shapes: dict[str, tuple[int, int, int]] | None = None,
    *,
    sizes: Sequence[int] = SQUARE_SIZES,
    device: Any = "cpu",
    repeats: int = 5,
    min_time: float = 0.05,
) -> dict[str, Any]:
    """Square matmuls of ``sizes`` and the named ``shapes``; ``peak_gflops`` is the best square one (the
    hardware limit the utilisations are quoted against), ``shape_gflops`` the FLOP-weighted harmonic mean
    over ``shapes`` (what the model's own linears could reach at best)."""
    square = {
        str(s): matmul_gflops(s, s, s, device=device, repeats=repeats, min_time=min_time) for s in sizes
    }
    out: dict[str, Any] = {"square_gflops": square, "peak_gflops": max(square.values())}
    if shapes:
        per = {
            name: matmul_gflops(*mkn, device=device, repeats=repeats, min_time=min_time)
            for name, mkn in shapes.items()
        }
        flops = {name: 2 * m * k * n for name, (m, k, n) in shapes.items()}
        seconds = sum(flops[name] / (per[name] * 1e9) for name in shapes)
        out["shapes"] = {name: list(mkn) for name, mkn in shapes.items()}
        out["shape_gflops"] = per
        out["shape_mean_gflops"] = sum(flops.values()) / seconds / 1e9
    return out
