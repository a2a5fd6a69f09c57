"""Classifier-free guidance with one scale per modality, both branches in one batched forward.

``v = v_uncond + s * (v_cond - v_uncond)`` per token, ``s`` = the video scale on video tokens and the
audio scale on audio tokens. The unconditional branch is the same tokens with the text replaced by the
encoded empty (or negative) prompt; a given (clean) modality stays given in both branches.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avgen.diffusion.flow import VelocityFn
from avgen.errors import ConfigError
from avgen.model.text import TextStates
from avgen.tokens import VIDEO, ShapeError


def modality_scale(modality: Tensor, video_scale: float, audio_scale: float) -> Tensor:
    """Per-token guidance scale ``(L,)`` float32 from ``modality (L,)`` ids."""
    return torch.where(modality == VIDEO, float(video_scale), float(audio_scale)).float()


def apply_guidance(cond: Tensor, uncond: Tensor, scale: Tensor) -> Tensor:
    """``uncond + scale * (cond - uncond)`` for ``cond, uncond (B, L, F)`` and ``scale (L,)`` or ``(B, L)``."""
    return uncond + scale[..., None].to(cond.dtype) * (cond - uncond)


def guided_velocity(
    model: nn.Module,
    positions: Tensor,
    modality: Tensor,
    cond: TextStates,
    uncond: TextStates | None = None,
    video_scale: float = 1.0,
    audio_scale: float = 1.0,
) -> VelocityFn:
    """A ``velocity_fn(x, t)`` for the samplers, calling ``model(x, t, positions, modality, text, mask)``.

    ``cond``: text of the B samples (or of 1, broadcast); ``uncond``: the empty/negative prompt (1 or B).
    With both scales 1 (or no ``uncond``) it returns the conditional velocity from a single forward;
    otherwise it runs conditional and unconditional branches as one ``2B`` batch.
    """
    for name, s in (("video_scale", video_scale), ("audio_scale", audio_scale)):
        if not isinstance(s, int | float) or s != s:
            raise ConfigError(f"{name} must be a number, got {s!r}")
    guide = uncond is not None and (video_scale != 1.0 or audio_scale != 1.0)
    scale = modality_scale(modality, video_scale, audio_scale)

    def texts(batch: int) -> TextStates:
        parts = [cond, uncond] if guide else [cond]
        out = []
        for p in parts:
            if len(p) not in (1, batch):
                raise ShapeError(
                    f"text states have batch {len(p)}; expected 1 or {batch} (the number of samples)"
                )
            out.append(p.repeat(batch) if len(p) == 1 and batch > 1 else p)
        return TextStates.cat(out)

    cache: dict[int, TextStates] = {}

    def velocity_fn(x: Tensor, t: Tensor) -> Tensor:
        b = x.shape[0]
        if b not in cache:
            cache[b] = texts(b).to(x.device)
        text = cache[b]
        if not guide:
            return model(x, t, positions, modality, text.states, text.mask)
        v = model(torch.cat([x, x]), torch.cat([t, t]), positions, modality, text.states, text.mask)
        v_cond, v_uncond = v.chunk(2)
        return apply_guidance(v_cond, v_uncond, scale.to(x.device))

    return velocity_fn
