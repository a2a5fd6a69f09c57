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
    """Load ``state`` into ``module`` strictly; a mismatch in names, shapes or kind of dtype (float / integer /
    bool), or a NaN/inf value, raises CheckpointError naming every difference (and leaves ``module`` as it was)."""
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
    _check_values(own, state, where)
    module.load_state_dict(state, strict=True)


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_floating_point:
        return "floating"
    return "complex" if dtype.is_complex else "integer"


def _few(items: list[str]) -> str:
    return ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")


def _check_values(own: dict[str, Tensor], state: dict[str, Tensor], where: str | Path) -> None:
    """A tensor stored with another kind of dtype than the model's (int8 or bool for a float parameter), or
    holding NaN/inf, raises CheckpointError naming the file and tensors. Any float width is fine for a float
    parameter: ``load_state_dict`` casts, and shipped weights are float16 on disk."""
    kinds = [
        f"{k}: file {state[k].dtype} vs model {own[k].dtype}"
        for k in sorted(state)
        if _kind(state[k].dtype) != _kind(own[k].dtype)
    ]
    if kinds:
        raise CheckpointError(
            f"{where}: {len(kinds)} tensor(s) stored with a dtype that cannot hold the model's values: "
            f"{_few(kinds)}. The file was cast or written wrongly; save the weights again from the model"
        )
    bad = []
    for k in sorted(state):
        t = state[k]
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            bad.append(f"{k} ({int((~torch.isfinite(t)).sum())} of {t.numel()} values)")
    if bad:
        raise CheckpointError(
            f"{where}: {len(bad)} tensor(s) hold NaN or inf: {_few(bad)}. The file is damaged or was saved "
            "from a diverged run; use an earlier checkpoint"
        )


def save_weights(module: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``module.state_dict()`` to ``path`` as safetensors (contiguous CPU copies), atomically."""
    state = {k: v.detach().to("cpu") for k, v in module.state_dict().items()}
    atomic.save_safetensors(state, path, metadata=metadata or {"format": "pt"}, mkdir_parents=True)


def cast_weights_file(path: str | Path, dtype: torch.dtype) -> int:
    """Rewrite a safetensors file with every floating tensor stored as ``dtype`` (atomically); returns the new
    size in bytes. Loading casts back to the module's dtype (``load_state_dict`` copies), so float16 storage
    halves a checkpoint at a rounding error of 2^-11 relative. A non-float ``dtype``, a tensor holding NaN/inf
    or one whose values overflow ``dtype`` raises CheckpointError and leaves the file unchanged."""
    from safetensors import safe_open

    p = Path(path)
    if not dtype.is_floating_point:
        raise CheckpointError(f"{p}: cannot store weights as {dtype}; pick a float dtype (float16, bfloat16)")
    state = load_tensors(p)
    with safe_open(str(p), "pt") as f:
        metadata = f.metadata()
    cast = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    bad = [k for k, v in sorted(cast.items()) if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:  # NaN/inf already in the file, or values past the new dtype's range (65504 for float16)
        was = [k for k in bad if not bool(torch.isfinite(state[k]).all())]
        why = f"hold NaN or inf: {_few(was)}" if was else f"overflow {dtype}: {_few(bad)}; use bfloat16"
        raise CheckpointError(f"{p}: {len(was or bad)} tensor(s) {why}; the file was left as it was")
    atomic.save_safetensors(cast, p, metadata=metadata)
    return p.stat().st_size


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``module``; any missing, extra or mis-shaped tensor, a float parameter
    stored as an integer or bool, or a NaN/inf value raises CheckpointError naming the file and tensors."""
    load_state_checked(module, load_tensors(path), path)
