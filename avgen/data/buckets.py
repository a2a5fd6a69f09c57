"""Aspect-ratio x duration buckets, and a batch sampler whose batches all share one shape.

A source is put in the resolution whose aspect ratio is nearest its own (in log ratio, so 2:1 and 1:2 are
equally far from 1:1) and in the longest duration it can fill. Every item of one bucket has the same
(frames, height, width, samples), so a batch drawn from one bucket stacks without padding.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence

import torch

from avgen.errors import ConfigError


def nearest_resolution(height: int, width: int, resolutions: Sequence[tuple[int, int]]) -> int:
    """Index of the (H, W) in ``resolutions`` whose aspect ratio is nearest ``width / height``.

    Ties go to the earlier entry. Raises ConfigError on an empty list or non-positive sizes.
    """
    if not resolutions:
        raise ConfigError("resolutions: need at least one (height, width)")
    if height < 1 or width < 1:
        raise ConfigError(f"source size must be positive, got {height}x{width}")
    target = math.log(width / height)
    dists = [abs(math.log(w / h) - target) for h, w in resolutions]
    return min(range(len(dists)), key=lambda i: (round(dists[i], 12), i))


def longest_fitting(duration: float, durations: Sequence[float]) -> int | None:
    """Index of the longest window in ``durations`` that fits in ``duration`` seconds, or None."""
    fits = [i for i, d in enumerate(durations) if d <= duration + 1e-9]
    return max(fits, key=lambda i: durations[i]) if fits else None


class BucketBatchSampler:
    """Batches of indices that share a bucket, shuffled by seed and epoch, split across ranks.

    bucket_ids: one hashable bucket key per dataset item (e.g. ``FolderDataset.bucket_ids()``).
    batch_size: items per batch on each rank.
    drop_last: drop each bucket's final incomplete batch; otherwise it is yielded smaller (still one shape).
    shuffle: shuffle items within buckets and the order of batches; False gives a fixed order.
    rank, world_size: rank r takes batches r, r + world_size, ... of the epoch's batch list. The list is
        padded by repeating its first batches (or cut, with drop_last) so every rank gets the same number
        of batches, as torch's DistributedSampler does.

    The batches are a pure function of (bucket_ids, batch_size, seed, epoch, rank, world_size); call
    ``set_epoch`` before each epoch for a new order. Use as ``DataLoader(ds, batch_sampler=sampler)``.
    """

    def __init__(
        self,
        bucket_ids: Sequence[Hashable],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.groups: dict[Hashable, list[int]] = {}
        for i, b in enumerate(bucket_ids):
            self.groups.setdefault(b, []).append(i)
        if not self.groups:
            raise ConfigError("BucketBatchSampler: the dataset is empty, there is nothing to batch")
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        """Every batch of the epoch, before the rank split."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        batches: list[list[int]] = []
        # Bucket keys are sorted by repr so the order never depends on dict or hash order.
        for key in sorted(self.groups, key=repr):
            idx = self.groups[key]
            if self.shuffle:
                idx = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s : s + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append(chunk)
        if self.shuffle:
            batches = [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]
        return batches

    def _rank_count(self, n: int) -> int:
        return n // self.world_size if self.drop_last else -(-n // self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        per_rank = self._rank_count(len(batches))
        total = per_rank * self.world_size
        if total > len(batches) and batches:  # pad by wrapping round, so all ranks step together
            reps = -(-total // len(batches))
            batches = (batches * reps)[:total]
        yield from batches[self.rank : total : self.world_size]

    def __len__(self) -> int:
        bs = self.batch_size
        n = sum(len(v) // bs if self.drop_last else -(-len(v) // bs) for v in self.groups.values())
        return self._rank_count(n)
