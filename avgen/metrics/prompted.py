"""Ground-truth scores for a *generated* avgen-synth clip, from its caption alone.

A generated clip has no events JSON: where the face sits or which colour each ball lane holds is whatever
the model drew. What the scores need is read back from the caption and found in the pixels, then the same
measurements as ``avgen.metrics.synth`` run:

- bounce: the caption names the balls in lane order ("a big red ball and a small blue ball": red in the
  left half, blue in the right); each lane is tracked by the hue of its caption colour (up to 20 % of
  frames without the ball are interpolated);
- talk: the face is the largest region of the caption's face colour (by hue); its bounding box gives the
  centre and radius, the mouth sits 0.45 radius below the centre (as avgen-synth draws it);
- keys: prompt adherence only; ambience (rain): nothing to score.

``score_prompted(..., family)`` returns the same keys as ``score_synth`` (impact, lip_sync, prompt), so
reports and summaries treat both alike.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from avgen.data.synth.captions import COLORS
from avgen.errors import ClipError
from avgen.metrics._checks import check_video
from avgen.metrics.av_align import audio_onset_times
from avgen.metrics.synth import (
    COUNTS,
    HUES,
    classify_colors,
    frame_rms,
    impact_f1,
    lane_area_variation,
    lane_impacts,
    lip_sync,
    mouth_openness,
    prompt_adherence,
)

FAMILIES = ("talk", "bounce", "keys", "ambience")
_NAMES = [*HUES, "white"]


def caption_family(caption: str) -> str:
    """The avgen-synth family a caption describes: "talk" (a face says), "bounce" (balls), "keys" (bars),
    "ambience" (rain)."""
    text = re.sub(r'"[^"]*"', " ", caption.lower())
    if " face " in f" {text} ":
        return "talk"
    if re.search(r"\bballs?\b", text):
        return "bounce"
    if re.search(r"\brain\b", text):
        return "ambience"
    if re.search(r"\bbars?\b", text):
        return "keys"
    raise ClipError(f"caption {caption!r}: not an avgen-synth caption (no face, balls, bars or rain)")


def caption_balls(caption: str) -> list[str]:
    """Ball colours in lane order: "two small red balls bounce" -> ["red", "red"]; "a big red ball and a
    small blue ball bounce" -> ["red", "blue"]."""
    words = re.findall(r"[a-z]+", caption.lower())
    colours = [w for w in words if w in HUES or w == "white"]
    if not colours:
        raise ClipError(f"caption {caption!r}: names no ball colour")
    numbers = [COUNTS[w] for w in words if w in COUNTS]
    if numbers and len(colours) == 1:
        return colours * numbers[0]
    return colours


def hue_masks(video: np.ndarray, colours: list[str]) -> list[np.ndarray]:
    """Per colour name, ``(T, H, W)`` bool: pixels whose hue (and saturation) names that colour and whose
    brightness (max of R, G, B) is within 0.3 of the named colour's (a brown background is not orange)."""
    rgb = video.astype(np.float32) / 255.0
    classes = classify_colors(rgb)  # (T, H, W)
    value = rgb.max(axis=-1)
    return [(classes == _NAMES.index(c)) & (np.abs(value - max(COLORS[c])) < 0.3) for c in colours]


def locate_face(video: np.ndarray, colour: str) -> tuple[tuple[float, float], float] | None:
    """``((row, col) of the mouth, face radius)`` in pixels from the face-coloured region, or None.

    The region is the pixels of ``colour`` in at least half the frames (the face does not move); its
    bounding box (2nd-98th percentile rows and columns) gives centre and radius.
    """
    mask = hue_masks(video, [colour])[0].mean(axis=0) >= 0.5  # (H, W)
    if mask.sum() < 9:
        return None
    rows, cols = np.nonzero(mask)
    r0, r1 = np.percentile(rows, [2, 98])
    c0, c1 = np.percentile(cols, [2, 98])
    radius = max(float(r1 - r0 + 1), float(c1 - c0 + 1)) / 2
    cy, cx = float(r0 + r1) / 2, float(c0 + c1) / 2
    return (cy + 0.45 * radius, cx), radius


def score_prompted(
    video: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    caption: str,
    family: str | None = None,
) -> dict[str, Any]:
    """Scores of a clip generated for ``caption`` (family from the caption unless given).

    Args:
        video: (T, H, W, 3) uint8; audio: (C, N) float at ``sample_rate``.
    Returns:
        ``{"family", "impact"?, "lip_sync"?, "prompt"?}`` as ``score_synth``; ``lip_sync`` is None when no
        face of the caption's colour is found (the clip fails lip sync), ``impact`` counts no track as F1 0;
        bounce adds ``ball_area_cv`` (``lane_area_variation``; None with no track).
    """
    check_video(video, min_frames=3)
    family = family or caption_family(caption)
    if family not in FAMILIES:
        raise ClipError(f"family {family!r}: expected one of {FAMILIES}")
    out: dict[str, Any] = {"family": family}
    if family == "bounce":
        masks = hue_masks(video, caption_balls(caption))
        impacts = lane_impacts(masks, fps, max_missing=0.2)
        onsets = audio_onset_times(audio, sample_rate)
        out["impact"] = impact_f1(impacts, onsets, fps)
        out["impact"]["impact_times"] = [round(float(t), 6) for t in impacts]
        out["impact"]["onset_times"] = [round(float(t), 6) for t in onsets]
        out["ball_area_cv"] = lane_area_variation(masks, max_missing=0.2)
    if family == "talk":
        colours = [w for w in re.findall(r"[a-z]+", re.sub(r'"[^"]*"', " ", caption.lower())) if w in _NAMES]
        face = locate_face(video, colours[0]) if colours else None
        out["face"] = None if face is None else {"mouth_center": face[0], "radius": round(face[1], 3)}
        if face is None:
            out["lip_sync"] = None
        else:
            openness = mouth_openness(video, face[0], face[1])
            out["lip_sync"] = lip_sync(openness, frame_rms(audio, sample_rate, fps, len(video)), fps)
    if family in ("bounce", "talk", "keys"):
        out["prompt"] = prompt_adherence(video, caption, count=family != "keys", lit=family == "keys")
    return out
