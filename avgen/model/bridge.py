"""The sync bridge: attention from each token to the other modality's tokens near it in time.

The joint self-attention can already relate a sound to the frames it belongs with, but it has to find them
among every token of the clip: at the start of training an audio token's attention is spread over all
video tokens, and the gradient that would teach "the impact sound goes where the ball meets the floor" is
diluted by their number. The bridge is a second, small attention in every block whose keys are only the
other modality's tokens within ``window`` seconds (and the token itself, so no row is empty), with the
same RoPE, so the relative time inside the window is seen. Its output projection starts at zero: a
bridged model starts as the same function as one without. MM-Diffusion's windowed cross-modal attention
and MMAudio's frame-aligned conditioning are the published relatives (``../shared/FIELD.md``).

Off by default (``bridge_window`` 0). On avgen-synth bounce video-to-audio (one seed each) a 0.125-s
window made the sound follow the frames by step 600, where the plain DiT did not yet, but by step 1200 the
plain DiT had caught up and was ahead on impact F1. On talk audio-to-video, a bridge grown onto
avgen-tiny's weights (``avgen.train.joint_parts.grow_dit``) is what makes the frames follow the sound:
without it swapping a clip's speech moves the drawn mouth by at most 0.001 px, with it the drawn mouths
open with the speech.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from avgen.model.layers import RMSNorm, SelfAttention


def bridge_mask(times: Tensor, modality: Tensor, window: float) -> Tensor:
    """Which key each query may attend to: ``(B or 1, 1, L, L)`` bool.

    ``times (L,)`` or ``(B, L)`` token times in seconds (``positions[..., 0]``), ``modality (L,)`` ids.
    True where the two tokens are of different modalities and at most ``window`` s apart, and on the
    diagonal (a token far from every token of the other modality then attends to itself alone).
    """
    if times.ndim == 1:
        times = times[None]
    near = (times[:, :, None] - times[:, None, :]).abs() <= window  # (B, L, L)
    other = modality[:, None] != modality[None, :]  # (L, L)
    eye = torch.eye(modality.shape[0], dtype=torch.bool, device=modality.device)
    return rearrange((near & other) | eye, "b q k -> b 1 q k")


class SyncBridge(nn.Module):
    """Cross-modal attention restricted to a time window: ``(B, L, D) -> (B, L, D)``.

    A pre-norm ``SelfAttention`` of ``heads`` heads of ``head_dim`` features (the main attention's, so its
    RoPE tables apply unchanged), masked by ``bridge_mask``.
    """

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim)
        self.attn = SelfAttention(dim, heads, head_dim)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], mask: Tensor) -> Tensor:
        """``x (B, L, D)``; ``rope`` as ``SelfAttention``'s; ``mask`` from ``bridge_mask``."""
        return self.attn(self.norm(x), rope, mask)
