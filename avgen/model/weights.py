"""Save and load a module's weights as safetensors and its config as JSON, atomically, never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from avgen import atomic
from avgen.errors import CheckpointError


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


def save_weights(module: nn.Module, path: str | Path) -> None:
    """Write ``module.state_dict()`` to ``path`` as safetensors (contiguous CPU copies), atomically."""
    state = {k: v.detach().to("cpu") for k, v in module.state_dict().items()}
    atomic.save_safetensors(state, path, metadata={"format": "pt"}, mkdir_parents=True)


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``module``; any missing, extra or mis-shaped tensor raises CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: weights file not found")
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{p}: not a readable safetensors file: {e}") from e
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or extra or wrong:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
        if extra:
            problems.append(f"{len(extra)} unexpected tensors (e.g. {extra[:3]})")
        if wrong:
            problems.append(f"{len(wrong)} shape mismatches (e.g. {wrong[:3]})")
        raise CheckpointError(
            f"{p}: weights do not match the config they are loaded into: {'; '.join(problems)}. "
            "Load them with the config.json saved next to them."
        )
    module.load_state_dict(state)
