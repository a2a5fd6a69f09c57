"""FolderDataset: training windows from a folder of real videos (.mp4/.mkv/.mov/.webm) with captions.

Captions come from a sidecar ``captions.jsonl`` (lines ``{"file": "sub/a.mp4", "caption": "..."}``, file
relative to the root) or a ``.txt`` beside each video. Every file is decoded once when the dataset is built;
files that cannot be used are skipped by ``SkipPolicy`` and each is reported (``avgen.data.skips``). Each
item is a window of one of ``durations`` at a target fps / sample rate, cropped and resized to one of
``resolutions``; all items of one (resolution, duration) bucket share a shape, see ``avgen.data.buckets``.

Items decode their whole source file again (the media API reads whole files); for training, precompute
latents once with ``avgen.data.cache``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avgen.checks import as_fps, check_sample_rate
from avgen.config import from_dict
from avgen.data.scan import FolderEntry, decode_timed, scan_folder
from avgen.data.skips import SkipPolicy
from avgen.data.window import (
    audio_window,
    crop_resize,
    frames_for,
    mix_channels,
    nearest_frames,
    samples_for,
    start_grid,
)
from avgen.errors import ClipError, ConfigError, MediaError

log = logging.getLogger("avgen.data")

REPORT_NAME = "avgen_skips.jsonl"


@dataclasses.dataclass(frozen=True)
class FolderConfig:
    """How a folder of videos becomes training windows.

    fps: target frame rate (int or exact fraction string such as "30000/1001").
    sample_rate: target audio rate in Hz; channels: 1 (mono mix) or 2.
    resolutions: (height, width) targets; each file goes to the one nearest its aspect ratio. One entry
        means a single fixed size.
    durations: window lengths in seconds; each file goes to the longest one it can fill.
    window: "random" (one window per file, start drawn per epoch) or "fixed" (windows tiled from 0 every
        ``stride`` seconds, default the duration, each one an item).
    crop: "center", or "random" (position drawn like the start).
    extensions: file suffixes scanned (case-insensitive), recursively under the root.
    captions_file: the sidecar JSONL name in the root.
    seed: seeds random starts and crops (with the epoch and item index).
    skip: the SkipPolicy.
    """

    fps: int | str = 24
    sample_rate: int = 24000
    channels: int = 1
    resolutions: tuple[tuple[int, int], ...] = ((64, 64),)
    durations: tuple[float, ...] = (2.0,)
    window: str = "random"
    stride: float | None = None
    crop: str = "center"
    extensions: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".webm")
    captions_file: str = "captions.jsonl"
    seed: int = 0
    skip: SkipPolicy = dataclasses.field(default_factory=SkipPolicy)

    def __post_init__(self) -> None:
        try:
            as_fps(self.fps, name="FolderConfig.fps")
            check_sample_rate(self.sample_rate, name="FolderConfig.sample_rate")
        except ClipError as e:
            raise ConfigError(str(e)) from None
        if self.channels not in (1, 2):
            raise ConfigError(f"FolderConfig.channels must be 1 or 2, got {self.channels}")
        if not self.resolutions or any(
            len(r) != 2 or int(r[0]) < 1 or int(r[1]) < 1 for r in self.resolutions
        ):
            raise ConfigError(
                f"FolderConfig.resolutions must be (height, width) pairs >= 1, got {self.resolutions}"
            )
        if not self.durations or any(float(d) <= 0 or not math.isfinite(d) for d in self.durations):
            raise ConfigError(f"FolderConfig.durations must be positive seconds, got {self.durations}")
        if self.window not in ("random", "fixed"):
            raise ConfigError(f"FolderConfig.window must be 'random' or 'fixed', got {self.window!r}")
        if self.stride is not None and not self.stride > 0:
            raise ConfigError(f"FolderConfig.stride must be > 0 seconds or None, got {self.stride}")
        if self.crop not in ("center", "random"):
            raise ConfigError(f"FolderConfig.crop must be 'center' or 'random', got {self.crop!r}")
        if not self.extensions or any(not e.startswith(".") for e in self.extensions):
            raise ConfigError(f"FolderConfig.extensions must look like '.mp4', got {self.extensions}")

    @property
    def fps_fraction(self) -> Fraction:
        return as_fps(self.fps)

    def bucket_shape(self, bucket: tuple[int, int]) -> dict[str, int]:
        """frames, height, width, samples of the items in bucket (resolution index, duration index)."""
        (h, w), d = self.resolutions[bucket[0]], self.durations[bucket[1]]
        return {
            "frames": frames_for(d, self.fps_fraction),
            "height": int(h),
            "width": int(w),
            "samples": samples_for(d, self.sample_rate),
        }


class FolderDataset(torch.utils.data.Dataset):
    """Windows of the usable videos under ``root``; see the module docstring.

    report_path: where the skip report goes (JSONL, see ``SkipReport.write``); default
        ``root/avgen_skips.jsonl``. If it cannot be written the report is logged instead.
    workers: threads for the initial scan.

    Item ``i`` is a dict:
        video: float32 (3, T, H, W) in [-1, 1], T = floor(duration * fps)
        audio: float32 (C, N) in [-1, 1], N = round(duration * sample_rate); sample 0 plays with frame 0
        caption: str; path: str; start: float seconds into the source; duration: float seconds
        bucket: (resolution index, duration index); ``cfg.bucket_shape(bucket)`` gives its sizes
    """

    def __init__(
        self,
        root: str | Path,
        cfg: FolderConfig | None = None,
        *,
        report_path: str | Path | None = None,
        workers: int = 1,
    ) -> None:
        self.root = Path(root)
        self.cfg = cfg or FolderConfig()
        self.epoch = 0
        self._memo: tuple[str, Any, np.ndarray] | None = None
        self.entries, self.report = scan_folder(self.root, self.cfg, workers=workers)
        self.report_path = Path(report_path) if report_path is not None else self.root / REPORT_NAME
        try:
            self.report.write(self.report_path)
        except OSError as e:
            log.warning(
                "could not write the skip report to %s (%s); skips: %s",
                self.report_path,
                e,
                self.report.to_records(),
            )
        (log.warning if self.report.skips else log.info)(
            "%s (report: %s)", self.report.summary(), self.report_path
        )
        # items: (entry index, fixed start or None for a random start)
        self.items: list[tuple[int, Fraction | None]] = []
        for k, e in enumerate(self.entries):
            if self.cfg.window == "random":
                self.items.append((k, None))
                continue
            d = self.cfg.durations[e.bucket[1]]
            stride = self.cfg.stride or d
            step = self._grid(e)
            n = 0
            while True:
                start = Fraction(n * stride).limit_denominator(10**6)
                start = (start // step) * step
                if float(start) + d > e.duration + 1e-9:
                    break
                self.items.append((k, start))
                n += 1
        if not self.items:
            raise MediaError(self.root, f"no usable videos: {self.report.summary()}")

    def _grid(self, e: FolderEntry) -> Fraction:
        return start_grid(e.sample_rate, self.cfg.sample_rate) if e.sample_rate else Fraction(1, 10**6)

    def set_epoch(self, epoch: int) -> None:
        """Random windows and crops depend on (seed, epoch, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def caption(self, index: int) -> str:
        """Caption of item ``index`` (no decoding)."""
        return self.entries[self.items[index][0]].caption

    def bucket_ids(self) -> list[tuple[int, int]]:
        """The bucket of every item, for ``BucketBatchSampler``."""
        return [self.entries[k].bucket for k, _ in self.items]

    def _generator(self, index: int) -> torch.Generator:
        seed = ((self.cfg.seed * 1_000_003 + self.epoch) * 1_000_033 + index) % (2**63)
        return torch.Generator().manual_seed(seed)

    def item_spec(self, index: int) -> dict[str, Any]:
        """What item ``index`` is made of, without decoding: path, start (None if drawn at random),
        and every setting that changes its tensors. The latent cache keys entries by this."""
        k, start = self.items[index]
        e, cfg = self.entries[k], self.cfg
        (h, w), d = cfg.resolutions[e.bucket[0]], cfg.durations[e.bucket[1]]
        return {
            "path": e.path,
            "start": None if start is None else str(start),
            "duration": float(d),
            "fps": str(cfg.fps_fraction),
            "sample_rate": cfg.sample_rate,
            "channels": cfg.channels,
            "height": int(h),
            "width": int(w),
            "crop": cfg.crop,
        }

    def _decode(self, e: FolderEntry) -> tuple[Any, np.ndarray]:
        """The decoded source and its frame times; the last file is kept, since consecutive fixed
        windows usually come from one file (one memo per DataLoader worker)."""
        if self._memo is None or self._memo[0] != e.path:
            self._memo = None  # free the previous file before decoding the next
            self._memo = (e.path, *decode_timed(e.path, audio=e.sample_rate > 0))
        return self._memo[1], self._memo[2]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_memo": None}  # never ship decoded media to workers

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} out of range for {len(self.items)} items")
        k, start = self.items[index]
        e, cfg = self.entries[k], self.cfg
        (h, w), d = cfg.resolutions[e.bucket[0]], cfg.durations[e.bucket[1]]
        fps = cfg.fps_fraction
        g = self._generator(index) if start is None or cfg.crop == "random" else None
        if start is None:
            step = self._grid(e)
            u = float(torch.rand((), generator=g, dtype=torch.float64))
            start = Fraction(u * max(0.0, e.duration - d)).limit_denominator(10**6) // step * step
        n_frames, n_samples = frames_for(d, fps), samples_for(d, cfg.sample_rate)

        clip, times = self._decode(e)
        order = np.argsort(times, kind="stable")
        targets = float(start) + np.arange(n_frames, dtype=np.float64) / float(fps)
        idx = order[nearest_frames(times[order], targets)]
        rand = None
        if cfg.crop == "random":
            rand = tuple(torch.rand(2, generator=g, dtype=torch.float64).tolist())
        video = crop_resize(clip.video[idx], int(h), int(w), rand=rand)  # (3, T, H, W)
        if e.sample_rate:
            src = torch.from_numpy(clip.audio)  # (C_src, N_src)
            audio = audio_window(src, clip.sample_rate, cfg.sample_rate, start, n_samples, path=e.path)
            audio = mix_channels(audio, cfg.channels)  # (C, N)
        else:  # policy kept a file without audio: silence
            audio = torch.zeros(cfg.channels, n_samples)
        return {
            "video": video,
            "audio": audio,
            "caption": e.caption,
            "path": e.path,
            "start": float(start),
            "duration": float(d),
            "bucket": e.bucket,
        }


def main(argv: Sequence[str]) -> int:
    """``avgen data scan ROOT``: scan a folder, write the skip report, print the summary line."""
    p = argparse.ArgumentParser(prog="avgen data scan", description=main.__doc__)
    p.add_argument("root", help="folder of .mp4/.mkv/.mov/.webm files")
    p.add_argument("--report", default=None, help=f"skip report path (default ROOT/{REPORT_NAME})")
    p.add_argument("--fps", default="24")
    p.add_argument("--sample-rate", type=int, default=24000)
    p.add_argument("--durations", type=float, nargs="+", default=[2.0])
    p.add_argument("--resolutions", nargs="+", default=["64x64"], help="HxW targets, e.g. 64x64 64x112")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(list(argv))
    try:
        res = [tuple(int(v) for v in r.lower().split("x")) for r in args.resolutions]
    except ValueError:
        raise ConfigError(f"--resolutions: expected HxW such as 64x112, got {args.resolutions}") from None
    cfg = from_dict(
        FolderConfig,
        {"fps": args.fps, "sample_rate": args.sample_rate, "durations": args.durations, "resolutions": res},
        where="avgen data scan",
    )
    _, report = scan_folder(args.root, cfg, workers=args.workers)
    path = report.write(args.report or Path(args.root) / REPORT_NAME)
    for s in report.skips:
        print(f"skipped {s.path}: {s.reason} ({s.detail})")
    print(f"{report.summary()}; report: {path}")
    return 1 if report.counts().get("unreadable") else 0  # skips by policy (silent, too short) are no failure
