"""Clips in the layouts that diffusers' video pipelines return (``output_type="np" | "pil" | "pt"``), for
``diffusers.utils.encode_video`` / ``export_to_video`` and notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from avgen.clip import AVClip
from avgen.errors import ClipError, ConfigError

OUTPUT_TYPES = ("np", "pil", "pt")


class DiffusersOutput(NamedTuple):
    """A batch of B clips as a diffusers video pipeline returns it (``LTX2PipelineOutput`` has ``frames``
    and ``audio``), plus the rates that ``encode_video`` asks for.

    frames: "np" float32 ``(B, T, H, W, 3)`` in [0, 1]; "pt" float32 tensor ``(B, T, 3, H, W)`` in [0, 1];
    "pil" B lists of T RGB ``PIL.Image``. audio: float32 tensor ``(B, C, N)`` in [-1, 1]. fps: the exact
    frame rate. sample_rate: Hz.
    """

    frames: np.ndarray | Tensor | list[list[Any]]
    audio: Tensor
    fps: Fraction
    sample_rate: int


def _common(clips: Sequence[AVClip], what: str, value: Any) -> Any:
    values = {value(c) for c in clips}
    if len(values) != 1:
        raise ClipError(
            f"to_diffusers: the clips differ in {what} ({sorted(values)}); convert them one by one"
        )
    return values.pop()


def to_diffusers(
    clips: AVClip | Sequence[AVClip], output_type: str = "np", *, stereo: bool = True
) -> DiffusersOutput:
    """Clip(s) returned by ``AVPipeline`` -> ``DiffusersOutput`` (a batch of one for a single clip).

    The clips must share frame count, size, fps, sample count and rate (those of one call do). With
    ``stereo`` mono audio is copied to both channels, since ``encode_video`` writes stereo AAC only. Pixel
    values are ``uint8 / 255`` exactly, so ``encode_video``'s ``round(x * 255)`` and ``export_to_video``'s
    ``uint8(x * 255)`` both give the clip's frames back. ``encode_video(out.frames[i], fps=...)`` takes an
    int fps: for a rate such as 30000/1001, ``clip.save`` keeps it exact.
    """
    if output_type not in OUTPUT_TYPES:
        raise ConfigError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    batch = [clips] if isinstance(clips, AVClip) else list(clips)
    if not batch or not all(
        isinstance(c, AVClip) and c.video is not None and c.audio is not None for c in batch
    ):
        raise ClipError("to_diffusers needs AVClips with video and audio, as AVPipeline returns them")
    _common(batch, "frames x height x width", lambda c: c.video.shape)
    _common(batch, "audio samples", lambda c: c.num_samples)
    fps = _common(batch, "fps", lambda c: c.fps)
    rate = _common(batch, "sample rate", lambda c: c.sample_rate)
    channels = 2 if stereo else _common(batch, "audio channels", lambda c: c.channels)
    audio = np.stack([np.broadcast_to(c.audio, (channels, c.num_samples)) for c in batch])  # (B, C, N)
    if output_type == "pil":
        try:
            from PIL import Image  # an optional dependency: only "pil" needs it
        except ImportError as e:
            raise ConfigError("output_type='pil' needs Pillow (pip install pillow); or use 'np'") from e
        frames: Any = [[Image.fromarray(f) for f in c.video] for c in batch]  # uint8 (H, W, 3) -> RGB
    else:
        video = np.stack([c.video for c in batch]).astype(np.float32) / np.float32(255)  # (B, T, H, W, 3)
        if output_type == "pt":
            video = torch.from_numpy(video).permute(0, 1, 4, 2, 3).contiguous()  # (B, T, 3, H, W)
        frames = video
    return DiffusersOutput(frames, torch.from_numpy(audio.astype(np.float32)), fps, rate)
