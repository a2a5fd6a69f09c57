"""avgen-synth's pixel rules: which pixels of a frame are an object, and which are the talking face's mouth.

One rule for scoring (``avgen.metrics.synth``) and for training weights (through ``avgen.data.maps``):
the backdrop is the per-row median over time of a clip's two edge columns (every avgen-synth backdrop is a
vertical gradient), an object pixel differs from it by more than 0.12 (RGB on [0, 1]) in some channel,
and a mouth pixel lies within ``MOUTH_TOLERANCE`` of ``MOUTH_RGB``. NumPy versions work on uint8
``(..., H, W, 3)`` frames, torch versions on ``(B, 3, T, H, W)`` videos in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from avgen.data.synth.captions import MOUTH_RGB, MOUTH_TOLERANCE


def rgb01(video: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return video.astype(np.float32) / 255.0


def mouth_pixels(video: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., H, W) bool: pixels within 0.2 (RGB in [0, 1]) of the mouth colour."""
    return np.linalg.norm(rgb01(video) - np.asarray(MOUTH_RGB, np.float32), axis=-1) < MOUTH_TOLERANCE


def sampled_foreground(video: np.ndarray, frames_used: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames_used`` evenly spaced frames of uint8 ``video (T, H, W, 3)`` as float ``(F, H, W, 3)`` in
    [0, 1], their background ``(H, 3)`` (per-row median of the two edge columns over time) and the
    foreground mask ``(F, H, W)``: pixels more than 0.12 from that background in some channel."""
    idx = np.unique(np.linspace(0, len(video) - 1, frames_used).round().astype(int))
    frames = rgb01(video[idx])  # (F, H, W, 3)
    edges = np.concatenate([frames[:, :, :1], frames[:, :, -1:]], axis=2)  # (F, H, 2, 3)
    background = np.median(edges, axis=(0, 2))  # (H, 3)
    fg = np.abs(frames - background[None, :, None]).max(axis=-1) > 0.12  # (F, H, W)
    return frames, background, fg


def backdrop(video: Tensor) -> Tensor:
    """``(B, 3, H)``: the per-row backdrop of ``video (B, 3, T, H, W)``, the median over time of its two
    edge columns, as ``sampled_foreground`` takes it."""
    edges = torch.cat([video[..., :1], video[..., -1:]], dim=-1)  # (B, 3, T, H, 2)
    return rearrange(edges, "b c t h e -> b c h (t e)").median(dim=-1).values


def foreground_mask(video: Tensor, threshold: float = 0.24, reference: Tensor | None = None) -> Tensor:
    """``(B, T, H, W)`` bool: pixels of ``video (B, 3, T, H, W)`` in [-1, 1] more than ``threshold`` in
    some channel from the backdrop of ``reference`` (default ``video`` itself). The 0.12 of
    ``sampled_foreground`` on [0, 1] is 0.24 here."""
    ground = backdrop(video if reference is None else reference)
    return (video - rearrange(ground, "b c h -> b c 1 h 1")).abs().amax(dim=1) > threshold


def mouth_mask(video: Tensor) -> Tensor:
    """``(B, T, H, W)`` bool: pixels of ``video (B, 3, T, H, W)`` in [-1, 1] within 0.2 (RGB on [0, 1]) of
    the mouth colour, the rule ``mouth_pixels`` scores lip sync by."""
    rgb = torch.tensor(MOUTH_RGB, dtype=video.dtype, device=video.device)
    return ((video + 1) / 2 - rearrange(rgb, "c -> 1 c 1 1 1")).norm(dim=1) < MOUTH_TOLERANCE
