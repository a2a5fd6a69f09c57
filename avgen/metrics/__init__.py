"""Evaluation metrics that need no pretrained network: AV-Align, A/V offset, codec quality, synth scores.

Names are imported lazily (``from avgen.metrics import psnr`` loads only avgen.metrics.codec), so the CLI and
callers that need one metric do not pay for torch, opencv or librosa.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "iou_from_peaks": "avgen.metrics.av_align",
    "match_peaks": "avgen.metrics.av_align",
    "video_peak_times": "avgen.metrics.av_align",
    "audio_onset_times": "avgen.metrics.av_align",
    "flow_magnitudes": "avgen.metrics.av_align",
    "chance_iou": "avgen.metrics.av_align",
    "AVAlignResult": "avgen.metrics.av_align",
    "av_offset": "avgen.metrics.offset",
    "estimate_offset": "avgen.metrics.offset",
    "OffsetConfig": "avgen.metrics.offset",
    "OffsetResult": "avgen.metrics.offset",
    "psnr": "avgen.metrics.codec",
    "ssim": "avgen.metrics.codec",
    "si_snr": "avgen.metrics.codec",
    "mel_distance": "avgen.metrics.codec",
    "MelDistanceConfig": "avgen.metrics.codec",
    "evaluate_clip": "avgen.metrics.evaluate",
    "ClipEvaluation": "avgen.metrics.evaluate",
    "impact_f1": "avgen.metrics.synth",
    "lip_sync": "avgen.metrics.synth",
    "prompt_adherence": "avgen.metrics.synth",
    "score_synth": "avgen.metrics.synth",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'avgen.metrics' has no attribute {name!r}")
