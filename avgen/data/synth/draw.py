"""Anti-aliased rasterisation on float RGB canvases (numpy only).

Every canvas is float32 (H, W, 3) in [0, 1], drawn in place. Shapes are given by a signed distance (negative
inside, in pixels); coverage = clip(0.5 - distance, 0, 1) gives one pixel of anti-aliased edge. Pixel
(row y, column x) has its centre at (y + 0.5, x + 0.5). Work is limited to each shape's bounding box.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Color = tuple[float, float, float]


def _box(
    canvas: np.ndarray, y0: float, y1: float, x0: float, x1: float
) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    h, w = canvas.shape[:2]
    r0, r1 = max(int(np.floor(y0)) - 1, 0), min(int(np.ceil(y1)) + 1, h)
    c0, c1 = max(int(np.floor(x0)) - 1, 0), min(int(np.ceil(x1)) + 1, w)
    if r0 >= r1 or c0 >= c1:
        return None
    ys = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5  # (h, 1)
    xs = np.arange(c0, c1, dtype=np.float32)[None, :] + 0.5  # (1, w)
    return slice(r0, r1), slice(c0, c1), ys, xs


def fill_sdf(
    canvas: np.ndarray,
    bbox: tuple[float, float, float, float],
    sdf: Callable[[np.ndarray, np.ndarray], np.ndarray],
    color: Color,
    alpha: float = 1.0,
) -> None:
    """Blend ``color`` where ``sdf(ys, xs) < 0`` inside bbox = (y0, y1, x0, x1)."""
    box = _box(canvas, *bbox)
    if box is None:
        return
    rows, cols, ys, xs = box
    cover = np.clip(0.5 - sdf(ys, xs), 0.0, 1.0) * alpha  # (h, w)
    region = canvas[rows, cols]
    region += cover[..., None] * (np.asarray(color, dtype=np.float32) - region)


def disc(canvas: np.ndarray, cy: float, cx: float, r: float, color: Color, alpha: float = 1.0) -> None:
    """A filled circle of radius ``r`` pixels centred at (cy, cx)."""
    fill_sdf(
        canvas,
        (cy - r, cy + r, cx - r, cx + r),
        lambda y, x: np.sqrt((y - cy) ** 2 + (x - cx) ** 2) - r,
        color,
        alpha,
    )


def ellipse(
    canvas: np.ndarray, cy: float, cx: float, ry: float, rx: float, color: Color, alpha: float = 1.0
) -> None:
    """A filled axis-aligned ellipse with half-axes (ry, rx); distance approximated to first order."""
    ry, rx = max(ry, 1e-3), max(rx, 1e-3)

    def sdf(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        q = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
        return (q - 1.0) * min(ry, rx)

    fill_sdf(canvas, (cy - ry, cy + ry, cx - rx, cx + rx), sdf, color, alpha)


def rounded_rect(
    canvas: np.ndarray,
    y0: float,
    y1: float,
    x0: float,
    x1: float,
    radius: float,
    color: Color,
    alpha: float = 1.0,
) -> None:
    """A filled rectangle [y0, y1] x [x0, x1] (pixel edges) with corners rounded by ``radius``."""
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    hy, hx = (y1 - y0) / 2, (x1 - x0) / 2
    radius = float(np.clip(radius, 0.0, min(hy, hx)))

    def sdf(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        qy = np.abs(y - cy) - (hy - radius)
        qx = np.abs(x - cx) - (hx - radius)
        outside = np.sqrt(np.maximum(qy, 0) ** 2 + np.maximum(qx, 0) ** 2)
        return outside + np.minimum(np.maximum(qy, qx), 0) - radius

    fill_sdf(canvas, (y0, y1, x0, x1), sdf, color, alpha)


def segments(canvas: np.ndarray, ends: np.ndarray, width: float, color: Color, alpha: float = 1.0) -> None:
    """Many thin straight strokes at once (rain streaks): ends float (K, 4) rows of (y0, x0, y1, x1).

    Each stroke is sampled every half pixel and splatted bilinearly, scaled by ``width`` (<= ~1.5 px).
    """
    if len(ends) == 0:
        return
    h, w = canvas.shape[:2]
    y0, x0, y1, x1 = (ends[:, i].astype(np.float32) for i in range(4))  # (K,)
    steps = int(np.ceil(2 * np.sqrt((y1 - y0) ** 2 + (x1 - x0) ** 2).max())) + 1
    f = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :]  # (1, S)
    py = (y0[:, None] + f * (y1 - y0)[:, None]).ravel() - 0.5  # (K * S,) pixel-centre coordinates
    px = (x0[:, None] + f * (x1 - x0)[:, None]).ravel() - 0.5
    seg_len = np.sqrt((y1 - y0) ** 2 + (x1 - x0) ** 2)
    weight = np.repeat(np.maximum(seg_len, 0.5) / steps, steps) * width  # ink per sample
    iy, ix = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    fy, fx = py - iy, px - ix
    cover = np.zeros((h + 2, w + 2), dtype=np.float32)
    for dy, dx, wgt in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        ry, rx = np.clip(iy + dy + 1, 0, h + 1), np.clip(ix + dx + 1, 0, w + 1)
        np.add.at(cover, (ry, rx), wgt * weight)
    cover = np.clip(cover[1:-1, 1:-1], 0.0, 1.0) * alpha  # (H, W); the 1-pixel border catches strays
    canvas += cover[..., None] * (np.asarray(color, dtype=np.float32) - canvas)


def vertical_gradient(height: int, width: int, top: Color, bottom: Color) -> np.ndarray:
    """float32 (H, W, 3) background shading linearly from ``top`` to ``bottom``."""
    f = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    col = (1 - f) * np.asarray(top, np.float32) + f * np.asarray(bottom, np.float32)  # (H, 1, 3)
    return np.ascontiguousarray(np.broadcast_to(col, (height, width, 3)))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float [0, 1] (..., 3) -> uint8 [0, 255], rounded."""
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def mix(a: Color, b: Color, f: float) -> Color:
    """(1 - f) * a + f * b per channel."""
    return tuple(float((1 - f) * x + f * y) for x, y in zip(a, b))  # type: ignore[return-value]


def luminance(c: Color) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
