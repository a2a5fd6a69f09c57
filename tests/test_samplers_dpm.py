"""DPM-Solver++(2M) for the rectified flow: each step against its closed form, its order, its first-order
steps, and per-token schedules (the shared sampler tests in test_samplers_closed_form.py cover the rest)."""

from __future__ import annotations

import math

import pytest
import torch

from avgen.diffusion.samplers import EVALS_PER_STEP, SAMPLERS, dpm_solver_2m, euler, ordered, schedule
from avgen.tokens import AUDIO, VIDEO

A, B = -0.7, 0.3


def linear_field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """v(x, t) = A x + B t, per token."""
    return A * x + B * t[..., None]


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _lam(t: float) -> float:
    return math.log((1 - t) / t)


def test_two_steps_closed_form() -> None:
    x = _x()
    ts = torch.tensor([0.9, 0.6, 0.2], dtype=torch.float64)
    v0 = A * x + B * 0.9
    x1 = x + (0.6 - 0.9) * v0  # first step: Euler
    v1 = A * x1 + B * 0.6
    x0_prev, x0 = x - 0.9 * v0, x1 - 0.6 * v1
    h_prev, h = _lam(0.6) - _lam(0.9), _lam(0.2) - _lam(0.6)
    r = h_prev / h
    d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev  # Lu et al. 2022, Algorithm 2
    x2 = (0.2 / 0.6) * x1 + (1 - 0.2 / 0.6) * d
    assert torch.allclose(dpm_solver_2m(linear_field, x, ts), x2, atol=1e-12, rtol=0)


def test_first_order_steps_are_euler() -> None:
    x = _x()
    # one step; the step after one from t = 1 (lambda = -inf); a last step to t = 0 (lambda = inf)
    for ts in ([0.9, 0.6], [1.0, 0.5, 0.25], [0.5, 0.0], [1.0, 0.0]):
        ts = torch.tensor(ts, dtype=torch.float64)
        assert torch.allclose(dpm_solver_2m(linear_field, x, ts), euler(linear_field, x, ts), atol=1e-12)
    # from t = 1 to 0 the first second-order step is the third of four: three steps are Euler's
    assert torch.allclose(dpm_solver_2m(linear_field, x, schedule(3)), euler(linear_field, x, schedule(3)))
    assert not torch.allclose(
        dpm_solver_2m(linear_field, x, schedule(4)), euler(linear_field, x, schedule(4))
    )


def test_convergence_order_2() -> None:
    c = 1.5
    x1 = _x()

    def err(solver, steps: int, hi: float, lo: float) -> float:  # dx/dt = c x from t = hi to t = lo
        ts = torch.linspace(hi, lo, steps + 1, dtype=torch.float64)
        return (solver(lambda x, t: c * x, x1, ts) - x1 * math.exp(-c * (hi - lo))).abs().max().item()

    ratios = [err(dpm_solver_2m, n, 0.9, 0.1) / err(dpm_solver_2m, 2 * n, 0.9, 0.1) for n in (8, 16, 32)]
    assert ratios[-1] == pytest.approx(4.0, rel=0.15), ratios
    # from noise to data its first-order ends cost accuracy, not the order: still far ahead of Euler
    assert err(dpm_solver_2m, 8, 1.0, 0.0) < 0.2 * err(euler, 8, 1.0, 0.0)


def test_a_modality_waiting_at_t1_then_starting_steps_first_order() -> None:
    # "video_first": audio waits at t = 1, then runs the schedule; its first moving step must be Euler-like
    modality = torch.tensor([VIDEO, VIDEO, VIDEO, AUDIO, AUDIO])
    ts = ordered(schedule(3).double(), modality, "video_first")  # (7, 5)
    x = _x()
    out = dpm_solver_2m(linear_field, x, ts)
    for i in range(5):  # each token follows its own schedule alone
        alone = dpm_solver_2m(linear_field, x[:, i : i + 1], ts[:, i])
        assert torch.allclose(out[:, i], alone[:, 0], atol=1e-12, rtol=0)
    assert torch.isfinite(out).all()


def test_registered_with_one_evaluation_per_step() -> None:
    calls = []

    def counted(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return linear_field(x, t)

    SAMPLERS["dpm2m"](counted, _x(), schedule(4))
    assert len(calls) == 4 == 4 * EVALS_PER_STEP["dpm2m"]
