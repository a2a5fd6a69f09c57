"""Tiny random codecs for tests: same code paths as the real ones, built in milliseconds."""

from __future__ import annotations

import copy
from functools import lru_cache

import torch

from avgen.codecs.audio import EncodecCodec
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.pixel import PixelCodec, PixelCodecConfig
from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig

TINY_AUDIO = EncodecCodecConfig(
    sample_rate=16000,
    channels=1,
    latent_channels=8,
    num_filters=4,
    ratios=(8, 5, 4, 2),
    num_lstm_layers=1,
    codebook_size=16,
    num_quantizers=2,
)
TINY_VIDEO = VideoVAEConfig(latent_channels=4, patch_size=2, channels=(8, 8, 8), temporal_down=(True, True))


@lru_cache(maxsize=4)
def _tiny_audio_prototype(seed: int) -> EncodecCodec:
    # build once per seed, hand out copies
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        codec = EncodecCodec(TINY_AUDIO).eval()
    with torch.no_grad():
        for layer in codec.model.quantizer.layers:
            layer.codebook.embed.copy_(torch.randn(layer.codebook.embed.shape, generator=g))
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    return codec


def tiny_audio_codec(seed: int = 0) -> EncodecCodec:
    """16 kHz mono EnCodec, hop 320, 8 latent channels, random weights and random RVQ codebooks.

    A fresh copy each call (same weights for the same seed); the global RNG is left untouched.
    """
    return copy.deepcopy(_tiny_audio_prototype(seed))


def tiny_video_vae(seed: int = 0) -> CausalVideoVAE:
    """Causal VAE with 8x spatial / 4x temporal compression, 4 latent channels, width 8, random weights."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return CausalVideoVAE(TINY_VIDEO).eval()


def tiny_pixel_codec() -> PixelCodec:
    """Pixel codec with 1x2x2 patches (12 latent channels, spatial downsample 2)."""
    return PixelCodec(PixelCodecConfig(patch_t=1, patch_h=2, patch_w=2)).eval()
