"""A/V offset: the lag that best aligns an audio onset envelope with a video motion-onset curve.

Sign convention: a **positive lag means the audio is late** (a sound heard ``lag_ms`` after the motion that
caused it); shifting the audio earlier by ``lag_ms`` re-synchronises the clip.

Method: an audio onset envelope (librosa onset strength with a short 256-sample window at 22050 Hz, so its
timing is within a few ms) and a video motion-onset curve (the rising part of the per-frame mean optical-flow
magnitude, placed at the midpoint of the frame pair where new motion first shows) are resampled onto one grid finer than the
frame rate (200 Hz by default). The lag maximising their normalised (Pearson) cross-correlation over
+-``max_lag_ms`` is refined to sub-sample precision with a parabola through the peak. Confidence is the
peak's z-score over all lags; ``margin`` is the gap to the best rival peak more than one frame away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from avgen.errors import ClipError
from avgen.metrics._checks import check_rate, check_times
from avgen.metrics._deps import require
from avgen.metrics.av_align import AUDIO_SR, flow_magnitudes, to_librosa_mono


@dataclass(frozen=True)
class OffsetConfig:
    """Settings of :func:`estimate_offset`.

    ``rate_hz`` is the common grid rate (must exceed the clip's fps); ``n_fft``/``hop``/``n_mels`` set the
    audio onset envelope at 22050 Hz.
    """

    max_lag_ms: float = 500.0
    rate_hz: float = 200.0
    n_fft: int = 256
    hop: int = 32
    n_mels: int = 32

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_lag_ms) and self.max_lag_ms > 0):
            raise ClipError(f"OffsetConfig.max_lag_ms: expected > 0 ms, got {self.max_lag_ms}")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ClipError(f"OffsetConfig.rate_hz: expected > 0 Hz, got {self.rate_hz}")
        if self.hop < 1 or self.n_fft < self.hop or self.n_mels < 1:
            raise ClipError(
                f"OffsetConfig: need 1 <= hop <= n_fft and n_mels >= 1, got hop={self.hop}, "
                f"n_fft={self.n_fft}, n_mels={self.n_mels}"
            )


@dataclass(frozen=True)
class OffsetResult:
    """Estimated A/V offset. ``lag_ms`` > 0: audio late. NaN lag (confidence 0) when a curve is flat.

    ``lags_ms``/``correlation_curve`` hold the whole normalised cross-correlation for plots.
    """

    lag_ms: float
    correlation: float
    confidence: float
    margin: float
    max_lag_ms: float
    lags_ms: tuple[float, ...] = field(repr=False)
    correlation_curve: tuple[float, ...] = field(repr=False)

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready summary (NaN becomes None)."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(float(x), 6)

        return {
            "lag_ms": num(self.lag_ms),
            "correlation": num(self.correlation),
            "confidence": num(self.confidence),
            "margin": num(self.margin),
            "max_lag_ms": self.max_lag_ms,
        }


def audio_onset_envelope(
    audio: np.ndarray, sample_rate: int, config: OffsetConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Onset strength (spectral flux of log-mel) and the time of each value.

    Args:
        audio: (C, N) or (N,) float in [-1, 1] at ``sample_rate``.
    Returns:
        (values (M,) float64 >= 0, times (M,) float64 seconds); value j compares STFT frames j-1 and j, so
        it is placed half a hop before frame j's centre.
    """
    librosa = require("librosa")
    cfg = config or OffsetConfig()
    y = to_librosa_mono(audio, sample_rate)
    env = librosa.onset.onset_strength(
        y=y, sr=AUDIO_SR, n_fft=cfg.n_fft, hop_length=cfg.hop, n_mels=cfg.n_mels
    ).astype(np.float64)
    times = (np.arange(len(env)) - 0.5) * cfg.hop / AUDIO_SR
    return env, times


def motion_onset_curve(flow: object, fps: float | Fraction) -> tuple[np.ndarray, np.ndarray]:
    """Rising part of the motion energy, and its times.

    Args:
        flow: (T,) per-frame mean flow magnitude as :func:`avgen.metrics.av_align.flow_magnitudes` gives
            (entry i is the motion from frame i-1 to i, at time (i - 0.5) / fps).
    Returns:
        (values (T-2,) float64 >= 0, times (T-2,) seconds). Motion that starts between frames k and k+1 first
        shows in the frame pair (k, k+1), so the rise ``max(m[k] - m[k-1], 0)`` is placed at that pair's
        midpoint (k + 0.5) / fps: unbiased, within half a frame.
    """
    f = check_times(flow, "flow")
    rate = check_rate(fps, "fps")
    if len(f) < 3:
        raise ClipError(f"flow: need at least 3 frames to measure motion onsets, got {len(f)}")
    motion = f[1:]  # motion[k]: frames k -> k+1, at (k + 0.5) / fps
    rising = np.maximum(np.diff(motion), 0.0)  # rising[j] = motion[j+1] - motion[j], seen in pair j+1
    times = (np.arange(len(rising)) + 1.5) / rate
    return rising, times


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.5:
        return x
    radius = math.ceil(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.convolve(np.pad(x, radius, mode="edge"), taps / taps.sum(), mode="valid")


def _is_flat(x: np.ndarray) -> bool:
    return float(np.ptp(x)) <= 1e-9 * max(float(np.abs(x).max()), 1e-30)


def _pearson_by_lag(a: np.ndarray, v: np.ndarray, max_shift: int) -> np.ndarray:
    """corr[k + max_shift] = Pearson(a[n + k], v[n]) over the overlap, for k in -max_shift..max_shift."""
    n = len(a)
    out = np.full(2 * max_shift + 1, np.nan)
    for idx, k in enumerate(range(-max_shift, max_shift + 1)):
        aa, vv = (a[k:], v[: n - k]) if k >= 0 else (a[: n + k], v[-k:])
        aa = aa - aa.mean()
        vv = vv - vv.mean()
        denom = math.sqrt(float(aa @ aa) * float(vv @ vv))
        if denom > 0:
            out[idx] = float(aa @ vv) / denom
    return out


def estimate_offset(
    audio_env: object,
    audio_times: object,
    video_curve: object,
    video_times: object,
    fps: float | Fraction,
    *,
    config: OffsetConfig | None = None,
) -> OffsetResult:
    """Lag (ms, positive = audio late) maximising the normalised cross-correlation of two event curves.

    Pure: takes any audio envelope and video curve with their sample times (seconds, increasing). The lag
    range is +-``max_lag_ms``, reduced to a third of the shared duration for very short clips.
    """
    cfg = config or OffsetConfig()
    rate = check_rate(fps, "fps")
    if cfg.rate_hz <= rate:
        raise ClipError(f"OffsetConfig.rate_hz={cfg.rate_hz} must exceed the frame rate {rate:g}")
    a_val, a_t = check_times(audio_env, "audio_env"), check_times(audio_times, "audio_times")
    v_val, v_t = check_times(video_curve, "video_curve"), check_times(video_times, "video_times")
    if a_val.shape != a_t.shape or v_val.shape != v_t.shape or len(a_t) < 2 or len(v_t) < 2:
        raise ClipError("estimate_offset: each curve needs >= 2 values, as many as its times")
    end = min(a_t[-1], v_t[-1])
    if end <= 0:
        raise ClipError(f"estimate_offset: the curves share no time span (end {end:.3f} s)")
    grid = np.arange(0.0, end, 1.0 / cfg.rate_hz)
    # The audio envelope is sharper than one frame; smooth it to the video's time resolution first.
    audio_rate = (len(a_t) - 1) / (a_t[-1] - a_t[0])
    a = np.interp(grid, a_t, _gaussian_smooth(a_val, 0.25 * audio_rate / rate))
    v = np.interp(grid, v_t, v_val)
    max_lag_ms = min(cfg.max_lag_ms, 1000.0 * end / 3.0)
    max_shift = max(1, round(max_lag_ms * cfg.rate_hz / 1000.0))
    lags_ms = (np.arange(-max_shift, max_shift + 1) * 1000.0 / cfg.rate_hz).tolist()
    if _is_flat(a) or _is_flat(v):  # silence or a still picture: no lag can be measured
        corr = np.full(len(lags_ms), np.nan)
    else:
        corr = _pearson_by_lag(a, v, max_shift)
    if np.isnan(corr).all():
        nan = float("nan")
        return OffsetResult(nan, nan, 0.0, nan, max_lag_ms, tuple(lags_ms), tuple(corr.tolist()))
    filled = np.nan_to_num(corr, nan=-1.0)
    best = int(np.argmax(filled))
    shift = float(best)
    if 0 < best < len(filled) - 1:  # parabola through the peak and its neighbours
        y0, y1, y2 = filled[best - 1 : best + 2]
        curvature = y0 - 2 * y1 + y2
        if curvature < 0:
            shift += float(np.clip(0.5 * (y0 - y2) / curvature, -0.5, 0.5))
    lag_ms = (shift - max_shift) * 1000.0 / cfg.rate_hz
    valid = corr[~np.isnan(corr)]
    spread = float(valid.std())
    confidence = (float(filled[best]) - float(valid.mean())) / spread if spread > 0 else 0.0
    # Best rival: the highest local maximum more than one frame away from the peak.
    guard = math.ceil(cfg.rate_hz / rate)
    is_max = np.r_[False, (filled[1:-1] >= filled[:-2]) & (filled[1:-1] >= filled[2:]), False]
    is_max[max(0, best - guard) : best + guard + 1] = False
    rival = float(filled[is_max].max()) if is_max.any() else float(valid.min())
    return OffsetResult(
        lag_ms=float(lag_ms),
        correlation=float(filled[best]),
        confidence=float(confidence),
        margin=float(filled[best]) - rival,
        max_lag_ms=float(max_lag_ms),
        lags_ms=tuple(lags_ms),
        correlation_curve=tuple(corr.tolist()),
    )


def av_offset(
    video: np.ndarray | None,
    fps: float | Fraction | str,
    audio: np.ndarray,
    sample_rate: int,
    *,
    flow: np.ndarray | None = None,
    config: OffsetConfig | None = None,
) -> OffsetResult:
    """A/V offset of one clip (positive = audio late).

    Args:
        video: (T, H, W, 3) uint8 RGB with T >= 3 (may be None when ``flow`` is given).
        audio: (C, N) or (N,) float32 in [-1, 1] at ``sample_rate`` Hz.
        flow: optional precomputed per-frame flow magnitudes (T,), e.g. from an AV-Align run.
    """
    rate = check_rate(fps, "fps")
    if flow is None:
        if video is None:
            raise ClipError("av_offset: give the video frames or their precomputed flow magnitudes")
        flow = flow_magnitudes(video)
    v_val, v_t = motion_onset_curve(flow, rate)
    a_val, a_t = audio_onset_envelope(audio, sample_rate, config)
    return estimate_offset(a_val, a_t, v_val, v_t, rate, config=config)
