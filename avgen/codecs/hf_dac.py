"""The Descript Audio Codec (transformers ``DacModel``) behind the AudioCodec protocol, on continuous latents.

DAC quantizes its encoder output with a residual VQ of ``n_codebooks`` codebooks; each codebook first
projects the residual to ``codebook_dim`` values (``projected_latents`` in transformers) and looks them up
there. Those projections, stacked, are the continuous latent avgen diffuses: D = n_codebooks * codebook_dim
(9 x 8 = 72 for descript/dac_44khz, 86 latents/s at hop 512). Decoding snaps each codebook's slice to its
nearest code (``quantizer.from_latents``) and runs the decoder, so encode -> decode is DAC's own
reconstruction. DAC ships no latent statistics: compute them with ``avgen codec stats``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from avgen.codecs.base import HF_DAC
from avgen.codecs.hf_audio import HFAudioCodec
from avgen.codecs.hf_base import TRANSFORMERS_WEIGHTS
from avgen.errors import CheckpointError


class DacCodec(HFAudioCodec):
    """DAC: mono (B, 1, N) in [-1, 1] at ``sampling_rate`` <-> (B, n_codebooks * codebook_dim, ceil(N / hop))."""

    KIND = HF_DAC
    LIBRARY = "transformers"
    CLASS_NAME = "DacModel"
    WEIGHT_NAMES = TRANSFORMERS_WEIGHTS
    WHAT = "a DAC audio codec (transformers DacModel)"

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        for key in ("sampling_rate", "n_codebooks", "codebook_dim"):
            if not isinstance(config.get(key), int) or config[key] < 1:
                raise CheckpointError(f"{where}: {key} must be a positive integer, got {config.get(key)!r}")

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.n_codebooks * self.model.config.codebook_dim)

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    @property
    def channels(self) -> int:
        return 1

    @property
    def hop_length(self) -> int:
        return math.prod(int(r) for r in self.model.config.downsampling_ratios)

    def encode_dist(self, wav: Tensor) -> tuple[Tensor, None]:
        # the residual VQ over every codebook (the model's own forward drops codebooks at random in training)
        residual = self.model.encoder(wav)  # (B, hidden_size, L)
        projected = []
        for codebook in self.model.quantizer.quantizers:
            quantized, _, _, _, proj = codebook(residual)  # (B, hidden_size, L), (B, d, L)
            residual = residual - quantized
            projected.append(proj)
        return torch.cat(projected, dim=1), None  # (B, K * d, L)

    def decode_raw(self, z: Tensor) -> Tensor:
        quantized = self.model.quantizer.from_latents(z)[0]  # (B, hidden_size, L)
        return self.model.decoder(quantized)
