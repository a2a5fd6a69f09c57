"""Input checks shared by the metrics: every failure is a ClipError that names the argument."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from avgen.errors import ClipError


def check_video(video: np.ndarray, name: str = "video", min_frames: int = 1) -> np.ndarray:
    """Return ``video`` if it is a (T, H, W, 3) uint8 array with T >= ``min_frames``."""
    if not isinstance(video, np.ndarray):
        raise ClipError(f"{name}: expected a numpy array (T, H, W, 3) uint8, got {type(video).__name__}")
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ClipError(f"{name}: expected shape (T, H, W, 3), got {video.shape}")
    if video.dtype != np.uint8:
        raise ClipError(f"{name}: expected dtype uint8 (RGB 0..255), got {video.dtype}")
    if video.shape[0] < min_frames or video.shape[1] < 1 or video.shape[2] < 1:
        raise ClipError(f"{name}: needs at least {min_frames} frame(s) of non-zero size, got {video.shape}")
    return video


def check_audio(audio: np.ndarray, name: str = "audio", min_samples: int = 1) -> np.ndarray:
    """Return ``audio`` as float32 (C, N) if it is a finite (C, N) or (N,) float array."""
    if not isinstance(audio, np.ndarray):
        raise ClipError(f"{name}: expected a numpy array (C, N) float32, got {type(audio).__name__}")
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ClipError(f"{name}: expected shape (C, N) or (N,), got {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ClipError(f"{name}: expected a float dtype with values in [-1, 1], got {audio.dtype}")
    if audio.shape[0] < 1 or audio.shape[1] < min_samples:
        raise ClipError(f"{name}: needs at least {min_samples} sample(s) in 1+ channels, got {audio.shape}")
    if not np.isfinite(audio).all():
        raise ClipError(f"{name}: contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def check_rate(value: float | int | Fraction | str, name: str) -> float:
    """A positive finite rate (fps or sample rate) as a float; strings like '30000/1001' are accepted."""
    try:
        rate = float(Fraction(value)) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, ZeroDivisionError) as e:
        raise ClipError(f"{name}: expected a positive number, got {value!r}") from e
    if not math.isfinite(rate) or rate <= 0:
        raise ClipError(f"{name}: expected a positive finite number, got {value!r}")
    return rate


def check_times(times: object, name: str) -> np.ndarray:
    """Event times in seconds as a finite float64 1-D array."""
    arr = np.asarray(times, dtype=np.float64)
    if arr.ndim != 1:
        raise ClipError(f"{name}: expected a 1-D list of times in seconds, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ClipError(f"{name}: contains NaN or infinite times")
    return arr
