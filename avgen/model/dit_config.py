"""The JointDiT's settings (``DiTConfig``) and its named presets (``dit_config``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from avgen.config import from_dict, to_dict
from avgen.errors import ConfigError
from avgen.model.presets import PRESETS
from avgen.tokens import TokenSpec

MODULATIONS = ("block", "shared")
PREDICTIONS = ("v", "x")
# The columns of ``JointDiT.forward``'s ``guidance (B, 4)``: the ``SamplingConfig`` scales of the same names.
GUIDANCE_SCALES = ("video_guidance", "audio_guidance", "video_sync", "audio_sync")


@dataclass(frozen=True)
class DiTConfig:
    """JointDiT settings.

    ``rope_axes`` splits each head's features between the (t, h, w) axes (each even, summing to
    ``width // heads``). ``rope_time_scale`` converts seconds to RoPE units on the t axis: at 25, tokens
    40 ms apart are one unit apart (the fastest RoPE frequency turns one radian per unit).
    ``modulation``: "block" gives each block its own adaLN linear (DiT); "shared" computes one per-token
    modulation for all blocks plus a learned per-block offset (PixArt-alpha's adaLN-single: fewer
    parameters and FLOPs). ``per_modality_mlp`` gives video and audio tokens separate MLPs.
    ``bridge_window`` > 0 adds a sync bridge to every block (``avgen.model.bridge``): ``bridge_heads``
    heads of attention from each token to the other modality's tokens within that many seconds.
    ``prediction``: what the network's last layer outputs, "v" the flow velocity or "x" the clean tokens
    (JiT's x-prediction); ``forward`` returns the velocity either way, from an "x" output as
    ``(x_t - x0_hat) / max(t, prediction_min_t)``, so the loss and the samplers are the same for both.
    ``video_bottleneck`` > 0 embeds each video token through a linear bottleneck of that width first
    (JiT's bottleneck patch embedding; 0 = one linear). ``modality_blocks``: the first and the last that
    many blocks give video and audio tokens their own attention projections and MLPs (attention still
    spans the whole sequence), as single-stream audio-video models do at their ends.
    ``phonemes``: read timed phonemes (``avgen.model.phonemes``): every block attends from each token to the
    phonemes within ``phoneme_window`` seconds of its time (0 = all), with RoPE on the shared time axis, so
    speech content is told where it falls. Off: the quoted words reach the model only through the text
    encoder.
    ``guidance_embed``: read per-sample guidance scales (``forward``'s ``guidance``, the ``GUIDANCE_SCALES``)
    through an MLP added to every token's time embedding, its output zero at init; for a DiT distilled to
    give the guided velocity in one forward (``avgen.train.distill``), so its scales stay a knob.
    """

    tokens: TokenSpec = field(default_factory=TokenSpec)
    text_dim: int = 384
    width: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    rope_axes: tuple[int, int, int] = (24, 20, 20)
    rope_theta: float = 10000.0
    rope_time_scale: float = 25.0
    modulation: str = "block"
    per_modality_mlp: bool = False
    bridge_window: float = 0.0
    bridge_heads: int = 2
    gradient_checkpointing: bool = False
    prediction: str = "v"
    prediction_min_t: float = 0.05
    video_bottleneck: int = 0
    modality_blocks: int = 0
    phonemes: bool = False
    phoneme_window: float = 0.25
    guidance_embed: bool = False

    def __post_init__(self) -> None:
        if min(self.text_dim, self.width, self.depth, self.heads) < 1:
            raise ConfigError(
                f"DiTConfig: text_dim, width, depth, heads must be >= 1, got {self.text_dim}, {self.width}, "
                f"{self.depth}, {self.heads}"
            )
        if self.width % self.heads:
            raise ConfigError(f"DiTConfig: heads ({self.heads}) must divide width ({self.width})")
        head_dim = self.width // self.heads
        if len(self.rope_axes) != 3 or any(d < 2 or d % 2 for d in self.rope_axes):
            raise ConfigError(
                f"DiTConfig.rope_axes must be 3 even sizes >= 2 for (t, h, w), got {self.rope_axes}"
            )
        if sum(self.rope_axes) != head_dim:
            raise ConfigError(
                f"DiTConfig.rope_axes {self.rope_axes} sum to {sum(self.rope_axes)}, but the head dim is "
                f"width/heads = {head_dim}; they must be equal"
            )
        if not (self.mlp_ratio > 0 and self.rope_theta > 1 and self.rope_time_scale > 0):
            raise ConfigError(
                f"DiTConfig: need mlp_ratio > 0, rope_theta > 1, rope_time_scale > 0; got {self.mlp_ratio}, "
                f"{self.rope_theta}, {self.rope_time_scale}"
            )
        if not (self.bridge_window >= 0 and self.bridge_heads >= 1):
            raise ConfigError(
                f"DiTConfig: need bridge_window >= 0 (seconds; 0 = no sync bridge) and bridge_heads >= 1, got "
                f"{self.bridge_window}, {self.bridge_heads}"
            )
        if self.modulation not in MODULATIONS:
            raise ConfigError(f"DiTConfig.modulation must be one of {MODULATIONS}, got {self.modulation!r}")
        if self.prediction not in PREDICTIONS:
            raise ConfigError(f"DiTConfig.prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if not 0 < self.prediction_min_t <= 1:
            raise ConfigError(f"DiTConfig.prediction_min_t must be in (0, 1], got {self.prediction_min_t}")
        if self.video_bottleneck < 0 or not 0 <= 2 * self.modality_blocks <= self.depth:
            raise ConfigError(
                f"DiTConfig: need video_bottleneck >= 0 and 0 <= modality_blocks <= depth / 2 (first and last "
                f"blocks), got {self.video_bottleneck}, {self.modality_blocks} with depth {self.depth}"
            )
        if not self.phoneme_window >= 0:
            raise ConfigError(f"DiTConfig.phoneme_window must be >= 0 seconds, got {self.phoneme_window}")


def dit_config(preset: str = "default", **overrides: object) -> DiTConfig:
    """A ``DiTConfig`` from a named preset (see ``avgen.model.presets.PRESETS``) plus field overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown DiT preset {preset!r}; choose one of {sorted(PRESETS)}")
    data = {**PRESETS[preset], **overrides}
    if isinstance(data.get("tokens"), TokenSpec):
        data["tokens"] = to_dict(data["tokens"])
    return from_dict(DiTConfig, data, where=f"preset {preset!r}")
