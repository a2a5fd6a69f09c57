"""Pack video and audio latents into one token sequence, with explicit (t, h, w) position ids.

Video latents ``(B, Cv, T, H, W)`` are cut into spacetime patches ``(pt, ph, pw)``; audio latents
``(B, Ca, N)`` into groups of ``pa`` frames. Video tokens come first, then audio tokens. The two token
kinds have different feature sizes (``Cv*pt*ph*pw`` and ``Ca*pa``); the packed tensor is
``(B, L, F)`` with ``F = max`` of the two, the shorter kind zero-padded on the feature axis
(``TokenLayout.feature_mask`` says which features are real). Latent sizes that are not a multiple of
the patch are zero-padded before patching and cropped by ``unpack``, so ``unpack(pack(v, a)) == (v, a)``
exactly for any size.

Positions are floats: ``t`` in seconds on both modalities (the mean time of the latent frames a token
covers), ``h``/``w`` the patch row/column for video, and the constant ``audio_hw_offset`` (< 0) for
audio, so the same second of sound and picture share ``t`` and no audio id equals a video id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor
from torch.nn import functional as F

from avgen.errors import ConfigError, ShapeError

VIDEO = 0
AUDIO = 1
MODALITIES = ("video", "audio")


@dataclass(frozen=True)
class TokenSpec:
    """How latents become tokens: latent channel counts and patch sizes.

    ``video_patch`` is ``(pt, ph, pw)`` latent frames/rows/columns per token; ``audio_patch`` is the
    number of audio latent frames per token. ``audio_hw_offset`` is the h and w id of every audio token
    (negative, so it never equals a video patch index, which starts at 0).
    """

    video_channels: int = 16
    audio_channels: int = 32
    video_patch: tuple[int, int, int] = (1, 2, 2)
    audio_patch: int = 2
    audio_hw_offset: float = -1.0

    def __post_init__(self) -> None:
        if self.video_channels < 1 or self.audio_channels < 1:
            raise ConfigError(
                f"TokenSpec: latent channels must be >= 1, got video_channels={self.video_channels}, "
                f"audio_channels={self.audio_channels}"
            )
        if len(self.video_patch) != 3 or any(int(p) < 1 for p in self.video_patch):
            raise ConfigError(
                f"TokenSpec.video_patch must be 3 positive ints (pt, ph, pw), got {self.video_patch}"
            )
        if self.audio_patch < 1:
            raise ConfigError(f"TokenSpec.audio_patch must be >= 1, got {self.audio_patch}")
        if not self.audio_hw_offset < 0:
            raise ConfigError(
                f"TokenSpec.audio_hw_offset must be < 0 so audio ids never equal a video patch index "
                f"(>= 0), got {self.audio_hw_offset}"
            )

    @property
    def video_dim(self) -> int:
        """Features per video token: ``Cv * pt * ph * pw``."""
        return self.video_channels * math.prod(self.video_patch)

    @property
    def audio_dim(self) -> int:
        """Features per audio token: ``Ca * pa``."""
        return self.audio_channels * self.audio_patch

    @property
    def feature_dim(self) -> int:
        """Features per packed token: the larger of ``video_dim`` and ``audio_dim``."""
        return max(self.video_dim, self.audio_dim)


@dataclass(frozen=True)
class TokenLayout:
    """The geometry of one packed batch: enough to unpack it and to build per-token values."""

    spec: TokenSpec
    video_shape: tuple[int, int, int, int]  # (Cv, T, H, W) before padding
    audio_shape: tuple[int, int]  # (Ca, N) before padding
    video_grid: tuple[int, int, int]  # (T/pt, H/ph, W/pw) after padding
    audio_groups: int  # N/pa after padding

    @property
    def num_video(self) -> int:
        return math.prod(self.video_grid)

    @property
    def num_audio(self) -> int:
        return self.audio_groups

    @property
    def num_tokens(self) -> int:
        return self.num_video + self.num_audio

    def modality(self, device: torch.device | str | None = None) -> Tensor:
        """Modality id per token, ``(L,)`` int64: 0 (``VIDEO``) then 1 (``AUDIO``)."""
        ids = torch.full((self.num_tokens,), AUDIO, dtype=torch.long, device=device)
        ids[: self.num_video] = VIDEO
        return ids

    def per_token(self, video: float | Tensor, audio: float | Tensor) -> Tensor:
        """Spread a per-modality value over tokens.

        ``video``/``audio``: floats or ``(B,)`` tensors. Returns ``(L,)`` for floats, ``(B, L)`` otherwise.
        """
        v = torch.as_tensor(video, dtype=torch.float32)
        a = torch.as_tensor(audio, dtype=torch.float32)
        v, a = torch.broadcast_tensors(v, a)
        return torch.cat(
            [v[..., None].expand(*v.shape, self.num_video), a[..., None].expand(*a.shape, self.num_audio)],
            dim=-1,
        )

    def feature_mask(self, device: torch.device | str | None = None) -> Tensor:
        """``(L, F)`` bool: True where a packed feature is real, False on the zero padding."""
        f = torch.arange(self.spec.feature_dim, device=device)
        width = torch.where(self.modality(device) == VIDEO, self.spec.video_dim, self.spec.audio_dim)
        return f[None, :] < width[:, None]


@dataclass(frozen=True)
class Packed:
    """One packed batch: ``tokens (B, L, F)`` float, ``positions (L, 3)`` float32 (t seconds, h, w),
    ``modality (L,)`` int64, and the ``layout`` that ``unpack`` needs."""

    tokens: Tensor
    positions: Tensor
    modality: Tensor
    layout: TokenLayout


def latent_times(count: int, rate: float, offset: float = 0.0) -> Tensor:
    """Times in seconds of ``count`` latent frames at ``rate`` frames/s: ``offset + k / rate``, ``(count,)``.

    For the default causal video VAE (4x in time) at ``fps``: ``latent_times(T, fps / 4)``.
    For audio at 50 latents/s: ``latent_times(N, 50.0)``.
    """
    if count < 0 or not rate > 0 or not math.isfinite(rate):
        raise ShapeError(
            f"latent_times: need count >= 0 and a finite rate > 0, got count={count}, rate={rate}"
        )
    return offset + torch.arange(count, dtype=torch.float64).div(rate).float()


def _pad_to(n: int, p: int) -> int:
    return -n % p


def _group_times(times: Tensor, group: int, name: str, count: int) -> Tensor:
    """Mean time of each group of ``group`` consecutive frames (a short last group averages what it has)."""
    if times.shape != (count,):
        raise ShapeError(
            f"{name} must have shape ({count},) (one time per latent frame), got {tuple(times.shape)}"
        )
    times = times.detach().to(dtype=torch.float64, device="cpu")
    if not torch.isfinite(times).all():
        raise ShapeError(f"{name} contains NaN or inf")
    index = torch.arange(count) // group
    sums = torch.zeros(-(-count // group), dtype=torch.float64).index_add_(0, index, times)
    counts = torch.bincount(index).to(torch.float64)
    return (sums / counts).float()


def _check(spec: TokenSpec, video: Tensor, audio: Tensor) -> None:
    if video.ndim != 5:
        raise ShapeError(f"video latents must be (B, C, T, H, W), got shape {tuple(video.shape)}")
    if audio.ndim != 3:
        raise ShapeError(f"audio latents must be (B, C, N), got shape {tuple(audio.shape)}")
    if video.shape[0] != audio.shape[0]:
        raise ShapeError(f"video and audio batch sizes differ: {video.shape[0]} vs {audio.shape[0]}")
    if video.shape[1] != spec.video_channels:
        raise ShapeError(
            f"video latents have {video.shape[1]} channels; this model expects {spec.video_channels}"
        )
    if audio.shape[1] != spec.audio_channels:
        raise ShapeError(
            f"audio latents have {audio.shape[1]} channels; this model expects {spec.audio_channels}"
        )
    if min(video.shape[2:]) < 1 or audio.shape[2] < 1:
        raise ShapeError(
            f"latents must be non-empty, got video {tuple(video.shape)} and audio {tuple(audio.shape)}"
        )
    if not (video.is_floating_point() and audio.is_floating_point()):
        raise ShapeError(f"latents must be floating point, got {video.dtype} and {audio.dtype}")


def make_layout(spec: TokenSpec, video_shape: tuple[int, ...], audio_shape: tuple[int, ...]) -> TokenLayout:
    """Layout for latents of shape ``(Cv, T, H, W)`` and ``(Ca, N)`` (batch axis excluded)."""
    cv, t, h, w = video_shape
    ca, n = audio_shape
    pt, ph, pw = spec.video_patch
    pa = spec.audio_patch
    grid = ((t + _pad_to(t, pt)) // pt, (h + _pad_to(h, ph)) // ph, (w + _pad_to(w, pw)) // pw)
    return TokenLayout(spec, (cv, t, h, w), (ca, n), grid, (n + _pad_to(n, pa)) // pa)


def positions(layout: TokenLayout, video_times: Tensor, audio_times: Tensor) -> Tensor:
    """Position ids ``(L, 3)`` float32: (t in seconds, h, w); see the module docstring."""
    spec = layout.spec
    _, hp, wp = layout.video_grid
    vt = _group_times(video_times, spec.video_patch[0], "video_times", layout.video_shape[1])
    at = _group_times(audio_times, spec.audio_patch, "audio_times", layout.audio_shape[1])
    grid_t, grid_h, grid_w = torch.meshgrid(
        vt, torch.arange(hp).float(), torch.arange(wp).float(), indexing="ij"
    )
    video_ids = rearrange(torch.stack([grid_t, grid_h, grid_w]), "k t h w -> (t h w) k")
    audio_ids = torch.stack(
        [at, torch.full_like(at, spec.audio_hw_offset), torch.full_like(at, spec.audio_hw_offset)]
    )
    return torch.cat([video_ids, rearrange(audio_ids, "k n -> n k")]).contiguous()


def pack(spec: TokenSpec, video: Tensor, audio: Tensor, video_times: Tensor, audio_times: Tensor) -> Packed:
    """Pack ``video (B, Cv, T, H, W)`` and ``audio (B, Ca, N)`` latents into one sequence.

    ``video_times (T,)`` and ``audio_times (N,)`` give each latent frame's time in seconds (see
    ``latent_times``). Returns ``Packed`` with ``tokens (B, L, F)`` in the latents' dtype.
    """
    _check(spec, video, audio)
    layout = make_layout(spec, tuple(video.shape[1:]), tuple(audio.shape[1:]))
    pt, ph, pw = spec.video_patch
    pa = spec.audio_patch
    _, t, h, w = layout.video_shape
    v = F.pad(video, (0, _pad_to(w, pw), 0, _pad_to(h, ph), 0, _pad_to(t, pt)))
    a = F.pad(audio, (0, _pad_to(layout.audio_shape[1], pa)))
    dtype = torch.promote_types(video.dtype, audio.dtype)
    v_tok = rearrange(v, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw).to(dtype)
    a_tok = rearrange(a, "b c (n pa) -> b n (c pa)", pa=pa).to(dtype)
    fd = spec.feature_dim
    tokens = torch.cat(
        [F.pad(v_tok, (0, fd - spec.video_dim)), F.pad(a_tok, (0, fd - spec.audio_dim))], dim=1
    )  # (B, L, F)
    pos = positions(layout, video_times, audio_times).to(video.device)
    return Packed(tokens, pos, layout.modality(video.device), layout)


def unpack(tokens: Tensor, layout: TokenLayout) -> tuple[Tensor, Tensor]:
    """Exact inverse of ``pack``: ``tokens (B, L, F)`` -> ``video (B, Cv, T, H, W)``, ``audio (B, Ca, N)``."""
    spec = layout.spec
    if tokens.ndim != 3 or tokens.shape[1:] != (layout.num_tokens, spec.feature_dim):
        raise ShapeError(
            f"tokens must be (B, {layout.num_tokens}, {spec.feature_dim}) for this layout, got {tuple(tokens.shape)}"
        )
    pt, ph, pw = spec.video_patch
    tp, hp, wp = layout.video_grid
    _, t, h, w = layout.video_shape
    v_tok = tokens[:, : layout.num_video, : spec.video_dim]
    a_tok = tokens[:, layout.num_video :, : spec.audio_dim]
    video = rearrange(
        v_tok, "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)", t=tp, h=hp, w=wp, pt=pt, ph=ph, pw=pw
    )
    audio = rearrange(a_tok, "b n (c pa) -> b c (n pa)", pa=spec.audio_patch)
    return video[:, :, :t, :h, :w].contiguous(), audio[:, :, : layout.audio_shape[1]].contiguous()
