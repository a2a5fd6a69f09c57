"""Samplers: each step against its closed form, convergence orders, per-token timesteps."""

from __future__ import annotations

import math

import pytest
import torch

from avgen.diffusion.samplers import (
    DETERMINISTIC,
    SAMPLERS,
    adams_bashforth2,
    euler,
    get_sampler,
    heun,
    hold_given,
    schedule,
    stochastic_euler,
)
from avgen.errors import ConfigError
from avgen.model import tiny_dit
from avgen.tokens import ShapeError, TokenSpec, latent_times, pack

A, B = -0.7, 0.3


def linear_field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """v(x, t) = A x + B t, per token."""
    return A * x + B * t[..., None]


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_schedule() -> None:
    s = schedule(4)
    assert s.tolist() == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    shifted = schedule(4, shift=3.0)
    assert shifted[0] == 1 and shifted[-1] == 0 and (shifted[1:-1] > s[1:-1]).all()
    with pytest.raises(ConfigError):
        schedule(0)


def test_euler_step_closed_form() -> None:
    x = _x()
    ts = torch.tensor([0.9, 0.6], dtype=torch.float64)
    out = euler(linear_field, x, ts)
    assert torch.allclose(out, x + (0.6 - 0.9) * (A * x + B * 0.9), atol=1e-12, rtol=0)


def test_heun_step_closed_form() -> None:
    x = _x()
    ts = torch.tensor([0.9, 0.6, 0.2], dtype=torch.float64)
    h0, h1 = -0.3, -0.4
    d0 = A * x + B * 0.9
    d1 = A * (x + h0 * d0) + B * 0.6
    x1 = x + h0 * (d0 + d1) / 2  # trapezoid correction on the first step
    x2 = x1 + h1 * (A * x1 + B * 0.6)  # the last step is Euler (EDM)
    assert torch.allclose(heun(linear_field, x, ts), x2, atol=1e-12, rtol=0)
    assert torch.allclose(heun(linear_field, x, ts[:2]), x + h0 * d0, atol=1e-12, rtol=0)


def test_ab2_step_closed_form() -> None:
    x = _x()
    ts = torch.tensor([0.9, 0.6, 0.2], dtype=torch.float64)
    h0, h1 = -0.3, -0.4
    v0 = A * x + B * 0.9
    x1 = x + h0 * v0
    v1 = A * x1 + B * 0.6
    r = h1 / h0
    x2 = x1 + h1 * ((1 + r / 2) * v1 - (r / 2) * v0)
    assert torch.allclose(adams_bashforth2(linear_field, x, ts), x2, atol=1e-12, rtol=0)


@pytest.mark.parametrize(("name", "order"), [("euler", 1), ("heun", 2), ("ab2", 2)])
def test_convergence_order_on_linear_ode(name: str, order: int) -> None:
    c = 1.5
    x1 = _x()
    exact = x1 * math.exp(-c)  # dx/dt = c x from t = 1 to t = 0

    def err(steps: int) -> float:
        out = SAMPLERS[name](lambda x, t: c * x, x1, schedule(steps).double())
        return (out - exact).abs().max().item()

    ratios = [err(n) / err(2 * n) for n in (8, 16, 32)]
    assert ratios[-1] == pytest.approx(2**order, rel=0.15), ratios


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_straight_paths_are_solved_exactly(name: str) -> None:
    # data = a single point mu: the flow's velocity is (x - mu) / t, a straight line to mu
    mu = torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)
    x = _x()
    out = get_sampler(name)(lambda x, t: (x - mu) / t[..., None], x, schedule(5, shift=2.0).double())
    assert torch.allclose(out, mu.expand_as(out), atol=1e-9)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_per_token_schedules_follow_each_token(name: str) -> None:
    x = _x()
    g = torch.Generator().manual_seed(3)
    # each token gets its own decreasing schedule from (S+1, B, L) random steps
    steps = torch.rand(4, 2, 5, generator=g, dtype=torch.float64) + 0.1
    ts = torch.cat([torch.ones(1, 2, 5, dtype=torch.float64), 1 - steps.cumsum(0) / steps.sum(0)])
    out = SAMPLERS[name](linear_field, x, ts)
    for b in range(2):
        for i in range(5):
            alone = SAMPLERS[name](linear_field, x[b : b + 1, i : i + 1], ts[:, b, i])
            assert torch.allclose(out[b, i], alone[0, 0], atol=1e-12, rtol=0)
    # a per-token schedule with equal rows equals the shared one
    shared = schedule(4).double()
    assert torch.equal(
        SAMPLERS[name](linear_field, x, shared[:, None, None].expand(5, 2, 5)),
        SAMPLERS[name](linear_field, x, shared),
    )


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_given_tokens_stay_exactly_unchanged(name: str) -> None:
    spec = TokenSpec(video_channels=4, audio_channels=6)
    model = tiny_dit(spec).eval()
    g = torch.Generator().manual_seed(0)
    p = pack(
        spec,
        torch.randn(2, 4, 3, 4, 4, generator=g),
        torch.randn(2, 6, 12, generator=g),
        latent_times(3, 6.25),
        latent_times(12, 50.0),
    )
    text, mask = torch.randn(2, 4, 32, generator=g), torch.ones(2, 4, dtype=torch.bool)
    given = torch.zeros(2, p.layout.num_tokens, dtype=torch.bool)
    given[0, p.layout.num_video :] = True  # sample 0: audio given
    given[1, : p.layout.num_video] = True  # sample 1: video given
    x = torch.where(given[..., None], p.tokens, torch.randn(p.tokens.shape, generator=g))
    seen = []

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return model(x, t, p.positions, p.modality, text, mask)

    with torch.no_grad():
        out = SAMPLERS[name](fn, x, hold_given(schedule(4), given))
    assert torch.equal(out[given], p.tokens[given])
    assert not torch.allclose(out[~given], x[~given])
    assert all(torch.all(t[given] == 0) for t in seen)  # the model saw given tokens as clean


def test_bad_timesteps_raise() -> None:
    x = _x()
    with pytest.raises(ShapeError, match="increase"):
        euler(linear_field, x, torch.tensor([0.2, 0.5]))
    with pytest.raises(ShapeError, match="S\\+1"):
        euler(linear_field, x, torch.ones(3, 7))
    with pytest.raises(ShapeError, match=r"\[0, 1\]"):
        euler(linear_field, x, torch.tensor([1.5, 0.0]))
    with pytest.raises(ConfigError, match="unknown sampler"):
        get_sampler("dpm++")


def test_callback_sees_every_step() -> None:
    calls = []
    euler(linear_field, _x(), schedule(3), callback=lambda i, x: calls.append(i))
    assert calls == [0, 1, 2]


def test_stochastic_euler_is_euler_at_eta_0_and_seeded_otherwise() -> None:
    x, ts = _x(), schedule(6).double()
    assert torch.allclose(
        stochastic_euler(linear_field, x, ts, eta=0.0), euler(linear_field, x, ts), atol=1e-12
    )

    def run(seed: int) -> torch.Tensor:
        return SAMPLERS["euler_sde"](linear_field, x, ts, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(1), run(1)) and not torch.allclose(run(1), run(2))
    with pytest.raises(ConfigError, match="eta"):
        stochastic_euler(linear_field, x, ts, eta=1.5)
    # a token held at t > 0 is not renoised either
    held = torch.full((3, 2, 5), 0.5, dtype=torch.float64)
    assert torch.equal(stochastic_euler(linear_field, x, held), x)
