"""The VideoCodec protocol over a pretrained causal video VAE (Wan, LTX): input checks, normalisation, sampling.

Both VAEs are causal in time like avgen's own: latent frame 0 sees video frame 0 alone and latent frame k
sees frames up to ts*k, so T = 1 + ts*k frames become 1 + k latent frames and latent k sits at the time of
frame ts*k (``ClipGeometry.video_times`` with the codec's ``temporal_downsample``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from avgen.codecs.hf_base import HFCodec
from avgen.codecs.video_vae import video_latent_shape
from avgen.errors import ClipError


def check_video(codec: HFVideoCodec, video: Tensor) -> None:
    """ClipError unless ``video`` is a finite float (B, 3, T, H, W) tensor in [-1, 1] of a size the codec
    takes (T = 1 + ts*k, H and W multiples of ss)."""
    if not isinstance(video, Tensor) or video.dim() != 5:
        got = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise ClipError(f"video codec expects a (B, 3, T, H, W) tensor, got {got}")
    if not video.is_floating_point():
        raise ClipError(f"video codec expects float pixels in [-1, 1], got dtype {video.dtype}")
    if video.shape[1] != 3:
        raise ClipError(f"video codec expects 3 channels (RGB), got {video.shape[1]}")
    codec.latent_shape(*video.shape[2:])
    if not torch.isfinite(video).all():
        raise ClipError("video contains NaN or inf pixels")
    peak = float(video.abs().max())
    if peak > 1.0 + 1e-4:
        raise ClipError(f"video pixels must lie in [-1, 1], peak is {peak:.4g}; map uint8 with x/127.5-1")


class HFVideoCodec(HFCodec):
    """VideoCodec: (B, 3, T, H, W) float in [-1, 1], T = 1 + ts*k, H and W multiples of ss <-> normalised
    latents (B, D, 1 + k, H/ss, W/ss) float32. Subclasses give the factors, ``encode_dist`` and
    ``decode_raw``."""

    @property
    def temporal_downsample(self) -> int:
        raise NotImplementedError

    @property
    def spatial_downsample(self) -> int:
        raise NotImplementedError

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(D, T', H', W') for a clip; raises ClipError naming the nearest valid sizes."""
        return video_latent_shape(self, num_frames, height, width)

    # --- raw paths ---
    def encode_dist(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, T, H, W) in the model's dtype -> raw posterior (mean, std), each (B, D, T', H', W')."""
        raise NotImplementedError

    def decode_raw(self, z: Tensor) -> Tensor:
        """Raw latents (B, D, T', H', W') -> (B, 3, T, H, W), unclamped."""
        raise NotImplementedError

    # --- protocol ---
    def encode(self, video: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """(B, 3, T, H, W) float in [-1, 1] -> normalised latents (B, D, 1 + (T-1)/ts, H/ss, W/ss) float32.

        The posterior mean by default; ``sample=True`` draws from the posterior (with ``generator``).
        """
        check_video(self, video)
        mean, std = self.encode_dist(video.to(self._dtype()))
        z = mean.float()
        if sample:
            z = z + std.float() * torch.randn(z.shape, generator=generator, device=z.device)
        return self.stats.normalize(z)

    def check_latents(self, z: Tensor) -> None:
        if not isinstance(z, Tensor) or z.dim() != 5 or z.shape[1] != self.latent_channels:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ClipError(f"video codec decodes (B, {self.latent_channels}, T', H', W') latents, got {got}")
        if not torch.isfinite(z).all():
            raise ClipError("video latents contain NaN or inf")

    def decode(self, z: Tensor) -> Tensor:
        """Normalised latents (B, D, T', H', W') -> (B, 3, 1 + ts(T'-1), ss H', ss W') float32 in [-1, 1]."""
        self.check_latents(z)
        raw = self.stats.denormalize(z.float()).to(self._dtype())
        return self.decode_raw(raw).float().clamp(-1.0, 1.0)
