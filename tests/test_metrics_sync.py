"""Sync metrics on ground-truth clips: synced scores high, a 200 ms shift scores low and is recovered by the
offset estimator within one frame, and swapped audio scores near chance."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.errors import ClipError
from avgen.metrics.av_align import av_align, chance_iou, flow_magnitudes
from avgen.metrics.offset import OffsetConfig, av_offset, estimate_offset, motion_onset_curve

FPS, SR, DURATION = 24, 16000, 4.0


def struck_puck(seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A disc struck at irregular times (mid-frame): it darts sideways with a velocity decaying over 40 ms
    and each strike makes a 20 ms noise click. Returns video (T, H, W, 3) uint8, audio (1, N), hit times."""
    rng = np.random.default_rng(seed)
    frames, k = [], int(rng.integers(5, 9))
    while k < DURATION * FPS - 6:
        frames.append(k)
        k += int(rng.integers(7, 19))
    hits = (np.array(frames) + 0.5) / FPS
    t = np.arange(0, DURATION, 1e-3)
    velocity = np.zeros_like(t)
    for j, h in enumerate(hits):
        end = hits[j + 1] if j + 1 < len(hits) else DURATION
        live = (t >= h) & (t < end)
        velocity[live] = (-1) ** j * 300.0 * np.exp(-(t[live] - h) / 0.04)
    x = np.interp(np.arange(int(DURATION * FPS)) / FPS, t, size / 2 - 5 + np.cumsum(velocity) * 1e-3)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = np.clip((7 - np.hypot(xx[None] - x[:, None, None], yy[None] - size / 2)) / 2, 0, 1)  # (T, H, W)
    gray = 30 + 200 * disc
    video = np.stack([gray, gray * 0.8, gray * 0.5], axis=-1).astype(np.uint8)
    n = int(DURATION * SR)
    audio = 0.001 * rng.standard_normal(n)
    click = rng.standard_normal(int(0.02 * SR)) * np.exp(-np.arange(int(0.02 * SR)) / (0.004 * SR)) * 0.5
    for h in hits:
        s = round(h * SR)
        audio[s : s + len(click)] += click[: n - s]
    return video, np.clip(audio, -1, 1)[None].astype(np.float32), hits


def delay(audio: np.ndarray, ms: float) -> np.ndarray:
    """Audio played ``ms`` later (negative: earlier), same length, silence filled in."""
    s = round(abs(ms) * SR / 1000)
    pad = np.zeros((audio.shape[0], s), np.float32)
    return np.concatenate([pad, audio[:, :-s]], 1) if ms > 0 else np.concatenate([audio[:, s:], pad], 1)


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for seed in range(3):
        video, audio, hits = struck_puck(seed)
        out.append((flow_magnitudes(video), audio, hits))
    return out


def test_synced_clips_score_high_and_shifted_clearly_lower(clips) -> None:
    for flow, audio, _ in clips:
        synced = av_align(None, FPS, audio, SR, flow=flow).score
        shifted = av_align(None, FPS, delay(audio, 200), SR, flow=flow).score
        assert synced >= 0.75
        assert shifted <= 0.25
        assert synced - shifted >= 0.5


def test_offset_recovers_the_shift_within_one_frame(clips) -> None:
    frame_ms = 1000 / FPS
    for flow, audio, _ in clips:
        synced = av_offset(None, FPS, audio, SR, flow=flow)
        late = av_offset(None, FPS, delay(audio, 200), SR, flow=flow)
        early = av_offset(None, FPS, delay(audio, -120), SR, flow=flow)
        assert abs(synced.lag_ms) <= frame_ms
        assert abs(late.lag_ms - 200) <= frame_ms  # positive = audio late
        assert abs(early.lag_ms + 120) <= frame_ms
        assert late.correlation > 0.6 and late.confidence > 3.5 and late.margin > 0.3


def test_swapped_audio_scores_near_chance(clips) -> None:
    swapped, chance, corr = [], [], []
    for i, (flow, _, _) in enumerate(clips):
        other = clips[(i + 1) % len(clips)][1]
        result = av_align(None, FPS, other, SR, flow=flow)
        swapped.append(result.score)
        chance.append(chance_iou(result.audio_peaks, result.video_peaks, FPS, DURATION))
        corr.append(av_offset(None, FPS, other, SR, flow=flow).correlation)
    assert np.mean(swapped) <= 0.3
    assert abs(np.mean(swapped) - np.mean(chance)) <= 0.1
    assert max(corr) < 0.45  # synced clips correlate at ~0.85


def test_estimate_offset_on_synthetic_curves_and_sign() -> None:
    # Spike trains at irregular times; the audio copy is 150 ms late.
    rng = np.random.default_rng(3)
    events = np.cumsum(rng.uniform(0.3, 0.7, 8))
    t_v = np.arange(0, 5, 1 / 25)
    t_a = np.arange(0, 5, 1 / 400)
    video = sum(np.exp(-0.5 * ((t_v - e) / 0.02) ** 2) for e in events)
    audio = sum(np.exp(-0.5 * ((t_a - e - 0.150) / 0.005) ** 2) for e in events)
    result = estimate_offset(audio, t_a, video, t_v, 25)
    assert result.lag_ms == pytest.approx(150, abs=20)
    flat = estimate_offset(np.ones_like(t_a), t_a, video, t_v, 25)
    assert np.isnan(flat.lag_ms) and flat.confidence == 0.0 and flat.to_dict()["lag_ms"] is None


def test_offset_checks_its_inputs() -> None:
    with pytest.raises(ClipError, match="rate_hz"):
        estimate_offset([0, 1], [0, 1], [0, 1], [0, 1], 30, config=OffsetConfig(rate_hz=20))
    with pytest.raises(ClipError, match="max_lag_ms"):
        OffsetConfig(max_lag_ms=0)
    with pytest.raises(ClipError, match="at least 3"):
        motion_onset_curve([1.0, 2.0], 24)
