"""Guidance folded into the model: the sampler's velocity from one forward of a guidance-distilled DiT.

A DiT distilled by ``avgen.train.distill`` gives from the conditional branch alone the velocity that its
teacher's guidance combines from several forwards (``guidance.guided_velocity``: text guidance on video
and audio, sync guidance). ``SamplingConfig(guidance="folded")`` then runs one forward per step. Its
scales and negative prompt are the ones it was distilled with, fixed, unless the DiT reads the scales
(``DiTConfig.guidance_embed``): then every forward gets ``guidance (B, 4)``, the ``GUIDANCE_SCALES`` of the
sampling settings, and they stay a knob (within the ranges it was distilled on).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avgen.diffusion.flow import VelocityFn
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import ConfigError
from avgen.model.dit import GUIDANCE_SCALES
from avgen.model.text import TextStates
from avgen.tokens import ShapeError


def reads_guidance(model: nn.Module) -> bool:
    """True for a DiT that takes its guidance scales as an input (``DiTConfig.guidance_embed``)."""
    return bool(getattr(getattr(model, "config", None), "guidance_embed", False))


def guidance_vector(sampling: SamplingConfig, batch: int = 1) -> Tensor:
    """``(batch, 4)`` float32: the ``GUIDANCE_SCALES`` of ``sampling``, one row per sample."""
    row = torch.tensor([float(getattr(sampling, name)) for name in GUIDANCE_SCALES])
    return row.expand(batch, -1).clone()


def folded_velocity(
    model: nn.Module,
    positions: Tensor,
    modality: Tensor,
    cond: TextStates,
    guidance: Tensor | None = None,
) -> VelocityFn:
    """A ``velocity_fn(x, t)`` for the samplers: one forward ``model(x, t, positions, modality, text, mask)``
    per call (plus ``phonemes=`` when the text states carry them, and ``guidance=`` when given).

    ``cond``: text of the B samples (or of 1, broadcast); ``guidance``: ``(B, 4)`` or ``(1, 4)`` scales for
    a DiT with ``guidance_embed`` (``guidance_vector``), None for one without.
    """

    def velocity_fn(x: Tensor, t: Tensor) -> Tensor:
        b = x.shape[0]
        if len(cond) not in (1, b):
            raise ShapeError(f"text states have batch {len(cond)}; expected 1 or {b} (the number of samples)")
        text = (cond.repeat(b) if len(cond) == 1 and b > 1 else cond).to(x.device)
        extra: dict[str, object] = {} if text.phonemes is None else {"phonemes": text.phonemes}
        if guidance is not None:
            if guidance.ndim != 2 or guidance.shape[0] not in (1, b):
                raise ShapeError(f"guidance must be (1, 4) or ({b}, 4) scales, got {tuple(guidance.shape)}")
            extra["guidance"] = guidance.to(x.device).expand(b, -1)
        return model(x, t, positions, modality, text.states, text.mask, **extra)

    return velocity_fn


def check_guidance(call: SamplingConfig, stored: SamplingConfig, reads_scales: bool) -> None:
    """A ConfigError when a call's sampling settings ask a pipeline's DiT for what it cannot do.

    ``stored``: the pipeline's own settings, whose ``guidance`` says how its DiT was trained: a call may
    not switch between "cfg" and "folded" (a folded DiT run with guidance branches would be guided twice,
    an undistilled one run folded not at all). A folded DiT keeps its distilled negative prompt, and its
    scales too unless ``reads_scales`` (``DiTConfig.guidance_embed``).
    """
    if call.guidance != stored.guidance:
        what = (
            "its DiT gives the guided velocity in one forward (guidance distilled into it); running the "
            "guidance branches on it would guide twice"
            if stored.guidance == "folded"
            else "its DiT was not guidance-distilled, so one forward is its unguided prediction (distill "
            "one as `avgen train configs/avgen-tiny/4_distill.yaml` does)"
        )
        raise ConfigError(
            f"guidance={call.guidance!r} on a pipeline with guidance={stored.guidance!r}: {what}"
        )
    if call.guidance != "folded":
        return
    fixed = ("negative_prompt",) if reads_scales else ("negative_prompt", *GUIDANCE_SCALES)
    if changed := [name for name in fixed if getattr(call, name) != getattr(stored, name)]:
        values = ", ".join(f"{name}={getattr(stored, name)!r}" for name in fixed)
        raise ConfigError(
            f"{', '.join(changed)}: this pipeline's guidance is folded into its DiT at {values}, which it "
            "cannot change (a DiT distilled with joint.model.dit.guidance_embed keeps the scales as a knob)"
        )
