"""Video autoencoder: the object-weighted L1 and the decoder-only fine-tune of a trained codec."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from avgen.codecs import load_codec
from avgen.codecs.losses import VideoLossWeights, foreground_mask, video_vae_loss, weighted_l1
from avgen.codecs.train import CodecTrainConfig, resolve_init, train_codec
from avgen.codecs.video_vae import VideoVAEConfig
from avgen.config import from_dict, to_dict
from avgen.errors import ConfigError

TINY_VIDEO_CFG = {"latent_channels": 4, "channels": [4, 8, 8]}


def _square_clip() -> torch.Tensor:
    """(1, 3, 4, 16, 16) in [-1, 1]: a per-row gradient backdrop and a 4x4 pink square at rows 6-9,
    columns 5-8 in every frame."""
    rows = torch.linspace(-0.8, 0.2, 16)
    video = rows.view(1, 1, 1, 16, 1).expand(1, 3, 4, 16, 16).clone()
    video[:, :, :, 6:10, 5:9] = torch.tensor([0.9, 0.2, 0.5]).view(1, 3, 1, 1, 1)
    return video


def test_foreground_mask_is_the_object_and_not_the_gradient():
    mask = foreground_mask(_square_clip())
    expected = torch.zeros(1, 4, 16, 16, dtype=torch.bool)
    expected[:, :, 6:10, 5:9] = True
    assert torch.equal(mask, expected)
    faint = _square_clip()
    faint[:, :, :, 6:10, 5:9] = faint[:, :, :, 6:10, :1] + 0.2  # each row's backdrop, 0.2 brighter
    assert not foreground_mask(faint).any()  # 0.2 from the backdrop is under the 0.24 threshold


def test_weighted_l1_matches_hand_computed_weights():
    target = torch.cat([_square_clip(), torch.zeros(1, 3, 4, 16, 16)])  # clip 2 has no object
    g = torch.Generator().manual_seed(0)
    pred = target + 0.1 * torch.randn(target.shape, generator=g)
    err = (pred - target).abs()
    assert float(weighted_l1(pred, target, 0.0, on="target")) == pytest.approx(float(err.mean()), rel=1e-6)
    share = 16 / 256  # the square's share of each frame
    w_obj, w_bg = 1 + 10.0, 1.0
    mean_w = share * w_obj + (1 - share) * w_bg
    first = err[0].clone()
    first[:, :, 6:10, 5:9] *= w_obj / mean_w
    first[:, :, :, :5] /= mean_w
    first[:, :, :, 9:] /= mean_w
    first[:, :, :6, 5:9] /= mean_w
    first[:, :, 10:, 5:9] /= mean_w
    expected = (first.sum() + err[1].sum()) / err.numel()  # the empty clip keeps weight 1 everywhere
    assert float(weighted_l1(pred, target, 10.0, on="target")) == pytest.approx(float(expected), rel=1e-5)


def test_a_spurious_object_costs_as_much_as_a_missed_one_with_either():
    target = _square_clip()
    missed, spurious = target.clone(), target.clone()
    missed[:, :, :, 6:10, 5:9] = target[:, :, :, 6:10, :1]  # the square painted over with the backdrop
    spurious[:, :, :, 1:5, 10:14] = torch.tensor([0.9, 0.2, 0.5]).view(1, 3, 1, 1, 1)  # a second square
    err_missed = (missed - target).abs().sum()
    err_spurious = (spurious - target).abs().sum()
    for on in ("target", "either"):
        per_unit = [
            float(weighted_l1(x, target, 10.0, on=on)) / float(e)
            for x, e in ((missed, err_missed), (spurious, err_spurious))
        ]
        if on == "target":
            assert per_unit[0] > 5 * per_unit[1]  # missing is 11x dearer than drawing a blob
        else:  # both weigh 11 per unit error, over the clip's mean weight (one square vs two of 16 px)
            mean_missed, mean_spurious = 1 + 10 * 16 / 256, 1 + 10 * 32 / 256
            assert per_unit[0] * mean_missed == pytest.approx(per_unit[1] * mean_spurious, rel=1e-5)
    mask = foreground_mask(spurious, reference=target)
    assert mask[:, :, 1:5, 10:14].all() and mask.sum() == 2 * 4 * 16


def test_video_loss_reports_the_plain_l1_and_weighs_only_the_fit():
    target = _square_clip()
    pred = target.clone()
    pred[:, :, :, 6:10, 5:9] -= 0.5  # only the object is wrong
    mean, logvar = torch.zeros(1, 4, 1, 2, 2), torch.zeros(1, 4, 1, 2, 2)
    plain, parts = video_vae_loss(pred, target, mean, logvar, VideoLossWeights())
    weighted, wparts = video_vae_loss(pred, target, mean, logvar, VideoLossWeights(foreground=10.0))
    assert float(parts["l1"]) == pytest.approx(float(wparts["l1"]))
    assert "l1_weighted" not in parts and float(wparts["l1_weighted"]) > 5 * float(parts["l1"])
    assert float(weighted) > float(plain)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_foreground_weight_is_named(bad):
    with pytest.raises(ConfigError, match="VideoLossWeights"):
        VideoLossWeights(foreground=bad)
    with pytest.raises(ConfigError, match="foreground_on"):
        VideoLossWeights(foreground=1.0, foreground_on="pred")


def test_freeze_encoder_needs_a_trained_video_codec():
    with pytest.raises(ConfigError, match="init_from"):
        CodecTrainConfig(kind="video", freeze_encoder=True)
    with pytest.raises(ConfigError, match="kind 'video'"):
        CodecTrainConfig(kind="audio", freeze_encoder=True, init_from="somewhere")


def _clips(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 9, 16, 24), generator=g, dtype=torch.uint8) for _ in range(n)]


def _cfg(steps: int, **extra) -> CodecTrainConfig:
    base = {
        "kind": "video",
        "steps": steps,
        "batch_size": 2,
        "crop_frames": 5,
        "crop_size": 16,
        "warmup": 1,
        "log_every": 1,
        "eval_every": 100,
        "ckpt_every": 100,
        "stats_clips": 2,
        "video": TINY_VIDEO_CFG,
    }
    return from_dict(CodecTrainConfig, {**base, **extra})


def test_resolve_init_takes_the_folders_architecture(tmp_path):
    train = _clips(3, 0)
    train_codec(_cfg(1), train, [], tmp_path / "base", progress=False)
    folder = str(tmp_path / "base" / "codec")
    found = load_codec(folder).config
    assert resolve_init(replace(_cfg(1), init_from=folder)).video == found
    assert resolve_init(CodecTrainConfig(kind="video", init_from=folder)).video == found  # no section
    other = replace(_cfg(1), init_from=folder, video=VideoVAEConfig(latent_channels=8, channels=(4, 8, 8)))
    with pytest.raises(ConfigError, match="different video architecture"):
        resolve_init(other)
    with pytest.raises(Exception, match="nowhere"):
        resolve_init(replace(_cfg(1), init_from=str(tmp_path / "nowhere")))


def test_decoder_finetune_keeps_the_latents_exactly(tmp_path):
    train, held = _clips(3, 0), _clips(2, 1)
    train_codec(_cfg(2), train, held, tmp_path / "base", progress=False)
    base = load_codec(tmp_path / "base" / "codec")
    tuned_cfg = _cfg(
        3,
        init_from=str(tmp_path / "base" / "codec"),
        freeze_encoder=True,
        video_loss={"foreground": 4.0},
        lr=1e-2,
    )
    train_codec(tuned_cfg, _clips(3, 5), held, tmp_path / "tuned", progress=False)  # other clips: stats kept
    tuned = load_codec(tmp_path / "tuned" / "codec")
    a, b = base.state_dict(), tuned.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("encoder.", "stats.")))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    clip = held[0][:, :5].float().div(127.5).sub(1).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(base.encode(clip), tuned.encode(clip))  # a DiT trained on base's latents fits
    saved = json.loads((tmp_path / "tuned" / "config.json").read_text())  # names what was trained
    assert saved["video"] == to_dict(base.config) and saved["freeze_encoder"] is True
    log = [json.loads(line) for line in (tmp_path / "tuned" / "log.jsonl").read_text().splitlines()]
    assert all("l1_weighted" in r for r in log if "loss" in r)


def test_full_finetune_from_a_codec_starts_from_its_weights(tmp_path):
    train = _clips(3, 0)
    train_codec(_cfg(2), train, [], tmp_path / "base", progress=False)
    cfg = _cfg(1, init_from=str(tmp_path / "base" / "codec"), lr=1e-9, warmup=0)
    train_codec(cfg, train, [], tmp_path / "more", progress=False)
    a = load_codec(tmp_path / "base" / "codec").state_dict()
    b = load_codec(tmp_path / "more" / "codec").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a if not k.startswith("stats."))
