"""``EncodecCodecConfig``: the architecture of an EnCodec audio codec, and its ``transformers`` equivalent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from avgen._optional import require_transformers
from avgen.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from transformers import EncodecConfig


@dataclass(frozen=True)
class EncodecCodecConfig:
    """Architecture of an EnCodec model (the fields of ``transformers.EncodecConfig`` that shape weights).

    ``ratios`` are the decoder's upsampling ratios (encoder uses them reversed); hop = prod(ratios).
    The default is avgen's small codec: 16 kHz mono, hop 320 (50 latents/s), 32 latent channels.
    """

    sample_rate: int = 16000
    channels: int = 1
    latent_channels: int = 32
    num_filters: int = 16
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    num_residual_layers: int = 1
    num_lstm_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_growth_rate: int = 2
    compress: int = 2
    causal: bool = True
    norm_type: str = "weight_norm"
    pad_mode: str = "reflect"
    use_conv_shortcut: bool = True
    trim_right_ratio: float = 1.0
    codebook_size: int = 1024
    num_quantizers: int = 8

    def __post_init__(self) -> None:
        positive = (
            "sample_rate",
            "channels",
            "latent_channels",
            "num_filters",
            "num_lstm_layers",
            "codebook_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"EncodecCodecConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.ratios or any(r < 1 for r in self.ratios):
            raise ConfigError(f"EncodecCodecConfig.ratios must be positive integers, got {self.ratios}")
        if self.codebook_size & (self.codebook_size - 1):
            raise ConfigError(
                f"EncodecCodecConfig.codebook_size must be a power of 2, got {self.codebook_size}"
            )
        if self.num_quantizers < 1:
            raise ConfigError(f"EncodecCodecConfig.num_quantizers must be >= 1, got {self.num_quantizers}")
        if self.norm_type not in ("weight_norm", "time_group_norm"):
            raise ConfigError(
                f"EncodecCodecConfig.norm_type must be weight_norm or time_group_norm, got {self.norm_type!r}"
            )

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    def to_hf(self) -> EncodecConfig:
        """The equivalent ``transformers.EncodecConfig`` (its num_quantizers derives from bandwidth)."""
        transformers = require_transformers("EncodecCodecConfig.to_hf", ConfigError)
        frame_rate = math.ceil(self.sample_rate / self.hop_length)
        # transformers: num_quantizers = int(1000 * bw // (frame_rate * bits)); aim mid-bucket (float edges)
        bits = int(math.log2(self.codebook_size))
        bandwidth = (self.num_quantizers + 0.5) * frame_rate * bits / 1000
        hf = transformers.EncodecConfig(
            sampling_rate=self.sample_rate,
            audio_channels=self.channels,
            hidden_size=self.latent_channels,
            codebook_dim=self.latent_channels,
            num_filters=self.num_filters,
            upsampling_ratios=list(self.ratios),
            num_residual_layers=self.num_residual_layers,
            num_lstm_layers=self.num_lstm_layers,
            kernel_size=self.kernel_size,
            last_kernel_size=self.last_kernel_size,
            residual_kernel_size=self.residual_kernel_size,
            dilation_growth_rate=self.dilation_growth_rate,
            compress=self.compress,
            use_causal_conv=self.causal,
            norm_type=self.norm_type,
            pad_mode=self.pad_mode,
            use_conv_shortcut=self.use_conv_shortcut,
            trim_right_ratio=self.trim_right_ratio,
            codebook_size=self.codebook_size,
            target_bandwidths=[bandwidth],
            normalize=False,
            chunk_length_s=None,
            overlap=None,
        )
        if hf.num_quantizers != self.num_quantizers:  # would mean transformers changed its formula
            raise ConfigError(
                f"EncodecConfig gives {hf.num_quantizers} quantizers, wanted {self.num_quantizers}"
            )
        return hf

    @classmethod
    def from_hf(cls, hf: EncodecConfig, where: str = "EncodecConfig") -> EncodecCodecConfig:
        """Read a ``transformers.EncodecConfig``; models that normalise loudness per chunk are refused."""
        if hf.normalize:
            raise CheckpointError(
                f"{where}: this EnCodec model normalises loudness per chunk (normalize=true, e.g. "
                "facebook/encodec_48khz); avgen's continuous latents need normalize=false "
                "(facebook/encodec_24khz or a codec trained with `avgen codec train`)"
            )
        if hf.codebook_dim != hf.hidden_size:
            raise CheckpointError(f"{where}: codebook_dim {hf.codebook_dim} != hidden_size {hf.hidden_size}")
        return cls(
            sample_rate=int(hf.sampling_rate),
            channels=int(hf.audio_channels),
            latent_channels=int(hf.hidden_size),
            num_filters=int(hf.num_filters),
            ratios=tuple(int(r) for r in hf.upsampling_ratios),
            num_residual_layers=int(hf.num_residual_layers),
            num_lstm_layers=int(hf.num_lstm_layers),
            kernel_size=int(hf.kernel_size),
            last_kernel_size=int(hf.last_kernel_size),
            residual_kernel_size=int(hf.residual_kernel_size),
            dilation_growth_rate=int(hf.dilation_growth_rate),
            compress=int(hf.compress),
            causal=bool(hf.use_causal_conv),
            norm_type=str(hf.norm_type),
            pad_mode=str(hf.pad_mode),
            use_conv_shortcut=bool(hf.use_conv_shortcut),
            trim_right_ratio=float(hf.trim_right_ratio),
            codebook_size=int(hf.codebook_size),
            num_quantizers=int(hf.num_quantizers),
        )
