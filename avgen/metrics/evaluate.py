"""Score one clip with every sync metric that needs no pretrained network.

The optical flow and audio onsets are computed once and shared by AV-Align (both variants) and its chance
level; the offset estimator measures the change of motion per cell from its own flow pass
(:mod:`avgen.metrics.offset`). :class:`ClipEvaluation` keeps the curves so a report can plot them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avgen.errors import ClipError
from avgen.metrics.av_align import (
    AVAlignResult,
    audio_onset_times,
    chance_iou,
    flow_magnitudes,
    result_from_features,
)
from avgen.metrics.offset import (
    OffsetConfig,
    OffsetResult,
    audio_event_envelope,
    estimate_offset,
    motion_change_curve,
)


@dataclass(frozen=True)
class ClipEvaluation:
    """Sync scores of one clip plus the curves behind them.

    ``av_align``/``av_align_legacy`` are the two published variants; ``chance`` is the current variant's
    expected score with the same peak counts and no sync; ``offset`` is positive when the audio is late.
    """

    duration: float
    fps: float
    av_align: AVAlignResult
    av_align_legacy: AVAlignResult
    chance: float
    offset: OffsetResult
    onset_envelope: tuple[np.ndarray, np.ndarray] = field(repr=False)  # (values, times)
    motion_onsets: tuple[np.ndarray, np.ndarray] = field(repr=False)  # (values, times) of the motion change

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores (NaN becomes None)."""

        def num(x: float) -> float | None:
            return None if np.isnan(x) else round(float(x), 6)

        return {
            "duration_s": round(self.duration, 6),
            "fps": self.fps,
            "av_align": num(self.av_align.score),
            "av_align_variant": self.av_align.variant,
            "av_align_legacy": num(self.av_align_legacy.score),
            "av_align_chance": num(self.chance),
            "offset": self.offset.to_dict(),
            "audio_peaks_s": [round(t, 6) for t in self.av_align.audio_peaks],
            "video_peaks_s": [round(t, 6) for t in self.av_align.video_peaks],
            "video_peaks_legacy_s": [round(t, 6) for t in self.av_align_legacy.video_peaks],
            "matches": [list(m) for m in self.av_align.matches],
        }


def evaluate_clip(
    video: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    *,
    offset_config: OffsetConfig | None = None,
) -> ClipEvaluation:
    """All no-network sync metrics of one clip.

    Args:
        video: (T, H, W, 3) uint8 RGB with T >= 3.
        fps: frame rate (exact value as float).
        audio: (C, N) float32 in [-1, 1] at ``sample_rate`` Hz.
    """
    if video.shape[0] < 3:
        raise ClipError(f"video: need at least 3 frames to score sync, got {video.shape[0]}")
    flow = flow_magnitudes(video)
    a_peaks = audio_onset_times(audio, sample_rate)
    current = result_from_features(a_peaks, flow, fps, variant="current")
    legacy = result_from_features(a_peaks, flow, fps, variant="legacy")
    duration = video.shape[0] / fps
    chance = chance_iou(a_peaks, current.video_peaks, fps, duration)
    env = audio_event_envelope(audio, sample_rate, offset_config)
    motion = motion_change_curve(video, fps)
    offset = estimate_offset(*env, *motion, fps, config=offset_config, calibration="motion_change")
    return ClipEvaluation(duration, fps, current, legacy, chance, offset, env, motion)
