"""Numeric precision of a training step: bf16 autocast where it pays, and a warning where it is emulated."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import torch


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision`` "bf16", or "auto" on CUDA; otherwise nothing (fp32)."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU that ``cpuinfo`` describes (the host's by default) has bf16 matmul instructions
    (avx512_bf16 or amx_bf16); None where its flags are unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    flags = {
        f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()
    }
    return bool(flags & {"avx512_bf16", "amx_bf16"}) if flags else None


def warn_slow_bf16(device: torch.device, precision: str) -> None:
    """A RuntimeWarning, pointing at the caller of the loop, when bf16 would be emulated on the CPU."""
    if device.type == "cpu" and precision == "bf16" and cpu_has_bf16() is False:
        warnings.warn(
            "loop.precision=bf16 on a CPU without bf16 instructions (no avx512_bf16 or amx_bf16 in "
            "/proc/cpuinfo): its bf16 matmuls are emulated, many times slower than fp32 "
            "(benchmarks/TRAIN.md); set loop.precision=fp32 (or auto)",
            RuntimeWarning,
            stacklevel=3,
        )
