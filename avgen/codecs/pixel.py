"""Pixel "codec": video as patches in pixel space, for debugging and tiny pixel-space models.

Optionally average-pools by ``downsample`` first (lossy; decoding upsamples by nearest neighbour), then
packs ``patch_t x patch_h x patch_w`` patches into channels. Time is causal like the VAE: the first frame
is repeated ``patch_t - 1`` times on the left, so T = 1 + patch_t*k frames give 1 + k latent frames.
All factors 1 is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from avgen.codecs.base import (
    CodecIdCache,
    LatentStats,
    load_codec_folder,
    save_codec_folder,
)
from avgen.codecs.video_vae import video_latent_shape
from avgen.config import from_dict, to_dict
from avgen.errors import ClipError, ConfigError

KIND = "pixel"


@dataclass(frozen=True)
class PixelCodecConfig:
    channels: int = 3
    patch_t: int = 1
    patch_h: int = 1
    patch_w: int = 1
    downsample: int = 1

    def __post_init__(self) -> None:
        for name in ("channels", "patch_t", "patch_h", "patch_w", "downsample"):
            if getattr(self, name) < 1:
                raise ConfigError(f"PixelCodecConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.patch_h != self.patch_w:
            raise ConfigError(
                f"PixelCodecConfig: patch_h ({self.patch_h}) must equal patch_w ({self.patch_w})"
            )


class PixelCodec(nn.Module):
    """VideoCodec in pixel space: (B, C, T, H, W) in [-1, 1] <-> (B, C*pt*ph*pw, 1+(T-1)/pt, H/s, W/s)."""

    def __init__(self, config: PixelCodecConfig | None = None) -> None:
        super().__init__()
        self.config = config or PixelCodecConfig()
        c = self.config
        self.stats = LatentStats(c.channels * c.patch_t * c.patch_h * c.patch_w)
        self._ids = CodecIdCache()

    @property
    def latent_channels(self) -> int:
        c = self.config
        return c.channels * c.patch_t * c.patch_h * c.patch_w

    @property
    def temporal_downsample(self) -> int:
        return self.config.patch_t

    @property
    def spatial_downsample(self) -> int:
        return self.config.patch_h * self.config.downsample

    @property
    def codec_id(self) -> str:
        return f"{KIND}-{self._ids.get(to_dict(self.config), self)}"

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        return video_latent_shape(self, num_frames, height, width)

    def encode(self, video: Tensor) -> Tensor:
        """(B, C, T, H, W) float in [-1, 1] -> normalised (B, C*pt*ph*pw, 1+(T-1)/pt, H/s, W/s) float32."""
        if not isinstance(video, Tensor) or video.dim() != 5 or video.shape[1] != self.config.channels:
            got = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
            raise ClipError(f"pixel codec expects (B, {self.config.channels}, T, H, W), got {got}")
        self.latent_shape(*video.shape[2:])
        if not torch.isfinite(video).all():
            raise ClipError("video contains NaN or inf pixels")
        c = self.config
        x = video.float()
        if c.downsample > 1:
            x = F.avg_pool3d(x, (1, c.downsample, c.downsample))
        if c.patch_t > 1:
            x = torch.cat(
                [x[:, :, :1].expand(-1, -1, c.patch_t - 1, -1, -1), x], dim=2
            )  # (B, C, T+pt-1, H, W)
        z = rearrange(
            x, "b c (t pt) (h ph) (w pw) -> b (c pt ph pw) t h w", pt=c.patch_t, ph=c.patch_h, pw=c.patch_w
        )
        return self.stats.normalize(z)

    def decode(self, z: Tensor) -> Tensor:
        """Normalised (B, D, T', H', W') -> (B, C, 1+pt(T'-1), H'*s, W'*s) float32 in [-1, 1]."""
        if not isinstance(z, Tensor) or z.dim() != 5 or z.shape[1] != self.latent_channels:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ClipError(f"pixel codec decodes (B, {self.latent_channels}, T', H', W'), got {got}")
        c = self.config
        x = rearrange(
            self.stats.denormalize(z.float()),
            "b (c pt ph pw) t h w -> b c (t pt) (h ph) (w pw)",
            pt=c.patch_t,
            ph=c.patch_h,
            pw=c.patch_w,
        )
        x = x[:, :, c.patch_t - 1 :]  # drop the left padding of frame 0  # (B, C, T, H/ds, W/ds)
        if c.downsample > 1:
            x = F.interpolate(x, scale_factor=(1, c.downsample, c.downsample), mode="nearest")
        return x.clamp(-1.0, 1.0)

    def save_pretrained(self, directory: str | Path) -> None:
        save_codec_folder(directory, KIND, to_dict(self.config), self)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> PixelCodec:
        return load_codec_folder(
            directory,
            KIND,
            "a pixel codec",
            lambda data, where: cls(from_dict(PixelCodecConfig, data, where=where)),
        )
