"""Pure functions that cut one training window out of decoded media, on a target time grid.

Video frames are chosen by presentation time (nearest timestamp), so variable-frame-rate sources land on
the target fps grid correctly; audio is resampled with ``avgen.dsp.resample`` and cut sample-exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from avgen.dsp import fit_length, resample
from avgen.errors import MediaError


def frames_for(duration: float, fps: Fraction) -> int:
    """Frames in a window: floor(duration * fps) (1e-6 slack for float durations like 0.1)."""
    return max(1, math.floor(duration * float(fps) + 1e-6))


def samples_for(duration: float, sample_rate: int) -> int:
    """Samples in a window: round(duration * sample_rate)."""
    return round(duration * sample_rate)


def nearest_frames(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target time, the index of the source frame whose timestamp is nearest (ties: earlier).

    times: (T_src,) float64 presentation times in seconds, ascending. targets: (T,) float64 seconds.
    Returns (T,) int64 indices into the source frames.
    """
    if times.ndim != 1 or len(times) == 0:
        raise ValueError(f"need at least one source timestamp, got shape {times.shape}")
    hi = np.searchsorted(times, targets, side="left").clip(0, len(times) - 1)
    lo = (hi - 1).clip(0, len(times) - 1)
    take_lo = np.abs(targets - times[lo]) <= np.abs(times[hi] - targets)
    return np.where(take_lo, lo, hi).astype(np.int64)


def crop_box(
    height: int, width: int, target_h: int, target_w: int, *, rand: tuple[float, float] | None = None
) -> tuple[int, int, int, int]:
    """The largest (top, left, h, w) box of the source with the target's aspect ratio.

    Centred, or placed at fractions ``rand`` = (u_y, u_x) in [0, 1) of the free margin.
    """
    if target_w * height > width * target_h:  # target is wider: keep full width
        h, w = max(1, round(width * target_h / target_w)), width
    else:
        h, w = height, max(1, round(height * target_w / target_h))
    uy, ux = rand if rand is not None else (0.5, 0.5)
    top = min(height - h, int(uy * (height - h + (rand is not None))))
    left = min(width - w, int(ux * (width - w + (rand is not None))))
    return top, left, h, w


def crop_resize(
    frames: np.ndarray, target_h: int, target_w: int, *, rand: tuple[float, float] | None = None
) -> torch.Tensor:
    """Crop to the target aspect ratio, resize (bilinear, antialiased, on uint8) and scale to [-1, 1].

    frames: uint8 (T, H, W, 3) RGB. Returns float32 (3, T, target_h, target_w) in [-1, 1].
    """
    _, height, width, _ = frames.shape
    top, left, h, w = crop_box(height, width, target_h, target_w, rand=rand)
    x = torch.from_numpy(np.ascontiguousarray(frames[:, top : top + h, left : left + w]))
    x = rearrange(x, "t h w c -> t c h w")  # a channels-last view, still uint8
    if (h, w) != (target_h, target_w):
        # uint8 in, uint8 out: torch's vectorised antialiased kernel, ~5x faster than in float32 and
        # within one grey level of it
        x = F.interpolate(x, size=(target_h, target_w), mode="bilinear", antialias=True, align_corners=False)
    x = x.float() / 127.5 - 1.0
    return rearrange(x, "t c h w -> c t h w").contiguous()


def mix_channels(audio: torch.Tensor, channels: int) -> torch.Tensor:
    """(C_src, N) -> (channels, N): average to mono, or repeat mono to stereo."""
    if audio.shape[0] == channels:
        return audio
    mono = audio.mean(dim=0, keepdim=True)  # (1, N)
    return mono.expand(channels, -1).contiguous()


def start_grid(orig_sr: int, new_sr: int) -> Fraction:
    """Step (s) of window starts that fall on whole samples at both rates: 1 / gcd(orig_sr, new_sr)."""
    return Fraction(1, math.gcd(orig_sr, new_sr))


def audio_window(
    audio: torch.Tensor, orig_sr: int, new_sr: int, start: Fraction, num_samples: int, *, path: str = ""
) -> torch.Tensor:
    """Samples [start, start + num_samples / new_sr) of ``audio`` at ``new_sr``, clamped to [-1, 1].

    audio: float32 (C, N) at ``orig_sr``; sample 0 at time 0. start: seconds, a multiple of
    ``start_grid(orig_sr, new_sr)`` so the cut is sample-exact at both rates. Only the window plus a
    filter margin is resampled. Up to 5 ms past the end of the track is zero-filled; more is a MediaError.
    Returns float32 (C, num_samples).
    """
    step = start_grid(orig_sr, new_sr)
    if start % step:
        raise ValueError(f"start={start} s is not a multiple of {step} s (the common sample grid)")
    g = step.denominator
    src_unit = orig_sr // g  # source samples per grid step
    start_src = int(start * orig_sr)
    # The resampler's kernel reaches ~16 / (0.945 * min rate) s each side; 32 / min rate is safe.
    margin_units = math.ceil(32 * g / min(orig_sr, new_sr))
    s0 = max(0, start_src - margin_units * src_unit)
    need = math.ceil(num_samples * orig_sr / new_sr)
    e0 = min(audio.shape[-1], start_src + need + margin_units * src_unit)
    if e0 <= start_src:
        raise MediaError(path or None, f"audio ends at {audio.shape[-1] / orig_sr:.3f} s, before {start} s")
    y = resample(audio[:, s0:e0], orig_sr, new_sr)
    j0 = (start_src - s0) * new_sr // orig_sr  # exact: start_src - s0 is a whole number of grid steps
    out = y[:, j0 : j0 + num_samples]
    short = num_samples - out.shape[-1]
    if short > math.ceil(0.005 * new_sr):
        raise MediaError(
            path or None,
            f"audio has {out.shape[-1]} samples at {new_sr} Hz from {float(start):.3f} s, need {num_samples}",
        )
    return fit_length(out, num_samples).clamp(-1.0, 1.0).contiguous()
