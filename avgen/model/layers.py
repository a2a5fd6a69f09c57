"""Transformer layers for the JointDiT: RMSNorm, multi-axis RoPE, attention, MLP, timestep embedding.

Everything here works per token: positions, timesteps and modulation all carry a sequence axis, so
video and audio tokens can sit at different noise levels in one forward pass. Attention goes through
``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on CUDA under bf16 autocast);
RoPE angles are always computed in float32, whatever the autocast dtype.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last axis, computed in float32; optional learned scale."""

    def __init__(self, dim: int, eps: float = 1e-6, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        return F.rms_norm(x.float(), (x.shape[-1],), weight, self.eps).to(x.dtype)


def rope_angles(
    positions: Tensor, axes_dim: tuple[int, ...], theta: float, scales: tuple[float, ...]
) -> Tensor:
    """RoPE angles for float positions.

    ``positions``: ``(B, L, A)`` or ``(L, A)``, one coordinate per axis (any real values).
    Axis ``a`` uses ``axes_dim[a]`` head features (even) with frequencies ``theta ** (-2i / d)`` applied to
    ``positions[..., a] * scales[a]``. Returns angles ``(B or 1, L, sum(axes_dim) / 2)`` float32.
    """
    pos = positions.double()
    if pos.ndim == 2:
        pos = pos[None]
    parts = []
    for a, (d, s) in enumerate(zip(axes_dim, scales)):
        freqs = theta ** (-torch.arange(0, d, 2, device=pos.device, dtype=torch.float64) / d)
        parts.append((pos[..., a : a + 1] * s) * freqs)  # (B, L, d/2)
    return torch.cat(parts, dim=-1).float()


def rope_tables(angles: Tensor) -> tuple[Tensor, Tensor]:
    """``angles (B, L, Dh/2)`` -> ``(cos, sin)``, each ``(B, 1, L, Dh)`` float32, for ``apply_rope``."""
    both = torch.cat([angles, angles], dim=-1)
    return rearrange(torch.cos(both), "b l d -> b 1 l d"), rearrange(torch.sin(both), "b l d -> b 1 l d")


def apply_rope(x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate ``x (B, H, L, Dh)``: feature ``i`` pairs with ``i + Dh/2`` (the "rotate half" layout).

    ``rope``: ``rope_tables(angles)``. Float32 math, x's dtype out.
    """
    cos, sin = rope
    y = x.float()
    y1, y2 = y.chunk(2, dim=-1)
    return (y * cos + torch.cat([-y2, y1], dim=-1) * sin).to(x.dtype)


@dataclass(frozen=True)
class Modalities:
    """Which tokens of a packed sequence are video and which audio: the ``(L,)`` bool masks, and ``split``,
    the number of leading video tokens when the sequence is all its video tokens and then all its audio
    tokens (as ``avgen.tokens.pack`` lays them out), else None. With ``split`` the per-modality layers slice
    instead of gathering and scattering by mask: the same values, in static shapes that ``torch.compile``
    keeps in one graph."""

    video: Tensor
    audio: Tensor
    split: int | None = None

    @classmethod
    def of(cls, modality: Tensor, video_id: int, audio_id: int) -> Modalities:
        """From a ``(L,)`` modality-id vector (``split`` reads three values back to the host)."""
        video, audio = modality == video_id, modality == audio_id
        n = int(video.sum())
        leading = bool(video[:n].all()) and bool(audio[n:].all())
        return cls(video, audio, n if leading else None)

    def apply(
        self, video_fn: Callable[[Tensor], Tensor], audio_fn: Callable[[Tensor], Tensor], x: Tensor
    ) -> Tensor:
        """``video_fn`` on the video tokens and ``audio_fn`` on the audio ones of ``x (B, L, D_in)``, back in
        place: ``(B, L, D_out)`` (zeros for a token of neither modality)."""
        if self.split is not None:
            # contiguous, as a gather would give: a matmul's last bits depend on its input's layout
            video, audio = x[:, : self.split].contiguous(), x[:, self.split :].contiguous()
            return torch.cat([video_fn(video), audio_fn(audio)], dim=1)
        hv, ha = video_fn(x[:, self.video]), audio_fn(x[:, self.audio])
        out = hv.new_zeros(*x.shape[:2], hv.shape[-1])
        out[:, self.video], out[:, self.audio] = hv, ha
        return out


class ByModality(nn.Module):
    """One module per modality (``parts[0]`` video, ``parts[1]`` audio), each applied to its own tokens:
    ``(B, L, D_in) -> (B, L, D_out)``, given the sequence's ``Modalities``."""

    def __init__(self, video: nn.Module, audio: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleList([video, audio])

    def forward(self, x: Tensor, modalities: Modalities) -> Tensor:
        return modalities.apply(self.parts[0], self.parts[1], x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the whole joint sequence with QK RMSNorm and RoPE.

    ``head_dim`` defaults to ``dim // heads``; a smaller ``heads * head_dim`` gives a narrower attention
    (the sync bridge's) that still uses the main attention's RoPE tables. ``per_modality``: video and audio
    tokens get their own input and output projections (``ByModality``), while attention still runs over
    the whole sequence; ``forward`` then needs the modality masks.
    """

    def __init__(self, dim: int, heads: int, head_dim: int | None = None, per_modality: bool = False) -> None:
        super().__init__()
        self.heads = heads
        head_dim = head_dim or dim // heads

        def linear(d_in: int, d_out: int) -> nn.Module:
            return (
                ByModality(nn.Linear(d_in, d_out), nn.Linear(d_in, d_out))
                if per_modality
                else nn.Linear(d_in, d_out)
            )

        self.qkv = linear(dim, 3 * heads * head_dim)
        self.q_norm = RMSNorm(head_dim)
        self.k_norm = RMSNorm(head_dim)
        self.proj = linear(heads * head_dim, dim)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        mask: Tensor | None = None,
        modalities: Modalities | None = None,
    ) -> Tensor:
        """``x (B, L, D)``, ``rope = rope_tables(angles)``, optional bool ``mask`` (True = attend),
        broadcastable to ``(B, H, L, L)``; ``modalities``: which tokens are video and audio (needed with
        ``per_modality``) -> ``(B, L, D)``."""
        split = isinstance(self.qkv, ByModality)
        if split and modalities is None:
            raise ValueError("a per-modality attention needs the video and audio token masks")
        qkv = self.qkv(x, modalities) if split else self.qkv(x)
        q, k, v = rearrange(qkv, "b l (three h d) -> three b h l d", three=3, h=self.heads)
        q = apply_rope(self.q_norm(q), rope)
        k = apply_rope(self.k_norm(k), rope)
        out = rearrange(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), "b h l d -> b l (h d)")
        return self.proj(out, modalities) if split else self.proj(out)


class CrossAttention(nn.Module):
    """Attention from the joint sequence to text states, honouring the text mask."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """``x (B, L, D)``, ``context (B, Lt, D)``, ``mask (B, Lt)`` bool (True = attend) -> ``(B, L, D)``.

        Every row of ``mask`` must have at least one True (an empty prompt still has its special tokens).
        """
        q = self.q_norm(rearrange(self.q(x), "b l (h d) -> b h l d", h=self.heads))
        k, v = rearrange(self.kv(context), "b s (two h d) -> two b h s d", two=2, h=self.heads)
        k = self.k_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=rearrange(mask, "b s -> b 1 1 s"))
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))


class TimedCrossAttention(nn.Module):
    """Attention from the joint sequence to timed conditioning tokens (phonemes) on the same time axis.

    Queries and keys are rotated by their own times (RoPE on the time features only), so a token's score
    for a phoneme depends on how far apart in seconds they are; a window mask keeps each token to the
    phonemes near it. One learned null key/value is always attendable: a token with no phoneme nearby (or a
    clip that says nothing) attends to it instead of to nothing; it sits at each token's own time, so the
    whole layer depends only on time differences.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        head_dim = dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = RMSNorm(head_dim)
        self.k_norm = RMSNorm(head_dim)
        self.null = nn.Parameter(torch.zeros(2, heads, head_dim))  # key, value
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        context: Tensor,
        rope_q: tuple[Tensor, Tensor],
        rope_k: tuple[Tensor, Tensor],
        mask: Tensor,
    ) -> Tensor:
        """``x (B, L, D)``, ``context (B, P, D)``, RoPE tables of the queries ``(B or 1, 1, L, Dh)`` and of
        the keys ``(B, 1, P, Dh)``, ``mask (B, 1, L, P)`` bool (True = attend) -> ``(B, L, D)``. Scores in
        float32; P is small (the phonemes of a clip), so this is plain attention rather than SDPA."""
        q = self.q_norm(rearrange(self.q(x), "b l (h d) -> b h l d", h=self.heads))
        k, v = rearrange(self.kv(context), "b p (two h d) -> two b h p d", two=2, h=self.heads)
        k = apply_rope(self.k_norm(k), rope_k)
        null_k, null_v = (rearrange(n, "h d -> 1 h 1 d") for n in self.null.unbind(0))
        scale = q.shape[-1] ** -0.5
        # The null key sits at each query's own time: with RoPE that is the unrotated dot product.
        null_score = (q.float() * self.k_norm(null_k).float()).sum(-1, keepdim=True) * scale  # (B, H, L, 1)
        score = torch.einsum("bhld,bhpd->bhlp", apply_rope(q, rope_q).float(), k.float()) * scale
        score = torch.cat([null_score, score.masked_fill(~mask, float("-inf"))], dim=-1)
        weights = score.softmax(dim=-1)  # (B, H, L, 1 + P); the null entry keeps every row finite
        out = weights[..., :1] * null_v.float() + torch.einsum("bhlp,bhpd->bhld", weights[..., 1:], v.float())
        return self.proj(rearrange(out.to(x.dtype), "b h l d -> b l (h d)"))


class MLP(nn.Module):
    """Two-layer GELU(tanh) MLP: ``(..., D) -> (..., D)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def constant_runs(t: Tensor, modality: Tensor, max_runs: int = 8) -> list[int] | None:
    """Lengths of the runs of consecutive tokens that share one modality and, in every sample, one ``t``.

    ``t (B, L)``, ``modality (L,)``. A text-to-audio-video batch has two runs (video, then audio); a
    continuation or audio-to-video batch a few more. Modulation then runs once per run, ``(B, S, D)``,
    instead of once per token. Returns None (keep per-token modulation) past ``max_runs`` runs.
    One host sync (the boundaries are read back to build the split sizes).
    """
    change = (modality[1:] != modality[:-1]) | (t[:, 1:] != t[:, :-1]).any(dim=0)  # (L - 1,)
    if int(change.sum()) + 1 > max_runs:
        return None
    bounds = [0, *(torch.nonzero(change).flatten() + 1).tolist(), t.shape[1]]
    return [b - a for a, b in itertools.pairwise(bounds)]


def run_starts(runs: list[int]) -> list[int]:
    """The first token index of each run: ``[0, 5, 9]`` for runs ``[5, 4, 2]``."""
    return [sum(runs[:i]) for i in range(len(runs))]


def modulate(x: Tensor, shift: Tensor, scale: Tensor, runs: list[int] | None = None) -> Tensor:
    """adaLN: ``x * (1 + scale) + shift`` for ``x (B, L, D)``.

    ``shift``/``scale`` are ``(B, L, D)`` per token (``runs=None``) or ``(B, S, D)`` per run of
    ``constant_runs``, broadcast over each run's tokens.
    """
    if runs is None:
        return torch.addcmul(shift, x, 1 + scale)
    parts = x.split(runs, dim=1)
    return torch.cat(
        [torch.addcmul(shift[:, i : i + 1], p, 1 + scale[:, i : i + 1]) for i, p in enumerate(parts)], dim=1
    )


def gate(x: Tensor, g: Tensor, runs: list[int] | None = None) -> Tensor:
    """``x * g`` for ``x (B, L, D)``, with ``g`` per token ``(B, L, D)`` or per run ``(B, S, D)``."""
    if runs is None:
        return x * g
    return torch.cat([p * g[:, i : i + 1] for i, p in enumerate(x.split(runs, dim=1))], dim=1)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of ``t`` (any shape, values in [0, 1]) scaled by 1000: ``(*t.shape, dim)`` float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[..., None] * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedder(nn.Module):
    """Per-token timestep ``(B, L)`` -> conditioning vectors ``(B, L, D)``."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim).to(self.mlp[0].weight.dtype))


class GuidanceEmbedder(nn.Module):
    """Per-sample guidance scales ``(B, K)`` -> conditioning vectors ``(B, D)``: an MLP on the raw scales
    (smooth in them, so scales between the trained ones interpolate), its output layer zero at init."""

    def __init__(self, dim: int, scales: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(scales, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, scales: Tensor) -> Tensor:
        return self.mlp(scales.to(self.mlp[0].weight.dtype))
