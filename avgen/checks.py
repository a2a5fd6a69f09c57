"""Checks of the media values every part of avgen shares: frame rates, sample rates, frame and sample arrays.

Each returns the value in its one canonical form or raises ClipError saying how to fix it; none guesses a
value range.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from avgen.errors import ClipError

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000


def as_fps(fps: Any, *, name: str = "fps") -> Fraction:
    """An exact, positive frame rate.

    Accepts int, Fraction, ``"30000/1001"`` or ``"24"``. A float is snapped to the nearest fraction with
    denominator <= 1001, so 29.97002997 becomes 30000/1001 (never ``int(fps)``).
    """
    if isinstance(fps, bool) or fps is None:
        raise ClipError(f"{name} must be a positive number such as 24 or '30000/1001', got {fps!r}")
    try:
        if isinstance(fps, float):
            if not math.isfinite(fps):
                raise ValueError
            value = Fraction(fps).limit_denominator(1001)
        elif isinstance(fps, np.integer | np.floating):
            return as_fps(fps.item(), name=name)
        else:
            value = Fraction(fps)
    except (ValueError, TypeError, ZeroDivisionError):
        raise ClipError(f"{name} must be a positive number such as 24 or '30000/1001', got {fps!r}") from None
    if value <= 0:
        raise ClipError(f"{name} must be > 0, got {fps!r}")
    return value


def check_sample_rate(sample_rate: Any, *, name: str = "sample_rate") -> int:
    """A positive integer sample rate within [1 kHz, 384 kHz]."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ClipError(f"{name} must be an int (samples per second), got {sample_rate!r}")
    sr = int(sample_rate)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise ClipError(f"{name}={sr} is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz")
    return sr


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; no torch import needed here
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise ClipError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    return x


def check_video(video: Any, *, name: str = "video") -> np.ndarray:
    """Validate frames: uint8 (T, H, W, 3) RGB with T, H, W >= 1. Returns a C-contiguous array."""
    v = _to_numpy(video, name)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ClipError(f"{name} must have shape (T, H, W, 3) RGB, got {tuple(v.shape)}")
    if v.dtype != np.uint8:
        raise ClipError(
            f"{name} must be uint8 in [0, 255], got {v.dtype}; avgen never guesses a value range: "
            "convert explicitly, e.g. ((x.clip(-1, 1) + 1) * 127.5).round().astype(np.uint8)"
        )
    if min(v.shape[:3]) < 1:
        raise ClipError(f"{name} has an empty dimension: shape {tuple(v.shape)}")
    return np.ascontiguousarray(v)


def check_audio(audio: Any, *, name: str = "audio") -> np.ndarray:
    """Validate samples: float (C, N) in [-1, 1], finite, C in {1, 2}. Returns float32, C-contiguous."""
    a = _to_numpy(audio, name)
    if a.ndim != 2:
        hint = f"; for mono use {name}[None]" if a.ndim == 1 else ""
        raise ClipError(f"{name} must have shape (channels, samples), got {tuple(a.shape)}{hint}")
    if a.shape[0] not in (1, 2):
        raise ClipError(
            f"{name} must have 1 or 2 channels on axis 0, got shape {tuple(a.shape)}"
            + ("; did you pass (samples, channels)? transpose it" if a.shape[1] in (1, 2) else "")
        )
    if not np.issubdtype(a.dtype, np.floating):
        raise ClipError(
            f"{name} must be float in [-1, 1], got {a.dtype}; for int16 PCM use x.astype(np.float32) / 32768"
        )
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise ClipError(f"{name} contains {bad} NaN/inf samples")
    peak = float(np.abs(a).max()) if a.size else 0.0
    if peak > 1.0:
        raise ClipError(f"{name} exceeds [-1, 1] (peak {peak:.4g}); normalise it or use np.clip(x, -1, 1)")
    return a
