"""Training latents for the joint model: clips -> ClipGeometry -> (video, audio) latents, encoded once.

Two sources: ``synth`` (avgen-synth samples made in-process by seed) and ``folder`` (a folder of videos
with captions, through FolderDataset + the latent cache). Either way each item is normalised video
latents ``(Dv, T', H', W')``, audio latents ``(Da, L)``, a caption and a bucket; every item of one bucket
shares one ``ClipGeometry`` (the same one ``AVPipeline.geometry`` gives), so its latent times are exactly
what generation uses (``avgen.train.encode``). Each item also has a group, for per-group loss weights (``JointConfig.group_loss_weights``): its synth
family, or for folders the top-level subfolder its file sits in ("" at the root).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from avgen.data.cache import CacheError, LatentCache, LatentDataset, precompute_latents, shard_range
from avgen.data.folder import FolderConfig, FolderDataset
from avgen.data.speech_timing import timeline_from_events
from avgen.data.synth import SynthConfig, make_sample, sample_family
from avgen.data.synth.spec import PHRASE_POOLS
from avgen.errors import ConfigError
from avgen.geometry import ClipGeometry
from avgen.model.phonemes import TimedPhoneme
from avgen.train.distributed import DistContext, all_succeeded, current_context, waiting_group
from avgen.train.encode import bucket_key, codecs_on, device_of, encode_clips, geometry_for
from avgen.train.latent_set import LatentSet, cache_file, codec_ids, load_set, nearest_cache, save_set

SOURCES = ("synth", "folder")


@dataclass(frozen=True)
class JointDataConfig:
    """Where the joint model's clips come from.

    source: "synth" (``n`` samples of avgen-synth ``split``, one ``size`` and ``duration``) or "folder"
        (every fixed window of ``duration`` s under ``root``, resized to ``size``; captions from its
        captions.jsonl). ``val_n`` synth samples of the "val" split (or ``val_root`` for folders) give
        the validation loss. ``cache_dir``: where encoded latents are kept between runs (None: re-encode).
    families: avgen-synth family weights (None: its defaults).
    phrase_pool: what talk clips say ("fixed": 44 train phrases; "composed": thousands of sentences, with
        held-out words in the test split; see ``avgen.data.synth.phrases``).
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
    phrase_pool: str = "fixed"
    cache_dir: str | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "folder" and not self.root:
            raise ConfigError("data.root: a folder of videos is needed when data.source is 'folder'")
        if self.n < 1 or self.val_n < 0:
            raise ConfigError(f"data: need n >= 1 and val_n >= 0, got {self.n}, {self.val_n}")
        if self.phrase_pool not in PHRASE_POOLS:
            raise ConfigError(f"data.phrase_pool must be one of {PHRASE_POOLS}, got {self.phrase_pool!r}")
        if len(self.size) != 2 or min(self.size) < 8 or not self.duration > 0:
            raise ConfigError(f"data: size must be (height, width) >= 8 and duration > 0, got {self.size}")


def _make_sample(job: tuple[int, str, Any]) -> Any:
    return make_sample(*job)


def _synth_samples(n: int, split: str, synth: Any, workers: int, start: int = 0) -> Iterator[Any]:
    """Samples ``start..n-1`` of ``split`` in order; ``workers`` > 1 renders them in subprocesses meanwhile."""
    jobs = ((seed, split, synth) for seed in range(start, n))
    if workers <= 1 or n - start < 8:
        yield from map(_make_sample, jobs)
        return
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
    phonemes: bool = False,
) -> LatentSet:
    """``n`` avgen-synth samples of ``split`` (seeds 0..n-1) encoded; cached in ``cfg.cache_dir`` if set.

    ``workers`` > 1 renders the clips in that many subprocesses while this one encodes (same result). A
    cache of the same clips under another ``n`` is reused: cut to its first ``n``, or extended by
    rendering only seeds it lacks (the set is then saved under this ``n`` too). Clips encoded here carry
    their phoneme timelines; ``phonemes=True`` also gives them to a cached set that lacks them (rendering
    its talk clips again, without encoding).
    """
    synth_kwargs: dict[str, Any] = {
        "sizes": (tuple(cfg.size),),
        "fps": cfg.fps,
        "sample_rate": audio_codec.sample_rate,
        "durations": (cfg.duration,),
        "phrase_pool": cfg.phrase_pool,
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
        "codecs": codec_ids(video_codec, audio_codec),
    }
    if synth.phrase_pool != "fixed":  # (not in repr(synth); the fixed pool keeps the keys it always had)
        what["phrase_pool"] = synth.phrase_pool
    cached = cache_file(cfg.cache_dir, what)

    def families(m: int) -> list[str]:
        return [sample_family(i, split, synth) for i in range(m)]

    def timelines(out: LatentSet) -> LatentSet:
        if phonemes and out.phonemes is None:
            out.phonemes = synth_timelines(len(out), split, synth, progress)
        return out

    if cached is not None and cached.is_file():
        return timelines(load_set(cached, {key: geom}, families))
    out = LatentSet([], [], [], [], [], {key: geom}, [])
    nearest = nearest_cache(cfg.cache_dir, what)
    if nearest is not None:
        out = timelines(load_set(nearest[0], {key: geom}, families, limit=n))
        if len(out) == n:
            return out
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
        if out.phonemes is not None:
            out.phonemes += [timeline_from_events(p.events, p.objects.get("speech_end")) for p in pending]
        out.groups += [p.family for p in pending]
        out.buckets += [key] * len(pending)
        bar.update(len(pending))
        pending = []
    bar.close()
    if cached is not None:
        save_set(cached, out, what)
    return out


def synth_timelines(
    n: int, split: str, synth: SynthConfig, progress: bool = False
) -> list[list[TimedPhoneme]]:
    """The phoneme timelines of avgen-synth samples 0..n-1 of ``split`` ([] for families that say nothing;
    talk clips are rendered again to read their events)."""
    out: list[list[TimedPhoneme]] = []
    for i in tqdm(range(n), desc=f"phoneme timelines {split}", disable=not progress, leave=False):
        if sample_family(i, split, synth) != "talk":
            out.append([])
            continue
        sample = make_sample(i, split, synth)
        out.append(timeline_from_events(sample.events, sample.objects.get("speech_end")))
    return out


# How long a rank that has encoded its share of a folder's latent cache waits for the others.
SHARD_WAIT_S = 24 * 3600.0


def folder_latents(
    cfg: JointDataConfig,
    root: str,
    video_codec: Any,
    audio_codec: Any,
    progress: bool = False,
    *,
    device: torch.device | None = None,
    shard_size: int = 64,
) -> LatentSet:
    """Every fixed ``cfg.duration`` window under ``root`` (center-cropped to ``cfg.size``), via the latent
    cache in ``cfg.cache_dir`` (default ``root/.avgen_latents``), ``shard_size`` entries per shard at most.

    Under torchrun (a process group is open) each rank encodes only its ``shard_range`` of the windows,
    those the cache lacks, into shards of its own; once every rank is done each reads them all
    (``fill_cache``). The cache folder must then be one every rank sees (shared storage across nodes).
    ``device``: where the codecs encode (default: this rank's GPU under an nccl group, else wherever the
    codecs are).
    """
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
    ctx = current_context()
    if device is None:
        device = ctx.device if ctx.distributed else device_of(video_codec)

    def encode_video(x: Tensor) -> Tensor:  # (1, 3, T, H, W) in [-1, 1] -> padded to the codec grid, encoded
        return video_codec.encode(geom.pad_video(x).to(device))

    def encode_audio(x: Tensor) -> Tensor:  # (1, 1, N) in [-1, 1] at the codec's rate
        return audio_codec.encode(x.to(device))

    codecs = {
        "video": (encode_video, f"{video_codec.codec_id}+pipeline-pad"),
        "audio": (encode_audio, audio_codec.codec_id),
    }
    with codecs_on(device, video_codec, audio_codec):
        cache = fill_cache(
            dataset, cfg.cache_dir or Path(root) / ".avgen_latents", codecs, ctx, progress, shard_size
        )
    try:
        latents = LatentDataset(dataset, cache)
    except CacheError as e:
        if not ctx.distributed:
            raise
        raise CacheError(
            f"{e}; with several processes every rank must see the same cache folder "
            f"({cache.root}): put joint.data.cache_dir on storage all nodes share"
        ) from None
    out = LatentSet([], [], [], [], [], geometries)
    for i in range(len(latents)):
        item = latents[i]
        out.video.append(item["video_latent"].float())
        out.audio.append(item["audio_latent"].float())
        out.captions.append(item["caption"])
        out.groups.append(folder_group(root, item["path"]))
        out.buckets.append(bucket_names[tuple(item["bucket"])])
    return out


def fill_cache(
    dataset: FolderDataset,
    folder: str | Path,
    codecs: dict[str, Any],
    ctx: DistContext,
    progress: bool = False,
    shard_size: int = 64,
) -> LatentCache:
    """Encode what the latent cache in ``folder`` lacks of ``dataset``; returns the cache, holding every item.

    On one process: ``precompute_latents`` over all items. With a process group, rank r encodes only
    ``shard_range(len(dataset), r, world)`` as cache writer ``rank<r>``, so no two ranks write one file;
    then all ranks wait for each other (up to ``SHARD_WAIT_S``; a rank that fails stops the others with a
    ``CacheError``), each reads every rank's shards, and rank 0 writes the merged index. A rank killed
    part way keeps its complete shards: the next run finds them and encodes only the rest.
    """
    if not ctx.distributed:
        cache = LatentCache(folder, codecs, shard_size=shard_size)
        precompute_latents(dataset, cache, progress=progress)
        return cache
    group = waiting_group(ctx, SHARD_WAIT_S)  # made now, while the ranks are together
    failed: BaseException | None = None
    try:
        cache = LatentCache(folder, codecs, shard_size=shard_size, writer=f"rank{ctx.rank}")
        mine = shard_range(len(dataset), ctx.rank, ctx.world_size)
        precompute_latents(dataset, cache, indices=mine, progress=progress)
    except BaseException as e:  # (every rank must reach the wait below, or the others hang)
        failed = e
    ok = all_succeeded(failed is None, ctx, group)
    if failed is not None:
        raise failed
    if not ok:
        raise CacheError(
            f"{folder}: another rank failed while encoding its share of the latent cache (its log says "
            "why); the shards written so far are kept"
        )
    cache.refresh()
    if ctx.is_main:
        cache.write_index()
    return cache


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
    phonemes: bool = False,
) -> LatentSet | None:
    """The training (or validation) set of ``cfg``; None when no validation data is configured.
    ``phonemes``: the set must carry phoneme timelines (synth; folder clips have none: [] each)."""
    if cfg.source == "synth":
        if validation and cfg.val_n == 0:
            return None
        split, n = ("val", cfg.val_n) if validation else (cfg.split, cfg.n)
        return synth_latents(cfg, split, n, video_codec, audio_codec, progress, cfg.workers, phonemes)
    root = cfg.val_root if validation else cfg.root
    if root is None:
        return None
    out = folder_latents(cfg, root, video_codec, audio_codec, progress)
    if phonemes and out.phonemes is None:  # folder clips carry no timelines: none says anything timed
        out.phonemes = [[] for _ in range(len(out))]
    return out
