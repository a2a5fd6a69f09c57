"""Latent codecs behind one protocol: EnCodec audio, a causal video VAE, and a pixel-space codec.

``transformers`` loads only when an EnCodec codec is built; ``load_codec`` picks the class from the
folder's config.json. Sources are local folders; a Hugging Face hub id is fetched only when written
``"hf://owner/name"`` and allowed with ``allow_download=True`` (``avgen.codecs.hub``).
"""

from __future__ import annotations

from pathlib import Path

from avgen.codecs.audio import EncodecCodec
from avgen.codecs.base import (
    CONFIG_NAME,
    HF_ENCODEC,
    AudioCodec,
    LatentCodec,
    LatentStats,
    VideoCodec,
    local_codec_folder,
    read_codec_config,
)
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.hub import hub_id
from avgen.codecs.pixel import PixelCodec, PixelCodecConfig
from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
from avgen.errors import CheckpointError

__all__ = [
    "AudioCodec",
    "CausalVideoVAE",
    "EncodecCodec",
    "EncodecCodecConfig",
    "LatentCodec",
    "LatentStats",
    "PixelCodec",
    "PixelCodecConfig",
    "VideoCodec",
    "VideoVAEConfig",
    "load_codec",
]


def load_codec(
    source: str | Path, *, allow_download: bool = False
) -> EncodecCodec | CausalVideoVAE | PixelCodec:
    """Load a local codec folder written by ``save_pretrained`` (or a Hugging Face EnCodec folder).

    ``source`` is always a local path (relative to the working directory), never looked up online; only
    ``"hf://owner/name"`` with ``allow_download=True`` fetches an EnCodec from the hub. A missing folder or
    config.json raises CheckpointError naming it, before any ``transformers`` / hub code runs.
    """
    if hub_id(source) is not None:
        return EncodecCodec.from_pretrained(source, allow_download=allow_download)
    path = local_codec_folder(source)
    kind = read_codec_config(path)[0]
    if kind in ("encodec", HF_ENCODEC):
        return EncodecCodec.from_pretrained(path)
    if kind == "video_vae":
        return CausalVideoVAE.from_pretrained(path)
    if kind == "pixel":
        return PixelCodec.from_pretrained(path)
    raise CheckpointError(
        f"{path / CONFIG_NAME}: unknown codec kind {kind!r} (known: encodec, video_vae, pixel)"
    )
