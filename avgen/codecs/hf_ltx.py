"""LTX-Video's VAE (diffusers ``AutoencoderKLLTXVideo``) behind the VideoCodec protocol.

128 latent channels, 32x spatial, 8x causal temporal: T = 1 + 8k frames become 1 + k latent frames, latent k
at frame 8k. The per-channel statistics ship in the weights (buffers ``latents_mean``/``latents_std``) with
``scaling_factor``: normalised latents are (z - mean) * scaling_factor / std, as LTX's pipeline makes them,
unless the folder has a ``latent_stats.json``. Decoders with timestep conditioning (LTX-Video 0.9.1 on) take
a decode timestep and noise scale; both default to 0 here, which decodes deterministically.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from avgen.codecs.base import HF_LTX
from avgen.codecs.hf_base import DIFFUSERS_WEIGHTS
from avgen.codecs.hf_video import HFVideoCodec
from avgen.errors import CheckpointError, ClipError


class LTXVideoCodec(HFVideoCodec):
    """LTX-Video VAE: (B, 3, 1 + 8k, H, W) in [-1, 1] <-> (B, 128, 1 + k, H/32, W/32) (factors from config)."""

    KIND = HF_LTX
    LIBRARY = "diffusers"
    CLASS_NAME = "AutoencoderKLLTXVideo"
    WEIGHT_NAMES = DIFFUSERS_WEIGHTS
    WHAT = "an LTX-Video VAE (diffusers AutoencoderKLLTXVideo)"

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        if not config.get("encoder_causal", True):
            raise CheckpointError(
                f"{where}: encoder_causal is false; avgen places latent k at frame ts*k, which needs a "
                "causal encoder"
            )
        if config.get("patch_size_t", 1) != 1:
            raise CheckpointError(f"{where}: patch_size_t {config.get('patch_size_t')} is not supported (1)")
        if config.get("in_channels", 3) != 3 or config.get("out_channels", 3) != 3:
            raise CheckpointError(f"{where}: an LTX VAE for RGB video has in_channels = out_channels = 3")

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.latent_channels)

    @property
    def temporal_downsample(self) -> int:
        return int(self.model.temporal_compression_ratio)

    @property
    def spatial_downsample(self) -> int:
        return int(self.model.spatial_compression_ratio)

    def shipped_stats(self) -> tuple[Tensor, Tensor] | None:
        mean = self.model.latents_mean.detach().float().cpu()
        std = self.model.latents_std.detach().float().cpu()
        scale = float(self.model.config.scaling_factor)
        if bool((mean == 0).all()) and bool((std == 1).all()) and scale == 1.0:
            return None  # the class's placeholder buffers: no statistics were shipped
        return mean, std / scale

    def encode_dist(self, video: Tensor) -> tuple[Tensor, Tensor]:
        dist = self.model.encode(video).latent_dist
        return dist.mean, dist.std

    def decode_raw(
        self,
        z: Tensor,
        timestep: float = 0.0,
        noise_scale: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if not self.model.config.timestep_conditioning:
            return self.model.decode(z).sample
        scale = timestep if noise_scale is None else noise_scale
        if scale:  # the noise LTX's pipeline mixes in before a timestep-conditioned decode
            noise = torch.randn(z.shape, generator=generator, device=z.device).to(z.dtype)
            z = (1 - scale) * z + scale * noise
        temb = torch.full((z.shape[0],), float(timestep), device=z.device, dtype=z.dtype)
        return self.model.decode(z, temb).sample

    def decode(
        self,
        z: Tensor,
        timestep: float = 0.0,
        noise_scale: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Normalised latents (B, D, T', H', W') -> (B, 3, 1 + 8(T'-1), 32 H', 32 W') float32 in [-1, 1].

        ``timestep`` / ``noise_scale``: for decoders with timestep conditioning only (LTX's pipeline takes e.g.
        0.05 / 0.025); 0 decodes deterministically.
        """
        if not (0.0 <= timestep <= 1.0) or (noise_scale is not None and not 0.0 <= noise_scale <= 1.0):
            raise ClipError(f"timestep and noise_scale must lie in [0, 1], got {timestep}, {noise_scale}")
        self.check_latents(z)
        raw = self.stats.denormalize(z.float()).to(self._dtype())
        return self.decode_raw(raw, timestep, noise_scale, generator).float().clamp(-1.0, 1.0)
