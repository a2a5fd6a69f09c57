"""Signal helpers in torch: band-limited resampling (no torchaudio, see ENVIRONMENT.md)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from einops import rearrange


@lru_cache(maxsize=32)
def _sinc_kernel(orig: int, new: int, lowpass_width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Hann-windowed sinc polyphase filters: (new, 1, K) float64 and the padding width."""
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_width * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None] / orig  # (1, K)
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None] / new + idx  # (new, K)
    t = (t * base_freq).clamp(-lowpass_width, lowpass_width)
    window = torch.cos(t * math.pi / lowpass_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    kernel = sinc * window * (base_freq / orig)
    return rearrange(kernel, "p k -> p 1 k"), width


def resampled_length(num_samples: int, orig_sr: int, new_sr: int) -> int:
    """Length of ``resample`` output: ceil(N * new_sr / orig_sr)."""
    return -(-num_samples * new_sr // orig_sr)


def resample(
    x: torch.Tensor, orig_sr: int, new_sr: int, *, lowpass_width: int = 16, rolloff: float = 0.945
) -> torch.Tensor:
    """Band-limited resampling along the last axis.

    x: (..., N) float. Returns (..., ceil(N * new_sr / orig_sr)) in x's dtype; sample 0 stays at time 0.
    Anti-aliasing cuts at ``rolloff`` x the lower Nyquist frequency.
    """
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got orig_sr={orig_sr}, new_sr={new_sr}")
    if not torch.is_floating_point(x):
        raise TypeError(f"resample needs a float tensor, got {x.dtype}")
    if orig_sr == new_sr:
        return x
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    kernel, width = _sinc_kernel(orig, new, lowpass_width, rolloff)
    shape = x.shape
    flat = rearrange(x, "... n -> (...) 1 n")
    n = shape[-1]
    flat = F.pad(flat, (width, width + orig))
    y = F.conv1d(flat, kernel.to(device=x.device, dtype=x.dtype), stride=orig)  # (B, new, L)
    y = rearrange(y, "b p l -> b (l p)")
    y = y[:, : resampled_length(n, orig, new)]
    return y.reshape(*shape[:-1], y.shape[-1])


def fit_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Crop or zero-pad the last axis to exactly ``length`` samples."""
    n = x.shape[-1]
    if n >= length:
        return x[..., :length]
    return F.pad(x, (0, length - n))
