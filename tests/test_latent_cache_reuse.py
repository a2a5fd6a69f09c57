"""The synth latent cache is reused across ``data.n``: a larger cache is cut, a smaller one is extended by
rendering only the seeds it lacks, and the result equals encoding everything afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae
from avgen.train import latents
from avgen.train.latents import JointDataConfig, synth_latents

FAMILIES = {"bounce": 0.5, "talk": 0.5}


def _set(cache: Path | None, n: int) -> latents.LatentSet:
    cfg = JointDataConfig(n=n, size=(32, 32), duration=1.0, families=FAMILIES, cache_dir=cache and str(cache))
    return synth_latents(cfg, "train", n, tiny_video_vae(), tiny_audio_codec())


def _same(a: latents.LatentSet, b: latents.LatentSet, n: int | None = None) -> None:
    """``a`` equals ``b``, or its first ``n`` items."""
    n = len(b) if n is None else n
    b = latents.LatentSet(b.video[:n], b.audio[:n], b.captions[:n], b.groups[:n], b.buckets[:n], b.geometries)
    assert a.captions == b.captions and a.groups == b.groups and a.buckets == b.buckets
    for x, y in zip(a.video + a.audio, b.video + b.audio, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


def test_growing_n_renders_only_the_new_seeds_and_shrinking_renders_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = _set(None, 12)
    _set(tmp_path, 8)
    rendered: list[int] = []
    make = latents._make_sample
    monkeypatch.setattr(latents, "_make_sample", lambda job: rendered.append(job[0]) or make(job))
    grown = _set(tmp_path, 12)
    assert rendered == [8, 9, 10, 11]
    _same(grown, fresh)
    assert len(list(tmp_path.glob("latents-*.safetensors"))) == 2  # 8 and 12, each under its own n

    rendered.clear()
    cut = _set(tmp_path, 5)
    assert rendered == []
    _same(cut, fresh, n=5)
    _same(_set(tmp_path, 12), fresh)  # its own file again
    assert rendered == []


def test_other_clips_or_damaged_files_are_never_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(tmp_path, 4)
    (tmp_path / "latents-0000000000000000.safetensors").write_bytes(b"not a safetensors file")
    other = JointDataConfig(n=6, size=(32, 32), duration=1.0, families={"keys": 1.0}, cache_dir=str(tmp_path))
    rendered: list[int] = []
    make = latents._make_sample
    monkeypatch.setattr(latents, "_make_sample", lambda job: rendered.append(job[0]) or make(job))
    got = synth_latents(other, "train", 6, tiny_video_vae(), tiny_audio_codec())
    assert rendered == list(range(6)) and set(got.groups) == {"keys"}
    rendered.clear()
    synth_latents(other, "val", 3, tiny_video_vae(), tiny_audio_codec())  # another split: rendered too
    assert rendered == [0, 1, 2]
