"""One call from packed geometry + text to generated packed tokens: task, guidance, schedule, sampler.

This is the model-side core of ``AVPipeline.__call__``: the pipeline encodes prompts and any given
media, packs them, calls ``generate_tokens``, and unpacks + decodes the result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avgen.diffusion.guidance import guided_velocity
from avgen.diffusion.samplers import Callback, drop_idle, get_sampler, hold_given, ordered, schedule
from avgen.diffusion.settings import SamplingConfig
from avgen.diffusion.tasks import given_mask, initial_state
from avgen.model.text import TextStates
from avgen.tokens import Packed


def generate_tokens(
    model: nn.Module,
    packed: Packed,
    cond: TextStates,
    uncond: TextStates | None = None,
    *,
    task: str = "t2av",
    seconds: float = 0.0,
    sampling: SamplingConfig | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Sample packed tokens ``(B, L, F)`` float32 for the geometry of ``packed``.

    ``packed.tokens`` supplies the clean tokens of whatever ``task`` gives (the audio for "a2v", the
    video for "v2a", the first ``seconds`` for "continue"); for "t2av" its values are unused (only its
    shape, positions and layout). ``cond``: B prompts (or 1); ``uncond``: the empty or negative prompt.
    ``sampling``: steps, solver, schedule shift, guidance and sync scales, order (``SamplingConfig``;
    default: its defaults); sync guidance is ``guidance.guided_velocity``'s, the orders
    ``samplers.ordered``'s. Given tokens come back bit-for-bit unchanged.
    """
    s = sampling or SamplingConfig()
    layout = packed.layout
    batch = packed.tokens.shape[0]
    device = packed.tokens.device
    given = given_mask(task, layout, batch, packed.positions, seconds).to(device)
    x = initial_state(layout, batch, given, packed.tokens.float(), generator=generator, device=device)
    null = None
    if s.video_sync or s.audio_sync:  # drawn after the initial noise, so sync=0 keeps the same random stream
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
    with torch.no_grad():
        return get_sampler(s.sampler)(velocity_fn, x, timesteps, generator=generator, callback=callback)
