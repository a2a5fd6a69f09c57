"""Causal 3D video VAE: 8x spatial, 4x causal temporal compression, KL-regularised.

Causal in time: every temporal convolution pads on the left with the first frame, so latent frame 0
sees video frame 0 alone and latent frame j >= 1 sees frames up to 4j. T = 1 + 4k frames become
1 + k latent frames. Norms are channel-wise RMS (no statistics across time or space), which keeps
the model causal and makes tiled decoding agree with whole-frame decoding away from tile seams.
``causal_decoder=False`` centres the decoder's temporal convolutions instead (each decoded frame also sees
the next latent frame), so a one-frame event need not be smeared only forward in time; the encoder stays
causal either way. ``temporal_kernel=1`` with no temporal downsampling makes every convolution frame-wise:
an image autoencoder applied to each frame, with no temporal smear at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from avgen.codecs.base import (
    CodecIdCache,
    LatentStats,
    load_codec_folder,
    maybe_autocast,
    save_codec_folder,
)
from avgen.config import from_dict, to_dict
from avgen.errors import ClipError, ConfigError

KIND = "video_vae"


@dataclass(frozen=True)
class VideoVAEConfig:
    """Pixels are first folded into ``patch_size`` x ``patch_size`` patches (space-to-depth, as LTX-Video's
    VAE does), so no convolution runs at full resolution. ``channels[i]`` is the width at level i; each
    level after the first halves H and W. ``temporal_down[i]`` says whether the i-th downsampling also
    halves time (causally). Spatial downsampling = patch_size * 2 ** (len(channels) - 1).
    ``temporal_kernel`` (3 or 1): frames each non-downsampling convolution sees; 1 needs no temporal_down.
    """

    in_channels: int = 3
    latent_channels: int = 16
    patch_size: int = 2
    channels: tuple[int, ...] = (16, 48, 96)
    temporal_down: tuple[bool, ...] = (True, True)
    num_res_blocks: int = 1
    causal_decoder: bool = True
    temporal_kernel: int = 3

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.latent_channels < 1 or self.num_res_blocks < 0 or self.patch_size < 1:
            raise ConfigError(f"VideoVAEConfig: sizes must be positive, got {self}")
        if len(self.channels) < 1 or any(c < 1 for c in self.channels):
            raise ConfigError(f"VideoVAEConfig.channels must be positive, got {self.channels}")
        if len(self.temporal_down) != len(self.channels) - 1:
            raise ConfigError(
                f"VideoVAEConfig.temporal_down needs one entry per downsampling "
                f"({len(self.channels) - 1}), got {len(self.temporal_down)}"
            )
        if self.temporal_kernel not in (1, 3):
            raise ConfigError(f"VideoVAEConfig.temporal_kernel must be 1 or 3, got {self.temporal_kernel}")
        if self.temporal_kernel == 1 and any(self.temporal_down):
            raise ConfigError(
                "VideoVAEConfig.temporal_kernel 1 (frame-wise) cannot downsample time; "
                "set temporal_down to all false or temporal_kernel to 3"
            )

    @property
    def spatial_downsample(self) -> int:
        return self.patch_size * 2 ** (len(self.channels) - 1)

    @property
    def temporal_downsample(self) -> int:
        return 2 ** sum(bool(t) for t in self.temporal_down)


class CausalConv3d(nn.Module):
    """Conv3d padded causally in time (first frame repeated on the left) and by zeros in space;
    ``causal=False``: centred in time instead (first and last frames repeated on either side)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        causal: bool = True,
    ):
        super().__init__()
        self.time_pad = kernel[0] - 1
        self.left_pad = self.time_pad if causal else self.time_pad // 2
        self.space_pad = (kernel[2] // 2, kernel[2] // 2, kernel[1] // 2, kernel[1] // 2)
        self.conv = nn.Conv3d(cin, cout, kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.time_pad:
            right = self.time_pad - self.left_pad
            first = x[:, :, :1].expand(-1, -1, self.left_pad, -1, -1)
            last = x[:, :, -1:].expand(-1, -1, right, -1, -1)
            x = torch.cat([first, x, last], dim=2)  # (B, C, T + time_pad, H, W)
        return self.conv(F.pad(x, (*self.space_pad, 0, 0)))


class RMSNorm(nn.Module):
    """Channel-wise RMS norm with a learned gain: (B, C, ...) -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.scale = math.sqrt(channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gain.view(1, -1, 1, 1, 1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, causal: bool = True, kt: int = 3) -> None:
        super().__init__()
        self.norm1, self.conv1 = RMSNorm(cin), CausalConv3d(cin, cout, (kt, 3, 3), causal=causal)
        self.norm2, self.conv2 = RMSNorm(cout), CausalConv3d(cout, cout, (kt, 3, 3), causal=causal)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve H and W (and T causally: T -> 1 + (T-1)/2) with a strided causal conv."""

    def __init__(self, channels: int, temporal: bool) -> None:
        super().__init__()
        kt, st = (3, 2) if temporal else (1, 1)
        self.conv = CausalConv3d(channels, channels, (kt, 3, 3), (st, 2, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double H and W (and T causally: T -> 1 + 2(T-1), the first frame stays single) then conv cin -> cout."""

    def __init__(self, cin: int, cout: int, temporal: bool, causal: bool = True, kt: int = 3) -> None:
        super().__init__()
        self.temporal = temporal
        self.conv = CausalConv3d(cin, cout, (kt, 3, 3), causal=causal)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=(2 if self.temporal else 1, 2, 2), mode="nearest")
        if self.temporal:
            x = x[:, :, 1:]  # drop the duplicate of frame 0  # (B, C, 2T-1, 2H, 2W)
        return self.conv(x)


class Encoder(nn.Module):
    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        ch, kt = cfg.channels, cfg.temporal_kernel
        self.patch = cfg.patch_size
        self.conv_in = CausalConv3d(cfg.in_channels * self.patch**2, ch[0], (kt, 3, 3))
        layers: list[nn.Module] = []
        cin = ch[0]
        for i, c in enumerate(ch):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin, c, kt=kt))
                cin = c
            if i < len(ch) - 1:
                layers.append(Downsample(cin, cfg.temporal_down[i]))
        layers += [ResBlock(cin, cin, kt=kt)]
        self.blocks = nn.Sequential(*layers)
        self.norm_out = RMSNorm(cin)
        self.conv_out = CausalConv3d(cin, 2 * cfg.latent_channels, (kt, 3, 3))

    def forward(self, x: Tensor) -> Tensor:
        x = rearrange(x, "b c t (h p) (w q) -> b (c p q) t h w", p=self.patch, q=self.patch)
        return self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(x)))))


class Decoder(nn.Module):
    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        ch, causal, kt = cfg.channels, cfg.causal_decoder, cfg.temporal_kernel
        cin = ch[-1]
        self.conv_in = CausalConv3d(cfg.latent_channels, cin, (kt, 3, 3), causal=causal)
        layers: list[nn.Module] = [ResBlock(cin, cin, causal, kt)]
        for i in reversed(range(len(ch))):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin, ch[i], causal, kt))
                cin = ch[i]
            if i > 0:
                layers.append(Upsample(cin, ch[i - 1], cfg.temporal_down[i - 1], causal, kt))
                cin = ch[i - 1]
        self.blocks = nn.Sequential(*layers)
        self.norm_out = RMSNorm(cin)
        self.patch = cfg.patch_size
        self.conv_out = CausalConv3d(cin, cfg.in_channels * self.patch**2, (kt, 3, 3), causal=causal)

    def forward(self, z: Tensor) -> Tensor:
        x = self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(z)))))
        return rearrange(x, "b (c p q) t h w -> b c t (h p) (w q)", p=self.patch, q=self.patch)


def _blend_ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> Tensor:
    """(n,) weights rising linearly over ``overlap`` at interior tile edges, 1 elsewhere."""
    w = torch.ones(n)
    ramp = (torch.arange(overlap, dtype=torch.float32) + 1) / (overlap + 1)
    if overlap and not at_start:
        w[:overlap] = ramp
    if overlap and not at_end:
        w[n - overlap :] = ramp.flip(0)
    return w


def _tile_starts(total: int, tile: int, overlap: int) -> list[int]:
    if total <= tile:
        return [0]
    step = tile - overlap
    starts = [*range(0, total - tile, step), total - tile]
    return sorted(set(starts))


class CausalVideoVAE(nn.Module):
    """The VideoCodec: (B, 3, T, H, W) in [-1, 1], T = 1 + 4k, H and W multiples of 8 <-> latents."""

    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.stats = LatentStats(config.latent_channels)
        self._ids = CodecIdCache()

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    @property
    def temporal_downsample(self) -> int:
        return self.config.temporal_downsample

    @property
    def spatial_downsample(self) -> int:
        return self.config.spatial_downsample

    @property
    def codec_id(self) -> str:
        """Stable hash of config + weights (latent stats included): keys the latent cache."""
        config = to_dict(self.config)
        # these options are left out of the id at their defaults, so a codec that uses neither keeps the id
        # (and the latent caches) it has without them
        for key, default in (("causal_decoder", True), ("temporal_kernel", 3)):
            if config.get(key, default) == default:
                config.pop(key, None)
        return f"{KIND}-{self._ids.get(config, self)}"

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(D, T', H', W') for a clip; raises ClipError naming the nearest valid sizes."""
        return video_latent_shape(self, num_frames, height, width)

    # --- raw paths, used by training ---
    def encode_dist(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, T, H, W) -> raw posterior (mean, logvar), each (B, D, T', H', W'); grads flow."""
        h = self.encoder(video)
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode_raw(self, z: Tensor) -> Tensor:
        """Raw latents (B, D, T', H', W') -> (B, 3, T, H, W) unclamped; grads flow."""
        return self.decoder(z)

    # --- protocol ---
    def _check_video(self, video: Tensor) -> None:
        if not isinstance(video, Tensor) or video.dim() != 5:
            got = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
            raise ClipError(f"video codec expects a (B, 3, T, H, W) tensor, got {got}")
        if not video.is_floating_point():
            raise ClipError(f"video codec expects float pixels in [-1, 1], got dtype {video.dtype}")
        if video.shape[1] != self.config.in_channels:
            raise ClipError(f"video codec expects {self.config.in_channels} channels, got {video.shape[1]}")
        self.latent_shape(*video.shape[2:])
        if not torch.isfinite(video).all():
            raise ClipError("video contains NaN or inf pixels")
        peak = float(video.abs().max())
        if peak > 1.0 + 1e-4:
            raise ClipError(f"video pixels must lie in [-1, 1], peak is {peak:.4g}; map uint8 with x/127.5-1")

    def encode(self, video: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """(B, 3, T, H, W) float in [-1, 1] -> normalised latents (B, D, 1+(T-1)/4, H/8, W/8) float32.

        The posterior mean by default; ``sample=True`` draws from the posterior.
        """
        self._check_video(video)
        with maybe_autocast(video.device):
            mean, logvar = self.encode_dist(video)
        z = mean.float()
        if sample:
            eps = torch.randn(z.shape, generator=generator, device=z.device)
            z = z + torch.exp(0.5 * logvar.float()) * eps
        return self.stats.normalize(z)

    def decode(self, z: Tensor, tile: int | None = None, tile_overlap: int = 4) -> Tensor:
        """Normalised latents (B, D, T', H', W') -> (B, 3, 1+4(T'-1), 8H', 8W') float32 in [-1, 1].

        ``tile``: decode in spatial tiles of ``tile`` x ``tile`` latents overlapping by ``tile_overlap``,
        blended linearly, for frames larger than memory allows.
        """
        if not isinstance(z, Tensor) or z.dim() != 5 or z.shape[1] != self.latent_channels:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ClipError(f"video codec decodes (B, {self.latent_channels}, T', H', W') latents, got {got}")
        if not torch.isfinite(z).all():
            raise ClipError("video latents contain NaN or inf")
        raw = self.stats.denormalize(z.float())
        if tile is None:
            return self._decode_block(raw)
        if tile < 1 or not 0 <= tile_overlap < tile:
            raise ClipError(f"need tile >= 1 and 0 <= tile_overlap < tile, got {tile}, {tile_overlap}")
        return self._decode_tiled(raw, tile, tile_overlap)

    def _decode_block(self, raw: Tensor) -> Tensor:
        with maybe_autocast(raw.device):
            return self.decode_raw(raw).float().clamp(-1.0, 1.0)

    def _decode_tiled(self, raw: Tensor, tile: int, overlap: int) -> Tensor:
        b, _, tl, hl, wl = raw.shape
        s = self.spatial_downsample
        out = raw.new_zeros(
            b, self.config.in_channels, 1 + (tl - 1) * self.temporal_downsample, hl * s, wl * s
        )
        weight = raw.new_zeros(1, 1, 1, hl * s, wl * s)
        ys, xs = _tile_starts(hl, tile, overlap), _tile_starts(wl, tile, overlap)
        for y0 in ys:
            for x0 in xs:
                y1, x1 = min(hl, y0 + tile), min(wl, x0 + tile)
                pix = self._decode_block(raw[..., y0:y1, x0:x1])
                wy = _blend_ramp((y1 - y0) * s, overlap * s, y0 == 0, y1 == hl)
                wx = _blend_ramp((x1 - x0) * s, overlap * s, x0 == 0, x1 == wl)
                w = (wy[:, None] * wx[None, :]).to(raw)  # (h, w)
                out[..., y0 * s : y1 * s, x0 * s : x1 * s] += pix * w
                weight[..., y0 * s : y1 * s, x0 * s : x1 * s] += w
        return out / weight

    # --- files ---
    def save_pretrained(self, directory: str | Path) -> None:
        save_codec_folder(directory, KIND, to_dict(self.config), self)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> CausalVideoVAE:
        return load_codec_folder(
            directory,
            KIND,
            "a causal video VAE",
            lambda data, where: cls(from_dict(VideoVAEConfig, data, where=where)),
        )


def video_latent_shape(codec: Any, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(D, T', H', W') of any video codec with latent_channels / temporal_ / spatial_downsample."""
    ts, ss = codec.temporal_downsample, codec.spatial_downsample
    check_video_size(num_frames, height, width, ts, ss)
    return codec.latent_channels, 1 + (num_frames - 1) // ts, height // ss, width // ss


def check_video_size(num_frames: int, height: int, width: int, ts: int, ss: int) -> None:
    """ClipError unless num_frames = 1 + ts*k and height, width are positive multiples of ss."""
    if num_frames < 1 or (num_frames - 1) % ts:
        lo = 1 + max(0, (num_frames - 1) // ts) * ts
        hint = f"{lo} or {lo + ts}" if num_frames > 1 else "1"
        raise ClipError(
            f"video has {num_frames} frames; this causal codec needs 1 + {ts}k frames "
            f"(nearest valid: {hint}); trim or pad the clip"
        )
    for name, n in (("height", height), ("width", width)):
        if n < ss or n % ss:
            lo = max(ss, n // ss * ss)
            raise ClipError(f"video {name} {n} is not a multiple of {ss} (nearest valid: {lo} or {lo + ss})")
