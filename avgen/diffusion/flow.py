"""Rectified flow: the probability path, the velocity target, per-token timestep sampling, and the loss.

Path ``x_t = (1 - t) x_0 + t * noise`` (t = 0 clean data, t = 1 pure noise), velocity target
``noise - x_0``. Timesteps are per token ``(B, L)``: by default one t per sample shared by all tokens;
with probability ``independent_prob`` each modality draws its own t; with probability ``clean_prob`` one
modality (chosen at random, or always ``clean_modality``) is set to t = 0, "given clean", which teaches
audio-to-video and video-to-audio in the same model. Clean tokens carry no loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange, reduce
from torch import Tensor

from avgen.errors import ConfigError
from avgen.tokens import AUDIO, VIDEO, ShapeError

VelocityFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class FlowConfig:
    """Training-time settings of the flow.

    t ~ logit-normal(``logit_mean``, ``logit_std``), then shifted by ``time_shift`` with
    ``shift`` (times ``sqrt(L / reference_tokens)`` when ``reference_tokens`` is set, so longer
    sequences see more noise). ``uniform_prob``: the share of samples whose times are drawn uniformly
    in [0, 1) instead; logit-normal(0, 1) alone almost never draws t > 0.95 (0.2 %), where sampling starts.
    ``clean_modality``: which modality a "given clean" sample gives: None picks one at random per sample;
    "video" always gives the frames (with ``clean_prob`` 1: a video-to-audio / Foley specialist), "audio"
    always gives the sound (audio-to-video / dubbing).
    """

    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 1.0
    reference_tokens: int | None = None
    independent_prob: float = 0.3
    clean_prob: float = 0.1
    uniform_prob: float = 0.0
    clean_modality: str | None = None
    video_weight: float = 1.0
    audio_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("independent_prob", "clean_prob", "uniform_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"FlowConfig.{name} must be in [0, 1], got {p}")
        if not (self.logit_std > 0 and self.shift > 0):
            raise ConfigError(
                f"FlowConfig: logit_std and shift must be > 0, got {self.logit_std}, {self.shift}"
            )
        if self.clean_modality not in (None, "video", "audio"):
            raise ConfigError(
                f"FlowConfig.clean_modality must be null, 'video' or 'audio', got {self.clean_modality!r}"
            )
        if self.reference_tokens is not None and self.reference_tokens < 1:
            raise ConfigError(
                f"FlowConfig.reference_tokens must be >= 1 or null, got {self.reference_tokens}"
            )
        if min(self.video_weight, self.audio_weight) < 0 or self.video_weight + self.audio_weight == 0:
            raise ConfigError(
                f"FlowConfig: loss weights must be >= 0 and not both 0, got video_weight={self.video_weight}, "
                f"audio_weight={self.audio_weight}"
            )

    def shift_for(self, num_tokens: int) -> float:
        """The shift used for a sequence of ``num_tokens`` tokens."""
        if self.reference_tokens is None:
            return self.shift
        return self.shift * math.sqrt(num_tokens / self.reference_tokens)


def time_shift(t: Tensor, shift: float) -> Tensor:
    """SD3's shift ``s t / (1 + (s - 1) t)``: maps [0, 1] onto itself, s > 1 moves mass towards noise."""
    return shift * t / (1 + (shift - 1) * t)


def interpolate(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """``x_t = (1 - t) x0 + t noise`` for ``x0, noise (B, L, F)`` and per-token ``t (B, L)``."""
    tt = rearrange(t, "b l -> b l 1").to(x0.dtype)
    return (1 - tt) * x0 + tt * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The rectified-flow velocity ``d x_t / d t = noise - x0``."""
    return noise - x0


def sample_timesteps(
    cfg: FlowConfig, modality: Tensor, batch: int, generator: torch.Generator | None = None
) -> Tensor:
    """Per-token training timesteps ``(B, L)`` float32 in [0, 1) for tokens with ``modality (L,)`` ids."""
    device = modality.device
    gen_device = generator.device if generator is not None else device

    def draw(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator, device=gen_device).to(device)

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=gen_device).to(device)

    shift = cfg.shift_for(modality.shape[0])
    t = time_shift(torch.sigmoid(cfg.logit_mean + cfg.logit_std * draw(batch, 2)), shift)  # (B, 2)
    if cfg.uniform_prob > 0:  # (no draws otherwise: a run without it keeps its random streams)
        flat = uniform(batch) < cfg.uniform_prob
        t = torch.where(flat[:, None], uniform(batch, 2), t)
    independent = uniform(batch) < cfg.independent_prob
    t[:, AUDIO] = torch.where(independent, t[:, AUDIO], t[:, VIDEO])
    clean = uniform(batch) < cfg.clean_prob
    which = (uniform(batch) < 0.5).long()  # modality given clean, when ``clean``
    if cfg.clean_modality is not None:  # (drawn all the same: the stream does not depend on it)
        which = torch.full_like(which, VIDEO if cfg.clean_modality == "video" else AUDIO)
    t[clean, which[clean]] = 0.0
    return t[:, modality.long()]  # (B, L)


@dataclass(frozen=True)
class FlowLoss:
    """``total`` is what to backpropagate; ``video``/``audio`` are the per-modality MSEs (detached)."""

    total: Tensor
    video: Tensor
    audio: Tensor


def flow_loss(
    pred: Tensor,
    x0: Tensor,
    noise: Tensor,
    t: Tensor,
    modality: Tensor,
    feature_mask: Tensor,
    cfg: FlowConfig,
) -> FlowLoss:
    """Weighted per-modality MSE between ``pred`` and the velocity target, over noisy tokens only.

    ``pred, x0, noise (B, L, F)``; ``t (B, L)``; ``modality (L,)``; ``feature_mask (L, F)`` bool (the real
    features, ``TokenLayout.feature_mask``). Each modality's MSE is a mean over its own noisy
    elements, so loss scale does not depend on how many tokens each modality has. A modality with no
    noisy token in the batch contributes 0.
    """
    _same_shape(pred, x0, noise)
    return _masked_mse(pred, velocity_target(x0, noise), t, modality, feature_mask, cfg, "b l f -> ")


def per_sample_flow_loss(
    pred: Tensor,
    x0: Tensor,
    noise: Tensor,
    t: Tensor,
    modality: Tensor,
    feature_mask: Tensor,
    cfg: FlowConfig,
    sample_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> FlowLoss:
    """``flow_loss`` of each sample on its own, in one pass: ``total, video, audio (B,)``.

    ``per_sample_flow_loss(...).total[b] == flow_loss(pred[b:b+1], ...).total`` (shapes as ``flow_loss``);
    the joint trainer averages these, so each sample weighs the same whatever its count of noisy tokens.
    ``sample_weights (B, 2)``: per-sample factors on the (video, audio) terms of ``total``, on top of
    ``cfg``'s weights (e.g. per-family loss weights). ``token_weights (B, L)``: per-token factors on each
    element's squared error in ``total`` (e.g. ``avgen.train.foreground``'s, mean 1 over a sample's video
    tokens, which keeps the loss's scale). ``video`` and ``audio`` stay unweighted.
    """
    _same_shape(pred, x0, noise)
    target = velocity_target(x0, noise)
    return per_sample_velocity_loss(
        pred, target, t, modality, feature_mask, cfg, sample_weights, token_weights
    )


def per_sample_velocity_loss(
    pred: Tensor,
    target: Tensor,
    t: Tensor,
    modality: Tensor,
    feature_mask: Tensor,
    cfg: FlowConfig,
    sample_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> FlowLoss:
    """``per_sample_flow_loss`` against any velocity ``target (B, L, F)`` instead of ``noise - x0``
    (e.g. a teacher's guided velocity, ``avgen.train.distill``); the same masks, weights and shapes."""
    if sample_weights is not None and sample_weights.shape != (target.shape[0], 2):
        raise ShapeError(
            f"sample_weights must be (B, 2) = {(target.shape[0], 2)}, got {tuple(sample_weights.shape)}"
        )
    if token_weights is not None and token_weights.shape != target.shape[:2]:
        raise ShapeError(
            f"token_weights must be (B, L) = {tuple(target.shape[:2])}, got {tuple(token_weights.shape)}"
        )
    return _masked_mse(
        pred, target, t, modality, feature_mask, cfg, "b l f -> b", sample_weights, token_weights
    )


def _same_shape(pred: Tensor, x0: Tensor, noise: Tensor) -> None:
    if pred.shape != x0.shape or noise.shape != x0.shape or pred.ndim != 3:
        raise ShapeError(
            f"pred, x0, noise must share one (B, L, F) shape, got {pred.shape}, {x0.shape}, {noise.shape}"
        )


def _masked_mse(
    pred: Tensor,
    target: Tensor,
    t: Tensor,
    modality: Tensor,
    feature_mask: Tensor,
    cfg: FlowConfig,
    keep: str,
    sample_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> FlowLoss:
    """Per-modality MSE of ``pred`` against ``target`` over noisy real features, summed by the einops
    ``keep`` pattern; ``sample_weights (B, 2)`` scale each sample's (video, audio) part of the total and
    ``token_weights (B, L)`` each token's squared error in it (``keep`` must then keep ``b``); the returned
    MSEs are unweighted."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ShapeError(f"pred and target must share one (B, L, F) shape, got {pred.shape}, {target.shape}")
    shape = target.shape
    if t.shape != shape[:2] or feature_mask.shape != shape[1:] or modality.shape != shape[1:2]:
        raise ShapeError(
            f"t must be {tuple(shape[:2])}, modality {tuple(shape[1:2])}, feature_mask "
            f"{tuple(shape[1:])}; got {tuple(t.shape)}, {tuple(modality.shape)}, {tuple(feature_mask.shape)}"
        )
    err = (pred.float() - target.float()).pow(2)  # (B, L, F)
    noisy = rearrange(t > 0, "b l -> b l 1") & feature_mask  # (B, L, F)
    scaled = err if token_weights is None else err * rearrange(token_weights.float(), "b l -> b l 1")
    parts, weighted = [], []
    for m in (VIDEO, AUDIO):
        sel = noisy & rearrange(modality == m, "l -> 1 l 1")  # (B, L, F)
        count = reduce(sel.float(), keep, "sum").clamp(min=1)
        parts.append(reduce(err * sel, keep, "sum") / count)
        weighted.append(parts[-1] if token_weights is None else reduce(scaled * sel, keep, "sum") / count)
    video, audio = cfg.video_weight * weighted[VIDEO], cfg.audio_weight * weighted[AUDIO]
    if sample_weights is not None:
        video, audio = video * sample_weights[:, 0], audio * sample_weights[:, 1]
    total = video + audio
    return FlowLoss(total, parts[VIDEO].detach(), parts[AUDIO].detach())


def training_loss(
    velocity_fn: VelocityFn,
    x0: Tensor,
    modality: Tensor,
    feature_mask: Tensor,
    cfg: FlowConfig,
    generator: torch.Generator | None = None,
    *,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    sample_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> FlowLoss:
    """The flow-matching training loss of each sample: ``total, video, audio (B,)``; backpropagate
    ``total.mean()``, so each sample weighs the same whatever its count of noisy tokens.

    ``x0 (B, L, F)`` clean packed tokens. Per-token ``t (B, L)`` and ``noise (B, L, F)`` are drawn from
    ``generator`` unless given (a trainer that seeds each sample on its own draws them itself, with
    ``sample_timesteps``). Noise is masked to the real features, so padding stays zero in ``x_t``; then
    ``pred = velocity_fn(x_t, t)`` and ``per_sample_flow_loss`` (``sample_weights (B, 2)`` and
    ``token_weights (B, L)`` as there).
    """
    if t is None:
        t = sample_timesteps(cfg, modality, x0.shape[0], generator)
    if noise is None:
        gen_device = generator.device if generator is not None else x0.device
        noise = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=x0.dtype).to(x0.device)
    noise = noise * feature_mask
    pred = velocity_fn(interpolate(x0, noise, t), t)
    return per_sample_flow_loss(
        pred, x0, noise, t, modality, feature_mask, cfg, sample_weights, token_weights
    )
