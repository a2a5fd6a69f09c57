"""Latent codecs behind one protocol: EnCodec audio, a causal video VAE, a pixel-space codec, and pretrained
codecs in the Hugging Face layout (Wan and LTX video VAEs, DAC, Oobleck; ``hf_*`` modules, docs/codecs.md).

``transformers`` loads only for a Hugging Face EnCodec folder and for DAC, ``diffusers`` (the ``codecs``
extra) only for Wan, LTX and Oobleck; ``load_codec`` picks the class from the folder's config.json. Sources
are local folders; a Hugging Face hub id is fetched only when written ``"hf://owner/name"`` and allowed with
``allow_download=True`` (``avgen.codecs.hub``, EnCodec only).
"""

from __future__ import annotations

from pathlib import Path

from avgen.codecs.audio import EncodecCodec
from avgen.codecs.base import (
    CONFIG_NAME,
    HF_DAC,
    HF_ENCODEC,
    HF_LTX,
    HF_OOBLECK,
    HF_WAN,
    AudioCodec,
    LatentCodec,
    LatentStats,
    VideoCodec,
    local_codec_folder,
    read_codec_config,
)
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.hf_base import HFCodec
from avgen.codecs.hub import hub_id
from avgen.codecs.pixel import PixelCodec, PixelCodecConfig
from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
from avgen.errors import CheckpointError

__all__ = [
    "AudioCodec",
    "CausalVideoVAE",
    "EncodecCodec",
    "EncodecCodecConfig",
    "HFCodec",
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
) -> EncodecCodec | CausalVideoVAE | PixelCodec | HFCodec:
    """Load a local codec folder written by ``save_pretrained``, or a Hugging Face folder of EnCodec, DAC
    (transformers), Wan, LTX-Video or Oobleck (diffusers): an ``EncodecCodec``, ``CausalVideoVAE``,
    ``PixelCodec``, ``DacCodec``, ``WanVideoCodec``, ``LTXVideoCodec`` or ``OobleckCodec``.

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
    # the pretrained adapters import their library only when built
    if kind == HF_WAN:
        from avgen.codecs.hf_wan import WanVideoCodec

        return WanVideoCodec.from_pretrained(path)
    if kind == HF_LTX:
        from avgen.codecs.hf_ltx import LTXVideoCodec

        return LTXVideoCodec.from_pretrained(path)
    if kind == HF_DAC:
        from avgen.codecs.hf_dac import DacCodec

        return DacCodec.from_pretrained(path)
    if kind == HF_OOBLECK:
        from avgen.codecs.hf_oobleck import OobleckCodec

        return OobleckCodec.from_pretrained(path)
    raise CheckpointError(
        f"{path / CONFIG_NAME}: unknown codec kind {kind!r} (known: encodec, video_vae, pixel, and Hugging "
        "Face folders of EncodecModel, DacModel, AutoencoderKLWan, AutoencoderKLLTXVideo, AutoencoderOobleck)"
    )
