"""Clips for codec training and evaluation: every video or audio track under a folder, held in memory.

Video is kept as uint8 ``(3, T, H, W)`` (a quarter of float32's memory) and turned into float in [-1, 1] per
crop; audio is float32 ``(C, N)`` in [-1, 1] at the codec's rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor

from avgen.data.window import mix_channels
from avgen.dsp import resample
from avgen.errors import MediaError
from avgen.io import read_av

MEDIA_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".wav", ".flac", ".ogg")


def media_files(folder: str | Path) -> list[Path]:
    """Every file under ``folder`` (recursively) whose suffix is one of ``MEDIA_SUFFIXES``, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise MediaError(root, "data folder not found (make one with `avgen data synth --out DIR --n N`)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
    if not files:
        raise MediaError(root, f"no media files ({', '.join(MEDIA_SUFFIXES)}) under this folder")
    return files


def load_video_clips(folder: str | Path, limit: int | None = None) -> list[Tensor]:
    """Every video under ``folder`` as uint8 (3, T, H, W) tensors (kept uint8 to save memory)."""
    out = []
    for p in media_files(folder)[:limit]:
        if p.suffix.lower() in (".wav", ".flac", ".ogg"):
            continue
        clip = read_av(p, streams="v")
        out.append(rearrange(torch.from_numpy(clip.video), "t h w c -> c t h w").contiguous())
    if not out:
        raise MediaError(folder, "no video streams found")
    return out


def clip_family(path: Path) -> str | None:
    """The avgen-synth family of a clip (from the events JSON beside it), or None for other media."""
    sidecar = path.with_suffix(".json")
    try:
        family = json.loads(sidecar.read_text()).get("family") if sidecar.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return family if isinstance(family, str) else None


def load_audio_clips(
    folder: str | Path, sample_rate: int, channels: int, limit: int | None = None
) -> tuple[list[Tensor], list[str | None]]:
    """Every audio track under ``folder`` as float32 (C, N) at ``sample_rate`` in [-1, 1], and each clip's
    avgen-synth family (None where there is no events JSON), for per-family evaluation."""
    out, families = [], []
    for p in media_files(folder)[:limit]:
        clip = read_av(p, streams="any")
        if clip.audio is None:
            continue
        a = mix_channels(torch.from_numpy(clip.audio).float(), channels)
        out.append(resample(a, int(clip.sample_rate), sample_rate).clamp(-1, 1))
        families.append(clip_family(p))
    if not out:
        raise MediaError(folder, "no audio streams found")
    return out, families


def to_signed(video: Tensor) -> Tensor:
    """uint8 -> float32 in [-1, 1]."""
    return video.float() / 127.5 - 1.0


def whole_clip(video: Tensor, ts: int, ss: int) -> Tensor:
    """uint8 (3, T, H, W) -> float (1, 3, T', H', W') in [-1, 1]: the largest 1 + ts*k frames, H, W cut to ss."""
    _, t, h, w = video.shape
    return to_signed(video[None, :, : 1 + (t - 1) // ts * ts, : h // ss * ss, : w // ss * ss])
