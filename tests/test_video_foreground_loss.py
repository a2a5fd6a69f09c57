"""Video autoencoder: the object- and mouth-weighted L1 (``video_loss.foreground`` / ``mouth``) and their
masks."""

from __future__ import annotations

import pytest
import torch

from avgen.codecs.losses import VideoLossWeights, video_vae_loss, weighted_l1
from avgen.data.maps import VIDEO_MASKS
from avgen.data.synth.captions import MOUTH_RGB
from avgen.data.synth.pixels import foreground_mask, mouth_mask, mouth_pixels
from avgen.errors import ConfigError


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
    assert float(weighted_l1(pred, target, 0.0, on="target", masks=VIDEO_MASKS)) == pytest.approx(
        float(err.mean()), rel=1e-6
    )
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
    assert float(weighted_l1(pred, target, 10.0, on="target", masks=VIDEO_MASKS)) == pytest.approx(
        float(expected), rel=1e-5
    )


def test_a_spurious_object_costs_as_much_as_a_missed_one_with_either():
    target = _square_clip()
    missed, spurious = target.clone(), target.clone()
    missed[:, :, :, 6:10, 5:9] = target[:, :, :, 6:10, :1]  # the square painted over with the backdrop
    spurious[:, :, :, 1:5, 10:14] = torch.tensor([0.9, 0.2, 0.5]).view(1, 3, 1, 1, 1)  # a second square
    err_missed = (missed - target).abs().sum()
    err_spurious = (spurious - target).abs().sum()
    for on in ("target", "either"):
        per_unit = [
            float(weighted_l1(x, target, 10.0, on=on, masks=VIDEO_MASKS)) / float(e)
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
    weighted, wparts = video_vae_loss(
        pred, target, mean, logvar, VideoLossWeights(foreground=10.0), VIDEO_MASKS
    )
    assert float(parts["l1"]) == pytest.approx(float(wparts["l1"]))
    assert "l1_weighted" not in parts and float(wparts["l1_weighted"]) > 5 * float(parts["l1"])
    assert float(weighted) > float(plain)


def _face_clip() -> torch.Tensor:
    """(1, 3, 4, 16, 16) in [-1, 1]: the square clip with a 1x4 mouth-coloured line at row 8, columns 5-8
    (on the square, as the lips lie on the face), in frames 0 and 2 only."""
    video = _square_clip()
    mouth = torch.tensor(MOUTH_RGB) * 2 - 1
    video[:, :, ::2, 8, 5:9] = mouth.view(1, 3, 1, 1)
    return video


def test_mouth_mask_is_the_rule_lip_sync_is_scored_by():
    g = torch.Generator().manual_seed(1)
    near = torch.tensor(MOUTH_RGB).view(1, 3, 1, 1, 1) + 0.15 * torch.randn(2, 3, 3, 8, 8, generator=g)
    video = (near.clamp(0, 1) * 255).round() / 255 * 2 - 1  # uint8-exact values around the mouth colour
    frames = ((video + 1) / 2 * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()  # (B, T, H, W, 3)
    expected = torch.from_numpy(mouth_pixels(frames))
    assert 0 < int(expected.sum()) < expected.numel()  # both kinds of pixel are there
    assert torch.equal(mouth_mask(video), expected)
    lips = mouth_mask(_face_clip())
    assert lips[:, ::2, 8, 5:9].all() and not lips[:, 1::2, 8, 5:9].any()
    assert lips[:, :, 0].all()  # the darkest backdrop row is about the mouth's colour: the loss needs objects


def test_mouth_weight_adds_to_the_object_weight():
    target = _face_clip()
    g = torch.Generator().manual_seed(0)
    pred = target + 0.1 * torch.randn(target.shape, generator=g)
    err = (pred - target).abs()
    w = torch.ones(1, 4, 16, 16)
    w[:, :, 6:10, 5:9] += 10.0
    w[:, ::2, 8, 5:9] += 50.0
    w = w / w.mean()
    expected = (err * w.unsqueeze(1)).mean()
    assert float(
        weighted_l1(pred, target, 10.0, on="target", mouth=50.0, masks=VIDEO_MASKS)
    ) == pytest.approx(float(expected), rel=1e-5)
    only = weighted_l1(pred, target, 0.0, on="target", mouth=50.0, masks=VIDEO_MASKS)
    w = torch.ones(1, 4, 16, 16)
    w[:, ::2, 8, 5:9] += 50.0
    assert float(only) == pytest.approx(float((err * (w / w.mean()).unsqueeze(1)).mean()), rel=1e-5)
    # with "either", lips drawn where the clip has none (frame 1) weigh as much as lips missed
    drawn = target.clone()
    drawn[:, :, 1, 8, 5:9] = target[:, :, 0, 8, 5:9]
    assert float(weighted_l1(drawn, target, 0.0, on="either", mouth=50.0, masks=VIDEO_MASKS)) > 10 * float(
        weighted_l1(drawn, target, 0.0, on="target", mouth=50.0, masks=VIDEO_MASKS)
    )
    mean, logvar = torch.zeros(1, 4, 1, 2, 2), torch.zeros(1, 4, 1, 2, 2)
    _, parts = video_vae_loss(pred, target, mean, logvar, VideoLossWeights(mouth=50.0), VIDEO_MASKS)
    assert float(parts["l1_weighted"]) > float(parts["l1"])


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_foreground_weight_is_named(bad):
    with pytest.raises(ConfigError, match="VideoLossWeights"):
        VideoLossWeights(foreground=bad)
    with pytest.raises(ConfigError, match="VideoLossWeights"):
        VideoLossWeights(mouth=bad)
    with pytest.raises(ConfigError, match="foreground_on"):
        VideoLossWeights(foreground=1.0, foreground_on="pred")


def test_a_weighted_l1_without_the_datasets_masks_is_refused():
    target = _square_clip()
    assert float(weighted_l1(target, target, 0.0)) == 0.0  # unweighted: no masks needed
    with pytest.raises(ConfigError, match="masks"):
        weighted_l1(target, target, 10.0)
