"""Clips -> the joint model's latents: a clip's ``ClipGeometry`` and its video and audio latents, encoded
in batches on whatever device the codecs sit on.

Frames are padded to the codec's grid the way the pipeline pads a given video, so a training clip's
latents and times are exactly those generation uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avgen.dsp import fit_length
from avgen.errors import ConfigError
from avgen.geometry import ClipGeometry
from avgen.pipeline import from_pixels


def geometry_for(
    video_codec: Any, audio_codec: Any, num_frames: int, fps: Any, height: int, width: int
) -> ClipGeometry:
    """The ``ClipGeometry`` of a clip of this size through these codecs."""
    return ClipGeometry(
        num_frames=num_frames,
        fps=fps,
        height=height,
        width=width,
        sample_rate=audio_codec.sample_rate,
        temporal_downsample=video_codec.temporal_downsample,
        spatial_downsample=video_codec.spatial_downsample,
        hop_length=audio_codec.hop_length,
    )


def bucket_key(geom: ClipGeometry) -> str:
    """The name of a geometry's bucket: ``"frames@fps:HxW"``."""
    return f"{geom.num_frames}@{geom.fps}:{geom.height}x{geom.width}"


@torch.no_grad()
def encode_clip(
    frames: np.ndarray, wav: Tensor, geom: ClipGeometry, video_codec: Any, audio_codec: Any
) -> tuple[Tensor, Tensor]:
    """uint8 ``frames (T, H, W, 3)`` at ``geom.fps`` and mono ``wav (1, N)`` in [-1, 1] at the codec rate ->
    latents ``(Dv, T', H', W')`` and ``(Da, L)`` with T', L as ``geom`` says."""
    (v,), (a,) = encode_clips([frames], [wav], geom, video_codec, audio_codec)
    return v, a


@torch.no_grad()
def encode_clips(
    frames: list[np.ndarray], wavs: list[Tensor], geom: ClipGeometry, video_codec: Any, audio_codec: Any
) -> tuple[list[Tensor], list[Tensor]]:
    """``encode_clip`` for several clips of one geometry in one codec batch (faster on CPU).

    Runs on whatever device the codecs sit on (see ``codecs_on``); the latents come back on the CPU.
    """
    pixels = torch.cat([geom.pad_video(from_pixels(f)) for f in frames])  # (B, 3, T, H, W)
    sound = torch.stack([fit_length(w.float(), geom.num_samples) for w in wavs])  # (B, 1, N)
    v = video_codec.encode(pixels.to(device_of(video_codec))).float().cpu()
    a = audio_codec.encode(sound.to(device_of(audio_codec))).float().cpu()
    if tuple(v.shape[2:]) != geom.video_latent_shape or a.shape[-1] != geom.audio_latent_length:
        raise ConfigError(
            f"codec latents {tuple(v.shape[1:])} / {tuple(a.shape[1:])} disagree with the clip geometry "
            f"{geom.video_latent_shape} / {geom.audio_latent_length}; the codecs do not match their configs"
        )
    return list(v), list(a)


def device_of(module: Any) -> torch.device:
    """The device of ``module``'s first parameter; the CPU for a parameterless module or a non-module."""
    param = next(iter(module.parameters()), None) if isinstance(module, torch.nn.Module) else None
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def codecs_on(device: torch.device, *codecs: Any) -> Iterator[None]:
    """Move the codecs (``nn.Module``) to ``device`` for the block, e.g. to encode a latent cache on the
    GPU, and back to where each was afterwards (also on error)."""
    homes = [device_of(c) for c in codecs]
    try:
        for c in codecs:
            if isinstance(c, torch.nn.Module):
                c.to(device)
        yield
    finally:
        for c, home in zip(codecs, homes, strict=True):
            if isinstance(c, torch.nn.Module):
                c.to(home)
