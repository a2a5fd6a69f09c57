"""Rectified flow: path and target, per-token t sampling, the per-modality loss."""

from __future__ import annotations

import pytest
import torch

from avgen.diffusion.flow import (
    FlowConfig,
    flow_loss,
    interpolate,
    per_sample_flow_loss,
    sample_timesteps,
    time_shift,
    training_loss,
    velocity_target,
)
from avgen.errors import ConfigError
from avgen.model import tiny_dit
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenSpec, latent_times, pack

MOD = torch.tensor([VIDEO] * 6 + [AUDIO] * 4)


def test_path_and_target() -> None:
    x0, noise = torch.randn(2, 10, 3), torch.randn(2, 10, 3)
    t = torch.rand(2, 10)
    t[0, 0], t[0, 1] = 0.0, 1.0
    xt = interpolate(x0, noise, t)
    assert torch.equal(xt[0, 0], x0[0, 0]) and torch.equal(xt[0, 1], noise[0, 1])
    assert torch.allclose(xt, (1 - t[..., None]) * x0 + t[..., None] * noise)
    # the target is the time derivative of the path
    eps = 1e-3
    fd = (interpolate(x0, noise, t + eps) - interpolate(x0, noise, t)) / eps
    assert torch.allclose(fd, velocity_target(x0, noise), atol=1e-2)


def test_time_shift() -> None:
    t = torch.linspace(0, 1, 11)
    assert torch.allclose(time_shift(t, 1.0), t)
    s = time_shift(t, 3.0)
    assert s[0] == 0 and s[-1] == 1 and (s[1:-1] > t[1:-1]).all() and (s.diff() > 0).all()
    assert FlowConfig(shift=2.0, reference_tokens=100).shift_for(400) == pytest.approx(4.0)
    assert FlowConfig(shift=2.0).shift_for(400) == 2.0


def test_timesteps_shared_independent_and_clean() -> None:
    g = torch.Generator().manual_seed(0)
    shared = sample_timesteps(FlowConfig(independent_prob=0.0, clean_prob=0.0), MOD, 512, g)
    assert shared.shape == (512, 10) and (shared == shared[:, :1]).all()
    assert 0 < shared.min() and shared.max() < 1
    assert shared[:, 0].median() == pytest.approx(0.5, abs=0.05)  # logit-normal(0, 1)
    indep = sample_timesteps(FlowConfig(independent_prob=1.0, clean_prob=0.0), MOD, 512, g)
    assert (indep[:, :6] == indep[:, :1]).all() and (indep[:, 6:] == indep[:, 6:7]).all()
    assert (indep[:, 0] != indep[:, 6]).all()
    clean = sample_timesteps(FlowConfig(clean_prob=1.0), MOD, 512, g)
    video_clean, audio_clean = (clean[:, 0] == 0), (clean[:, 6] == 0)
    assert (video_clean ^ audio_clean).all()  # exactly one modality given clean per sample
    assert 0.4 < video_clean.float().mean() < 0.6
    some = sample_timesteps(FlowConfig(clean_prob=0.1, independent_prob=0.3), MOD, 4000, g)
    assert (some[:, 0] == 0).float().mean() == pytest.approx(0.05, abs=0.015)
    assert (some[:, 0] != some[:, 6]).float().mean() == pytest.approx(0.3 * 0.9 + 0.1, abs=0.03)
    shifted = sample_timesteps(FlowConfig(shift=3.0, clean_prob=0.0), MOD, 512, g)
    assert shifted.mean() > shared.mean() + 0.1


def test_uniform_share_reaches_the_high_noise_end() -> None:
    def draw(cfg: FlowConfig) -> torch.Tensor:
        return sample_timesteps(cfg, MOD, 4000, torch.Generator().manual_seed(0))

    plain, mixed = FlowConfig(clean_prob=0.0), FlowConfig(clean_prob=0.0, uniform_prob=0.5)
    assert (draw(plain) > 0.95).float().mean() < 0.005  # logit-normal(0, 1) alone: ~0.2 %
    assert 0.015 < (draw(mixed) > 0.95).float().mean() < 0.04  # half uniform: ~2.5 %
    assert torch.equal(draw(plain), draw(FlowConfig(clean_prob=0.0, uniform_prob=0.0)))
    with pytest.raises(ConfigError, match="uniform_prob"):
        FlowConfig(uniform_prob=1.5)


@pytest.mark.parametrize("given", ["video", "audio"])
def test_clean_modality_always_gives_that_modality(given: str) -> None:
    def draw(cfg: FlowConfig) -> torch.Tensor:
        return sample_timesteps(cfg, MOD, 2000, torch.Generator().manual_seed(0))

    t = draw(FlowConfig(clean_prob=1.0, clean_modality=given))
    clean, noisy = (t[:, :6], t[:, 6:]) if given == "video" else (t[:, 6:], t[:, :6])
    assert (clean == 0).all() and (noisy > 0).all()
    some = draw(FlowConfig(clean_prob=0.2, clean_modality=given))
    assert (some[:, 6 if given == "video" else 0] == 0).sum() == 0  # the other one is never given
    # the times of samples not given clean are those of the default (the random stream is unchanged)
    base = draw(FlowConfig(clean_prob=0.2))
    keep = (some > 0).all(dim=1) & (base > 0).all(dim=1)
    assert keep.float().mean() > 0.7 and torch.equal(some[keep], base[keep])
    with pytest.raises(ConfigError, match="clean_modality"):
        FlowConfig(clean_modality="text")


def test_loss_masks_clean_tokens_and_padding_and_weights_modalities() -> None:
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 10, 4, generator=g), torch.randn(2, 10, 4, generator=g)
    fm = torch.ones(10, 4, dtype=torch.bool)
    fm[6:, 3] = False  # audio tokens have 3 real features
    t = torch.full((2, 10), 0.5)
    cfg = FlowConfig()
    target = velocity_target(x0, noise)
    assert flow_loss(target, x0, noise, t, MOD, fm, cfg).total == 0
    # errors on padding or on clean (t = 0) tokens carry no loss
    pred = target.clone()
    pred[:, 6:, 3] += 10.0
    t_clean = t.clone()
    t_clean[0, 6:] = 0.0
    pred[0, 6:] += 3.0
    assert flow_loss(pred, x0, noise, t_clean, MOD, fm, cfg).total == 0
    # per-modality means: an error of 1 on every real video element gives video loss 1
    pred = target.clone()
    pred[:, :6] += 1.0
    loss = flow_loss(pred, x0, noise, t, MOD, fm, FlowConfig(video_weight=2.0))
    assert loss.video.item() == pytest.approx(1.0) and loss.audio.item() == 0
    assert loss.total.item() == pytest.approx(2.0)
    assert flow_loss(pred, x0, noise, t, MOD, fm, FlowConfig(video_weight=0.0)).total == 0
    with pytest.raises(ShapeError):
        flow_loss(pred[:, :5], x0, noise, t, MOD, fm, cfg)


def test_per_sample_flow_loss_matches_flow_loss_on_each_sample() -> None:
    g = torch.Generator().manual_seed(3)
    x0, noise, pred = (torch.randn(4, 10, 4, generator=g) for _ in range(3))
    fm = torch.ones(10, 4, dtype=torch.bool)
    fm[6:, 3] = False
    t = torch.rand(4, 10, generator=g)
    t[1, :6] = 0.0  # sample 1 has no noisy video token: its video part is 0, not a mean over other samples
    t[2] = 0.0  # sample 2 is all clean
    cfg = FlowConfig(video_weight=2.0)
    per = per_sample_flow_loss(pred, x0, noise, t, MOD, fm, cfg)
    assert per.total.shape == per.video.shape == per.audio.shape == (4,)
    for b in range(4):
        one = flow_loss(pred[b : b + 1], x0[b : b + 1], noise[b : b + 1], t[b : b + 1], MOD, fm, cfg)
        for got, want in ((per.total[b], one.total), (per.video[b], one.video), (per.audio[b], one.audio)):
            assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
    assert per.video[1] == 0 and per.total[2] == 0
    with pytest.raises(ShapeError):
        per_sample_flow_loss(pred[:, :5], x0, noise, t, MOD, fm, cfg)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="clean_prob"):
        FlowConfig(clean_prob=1.5)
    with pytest.raises(ConfigError, match="weights"):
        FlowConfig(video_weight=0.0, audio_weight=0.0)
    with pytest.raises(ConfigError, match="shift"):
        FlowConfig(shift=0.0)


def test_training_loss_backpropagates_through_the_dit() -> None:
    spec = TokenSpec(video_channels=4, audio_channels=6)
    model = tiny_dit(spec, active=False)
    p = pack(
        spec, torch.randn(2, 4, 2, 4, 4), torch.randn(2, 6, 8), latent_times(2, 6.25), latent_times(8, 50.0)
    )
    text, mask = torch.randn(2, 3, 32), torch.ones(2, 3, dtype=torch.bool)
    seen = {}

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen["x"], seen["t"] = x, t
        return model(x, t, p.positions, p.modality, text, mask)

    fm = p.layout.feature_mask()
    loss = training_loss(fn, p.tokens, p.modality, fm, FlowConfig(), torch.Generator().manual_seed(0))
    assert loss.total.shape == loss.video.shape == (2,)  # one loss per sample
    loss.total.mean().backward()
    assert seen["t"].shape == (2, p.layout.num_tokens)
    assert torch.all(seen["x"][:, ~fm] == 0)  # noise is masked on padding
    # zero-initialised output: loss equals the target's mean square, and the output layer gets gradient
    assert loss.video.mean() > 0.5 and model.final.video.weight.grad.abs().sum() > 0


def test_training_loss_with_given_draws_is_the_per_sample_loss_of_that_path() -> None:
    """The trainer passes its own per-sample t and noise; the loss is then exactly the path's."""
    g = torch.Generator().manual_seed(4)
    x0, noise = torch.randn(3, 10, 6, generator=g), torch.randn(3, 10, 6, generator=g)
    modality = torch.tensor([0] * 6 + [1] * 4)
    fm = torch.ones(10, 6, dtype=torch.bool)
    fm[6:, 4:] = False
    cfg = FlowConfig(video_weight=2.0)
    t = sample_timesteps(cfg, modality, 3, g)
    w = torch.rand(3, 2, generator=g)

    def fn(x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        return 0.5 * x + tt[..., None]

    got = training_loss(fn, x0, modality, fm, cfg, t=t, noise=noise, sample_weights=w)
    masked = noise * fm
    expected = per_sample_flow_loss(fn(interpolate(x0, masked, t), t), x0, masked, t, modality, fm, cfg, w)
    assert torch.equal(got.total, expected.total) and got.total.shape == (3,)
