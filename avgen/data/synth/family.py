"""What every family renderer returns, and the choices they share (colours against backgrounds)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from avgen.data.synth.captions import BACKGROUNDS, COLORS
from avgen.data.synth.draw import Color, luminance


@dataclasses.dataclass
class Rendered:
    """One family's output before it becomes an AVClip.

    video: uint8 (T, H, W, 3) RGB. audio: float32 (N,) mono in [-1, 1].
    events: ground-truth events (see ``Scene.event``), in time order.
    state: per-frame ground truth, each value a list of length T.
    objects: what is in the scene (colours, sizes, voice, ...), JSON-ready.
    """

    video: np.ndarray
    audio: np.ndarray
    caption: str
    events: list[dict[str, Any]]
    state: dict[str, list[Any]]
    objects: dict[str, Any]


def pick(rng: np.random.Generator, options: tuple[Any, ...] | list[Any]) -> Any:
    """One element, uniformly."""
    return options[int(rng.integers(len(options)))]


def contrast(a: Color, b: Color) -> float:
    """A crude visual distance: luminance gap plus chroma gap."""
    return abs(luminance(a) - luminance(b)) + 0.5 * float(np.abs(np.subtract(a, b)).sum()) / 3


def background_for(
    rng: np.random.Generator, colors: list[str], *, min_contrast: float = 0.3
) -> tuple[str, Color]:
    """A background name and colour that every object colour in ``colors`` stands out against."""
    names = [
        n for n, bg in BACKGROUNDS.items() if all(contrast(COLORS[c], bg) >= min_contrast for c in colors)
    ]
    if not names:  # fall back to the best single choice
        names = [max(BACKGROUNDS, key=lambda n: min(contrast(COLORS[c], BACKGROUNDS[n]) for c in colors))]
    name = pick(rng, sorted(names))
    return name, BACKGROUNDS[name]


def jitter(rng: np.random.Generator, color: Color, amount: float = 0.04) -> Color:
    """The colour with a small random shift, so one name covers a range of shades."""
    return tuple(float(v) for v in np.clip(np.asarray(color) + rng.uniform(-amount, amount, 3), 0, 1))  # type: ignore[return-value]
