"""Weights as safetensors and configs as JSON: atomic writes, strict loads that name every mismatch, never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avgen import atomic
from avgen.errors import CheckpointError

DEFAULT_HINT = "Load the weights with the config.json saved next to them."


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON with sorted keys, atomically (parent folders are created)."""
    atomic.write_json(path, data, indent=2, sort_keys=True, mkdir_parents=True)


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON mapping; a missing or broken file raises CheckpointError naming it."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: not found (expected a config saved by save_pretrained)")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{p}: expected a JSON object, got {type(data).__name__}")
    return data


def load_tensors(path: str | Path) -> dict[str, Tensor]:
    """Every tensor of a safetensors file (on CPU); a missing or unreadable file raises CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: weights file not found")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{p}: not a readable safetensors file ({e}); save the weights again") from e


def load_state_checked(
    module: nn.Module, state: dict[str, Tensor], where: str | Path, *, hint: str = DEFAULT_HINT
) -> None:
    """Load ``state`` into ``module`` strictly; a mismatch raises CheckpointError naming every difference."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(own[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or shapes:

        def few(items: list[str]) -> str:
            return ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")

        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {few(shapes)}")
        if missing:
            parts.append(f"{len(missing)} missing: {few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {few(unexpected)}")
        raise CheckpointError(
            f"{where}: weights do not match the model they are loaded into; " + "; ".join(parts) + f". {hint}"
        )
    module.load_state_dict(state, strict=True)


def save_weights(module: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``module.state_dict()`` to ``path`` as safetensors (contiguous CPU copies), atomically."""
    state = {k: v.detach().to("cpu") for k, v in module.state_dict().items()}
    atomic.save_safetensors(state, path, metadata=metadata or {"format": "pt"}, mkdir_parents=True)


def cast_weights_file(path: str | Path, dtype: torch.dtype) -> int:
    """Rewrite a safetensors file with every floating tensor stored as ``dtype`` (atomically); returns the new
    size in bytes. Loading casts back to the module's dtype (``load_state_dict`` copies), so float16 storage
    halves a checkpoint at a rounding error of 2^-11 relative."""
    from safetensors import safe_open

    p = Path(path)
    state = load_tensors(p)
    with safe_open(str(p), "pt") as f:
        metadata = f.metadata()
    cast = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    atomic.save_safetensors(cast, p, metadata=metadata)
    return p.stat().st_size


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``module``; any missing, extra or mis-shaped tensor raises CheckpointError."""
    load_state_checked(module, load_tensors(path), path)
