"""SynthConfig and the scene geometry every family renders into.

A sample is a pure function of ``(seed, split, config)``: ``sample_seed`` maps the pair to a global seed in
the split's fixed range, and every random choice is drawn from ``numpy.random.Generator(PCG64)`` streams
spawned from it (never global RNG state).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np

from avgen.checks import as_fps
from avgen.data.synth.captions import PHRASE_POOLS
from avgen.errors import ClipError, ConfigError

FAMILIES = ("talk", "bounce", "keys", "ambience")
SPLITS = ("train", "val", "test")
# Fixed, disjoint seed ranges: sample ``seed`` of a split has global seed SPLIT_BASE[split] + seed.
SPLIT_BASE = {"train": 0, "val": 10_000_000, "test": 20_000_000}
SPLIT_SIZE = 10_000_000


def parse_fps(value: Any, *, where: str = "fps") -> Fraction:
    """``avgen.checks.as_fps`` for a synth config: an exact rate in [1, 240] from 24, "24", "30000/1001" or a
    Fraction. Floats are refused (``as_fps`` would snap them): a config names its frame rate exactly.
    """
    if isinstance(value, float | np.floating):
        raise ConfigError(
            f"{where}: give the frame rate as an int or a fraction string like '30000/1001', got {value!r}"
        )
    try:
        fps = as_fps(value, name=where)
    except ClipError as e:
        raise ConfigError(str(e)) from None
    if not 1 <= fps <= 240:
        raise ConfigError(f"{where}: frame rate {fps} is outside [1, 240]")
    return fps


def parse_size(text: str, *, where: str = "--size") -> tuple[int, int]:
    """``"64x96"`` -> (height, width) = (64, 96)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"{where}: expected HEIGHTxWIDTH such as 64x96, got {text!r}")
    return int(parts[0]), int(parts[1])


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What avgen-synth may generate; each sample picks its size, duration and family from these by seed.

    sizes: (height, width) pairs in pixels, each in [32, 1024]; landscape, portrait and square by default.
    fps: exact frame rate, int or a fraction string such as "30000/1001".
    sample_rate: audio rate in Hz (mono).
    durations: clip lengths in seconds, each in [1, 20].
    families: relative weight of each family (talk, bounce, keys, ambience); zero disables one.
    phrase_pool: what talk clips say, one of PHRASE_POOLS: "fixed" (44 train / 10 test phrases) or
        "composed" (``avgen.data.synth.phrases``: thousands, test sentences with held-out words). Left out of
        ``repr`` so that repr-keyed latent caches of "fixed" configs stay valid: key on it separately.
    """

    sizes: tuple[tuple[int, int], ...] = ((64, 64), (64, 96), (96, 64))
    fps: int | str = 24
    sample_rate: int = 16_000
    durations: tuple[float, ...] = (1.5, 2.0, 2.5)
    families: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"talk": 1.0, "bounce": 1.0, "keys": 1.0, "ambience": 0.5}
    )
    phrase_pool: str = dataclasses.field(default="fixed", repr=False)

    def __post_init__(self) -> None:
        sizes = tuple(tuple(int(v) for v in s) for s in self.sizes)
        if not sizes:
            raise ConfigError("SynthConfig.sizes: give at least one (height, width) pair")
        for s in sizes:
            if len(s) != 2 or not all(32 <= v <= 1024 for v in s):
                raise ConfigError(
                    f"SynthConfig.sizes: {s} must be (height, width) with each side in [32, 1024]"
                )
        object.__setattr__(self, "sizes", sizes)
        parse_fps(self.fps, where="SynthConfig.fps")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise ConfigError(f"SynthConfig.sample_rate must be an int in Hz, got {self.sample_rate!r}")
        if not 8_000 <= self.sample_rate <= 48_000:
            raise ConfigError(f"SynthConfig.sample_rate={self.sample_rate} is outside [8000, 48000] Hz")
        durations = tuple(float(d) for d in self.durations)
        if not durations or not all(math.isfinite(d) and 1.0 <= d <= 20.0 for d in durations):
            raise ConfigError(
                f"SynthConfig.durations: each must be in [1, 20] seconds, got {self.durations!r}"
            )
        object.__setattr__(self, "durations", durations)
        families = {str(k): float(v) for k, v in dict(self.families).items()}
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ConfigError(f"SynthConfig.families: unknown {unknown}; known: {', '.join(FAMILIES)}")
        if any(not math.isfinite(v) or v < 0 for v in families.values()) or sum(families.values()) <= 0:
            raise ConfigError(
                f"SynthConfig.families: weights must be >= 0 with a positive sum, got {families}"
            )
        object.__setattr__(self, "families", families)
        if self.phrase_pool not in PHRASE_POOLS:
            raise ConfigError(
                f"SynthConfig.phrase_pool must be one of {', '.join(PHRASE_POOLS)}, got {self.phrase_pool!r}"
            )

    @property
    def fps_fraction(self) -> Fraction:
        return parse_fps(self.fps)

    def family_weights(self) -> tuple[tuple[str, ...], np.ndarray]:
        """Enabled families (fixed order) and their probabilities."""
        names = tuple(f for f in FAMILIES if self.families.get(f, 0.0) > 0)
        w = np.array([self.families[f] for f in names], dtype=np.float64)
        return names, w / w.sum()


@dataclasses.dataclass(frozen=True)
class Scene:
    """The canvas and clock of one sample.

    Frame i is shown at time i / fps; audio sample n plays at n / sample_rate. An event at time t is seen
    on frame ``frame_of(t)`` (the nearest frame) and heard from sample ``sample_of(t)``.
    """

    height: int
    width: int
    fps: Fraction
    sample_rate: int
    num_frames: int
    num_samples: int

    @classmethod
    def make(cls, height: int, width: int, fps: Fraction, sample_rate: int, duration: float) -> Scene:
        num_frames = max(1, round(duration * fps))
        num_samples = round(Fraction(num_frames) / fps * sample_rate)
        return cls(height, width, fps, sample_rate, num_frames, num_samples)

    @property
    def duration(self) -> float:
        return float(self.num_frames / self.fps)

    @property
    def frame_times(self) -> np.ndarray:
        """float64 (T,) presentation time of each frame in seconds."""
        return np.arange(self.num_frames, dtype=np.float64) / float(self.fps)

    @property
    def short_side(self) -> int:
        return min(self.height, self.width)

    def frame_of(self, t: float) -> int:
        """The frame nearest to time ``t`` (clamped to the clip)."""
        return int(min(max(math.floor(t * float(self.fps) + 0.5), 0), self.num_frames - 1))

    def sample_of(self, t: float) -> int:
        return int(min(max(round(t * self.sample_rate), 0), self.num_samples - 1))

    def event(self, kind: str, t: float, **details: Any) -> dict[str, Any]:
        """One ground-truth event: kind, time (s), frame, sample, then the family's details."""
        return {
            "kind": kind,
            "time": round(float(t), 6),
            "frame": self.frame_of(t),
            "sample": self.sample_of(t),
            **details,
        }


def sample_seed(seed: int, split: str) -> int:
    """The global seed of sample ``seed`` of ``split`` (fixed, disjoint ranges per split)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) < SPLIT_SIZE:
        raise ConfigError(
            f"seed must be an int in [0, {SPLIT_SIZE}) (an offset within the split), got {seed!r}"
        )
    return SPLIT_BASE[split] + int(seed)


def generators(global_seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent PCG64 streams spawned from one global seed (same seed -> same streams)."""
    children = np.random.SeedSequence(global_seed).spawn(n)
    return [np.random.Generator(np.random.PCG64(c)) for c in children]
