"""How a clip maps onto latents: frame and sample counts, the VAE's frame grid, and latent times.

Training and generation both go through ``ClipGeometry``, so the times the transformer sees for a clip
are the same in both. Times are in seconds from frame 0: a video latent frame sits at the time of the
last input frame it summarises (causal VAE: latent 0 = frame 0, latent k = frames 4k-3 .. 4k), an audio
latent at the start of its hop.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from torch import Tensor

from avgen.checks import as_fps, check_sample_rate
from avgen.errors import ConfigError
from avgen.tokens import latent_times


@dataclasses.dataclass(frozen=True)
class ClipGeometry:
    """A clip of ``num_frames`` at ``fps`` and the audio that spans exactly the same time.

    num_samples = round(num_frames / fps * sample_rate), so audio and video end together.
    """

    num_frames: int
    fps: Fraction
    height: int
    width: int
    sample_rate: int
    temporal_downsample: int = 4
    spatial_downsample: int = 8
    hop_length: int = 320

    def __post_init__(self) -> None:
        object.__setattr__(self, "fps", as_fps(self.fps))
        check_sample_rate(self.sample_rate)
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value < self.spatial_downsample:
                raise ConfigError(
                    f"{name}={value} is below the video codec's {self.spatial_downsample}x grid"
                )

    @classmethod
    def from_duration(cls, duration: float, fps: Fraction | int | str, **kwargs: int) -> ClipGeometry:
        """Geometry for ``duration`` seconds (rounded to whole frames, at least one)."""
        if not (isinstance(duration, int | float) and math.isfinite(duration) and duration > 0):
            raise ConfigError(f"seconds (the clip length) must be a positive number, got {duration!r}")
        fps = as_fps(fps)
        frames = duration * fps
        if not math.isfinite(frames):  # 1e308 s: round() would raise OverflowError
            raise ConfigError(f"seconds={duration!r} at {fps} fps is more frames than can be counted")
        return cls(num_frames=max(1, round(frames)), fps=fps, **kwargs)

    @property
    def num_samples(self) -> int:
        return round(self.num_frames / self.fps * self.sample_rate)

    @property
    def duration(self) -> float:
        return float(self.num_frames / self.fps)

    @property
    def vae_frames(self) -> int:
        """Frames the causal VAE works on: the smallest 1 + k * temporal_downsample >= num_frames."""
        ts = self.temporal_downsample
        return 1 + ts * math.ceil((self.num_frames - 1) / ts)

    @property
    def vae_size(self) -> tuple[int, int]:
        """(height, width) rounded up to the codec grid; generated frames are cropped back."""
        s = self.spatial_downsample
        return -(-self.height // s) * s, -(-self.width // s) * s

    @property
    def video_latent_shape(self) -> tuple[int, int, int]:
        """(T', H', W') of the video latents."""
        h, w = self.vae_size
        s = self.spatial_downsample
        return 1 + (self.vae_frames - 1) // self.temporal_downsample, h // s, w // s

    @property
    def audio_latent_length(self) -> int:
        return -(-self.num_samples // self.hop_length)

    def pad_video(self, x: Tensor) -> Tensor:
        """``x (B, 3, T, H, W)`` -> ``(B, 3, vae_frames, *vae_size)`` by repeating the last frame, row and
        column: what the causal VAE needs; generated frames are cropped back to (num_frames, H, W)."""
        import torch.nn.functional as F

        h, w = self.vae_size
        pad = (0, w - x.shape[-1], 0, h - x.shape[-2], 0, self.vae_frames - x.shape[-3])
        if min(pad) < 0:
            raise ConfigError(f"video {tuple(x.shape)} is larger than the clip geometry {self}")
        return F.pad(x, pad, mode="replicate") if any(pad) else x

    def video_times(self) -> Tensor:
        """(T',) seconds: latent k at frame k * temporal_downsample."""
        return latent_times(self.video_latent_shape[0], float(self.fps) / self.temporal_downsample)

    def audio_times(self) -> Tensor:
        """(L,) seconds: latent k at sample k * hop_length."""
        return latent_times(self.audio_latent_length, self.sample_rate / self.hop_length)
