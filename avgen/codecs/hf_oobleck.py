"""Stable Audio's Oobleck VAE (diffusers ``AutoencoderOobleck``) behind the AudioCodec protocol.

Stable Audio Open's: 44.1 kHz stereo, hop 2048 (21.5 latents/s), 64 channels. The latent is the posterior
mean by default; ``encode(..., sample=True)`` draws mean + std * noise as stable-audio-tools does when it
trains on the VAE. Oobleck ships no latent statistics: compute them with ``avgen codec stats``, and the
latents are normalised by them.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from avgen.codecs.base import HF_OOBLECK
from avgen.codecs.hf_audio import HFAudioCodec
from avgen.codecs.hf_base import DIFFUSERS_WEIGHTS
from avgen.errors import CheckpointError


class OobleckCodec(HFAudioCodec):
    """Oobleck VAE: (B, audio_channels, N) in [-1, 1] <-> (B, decoder_input_channels, ceil(N / hop))."""

    KIND = HF_OOBLECK
    LIBRARY = "diffusers"
    CLASS_NAME = "AutoencoderOobleck"
    WEIGHT_NAMES = DIFFUSERS_WEIGHTS
    WHAT = "an Oobleck audio VAE (diffusers AutoencoderOobleck)"

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        enc, dec = config.get("encoder_hidden_size"), config.get("decoder_input_channels")
        if not isinstance(enc, int) or not isinstance(dec, int) or enc != 2 * dec:
            # the encoder's output is split into (mean, scale), each half of it
            raise CheckpointError(
                f"{where}: encoder_hidden_size ({enc}) must be twice decoder_input_channels ({dec})"
            )
        if not isinstance(config.get("sampling_rate"), int) or config["sampling_rate"] < 1:
            raise CheckpointError(f"{where}: sampling_rate must be a positive integer")

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.decoder_input_channels)

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    @property
    def channels(self) -> int:
        return int(self.model.config.audio_channels)

    @property
    def hop_length(self) -> int:
        return math.prod(int(r) for r in self.model.config.downsampling_ratios)

    def encode_dist(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        dist = self.model.encode(wav).latent_dist
        return dist.mean, dist.std

    def decode_raw(self, z: Tensor) -> Tensor:
        return self.model.decode(z).sample
