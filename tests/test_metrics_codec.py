"""Codec-quality metrics against closed forms and known orderings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avgen.errors import ClipError
from avgen.metrics.codec import MelDistanceConfig, mel_distance, mel_filterbank, psnr, si_snr, ssim


def test_psnr_closed_form() -> None:
    ref = np.full((2, 5, 7, 3), 100, np.uint8)
    test = ref.copy()
    test[0, 0, 0, 0] = 110  # one pixel off by 10 levels
    mse = (10 / 255) ** 2 / ref.size
    assert psnr(ref, test) == pytest.approx(10 * math.log10(1 / mse))
    assert psnr(ref, ref) == math.inf
    # uint8 and float [0, 1] inputs agree
    assert psnr(ref, test) == pytest.approx(psnr(ref / 255.0, test.astype(np.float64) / 255.0))


def test_ssim_identity_ordering_and_small_frames() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (2, 33, 21, 3), dtype=np.uint8)
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-6)
    mild = np.clip(ref + rng.normal(0, 5, ref.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(ref + rng.normal(0, 40, ref.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(ref, mild) > ssim(ref, heavy) > 0.0
    tiny = rng.integers(0, 256, (1, 6, 9, 3), dtype=np.uint8)  # smaller than the 11x11 window
    assert ssim(tiny, tiny) == pytest.approx(1.0, abs=1e-6)
    assert ssim(torch.from_numpy(ref), torch.from_numpy(mild)) == pytest.approx(ssim(ref, mild))


def test_si_snr_closed_form_and_scale_invariance() -> None:
    t = np.arange(8000) / 8000
    ref = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    noise = np.cos(2 * np.pi * 330 * t).astype(np.float32)  # orthogonal to ref over whole periods
    est = ref + 0.1 * noise
    assert si_snr(ref, est) == pytest.approx(20.0, abs=1e-3)  # 10 log10(1 / 0.01)
    assert si_snr(ref, 0.3 * est) == pytest.approx(si_snr(ref, est), abs=1e-6)
    stereo = np.stack([ref, ref])
    assert si_snr(stereo, np.stack([est, est])) == pytest.approx(20.0, abs=1e-3)
    with pytest.raises(ClipError, match="silent"):
        si_snr(np.zeros(100, np.float32), est[:100])


def test_mel_distance_zero_for_identity_and_grows_with_error() -> None:
    rng = np.random.default_rng(0)
    ref = (0.3 * rng.standard_normal((1, 16000))).astype(np.float32)
    assert mel_distance(ref, ref, 16000) == 0.0
    small = mel_distance(ref, ref + 0.01 * rng.standard_normal(ref.shape).astype(np.float32), 16000)
    large = mel_distance(ref, ref + 0.3 * rng.standard_normal(ref.shape).astype(np.float32), 16000)
    assert 0.0 < small < large
    cfg = MelDistanceConfig(window_lengths=(256,), n_mels=(20,), mag_weight=1.0)
    assert mel_distance(ref, 0.5 * ref, 16000, cfg) > 0.0


def test_mel_filterbank_shape_and_coverage() -> None:
    fb = mel_filterbank(16000, 512, 40)
    assert fb.shape == (40, 257) and fb.dtype == torch.float32
    assert float(fb.max()) <= 1.0 + 1e-6 and bool((fb.sum(dim=1) > 0).all())


def test_bad_inputs() -> None:
    video = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ClipError, match="differ in shape"):
        psnr(video, video[:1])
    with pytest.raises(ClipError, match=r"\[0, 1\]"):
        ssim(video, np.full(video.shape, 2.0, np.float32))
    with pytest.raises(ClipError, match="NaN"):
        si_snr(np.ones(10, np.float32), np.full(10, np.nan, np.float32))
    with pytest.raises(ClipError, match="too short"):
        mel_distance(np.ones((1, 100), np.float32), np.ones((1, 100), np.float32), 16000)
    with pytest.raises(ClipError, match="equal length"):
        MelDistanceConfig(window_lengths=(512, 256), n_mels=(80,))
