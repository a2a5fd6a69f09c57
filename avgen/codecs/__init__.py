"""Latent codecs behind one protocol: EnCodec audio, a causal video VAE, and a pixel-space codec.

Heavy modules (transformers) load only when a codec is built; ``load_codec`` picks the class from the
folder's config.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from avgen.codecs.base import AudioCodec, LatentCodec, LatentStats, VideoCodec

if TYPE_CHECKING:
    from avgen.codecs.audio import EncodecCodec, EncodecCodecConfig
    from avgen.codecs.pixel import PixelCodec, PixelCodecConfig
    from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig

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

_LAZY = {
    "EncodecCodec": "avgen.codecs.audio",
    "EncodecCodecConfig": "avgen.codecs.audio",
    "CausalVideoVAE": "avgen.codecs.video_vae",
    "VideoVAEConfig": "avgen.codecs.video_vae",
    "PixelCodec": "avgen.codecs.pixel",
    "PixelCodecConfig": "avgen.codecs.pixel",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avgen.codecs' has no attribute {name!r}")


def load_codec(source: str | Path) -> EncodecCodec | CausalVideoVAE | PixelCodec:
    """Load any codec folder written by ``save_pretrained`` (or a Hugging Face EnCodec folder / hub id)."""
    import json

    from avgen.codecs.base import CONFIG_NAME, read_codec_config
    from avgen.errors import CheckpointError

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
        from avgen.codecs.audio import EncodecCodec

        return EncodecCodec.from_pretrained(source)
    if kind == "video_vae":
        from avgen.codecs.video_vae import CausalVideoVAE

        return CausalVideoVAE.from_pretrained(path)
    if kind == "pixel":
        from avgen.codecs.pixel import PixelCodec

        return PixelCodec.from_pretrained(path)
    raise CheckpointError(f"{cfg}: unknown codec kind {kind!r} (known: encodec, video_vae, pixel)")
