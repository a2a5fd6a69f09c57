"""Training checkpoints: modules + optimizers + RNG + step, as safetensors + JSON (never pickle).

Layout of ``<run>/checkpoints/step_00000500/``: ``train_state.safetensors`` (every module's state dict under
``module/<name>/...``, optimizer tensors under ``optim/<name>/<param index>/<key>``, RNG states under
``rng/<name>``) and ``train_state.json`` (step, optimizer param groups and scalar state, user ``extra``).
The folder is written under a temporary name and renamed, then ``latest.json`` is replaced atomically,
so a crash leaves the previous checkpoint intact. Nothing here is codec specific.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avgen.codecs.base import atomic_write_json, load_state_checked, load_tensors, save_tensors
from avgen.errors import CheckpointError

STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
LATEST = "latest.json"


def _optimizer_parts(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim/{name}/{idx}/{key}"] = value
            else:
                scalars[f"{idx}/{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, k = key[len(prefix) :].split("/", 1)
            state.setdefault(int(idx), {})[k] = value
    for key, value in meta["scalars"].items():
        idx, k = key.split("/", 1)
        state.setdefault(int(idx), {})[k] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(
    run_dir: str | Path,
    step: int,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    generators: dict[str, torch.Generator] | None = None,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
    write_extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints`` and point ``latest.json`` at it.

    ``write_extra_files(folder)`` may add files (e.g. a loadable codec folder) before the rename.
    Keeps the newest ``keep`` checkpoints. Returns the checkpoint folder.
    """
    root = Path(run_dir) / "checkpoints"
    name = f"step_{step:08d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for mname, module in modules.items():
        tensors.update({f"module/{mname}/{k}": v for k, v in module.state_dict().items()})
    optim_meta = {}
    for oname, opt in optimizers.items():
        t, meta = _optimizer_parts(oname, opt)
        tensors.update(t)
        optim_meta[oname] = meta
    tensors["rng/torch"] = torch.get_rng_state()
    for gname, gen in (generators or {}).items():
        tensors[f"rng/{gname}"] = gen.get_state()
    save_tensors(tmp / STATE_TENSORS, tensors)
    atomic_write_json(tmp / STATE_JSON, {"step": step, "optimizers": optim_meta, "extra": extra or {}})
    if write_extra_files is not None:
        write_extra_files(tmp)
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_json(root / LATEST, {"step": step, "dir": name})
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[: max(0, len(done) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder ``latest.json`` points at, or None when the run has no checkpoint yet."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    try:
        folder = root / json.loads(pointer.read_text())["dir"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{pointer}: unreadable ({e}); delete it to start over") from e
    if not (folder / STATE_JSON).is_file():
        raise CheckpointError(f"{pointer}: points at {folder}, which has no {STATE_JSON}")
    return folder


def load_training_state(
    folder: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    generators: dict[str, torch.Generator] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Restore modules, optimizers and RNG from a checkpoint folder; returns (step, extra)."""
    folder = Path(folder)
    tensors = load_tensors(folder / STATE_TENSORS)
    meta = json.loads((folder / STATE_JSON).read_text())
    for mname, module in modules.items():
        prefix = f"module/{mname}/"
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        load_state_checked(module, state, f"{folder / STATE_TENSORS} [{mname}]")
    for oname, opt in optimizers.items():
        if oname not in meta["optimizers"]:
            raise CheckpointError(
                f"{folder}: no state for optimizer {oname!r}; resume with the same settings"
            )
        try:
            opt.load_state_dict(_optimizer_state(oname, tensors, meta["optimizers"][oname]))
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{folder}: optimizer {oname!r} does not match: {e}") from e
    torch.set_rng_state(tensors["rng/torch"])
    for gname, gen in (generators or {}).items():
        if f"rng/{gname}" in tensors:
            gen.set_state(tensors[f"rng/{gname}"])
    return int(meta["step"]), dict(meta.get("extra") or {})
