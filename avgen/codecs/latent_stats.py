"""Per-channel latent statistics of a codec over a user's media, stored beside the codec as ``latent_stats.json``.

The file: ``{"format": "avgen.latent_stats", "latent_channels": D, "mean": [D floats], "std": [D floats],
...}`` plus what it was computed from (codec id, data folder, file and latent counts). Adapters for
pretrained codecs read it when they load (``avgen.codecs.hf_base``); ``avgen codec stats`` writes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from avgen.codecs.base import LatentStats
from avgen.errors import AVGenError, CheckpointError, ClipError
from avgen.weights import write_json

STATS_NAME = "latent_stats.json"
STATS_FORMAT = "avgen.latent_stats"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")


def write_stats_file(path: str | Path, mean: Tensor, std: Tensor, info: dict[str, Any]) -> Path:
    """Write ``mean``/``std`` (each (D,)) and ``info`` as a stats file, atomically."""
    mean, std = mean.detach().double().cpu().flatten(), std.detach().double().cpu().flatten()
    data = {
        **info,
        "format": STATS_FORMAT,
        "latent_channels": int(mean.numel()),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
    }
    write_json(path, data)
    return Path(path)


def read_stats_file(path: str | Path, channels: int) -> tuple[Tensor, Tensor] | None:
    """(mean, std), each (channels,) float32, from a stats file; None if there is no file. A file that is
    not a stats file, or is for another channel count, raises CheckpointError naming it."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{p}: not valid JSON ({e}); recompute it with `avgen codec stats`") from e
    if not isinstance(data, dict) or data.get("format") != STATS_FORMAT:
        raise CheckpointError(f'{p}: not a latent stats file (no "format": "{STATS_FORMAT}")')
    mean, std = data.get("mean"), data.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == channels):
        got = len(mean) if isinstance(mean, list) else "no"
        raise CheckpointError(
            f"{p}: holds stats for {got} latent channels, the codec has {channels}; "
            "recompute it with `avgen codec stats`"
        )
    try:
        m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{p}: mean and std must be lists of numbers ({e})") from e
    if not (torch.isfinite(m).all() and torch.isfinite(s).all() and (s > 0).all()):
        raise CheckpointError(f"{p}: mean and std must be finite, std > 0")
    return m, s


# --- computing them ---------------------------------------------------------------------------------------


def media_files(folder: str | Path, suffixes: Sequence[str]) -> list[Path]:
    """Files under ``folder`` (recursively, sorted) whose suffix is in ``suffixes`` (case-insensitive)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ClipError(f"{folder}: no such folder of media")
    wanted = {s.lower() for s in suffixes}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def is_audio_codec(codec: Any) -> bool:
    """Whether ``codec`` encodes audio (it has a hop length) rather than video."""
    return hasattr(codec, "hop_length") and hasattr(codec, "sample_rate")


def video_input(frames: Any, ts: int, ss: int) -> Tensor:
    """uint8 (T, H, W, 3) frames -> (1, 3, T', H', W') float in [-1, 1] that a codec with temporal factor ``ts``
    and spatial factor ``ss`` takes: the first 1 + ts*k frames, centre-cropped to multiples of ``ss``."""
    x = torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)  # (3, T, H, W)
    t = 1 + (x.shape[1] - 1) // ts * ts
    h, w = x.shape[2] // ss * ss, x.shape[3] // ss * ss
    if h < ss or w < ss:
        raise ClipError(f"frames of {x.shape[2]}x{x.shape[3]} are smaller than the codec's {ss}x{ss} grid")
    top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
    return x[None, :, :t, top : top + h, left : left + w]


def audio_input(audio: Any, channels: int) -> Tensor:
    """float (C, N) samples -> (1, channels, N): downmixed to mono or mono repeated to more channels."""
    x = torch.from_numpy(audio).float()
    if x.shape[0] != channels:
        x = x.mean(0, keepdim=True).expand(channels, -1)  # (channels, N)
    return x[None].clamp(-1.0, 1.0)


@dataclass(frozen=True)
class StatsSettings:
    """What of each file is encoded: the first ``seconds``; video frames no larger than ``max_size`` on their
    longest side (None: as stored)."""

    seconds: float = 10.0
    max_size: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ClipError(f"seconds must be a positive number, got {self.seconds}")
        if self.max_size is not None and self.max_size < 1:
            raise ClipError(f"max_size must be >= 1, got {self.max_size}")


def raw_latents(
    codec: Any,
    files: Iterable[Path],
    settings: StatsSettings,
    skipped: list[str],
) -> Iterator[Tensor]:
    """Unnormalised latents (1, D, ...) of each file, one at a time; files that cannot be read or are too
    short are appended to ``skipped`` as "path: why" and left out."""
    from avgen.io import read_av

    audio = is_audio_codec(codec)
    device = torch.device(settings.device)
    for path in files:
        try:
            if audio:
                clip = read_av(path, streams="a", duration=settings.seconds)
                x = audio_input(clip.audio, codec.channels)
                kwargs: dict[str, Any] = {"sample_rate": clip.sample_rate}
            else:
                clip = read_av(path, streams="v", duration=settings.seconds, max_size=settings.max_size)
                x = video_input(clip.video, codec.temporal_downsample, codec.spatial_downsample)
                kwargs = {}
            with torch.no_grad():
                z = codec.encode(x.to(device), **kwargs)
                yield codec.stats.denormalize(z).float().cpu()
        except AVGenError as e:
            skipped.append(f"{path}: {e}")


def compute_stats(
    codec: Any,
    files: Sequence[Path],
    settings: StatsSettings | None = None,
    progress: Callable[[Sequence[Path]], Iterable[Path]] | None = None,
) -> tuple[LatentStats, dict[str, Any]]:
    """Per-channel mean/std of ``codec``'s raw latents over ``files`` (accumulated in float64), and a summary
    (files used, files skipped with why, latent positions counted). ClipError if no file could be used."""
    settings = settings or StatsSettings()
    skipped: list[str] = []
    counted = {"files": 0, "positions": 0}

    def counting() -> Iterator[Tensor]:
        for z in raw_latents(codec, progress(files) if progress else files, settings, skipped):
            counted["files"] += 1
            counted["positions"] += z[0, 0].numel()
            yield z

    stats = LatentStats(codec.latent_channels)
    try:
        stats.fit(counting())
    except ValueError as e:
        why = "; ".join(skipped[:3]) or "no media files"
        raise ClipError(f"no latents to measure: {why}") from e
    summary = {
        "files": counted["files"],
        "latent_positions": counted["positions"],
        "skipped": skipped,
        "seconds_per_file": settings.seconds,
        "max_size": settings.max_size,
    }
    return stats, summary
