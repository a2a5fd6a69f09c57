"""Inception-I3D (Carreira & Zisserman 2017), RGB stream, the video embedding network behind FVD.

Module and parameter names follow the public pytorch-i3d port (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_4b.b1b.bn.running_mean``, ``logits.conv3d.bias``, ...), so its Kinetics-400 RGB weights
(``rgb_imagenet.pt``) load by name; see :mod:`avgen.metrics.weights`. Convolutions and pools use TensorFlow's
"same" padding computed from the input size, batch norm has eps 1e-3, as in the port.

FVD (Unterthiner et al. 2018) embeds each video as 16 frames resized to 224x224 and scaled to [-1, 1]
through the TF-Hub ``i3d-kinetics-400`` module and takes its 400-d *logits* (before softmax, averaged over
time); that is :func:`embed_video` with ``feature="logits"``, the standard. ``feature="pool"`` gives the
1024-d average-pooled features instead (some papers use them; their numbers are not comparable).
Resizing here is torch bilinear (half-pixel centres, no antialias); the TF reference uses
``tf.image.resize_bilinear``, so values differ slightly for the same clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from avgen.errors import ClipError, ConfigError
from avgen.metrics._checks import check_video

CLIP_FRAMES = 16
CLIP_SIZE = 224
Feature = Literal["logits", "pool"]

# (name, in-branch widths b0, b1a, b1b, b2a, b2b, b3b) of the Inception blocks, in order.
_MIXED = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


@dataclass(frozen=True)
class I3DConfig:
    """Sizes of I3D. The default is the published network (12.7M parameters); ``width`` < 1 is for tests.

    width: multiplier on every channel count (each kept >= 1). num_classes: logits (400 for Kinetics-400).
    """

    width: float = 1.0
    num_classes: int = 400

    def __post_init__(self) -> None:
        if not 0 < self.width <= 1:
            raise ConfigError(f"I3DConfig.width: expected a multiplier in (0, 1], got {self.width}")
        if self.num_classes < 1:
            raise ConfigError(f"I3DConfig.num_classes: expected a positive count, got {self.num_classes}")

    def ch(self, n: int) -> int:
        return max(1, round(n * self.width))

    @property
    def is_standard(self) -> bool:
        """True for the published sizes (embeddings comparable with published FVD numbers)."""
        return self.width == 1.0 and self.num_classes == 400


def _same_pad(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """Zero-pad (B, C, T, H, W) as TensorFlow's "same" padding would (extra on the far side)."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d(eps 1e-3) + ReLU, or a biased conv alone for the logits."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        *,
        logits: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.is_logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(in_ch, out_ch, kernel, stride=stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(out_ch, eps=1e-3, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return x if self.is_logits else F.relu(self.bn(x))


class MaxPool3dSame(nn.Module):
    """Max pool with TensorFlow "same" padding (zeros; inputs are post-ReLU so that equals -inf padding)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1-3x3; 1x1-3x3; pool-1x1) concatenated on channels."""

    def __init__(self, in_ch: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_ch, widths[0])
        self.b1a = Unit3D(in_ch, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(in_ch, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_ch, widths[5])
        self.out_ch = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D, RGB input.

    forward: (B, 3, T, 224, 224) float32 in [-1, 1] with T >= 9 -> dict with ``"pool"`` (B, 1024 x width)
    and ``"logits"`` (B, num_classes), both averaged over the remaining time steps (1 for T = 16).
    """

    def __init__(self, config: I3DConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or I3DConfig()
        self.order: list[str] = []

        def add(name: str, module: nn.Module) -> None:
            self.add_module(name, module)
            self.order.append(name)

        add("Conv3d_1a_7x7", Unit3D(3, cfg.ch(64), (7, 7, 7), (2, 2, 2)))
        add("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2)))
        add("Conv3d_2b_1x1", Unit3D(cfg.ch(64), cfg.ch(64)))
        add("Conv3d_2c_3x3", Unit3D(cfg.ch(64), cfg.ch(192), (3, 3, 3)))
        add("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2)))
        in_ch = cfg.ch(192)
        for name, widths in _MIXED:
            if name == "Mixed_4b":
                add("MaxPool3d_4a_3x3", MaxPool3dSame((3, 3, 3), (2, 2, 2)))
            if name == "Mixed_5b":
                add("MaxPool3d_5a_2x2", MaxPool3dSame((2, 2, 2), (2, 2, 2)))
            block = InceptionModule(in_ch, tuple(cfg.ch(w) for w in widths))
            add(name, block)
            in_ch = block.out_ch
        self.pool_dim = in_ch
        self.logits = Unit3D(in_ch, cfg.num_classes, logits=True)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 5 or x.shape[1] != 3 or tuple(x.shape[3:]) != (CLIP_SIZE, CLIP_SIZE) or x.shape[2] < 9:
            raise ClipError(
                f"I3D input: expected (B, 3, T>=9, {CLIP_SIZE}, {CLIP_SIZE}) in [-1, 1], got {tuple(x.shape)}; "
                "make it with clip_tensor()"
            )
        for name in self.order:
            x = getattr(self, name)(x)
        pooled = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # (B, C, T', 1, 1), as the port
        logits = self.logits(pooled)  # (B, classes, T', 1, 1); dropout is identity at eval
        return {
            "pool": reduce(pooled, "b c t 1 1 -> b c", "mean"),
            "logits": reduce(logits, "b k t 1 1 -> b k", "mean"),
        }


def clip_tensor(video: np.ndarray, frames: int = CLIP_FRAMES, size: int = CLIP_SIZE) -> Tensor:
    """FVD input of one clip: its first ``frames`` frames resized to size x size and scaled to [-1, 1].

    video: (T, H, W, 3) uint8 RGB with T >= ``frames``. Returns (3, frames, size, size) float32.
    """
    check_video(video, min_frames=1)
    if video.shape[0] < frames:
        raise ClipError(f"video: FVD needs at least {frames} frames per clip, got {video.shape[0]}")
    x = torch.from_numpy(np.ascontiguousarray(video[:frames]))
    x = rearrange(x, "t h w c -> t c h w").float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    x = (x / 127.5 - 1.0).clamp(-1.0, 1.0)
    return rearrange(x, "t c h w -> c t h w")


@torch.no_grad()
def embed_video(model: InceptionI3d, video: np.ndarray, *, feature: Feature = "logits") -> np.ndarray:
    """FVD embedding of one clip: (1, 400) float32 logits by default (``feature="pool"``: (1, 1024))."""
    if feature not in ("logits", "pool"):
        raise ConfigError(f"feature: expected 'logits' (standard FVD) or 'pool', got {feature!r}")
    param = next(model.parameters())
    x = rearrange(clip_tensor(video), "c t h w -> 1 c t h w").to(device=param.device, dtype=param.dtype)
    # note: no bf16 autocast even on CUDA: a reference metric should not move with the precision
    return model(x)[feature].float().cpu().numpy()
