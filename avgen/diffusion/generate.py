"""One call from packed geometry + text to generated packed tokens: task, guidance, schedule, sampler.

This is the model-side core of ``AVPipeline.__call__``: the pipeline encodes prompts and any given
media, packs them, calls ``generate_tokens``, and unpacks + decodes the result.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from avgen.diffusion.folded import check_guidance, folded_velocity, guidance_vector, reads_guidance
from avgen.diffusion.guidance import guided_velocity
from avgen.diffusion.samplers import (
    Callback,
    Generators,
    drop_idle,
    get_sampler,
    hold_given,
    ordered,
    schedule,
)
from avgen.diffusion.settings import SamplingConfig
from avgen.diffusion.tasks import given_mask, initial_state
from avgen.model.text import TextStates
from avgen.tokens import Packed

# (step index, token times (B, L) the step started from, state (B, L, F) after it) -> a new state or None
StepEnd = Callable[[int, Tensor, Tensor], Tensor | None]

__all__ = ["StepEnd", "check_guidance", "generate_tokens"]  # check_guidance: for AVPipeline.__call__


def generate_tokens(
    model: nn.Module,
    packed: Packed,
    cond: TextStates,
    uncond: TextStates | None = None,
    *,
    task: str = "t2av",
    seconds: float = 0.0,
    sampling: SamplingConfig | None = None,
    generator: Generators = None,
    callback: Callback | None = None,
    on_step: StepEnd | None = None,
) -> Tensor:
    """Sample packed tokens ``(B, L, F)`` float32 for the geometry of ``packed``.

    ``packed.tokens`` supplies the clean tokens of whatever ``task`` gives (the audio for "a2v", the
    video for "v2a", the first ``seconds`` for "continue"); for "t2av" its values are unused (only its
    shape, positions and layout). ``cond``: B prompts (or 1); ``uncond``: the empty or negative prompt.
    ``sampling``: steps, solver, schedule shift, guidance and sync scales, order (``SamplingConfig``;
    default: its defaults); sync guidance is ``guidance.guided_velocity``'s, the orders
    ``samplers.ordered``'s. With ``sampling.guidance`` "folded" each step is one forward of ``model`` on
    ``cond`` alone (``folded.folded_velocity``; ``uncond`` is unused), given the scales when the model reads
    them. Given tokens come back bit-for-bit unchanged (unless a step callback changes them).

    ``generator``: one for the batch, or a sequence of B: sample b then draws all its noise (the initial
    state, the null noise of sync guidance, a stochastic sampler's noise) from the b-th alone, so it comes
    out as it would in a batch of one. ``callback(i, x)`` and then ``on_step(i, t, x)`` run after each
    solver step ``i``, with ``t (B, L)`` the token times the step started from (1 = noise, 0 = clean); a
    Tensor either returns replaces the state.
    """
    s = sampling or SamplingConfig()
    layout = packed.layout
    batch = packed.tokens.shape[0]
    device = packed.tokens.device
    given = given_mask(task, layout, batch, packed.positions, seconds).to(device)
    x = initial_state(layout, batch, given, packed.tokens.float(), generator=generator, device=device)
    if s.guidance == "folded":
        scales = guidance_vector(s) if reads_guidance(model) else None
        velocity_fn = folded_velocity(model, packed.positions, packed.modality, cond, scales)
    else:
        null = None
        if s.video_sync or s.audio_sync:  # drawn after the initial noise: sync=0 keeps the same random stream
            null = initial_state(layout, batch, torch.zeros_like(given), generator=generator, device=device)
        velocity_fn = guided_velocity(
            model,
            packed.positions,
            packed.modality,
            cond,
            uncond,
            video_guidance=s.video_guidance,
            audio_guidance=s.audio_guidance,
            video_sync=s.video_sync,
            audio_sync=s.audio_sync,
            null=null,
        )
    timesteps = drop_idle(
        hold_given(ordered(schedule(s.steps, s.shift), layout.modality(), s.order).to(device), given)
    )

    def after_step(i: int, x: Tensor) -> Tensor:
        out = callback(i, x) if callback is not None else None
        x = out if isinstance(out, Tensor) else x
        out = on_step(i, timesteps[i], x) if on_step is not None else None
        return out if isinstance(out, Tensor) else x

    with torch.no_grad():
        return get_sampler(s.sampler)(velocity_fn, x, timesteps, generator=generator, callback=after_step)
