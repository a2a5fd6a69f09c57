"""Ground-truth scores for avgen-synth clips, measured from the pixels and the sound of the clip scored.

The events JSON that ``avgen data synth`` writes next to each clip (schema in
``avgen/data/synth/generate.py``) supplies the layout and the request: ball colours and lanes, the mouth
position, the caption. What happened is measured from the clip itself, so a generated clip is scored by the
same code as the ground truth:

- **impact F1** (bounce): visible impacts are the frames where a ball's centroid is lowest (a bounce); an
  audio onset within one frame of an impact is a hit; precision/recall/F1 over impacts and onsets.
- **lip sync** (talk): mouth openness = mouth-coloured pixels in the mouth box / box width (pixels of
  opening) per frame, correlated with the audio RMS per frame; also the best lag (positive = audio late).
- **steadiness** (any clip; bounce): the mean change between consecutive frames, and how much a tracked
  ball's area varies from frame to frame (a drawn ball keeps its size; a flickering blob does not).
- **prompt adherence** (bounce, talk, keys): the colour(s) and count the caption asks for, against the
  colours (by hue) and the number of coloured objects seen in the frames (count not measured for keys).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from einops import rearrange

from avgen.data.synth.pixels import mouth_pixels, sampled_foreground
from avgen.data.synth.pixels import rgb01 as _rgb01
from avgen.errors import ClipError
from avgen.metrics._checks import check_audio, check_rate, check_times, check_video
from avgen.metrics._deps import require

# Hue (degrees) of each chromatic caption colour; "white" is told apart by low saturation.
HUES = {
    "red": 0.0,
    "orange": 30.0,
    "yellow": 53.0,
    "green": 128.0,
    "blue": 223.0,
    "purple": 278.0,
    "pink": 330.0,
}
COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def match_events(true_times: object, detected_times: object, tolerance: float) -> list[tuple[int, int]]:
    """One-to-one pairs ``(true_index, detected_index)`` with ``|t - d| <= tolerance``, closest first."""
    t = check_times(true_times, "true_times")
    d = check_times(detected_times, "detected_times")
    gaps = sorted(
        (abs(a - b), i, j) for i, a in enumerate(t) for j, b in enumerate(d) if abs(a - b) <= tolerance
    )
    used_t, used_d, pairs = set(), set(), []
    for _, i, j in gaps:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def impact_f1(impact_times: object, onset_times: object, fps: float) -> dict[str, float | int | None]:
    """Precision / recall / F1 of audio onsets against visible impacts, matched within one frame (1/fps).

    Precision is None with no onsets, recall None with no impacts, F1 None when both are.
    """
    tol = 1.0 / check_rate(fps, "fps")
    t, d = check_times(impact_times, "impact_times"), check_times(onset_times, "onset_times")
    hits = len(match_events(t, d, tol))
    precision = hits / len(d) if len(d) else None
    recall = hits / len(t) if len(t) else None
    f1 = 2 * hits / (len(t) + len(d)) if len(t) + len(d) else None
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "hits": hits,
        "impacts": len(t),
        "onsets": len(d),
    }


def visible_impacts(
    video: np.ndarray, fps: float, balls: list[dict[str, Any]], *, min_drop: float = 0.5
) -> np.ndarray:
    """Times (s) of the frames where each ball is lowest: the impacts a viewer sees.

    Args:
        video: (T, H, W, 3) uint8. balls: the JSON ``objects.balls`` (``rgb`` in [0, 1]); ball b is looked for
            in lane b of ``len(balls)`` equal vertical strips, by colour.
        min_drop: how many pixels the ball must rise on both sides within 3 frames to count.
    Returns:
        (K,) float64 sorted unique times; impacts of several balls on one frame count once.
    """
    check_video(video, min_frames=3)
    frames = _rgb01(video)
    lanes = [np.linalg.norm(frames - np.asarray(ball["rgb"], np.float32), axis=-1) < 0.15 for ball in balls]
    return lane_impacts(lanes, fps, min_drop=min_drop)


def _tracked_lanes(masks: list[np.ndarray], max_missing: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(near (T, H, w) bool, area (T,) int)`` of each lane b of ``len(masks)`` equal vertical strips whose
    ball ``masks[b] (T, H, W)`` is tracked: seen at all, and missing in at most ``max_missing`` of the frames
    (more missing: the ball leaves its lane or is not drawn, no track)."""
    out = []
    for b, mask in enumerate(masks):
        W = mask.shape[2]
        near = mask[:, :, round(b * W / len(masks)) : round((b + 1) * W / len(masks))]
        area = near.sum(axis=(1, 2))
        seen = area > 0
        if seen.any() and (~seen).mean() <= max_missing:
            out.append((near, area))
    return out


def lane_impacts(
    masks: list[np.ndarray], fps: float, *, min_drop: float = 0.5, max_missing: float = 0.0
) -> np.ndarray:
    """Impact times (s) of ball b tracked by ``masks[b] (T, H, W)`` bool within lane b of ``len(masks)``
    equal vertical strips (see ``visible_impacts``). A lane where more than ``max_missing`` of the frames
    show no ball has no track; fewer missing frames are filled by linear interpolation of the centroid."""
    rate = check_rate(fps, "fps")
    times: list[float] = []
    for near, area in _tracked_lanes(masks, max_missing):
        T, seen = len(area), area > 0
        rows = np.arange(near.shape[1], dtype=np.float64)[None, :, None]
        y = (near * rows).sum(axis=(1, 2)) / np.maximum(area, 1)  # (T,) centroid row, larger = lower
        y = np.interp(np.arange(T), np.flatnonzero(seen), y[seen])
        for i in range(1, T - 1):
            if not (y[i] >= y[i - 1] and y[i] >= y[i + 1] and (y[i] > y[i - 1] or y[i] > y[i + 1])):
                continue
            before, after = y[max(0, i - 3) : i], y[i + 1 : i + 4]
            if y[i] - before.min() >= min_drop and y[i] - after.min() >= min_drop:
                times.append(i / rate)
    return np.unique(np.asarray(times, dtype=np.float64))  # balls landing on one frame: one sound event


def frame_change(video: np.ndarray) -> float:
    """Mean absolute change between consecutive frames, in 8-bit levels: (T, H, W, 3) uint8 -> float >= 0.

    Real avgen-synth clips move a few objects over a still background (a few levels); a picture that
    flickers from frame to frame scores many times that."""
    check_video(video, min_frames=2)
    v = video.astype(np.int16)
    return float(np.abs(v[1:] - v[:-1]).mean())


def lane_area_variation(masks: list[np.ndarray], *, max_missing: float = 0.2) -> float | None:
    """How much each tracked ball's area varies over the frames: the mean over tracked lanes (as in
    ``lane_impacts``) of the standard deviation of the ball's pixel count over its mean, in the frames where
    it is seen. A drawn ball stays near 0; None when no lane has a track."""
    cvs = [float(a[a > 0].std() / a[a > 0].mean()) for _, a in _tracked_lanes(masks, max_missing)]
    return float(np.mean(cvs)) if cvs else None


def mouth_openness(video: np.ndarray, mouth_center: tuple[float, float], face_radius: float) -> np.ndarray:
    """Mouth opening per frame in pixels: mouth-coloured pixels in the mouth box / box width.

    Args:
        video: (T, H, W, 3) uint8. mouth_center: (row, col) in pixels. face_radius: pixels.
    Returns:
        (T,) float64 >= 0.
    """
    check_video(video)
    if not (math.isfinite(face_radius) and face_radius > 0):
        raise ClipError(f"face_radius: expected a positive number of pixels, got {face_radius!r}")
    cy, cx = mouth_center
    hh, hw = 0.26 * face_radius + 2, 0.36 * face_radius + 2
    r0, r1 = max(0, math.floor(cy - hh)), min(video.shape[1], math.ceil(cy + hh) + 1)
    c0, c1 = max(0, math.floor(cx - hw)), min(video.shape[2], math.ceil(cx + hw) + 1)
    if r0 >= r1 or c0 >= c1:
        raise ClipError(
            f"mouth_center {mouth_center}: the mouth box lies outside the {video.shape[1:3]} frame"
        )
    mouth = mouth_pixels(video[:, r0:r1, c0:c1])  # (T, h, w)
    return mouth.sum(axis=(1, 2)).astype(np.float64) / (c1 - c0)


def frame_rms(audio: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """RMS of the mono audio in a one-frame window centred on each frame time: (num_frames,) float64."""
    a = check_audio(audio).mean(axis=0).astype(np.float64)
    sr, rate = check_rate(sample_rate, "sample_rate"), check_rate(fps, "fps")
    out = np.zeros(num_frames)
    for i in range(num_frames):
        s0 = max(0, round((i - 0.5) / rate * sr))
        s1 = min(len(a), round((i + 0.5) / rate * sr))
        if s1 > s0:
            out[i] = math.sqrt(float(np.mean(a[s0:s1] ** 2)))
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denom if denom > 0 else float("nan")


def lip_sync(
    openness: object, envelope: object, fps: float, *, max_lag_ms: float = 500.0
) -> dict[str, float | None]:
    """Correlation of mouth openness with the audio envelope (both per frame, same length).

    Returns ``correlation`` at lag 0 and the ``lag_ms`` in +-max_lag_ms maximising it (positive = audio
    late) with ``best_correlation``; None where a curve is flat.
    """
    o, e = check_times(openness, "openness"), check_times(envelope, "envelope")
    rate = check_rate(fps, "fps")
    if o.shape != e.shape or len(o) < 3:
        raise ClipError(f"lip_sync: openness {o.shape} and envelope {e.shape} need the same length >= 3")
    max_k = min(round(max_lag_ms / 1000 * rate), len(o) // 3)
    corr = {
        k: _pearson(e[k:], o[: len(o) - k]) if k >= 0 else _pearson(e[:k], o[-k:])
        for k in range(-max_k, max_k + 1)
    }
    finite = {k: c for k, c in corr.items() if math.isfinite(c)}
    if not finite:
        return {"correlation": None, "lag_ms": None, "best_correlation": None}
    best = max(finite, key=lambda k: finite[k])
    zero = corr[0]
    return {
        "correlation": zero if math.isfinite(zero) else None,
        "lag_ms": 1000.0 * best / rate,
        "best_correlation": finite[best],
    }


def parse_caption(caption: str) -> dict[str, Any]:
    """The colours and object count a caption asks for (quoted speech is ignored).

    "two small red balls bounce quickly" -> colours ["red"], count 2; "a big red ball and a small blue ball
    bounce slowly" -> ["red", "blue"], 2; a caption with no caption colour -> colours [], count None.
    """
    text = re.sub(r'"[^"]*"', " ", caption.lower())
    words = re.findall(r"[a-z]+", text)
    colours = [w for w in dict.fromkeys(words) if w in HUES or w == "white"]
    if not colours:
        return {"colors": [], "count": None}
    numbers = [COUNTS[w] for w in words if w in COUNTS]
    count = numbers[0] if numbers else sum(w in ("a", "an") for w in words)
    return {"colors": colours, "count": count or None}


def classify_colors(rgb: np.ndarray, min_saturation: float = 0.35) -> np.ndarray:
    """Name index per pixel: 0..6 the chromatic HUES (in order), 7 white, -1 neither. A pixel is chromatic
    from ``min_saturation`` up (and value >= 0.3), white below saturation 0.2 with value > 0.8.

    Args:
        rgb: (..., 3) float in [0, 1].
    """
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.degrees(np.arctan2(math.sqrt(3) * (g - b), 2 * r - g - b)) % 360.0
    centres = np.asarray(list(HUES.values()))
    diff = np.abs((hue[..., None] - centres + 180.0) % 360.0 - 180.0)
    out = np.where((sat >= min_saturation) & (mx >= 0.3), diff.argmin(axis=-1), -1)
    return np.where((sat < 0.2) & (mx > 0.8), len(HUES), out)


def _median_count(fg: np.ndarray, coloured: np.ndarray, min_area: int) -> int:
    """Median over frames of the foreground components (>= min_area px) that are >= 25% coloured."""
    cv2 = require("cv2")
    counts = []
    for f in range(len(fg)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg[f].astype(np.uint8), connectivity=8)
        big = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_area]
        counts.append(sum(coloured[f][labels == k].mean() >= 0.25 for k in big))
    return int(np.median(counts))


def _lit_state(frames: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel at the frame where it is furthest from the background, ``(1, H, W, 3)``, and the mask
    ``(1, H, W)`` of the pixels that light up: that far from the background (> 0.12) at their peak and at
    least 0.1 closer at some other frame (so the static backdrop and always-lit pixels drop out)."""
    dist = np.abs(frames - background[None, :, None]).max(axis=-1)  # (F, H, W)
    peak = rearrange(dist.argmax(axis=0), "h w -> 1 h w 1")
    lit = (dist.max(axis=0) > 0.12) & (dist.max(axis=0) - dist.min(axis=0) > 0.1)
    return np.take_along_axis(frames, peak, axis=0), lit[None]


def prompt_adherence(
    video: np.ndarray, caption: str, *, max_frames: int = 12, count: bool = True, lit: bool = False
) -> dict[str, Any] | None:
    """Colour(s) and count asked by ``caption`` against what the frames show; None if it asks for neither.

    Foreground = pixels away from the background (per-row median of the two edge columns over time).
    ``color_fraction``: share of coloured foreground pixels whose hue names an asked colour.
    ``count_measured``: median over frames of connected foreground components that are mostly coloured.
    ``count=False`` skips counting (keys: an unlit bar can be too close to the background to see).
    ``lit=True`` (keys) scores only the pixels that light up, each at its brightest-against-the-background
    frame, over all frames, with the chromatic floor at saturation 0.25: an unlit bar is 70 % background, so
    its hue is the background's, and a lit bar is its colour lightened 30 % towards white (pink on a light
    backdrop falls to saturation 0.34). With it, every ground-truth keys clip of the test and val splits
    passes its own caption's colour and none passes the next clip's different colour.
    """
    check_video(video)
    asked = parse_caption(caption)
    if not asked["colors"]:
        return None
    frames_used = len(video) if lit else min(max_frames, len(video))
    frames, background, fg = sampled_foreground(video, frames_used)  # (F, H, W, 3), (H, 3), (F, H, W)
    names = [*HUES, "white"]
    if lit:
        frames, fg = _lit_state(frames, background)  # (1, H, W, 3), (1, H, W)
        classes = classify_colors(frames, min_saturation=0.25)
    else:
        classes = classify_colors(frames)  # (F, H, W)
    coloured = fg & (classes >= 0)
    total = max(int(coloured.sum()), 1)
    share = {c: float(((classes == names.index(c)) & coloured).sum() / total) for c in asked["colors"]}
    fraction = float(sum(share.values()))
    color_ok = fraction >= 0.5 and all(v >= 0.05 for v in share.values())
    measured = None
    count_ok = None
    if count and asked["count"] is not None:
        min_area = max(6, round(0.002 * frames.shape[1] * frames.shape[2]))
        measured = _median_count(fg, coloured, min_area)
        count_ok = measured == asked["count"]
    return {
        "colors_asked": asked["colors"],
        "count_asked": asked["count"],
        "color_fraction": round(fraction, 4),
        "color_share": {k: round(v, 4) for k, v in share.items()},
        "count_measured": measured,
        "color_ok": bool(color_ok),
        "count_ok": count_ok,
        "adherent": bool(color_ok and count_ok is not False),
    }


def score_synth(
    video: np.ndarray, fps: float, audio: np.ndarray, sample_rate: int, events_json: dict[str, Any]
) -> dict[str, Any]:
    """All ground-truth scores that apply to this clip's family (keys: impact, lip_sync, prompt).

    Args:
        video: (T, H, W, 3) uint8; audio: (C, N) float at ``sample_rate``.
        events_json: the synth sample's JSON (``family``, ``caption``, ``objects``, ...).
    """
    from avgen.metrics.av_align import audio_onset_times

    if not isinstance(events_json, dict) or "family" not in events_json:
        raise ClipError("events_json: expected the avgen-synth sample JSON with a 'family' key")
    family, objects = events_json["family"], events_json.get("objects", {})
    out: dict[str, Any] = {"family": family}
    if family == "bounce":
        impacts = visible_impacts(video, fps, objects["balls"])
        out["impact"] = impact_f1(impacts, audio_onset_times(audio, sample_rate), fps)
        out["impact"]["impact_times"] = [round(float(t), 6) for t in impacts]
    if family == "talk":
        face = objects["face"]
        openness = mouth_openness(video, tuple(face["mouth_center"]), float(face["radius"]))
        out["lip_sync"] = lip_sync(openness, frame_rms(audio, sample_rate, fps, len(video)), fps)
    if family in ("bounce", "talk", "keys"):
        keys = family == "keys"
        out["prompt"] = prompt_adherence(video, str(events_json.get("caption", "")), count=not keys, lit=keys)
    return out
