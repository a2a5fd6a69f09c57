"""Whether a generated avgen-synth picture is the scene asked for: a backdrop of the family's palette that
stands out against the asked colours, and (bounce) round balls rather than blobs.

Both read only the frames and the caption, so they score generated clips the same way as ground truth:
- ``background_ok``: the backdrop (per-row median of the two edge columns over time, as
  ``sampled_foreground`` takes it) is, over its top tenth of rows, within ``tolerance`` (max RGB difference
  on [0, 1]) of a palette colour (``BACKGROUNDS``, or it lightened 8 % as bounce draws it) that contrasts
  with every asked colour as the renderer requires, and it holds still (edge colours vary little in time).
- ``ball_round``: the share of sampled frames that show a ball and little else: some foreground component is
  ball-shaped (at least ``min_area`` pixels, a bounding box of aspect 2/3-3/2 that it fills 0.6-0.9 of: a
  disc fills pi/4 = 0.785, a square 1, a token-sized block or a smear neither), overlapping the ellipse
  inscribed in that box by IoU >= ``min_iou`` (a speckled patch does not), and of one flat colour (median
  deviation from its median colour at most ``max_spread``: H.264 smears a small ball's chroma), and
  the foreground outside such balls covers at most ``max_clutter`` of the frame (a textured picture with a
  roundish patch in it is no ball on a floor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avgen.data.synth.captions import BACKGROUNDS, COLORS
from avgen.data.synth.draw import mix
from avgen.data.synth.family import contrast
from avgen.data.synth.pixels import rgb01, sampled_foreground
from avgen.metrics._checks import check_video
from avgen.metrics._deps import require


def _palette(colors: list[str]) -> np.ndarray:
    """``(K, 3)``: the backdrops the renderer may draw behind ``colors`` (each as drawn and lightened 8 %)."""
    names = [n for n, bg in BACKGROUNDS.items() if all(contrast(COLORS[c], bg) >= 0.3 for c in colors)]
    if not names:  # the renderer's fallback: the best single choice
        names = [max(BACKGROUNDS, key=lambda n: min(contrast(COLORS[c], BACKGROUNDS[n]) for c in colors))]
    return np.asarray([v for n in names for v in (BACKGROUNDS[n], mix(BACKGROUNDS[n], (1, 1, 1), 0.08))])


def background_ok(
    video: np.ndarray, colors: list[str], *, tolerance: float = 0.1, max_flicker: float = 0.08
) -> bool:
    """See the module docstring. ``video`` uint8 ``(T, H, W, 3)``; ``colors``: the caption's colour names."""
    check_video(video)
    frames = rgb01(video)  # (T, H, W, 3)
    top = max(1, frames.shape[1] // 10)
    edges = np.concatenate([frames[:, :top, :1], frames[:, :top, -1:]], axis=2)  # (T, top, 2, 3)
    colour = np.median(edges, axis=(0, 1, 2))  # (3,)
    flicker = float(np.median(np.abs(edges - colour).max(axis=-1)))
    near = np.abs(_palette([c for c in colors if c in COLORS]) - colour).max(axis=-1).min()
    return bool(near <= tolerance and flicker <= max_flicker)


def _ellipse_iou(mask: np.ndarray, box: np.ndarray) -> float:
    """IoU of a component ``mask (H, W)`` with the ellipse inscribed in its bounding box ``(x, y, w, h, .)``."""
    x, y, w, h = (int(v) for v in box[:4])
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    ellipse = ((xx + 0.5 - x - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - y - h / 2) / (h / 2)) ** 2 <= 1.0
    return float((mask & ellipse).sum() / max((mask | ellipse).sum(), 1))


def ball_round(
    video: np.ndarray,
    *,
    frames_used: int = 12,
    min_area: int | None = None,
    max_clutter: float = 0.03,
    max_spread: float = 0.2,
    min_iou: float = 0.75,
) -> float:
    """See the module docstring. ``video`` uint8 ``(T, H, W, 3)``; returns a share in [0, 1]."""
    cv2 = require("cv2")
    check_video(video)
    frames, _, fg = sampled_foreground(video, frames_used)  # (F, H, W, 3), _, (F, H, W)
    pixels = fg.shape[1] * fg.shape[2]
    area_floor = min_area if min_area is not None else max(6, round(0.004 * pixels))
    hits = 0
    for frame, mask in zip(frames, fg):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        balls = 0
        ball_pixels = 0
        for k in range(1, n):
            w, h, area = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT], stats[k, cv2.CC_STAT_AREA]
            if area < area_floor or not (2 / 3 <= w / h <= 3 / 2 and 0.6 <= area / (w * h) <= 0.9):
                continue
            if _ellipse_iou(labels == k, stats[k]) < min_iou:
                continue
            inside = frame[labels == k]  # (area, 3): one flat colour, up to shading at the rim
            if float(np.median(np.abs(inside - np.median(inside, axis=0)).max(axis=-1))) <= max_spread:
                balls += 1
                ball_pixels += area
        clutter = (int(mask.sum()) - ball_pixels) / pixels
        hits += balls > 0 and clutter <= max_clutter
    return hits / len(fg)


def scene_scores(video: np.ndarray, family: str, colors: list[str]) -> dict[str, Any]:
    """``{"background_ok": bool}`` for every family with a drawn backdrop, plus ``ball_round`` for bounce."""
    out: dict[str, Any] = {"background_ok": background_ok(video, colors)}
    if family == "bounce":
        out["ball_round"] = round(ball_round(video), 4)
    return out
