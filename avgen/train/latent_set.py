"""``LatentSet``, encoded clips in memory, and its cache files: one safetensors file per set, named by a
hash of what was encoded (source, clips, codecs), so a changed setting never reads a stale set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch import Tensor

from avgen.atomic import save_safetensors
from avgen.geometry import ClipGeometry
from avgen.model.phonemes import TimedPhoneme


@dataclass
class LatentSet:
    """Encoded clips: ``video[i] (Dv, T', H', W')``, ``audio[i] (Da, L)`` float32, ``captions[i]``,
    ``groups[i]`` (synth family or top-level subfolder), ``buckets[i]`` (a key of ``geometries``), and
    ``phonemes[i]``, the timed phonemes each clip says (``avgen.model.phonemes``; [] for a silent one), or
    None for a set that does not know them."""

    video: list[Tensor]
    audio: list[Tensor]
    captions: list[str]
    groups: list[str]
    buckets: list[str]
    geometries: dict[str, ClipGeometry]
    phonemes: list[list[TimedPhoneme]] | None = None

    def __len__(self) -> int:
        return len(self.captions)


def codec_ids(video_codec: Any, audio_codec: Any) -> dict[str, str]:
    """The ``codec_id`` of each codec, for the ``what`` of a set."""
    return {"video": video_codec.codec_id, "audio": audio_codec.codec_id}


def _what_text(what: dict[str, Any]) -> str:
    return json.dumps(what, sort_keys=True, default=str)


def cache_file(cache_dir: str | None, what: dict[str, Any]) -> Path | None:
    """The file of the set described by ``what`` in ``cache_dir`` (None: no cache)."""
    if cache_dir is None:
        return None
    digest = hashlib.sha256(_what_text(what).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"latents-{digest}.safetensors"


def save_set(path: Path, s: LatentSet, what: dict[str, Any]) -> None:
    """Write ``s`` to ``path`` atomically, with its captions, groups, buckets and ``what`` as metadata."""
    tensors = {f"video/{i}": v for i, v in enumerate(s.video)} | {
        f"audio/{i}": a for i, a in enumerate(s.audio)
    }
    meta = {"captions": s.captions, "groups": s.groups, "buckets": s.buckets, "what": what}
    if s.phonemes is not None:
        meta["phonemes"] = s.phonemes
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(tensors, path, metadata={"avgen": json.dumps(meta, default=str)})


def load_set(
    path: Path,
    geometries: dict[str, ClipGeometry],
    groups: Callable[[int], list[str]],
    limit: int | None = None,
) -> LatentSet:
    """A set saved by ``save_set``, or its first ``limit`` items (only those are read); ``groups(n)``
    gives the groups of a file that stores none (synth families are a cheap function of the seed)."""
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
        [[tuple(p) for p in row] for row in meta["phonemes"][:n]] if "phonemes" in meta else None,
    )


def _cached_what(path: Path) -> dict[str, Any] | None:
    """The ``what`` a cache file was saved under (its metadata only; None if unreadable or without one)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("avgen", "{}")).get("what")
    except Exception:  # a damaged or foreign file is not a usable cache, never an error
        return None


def nearest_cache(cache_dir: str | None, what: dict[str, Any]) -> tuple[Path, int] | None:
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
