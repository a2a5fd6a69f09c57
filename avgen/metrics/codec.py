"""Reconstruction quality of a codec round trip, in torch: PSNR / SSIM for video, SI-SNR and a
multi-resolution mel distance for audio. Each takes the reference first and the reconstruction second."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from avgen.errors import ClipError


def _video_tensor(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """(T, H, W, 3) uint8 [0, 255] or float [0, 1] -> float32 (T, H, W, 3) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor):
        raise ClipError(f"{name}: expected a numpy array or tensor (T, H, W, 3), got {type(x).__name__}")
    if t.ndim != 4 or t.shape[-1] != 3 or min(t.shape) < 1:
        raise ClipError(f"{name}: expected shape (T, H, W, 3), got {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if not t.is_floating_point():
        raise ClipError(f"{name}: expected uint8 [0, 255] or float [0, 1], got {t.dtype}")
    if not torch.isfinite(t).all():
        raise ClipError(f"{name}: contains NaN or infinite values")
    if t.min() < -1e-3 or t.max() > 1 + 1e-3:
        raise ClipError(f"{name}: float video must lie in [0, 1], got [{t.min():.3g}, {t.max():.3g}]")
    return t.float()


def _pair(ref: object, test: object, to_tensor: object, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = to_tensor(ref, "reference"), to_tensor(test, "reconstruction")  # type: ignore[operator]
    if a.shape != b.shape:
        raise ClipError(
            f"{kind}: reference {tuple(a.shape)} and reconstruction {tuple(b.shape)} differ in shape; "
            "trim or resample them to the same size first"
        )
    return a, b


def psnr(reference: np.ndarray | torch.Tensor, reconstruction: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB over the whole clip (MSE pooled over frames, pixels, channels; peak 1.0 = 255).

    Inputs: (T, H, W, 3) uint8 [0, 255] or float [0, 1]. Identical clips give ``inf``.
    """
    a, b = _pair(reference, reconstruction, _video_tensor, "psnr")
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


@lru_cache(maxsize=8)
def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    return torch.outer(g, g).float()  # (size, size)


def ssim(
    reference: np.ndarray | torch.Tensor,
    reconstruction: np.ndarray | torch.Tensor,
    *,
    window: int = 11,
    sigma: float = 1.5,
) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, 'valid' windows) over
    frames and RGB channels; in [-1, 1], 1 for identical clips.

    Inputs: (T, H, W, 3) uint8 [0, 255] or float [0, 1]. Frames smaller than the window use a window the
    size of the frame's shorter side (odd).
    """
    a, b = _pair(reference, reconstruction, _video_tensor, "ssim")
    size = min(window, a.shape[1], a.shape[2])
    size -= 1 - size % 2
    kernel = rearrange(_gaussian_window(size, sigma), "h w -> 1 1 h w")
    x = rearrange(a, "t h w c -> (t c) 1 h w")
    y = rearrange(b, "t h w c -> (t c) 1 h w")
    mu_x, mu_y = F.conv2d(x, kernel), F.conv2d(y, kernel)
    var_x = F.conv2d(x * x, kernel) - mu_x**2
    var_y = F.conv2d(y * y, kernel) - mu_y**2
    cov = F.conv2d(x * y, kernel) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(s.mean())


def _audio_tensor(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """(C, N) or (N,) float -> float32 (C, N), finite."""
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise ClipError(f"{name}: expected float audio (C, N) in [-1, 1], got {getattr(t, 'dtype', type(t))}")
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ClipError(f"{name}: expected shape (C, N) with N >= 2, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ClipError(f"{name}: contains NaN or infinite samples")
    return t.float()


def si_snr(reference: np.ndarray | torch.Tensor, reconstruction: np.ndarray | torch.Tensor) -> float:
    """Scale-invariant SNR in dB (Le Roux et al. 2019), averaged over channels.

    Inputs: (C, N) or (N,) float. Both signals are made zero-mean; the reconstruction is projected on the
    reference; the residual is the noise. Higher is better; a silent reference raises ClipError.
    """
    a, b = _pair(reference, reconstruction, _audio_tensor, "si_snr")
    a = a.double() - a.double().mean(dim=-1, keepdim=True)
    b = b.double() - b.double().mean(dim=-1, keepdim=True)
    energy = (a * a).sum(dim=-1, keepdim=True)  # (C, 1)
    if bool((energy == 0).any()):
        raise ClipError("si_snr: the reference has a silent (constant) channel; SI-SNR is undefined")
    target = (b * a).sum(dim=-1, keepdim=True) / energy * a
    noise = b - target
    eps = torch.finfo(torch.float64).tiny
    ratio = (target * target).sum(dim=-1) / ((noise * noise).sum(dim=-1) + eps)
    return float((10 * torch.log10(ratio + eps)).mean())


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular HTK-mel filters from 0 Hz to Nyquist, peak 1: float32 (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = hz_to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    edges = mel_to_hz(torch.linspace(0, float(top), n_mels + 2, dtype=torch.float64))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1)
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0).float()


@dataclass(frozen=True)
class MelDistanceConfig:
    """Resolutions of :func:`mel_distance` (defaults follow DAC's MelSpectrogramLoss: windows 2048 / 512
    with 150 / 80 mels, hop = window / 4, log10 clamp 1e-5, log-mel L1 only)."""

    window_lengths: tuple[int, ...] = (2048, 512)
    n_mels: tuple[int, ...] = (150, 80)
    clamp_eps: float = 1e-5
    log_weight: float = 1.0
    mag_weight: float = 0.0

    def __post_init__(self) -> None:
        if len(self.window_lengths) != len(self.n_mels) or not self.window_lengths:
            raise ClipError(
                f"MelDistanceConfig: window_lengths {self.window_lengths} and n_mels {self.n_mels} must be "
                "non-empty and of equal length"
            )
        if any(w < 4 for w in self.window_lengths) or any(m < 1 for m in self.n_mels):
            raise ClipError("MelDistanceConfig: windows must be >= 4 samples and n_mels >= 1")
        if not self.clamp_eps > 0 or self.log_weight < 0 or self.mag_weight < 0:
            raise ClipError("MelDistanceConfig: clamp_eps must be > 0 and the weights >= 0")


def mel_distance(
    reference: np.ndarray | torch.Tensor,
    reconstruction: np.ndarray | torch.Tensor,
    sample_rate: int,
    config: MelDistanceConfig | None = None,
) -> float:
    """Multi-resolution mel distance (lower is better, 0 for identical signals).

    For each (window, n_mels): Hann STFT magnitude (hop window/4) -> mel -> ``log_weight`` * L1 of
    ``log10(clamp(mel, eps)^2)`` + ``mag_weight`` * L1 of the mel magnitudes; summed over resolutions.
    Inputs: (C, N) or (N,) float at ``sample_rate`` Hz.
    """
    cfg = config or MelDistanceConfig()
    if not (isinstance(sample_rate, int) and sample_rate > 0):
        raise ClipError(f"sample_rate: expected a positive int, got {sample_rate!r}")
    a, b = _pair(reference, reconstruction, _audio_tensor, "mel_distance")
    total = 0.0
    for win, n_mels in zip(cfg.window_lengths, cfg.n_mels):
        if a.shape[-1] <= win // 2:
            raise ClipError(f"mel_distance: {a.shape[-1]} samples is too short for a {win}-sample window")
        fb = mel_filterbank(sample_rate, win, n_mels)  # (M, F)
        hann = torch.hann_window(win)
        mels = []
        for x in (a, b):
            spec = torch.stft(x, win, hop_length=win // 4, window=hann, center=True, return_complex=True)
            mels.append(torch.einsum("mf,cft->cmt", fb, spec.abs()))  # (C, M, frames)
        log_a, log_b = (torch.log10(torch.clamp(m, min=cfg.clamp_eps) ** 2) for m in mels)
        total += cfg.log_weight * float((log_a - log_b).abs().mean())
        total += cfg.mag_weight * float((mels[0] - mels[1]).abs().mean())
    return total
