"""Conditioning tasks from one model: which tokens are given clean, and the starting state.

- ``t2av``: nothing given; text to audio + video.
- ``a2v``: the audio tokens are given (bring your own dialogue); video is generated.
- ``v2a``: the video tokens are given (Foley); audio is generated.
- ``continue``: every token whose time is before ``seconds`` is given (continuation of a clip).

Given tokens are held at t = 0 through sampling (``samplers.hold_given``), so they come out exactly as
they went in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from avgen.diffusion.samplers import Generators, draw_noise
from avgen.errors import ConfigError
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenLayout

TASKS = ("t2av", "a2v", "v2a", "continue")


def given_mask(
    task: str, layout: TokenLayout, batch: int, positions: Tensor | None = None, seconds: float = 0.0
) -> Tensor:
    """``(B, L)`` bool, True for tokens given clean. ``continue`` needs ``positions (L, 3)`` and ``seconds``."""
    modality = layout.modality()
    if task == "t2av":
        given = torch.zeros_like(modality, dtype=torch.bool)
    elif task == "a2v":
        given = modality == AUDIO
    elif task == "v2a":
        given = modality == VIDEO
    elif task == "continue":
        if positions is None or positions.shape != (layout.num_tokens, 3):
            raise ShapeError(f"task 'continue' needs positions ({layout.num_tokens}, 3)")
        if not seconds > 0:
            raise ConfigError(
                f"task 'continue' needs seconds > 0 (how much of the clip is given), got {seconds}"
            )
        given = positions[:, 0].cpu() < seconds
    else:
        raise ConfigError(f"unknown task {task!r}; choose one of {TASKS}")
    return given[None].expand(batch, -1).clone()


def initial_state(
    layout: TokenLayout,
    batch: int,
    given: Tensor,
    given_tokens: Tensor | None = None,
    generator: Generators = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The state at t = 1: standard normal noise ``(B, L, F)`` float32 (zero on padded features), with
    ``given_tokens (B, L, F)`` (packed clean latents) copied in where ``given (B, L)``. ``generator``: one
    for the batch, or B, sample b's noise drawn from the b-th alone (``samplers.draw_noise``)."""
    shape = (batch, layout.num_tokens, layout.spec.feature_dim)
    noise = draw_noise(shape, generator, device) * layout.feature_mask(device)
    if given.shape != shape[:2]:
        raise ShapeError(f"given must be {shape[:2]}, got {tuple(given.shape)}")
    if not given.any():
        return noise
    if given_tokens is None or given_tokens.shape != shape:
        got = None if given_tokens is None else tuple(given_tokens.shape)
        raise ShapeError(f"some tokens are given, so given_tokens {shape} is needed; got {got}")
    return torch.where(given.to(device)[..., None], given_tokens.to(device=device, dtype=noise.dtype), noise)
