"""ODE samplers for the flow ``dx/dt = v(x, t)``, integrated from t = 1 (noise) down to t = 0 (data).

Each sampler is a pure function ``(velocity_fn, x, timesteps, generator, callback) -> x`` chosen by name
from ``SAMPLERS``. ``timesteps`` is ``(S + 1,)`` (one schedule for every token) or per token
``(S + 1, L)`` / ``(S + 1, B, L)``: a token whose time does not change between two steps (a "given"
token held at t = 0) is left exactly as it is, since every update is a multiple of ``t_next - t_cur``.
The solvers are deterministic but for ``euler_sde``, which draws fresh noise from ``generator``: one
``torch.Generator`` for the whole batch, or a sequence of B, one per sample (``draw_noise``), so that
each sample's noise is what its generator draws alone. ``callback(i, x)`` runs after step ``i``; a Tensor
it returns replaces the state.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
from einops import rearrange
from torch import Tensor

from avgen.diffusion.flow import VelocityFn, time_shift
from avgen.errors import ConfigError
from avgen.tokens import AUDIO, VIDEO, ShapeError

Callback = Callable[[int, Tensor], Tensor | None]
Generators = torch.Generator | Sequence[torch.Generator] | None


def draw_noise(
    shape: Sequence[int],
    generator: Generators,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard normal noise of ``shape`` ``(B, ...)`` on ``device``, drawn on each generator's own device.

    ``generator``: None (the global generator), one generator for the whole tensor, or a sequence of B
    generators, row b drawn from the b-th alone: it holds what that generator gives for a batch of one, so a
    sample's noise does not depend on the batch it is in. A sequence of another length is a ConfigError.
    """
    if generator is None or isinstance(generator, torch.Generator):
        on = generator.device if generator is not None else device
        return torch.randn(tuple(shape), generator=generator, device=on, dtype=dtype).to(device)
    gens = list(generator)
    if len(gens) != shape[0] or not all(isinstance(g, torch.Generator) for g in gens):
        raise ConfigError(
            f"generator: need one torch.Generator per sample, {shape[0]} in all; got {len(gens)} items"
        )
    row = (1, *shape[1:])
    return torch.cat([torch.randn(row, generator=g, device=g.device, dtype=dtype).to(device) for g in gens])


def schedule(steps: int, shift: float = 1.0) -> Tensor:
    """``steps + 1`` times from 1 to 0 (float32), uniform then shifted by ``time_shift(., shift)``."""
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if not shift > 0:
        raise ConfigError(f"schedule shift must be > 0, got {shift}")
    return time_shift(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift).float()


def hold_given(timesteps: Tensor, given: Tensor) -> Tensor:
    """Per-token schedule ``(S + 1, B, L)``: ``timesteps`` (``(S + 1,)``, or ``(S + 1, L)`` from ``ordered``)
    for free tokens, 0 where ``given (B, L)``."""
    ok = timesteps.ndim == 1 or (timesteps.ndim == 2 and timesteps.shape[1] == given.shape[-1])
    if not ok or given.ndim != 2 or given.dtype != torch.bool:
        raise ShapeError(
            "need timesteps (S+1,) or (S+1, L) and a bool given (B, L); got "
            f"{tuple(timesteps.shape)}, {tuple(given.shape)} {given.dtype}"
        )
    ts = timesteps.to(given.device)
    ts = rearrange(ts, "s -> s 1 1") if ts.ndim == 1 else rearrange(ts, "s l -> s 1 l")
    return torch.where(given, torch.zeros_like(ts), ts)


ORDERS = ("joint", "video_first", "audio_first")


def ordered(timesteps: Tensor, modality: Tensor, order: str) -> Tensor:
    """Per-token schedule ``(S' + 1, L)`` for the modality ids ``modality (L,)`` (``avgen.tokens.VIDEO`` /
    ``AUDIO``): "joint" gives every token ``timesteps (S + 1,)`` (S' = S); "video_first" runs the video
    tokens through all of ``timesteps`` while the audio tokens stay pure noise (t = 1), then the audio
    through all of it with the video finished and held (t = 0), so S' = 2 S; "audio_first" the other way
    round. The second modality is generated from the finished first one, as video-to-audio (or
    audio-to-video) would from a given clip, at twice the sampling cost.
    """
    if order not in ORDERS:
        raise ConfigError(f"unknown order {order!r}; choose one of {ORDERS}")
    if timesteps.ndim != 1 or modality.ndim != 1:
        raise ShapeError(
            f"need timesteps (S+1,) and modality (L,); got {tuple(timesteps.shape)}, {tuple(modality.shape)}"
        )
    ts = rearrange(timesteps, "s -> s 1").expand(-1, modality.shape[0])
    if order == "joint":
        return ts.clone()
    first = (modality == (VIDEO if order == "video_first" else AUDIO)).to(ts.device)
    first_pass = torch.where(first, ts, torch.ones_like(ts))  # the other modality waits at t = 1
    second_pass = torch.where(first, torch.zeros_like(ts[1:]), ts[1:])  # the first one is held finished
    return torch.cat([first_pass, second_pass])


def drop_idle(timesteps: Tensor) -> Tensor:
    """``timesteps (S + 1, ...)`` without the steps in which no token's time changes (each would cost a
    velocity evaluation and move nothing, e.g. a pass over a modality that is given). At least one step
    is kept."""
    moves = (timesteps[1:] != timesteps[:-1]).flatten(1).any(1)
    if not moves.any():
        return timesteps[:2]
    return timesteps[torch.cat([moves.new_ones(1), moves])]


def _check(x: Tensor, timesteps: Tensor) -> None:
    if x.ndim != 3:
        raise ShapeError(f"x must be (B, L, F) packed tokens, got {tuple(x.shape)}")
    b, seq = x.shape[:2]
    ok = timesteps.ndim == 1 or tuple(timesteps.shape[1:]) in ((seq,), (b, seq))
    if not ok or timesteps.shape[0] < 2:
        raise ShapeError(
            f"timesteps must be (S+1,), (S+1, {seq}) or (S+1, {b}, {seq}) with S >= 1, got {tuple(timesteps.shape)}"
        )
    if not torch.isfinite(timesteps).all() or timesteps.min() < 0 or timesteps.max() > 1:
        raise ShapeError("timesteps must be finite and in [0, 1]")
    if (timesteps[1:] > timesteps[:-1]).any():
        raise ShapeError("timesteps must not increase along the steps (they run from noise, 1, to data, 0)")


def _time(timesteps: Tensor, i: int, x: Tensor) -> Tensor:
    """Step ``i``'s times as ``(B, L)`` on x's device, float32 (float64 if the schedule is)."""
    dtype = torch.float64 if timesteps.dtype == torch.float64 else torch.float32
    return timesteps[i].to(device=x.device, dtype=dtype).expand(x.shape[:2])


def _col(t: Tensor) -> Tensor:
    return rearrange(t, "b l -> b l 1")


def _after_step(callback: Callback | None, i: int, x: Tensor) -> Tensor:
    """``x`` after ``callback(i, x)``: the Tensor it returns (same shape), or ``x`` for anything else."""
    if callback is None:
        return x
    out = callback(i, x)
    if not isinstance(out, Tensor):
        return x
    if out.shape != x.shape:
        raise ShapeError(f"a step callback returned a state of {tuple(out.shape)}; expected {tuple(x.shape)}")
    return out.to(device=x.device, dtype=x.dtype)


def euler(
    velocity_fn: VelocityFn,
    x: Tensor,
    timesteps: Tensor,
    generator: Generators = None,
    callback: Callback | None = None,
) -> Tensor:
    """First-order Euler: ``x <- x + (t_next - t_cur) v(x, t_cur)``."""
    _check(x, timesteps)
    for i in range(timesteps.shape[0] - 1):
        t_cur, t_next = _time(timesteps, i, x), _time(timesteps, i + 1, x)
        # Euler step.
        x = x + _col(t_next - t_cur) * velocity_fn(x, t_cur)
        x = _after_step(callback, i, x)
    return x


def heun(
    velocity_fn: VelocityFn,
    x: Tensor,
    timesteps: Tensor,
    generator: Generators = None,
    callback: Callback | None = None,
) -> Tensor:
    """Heun's second-order method (EDM Algorithm 1): Euler step, then the trapezoid correction.

    The last step is plain Euler, as in EDM, so the model is never asked for a velocity at t = 0 for a
    noisy token; so is any token's step that ends at t = 0 earlier (with an ``ordered`` schedule, the
    first modality's last step). Two velocity evaluations per step otherwise (one where no token is corrected).
    """
    _check(x, timesteps)
    steps = timesteps.shape[0] - 1
    for i in range(steps):
        t_cur, t_next = _time(timesteps, i, x), _time(timesteps, i + 1, x)
        h = _col(t_next - t_cur)
        d_cur = velocity_fn(x, t_cur)
        # Euler step.
        x_next = x + h * d_cur
        # 2nd order correction, for the tokens that stay noisy (t_next > 0).
        correct = (t_next > 0) & (t_next != t_cur)
        if i < steps - 1 and correct.any():
            d_next = velocity_fn(x_next, t_next)
            x_next = torch.where(_col(correct), x + h * (0.5 * d_cur + 0.5 * d_next), x_next)
        x = x_next
        x = _after_step(callback, i, x)
    return x


def adams_bashforth2(
    velocity_fn: VelocityFn,
    x: Tensor,
    timesteps: Tensor,
    generator: Generators = None,
    callback: Callback | None = None,
) -> Tensor:
    """Second-order Adams-Bashforth multistep, variable step: one velocity evaluation per step.

    ``x <- x + h_n ((1 + r/2) v_n - (r/2) v_{n-1})`` with ``r = h_n / h_{n-1}``; the first step is Euler
    (and so is any token whose previous step was 0, e.g. one that was held given).
    """
    _check(x, timesteps)
    v_prev, h_prev = None, None
    for i in range(timesteps.shape[0] - 1):
        t_cur, t_next = _time(timesteps, i, x), _time(timesteps, i + 1, x)
        h = _col(t_next - t_cur)
        v = velocity_fn(x, t_cur)
        if v_prev is None:
            # Euler step.
            x = x + h * v
        else:
            # Multistep: extrapolate the velocity linearly from the last two evaluations.
            r = torch.where(h_prev != 0, h / torch.where(h_prev != 0, h_prev, 1.0), 0.0)
            x = x + h * ((1 + 0.5 * r) * v - 0.5 * r * v_prev)
        v_prev, h_prev = v, h
        x = _after_step(callback, i, x)
    return x


def _log_snr(t: Tensor) -> Tensor:
    """``lambda_t = log(alpha_t / sigma_t) = log((1 - t) / t)`` of the rectified flow: -inf at t = 1, inf at 0."""
    return torch.log1p(-t) - torch.log(t)


def dpm_solver_2m(
    velocity_fn: VelocityFn,
    x: Tensor,
    timesteps: Tensor,
    generator: Generators = None,
    callback: Callback | None = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) for the rectified flow: one velocity evaluation per step.

    With ``alpha_t = 1 - t``, ``sigma_t = t``, ``lambda_t = log(alpha_t / sigma_t)`` and the data prediction
    ``x0 = x - t v``, the first-order update ``x <- (t_next / t) x + (1 - t_next / t) x0`` is exactly the
    Euler step; the second-order one replaces ``x0`` by ``(1 + 1 / 2r) x0 - (1 / 2r) x0_prev``, the data
    prediction extrapolated linearly in ``lambda`` (``r = h_prev / h``, ``h = lambda_next - lambda``), so
    ``x <- x + (t_next - t) v + (1 - t_next / t) (h / 2 h_prev) (x0 - x0_prev)``. A token's step is
    first order when its previous step does not count: the first step, the one after a step from t = 1
    (``h_prev`` infinite), a step to t = 0 (``h`` infinite; DPM-Solver's lower-order final step) and one
    after a step that did not move it (held given, or waiting at t = 1 in an ``ordered`` schedule). So from
    noise to data it differs from Euler from 4 steps on.
    """
    _check(x, timesteps)
    x0_prev, h_prev = None, None
    for i in range(timesteps.shape[0] - 1):
        t_cur, t_next = _time(timesteps, i, x), _time(timesteps, i + 1, x)
        v = velocity_fn(x, t_cur)
        x0 = x - _col(t_cur) * v
        moves = t_next != t_cur
        h = torch.where(moves, _log_snr(t_next) - _log_snr(t_cur), torch.zeros_like(t_cur))  # (B, L)
        # Euler step (first order).
        x_next = x + _col(t_next - t_cur) * v
        if x0_prev is not None:
            # 2nd-order multistep correction, where both this step and the previous one are finite in lambda.
            second = moves & torch.isfinite(h) & torch.isfinite(h_prev) & (h_prev > 0)
            ratio = torch.where(second, h / torch.where(second, h_prev, 1.0), 0.0) / 2  # 1 / 2r
            weight = torch.where(second, 1 - t_next / torch.where(second, t_cur, 1.0), 0.0)
            x_next = x_next + _col(weight * ratio).to(x.dtype) * (x0 - x0_prev)
        x = torch.where(_col(moves), x_next, x)
        x0_prev, h_prev = x0, h
        x = _after_step(callback, i, x)
    return x


def stochastic_euler(
    velocity_fn: VelocityFn,
    x: Tensor,
    timesteps: Tensor,
    generator: Generators = None,
    callback: Callback | None = None,
    eta: float = 0.5,
) -> Tensor:
    """Euler with fresh noise (DDIM-eta for the rectified flow), one velocity evaluation per step.

    From the model's estimates of the clean tokens ``x0 = x - t v`` and of their noise ``n = x + (1 - t) v``
    it steps to ``x <- (1 - t_next) x0 + t_next (sqrt(1 - eta^2) n + eta z)`` with ``z ~ N(0, I)`` drawn
    from ``generator`` (one, or one per sample). ``eta = 0`` is exactly Euler; a larger ``eta`` swaps more
    of the estimated noise for fresh noise each step, which lets an imperfect model correct its early
    mistakes at some cost in detail. A token whose time does not change (held given) stays exactly as it is.
    """
    if not 0.0 <= eta <= 1.0:
        raise ConfigError(f"eta must be in [0, 1], got {eta}")
    _check(x, timesteps)
    keep = math.sqrt(1.0 - eta * eta)
    for i in range(timesteps.shape[0] - 1):
        t_cur, t_next = _time(timesteps, i, x), _time(timesteps, i + 1, x)
        v = velocity_fn(x, t_cur)
        t_cur, t_next = _col(t_cur), _col(t_next)
        x0, noise = x - t_cur * v, x + (1 - t_cur) * v
        z = draw_noise(x.shape, generator, x.device, x.dtype)
        # Renoise the clean estimate to t_next with mostly the estimated and partly fresh noise.
        x = torch.where(t_next == t_cur, x, (1 - t_next) * x0 + t_next * (keep * noise + eta * z))
        x = _after_step(callback, i, x)
    return x


Sampler = Callable[..., Tensor]

SAMPLERS: dict[str, Sampler] = {
    "euler": euler,
    "heun": heun,
    "ab2": adams_bashforth2,
    "dpm2m": dpm_solver_2m,
    "euler_sde": functools.partial(stochastic_euler, eta=0.5),
}
DETERMINISTIC = ("euler", "heun", "ab2", "dpm2m")

# Velocity evaluations per step (Heun's last step is Euler, so it costs 2 * steps - 1 in all).
EVALS_PER_STEP = {"euler": 1, "heun": 2, "ab2": 1, "dpm2m": 1, "euler_sde": 1}


def get_sampler(name: str) -> Sampler:
    """The sampler called ``name``; an unknown name raises ConfigError listing the choices."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]
