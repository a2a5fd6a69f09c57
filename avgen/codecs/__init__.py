"""Latent codecs behind one protocol: EnCodec audio, a causal video VAE, and a pixel-space codec.

``transformers`` loads only when an EnCodec codec is built; ``load_codec`` picks the class from the
folder's config.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from avgen.codecs.audio import EncodecCodec
from avgen.codecs.base import (
    CONFIG_NAME,
    AudioCodec,
    LatentCodec,
    LatentStats,
    VideoCodec,
    read_codec_config,
)
from avgen.codecs.encodec_config import EncodecCodecConfig
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


def load_codec(source: str | Path) -> EncodecCodec | CausalVideoVAE | PixelCodec:
    """Load any codec folder written by ``save_pretrained`` (or a Hugging Face EnCodec folder / hub id)."""
    path = Path(source)
    cfg = path / CONFIG_NAME
    if path.is_dir() and cfg.is_file():
        try:
            is_hf = json.loads(cfg.read_text()).get("model_type") == "encodec"
        except (json.JSONDecodeError, AttributeError) as e:
            raise CheckpointError(f"{cfg}: not a JSON object ({e})") from e
        kind = "encodec" if is_hf else read_codec_config(path)[0]
    elif path.is_dir():
        raise CheckpointError(f"{path}: no {CONFIG_NAME}; expected a folder written by save_pretrained")
    else:
        kind = "encodec"  # a hub id: only EnCodec is fetched from the hub
    if kind == "encodec":
        return EncodecCodec.from_pretrained(source)
    if kind == "video_vae":
        return CausalVideoVAE.from_pretrained(path)
    if kind == "pixel":
        return PixelCodec.from_pretrained(path)
    raise CheckpointError(f"{cfg}: unknown codec kind {kind!r} (known: encodec, video_vae, pixel)")
