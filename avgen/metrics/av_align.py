"""AV-Align (Yariv et al., TempoTokens ``av_align.py``): IoU of audio onsets and optical-flow peaks.

Two variants exist in the wild and give different numbers, so every score says which one it is:

- ``"current"`` (the TempoTokens file today, the default): video peaks must be strict local maxima of the
  per-frame mean Farneback flow magnitude *and* >= 0.1; an audio peak matches the first *unused* video peak
  with ``|a - v| < 1/fps`` (each video peak is used once), so the score lies in [0, 1].
- ``"legacy"`` (older copies): no 0.1 threshold and no one-use rule; an audio peak matches the first video
  peak in the window even if another audio peak already took it, so the "IoU" can exceed 1.

The scoring (:func:`iou_from_peaks`) is a pure function of peak lists; feature extraction
(:func:`audio_onset_times`, :func:`flow_magnitudes`, :func:`video_peak_times`) is separate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np

from avgen.errors import ClipError
from avgen.metrics._checks import check_audio, check_rate, check_times, check_video
from avgen.metrics._deps import require

Variant = Literal["current", "legacy"]
VARIANTS: tuple[str, ...] = ("current", "legacy")

#: Reference constants: librosa's default load rate, Farneback parameters and the flow-peak threshold.
AUDIO_SR = 22050
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)  # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
PEAK_THRESHOLD = 0.1


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ClipError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    return variant


def match_peaks(
    audio_peaks: object, video_peaks: object, fps: float | Fraction, *, variant: Variant = "current"
) -> list[tuple[int, int]]:
    """Pairs ``(audio_index, video_index)`` matched by AV-Align's greedy rule.

    Audio peaks are visited in the given order; each takes the first video peak (in the given order) with
    ``|a - v| < 1/fps`` (strict), which in the ``current`` variant must not have been taken before.
    """
    a = check_times(audio_peaks, "audio_peaks")
    v = check_times(video_peaks, "video_peaks")
    window = 1.0 / check_rate(fps, "fps")
    one_use = _check_variant(variant) == "current"
    used = np.zeros(len(v), dtype=bool)
    pairs: list[tuple[int, int]] = []
    for i, ta in enumerate(a):
        for j, tv in enumerate(v):
            if one_use and used[j]:
                continue
            if tv - window < ta < tv + window:
                used[j] = True
                pairs.append((i, j))
                break
    return pairs


def iou_from_peaks(
    audio_peaks: object, video_peaks: object, fps: float | Fraction, *, variant: Variant = "current"
) -> float:
    """AV-Align score ``I / (|A| + |V| - I)`` of two peak lists (seconds).

    Returns NaN when both lists are empty (the reference divides by zero there). In ``legacy`` the value
    can exceed 1 (a video peak can be matched by several audio peaks).
    """
    a = check_times(audio_peaks, "audio_peaks")
    v = check_times(video_peaks, "video_peaks")
    inter = len(match_peaks(a, v, fps, variant=variant))
    union = len(a) + len(v) - inter
    return float("nan") if union == 0 else inter / union


def video_peak_times(flow: object, fps: float | Fraction, *, variant: Variant = "current") -> np.ndarray:
    """Times ``i / fps`` (float64, seconds) of frames i in 1..n-2 that are strict local maxima of ``flow``.

    ``current`` also requires ``flow[i] >= 0.1``.
    """
    f = check_times(flow, "flow")
    rate = check_rate(fps, "fps")
    threshold = PEAK_THRESHOLD if _check_variant(variant) == "current" else -np.inf
    inner = f[1:-1]
    is_peak = (inner > f[:-2]) & (inner > f[2:]) & (inner >= threshold)
    return (np.flatnonzero(is_peak) + 1) / rate


def flow_magnitudes(video: np.ndarray) -> np.ndarray:
    """Mean Farneback flow magnitude per frame, as the reference computes it.

    Args:
        video: (T, H, W, 3) uint8 RGB, T >= 2.
    Returns:
        (T,) float64 >= 0 in pixels per frame; entry i is the flow from frame i-1 to i, and entry 0 repeats
        entry 1 (the flow from frame 0 to 1).
    """
    cv2 = require("cv2")
    check_video(video, min_frames=2)
    # The reference converts BGR frames with COLOR_BGR2GRAY; on RGB input COLOR_RGB2GRAY is the same luma.
    gray = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in video]
    mags = np.empty(len(gray), dtype=np.float64)
    for i in range(1, len(gray)):
        flow = cv2.calcOpticalFlowFarneback(gray[i - 1], gray[i], None, *FARNEBACK)
        mags[i] = cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0]
    mags[0] = mags[1]
    return mags


def to_librosa_mono(audio: np.ndarray, sample_rate: int, target_sr: int = AUDIO_SR) -> np.ndarray:
    """Audio as ``librosa.load(path)`` gives it: mono (channel mean), resampled with soxr_hq to target_sr.

    Args:
        audio: (C, N) or (N,) float in [-1, 1].
    Returns:
        (M,) float32 at ``target_sr``.
    """
    librosa = require("librosa")
    a = check_audio(audio)
    sr = int(check_rate(sample_rate, "sample_rate"))
    y = a.mean(axis=0) if a.shape[0] > 1 else a[0]
    if sr != target_sr:
        y = librosa.resample(y, orig_sr=sr, target_sr=target_sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def audio_onset_times(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times (float64 seconds) from ``librosa.onset.onset_detect`` on the onset-strength envelope.

    Args:
        audio: (C, N) or (N,) float in [-1, 1] at ``sample_rate``; analysed as mono at 22050 Hz.
    """
    librosa = require("librosa")
    y = to_librosa_mono(audio, sample_rate)
    env = librosa.onset.onset_strength(y=y, sr=AUDIO_SR)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=AUDIO_SR)
    return np.asarray(librosa.frames_to_time(frames, sr=AUDIO_SR), dtype=np.float64)


@dataclass(frozen=True)
class AVAlignResult:
    """One clip's AV-Align score with the evidence behind it.

    ``score`` is NaN when neither modality has a peak. ``flow`` is the per-frame flow magnitude (T,).
    ``matches`` are ``(audio_index, video_index)`` pairs.
    """

    score: float
    variant: str
    fps: float
    audio_peaks: tuple[float, ...]
    video_peaks: tuple[float, ...]
    matches: tuple[tuple[int, int], ...]
    flow: tuple[float, ...] = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (``score`` None when undefined)."""
        return {
            "score": None if np.isnan(self.score) else self.score,
            "variant": self.variant,
            "fps": self.fps,
            "audio_peaks": list(self.audio_peaks),
            "video_peaks": list(self.video_peaks),
            "matches": [list(m) for m in self.matches],
        }


def result_from_features(
    audio_peaks: object, flow: object, fps: float | Fraction, *, variant: Variant = "current"
) -> AVAlignResult:
    """AV-Align from precomputed audio onset times (s) and per-frame flow magnitudes (T,)."""
    rate = check_rate(fps, "fps")
    a_peaks = check_times(audio_peaks, "audio_peaks")
    mags = check_times(flow, "flow")
    v_peaks = video_peak_times(mags, rate, variant=variant)
    pairs = match_peaks(a_peaks, v_peaks, rate, variant=variant)
    union = len(a_peaks) + len(v_peaks) - len(pairs)
    return AVAlignResult(
        score=float("nan") if union == 0 else len(pairs) / union,
        variant=variant,
        fps=rate,
        audio_peaks=tuple(float(t) for t in a_peaks),
        video_peaks=tuple(float(t) for t in v_peaks),
        matches=tuple(pairs),
        flow=tuple(float(m) for m in mags),
    )


def av_align(
    video: np.ndarray | None,
    fps: float | Fraction | str,
    audio: np.ndarray,
    sample_rate: int,
    *,
    variant: Variant = "current",
    flow: np.ndarray | None = None,
) -> AVAlignResult:
    """AV-Align of one clip.

    Args:
        video: (T, H, W, 3) uint8 RGB, T >= 2; may be None when ``flow`` is given.
        fps: exact frame rate (Fraction, float or "30000/1001").
        audio: (C, N) or (N,) float32 in [-1, 1] at ``sample_rate`` Hz.
        flow: optional precomputed :func:`flow_magnitudes` (T,).
    """
    rate = check_rate(fps, "fps")
    _check_variant(variant)
    if flow is None:
        if video is None:
            raise ClipError("av_align: give the video frames or their precomputed flow magnitudes")
        flow = flow_magnitudes(video)
    return result_from_features(audio_onset_times(audio, sample_rate), flow, rate, variant=variant)


def chance_iou(
    audio_peaks: object,
    video_peaks: object,
    fps: float | Fraction,
    duration: float,
    *,
    variant: Variant = "current",
    n: int = 200,
    seed: int = 0,
) -> float:
    """Expected AV-Align of these peak densities with no sync: mean IoU over random circular shifts of the
    audio peaks within ``[0, duration)`` seconds. NaN when both lists are empty."""
    a = check_times(audio_peaks, "audio_peaks")
    v = check_times(video_peaks, "video_peaks")
    if not duration > 0:
        raise ClipError(f"duration: expected a positive number of seconds, got {duration!r}")
    if n < 1:
        raise ClipError(f"n: expected at least 1 random shift, got {n}")
    if len(a) + len(v) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    shifts = rng.uniform(0.0, duration, size=n)
    return float(
        np.mean([iou_from_peaks(np.sort((a + s) % duration), v, fps, variant=variant) for s in shifts])
    )
