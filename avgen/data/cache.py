"""Latent cache: encode every training window once, store the latents in safetensors shards.

An entry's key hashes (source file bytes, the window's settings, the codec identity), so a changed file,
window or codec is a miss; never a stale hit. Each codec identity gets its own folder
``root/codec-<id>/`` holding ``shard-00000.safetensors`` with its entry list ``shard-00000.json``, ...,
and ``index.json`` (every key -> shard, source, window, latent shapes); a changed codec therefore starts
from an empty cache and leaves the old one intact (``prune_other_codecs`` removes it). Every file is
written atomically (temp file + ``os.replace``). A shard's entry list is written right after the shard,
and the index on ``flush``; opening a cache adds the entries of shards the index does not list yet, so a
killed run keeps every complete shard and the next run encodes only what is missing.

Several processes fill one cache at once as named writers (``writer="rank1"``; under torchrun each rank
encodes its ``shard_range`` of the items, see ``avgen.train.latents.fill_cache``): each writes only its own
``shard-rank1-00000.*`` files and its own file-hash memo ``files-rank1.json``, never ``index.json``, so no
two ever write one path. The entry lists are the record; ``index.json`` is a summary of them that one
process writes (``write_index``) after all writers are done and ``refresh`` has read every writer's shards.
One job writes a cache folder at a time.

File hashes are memoised in ``root/files.json`` (plus each writer's ``files-<writer>.json``) by
(size, mtime_ns), so unchanged sources are not re-read.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from avgen import atomic
from avgen.errors import AVGenError, ConfigError

INDEX_NAME = "index.json"
FILES_NAME = "files.json"
VERSION = 1


class CacheError(AVGenError, ValueError):
    """The latent cache is missing an entry, is corrupt, or a codec returned unusable latents."""


Encoder = Callable[[Tensor], Tensor]


def as_encoder(codec: Any, codec_id: str | None = None) -> tuple[Encoder, str]:
    """(encode function, identity) from a codec with ``encode`` and ``codec_id``, or a callable + id.

    ``codec`` may also be a ``(callable, id)`` pair. The identity must change whenever the codec's config
    or weights change (avgen codecs fingerprint both).
    """
    if isinstance(codec, tuple) and len(codec) == 2:
        codec, codec_id = codec
    if hasattr(codec, "encode") and callable(codec.encode):
        fn, ident = codec.encode, codec_id if codec_id is not None else getattr(codec, "codec_id", None)
    elif callable(codec):
        fn, ident = codec, codec_id
    else:
        raise ConfigError(f"codec must have .encode or be callable, got {type(codec).__name__}")
    if not isinstance(ident, str) or not ident:
        raise ConfigError(
            f"codec {type(codec).__name__} has no codec_id; give the codec a `codec_id` str property "
            "(a hash of its config and weights) or pass (encode_fn, 'id-string')"
        )
    return fn, ident


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    """The cache's JSON files (index, entry lists, file hashes): indent 1, sorted keys, atomic."""
    atomic.write_json(path, data, indent=1, sort_keys=True)


def _read_json(path: Path, default: dict) -> dict:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CacheError(f"{path}: corrupt cache index ({e}); delete the folder to rebuild it") from None


class LatentCache:
    """Latents of dataset items under ``root``, for the given codecs.

    codecs: name -> codec (``encode`` + ``codec_id``), or ``(callable, id)``; each is applied to the item
        field of the same name with a batch axis added: ``video`` (1, 3, T, H, W) -> (1, D, t, h, w),
        ``audio`` (1, C, N) -> (1, D, L). Latents are stored without the batch axis.
    shard_size: entries per shard file at most; shard_bytes: a shard is also written once its queued
        latents reach this many bytes (a killed run loses at most one shard of work).
    writer: None for the only process writing the cache; else a name (letters, digits, ``_``) unique among
        the processes that fill it at the same time, e.g. ``rank1`` (see the module docstring).
    """

    def __init__(
        self,
        root: str | Path,
        codecs: Mapping[str, Any],
        *,
        shard_size: int = 64,
        shard_bytes: int = 256 << 20,
        writer: str | None = None,
    ) -> None:
        if not codecs:
            raise ConfigError("LatentCache needs at least one codec, e.g. {'audio': codec}")
        if shard_size < 1 or shard_bytes < 1:
            raise ConfigError(f"shard_size and shard_bytes must be >= 1, got {shard_size}, {shard_bytes}")
        if writer is not None and not re.fullmatch(r"[A-Za-z0-9_]+", writer):
            raise ConfigError(f"writer must be letters, digits or '_', e.g. 'rank1', got {writer!r}")
        self.writer = writer
        self.shard_bytes = shard_bytes
        self.root = Path(root)
        self.encoders = {name: as_encoder(c) for name, c in sorted(codecs.items())}
        ids = {name: ident for name, (_, ident) in self.encoders.items()}
        self.codec_id = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()[:16]
        self.dir = self.root / f"codec-{self.codec_id}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        empty = {"version": VERSION, "codecs": ids, "shards": [], "entries": {}}
        self.index = _read_json(self.dir / INDEX_NAME, empty)
        if self.index.get("version") != VERSION or self.index.get("codecs") != ids:
            raise CacheError(
                f"{self.dir / INDEX_NAME}: version {self.index.get('version')} for codecs "
                f"{self.index.get('codecs')}, expected version {VERSION} for {ids}; delete {self.dir}"
            )
        self._index_dirty = self._recover_shards()
        self.files: dict[str, Any] = {}
        self._read_file_hashes()
        self._files_dirty = False
        self._pending: dict[str, tuple[dict[str, Tensor], dict[str, Any]]] = {}
        self._pending_bytes = 0

    def _files_path(self) -> Path:
        return self.root / (FILES_NAME if self.writer is None else f"files-{self.writer}.json")

    def _read_file_hashes(self) -> None:
        """Merge the memo of every writer (``files.json`` first) into ``self.files``."""
        for path in [self.root / FILES_NAME, *sorted(self.root.glob("files-*.json"))]:
            self.files.update(_read_json(path, {}))

    # --- keys -------------------------------------------------------------------------------------------

    def file_hash(self, path: str | Path) -> str:
        """sha256 of the file's bytes, memoised by (size, mtime_ns)."""
        p = Path(path).resolve()
        st = p.stat()
        rec = self.files.get(str(p))
        if rec and rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
            return rec["sha256"]
        digest = sha256_file(p)
        self.files[str(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        self._files_dirty = True
        return digest

    def key(self, spec: Mapping[str, Any]) -> str:
        """Entry key of an item spec (``FolderDataset.item_spec``): its file's bytes, its window settings
        (everything but ``path``) and the codec identity."""
        if spec.get("start", 0) is None:
            raise ConfigError(
                "cannot cache a window drawn at random; build the dataset with window='fixed' (and "
                "crop='center') to precompute latents"
            )
        if spec.get("crop") == "random":
            raise ConfigError("cannot cache randomly cropped items; use crop='center' to precompute latents")
        window = {k: v for k, v in spec.items() if k != "path"}
        blob = json.dumps(
            {"file": self.file_hash(spec["path"]), "window": window, "codec": self.codec_id}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    # --- reading and writing -----------------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        return key in self.index["entries"] or key in self._pending

    def get(self, key: str) -> dict[str, Tensor] | None:
        """The latents stored under ``key`` (name -> tensor), or None on a miss."""
        if key in self._pending:
            return dict(self._pending[key][0])
        rec = self.index["entries"].get(key)
        if rec is None:
            return None
        from safetensors import SafetensorError, safe_open

        shard = self.dir / rec["shard"]
        try:
            with safe_open(str(shard), framework="pt") as f:
                return {name: f.get_tensor(f"{key}/{name}") for name in rec["shapes"]}
        except (SafetensorError, OSError) as e:
            raise CacheError(
                f"{shard}: cannot read cache entry {key[:12]} ({e}); delete {self.dir}"
            ) from None

    def put(self, key: str, latents: Mapping[str, Tensor], meta: Mapping[str, Any]) -> None:
        """Queue an entry; a shard is written every ``shard_size`` entries, the index on ``flush``."""
        stored = {n: t.detach().cpu().contiguous() for n, t in latents.items()}
        self._pending[key] = (stored, dict(meta))
        self._pending_bytes += sum(t.numel() * t.element_size() for t in stored.values())
        if len(self._pending) >= self.shard_size or self._pending_bytes >= self.shard_bytes:
            self._write_shard()

    def _next_shard(self) -> str:
        """This writer's next shard name: one past the highest it has used (complete or not)."""
        prefix = "shard-" if self.writer is None else f"shard-{self.writer}-"
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.safetensors")
        used = [int(m.group(1)) for p in self.dir.iterdir() if (m := pattern.fullmatch(p.name))]
        return f"{prefix}{max(used, default=-1) + 1:05d}.safetensors"

    def _recover_shards(self) -> bool:
        """Add the entries of complete shards that the index does not list (a run killed before flush)."""
        known, added = set(self.index["shards"]), False
        for listing in sorted(self.dir.glob("shard-*.json")):
            shard = listing.with_suffix(".safetensors").name
            if shard in known or not (self.dir / shard).is_file():
                continue
            self.index["entries"].update(_read_json(listing, {}))
            self.index["shards"].append(shard)
            added = True
        return added

    def _write_shard(self) -> None:
        """Queued entries -> one new shard and its entry list."""
        name = self._next_shard()
        tensors = {f"{k}/{n}": t for k, (lat, _) in self._pending.items() for n, t in lat.items()}
        atomic.save_safetensors(
            tensors, self.dir / name, metadata={"codecs": json.dumps(self.index["codecs"])}
        )
        entries = {
            k: {"shard": name, **info, "shapes": {n: list(t.shape) for n, t in lat.items()}}
            for k, (lat, info) in self._pending.items()
        }
        _write_json((self.dir / name).with_suffix(".json"), entries)
        self.index["entries"].update(entries)
        self.index["shards"].append(name)
        self._pending.clear()
        self._pending_bytes = 0
        self._index_dirty = True

    def flush(self) -> None:
        """Write queued entries as a shard, then the index (not as a named writer: ``write_index``) and
        this writer's file hashes (all atomically)."""
        if self._pending:
            self._write_shard()
        if self._index_dirty and self.writer is None:
            self.write_index()
        if self._files_dirty:
            _write_json(self._files_path(), self.files)
            self._files_dirty = False

    def refresh(self) -> None:
        """Read what other writers have added since this cache was opened: their complete shards and
        their file hashes."""
        self._index_dirty |= self._recover_shards()
        self._read_file_hashes()

    def write_index(self) -> None:
        """Write ``index.json`` as this process knows it; with several writers, once, after ``refresh``."""
        _write_json(self.dir / INDEX_NAME, self.index)
        self._index_dirty = False

    def encode(
        self, item: Mapping[str, Tensor], device: str | torch.device | None = None
    ) -> dict[str, Tensor]:
        """Apply each codec to the item field of its name; checks the latents are finite tensors."""
        out = {}
        for name, (fn, ident) in self.encoders.items():
            if name not in item:
                raise CacheError(f"codec {name!r} ({ident}) has no input: the item has {sorted(item)}")
            x = item[name][None]  # (1, ...)
            owner, dev = getattr(fn, "__self__", None), device
            if dev is None and isinstance(owner, torch.nn.Module):  # run where the codec's weights are
                dev = next((p.device for p in owner.parameters()), None)
            if dev is not None:
                x = x.to(dev)
            with torch.inference_mode():
                z = fn(x)
            if not isinstance(z, Tensor):
                raise CacheError(f"codec {name!r} ({ident}).encode returned {type(z).__name__}, not a Tensor")
            if z.shape[0] != 1 or not torch.isfinite(z).all():
                raise CacheError(
                    f"codec {name!r} ({ident}) returned shape {tuple(z.shape)} or non-finite values"
                )
            out[name] = z[0]
        return out

    def other_codecs(self) -> list[Path]:
        """Cache folders under ``root`` made for other codec identities (stale for this codec)."""
        return sorted(p for p in self.root.glob("codec-*") if p.is_dir() and p != self.dir)

    def prune_other_codecs(self) -> list[Path]:
        """Delete the folders of other codec identities; returns what was removed."""
        gone = self.other_codecs()
        for p in gone:
            shutil.rmtree(p)
        return gone


def shard_range(n: int, rank: int, world_size: int) -> range:
    """The items ``rank`` of ``world_size`` encodes: a contiguous block, so the fixed windows of one source
    file (consecutive items) are decoded by one process, or two at a block's edge. The blocks of all ranks
    are disjoint, cover ``range(n)`` and differ in length by at most one."""
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, {world_size}), got {rank}")
    return range(rank * n // world_size, (rank + 1) * n // world_size)


def precompute_latents(
    dataset: Any,
    cache: LatentCache,
    *,
    indices: Iterable[int] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict[str, int]:
    """Encode every item of ``dataset`` not yet in ``cache``; returns {"hits", "misses", "total"}.

    dataset: anything with ``__len__``, ``__getitem__`` and ``item_spec(i)`` (a FolderDataset built
    with window="fixed"). Items already cached are not decoded at all.
    """
    idx = list(range(len(dataset))) if indices is None else list(indices)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(idx), desc="latents", unit="item")
    hits = misses = 0
    try:
        for i in idx:
            spec = dataset.item_spec(i)
            key = cache.key(spec)
            if key in cache:
                hits += 1
            else:
                item = dataset[i]
                cache.put(key, cache.encode(item, device), {"source": spec["path"], "spec": spec})
                misses += 1
            if bar is not None:
                bar.update(1)
    finally:
        cache.flush()
        if bar is not None:
            bar.close()
    return {"hits": hits, "misses": misses, "total": len(idx)}


class LatentDataset(torch.utils.data.Dataset):
    """Cached latents in place of decoded media, item for item with ``dataset``.

    Item i: ``{name}_latent`` for each codec (float tensors as the codec returned them, no batch axis),
    plus caption, path, start, bucket from the spec. A missing entry raises CacheError (run
    ``precompute_latents`` first). ``bucket_ids`` passes through for ``BucketBatchSampler``.
    """

    def __init__(self, dataset: Any, cache: LatentCache) -> None:
        self.dataset, self.cache = dataset, cache
        self.keys = [cache.key(dataset.item_spec(i)) for i in range(len(dataset))]
        self.buckets = dataset.bucket_ids()
        cache.flush()  # persist file hashes computed for the keys
        missing = [i for i, k in enumerate(self.keys) if k not in cache]
        if missing:
            raise CacheError(
                f"{cache.dir}: {len(missing)} of {len(self.keys)} items are not cached (first: "
                f"{dataset.item_spec(missing[0])['path']}); run precompute_latents(dataset, cache) first"
            )

    def __len__(self) -> int:
        return len(self.keys)

    def bucket_ids(self) -> list:
        return list(self.buckets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        key = self.keys[index]
        latents = self.cache.get(key)
        if latents is None:
            raise CacheError(f"{self.cache.dir}: entry {key[:12]} vanished; run precompute_latents again")
        spec = self.cache.index["entries"][key]["spec"]
        # captions are read live from the dataset: editing one must not need re-encoding
        caption = self.dataset.caption(index) if hasattr(self.dataset, "caption") else ""
        out: dict[str, Any] = {f"{n}_latent": t for n, t in latents.items()}
        out |= {
            "caption": caption,
            "path": spec["path"],
            "start": float(Fraction(spec["start"])),
            "bucket": self.buckets[index],
        }
        return out
