"""Buckets: nearest aspect ratio / longest fitting duration; batches of one shape that cover the dataset,
deterministic by seed and epoch, split evenly across ranks; end to end through a DataLoader."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen.data.buckets import BucketBatchSampler, longest_fitting, nearest_resolution
from avgen.errors import ConfigError

RES = ((64, 64), (48, 80), (80, 48))  # square, landscape, portrait


def test_nearest_resolution_and_longest_duration():
    assert nearest_resolution(1080, 1920, RES) == 1
    assert nearest_resolution(1920, 1080, RES) == 2
    assert nearest_resolution(500, 520, RES) == 0
    assert nearest_resolution(32, 32, ((32, 64), (64, 32))) == 0  # equal log distance: the earlier one
    assert longest_fitting(3.0, (1.0, 2.0, 4.0)) == 1
    assert longest_fitting(2.0, (2.0, 1.0)) == 0
    assert longest_fitting(0.5, (1.0, 2.0)) is None
    with pytest.raises(ConfigError):
        nearest_resolution(0, 10, RES)
    with pytest.raises(ConfigError):
        nearest_resolution(10, 10, ())


def _ids(n: int, k: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, k, n).tolist()


def test_batches_share_a_bucket_and_cover_every_item_once():
    ids = _ids(53, 4)
    s = BucketBatchSampler(ids, 5, seed=1)
    batches = list(s)
    assert len(batches) == len(s)
    assert all(len({ids[i] for i in b}) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(53))
    assert Counter(len(b) for b in batches)[5] >= len(batches) - 4  # at most one short batch per bucket


def test_order_is_a_function_of_seed_and_epoch():
    ids = _ids(40, 3)
    a, b = BucketBatchSampler(ids, 4, seed=7), BucketBatchSampler(ids, 4, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(BucketBatchSampler(ids, 4, seed=8)) != first
    fixed = BucketBatchSampler(ids, 4, shuffle=False)
    assert all(b == sorted(b) for b in fixed)


def test_drop_last_gives_only_full_batches():
    ids = _ids(37, 3, seed=2)
    s = BucketBatchSampler(ids, 4, drop_last=True)
    batches = list(s)
    assert batches and all(len(b) == 4 for b in batches) and len(batches) == len(s)
    per_bucket = Counter(ids)
    assert len(batches) == sum(n // 4 for n in per_bucket.values())


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(1, 5),
    bs=st.integers(1, 7),
    world=st.integers(1, 4),
    drop_last=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_ranks_step_together_and_together_cover_the_data(n, k, bs, world, drop_last, epoch):
    ids = _ids(n, k, seed=n * 7 + k)
    samplers = [
        BucketBatchSampler(ids, bs, seed=3, rank=r, world_size=world, drop_last=drop_last)
        for r in range(world)
    ]
    for s in samplers:
        s.set_epoch(epoch)
    per_rank = [list(s) for s in samplers]
    assert len({len(p) for p in per_rank}) == 1  # every rank takes the same number of steps
    assert all(len(p) == len(s) for p, s in zip(per_rank, samplers))
    for p in per_rank:
        assert all(len({ids[i] for i in b}) == 1 for b in p)
    seen = {i for p in per_rank for b in p for i in b}
    if not drop_last:
        assert seen == set(range(n))
    else:  # only each bucket's final partial batch and the rank remainder are dropped
        everything = BucketBatchSampler(ids, bs, seed=3, drop_last=True)
        everything.set_epoch(epoch)
        full = [b for b in everything]
        kept = full[: len(full) // world * world]
        assert seen == {i for b in kept for i in b}


def test_bad_arguments():
    with pytest.raises(ConfigError):
        BucketBatchSampler([0, 1], 0)
    with pytest.raises(ConfigError):
        BucketBatchSampler([0, 1], 2, rank=2, world_size=2)
    with pytest.raises(ConfigError):
        BucketBatchSampler([], 2)


def test_folder_batches_stack_without_padding(tmp_path):
    """Square and landscape sources, two window lengths: a DataLoader over the bucket sampler stacks
    every batch with the default collate."""
    from avgen.data.folder import FolderConfig, FolderDataset
    from avgen.io import AVClip, write_av

    rng = np.random.default_rng(0)
    for name, (h, w), seconds in [
        ("a", (32, 32), 1.0),
        ("b", (32, 32), 1.0),
        ("c", (24, 40), 1.0),
        ("d", (24, 40), 1.0),
        ("e", (32, 32), 0.6),
    ]:
        t, n = round(seconds * 10), round(seconds * 16000)
        clip = AVClip(
            video=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8),
            fps=10,
            audio=(0.2 * rng.standard_normal((1, n))).clip(-1, 1).astype(np.float32),
            sample_rate=16000,
        )
        write_av(tmp_path / f"{name}.mp4", clip)
    cfg = FolderConfig(fps=10, sample_rate=16000, resolutions=((32, 32), (24, 40)), durations=(0.5, 1.0))
    ds = FolderDataset(tmp_path, cfg)
    assert sorted(ds.bucket_ids()) == [(0, 0), (0, 1), (0, 1), (1, 1), (1, 1)]
    sampler = BucketBatchSampler(ds.bucket_ids(), 2, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler)
    seen = []
    for batch in loader:
        shape = cfg.bucket_shape(tuple(int(x[0]) for x in batch["bucket"]))
        b = len(batch["path"])
        assert batch["video"].shape == (b, 3, shape["frames"], shape["height"], shape["width"])
        assert batch["audio"].shape == (b, 1, shape["samples"])
        seen += batch["path"]
    assert sorted(seen) == sorted(e.path for e in ds.entries)
