"""The AudioCodec protocol over a pretrained audio autoencoder (DAC, Oobleck): checks, resampling, padding to
whole hops, normalisation, exact output lengths.

Input is padded on the right with zeros to a whole number of hops, so N samples give L = ceil(N / hop)
latent frames, latent k at sample k * hop (``ClipGeometry.audio_times``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from avgen.codecs.base import check_audio_latents, check_wav
from avgen.codecs.hf_base import HFCodec
from avgen.dsp import fit_length, resample
from avgen.errors import ClipError


class HFAudioCodec(HFCodec):
    """AudioCodec: waveform (B, C, N) float in [-1, 1] at ``sample_rate`` <-> normalised latents (B, D, L)
    float32, L = ceil(N / hop_length). Subclasses give the rates, ``encode_dist`` and ``decode_raw``."""

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError

    @property
    def channels(self) -> int:
        raise NotImplementedError

    @property
    def hop_length(self) -> int:
        raise NotImplementedError

    @property
    def latent_rate(self) -> float:
        """Latent frames per second: sample_rate / hop_length."""
        return self.sample_rate / self.hop_length

    def latent_length(self, num_samples: int) -> int:
        """Latent frames for ``num_samples`` samples at ``sample_rate``: ceil(N / hop)."""
        if num_samples < 1:
            raise ClipError(f"num_samples must be >= 1, got {num_samples}")
        return math.ceil(num_samples / self.hop_length)

    # --- raw paths ---
    def encode_dist(self, wav: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, C, L * hop) in the model's dtype -> raw (mean, std or None), each (B, D, L)."""
        raise NotImplementedError

    def decode_raw(self, z: Tensor) -> Tensor:
        """Raw latents (B, D, L) -> (B, C, L * hop), unclamped."""
        raise NotImplementedError

    # --- protocol ---
    def encode(
        self,
        wav: Tensor,
        sample_rate: int | None = None,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """(B, C, N) float in [-1, 1] at ``sample_rate`` (default: the codec's) -> (B, D, L) normalised.

        The posterior mean by default; ``sample=True`` draws from the posterior (codecs that have one).
        """
        check_wav(wav, self.channels)
        x = wav.float()
        if sample_rate is not None and sample_rate != self.sample_rate:
            x = resample(x, int(sample_rate), self.sample_rate)
        x = F.pad(x, (0, -x.shape[-1] % self.hop_length))  # (B, C, L * hop)
        mean, std = self.encode_dist(x.to(self._dtype()))
        z = mean.float()
        if sample:
            if std is None:
                raise ClipError(f"{self.WHAT} has no posterior to sample; encode with sample=False")
            z = z + std.float() * torch.randn(z.shape, generator=generator, device=z.device)
        return self.stats.normalize(z)

    def check_latents(self, z: Tensor) -> None:
        check_audio_latents(z, self.latent_channels)

    def decode(self, z: Tensor, length: int | None = None, sample_rate: int | None = None) -> Tensor:
        """(B, D, L) normalised latents -> (B, C, N) float32 in [-1, 1].

        ``length``: exact output sample count (at ``sample_rate`` when given, else the codec's rate); by
        default N = L * hop_length. With ``sample_rate`` the output is resampled to that rate.
        """
        self.check_latents(z)
        out_sr = self.sample_rate if sample_rate is None else int(sample_rate)
        if length is not None and length < 1:
            raise ClipError(f"length must be >= 1, got {length}")
        y = self.decode_raw(self.stats.denormalize(z.float()).to(self._dtype())).float()
        if out_sr != self.sample_rate:
            y = resample(y, self.sample_rate, out_sr)
        if length is not None:
            slack = 0 if out_sr == self.sample_rate else 1  # resampling may round down by one sample
            if length > y.shape[-1] + slack:
                raise ClipError(
                    f"length={length} samples is more than {z.shape[-1]} latent frames give "
                    f"({y.shape[-1]} at {out_sr} Hz); pass the length the latents were encoded from"
                )
            y = fit_length(y, length)
        return y.clamp(-1.0, 1.0)
