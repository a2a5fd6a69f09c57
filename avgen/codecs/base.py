"""The LatentCodec protocol, per-channel latent normalisation, and the codec folder format.

A codec folder holds ``config.json`` (``{"format": "avgen.codec", "kind": ..., "config": {...}}``) and
``model.safetensors`` (the module's state dict, latent statistics included). Both are written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from avgen.errors import CheckpointError, ClipError
from avgen.weights import load_weights, save_weights, write_json

FORMAT = "avgen.codec"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@runtime_checkable
class LatentCodec(Protocol):
    """What every codec offers: encode, decode, a latent channel count and a stable identity."""

    @property
    def latent_channels(self) -> int: ...

    @property
    def codec_id(self) -> str: ...

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...

    def save_pretrained(self, directory: str | Path) -> None: ...


@runtime_checkable
class AudioCodec(LatentCodec, Protocol):
    """Waveform (B, C, N) float32 in [-1, 1] <-> normalised latents (B, D, L), L = ceil(N / hop_length)."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def hop_length(self) -> int: ...

    @property
    def latent_rate(self) -> float: ...

    def latent_length(self, num_samples: int) -> int: ...


@runtime_checkable
class VideoCodec(LatentCodec, Protocol):
    """Video (B, 3, T, H, W) in [-1, 1] <-> normalised latents (B, D, 1 + (T-1)/ts, H/ss, W/ss)."""

    @property
    def temporal_downsample(self) -> int: ...

    @property
    def spatial_downsample(self) -> int: ...

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]: ...


class LatentStats(nn.Module):
    """Per-channel mean/std so that the diffusion model sees unit-scale latents.

    Buffers ``mean`` and ``std`` have shape (D,), float32; identity (0, 1) until fitted. Channel dim is 1.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def _view(self, t: Tensor, z: Tensor) -> Tensor:
        return t.view(1, -1, *([1] * (z.dim() - 2))).to(z.dtype)

    def normalize(self, z: Tensor) -> Tensor:
        """Raw latents (B, D, ...) -> normalised latents, same shape."""
        return (z - self._view(self.mean, z)) / self._view(self.std, z)

    def denormalize(self, z: Tensor) -> Tensor:
        """Normalised latents (B, D, ...) -> raw latents, same shape."""
        return z * self._view(self.std, z) + self._view(self.mean, z)

    @torch.no_grad()
    def fit(self, raw_latents: Iterable[Tensor], min_std: float = 1e-4) -> None:
        """Set mean/std from raw latents (each (B, D, ...)), accumulated in float64."""
        total = sq = None
        count = 0
        for z in raw_latents:
            flat = z.detach().to(torch.float64).transpose(0, 1).reshape(z.shape[1], -1)  # (D, B*...)
            total = flat.sum(1) if total is None else total + flat.sum(1)
            sq = (flat**2).sum(1) if sq is None else sq + (flat**2).sum(1)
            count += flat.shape[1]
        if count == 0 or total is None or sq is None:
            raise ValueError("LatentStats.fit: no latents given")
        mean = total / count
        var = (sq / count - mean**2).clamp_min(0.0)
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(var.sqrt().clamp_min(min_std).to(self.std))


def check_wav(wav: Tensor, channels: int) -> None:
    """ClipError unless ``wav`` is a finite float (B, channels, N >= 1) tensor in [-1, 1]."""
    if not isinstance(wav, Tensor) or wav.dim() != 3:
        got = tuple(wav.shape) if isinstance(wav, Tensor) else type(wav).__name__
        raise ClipError(f"audio codec expects a (B, C, N) tensor, got {got}")
    if not wav.is_floating_point():
        raise ClipError(f"audio codec expects float samples in [-1, 1], got dtype {wav.dtype}")
    if wav.shape[1] != channels:
        fix = "downmix with wav.mean(1, keepdim=True)" if channels == 1 else "match the channel count"
        raise ClipError(f"audio codec is {channels}-channel, got {wav.shape[1]} channels; {fix}")
    if wav.shape[-1] < 1:
        raise ClipError("audio has 0 samples; need at least 1")
    if not torch.isfinite(wav).all():
        raise ClipError("audio contains NaN or inf samples")
    peak = float(wav.abs().max())
    if peak > 1.0 + 1e-4:
        raise ClipError(f"audio samples must lie in [-1, 1], peak is {peak:.4g}; scale or clip it first")


def check_audio_latents(z: Tensor, channels: int) -> None:
    """ClipError unless ``z`` is finite ``(B, channels, L)`` latents, what every audio codec decodes."""
    if not isinstance(z, Tensor) or z.dim() != 3 or z.shape[1] != channels:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ClipError(f"audio codec decodes (B, {channels}, L) latents, got {got}")
    if not torch.isfinite(z).all():
        raise ClipError("audio latents contain NaN or inf")


def maybe_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on CPU (where bf16 matmul may be emulated and far slower than fp32,
    ``avgen.train.precision``)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --- identity ---------------------------------------------------------------------------------------------


def fingerprint(config: dict[str, Any], module: nn.Module) -> str:
    """sha256 (first 16 hex digits) of the canonical config JSON and every tensor in the state dict."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class CodecIdCache:
    """Recomputes a fingerprint only when a tensor changed (in-place updates bump ``Tensor._version``)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value = ""

    def get(self, config: dict[str, Any], module: nn.Module) -> str:
        key = (
            json.dumps(config, sort_keys=True),
            tuple((t.data_ptr(), t._version) for t in module.state_dict(keep_vars=True).values()),
        )
        if key != self._key:
            self._value = fingerprint(config, module)
            self._key = key
        return self._value


def save_codec_folder(directory: str | Path, kind: str, config: dict[str, Any], module: nn.Module) -> None:
    """Write ``config.json`` + ``model.safetensors`` (each atomically) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_weights(module, d / WEIGHTS_NAME, metadata={"format": FORMAT, "kind": kind})
    write_json(d / CONFIG_NAME, {"format": FORMAT, "kind": kind, "config": config})


def local_codec_folder(source: str | Path) -> Path:
    """``source`` as a local codec folder holding ``config.json``; never a hub id, never the network.

    ``~`` is expanded and a relative path is taken from the working directory, whatever its shape
    (``"pipe/audio_codec"`` and ``"facebook/encodec_24khz"`` alike). A missing folder or config.json raises
    CheckpointError naming the folder and the file.
    """
    path = Path(source).expanduser()
    if not path.is_dir():
        if path.exists():
            raise CheckpointError(f"{source}: is a file, not a codec folder written by save_pretrained")
        hint = ""
        if not path.is_absolute() and len(path.parts) == 2 and not path.parent.exists():
            # shaped like a hub id, and no such local parent either: say how a hub id is asked for
            hint = (
                f". Paths are always local; to fetch a Hugging Face hub id pass 'hf://{path.as_posix()}' "
                "with allow_download=True"
            )
        where = "" if path.is_absolute() else f" (looked for the local folder {path.absolute()})"
        raise CheckpointError(
            f"{source}: no such codec folder{where}; expected a folder written by save_pretrained{hint}"
        )
    if not (path / CONFIG_NAME).is_file():
        hint = ""
        if (path / "vae" / CONFIG_NAME).is_file():  # a whole diffusers pipeline: its codec is in vae/
            hint = f"; it looks like a diffusers pipeline folder, pass its codec folder {path / 'vae'}"
        raise CheckpointError(
            f"{path}: has no {CONFIG_NAME}; expected a folder written by save_pretrained{hint}"
        )
    return path


# The kinds ``read_codec_config`` gives folders in a Hugging Face layout (not avgen's): transformers folders
# by their "model_type", diffusers folders by their "_class_name".
HF_ENCODEC = "hf_encodec"
HF_DAC = "hf_dac"
HF_WAN = "hf_wan"
HF_LTX = "hf_ltx"
HF_OOBLECK = "hf_oobleck"
HF_MODEL_TYPES = {"encodec": HF_ENCODEC, "dac": HF_DAC}
HF_CLASS_NAMES = {
    "AutoencoderKLWan": HF_WAN,
    "AutoencoderKLLTXVideo": HF_LTX,
    "AutoencoderOobleck": HF_OOBLECK,
}


def read_codec_config(directory: str | Path) -> tuple[str, dict[str, Any]]:
    """(kind, config dict) of an avgen codec folder, or (``HF_ENCODEC``, ``HF_DAC``, ``HF_WAN``, ``HF_LTX`` or
    ``HF_OOBLECK``, its config) of a folder in the Hugging Face layout; CheckpointError if it is neither."""
    d = local_codec_folder(directory)
    cfg_path = d / CONFIG_NAME
    try:
        data = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from e
    if isinstance(data, dict) and data.get("model_type") in HF_MODEL_TYPES:
        return HF_MODEL_TYPES[data["model_type"]], data
    if isinstance(data, dict) and data.get("_class_name") in HF_CLASS_NAMES:
        return HF_CLASS_NAMES[data["_class_name"]], data
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f'{cfg_path}: not an avgen codec config (no "format": "{FORMAT}")')
    return str(data.get("kind")), dict(data.get("config") or {})


def load_codec_folder(
    directory: str | Path, kind: str, what: str, build: Callable[[dict[str, Any], str], Any]
) -> Any:
    """Build a codec from an avgen codec folder: check its ``kind`` (else CheckpointError naming ``what`` it
    is not), ``build(config_dict, where)`` it, then load ``model.safetensors`` strictly."""
    d = local_codec_folder(directory)
    found, data = read_codec_config(d)
    if found != kind:
        raise CheckpointError(f"{d}: holds a {found!r} codec, not {what}")
    module = build(data, f"{d}/{CONFIG_NAME}")
    load_weights(module, d / WEIGHTS_NAME)
    return module


def iter_chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) pairs covering range(n) in chunks of ``size``."""
    for s in range(0, n, size):
        yield s, min(n, s + size)
