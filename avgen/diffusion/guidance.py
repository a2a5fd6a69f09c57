"""Classifier-free guidance with one scale per modality, plus cross-modal "sync" guidance; one batched forward.

Text guidance: ``v = v_uncond + s * (v_cond - v_uncond)`` per token, ``s`` = the video scale on video
tokens and the audio scale on audio tokens. The unconditional branch is the same tokens with the text
replaced by the encoded empty (or negative) prompt; a given (clean) modality stays given in both branches.

Sync guidance (optional) adds ``c * (v_cond - v_cond_without_other)`` on one modality's tokens, where
"without other" replaces the other modality by pure noise at t = 1: the model was trained with
independent per-modality times (``FlowConfig.independent_prob``), so that branch is its prediction with
the other stream unknown, and the difference is what the other stream tells this one. ``audio_sync``
pushes the sound towards what the picture implies (impacts heard when seen: Foley, v2a); ``video_sync``
pushes the picture towards what the sound implies (mouths following speech: dubbing, a2v). Each nonzero
sync scale adds one branch of B samples to the forward.

Every scale is one number for the batch, or a ``(B,)`` tensor of one per sample (guidance distillation
draws them so; ``avgen.train.distill``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avgen.diffusion.flow import VelocityFn
from avgen.errors import ConfigError
from avgen.model.text import TextStates
from avgen.tokens import AUDIO, VIDEO, ShapeError

Scale = float | Tensor  # one number, or (B,) per sample


def modality_scale(modality: Tensor, video_scale: Scale, audio_scale: Scale) -> Tensor:
    """Per-token guidance scale from ``modality (L,)`` ids, float32: ``(L,)`` for two numbers, ``(B, L)``
    when either scale is a ``(B,)`` tensor of one per sample."""
    v = torch.as_tensor(video_scale, dtype=torch.float32, device=modality.device)
    a = torch.as_tensor(audio_scale, dtype=torch.float32, device=modality.device)
    if v.ndim == 0 and a.ndim == 0:
        return torch.where(modality == VIDEO, v, a)  # (L,)
    return torch.where(modality == VIDEO, v.reshape(-1, 1), a.reshape(-1, 1))  # (B, L)


def apply_guidance(cond: Tensor, uncond: Tensor, scale: Tensor) -> Tensor:
    """``uncond + scale * (cond - uncond)`` for ``cond, uncond (B, L, F)`` and ``scale (L,)`` or ``(B, L)``."""
    return uncond + scale[..., None].to(cond.dtype) * (cond - uncond)


def without_modality(
    x: Tensor, t: Tensor, modality: Tensor, drop: int, null: Tensor
) -> tuple[Tensor, Tensor]:
    """``x (B, L, F)``, ``t (B, L)`` with the tokens of modality id ``drop`` replaced by ``null (B, L, F)``
    noise at t = 1: the other stream as the model sees it before any denoising."""
    sel = modality.to(x.device) == drop  # (L,)
    x_out = torch.where(sel[None, :, None], null.to(device=x.device, dtype=x.dtype), x)
    t_out = torch.where(sel[None, :], torch.ones_like(t), t)
    return x_out, t_out


def guided_velocity(
    model: nn.Module,
    positions: Tensor,
    modality: Tensor,
    cond: TextStates,
    uncond: TextStates | None = None,
    video_guidance: Scale = 1.0,
    audio_guidance: Scale = 1.0,
    video_sync: Scale = 0.0,
    audio_sync: Scale = 0.0,
    null: Tensor | None = None,
) -> VelocityFn:
    """A ``velocity_fn(x, t)`` for the samplers, calling ``model(x, t, positions, modality, text, mask)``
    (plus ``phonemes=`` when the text states carry timed phonemes; the unconditional branch has none).

    ``cond``: text of the B samples (or of 1, broadcast); ``uncond``: the empty/negative prompt (1 or B).
    With both guidance scales 1 (or no ``uncond``) and no sync it returns the conditional velocity from a single
    forward; otherwise it runs the conditional, unconditional and sync branches as one batch.
    ``video_sync`` / ``audio_sync``: sync guidance scales (0 = off); they need ``null (B, L, F)``, the
    noise that stands in for the other modality (drawn once per generation, so sampling stays a pure
    function of its inputs). Each scale is a number or a ``(B,)`` tensor, one per sample; a branch runs
    when any sample needs it.
    """
    scales = {"video_guidance": video_guidance, "audio_guidance": audio_guidance}
    scales |= {"video_sync": video_sync, "audio_sync": audio_sync}
    for name, s in scales.items():
        if isinstance(s, Tensor):
            if s.ndim != 1 or not s.is_floating_point() or not torch.isfinite(s).all():
                raise ConfigError(f"{name} must be a number or a finite (B,) float tensor, got {s!r}")
        elif isinstance(s, bool) or not isinstance(s, int | float) or s != s:
            raise ConfigError(f"{name} must be a number, got {s!r}")
    per_sample = {name: s.shape[0] for name, s in scales.items() if isinstance(s, Tensor)}

    def differs(s: Scale, value: float) -> bool:
        return bool((s != value).any()) if isinstance(s, Tensor) else s != value

    guide = uncond is not None and (differs(video_guidance, 1.0) or differs(audio_guidance, 1.0))
    # (dropped modality, per-token scale (L,) or (B, L): the sync scale on the guided modality's tokens)
    syncs = [(AUDIO, modality_scale(modality, video_sync, 0.0))] if differs(video_sync, 0.0) else []
    syncs += [(VIDEO, modality_scale(modality, 0.0, audio_sync))] if differs(audio_sync, 0.0) else []
    if syncs and null is None:
        raise ConfigError("video_sync / audio_sync need null noise for the dropped modality (null=)")
    scale = modality_scale(modality, video_guidance, audio_guidance)

    def texts(batch: int) -> TextStates:
        parts = [cond, uncond] if guide else [cond]
        parts += [cond] * len(syncs)
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
        if wrong := {name: n for name, n in per_sample.items() if n != b}:
            raise ShapeError(f"per-sample guidance scales {wrong} must have one per sample, {b}")
        if b not in cache:
            cache[b] = texts(b).to(x.device)
        text = cache[b]
        extra = {} if text.phonemes is None else {"phonemes": text.phonemes}  # (models without keep working)
        if not guide and not syncs:
            return model(x, t, positions, modality, text.states, text.mask, **extra)
        if syncs and null.shape != x.shape:
            raise ShapeError(f"null noise must be {tuple(x.shape)} like the state, got {tuple(null.shape)}")
        xs, ts = [x, x] if guide else [x], [t, t] if guide else [t]
        for drop, _ in syncs:
            x_d, t_d = without_modality(x, t, modality, drop, null)
            xs.append(x_d)
            ts.append(t_d)
        v = model(torch.cat(xs), torch.cat(ts), positions, modality, text.states, text.mask, **extra)
        branches = v.chunk(len(xs))
        v_cond = branches[0]
        out = apply_guidance(v_cond, branches[1], scale.to(x.device)) if guide else v_cond
        for (_, sync_scale), v_drop in zip(syncs, branches[1 + guide :], strict=True):
            out = out + sync_scale.to(x.device)[..., None].to(out.dtype) * (v_cond - v_drop)
        return out

    return velocity_fn
