"""Wan's video VAE (diffusers ``AutoencoderKLWan``) behind the VideoCodec protocol.

Wan2.1 (Ovi, MOVA, JavisDiT++): 16 latent channels, 8x spatial, 4x causal temporal. Wan2.2's TI2V VAE
(daVinci-MagiHuman): 48 channels, 2x2 patches in front of the same stages, so 16x spatial. Both ship their
per-channel ``latents_mean``/``latents_std`` in config.json: latents are normalised with them unless the
folder has a ``latent_stats.json``. Its encoder reads frame 0 alone and then 4 frames at a time, so latent
k covers frames 4k-3 .. 4k and sits at frame 4k, exactly as avgen's own causal VAE.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from avgen.codecs.base import HF_WAN
from avgen.codecs.hf_base import DIFFUSERS_WEIGHTS
from avgen.codecs.hf_video import HFVideoCodec
from avgen.errors import CheckpointError


class WanVideoCodec(HFVideoCodec):
    """Wan2.1 / Wan2.2 VAE: (B, 3, 1 + 4k, H, W) in [-1, 1] <-> (B, z_dim, 1 + k, H/ss, W/ss), ss = 8 or 16."""

    KIND = HF_WAN
    LIBRARY = "diffusers"
    CLASS_NAME = "AutoencoderKLWan"
    WEIGHT_NAMES = DIFFUSERS_WEIGHTS
    WHAT = "a Wan video VAE (diffusers AutoencoderKLWan)"

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        down = list(config.get("temperal_downsample") or [])
        if sum(bool(t) for t in down) != 2:
            # diffusers' encoder feeds frame 0 and then chunks of 4 frames: only 4x time fits that
            raise CheckpointError(f"{where}: temperal_downsample {down} is not 4x in time; Wan's VAE is 4x")
        rgb = 3 * int(config.get("patch_size") or 1) ** 2  # Wan2.2 folds 2x2 patches into channels first
        if config.get("in_channels", 3) != rgb or config.get("out_channels", 3) != rgb:
            raise CheckpointError(
                f"{where}: a Wan VAE for RGB video has in_channels = out_channels = 3 x patch_size^2 = {rgb}"
            )
        if len(config.get("dim_mult") or []) != len(down) + 1:
            raise CheckpointError(f"{where}: dim_mult needs one entry more than temperal_downsample")

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.z_dim)

    @property
    def temporal_downsample(self) -> int:
        return 2 ** sum(bool(t) for t in self.model.config.temperal_downsample)

    @property
    def spatial_downsample(self) -> int:
        # every stage but the last halves H and W; Wan2.2 folds 2x2 patches first
        return 2 ** (len(self.model.config.dim_mult) - 1) * int(self.model.config.patch_size or 1)

    def shipped_stats(self) -> tuple[Tensor, Tensor] | None:
        mean, std = self.model.config.latents_mean, self.model.config.latents_std
        if (
            mean is None
            or std is None
            or len(mean) != self.latent_channels
            or len(std) != self.latent_channels
        ):
            return None
        return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def encode_dist(self, video: Tensor) -> tuple[Tensor, Tensor]:
        dist = self.model.encode(video).latent_dist
        return dist.mean, dist.std

    def decode_raw(self, z: Tensor) -> Tensor:
        return self.model.decode(z).sample
