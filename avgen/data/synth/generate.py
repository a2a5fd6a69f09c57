"""make_sample: one procedural clip with its caption and ground truth; write_sample: its files.

Events JSON schema (``SynthSample.to_json``), version 1::

    {"version": 1, "seed": 7, "split": "train", "global_seed": 7, "family": "bounce",
     "caption": "two small red balls bounce quickly", "fps": "24", "sample_rate": 16000,
     "num_frames": 48, "num_samples": 32000, "height": 64, "width": 64, "duration": 2.0,
     "events": [{"kind": "impact", "time": 0.31, "frame": 7, "sample": 4960, "ball": 0, ...}, ...],
     "state": {"ball_x": [[x0, x1], ...], ...},     # per frame, lists of length num_frames
     "objects": {...}}                               # colours, sizes, voice, layout

Event kinds: impact (bounce: ball, speed in frame heights / s, pitch_hz), word / phoneme / pause (talk:
word text, phoneme mnemonic, viseme, open), note_on / note_off (keys: bar, midi, pitch_hz). ``time`` is in
seconds, ``frame`` = nearest frame (round(time * fps)), ``sample`` = round(time * sample_rate).
Per-frame state: talk mouth_open / mouth_width / viseme / phoneme / eyes_open; bounce ball_x / ball_y
(pixel centres) / on_floor; keys lit (per bar); ambience rain_intensity / drops.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avgen import atomic
from avgen.data.synth.family import Rendered
from avgen.data.synth.spec import Scene, SynthConfig, generators, sample_seed

SCHEMA_VERSION = 1


def _renderer(family: str, cfg: SynthConfig) -> Callable[[np.random.Generator, Scene, str], Rendered]:
    """``family``'s ``render(rng, scene, split)``, bound to the options of ``cfg`` that it reads."""
    if family == "talk":
        from avgen.data.synth.talk import render

        return functools.partial(render, phrase_pool=cfg.phrase_pool)
    if family == "bounce":
        from avgen.data.synth.bounce import render
    elif family == "keys":
        from avgen.data.synth.keys import render
    else:
        from avgen.data.synth.ambience import render
    return render


@dataclasses.dataclass(frozen=True, eq=False)
class SynthSample:
    """One generated sample: ``clip`` (avgen AVClip: uint8 (T, H, W, 3) video, float32 (1, N) audio),
    the caption, ground-truth events and per-frame state (see the module docstring)."""

    clip: Any  # avgen.clip.AVClip
    caption: str
    family: str
    seed: int
    split: str
    events: list[dict[str, Any]]
    state: dict[str, list[Any]]
    objects: dict[str, Any]

    @property
    def name(self) -> str:
        """File stem: ``{split}_{seed:07d}``."""
        return f"{self.split}_{self.seed:07d}"

    def to_json(self) -> dict[str, Any]:
        clip = self.clip
        return {
            "version": SCHEMA_VERSION,
            "seed": self.seed,
            "split": self.split,
            "global_seed": sample_seed(self.seed, self.split),
            "family": self.family,
            "caption": self.caption,
            "fps": str(clip.fps),
            "sample_rate": clip.sample_rate,
            "num_frames": clip.num_frames,
            "num_samples": clip.num_samples,
            "height": clip.height,
            "width": clip.width,
            "duration": clip.video_duration,
            "events": self.events,
            "state": self.state,
            "objects": self.objects,
        }


def _draw_family(layout_rng: np.random.Generator, cfg: SynthConfig) -> str:
    names, probs = cfg.family_weights()
    return names[int(layout_rng.choice(len(names), p=probs))]


def sample_family(seed: int, split: str = "train", cfg: SynthConfig | None = None) -> str:
    """``make_sample(seed, split, cfg).family`` without rendering the clip (microseconds, not a second)."""
    layout_rng, _ = generators(sample_seed(seed, split), 2)
    return _draw_family(layout_rng, cfg or SynthConfig())


def make_sample(seed: int, split: str = "train", cfg: SynthConfig | None = None) -> SynthSample:
    """Sample ``seed`` (an offset within ``split``'s seed range) under ``cfg``: a pure function of the three."""
    from avgen.clip import AVClip

    cfg = cfg or SynthConfig()
    layout_rng, content_rng = generators(sample_seed(seed, split), 2)
    family = _draw_family(layout_rng, cfg)
    height, width = cfg.sizes[int(layout_rng.integers(len(cfg.sizes)))]
    duration = cfg.durations[int(layout_rng.integers(len(cfg.durations)))]
    scene = Scene.make(height, width, cfg.fps_fraction, cfg.sample_rate, duration)
    out = _renderer(family, cfg)(content_rng, scene, split)
    if out.video.shape != (scene.num_frames, height, width, 3) or out.audio.shape != (scene.num_samples,):
        raise AssertionError(
            f"{family} rendered {out.video.shape} / {out.audio.shape} for {scene}"
        )  # a bug, not bad input
    meta = {
        "caption": out.caption,
        "prompt": out.caption,
        "seed": str(seed),
        "split": split,
        "family": family,
    }
    clip = AVClip(
        video=out.video, fps=scene.fps, audio=out.audio[None], sample_rate=scene.sample_rate, metadata=meta
    )
    return SynthSample(clip, out.caption, family, int(seed), split, out.events, out.state, out.objects)


def write_sample(
    sample: SynthSample, out_dir: Path, *, lossless: bool = False, overwrite: bool = False
) -> dict[str, Any]:
    """Write ``{name}.mp4`` (or lossless ``.mkv``) and ``{name}.json`` into ``out_dir``; return the caption record."""
    from avgen.io import write_av

    video = out_dir / f"{sample.name}.{'mkv' if lossless else 'mp4'}"
    events = out_dir / f"{sample.name}.json"
    write_av(video, sample.clip, lossless=lossless, overwrite=overwrite)
    atomic.write_text(
        events, json.dumps(sample.to_json(), separators=(",", ":"))
    )  # compact, no final newline
    clip = sample.clip
    return {
        "file": video.name,
        "caption": sample.caption,
        "events": events.name,
        "family": sample.family,
        "seed": sample.seed,
        "split": sample.split,
        "duration": clip.video_duration,
        "height": clip.height,
        "width": clip.width,
        "fps": str(clip.fps),
    }
