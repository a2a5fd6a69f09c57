"""Pretrained codecs in the Hugging Face folder layout: loading, latent statistics, identity and saving shared by
the adapters in ``hf_wan``, ``hf_ltx``, ``hf_dac`` and ``hf_oobleck``.

Such a folder holds the library's own ``config.json`` and weights (``diffusion_pytorch_model.safetensors`` for
diffusers, ``model.safetensors`` for transformers, or a sharded ``*.safetensors.index.json``), and optionally
``latent_stats.json`` (written by ``avgen codec stats``, ``avgen.codecs.latent_stats``). Only the folder is
read: ``local_files_only``, never the hub.

Latents are normalised per channel by ``LatentStats``; its values come from, in this order, the folder's
``latent_stats.json``, the statistics the model ships (Wan's ``latents_mean``/``latents_std``, LTX's buffers),
or none (mean 0, std 1).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from avgen.codecs.base import CONFIG_NAME, CodecIdCache, LatentStats, local_codec_folder, read_codec_config
from avgen.codecs.latent_stats import STATS_NAME, read_stats_file, write_stats_file
from avgen.errors import AVGenError, CheckpointError

DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
# config keys that say which library wrote the file, not what the model is: left out of codec_id
_VOLATILE_KEYS = frozenset({"transformers_version", "architectures", "dtype", "torch_dtype"})


class CodecDependencyError(AVGenError, ImportError):
    """The library a pretrained codec needs (diffusers, transformers) is missing or too old."""


def library_class(library: str, name: str) -> type:
    """``diffusers.<name>`` or ``transformers.<name>``; CodecDependencyError saying what to install."""
    extra = "pip install 'avgen[codecs]'"
    try:
        module = importlib.import_module(library)
    except ImportError as e:
        raise CodecDependencyError(f"{name} needs the {library} package ({e}); {extra}") from e
    cls = getattr(module, name, None)
    if cls is None:
        version = getattr(module, "__version__", "?")
        raise CodecDependencyError(f"{library} {version} has no {name}; upgrade it: {extra}")
    return cls


def require_weights(path: Path, names: tuple[str, ...], what: str) -> None:
    """CheckpointError naming the folder and the missing file unless one of ``names`` is in ``path``."""
    if not any((path / n).is_file() for n in names):
        others = f" (nor the sharded {', '.join(names[1:])})" if len(names) > 1 else ""
        raise CheckpointError(
            f"{path}: missing {names[0]}{others}; {what} folder needs {CONFIG_NAME} and its weights in the "
            "Hugging Face layout (download the whole folder, e.g. `hf download REPO --local-dir DIR`)"
        )


def load_hf_model(cls: type, path: Path, what: str) -> nn.Module:
    """``cls.from_pretrained(path)`` from local files only, float32; an unreadable weights file, or a weight
    that is missing, unexpected or of the wrong shape, raises CheckpointError naming the folder."""
    from safetensors import SafetensorError

    try:
        model, info = cls.from_pretrained(
            str(path),
            local_files_only=True,
            output_loading_info=True,
            low_cpu_mem_usage=False,
            torch_dtype=torch.float32,
        )
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, SafetensorError) as e:
        raise CheckpointError(f"{path}: cannot load as {what} folder: {e}") from e
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise CheckpointError(f"{path}: weights do not match its {CONFIG_NAME}: {bad}")
    return model.float().eval()


def config_dict(config: Any) -> dict[str, Any]:
    """A diffusers (FrozenDict) or transformers (PretrainedConfig) config as a plain dict."""
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def _plain_config(config: Any) -> dict[str, Any]:
    """A library config object as a JSON-safe dict without the keys that only name the writer."""
    raw = config_dict(config)
    kept = {k: v for k, v in raw.items() if not k.startswith("_") and k not in _VOLATILE_KEYS}
    return json.loads(json.dumps(kept, sort_keys=True, default=str))


class HFCodec(nn.Module):
    """A pretrained Hugging Face model (``self.model``) plus per-channel ``LatentStats`` (``self.stats``).

    Subclasses set ``KIND`` (what ``read_codec_config`` calls the folder), ``LIBRARY`` and ``CLASS_NAME`` (the
    library class), ``WEIGHT_NAMES`` and ``WHAT``; they define ``latent_channels`` and may override
    ``shipped_stats`` and ``check_config``.
    """

    KIND: ClassVar[str]
    LIBRARY: ClassVar[str]
    CLASS_NAME: ClassVar[str]
    WEIGHT_NAMES: ClassVar[tuple[str, ...]]
    WHAT: ClassVar[str]

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.check_config(config_dict(model.config), where=f"{type(model).__name__} config")
        self.model = model
        self.stats = LatentStats(self.latent_channels)
        shipped = self.shipped_stats()
        if shipped is not None:
            self.set_stats(*shipped)
        self._ids = CodecIdCache()

    # --- to override ---
    @property
    def latent_channels(self) -> int:
        raise NotImplementedError

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        """CheckpointError if the model's config (every field, defaults filled in) is one this adapter cannot
        serve; ``where`` names it."""

    def shipped_stats(self) -> tuple[Tensor, Tensor] | None:
        """(mean, std), each (D,), that the model itself carries for its raw latents; None if it has none."""
        return None

    # --- statistics ---
    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Use (mean, std), each (D,) float, to normalise raw latents: z_norm = (z - mean) / std."""
        mean, std = torch.as_tensor(mean).float().flatten(), torch.as_tensor(std).float().flatten()
        d = self.latent_channels
        if mean.shape != (d,) or std.shape != (d,):
            raise CheckpointError(
                f"latent stats need {d} channels, got mean {mean.shape[0]}, std {std.shape[0]}"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise CheckpointError("latent stats must be finite with std > 0")
        self.stats.mean.copy_(mean)
        self.stats.std.copy_(std)

    def _stats_differ_from_shipped(self) -> bool:
        shipped = self.shipped_stats()
        mean, std = shipped if shipped is not None else (torch.zeros(1), torch.ones(1))
        cur_mean, cur_std = self.stats.mean.cpu(), self.stats.std.cpu()
        return not (torch.allclose(cur_mean, mean.float()) and torch.allclose(cur_std, std.float()))

    # --- identity ---
    def model_config(self) -> dict[str, Any]:
        """The library config (JSON-safe, without writer-only keys): what ``codec_id`` hashes with the weights."""
        return _plain_config(self.model.config)

    @property
    def codec_id(self) -> str:
        """Stable hash of config + weights (latent stats included): keys the latent cache."""
        return f"{self.KIND}-{self._ids.get(self.model_config(), self)}"

    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- files ---
    def save_pretrained(self, directory: str | Path) -> None:
        """Write the folder in the library's layout (config.json + weights), plus ``latent_stats.json`` when the
        stats are not the ones the model ships. Each file lands atomically; other files in the folder stay."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".save-", dir=d))
        try:
            self.model.save_pretrained(str(tmp), safe_serialization=True)
            for f in sorted(tmp.iterdir()):
                os.replace(f, d / f.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self._stats_differ_from_shipped():
            write_stats_file(d / STATS_NAME, self.stats.mean, self.stats.std, {"codec": self.KIND})
        else:  # a stale file would override the stats on the next load
            (d / STATS_NAME).unlink(missing_ok=True)

    @classmethod
    def from_pretrained(cls, source: str | Path) -> HFCodec:
        """Load a local folder in the Hugging Face layout (never the hub); CheckpointError naming the folder and
        the missing file, or the mismatch, when it is not one."""
        path = local_codec_folder(source)
        kind = read_codec_config(path)[0]
        if kind != cls.KIND:
            raise CheckpointError(f"{path}: holds a {kind!r} codec, not {cls.WHAT}")
        require_weights(path, cls.WEIGHT_NAMES, cls.WHAT)
        model = load_hf_model(library_class(cls.LIBRARY, cls.CLASS_NAME), path, cls.WHAT)
        cls.check_config(config_dict(model.config), where=str(path / CONFIG_NAME))
        codec = cls(model)
        stats = read_stats_file(path / STATS_NAME, codec.latent_channels)
        if stats is not None:
            codec.set_stats(*stats)
        return codec
