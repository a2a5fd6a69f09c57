"""Held-out metrics of a codec on whole clips: PSNR / SSIM for video, SI-SNR / mel distance for audio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from avgen.codecs.audio import EncodecCodec
from avgen.codecs.losses import multires_mel_distance, psnr, si_snr, ssim
from avgen.train.codec_data import whole_clip


@torch.no_grad()
def evaluate_video(vae: nn.Module, clips: Sequence[Tensor]) -> dict[str, float]:
    """Mean PSNR (dB) / SSIM of whole uint8 (3, T, H, W) clips through encode -> decode (posterior mean)."""
    was_training = vae.training
    vae.eval()
    ps, ss = [], []
    for v in clips:
        x = whole_clip(v, vae.temporal_downsample, vae.spatial_downsample)
        y = vae.decode(vae.encode(x))
        ps.append(float(psnr(y, x)[0]))
        ss.append(float(ssim(y, x)))
    vae.train(was_training)
    n = max(1, len(ps))
    return {"psnr": sum(ps) / n, "ssim": sum(ss) / n, "clips": len(ps)}


@torch.no_grad()
def evaluate_audio(
    codec: EncodecCodec, clips: Sequence[Tensor], families: Sequence[str | None] | None = None
) -> dict[str, Any]:
    """Mean SI-SNR (dB, silent clips skipped) and multi-resolution mel distance of whole (C, N) clips;
    with ``families`` also the mean SI-SNR of each family (noise-like rain has a much lower ceiling)."""
    was_training = codec.training
    codec.eval()
    snrs, mels, silent = [], [], 0
    by_family: dict[str, list[float]] = {}
    for i, a in enumerate(clips):
        x = a[None]
        y = codec.decode(codec.encode(x), length=x.shape[-1])
        mels.append(float(multires_mel_distance(y, x, codec.sample_rate)))
        if float(x.pow(2).mean().sqrt()) < 1e-4:  # SI-SNR is undefined against silence
            silent += 1
            continue
        snrs.append(float(si_snr(y, x)[0]))
        if families is not None and families[i] is not None:
            by_family.setdefault(families[i], []).append(snrs[-1])
    codec.train(was_training)
    family_means = {f"si_snr_{name}": sum(v) / len(v) for name, v in sorted(by_family.items())}
    return {
        **family_means,
        "si_snr": sum(snrs) / max(1, len(snrs)),
        "mel_distance": sum(mels) / max(1, len(mels)),
        "clips": len(mels),
        "silent_clips_skipped_for_si_snr": silent,
    }
