"""The JointDiT's blocks: what every block sees (``SequenceContext``), the joint block, the last layer.

A block is pre-norm self-attention over the whole joint sequence (multi-axis RoPE), an optional sync
bridge, cross-attention to text, optional timed cross-attention to phonemes, and an MLP, with per-token
adaLN-zero modulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from avgen.model.bridge import SyncBridge
from avgen.model.layers import (
    MLP,
    CrossAttention,
    Modalities,
    RMSNorm,
    SelfAttention,
    TimedCrossAttention,
    gate,
    modulate,
)
from avgen.tokens import AUDIO, VIDEO

if TYPE_CHECKING:
    from avgen.model.dit import DiTConfig


@dataclass
class SequenceContext:
    """What every block needs besides the tokens: RoPE angles, projected text, and which tokens are video and
    which audio."""

    rope: tuple[Tensor, Tensor]  # cos, sin: (B or 1, 1, L, head_dim) float32
    text: Tensor  # (B, Lt, D)
    text_mask: Tensor  # (B, Lt) bool
    modalities: Modalities  # which tokens are video and which audio
    runs: list[int] | None = None  # constant_runs: modulation is per run (B, S, .) instead of per token
    bridge_mask: Tensor | None = None  # (B or 1, 1, L, L) bool, when the blocks have a sync bridge
    speech: SpeechContext | None = None  # when the blocks read timed phonemes


@dataclass
class SpeechContext:
    """Embedded phonemes ``(B, P, D)``, the RoPE tables of the tokens' and the phonemes' times, and the
    window mask ``(B, 1, L, P)``."""

    states: Tensor
    rope_q: tuple[Tensor, Tensor]
    rope_k: tuple[Tensor, Tensor]
    mask: Tensor


class JointBlock(nn.Module):
    """Self-attention + cross-attention + MLP, with per-token adaLN-zero modulation."""

    def __init__(self, cfg: DiTConfig, per_modality: bool = False) -> None:
        super().__init__()
        d = cfg.width
        self.norm1 = RMSNorm(d, affine=False)
        self.attn = SelfAttention(d, cfg.heads, per_modality=per_modality)
        if cfg.bridge_window > 0:
            self.bridge = SyncBridge(d, cfg.bridge_heads, d // cfg.heads)
        self.norm_cross = RMSNorm(d)
        self.cross = CrossAttention(d, cfg.heads)
        if cfg.phonemes:
            self.norm_speech = RMSNorm(d)
            self.speech = TimedCrossAttention(d, cfg.heads)
        self.norm2 = RMSNorm(d, affine=False)
        hidden = int(d * cfg.mlp_ratio)
        self.mlps = nn.ModuleList(
            [MLP(d, hidden) for _ in range(2 if cfg.per_modality_mlp or per_modality else 1)]
        )
        if cfg.modulation == "block":
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        else:
            self.modulation_offset = nn.Parameter(torch.zeros(6 * d))

    def _mlp(self, h: Tensor, ctx: SequenceContext) -> Tensor:
        if len(self.mlps) == 1:
            return self.mlps[0](h)
        return ctx.modalities.apply(self.mlps[VIDEO], self.mlps[AUDIO], h)

    def forward(self, x: Tensor, c: Tensor, ctx: SequenceContext) -> Tensor:
        """``x (B, L, D)``; ``c`` is ``(B, S, D)`` ("block") or the shared ``(B, S, 6D)`` ("shared"), with
        S = L (per token) or one row per run of ``ctx.runs``."""
        mod = self.modulation(c) if hasattr(self, "modulation") else c + self.modulation_offset
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)  # each (B, S, D)
        runs = ctx.runs
        h = modulate(self.norm1(x), shift1, scale1, runs)
        x = x + gate(self.attn(h, ctx.rope, modalities=ctx.modalities), gate1, runs)
        if hasattr(self, "bridge"):
            x = x + self.bridge(x, ctx.rope, ctx.bridge_mask)
        x = x + self.cross(self.norm_cross(x), ctx.text, ctx.text_mask)
        if ctx.speech is not None:
            sp = ctx.speech
            x = x + self.speech(self.norm_speech(x), sp.states, sp.rope_q, sp.rope_k, sp.mask)
        x = x + gate(self._mlp(modulate(self.norm2(x), shift2, scale2, runs), ctx), gate2, runs)
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated norm, then one output projection per modality."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.width
        self.norm = RMSNorm(d, affine=False)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.video = nn.Linear(d, cfg.tokens.video_dim)
        self.audio = nn.Linear(d, cfg.tokens.audio_dim)
