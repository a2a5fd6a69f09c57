"""Sampling settings: one frozen dataclass, one name per setting in Python, YAML, JSON and the CLI.

A pipeline stores its defaults (``PipelineConfig.sampling``); ``AVPipeline.__call__`` takes any field as
a keyword (``pipe("...", steps=8, video_guidance=5)``); ``avgen generate`` and ``avgen eval model`` take
the same fields as flags (``--steps 8 --video-guidance 5``); ``avgen.diffusion.generate_tokens`` reads
the dataclass itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from avgen.diffusion.samplers import ORDERS, SAMPLERS
from avgen.errors import ConfigError

# How guidance is computed: "cfg" runs the guidance branches each step; "folded": the DiT was distilled to
# give the guided velocity from the conditional branch alone (``avgen.train.distill``).
GUIDANCE_MODES = ("cfg", "folded")


@dataclass(frozen=True)
class SamplingConfig:
    """How a clip is sampled.

    ``steps``: solver steps (each costs one forward per guidance branch; a 2nd-order sampler two);
    ``sampler``: a name from ``avgen.diffusion.samplers.SAMPLERS``; ``shift``: SD3 time shift of the
    schedule (> 1 spends more steps near noise); ``video_guidance`` / ``audio_guidance``: classifier-free
    guidance scale on video / audio tokens (1 = the conditional prediction alone); ``video_sync`` /
    ``audio_sync``: cross-modal sync guidance, the picture pulled towards the sound / the sound towards the
    picture (0 = off; each one on costs one more forward per step); ``order``: "joint" denoises both
    modalities together, "video_first" / "audio_first" finish one and make the other from it, at twice the
    steps (text-to-audio-video only); ``negative_prompt``: the text of the unconditional branch.
    ``guidance``: "cfg" runs the conditional, unconditional and sync branches every step and combines them;
    "folded" runs the conditional branch alone, one forward per step, for a DiT distilled to give the
    combined velocity itself: the four scales and ``negative_prompt`` are then what it was distilled with
    (fixed), or, for a DiT with ``DiTConfig.guidance_embed``, inputs it reads (``avgen.diffusion.folded``).
    """

    steps: int = 16
    sampler: str = "heun"
    shift: float = 1.0
    video_guidance: float = 4.0
    audio_guidance: float = 3.0
    video_sync: float = 0.0
    audio_sync: float = 0.0
    order: str = "joint"
    negative_prompt: str = ""
    guidance: str = "cfg"

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a whole number >= 1, got {self.steps!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler {self.sampler!r}: choose one of {sorted(SAMPLERS)}")
        if self.order not in ORDERS:
            raise ConfigError(f"order {self.order!r}: choose one of {ORDERS}")
        if self.guidance not in GUIDANCE_MODES:
            raise ConfigError(f"guidance {self.guidance!r}: choose one of {GUIDANCE_MODES}")
        if not isinstance(self.negative_prompt, str):
            raise ConfigError(f"negative_prompt must be a string, got {self.negative_prompt!r}")
        checks = {
            "shift": (lambda v: v > 0, "a finite number > 0"),
            "video_guidance": (lambda v: v >= 0, "a finite number >= 0 (1 = no guidance)"),
            "audio_guidance": (lambda v: v >= 0, "a finite number >= 0 (1 = no guidance)"),
            "video_sync": (lambda v: True, "a finite number (0 = off)"),
            "audio_sync": (lambda v: True, "a finite number (0 = off)"),
        }
        for name, (ok, what) in checks.items():
            value = getattr(self, name)
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not (number and math.isfinite(value) and ok(value)):
                raise ConfigError(f"{name} must be {what}, got {value!r}")

    def replace(self, **overrides: Any) -> SamplingConfig:
        """This config with ``overrides`` applied; a None value keeps the field as it is. An unknown name
        is a ConfigError listing the fields."""
        check_names(overrides)
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


FIELDS = tuple(f.name for f in dataclasses.fields(SamplingConfig))


def check_names(overrides: Mapping[str, Any], where: str = "sampling") -> None:
    """A ConfigError naming the first key of ``overrides`` that is not a ``SamplingConfig`` field."""
    if unknown := sorted(set(overrides) - set(FIELDS)):
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; the settings are {', '.join(FIELDS)}")


_HELP = {
    "steps": "solver steps",
    "sampler": "ODE/SDE solver",
    "shift": "time shift of the schedule (> 1: more steps near noise)",
    "video_guidance": "classifier-free guidance scale on video (1 = none)",
    "audio_guidance": "classifier-free guidance scale on audio (1 = none)",
    "video_sync": "sync guidance: the picture pulled towards the sound (0 = off)",
    "audio_sync": "sync guidance: the sound pulled towards the picture (0 = off)",
    "order": "text-to-AV: both together, or one modality first and the other made from it (twice the steps)",
    "negative_prompt": "text of the unconditional guidance branch",
    "guidance": "cfg: run the guidance branches each step; folded: one forward, a guidance-distilled DiT",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``SamplingConfig`` field (``video_guidance`` -> ``--video-guidance``), default None:
    the pipeline's own setting."""
    group = parser.add_argument_group("sampling (default: the pipeline's)")
    for f in dataclasses.fields(SamplingConfig):
        kind = {"int": int, "float": float}.get(str(f.type), str)
        extra: dict[str, Any] = {"choices": sorted(SAMPLERS)} if f.name == "sampler" else {}
        if f.name == "order":
            extra = {"choices": list(ORDERS)}
        if f.name == "guidance":
            extra = {"choices": list(GUIDANCE_MODES)}
        flag = "--" + f.name.replace("_", "-")
        group.add_argument(flag, dest=f.name, type=kind, default=None, help=_HELP[f.name], **extra)


def from_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The sampling overrides a user gave on the command line (``add_arguments``'s flags that are set)."""
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}
