"""Codec training losses and quality measures, in torch.

Audio: waveform L1, batch waveform SNR, multi-resolution STFT (spectral convergence + log magnitude),
multi-resolution log-mel L1 (mel filterbank written here, Slaney scale and norm as librosa's default), SI-SNR.

Only the time-domain terms (L1, SNR) see phase; spectral terms alone train a codec whose output has the
right spectrogram and a random waveform (held-out SI-SNR near -10 log10(N), about -45 dB for 2 s clips).
Video: L1, SSIM (per frame, 11x11 Gaussian window), KL to N(0, I), PSNR.
Adversarial terms live in ``avgen.train.discriminator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from avgen.errors import ConfigError

VideoMask = Callable[[Tensor, Tensor | None], Tensor]

# --- mel filterbank ---------------------------------------------------------------------------------------


def _hz_to_mel(f: Tensor) -> Tensor:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    mel = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f / min_log_hz) / logstep, mel)


def _mel_to_hz(m: Tensor) -> Tensor:
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=32)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> Tensor:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, Slaney-normalised (area 1 per filter)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ConfigError(
            f"mel_filterbank: need 0 <= fmin < fmax <= sr/2, got {fmin}, {fmax}, sr={sample_rate}"
        )
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(_hz_to_mel(torch.tensor(fmin))), float(_hz_to_mel(torch.tensor(fmax))), n_mels + 2
    )
    edges = _mel_to_hz(mels.double())  # (n_mels + 2,)
    widths = edges[1:] - edges[:-1]  # (n_mels + 1,)
    ramps = edges[:, None] - freqs[None, :]  # (n_mels + 2, F)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    fb = torch.clamp(torch.minimum(lower, upper), min=0.0)
    fb = fb * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.float()


# --- spectra ----------------------------------------------------------------------------------------------


def stft_magnitude(x: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    """(B, C, N) -> magnitude (B*C, n_fft//2+1, frames), Hann window, centred with reflect padding."""
    flat = rearrange(x, "b c n -> (b c) n")
    if flat.shape[-1] <= n_fft // 2:
        flat = F.pad(flat, (0, n_fft // 2 + 1 - flat.shape[-1]))
    window = torch.hann_window(win, device=x.device, dtype=x.dtype)
    spec = torch.stft(
        flat, n_fft, hop, win, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    return spec.abs().clamp_min(1e-7)


def log_mel(x: Tensor, sample_rate: int, n_fft: int, hop: int, n_mels: int) -> Tensor:
    """(B, C, N) -> log10 mel magnitude (B*C, n_mels, frames)."""
    fb = mel_filterbank(sample_rate, n_fft, n_mels).to(x.device, x.dtype)
    mag = stft_magnitude(x, n_fft, hop, n_fft)
    return torch.log10((fb @ mag).clamp_min(1e-5))


DEFAULT_STFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = (
    (1024, 256, 1024),
    (512, 128, 512),
    (256, 64, 256),
)
DEFAULT_MEL_SCALES: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)
LOG_MAG_FLOOR_DB = -80.0  # log-magnitude floor of the STFT loss, relative to a full-scale sine


def multires_stft_loss(
    pred: Tensor, target: Tensor, resolutions: tuple[tuple[int, int, int], ...] = DEFAULT_STFT_RESOLUTIONS
) -> Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes. Inputs (B, C, N).

    Spectral convergence is taken over the whole batch with a floor of 1e-3 per bin in the denominator,
    so silent crops (common in sparse sound scenes) cannot blow it up. Log magnitudes are
    ``log(|X| + floor)`` with ``floor`` = ``LOG_MAG_FLOOR_DB`` below the peak bin of a full-scale sine
    (win / 4): bins quieter than that are inaudible. A tiny clamp instead (1e-5) made d log|X| = 1/|X|
    explode in the digital silence of synthetic clips: gradient norms in the thousands that drowned the
    waveform terms and drove the output level towards zero.
    """
    total = pred.new_zeros(())
    for n_fft, hop, win in resolutions:
        p, t = stft_magnitude(pred, n_fft, hop, win), stft_magnitude(target, n_fft, hop, win)
        floor = 1e-3 * math.sqrt(t.numel())
        sc = torch.linalg.vector_norm(t - p) / (torch.linalg.vector_norm(t) + floor)
        log_floor = 10 ** (LOG_MAG_FLOOR_DB / 20) * win / 4
        total = total + sc + F.l1_loss(torch.log(p + log_floor), torch.log(t + log_floor))
    return total / len(resolutions)


def multires_mel_distance(
    pred: Tensor,
    target: Tensor,
    sample_rate: int,
    scales: tuple[int, ...] = DEFAULT_MEL_SCALES,
    n_mels: int = 64,
) -> Tensor:
    """Mean L1 between log10-mel spectrograms at window sizes ``scales`` (hop = window / 4).

    Used as a loss and as the reported "multi-resolution mel distance" (lower is better). (B, C, N) in.
    """
    total = pred.new_zeros(())
    for n_fft in scales:
        mels = min(n_mels, n_fft // 4)
        total = total + F.l1_loss(
            log_mel(pred, sample_rate, n_fft, n_fft // 4, mels),
            log_mel(target, sample_rate, n_fft, n_fft // 4, mels),
        )
    return total / len(scales)


def si_snr(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SNR in dB per item: (B, C, N) x2 -> (B,), channels flattened together."""
    p = rearrange(pred, "b c n -> b (c n)").double()
    t = rearrange(target, "b c n -> b (c n)").double()
    p, t = p - p.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
    proj = (p * t).sum(-1, keepdim=True) / (t.pow(2).sum(-1, keepdim=True) + eps) * t
    noise = p - proj
    return (10 * torch.log10(proj.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps) + eps)).float()


def waveform_snr_loss(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Negative SNR in dB over the whole batch: 10 log10(sum (pred - target)^2 / sum target^2).

    (B, C, N) x2 -> scalar: 0 dB for a silent output, falling without bound as pred -> target. Unlike per-item SI-SNR it is
    bounded on silent crops (they only add to the error sum) and it also fixes the output gain.
    """
    err = (pred - target).pow(2).sum()
    return 10 * torch.log10((err + eps) / (target.pow(2).sum() + eps))


@dataclass(frozen=True)
class AudioLossWeights:
    """Weights of the codec's reconstruction terms (and of the adversarial ones when enabled).

    ``snr`` (dB, a waveform term) is what makes the output waveform, not just its spectrogram, match:
    without it held-out SI-SNR stays near -45 dB whatever the mel distance.
    """

    l1: float = 0.1
    snr: float = 1.0
    stft: float = 1.0
    mel: float = 1.0
    adversarial: float = 1.0
    feature_matching: float = 2.0

    def __post_init__(self) -> None:
        values = (self.l1, self.snr, self.stft, self.mel, self.adversarial, self.feature_matching)
        if min(values) < 0:
            raise ConfigError(f"AudioLossWeights must be >= 0, got {self}")


def audio_reconstruction_loss(
    pred: Tensor, target: Tensor, sample_rate: int, weights: AudioLossWeights
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted waveform L1 + waveform SNR (dB) + multi-res STFT + multi-res mel.

    (B, C, N) in; (scalar loss, detached parts to log: l1, snr, stft, mel) out.
    """
    l1 = F.l1_loss(pred, target)
    snr = waveform_snr_loss(pred, target)
    stft = multires_stft_loss(pred, target)
    mel = multires_mel_distance(pred, target, sample_rate)
    loss = weights.l1 * l1 + weights.snr * snr + weights.stft * stft + weights.mel * mel
    return loss, {"l1": l1.detach(), "snr": snr.detach(), "stft": stft.detach(), "mel": mel.detach()}


# --- video ------------------------------------------------------------------------------------------------


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: Tensor, target: Tensor, window: int = 11) -> Tensor:
    """Mean SSIM over frames of (B, C, T, H, W) videos in [-1, 1] (computed on [0, 1], 'valid' windows)."""
    p = rearrange((pred + 1) / 2, "b c t h w -> (b t) c h w")
    t = rearrange((target + 1) / 2, "b c t h w -> (b t) c h w")
    c = p.shape[1]
    w = min(window, p.shape[-1], p.shape[-2])
    g = _gaussian_window(w).to(p)
    kh = g.view(1, 1, w, 1).expand(c, 1, w, 1)
    kw = g.view(1, 1, 1, w).expand(c, 1, 1, w)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)

    mu_p, mu_t = blur(p), blur(t)
    var_p = blur(p * p) - mu_p**2
    var_t = blur(t * t) - mu_t**2
    cov = blur(p * t) - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.mean()


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), mean over all elements."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB per item for signals in [-1, 1] (peak-to-peak 2, i.e. the usual PSNR on [0, 1])."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


FOREGROUND_ON = ("either", "target")


@dataclass(frozen=True)
class VideoLossWeights:
    """Video loss terms. ``foreground``: extra L1 weight on the pixels of the dataset's "objects" mask
    (``masks`` of ``weighted_l1``): each pixel's L1 counts ``1 + foreground`` times there, 1 elsewhere,
    normalised to mean 1 per clip; a small object's colour is otherwise cheap to get wrong when nearly all
    pixels are backdrop. ``foreground_on``: whose objects are weighed, ``"either"`` the clip's or the
    reconstruction's (an object drawn where there is none costs as much as one missed), or ``"target"``
    the clip's only (a spurious blob then costs less than a missed object, and a decoder trained so adds
    blobs). ``mouth``: extra L1 weight on the pixels of the "mouth" mask that are also objects, added to the
    object weight, on the same ``foreground_on`` pixels: for a part a few pixels wide that a score depends
    on, like a talking face's lips."""

    l1: float = 1.0
    ssim: float = 0.2
    kl: float = 1e-6
    foreground: float = 0.0
    foreground_on: str = "either"
    mouth: float = 0.0

    @property
    def weighted(self) -> bool:
        """Whether the L1 is weighted at all (otherwise it is the plain mean)."""
        return self.foreground > 0 or self.mouth > 0

    def __post_init__(self) -> None:
        values = (self.l1, self.ssim, self.kl, self.foreground, self.mouth)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"VideoLossWeights must be finite and >= 0, got {self}")
        if self.foreground_on not in FOREGROUND_ON:
            raise ConfigError(
                f"VideoLossWeights.foreground_on must be one of {FOREGROUND_ON}, got {self.foreground_on!r}"
            )


def weighted_l1(
    pred: Tensor,
    target: Tensor,
    foreground: float,
    on: str = "either",
    mouth: float = 0.0,
    masks: Mapping[str, VideoMask] | None = None,
) -> Tensor:
    """Mean |pred - target| with object pixels weighed ``1 + foreground`` and mouth pixels (mouth and
    object) ``mouth`` more (videos ``(B, 3, T, H, W)`` in [-1, 1]): those of ``target``, and with
    ``on="either"`` also those of ``pred`` (against the target's backdrop). The weights average 1 within
    each clip, so a clip's scale is kept. ``masks``: the dataset's "objects" and "mouth" pixel masks,
    ``mask(video, reference) -> (B, T, H, W)`` bool (``avgen.data.maps.VIDEO_MASKS``)."""
    err = (pred - target).abs()
    if foreground == 0 and mouth == 0:
        return err.mean()
    if masks is None or not {"objects", "mouth"} <= set(masks):
        raise ConfigError(
            "a weighted video L1 (foreground or mouth > 0) needs the dataset's 'objects' and 'mouth' masks "
            "(masks=avgen.data.maps.VIDEO_MASKS)"
        )
    objects, mouth_of = masks["objects"], masks["mouth"]
    t = target.detach()
    seen = [(t, objects(t, None))]  # (video, its object pixels) whose pixels are weighed
    if on == "either":
        p = pred.detach()
        seen.append((p, objects(p, t)))
    w = 1.0 + foreground * torch.stack([m for _, m in seen]).any(0).to(err.dtype)  # (B, T, H, W)
    if mouth:  # lips are mouth-coloured object pixels: a backdrop of about the mouth's colour is no mouth
        w = w + mouth * torch.stack([mouth_of(v, None) & m for v, m in seen]).any(0).to(err.dtype)
    w = w / w.mean(dim=(1, 2, 3), keepdim=True)
    return (err * rearrange(w, "b t h w -> b 1 t h w")).mean()


def video_vae_loss(
    pred: Tensor,
    target: Tensor,
    mean: Tensor,
    logvar: Tensor,
    weights: VideoLossWeights,
    masks: Mapping[str, VideoMask] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """l1 * weighted L1 + ssim * (1 - SSIM) + kl * KL. Videos (B, 3, T, H, W) in [-1, 1]; ``masks`` as
    ``weighted_l1`` (needed when ``weights.weighted``).

    The reported ``l1`` is the plain (unweighted) L1, comparable across runs."""
    l1 = F.l1_loss(pred, target)
    fit = (
        weighted_l1(pred, target, weights.foreground, weights.foreground_on, weights.mouth, masks)
        if weights.weighted
        else l1
    )
    s = ssim(pred, target)
    kl = kl_to_standard_normal(mean, logvar)
    loss = weights.l1 * fit + weights.ssim * (1 - s) + weights.kl * kl
    parts = {"l1": l1, "ssim": s, "kl": kl, "psnr": psnr(pred, target).mean()}
    if weights.weighted:
        parts["l1_weighted"] = fit
    return loss, {k: v.detach() for k, v in parts.items()}
