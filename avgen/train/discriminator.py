"""Multi-scale STFT discriminator (as in EnCodec) with hinge adversarial and feature-matching losses.

Each scale looks at the complex STFT (real and imaginary parts as channels) through a stack of 2D convs
dilated in time. Optional in codec training (``adversarial: true``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from avgen.errors import ConfigError


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: int = 1
    filters: int = 16
    n_ffts: tuple[int, ...] = (1024, 512, 256)
    dilations: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        if self.channels < 1 or self.filters < 1 or not self.n_ffts or any(n < 16 for n in self.n_ffts):
            raise ConfigError(f"DiscriminatorConfig: bad sizes {self}")


class STFTDiscriminator(nn.Module):
    """One scale: (B, C, N) -> (logits (B, 1, F', T'), feature maps)."""

    def __init__(self, channels: int, filters: int, n_fft: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = [nn.Conv2d(2 * channels, filters, (3, 9), padding=(1, 4))]
        for d in dilations:
            convs.append(
                nn.Conv2d(filters, filters, (3, 9), stride=(2, 1), dilation=(1, d), padding=(1, 4 * d))
            )
        convs.append(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList(nn.utils.parametrizations.weight_norm(c) for c in convs)
        self.out = nn.utils.parametrizations.weight_norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        b = x.shape[0]
        flat = rearrange(x, "b c n -> (b c) n")
        spec = torch.stft(flat, self.n_fft, self.hop, window=self.window.to(x.dtype), return_complex=True)
        h = rearrange(torch.view_as_real(spec), "(b c) f t ri -> b (c ri) f t", b=b)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DiscriminatorConfig()
        c = self.config
        self.scales = nn.ModuleList(
            STFTDiscriminator(c.channels, c.filters, n, c.dilations) for n in c.n_ffts
        )

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        """(B, C, N) waveform -> per scale (logits, feature maps)."""
        return [d(x) for d in self.scales]


def discriminator_loss(
    real: list[tuple[Tensor, list[Tensor]]], fake: list[tuple[Tensor, list[Tensor]]]
) -> Tensor:
    """Hinge loss for the discriminator (pass ``fake`` computed on detached generator output)."""
    total = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake))
    return total / len(real)


def generator_adversarial_loss(fake: list[tuple[Tensor, list[Tensor]]]) -> Tensor:
    """Hinge loss for the generator: mean over scales of relu(1 - D(fake))."""
    return sum(F.relu(1 - f).mean() for f, _ in fake) / len(fake)


def feature_matching_loss(
    real: list[tuple[Tensor, list[Tensor]]], fake: list[tuple[Tensor, list[Tensor]]]
) -> Tensor:
    """Relative L1 between discriminator features of real and generated audio (real features detached)."""
    terms = [
        F.l1_loss(ff, fr.detach()) / fr.detach().abs().mean().clamp_min(1e-6)
        for (_, feats_r), (_, feats_f) in zip(real, fake)
        for fr, ff in zip(feats_r, feats_f)
    ]
    return torch.stack(terms).mean()
