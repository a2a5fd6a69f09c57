"""A latent cache filled by several processes: each rank encodes only its block of the items into shard
files of its own, none writes the index until all are done, every rank then reads the union, and a run
killed part way keeps its complete shards so the restart encodes only the rest (2 gloo processes on CPU)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avgen.clip import AVClip
from avgen.data.cache import LatentCache, LatentDataset, precompute_latents, shard_range
from avgen.data.folder import FolderConfig, FolderDataset
from avgen.errors import ConfigError
from avgen.io import write_av

CLIPS = 4  # of 1 s each: 2 fixed windows of 0.5 s apiece, 8 items


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    captions = []
    for i in range(CLIPS):
        clip = AVClip(
            video=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
            fps=Fraction(8),
            audio=(0.3 * rng.standard_normal((1, 16000))).clip(-1, 1).astype(np.float32),
            sample_rate=16000,
        )
        write_av(root / f"clip{i}.mkv", clip, lossless=True)
        captions.append(json.dumps({"file": f"clip{i}.mkv", "caption": f"clip number {i}"}))
    (root / "captions.jsonl").write_text("\n".join(captions) + "\n")
    return root


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("sharded") / "media")


CFG = FolderConfig(fps=8, sample_rate=16000, resolutions=((32, 32),), durations=(0.5,), window="fixed")


class Pool:
    """A deterministic stand-in codec that counts its calls."""

    def __init__(self, kind: str) -> None:
        self.kind, self.codec_id, self.calls = kind, f"pool-{kind}", 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return F.avg_pool3d(x, (1, 8, 8)) if self.kind == "video" else x[..., ::160]


def _codecs() -> dict[str, Pool]:
    return {"video": Pool("video"), "audio": Pool("audio")}


def test_shard_ranges_are_disjoint_blocks_that_cover_every_item():
    for n in (0, 1, 7, 8, 9, 100):
        for world in (1, 2, 3, 8):
            blocks = [shard_range(n, r, world) for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    with pytest.raises(ConfigError, match="rank"):
        shard_range(4, 2, 2)


def test_named_writers_never_share_a_file_and_the_index_is_merged_once(media, tmp_path):
    data = FolderDataset(media, CFG, report_path=tmp_path / "skips.jsonl")
    n = len(data)
    assert n == 2 * CLIPS
    root = tmp_path / "cache"
    writers = [LatentCache(root, _codecs(), shard_size=3, writer=f"rank{r}") for r in range(2)]
    for r, cache in enumerate(writers):  # (both open before either writes, as under torchrun)
        assert precompute_latents(data, cache, indices=shard_range(n, r, 2))["misses"] == n // 2
    folder = writers[0].dir
    assert not (folder / "index.json").exists()  # no writer wrote the index
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        f"shard-rank{r}-0000{k}.{ext}" for r in range(2) for k in range(2) for ext in ("json", "safetensors")
    )
    assert {p.name for p in root.glob("files*.json")} == {"files-rank0.json", "files-rank1.json"}
    assert len(writers[0].index["entries"]) == n // 2  # its own entries until it refreshes
    for cache in writers:
        cache.refresh()
        assert len(cache.index["entries"]) == n
        assert len(cache.files) == CLIPS  # every writer's file hashes: no source is read twice
    writers[0].write_index()
    assert len(json.loads((folder / "index.json").read_text())["entries"]) == n

    codecs = _codecs()  # a later single process: every item a hit, read from the merged shards
    plain = LatentCache(root, codecs)
    assert precompute_latents(data, plain) == {"hits": n, "misses": 0, "total": n}
    latents = LatentDataset(data, plain)
    for i in (0, n - 1):
        want = F.avg_pool3d(data[i]["video"][None], (1, 8, 8))[0]
        assert torch.equal(latents[i]["video_latent"], want)
    assert codecs["video"].calls == 0


def test_a_writer_killed_between_shard_and_entry_list_reencodes_only_that_shard(media, tmp_path):
    data = FolderDataset(media, CFG, report_path=tmp_path / "skips.jsonl")
    n, root = len(data), tmp_path / "cache"
    cache = LatentCache(root, _codecs(), shard_size=2, writer="rank1")
    precompute_latents(data, cache, indices=shard_range(n, 1, 2))
    lost = cache.dir / "shard-rank1-00001.json"  # the kill came after the shard, before its entry list
    lost.unlink()
    (cache.dir / ".shard-rank1-00002.safetensors.0123abcd.part").write_bytes(b"torn")  # and a torn write
    codecs = _codecs()
    again = LatentCache(root, codecs, shard_size=2, writer="rank1")
    assert precompute_latents(data, again, indices=shard_range(n, 1, 2)) == {
        "hits": 2,
        "misses": 2,
        "total": 4,
    }
    assert codecs["video"].calls == 2
    assert (cache.dir / "shard-rank1-00002.json").is_file()  # numbering goes on past the orphaned shard
    plain = LatentCache(root, _codecs(), shard_size=2)  # a later single process adds rank 0's half
    assert precompute_latents(data, plain) == {"hits": 4, "misses": 4, "total": 8}
    assert sorted(p.name for p in cache.dir.glob("shard-0*.json")) == ["shard-00000.json", "shard-00001.json"]
    with pytest.raises(ConfigError, match="writer"):
        LatentCache(root, _codecs(), writer="rank/1")


# --- two gloo processes through folder_latents --------------------------------------------------------------

CHILD = """
import json, os, signal, sys
from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae
from avgen.data import cache as C
from avgen.train.distributed import close_distributed, init_distributed
from avgen.train.latents import JointDataConfig, folder_latents

root, cache_dir, report, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = init_distributed("cpu")
done = []
put = C.LatentCache.put

def counting_put(self, key, latents, meta):
    if kill_after >= 0 and len(done) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)  # as a node failure: no cleanup of any kind
    done.append([meta["spec"]["path"], meta["spec"]["start"]])
    put(self, key, latents, meta)

C.LatentCache.put = counting_put
cfg = JointDataConfig(source="folder", root=root, size=(32, 32), duration=0.5, fps=8, cache_dir=cache_dir)
out = folder_latents(cfg, root, tiny_video_vae(), tiny_audio_codec(), shard_size=2)
sums = [float(v.double().sum()) for v in out.video] + [float(a.double().sum()) for a in out.audio]
with open(report, "w") as f:
    json.dump({"encoded": done, "captions": out.captions, "sums": sums}, f)
close_distributed(ctx)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(media: Path, cache: Path, reports: Path, kill_after: tuple[int, int]) -> list[subprocess.Popen]:
    port, procs = _free_port(), []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "RANK": str(rank)}
        env |= {
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        args = [str(media), str(cache), str(reports / f"rank{rank}.json"), str(kill_after[rank])]
        cmd = [sys.executable, "-c", CHILD, *args]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    return procs


def _listed(folder: Path, rank: int) -> set[tuple[str, str]]:
    """(path, start) of the entries in rank ``rank``'s complete shards."""
    found = set()
    for listing in folder.glob(f"codec-*/shard-rank{rank}-*.json"):
        found |= {(e["spec"]["path"], e["spec"]["start"]) for e in json.loads(listing.read_text()).values()}
    return found


def test_two_ranks_encode_their_own_blocks_and_a_killed_run_resumes(media, tmp_path):
    from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae
    from avgen.train.latents import JointDataConfig, folder_latents

    data = FolderDataset(media, CFG, report_path=tmp_path / "skips.jsonl")
    items = [(data.item_spec(i)["path"], data.item_spec(i)["start"]) for i in range(len(data))]
    blocks = [{items[i] for i in shard_range(len(items), r, 2)} for r in range(2)]
    cache, reports = tmp_path / "cache", tmp_path / "reports"
    reports.mkdir()

    # Run 1: rank 1 dies (SIGKILL) as it queues its 4th window, after one complete shard of 2; rank 0 is
    # then killed too, as torchrun does with the rest of a group.
    rank0, rank1 = _launch(media, cache, reports, kill_after=(-1, 3))
    rank1.communicate(timeout=120)
    assert rank1.returncode == -signal.SIGKILL
    time.sleep(1.0)
    rank0.kill()
    rank0.communicate(timeout=60)
    assert not list(cache.glob("codec-*/index.json"))  # nobody got to merge the index
    kept = [_listed(cache, r) for r in range(2)]
    assert len(kept[1]) == 2 and kept[1] <= blocks[1] and kept[0] <= blocks[0]

    # Run 2: each rank encodes only what its own block lacks, then both read all 8 windows.
    procs = _launch(media, cache, reports, kill_after=(-1, -1))
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    got = [json.loads((reports / f"rank{r}.json").read_text()) for r in range(2)]
    for r in range(2):
        assert {tuple(e) for e in got[r]["encoded"]} == blocks[r] - kept[r]
    assert got[0]["sums"] == got[1]["sums"] and len(got[0]["captions"]) == len(items)
    assert len(json.loads(next(cache.glob("codec-*/index.json")).read_text())["entries"]) == len(items)

    # The same latents as one process encoding everything into a fresh cache.
    one_cache = str(tmp_path / "one")
    cfg = JointDataConfig(
        source="folder", root=str(media), size=(32, 32), duration=0.5, fps=8, cache_dir=one_cache
    )
    one = folder_latents(cfg, str(media), tiny_video_vae(), tiny_audio_codec())
    sums = [float(v.double().sum()) for v in one.video] + [float(a.double().sum()) for a in one.audio]
    assert got[0]["captions"] == one.captions
    assert got[0]["sums"] == pytest.approx(sums, rel=1e-6, abs=1e-6)
