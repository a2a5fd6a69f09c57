"""Latent cache: a second pass hits without decoding or encoding; a changed codec id, source file or window
is a miss; an interrupted run keeps what it wrote; bad codecs and random windows are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import reduce

from avgen.data.cache import CacheError, LatentCache, LatentDataset, as_encoder, precompute_latents
from avgen.data.folder import FolderConfig, FolderDataset
from avgen.errors import ConfigError


class PoolCodec:
    """A tiny deterministic codec: video (B, 3, T, H, W) -> (B, 3, T, H/8, W/8); audio (B, C, N) ->
    (B, C, N/160). ``codec_id`` stands for its config + weights hash."""

    def __init__(self, kind: str, codec_id: str = "pool-v1", scale: float = 1.0) -> None:
        self.kind, self.codec_id, self.scale, self.calls = kind, codec_id, scale, 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.kind == "video":
            return self.scale * F.avg_pool3d(x, (1, 8, 8))
        return self.scale * reduce(x, "b c (l k) -> b c l", "mean", k=160)


def _media(root, names=("a", "b"), seed=0):
    from avgen.io import AVClip, write_av

    rng = np.random.default_rng(seed)
    for name in names:
        clip = AVClip(
            video=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
            fps=10,
            audio=(0.3 * rng.standard_normal((1, 16000))).clip(-1, 1).astype(np.float32),
            sample_rate=16000,
        )
        write_av(root / f"{name}.mp4", clip, overwrite=True)


CFG = FolderConfig(fps=10, sample_rate=16000, resolutions=((32, 32),), durations=(0.5,), window="fixed")


@pytest.fixture
def data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _media(src)
    return FolderDataset(src, CFG, report_path=tmp_path / "skips.jsonl")


def _codecs(vid="pool-v1", aid="enc-v1"):
    return {"video": PoolCodec("video", vid), "audio": PoolCodec("audio", aid)}


def test_second_pass_hits_and_latents_match_direct_encoding(data, tmp_path, monkeypatch):
    codecs = _codecs()
    cache = LatentCache(tmp_path / "cache", codecs, shard_size=3)
    assert precompute_latents(data, cache) == {"hits": 0, "misses": 4, "total": 4}
    assert codecs["video"].calls == codecs["audio"].calls == 4
    index = json.loads((cache.dir / "index.json").read_text())
    assert len(index["entries"]) == 4
    assert sorted(p.name for p in cache.dir.glob("shard-*")) == [
        "shard-00000.json",
        "shard-00000.safetensors",
        "shard-00001.json",
        "shard-00001.safetensors",
    ]
    assert not list(cache.root.rglob("*.part"))  # no temp file of avgen.atomic left behind

    codecs2 = _codecs()  # a fresh process: new cache object, same codec identity
    cache2 = LatentCache(tmp_path / "cache", codecs2)
    with monkeypatch.context() as m:
        m.setattr(FolderDataset, "__getitem__", _forbid_decode)
        assert precompute_latents(data, cache2) == {"hits": 4, "misses": 0, "total": 4}
    assert codecs2["video"].calls == 0

    lat = LatentDataset(data, cache2)
    item, raw = lat[3], data[3]
    assert torch.equal(item["video_latent"], F.avg_pool3d(raw["video"][None], (1, 8, 8))[0])
    assert item["video_latent"].shape == (3, 5, 4, 4) and item["audio_latent"].shape == (1, 50)
    assert item["start"] == raw["start"] == 0.5 and item["caption"] == raw["caption"]
    assert lat.bucket_ids() == data.bucket_ids()


def _forbid_decode(self, index):
    raise AssertionError("a cache hit must not decode the source")


def test_changed_codec_id_invalidates(data, tmp_path):
    precompute_latents(data, LatentCache(tmp_path / "cache", _codecs()))
    changed = _codecs(aid="enc-v2")  # e.g. fine-tuned audio codec weights
    cache = LatentCache(tmp_path / "cache", changed)
    assert precompute_latents(data, cache)["misses"] == 4 and changed["audio"].calls == 4
    assert len(cache.other_codecs()) == 1
    # switching back finds the old entries untouched; pruning removes them
    assert precompute_latents(data, LatentCache(tmp_path / "cache", _codecs()))["hits"] == 4
    assert len(cache.prune_other_codecs()) == 1 and cache.other_codecs() == []
    assert precompute_latents(data, LatentCache(tmp_path / "cache", _codecs()))["misses"] == 4


def test_changed_source_or_window_misses(data, tmp_path):
    precompute_latents(data, LatentCache(tmp_path / "cache", _codecs()))
    _media(data.root, names=("b",), seed=5)  # new bytes for b.mp4
    data2 = FolderDataset(data.root, CFG, report_path=tmp_path / "skips.jsonl")
    assert precompute_latents(data2, LatentCache(tmp_path / "cache", _codecs())) == {
        "hits": 2,
        "misses": 2,
        "total": 4,
    }
    other = FolderConfig(fps=20, sample_rate=16000, resolutions=((32, 32),), durations=(0.5,), window="fixed")
    data3 = FolderDataset(data.root, other, report_path=tmp_path / "skips.jsonl")
    assert precompute_latents(data3, LatentCache(tmp_path / "cache", _codecs()))["misses"] == 4


def test_interrupted_run_keeps_written_entries(data, tmp_path):
    class Flaky(PoolCodec):
        def encode(self, x):
            if self.calls == 3:
                raise RuntimeError("out of memory")
            return super().encode(x)

    codecs = {"video": Flaky("video", "pool-v1"), "audio": PoolCodec("audio", "enc-v1")}
    with pytest.raises(RuntimeError, match="out of memory"):
        precompute_latents(data, LatentCache(tmp_path / "cache", codecs, shard_size=2))
    assert precompute_latents(data, LatentCache(tmp_path / "cache", _codecs())) == {
        "hits": 3,
        "misses": 1,
        "total": 4,
    }
    with pytest.raises(CacheError, match="not cached"):
        LatentDataset(data, LatentCache(tmp_path / "other", _codecs()))


def test_callable_with_id_and_refusals(data, tmp_path):
    fn = lambda x: x[..., ::160]  # noqa: E731
    cache = LatentCache(tmp_path / "c", {"audio": (fn, "stride-160")})
    assert precompute_latents(data, cache)["misses"] == 4
    assert LatentDataset(data, cache)[0]["audio_latent"].shape == (1, 50)
    assert as_encoder(PoolCodec("audio", "x"))[1] == "x"
    with pytest.raises(ConfigError, match="codec_id"):
        LatentCache(tmp_path / "c", {"audio": fn})
    nan = (lambda x: x * float("nan"), "nan-codec")
    with pytest.raises(CacheError, match="non-finite"):
        precompute_latents(data, LatentCache(tmp_path / "n", {"audio": nan}))
    random_windows = FolderDataset(
        data.root,
        FolderConfig(fps=10, sample_rate=16000, resolutions=((32, 32),), durations=(0.5,)),
        report_path=tmp_path / "skips.jsonl",
    )
    with pytest.raises(ConfigError, match="window='fixed'"):
        precompute_latents(random_windows, LatentCache(tmp_path / "c", {"audio": (fn, "stride-160")}))


def test_killed_run_recovers_complete_shards(data, tmp_path):
    """Shards written before a crash (no flush, so no index.json) are found by the next run."""
    cache = LatentCache(tmp_path / "cache", _codecs(), shard_size=2)
    for i in range(3):  # one full shard of 2 written; the third entry only queued, then the process dies
        spec = data.item_spec(i)
        cache.put(cache.key(spec), cache.encode(data[i]), {"source": spec["path"], "spec": spec})
    assert not (cache.dir / "index.json").exists()
    again = LatentCache(tmp_path / "cache", _codecs())
    assert precompute_latents(data, again) == {"hits": 2, "misses": 2, "total": 4}
    index = json.loads((again.dir / "index.json").read_text())
    assert len(index["entries"]) == 4 and len(index["shards"]) == 2
    assert LatentDataset(data, LatentCache(tmp_path / "cache", _codecs()))[0]["audio_latent"].shape == (1, 50)
