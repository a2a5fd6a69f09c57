"""Training latents for the joint model: clips -> ClipGeometry -> (video, audio) latents, encoded once.

Two sources: ``synth`` (avgen-synth samples made in-process by seed) and ``folder`` (a folder of videos
with captions, through FolderDataset + the latent cache). Either way each item is normalised video
latents ``(Dv, T', H', W')``, audio latents ``(Da, L)``, a caption and a bucket; every item of one bucket
shares one ``ClipGeometry`` (the same one ``AVPipeline.geometry`` gives), so its latent times are exactly
what generation uses. Frames are padded to the codec's grid the way the pipeline pads a given video.
Each item also has a group, for per-group loss weights (``JointConfig.group_loss_weights``): its synth
family, or for folders the top-level subfolder its file sits in ("" at the root).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avgen.errors import ConfigError
from avgen.geometry import ClipGeometry

SOURCES = ("synth", "folder")


@dataclass(frozen=True)
class JointDataConfig:
    """Where the joint model's clips come from.

    source: "synth" (``n`` samples of avgen-synth ``split``, one ``size`` and ``duration``) or "folder"
        (every fixed window of ``duration`` s under ``root``, resized to ``size``; captions from its
        captions.jsonl). ``val_n`` synth samples of the "val" split (or ``val_root`` for folders) give
        the validation loss. ``cache_dir``: where encoded latents are kept between runs (None: re-encode).
    families: avgen-synth family weights (None: its defaults).
    workers: subprocesses that render synth clips while the main process encodes them (0 or 1: render inline).
    """

    source: str = "synth"
    root: str | None = None
    val_root: str | None = None
    n: int = 512
    val_n: int = 16
    split: str = "train"
    size: tuple[int, int] = (64, 64)
    duration: float = 2.0
    fps: int | str = 24
    families: dict[str, float] | None = None
    cache_dir: str | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "folder" and not self.root:
            raise ConfigError("data.root: a folder of videos is needed when data.source is 'folder'")
        if self.n < 1 or self.val_n < 0:
            raise ConfigError(f"data: need n >= 1 and val_n >= 0, got {self.n}, {self.val_n}")
        if len(self.size) != 2 or min(self.size) < 8 or not self.duration > 0:
            raise ConfigError(f"data: size must be (height, width) >= 8 and duration > 0, got {self.size}")


@dataclass
class LatentSet:
    """Encoded clips: ``video[i] (Dv, T', H', W')``, ``audio[i] (Da, L)`` float32, ``captions[i]``,
    ``groups[i]`` (synth family or top-level subfolder), ``buckets[i]`` (a key of ``geometries``)."""

    video: list[Tensor]
    audio: list[Tensor]
    captions: list[str]
    groups: list[str]
    buckets: list[str]
    geometries: dict[str, ClipGeometry]

    def __len__(self) -> int:
        return len(self.captions)


def geometry_for(
    video_codec: Any, audio_codec: Any, num_frames: int, fps: Any, height: int, width: int
) -> ClipGeometry:
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
    from avgen.dsp import fit_length
    from avgen.pipeline import from_pixels

    pixels = torch.cat([geom.pad_video(from_pixels(f)) for f in frames])  # (B, 3, T, H, W)
    sound = torch.stack([fit_length(w.float(), geom.num_samples) for w in wavs])  # (B, 1, N)
    v = video_codec.encode(pixels.to(_device_of(video_codec))).float().cpu()
    a = audio_codec.encode(sound.to(_device_of(audio_codec))).float().cpu()
    if tuple(v.shape[2:]) != geom.video_latent_shape or a.shape[-1] != geom.audio_latent_length:
        raise ConfigError(
            f"codec latents {tuple(v.shape[1:])} / {tuple(a.shape[1:])} disagree with the clip geometry "
            f"{geom.video_latent_shape} / {geom.audio_latent_length}; the codecs do not match their configs"
        )
    return list(v), list(a)


def _device_of(module: Any) -> torch.device:
    param = next(iter(module.parameters()), None) if isinstance(module, torch.nn.Module) else None
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def codecs_on(device: torch.device, *codecs: Any) -> Iterator[None]:
    """Move the codecs (``nn.Module``) to ``device`` for the block, e.g. to encode a latent cache on the
    GPU, and back to where each was afterwards (also on error)."""
    homes = [_device_of(c) for c in codecs]
    try:
        for c in codecs:
            if isinstance(c, torch.nn.Module):
                c.to(device)
        yield
    finally:
        for c, home in zip(codecs, homes, strict=True):
            if isinstance(c, torch.nn.Module):
                c.to(home)


def _codec_ids(video_codec: Any, audio_codec: Any) -> dict[str, str]:
    return {"video": video_codec.codec_id, "audio": audio_codec.codec_id}


def _what_text(what: dict[str, Any]) -> str:
    return json.dumps(what, sort_keys=True, default=str)


def _cache_file(cache_dir: str | None, what: dict[str, Any]) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256(_what_text(what).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"latents-{digest}.safetensors"


def _save_set(path: Path, s: LatentSet, what: dict[str, Any]) -> None:
    from avgen.atomic import save_safetensors

    tensors = {f"video/{i}": v for i, v in enumerate(s.video)} | {
        f"audio/{i}": a for i, a in enumerate(s.audio)
    }
    meta = {"captions": s.captions, "groups": s.groups, "buckets": s.buckets, "what": what}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(tensors, path, metadata={"avgen": json.dumps(meta, default=str)})


def _load_set(
    path: Path,
    geometries: dict[str, ClipGeometry],
    groups: Callable[[int], list[str]],
    limit: int | None = None,
) -> LatentSet:
    """A set saved by ``_save_set``, or its first ``limit`` items (only those are read); ``groups(n)``
    gives the groups of caches written before they were stored (synth families are a cheap function of the
    seed)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["avgen"])
        n = len(meta["captions"]) if limit is None else min(limit, len(meta["captions"]))
        video = [f.get_tensor(f"video/{i}") for i in range(n)]
        audio = [f.get_tensor(f"audio/{i}") for i in range(n)]
    stored = meta.get("groups")
    return LatentSet(
        video,
        audio,
        meta["captions"][:n],
        stored[:n] if stored else groups(n),
        meta["buckets"][:n],
        geometries,
    )


def _cached_what(path: Path) -> dict[str, Any] | None:
    """The ``what`` a cache file was saved under (its metadata only; None if unreadable or too old)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("avgen", "{}")).get("what")
    except Exception:  # a damaged or foreign file is not a usable cache, never an error
        return None


def _nearest_cache(cache_dir: str | None, what: dict[str, Any]) -> tuple[Path, int] | None:
    """The cache of the same synth clips under another ``n`` that saves the most rendering: the smallest
    one with ``n`` or more samples (cut to the first ``n``), else the largest with fewer (extended)."""
    if cache_dir is None or not Path(cache_dir).is_dir():
        return None
    same = _what_text({**what, "n": None})
    found = []
    for path in sorted(Path(cache_dir).glob("latents-*.safetensors")):
        other = _cached_what(path)
        if (
            isinstance(other, dict)
            and isinstance(other.get("n"), int)
            and _what_text({**other, "n": None}) == same
        ):
            found.append((path, other["n"]))
    if not found:
        return None
    larger = [f for f in found if f[1] >= what["n"]]
    return min(larger, key=lambda f: f[1]) if larger else max(found, key=lambda f: f[1])


def _make_sample(job: tuple[int, str, Any]) -> Any:
    from avgen.data.synth import make_sample

    return make_sample(*job)


def _synth_samples(n: int, split: str, synth: Any, workers: int, start: int = 0) -> Iterator[Any]:
    """Samples ``start..n-1`` of ``split`` in order; ``workers`` > 1 renders them in subprocesses meanwhile."""
    jobs = ((seed, split, synth) for seed in range(start, n))
    if workers <= 1 or n - start < 8:
        yield from map(_make_sample, jobs)
        return
    import multiprocessing as mp

    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_make_sample, jobs, chunksize=4)


def synth_latents(
    cfg: JointDataConfig,
    split: str,
    n: int,
    video_codec: Any,
    audio_codec: Any,
    progress: bool = False,
    workers: int = 0,
) -> LatentSet:
    """``n`` avgen-synth samples of ``split`` (seeds 0..n-1) encoded; cached in ``cfg.cache_dir`` if set.

    ``workers`` > 1 renders the clips in that many subprocesses while this one encodes (same result). A
    cache of the same clips under another ``n`` is reused: cut to its first ``n``, or extended by
    rendering only seeds it lacks (the set is then saved under this ``n`` too).
    """
    from avgen.data.synth import SynthConfig, sample_family

    synth_kwargs: dict[str, Any] = {
        "sizes": (tuple(cfg.size),),
        "fps": cfg.fps,
        "sample_rate": audio_codec.sample_rate,
        "durations": (cfg.duration,),
    }
    if cfg.families is not None:
        synth_kwargs["families"] = dict(cfg.families)
    synth = SynthConfig(**synth_kwargs)
    geom = ClipGeometry.from_duration(
        cfg.duration,
        cfg.fps,
        height=cfg.size[0],
        width=cfg.size[1],
        sample_rate=audio_codec.sample_rate,
        temporal_downsample=video_codec.temporal_downsample,
        spatial_downsample=video_codec.spatial_downsample,
        hop_length=audio_codec.hop_length,
    )
    key = bucket_key(geom)
    what = {
        "source": "synth",
        "synth": repr(synth),
        "split": split,
        "n": n,
        "codecs": _codec_ids(video_codec, audio_codec),
    }
    cached = _cache_file(cfg.cache_dir, what)

    def families(m: int) -> list[str]:
        return [sample_family(i, split, synth) for i in range(m)]

    if cached is not None and cached.is_file():
        return _load_set(cached, {key: geom}, families)
    out = LatentSet([], [], [], [], [], {key: geom})
    nearest = _nearest_cache(cfg.cache_dir, what)
    if nearest is not None:
        out = _load_set(nearest[0], {key: geom}, families, limit=n)
        if len(out) == n:
            return out
    from tqdm import tqdm

    start = len(out)
    bar = tqdm(total=n, initial=start, desc=f"encode synth {split}", disable=not progress, leave=False)
    pending: list[Any] = []
    for i, sample in enumerate(_synth_samples(n, split, synth, workers, start), start=start):
        if sample.clip.num_frames != geom.num_frames:
            raise ConfigError(
                f"synth clip has {sample.clip.num_frames} frames, geometry expects {geom.num_frames}"
            )
        pending.append(sample)
        if len(pending) < 8 and i < n - 1:
            continue
        wavs = [
            torch.from_numpy(np.ascontiguousarray(p.clip.audio)).float().mean(0, keepdim=True)
            for p in pending
        ]
        videos, audios = encode_clips([p.clip.video for p in pending], wavs, geom, video_codec, audio_codec)
        out.video += videos
        out.audio += audios
        out.captions += [p.caption for p in pending]
        out.groups += [p.family for p in pending]
        out.buckets += [key] * len(pending)
        bar.update(len(pending))
        pending = []
    bar.close()
    if cached is not None:
        _save_set(cached, out, what)
    return out


def folder_latents(
    cfg: JointDataConfig, root: str, video_codec: Any, audio_codec: Any, progress: bool = False
) -> LatentSet:
    """Every fixed ``cfg.duration`` window under ``root`` (center-cropped to ``cfg.size``), via the latent
    cache in ``cfg.cache_dir`` (default ``root/.avgen_latents``)."""
    from avgen.data.cache import LatentCache, LatentDataset, precompute_latents
    from avgen.data.folder import FolderConfig, FolderDataset

    fcfg = FolderConfig(
        fps=cfg.fps,
        sample_rate=audio_codec.sample_rate,
        channels=1,
        resolutions=(tuple(cfg.size),),
        durations=(cfg.duration,),
        window="fixed",
        crop="center",
    )
    dataset = FolderDataset(root, fcfg)
    fps = Fraction(fcfg.fps_fraction)
    geometries: dict[str, ClipGeometry] = {}
    bucket_names: dict[tuple[int, int], str] = {}
    for b in set(dataset.bucket_ids()):
        shape = fcfg.bucket_shape(b)
        geom = geometry_for(video_codec, audio_codec, shape["frames"], fps, shape["height"], shape["width"])
        bucket_names[b] = bucket_key(geom)
        geometries[bucket_names[b]] = geom

    (geom,) = geometries.values()  # one size and one duration: one bucket

    def encode_video(x: Tensor) -> Tensor:  # (1, 3, T, H, W) in [-1, 1] -> padded to the codec grid, encoded
        return video_codec.encode(geom.pad_video(x))

    codecs = {"video": (encode_video, f"{video_codec.codec_id}+pipeline-pad"), "audio": audio_codec}
    cache = LatentCache(cfg.cache_dir or Path(root) / ".avgen_latents", codecs)
    precompute_latents(dataset, cache, progress=progress)
    latents = LatentDataset(dataset, cache)
    out = LatentSet([], [], [], [], [], geometries)
    for i in range(len(latents)):
        item = latents[i]
        out.video.append(item["video_latent"].float())
        out.audio.append(item["audio_latent"].float())
        out.captions.append(item["caption"])
        out.groups.append(folder_group(root, item["path"]))
        out.buckets.append(bucket_names[tuple(item["bucket"])])
    return out


def folder_group(root: str | Path, path: str | Path) -> str:
    """The group of a folder clip: the top-level subfolder of ``root`` that ``path`` sits in, "" if none.

    >>> folder_group("data", "data/speech/en/a.mp4"), folder_group("data", "data/a.mp4")
    ('speech', '')
    """
    try:
        parts = Path(path).resolve().relative_to(Path(root).resolve()).parts
    except ValueError:  # not under root (a symlinked file): no group
        return ""
    return parts[0] if len(parts) > 1 else ""


def load_latents(
    cfg: JointDataConfig,
    video_codec: Any,
    audio_codec: Any,
    *,
    validation: bool = False,
    progress: bool = False,
) -> LatentSet | None:
    """The training (or validation) set of ``cfg``; None when no validation data is configured."""
    if cfg.source == "synth":
        if validation and cfg.val_n == 0:
            return None
        split, n = ("val", cfg.val_n) if validation else (cfg.split, cfg.n)
        return synth_latents(cfg, split, n, video_codec, audio_codec, progress, cfg.workers)
    root = cfg.val_root if validation else cfg.root
    if root is None:
        return None
    return folder_latents(cfg, root, video_codec, audio_codec, progress)
