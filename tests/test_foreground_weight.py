"""Foreground-weighted video loss: maps of which latent cells show an object, their cache, the per-token
weights made of them, and ``joint.foreground_weight`` in the joint trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avgen.codecs.pixel import PixelCodec, PixelCodecConfig
from avgen.config import from_dict
from avgen.diffusion.flow import FlowConfig, per_sample_flow_loss
from avgen.errors import ConfigError, ShapeError
from avgen.tokens import AUDIO, VIDEO, TokenSpec
from avgen.train import foreground
from avgen.train.foreground import cached_foreground_maps, foreground_maps, token_weights
from avgen.train.joint import JointTask
from avgen.train.joint_config import JointConfig
from avgen.train.joint_validation import validation_losses

RED = torch.tensor([0.7, -0.8, -0.8])  # in [-1, 1]; the backdrop is 0 (mid grey)


def _clip(frames: int = 8, size: int = 16) -> torch.Tensor:
    """(3, T, H, W): a red 4x4 square at rows 4-7, cols 8-11 for t < 4, then rows 8-11, cols 4-7; and a
    red 2x4 bar at rows 12-13, cols 8-11 throughout (half of a 4x4 cell; the edge columns stay backdrop)."""
    video = torch.zeros(3, frames, size, size)
    video[:, :4, 4:8, 8:12] = RED[:, None, None, None]
    video[:, 4:, 8:12, 4:8] = RED[:, None, None, None]
    video[:, :, 12:14, 8:12] = RED[:, None, None, None]
    return video


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_maps_give_each_latent_cells_share_of_object_pixels(stride: int) -> None:
    codec = PixelCodec(PixelCodecConfig(patch_h=4, patch_w=4))
    z = codec.encode(_clip()[None])[0]  # (48, 8, 4, 4): one latent cell per 4x4 pixels
    (m,) = foreground_maps(codec, [z], stride=stride)
    assert m.shape == (8, 4, 4) and m.dtype == torch.float32
    expected = torch.zeros(8, 4, 4)
    expected[:4, 1, 2] = 1.0
    expected[4:, 2, 1] = 1.0
    expected[:, 3, 2] = 0.5
    torch.testing.assert_close(m, expected)


def test_maps_of_a_causal_codec_cover_every_latent_frame() -> None:
    codec = PixelCodec(PixelCodecConfig(patch_t=4, patch_h=4, patch_w=4))
    z = codec.encode(_clip(frames=9)[None])[0]  # 1 + 8/4 = 3 latent frames; the first decodes to one frame
    assert z.shape[1] == 3
    (m,) = foreground_maps(codec, [z])
    assert m.shape == (3, 4, 4)
    assert m[0, 1, 2] == 1.0 and m[2, 2, 1] == 1.0 and m[2, 1, 2] == 0.0
    assert bool((m[:, 3, 2] == 0.5).all())


def test_maps_of_clips_of_different_sizes_keep_their_shapes() -> None:
    codec = PixelCodec(PixelCodecConfig(patch_h=4, patch_w=4))
    small, large = _clip(), _clip(frames=12, size=24)
    zs = [codec.encode(v[None])[0] for v in (small, large, small)]
    maps = foreground_maps(codec, zs, batch=2)
    assert [tuple(m.shape) for m in maps] == [(8, 4, 4), (12, 6, 6), (8, 4, 4)]
    torch.testing.assert_close(maps[0], maps[2])
    with pytest.raises(ConfigError, match="stride must be >= 1"):
        foreground_maps(codec, zs, stride=0)


MOUTH = torch.tensor([-0.44, -0.94, -0.88])  # MOUTH_RGB (0.28, 0.03, 0.06) in [-1, 1]


def test_mouth_maps_hold_each_cells_largest_mouth_share_over_the_clip() -> None:
    """A mouth 4 px wide, shut (1 row) for t < 4 and open (4 rows) after; the red objects are no mouth."""
    video = _clip()
    video[:, :4, 6:7, 4:8] = MOUTH[:, None, None, None]
    video[:, 4:, 4:8, 4:8] = MOUTH[:, None, None, None]
    codec = PixelCodec(PixelCodecConfig(patch_h=4, patch_w=4))
    z = codec.encode(video[None])[0]
    (m,) = foreground_maps(codec, [z], kind="mouth")
    expected = torch.zeros(8, 4, 4)
    expected[:, 1, 1] = 1.0  # fully covered once open, so weighed as much while shut
    torch.testing.assert_close(m, expected)
    (s,) = foreground_maps(codec, [z], kind="mouth", stride=4)  # frames 0 and 4 decoded: the same
    torch.testing.assert_close(s, expected)
    (shut,) = foreground_maps(codec, [codec.encode(video[None, :, :4])[0]], kind="mouth")
    expected = torch.zeros(4, 4, 4)
    expected[:, 1, 1] = 0.25  # only ever shut: one row of the cell's four
    torch.testing.assert_close(shut, expected)
    backdrop = torch.zeros(3, 8, 16, 16) + MOUTH[:, None, None, None]  # a mouth-coloured backdrop: no mouth
    (none,) = foreground_maps(codec, [codec.encode(backdrop[None])[0]], kind="mouth")
    assert not none.any()
    with pytest.raises(ConfigError, match="kind 'lips'"):
        foreground_maps(codec, [z], kind="lips")


def test_maps_are_cached_by_latents_codec_and_stride(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codec = PixelCodec(PixelCodecConfig(patch_h=4, patch_w=4))
    zs = [codec.encode(_clip()[None])[0], codec.encode(-_clip()[None])[0]]
    first = cached_foreground_maps(codec, zs, str(tmp_path))
    files = list(tmp_path.glob("foreground-*.safetensors"))
    assert len(files) == 1 and not list(tmp_path.glob(".*part"))

    calls = []
    real = foreground.foreground_maps

    def counted(*args, **kwargs):
        calls.append(kwargs.get("stride"))
        return real(*args, **kwargs)

    monkeypatch.setattr(foreground, "foreground_maps", counted)
    again = cached_foreground_maps(codec, zs, str(tmp_path))
    assert calls == [] and all(torch.equal(a, b) for a, b in zip(first, again))

    cached_foreground_maps(codec, zs, str(tmp_path), stride=2)  # another stride: its own file
    cached_foreground_maps(codec, zs[:1], str(tmp_path))  # other latents: their own file
    cached_foreground_maps(codec, zs, str(tmp_path), kind="mouth")  # another kind: its own file
    assert calls == [2, 1, 1] and len(list(tmp_path.glob("foreground-*.safetensors"))) == 4

    files[0].write_bytes(b"not a safetensors file")  # damaged: computed again and replaced
    fixed = cached_foreground_maps(codec, zs, str(tmp_path))
    assert len(calls) == 4 and all(torch.equal(a, b) for a, b in zip(first, fixed))
    assert cached_foreground_maps(codec, zs, str(tmp_path)) is not None and len(calls) == 4


SPEC = TokenSpec(video_channels=4, audio_channels=4, video_patch=(2, 2, 2), audio_patch=1)


def _modality(num_video: int, num_audio: int = 3) -> torch.Tensor:
    return torch.tensor([VIDEO] * num_video + [AUDIO] * num_audio)


def test_token_weights_favour_object_tokens_and_keep_each_clips_scale() -> None:
    maps = torch.zeros(2, 4, 4, 4)  # (B, T', H', W') -> 2 x 2 x 2 = 8 video tokens
    maps[0, :2, :2, :2] = 1.0  # clip 0: token 0 all foreground
    maps[0, 2:, 2:, 2:] = 0.25  # token 7 a quarter
    w = token_weights(maps, SPEC, _modality(8), strength=4.0)  # clip 1: no foreground
    assert w.shape == (2, 11)
    torch.testing.assert_close(w[:, :8].mean(1), torch.ones(2))
    torch.testing.assert_close(w[:, 8:], torch.ones(2, 3))
    torch.testing.assert_close(w[1], torch.ones(11))
    backdrop = w[0, 1]
    torch.testing.assert_close(w[0, 0] / backdrop, torch.tensor(5.0))  # 1 + 4 x 1
    torch.testing.assert_close(w[0, 7] / backdrop, torch.tensor(2.0))  # 1 + 4 x 0.25
    torch.testing.assert_close(token_weights(maps, SPEC, _modality(8), strength=0.0), torch.ones(2, 11))


def test_token_weights_pad_like_pack_and_check_the_token_count() -> None:
    maps = torch.ones(1, 3, 3, 4)  # pads to 4 x 4 x 4 like ``pack``; padding is backdrop
    w = token_weights(maps, SPEC, _modality(8), strength=1.0)
    assert w[0, 0] == w[0, 1] > w[0, 2] > w[0, 6]  # tokens (t h w): whole, whole, half, quarter real cells
    with pytest.raises(ShapeError, match="give 8 video tokens, the sequence has 6"):
        token_weights(maps, SPEC, _modality(6), strength=1.0)


def test_token_weights_scale_the_loss_and_leave_the_reported_mses() -> None:
    torch.manual_seed(0)
    b, nv, na, f = 2, 8, 3, 6
    modality = _modality(nv, na)
    x0, noise, pred = torch.randn(b, nv + na, f), torch.randn(b, nv + na, f), torch.randn(b, nv + na, f)
    t = torch.full((b, nv + na), 0.5)
    fmask = torch.ones(nv + na, f, dtype=torch.bool)
    cfg = FlowConfig()
    plain = per_sample_flow_loss(pred, x0, noise, t, modality, fmask, cfg)
    ones = per_sample_flow_loss(
        pred, x0, noise, t, modality, fmask, cfg, token_weights=torch.ones(b, nv + na)
    )
    torch.testing.assert_close(ones.total, plain.total)

    w = torch.ones(b, nv + na)
    w[:, 0] = 3.0  # token 0 counts three times
    weighted = per_sample_flow_loss(pred, x0, noise, t, modality, fmask, cfg, token_weights=w)
    err = (pred - (noise - x0)).pow(2).mean(-1)  # (B, L): per-token mean over features
    extra = 2.0 * err[:, 0] / nv  # token 0's two extra shares of the video mean
    torch.testing.assert_close(weighted.total, plain.total + extra)
    torch.testing.assert_close(weighted.video, plain.video)
    torch.testing.assert_close(weighted.audio, plain.audio)
    with pytest.raises(ShapeError, match=r"token_weights must be \(B, L\)"):
        per_sample_flow_loss(pred, x0, noise, t, modality, fmask, cfg, token_weights=torch.ones(b, nv))


CFG = {
    "batch_size": 4,
    "caption_dropout": 0.0,
    "val_batches": 2,
    "model": {"preset": "tiny", "video_codec": "tiny", "audio_codec": "tiny", "text_encoder": "tiny"},
    "data": {"n": 8, "val_n": 4, "size": [32, 32], "duration": 1.0, "families": {"bounce": 1.0}},
}


def test_the_joint_trainer_weighs_training_tokens_by_foreground_and_never_validation(tmp_path: Path) -> None:
    plain = JointTask(from_dict(JointConfig, CFG))
    task = JointTask(
        from_dict(
            JointConfig,
            {**CFG, "foreground_weight": 6.0, "data": {**CFG["data"], "cache_dir": str(tmp_path)}},
        )
    )
    assert plain.foreground is None
    assert len(task.foreground) == len(task.train_set)
    assert all(m.shape == z.shape[1:] for m, z in zip(task.foreground, task.train_set.video))
    assert len(list(tmp_path.glob("foreground-*.safetensors"))) == 1
    task.model.load_state_dict(plain.model.state_dict())
    batch = {"indices": [0, 1, 2, 3], "slots": [0, 1, 2, 3]}

    def loss(t: JointTask) -> float:
        return float(t.loss(t.model, batch, step=2)[0].detach())

    task.foreground = [torch.zeros_like(m) for m in task.foreground]  # no foreground: weights all 1
    assert loss(task) == pytest.approx(loss(plain), rel=1e-6)
    for m in task.foreground:
        m[:, :2, :2] = 1.0  # one corner is "the object"
    assert loss(task) != pytest.approx(loss(plain), rel=1e-4)
    v_plain = validation_losses(plain, plain.model)
    v_task = validation_losses(task, task.model)
    assert v_task["val_loss"] == pytest.approx(v_plain["val_loss"], rel=1e-6)
    for task_name, terms in v_plain["val_mse"].items():
        assert v_task["val_mse"][task_name] == pytest.approx(terms, rel=1e-6)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"foreground_weight": -1.0}, "foreground_weight must be a finite number >= 0"),
        ({"foreground_weight": float("inf")}, "foreground_weight must be a finite number >= 0"),
        ({"foreground_weight": True}, "foreground_weight: expected a number, got True"),
        ({"foreground_stride": 0}, "foreground_stride must be >= 1"),
        ({"foreground_stride": 1.5}, "foreground_stride: expected a whole number, got 1.5"),
        ({"foreground_map": "lips"}, "foreground_map must be one of"),
    ],
)
def test_bad_foreground_settings_are_named(extra: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_dict(JointConfig, {**CFG, **extra})
