"""What a pipeline folder stores besides weights: ``PipelineConfig`` (clip geometry, sampling settings,
the text encoder, the caption vocabulary, the prompt style) in ``pipeline.json``, and where shipped models
live."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avgen.checks import as_fps
from avgen.config import from_dict
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import CheckpointError, ConfigError
from avgen.model.text import TextEncoderConfig

FORMAT = "avgen.pipeline"
VERSION = 2
PIPELINE_FILE = "pipeline.json"
PARTS = ("dit", "video_codec", "audio_codec")
SHIPPED = {"avgen-tiny": "avgen-tiny"}  # name -> folder under avgen/weights/
# How a prompt reaches the text encoder: "raw", as given; "avgen-synth", rewritten into avgen-synth's caption
# grammar first (``avgen.data.synth.rewrite``), for models trained only on those captions.
PROMPT_STYLES = ("raw", "avgen-synth")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """What a pipeline generates when a call does not say: clip geometry and ``sampling``
    (``SamplingConfig``; any of its fields can be overridden per call). ``vocabulary``: the words of the
    captions the model was trained on (empty: unknown); a prompt that is mostly other words gets a
    one-line warning, since the model cannot draw what it never saw named. ``prompt_style``: one of
    ``PROMPT_STYLES``, what a call does to a prompt before encoding it (a call may turn a rewrite off)."""

    name: str = "avgen"
    fps: int | str = 24
    height: int = 64
    width: int = 64
    duration: float = 2.0
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
    text: TextEncoderConfig = dataclasses.field(default_factory=TextEncoderConfig)
    vocabulary: tuple[str, ...] = ()
    prompt_style: str = "raw"

    def __post_init__(self) -> None:
        as_fps(self.fps, name="PipelineConfig.fps")
        if not self.duration > 0:
            raise ConfigError(f"PipelineConfig.duration must be > 0 seconds, got {self.duration}")
        if isinstance(self.vocabulary, str) or not all(isinstance(w, str) for w in self.vocabulary):
            raise ConfigError(f"PipelineConfig.vocabulary must be a list of words, got {self.vocabulary!r}")
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(
                f"PipelineConfig.prompt_style must be one of {', '.join(PROMPT_STYLES)}, got {self.prompt_style!r}"
            )


# pipeline.json format 1 kept the sampling settings at the top level, two of them under other names.
_FORMAT_1_SAMPLING = {
    "steps": "steps",
    "sampler": "sampler",
    "shift": "shift",
    "video_scale": "video_guidance",
    "audio_scale": "audio_guidance",
    "video_sync": "video_sync",
    "audio_sync": "audio_sync",
    "order": "order",
    "negative_prompt": "negative_prompt",
}


def config_from_json(meta: dict[str, Any], where: str) -> PipelineConfig:
    """The ``PipelineConfig`` of a ``pipeline.json`` of format version 1 or 2."""
    version = meta.get("version", 1)
    config = dict(meta.get("config", {}))
    if version == 1:
        sampling = {new: config.pop(old) for old, new in _FORMAT_1_SAMPLING.items() if old in config}
        config["sampling"] = sampling
    elif version != VERSION:
        raise CheckpointError(f"{where}: pipeline format version {version!r}; this avgen reads 1 and 2")
    return from_dict(PipelineConfig, config, where=where)


def caption_words(text: str) -> list[str]:
    """The lower-cased words of ``text`` outside double quotes (quoted speech is what is said, not what is
    shown, and any words can be said)."""
    return re.findall(r"[a-z']+", re.sub(r'"[^"]*"', " ", text.lower()))


def unknown_words(prompt: str, vocabulary: Sequence[str]) -> list[str]:
    """The words of ``prompt`` (``caption_words``) outside ``vocabulary``, when they are the majority;
    else []."""
    words = caption_words(prompt)
    known = set(vocabulary)
    unknown = [w for w in words if w not in known]
    return unknown if words and len(unknown) * 2 > len(words) else []


def shipped_path(name: str) -> Path:
    """Folder of a model shipped inside the package (e.g. ``avgen-tiny``)."""
    return Path(__file__).parent / "weights" / SHIPPED[name]
