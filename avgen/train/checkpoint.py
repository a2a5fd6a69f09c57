"""Training checkpoints as safetensors + JSON (never pickle), written atomically, newest complete one wins.

Layout of ``<run>/checkpoints/step_00000500/``:

- ``train_state.safetensors``: every module's tensors under ``module/<name>/<key>``, optimizer tensors
  under ``optim/<name>/<param id>/<key>``, RNG states under ``rng/<name>`` (``rng/<name>@<rank>`` for the
  per-rank states of a distributed run);
- ``train_state.json``: step, optimizer param groups and scalar state, scheduler state dicts, the Python
  RNG state, ``extra`` (data position, anything JSON-able the caller adds), and ``checksums``: the sha256
  of every tensor (its dtype, shape and bytes) and of the rest of the JSON.

A checkpoint is built in ``.step_N.tmp`` and renamed to ``step_N`` in one ``os.replace``, so a folder named
``step_N`` holding both files is complete whatever moment a run was killed at. ``latest.json`` is a
convenience pointer; ``latest_checkpoint`` trusts only the folders themselves, and only those whose
checksums verify (a damaged one is skipped with a warning). Old checkpoints are pruned to the newest ``keep``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avgen.atomic import save_safetensors, write_json
from avgen.errors import CheckpointError

STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
LATEST = "latest.json"
PREFIX = "step_"
CHECKSUMS = "checksums"


@dataclass
class TrainState:
    """Everything a checkpoint holds, as plain data (rank 0's view; RNG states for every rank).

    modules: name -> state dict (full tensors, CPU). optimizers: name -> ``Optimizer.state_dict()``
    (param ids may be ints or parameter names). schedulers: name -> JSON-able state dict.
    rng: rank -> {generator name -> state tensor}, plus ``"python"`` -> ``random.getstate()`` lists.
    extra: JSON-able (data position, config digest, ...).
    """

    step: int
    modules: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedulers: dict[str, dict[str, Any]] = field(default_factory=dict)
    rng: dict[int, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


# --- RNG ------------------------------------------------------------------------------------------------


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """This process's RNG states: torch CPU (+ CUDA), numpy's and Python's global RNGs, named generators."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _python_state()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the legacy global RNG, if anything uses it)
    states["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    states["numpy_meta"] = [str(kind), int(pos), int(has_gauss), float(gauss)]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda{i}"] = s
    for name, gen in (generators or {}).items():
        states[f"gen/{name}"] = gen.get_state()
    return states


def restore_rng(states: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Inverse of ``capture_rng``; a named generator missing from ``states`` is an error."""
    torch.set_rng_state(states["torch"])
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        kind, pos, has_gauss, gauss = states["numpy_meta"]
        keys = states["numpy"].numpy().astype(np.uint32)
        np.random.set_state((kind, keys, pos, has_gauss, gauss))  # noqa: NPY002
    if torch.cuda.is_available():
        cuda = [states[k] for k in sorted(k for k in states if k.startswith("cuda"))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    for name, gen in (generators or {}).items():
        if f"gen/{name}" not in states:
            raise CheckpointError(
                f"checkpoint has no state for the {name!r} generator; resume with the same task"
            )
        gen.set_state(states[f"gen/{name}"])


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


# --- optimizer state <-> flat tensors + JSON ---------------------------------------------------------------


def _optimizer_parts(name: str, sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim/{name}/{pid}/{key}"] = value
            else:
                scalars[f"{pid}/{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _param_id(text: str) -> int | str:
    return int(text) if text.isdigit() else text  # plain optimizers use ints, FSDP full dicts use names


def _optimizer_state(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int | str, dict[str, Any]] = {}
    prefix = f"optim/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, k = key[len(prefix) :].rsplit("/", 1)
            state.setdefault(_param_id(pid), {})[k] = value
    for key, value in meta["scalars"].items():
        pid, k = key.rsplit("/", 1)
        state.setdefault(_param_id(pid), {})[k] = value
    return {"state": state, "param_groups": meta["param_groups"]}


# --- folders ----------------------------------------------------------------------------------------------


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first (temp folders and torn ones are ignored)."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.glob(f"{PREFIX}*"):
        tail = p.name[len(PREFIX) :]
        if p.is_dir() and tail.isdigit() and (p / STATE_JSON).is_file() and (p / STATE_TENSORS).is_file():
            found.append((int(tail), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of ``run_dir`` whose checksums verify, or None when it has none.

    A damaged newer one is skipped with a warning naming it; when every checkpoint is damaged this raises
    CheckpointError. This reads every tensor of the checkpoint it returns (to hash it), so a resume reads it
    twice. Checkpoints written before checksums existed cannot be checked and are taken as they are.
    """
    done = complete_checkpoints(run_dir)
    damaged = []
    for folder in reversed(done):
        try:
            _read_verified(folder)
        except CheckpointError as e:
            warnings.warn(f"skipping a damaged checkpoint: {e}", stacklevel=2)
            damaged.append(folder.name)
            continue
        return folder
    if damaged:
        raise CheckpointError(
            f"{checkpoint_root(run_dir)}: every checkpoint is damaged ({', '.join(damaged)}); "
            "nothing to resume from, so start the run again in a new --out"
        )
    return None


def save_checkpoint(
    run_dir: str | Path,
    state: TrainState,
    *,
    keep: int = 2,
    write_extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``state`` as ``run_dir/checkpoints/step_N`` (atomically), update ``latest.json``, prune to ``keep``.

    ``write_extra_files(folder)`` may add files (a loadable codec or pipeline folder) before the rename.
    Call on one process only (rank 0). Returns the checkpoint folder.
    """
    if keep < 1:
        raise CheckpointError(f"keep must be >= 1, got {keep}")
    root = checkpoint_root(run_dir)
    name = f"{PREFIX}{state.step:08d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for mname, sd in state.modules.items():
        tensors.update({f"module/{mname}/{k}": v for k, v in sd.items()})
    optim_meta = {}
    for oname, sd in state.optimizers.items():
        t, meta = _optimizer_parts(oname, sd)
        tensors.update(t)
        optim_meta[oname] = meta
    rng_json: dict[str, Any] = {}
    for rank, states in state.rng.items():
        for key, value in states.items():
            if torch.is_tensor(value):
                tensors[f"rng/{key}@{rank}"] = value
            else:
                rng_json[f"{key}@{rank}"] = value
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_safetensors(plain, tmp / STATE_TENSORS)
    meta: dict[str, Any] = {
        "step": state.step,
        "optimizers": optim_meta,
        "schedulers": state.schedulers,
        "rng": rng_json,
        "ranks": sorted(state.rng),
        "extra": state.extra,
    }
    meta[CHECKSUMS] = {
        "algorithm": "sha256",
        "json": _json_digest(meta),
        "tensors": {k: _tensor_digest(v) for k, v in sorted(plain.items())},
    }
    write_json(tmp / STATE_JSON, meta)
    if write_extra_files is not None:
        write_extra_files(tmp)
    final = root / name
    if final.exists():  # re-saving a step (e.g. SIGTERM right after a periodic save): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json(root / LATEST, {"step": state.step, "dir": name})
    done = complete_checkpoints(run_dir)
    for old in done[: max(0, len(done) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a CPU tensor's dtype, shape and bytes (little-endian, as safetensors stores them)."""
    h = hashlib.sha256(f"{t.dtype} {tuple(t.shape)}".encode())
    flat = t.contiguous().reshape(-1)
    if flat.numel():
        h.update(flat.view(torch.uint8).numpy())  # a view: no copy
    return h.hexdigest()


def _json_digest(meta: dict[str, Any]) -> str:
    """sha256 of ``meta`` (less its checksums) as canonical JSON: round-tripped first (int keys become
    strings, tuples lists), so the dict a save starts from and the one a load reads give the same text."""
    rest = json.loads(json.dumps({k: v for k, v in meta.items() if k != CHECKSUMS}))
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _verify(folder: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    sums = meta.get(CHECKSUMS)
    if sums is None:
        return  # written before checksums existed: nothing to check against
    where = f"{folder}: damaged checkpoint"
    hint = "delete it to resume from an older one"
    if sums.get("json") != _json_digest(meta):
        raise CheckpointError(f"{where} ({folder / STATE_JSON} does not match its checksum); {hint}")
    expected = sums.get("tensors", {})
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where} ({folder / STATE_TENSORS} has tensors missing {missing[:4]} and unexpected "
            f"{unexpected[:4]}); {hint}"
        )
    bad = [k for k in sorted(expected) if _tensor_digest(tensors[k]) != expected[k]]
    if bad:
        more = f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
        raise CheckpointError(
            f"{where} ({folder / STATE_TENSORS}: {', '.join(bad[:4])}{more} do not match their checksums); "
            f"{hint}"
        )


def _read_verified(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, JSON) of a checkpoint folder, checked against its checksums; CheckpointError otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(folder / STATE_TENSORS))
        meta = json.loads((folder / STATE_JSON).read_text())
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{folder}: unreadable checkpoint ({e}); delete it to resume from an older one"
        ) from e
    if not isinstance(meta, dict) or not isinstance(meta.get(CHECKSUMS, {}), dict):
        raise CheckpointError(
            f"{folder}: damaged checkpoint ({folder / STATE_JSON} is not a checkpoint's JSON)"
        )
    _verify(folder, tensors, meta)
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(
            f"{folder}: damaged checkpoint ({folder / STATE_JSON} gives step {step!r}, not a whole number "
            ">= 0); delete it to resume from an older one"
        )
    tail = folder.name[len(PREFIX) :]
    if folder.name.startswith(PREFIX) and tail.isdigit() and int(tail) != step:
        raise CheckpointError(
            f"{folder}: damaged checkpoint ({folder / STATE_JSON} gives step {step}, its folder {int(tail)}); "
            "delete it to resume from an older one"
        )
    return tensors, meta


def load_checkpoint(folder: str | Path) -> TrainState:
    """Read a checkpoint folder written by ``save_checkpoint``, checking every tensor and the JSON against the
    sha256 checksums saved with them; a mismatch (flipped bytes, a truncated or edited file) raises
    CheckpointError naming the tensors. Checkpoints written before checksums existed load unchecked.
    """
    folder = Path(folder)
    tensors, meta = _read_verified(folder)
    state = TrainState(step=meta["step"], schedulers=meta.get("schedulers", {}), extra=meta.get("extra", {}))
    for key, value in tensors.items():
        kind, rest = key.split("/", 1)
        if kind == "module":
            mname, k = rest.split("/", 1)
            state.modules.setdefault(mname, {})[k] = value
        elif kind == "rng":
            rname, rank = rest.rsplit("@", 1)
            state.rng.setdefault(int(rank), {})[rname] = value
    for key, value in meta.get("rng", {}).items():
        rname, rank = key.rsplit("@", 1)
        state.rng.setdefault(int(rank), {})[rname] = value
    for oname, ometa in meta.get("optimizers", {}).items():
        state.optimizers[oname] = _optimizer_state(oname, tensors, ometa)
    return state


def load_module_state(
    module: torch.nn.Module, state: dict[str, torch.Tensor], where: str, keys: set[str] | None
) -> None:
    """Load ``state`` into ``module``; ``keys`` (when given) is exactly the subset a checkpoint must hold.

    A mismatch raises CheckpointError naming the differences.
    """
    own = module.state_dict()
    expected = set(own) if keys is None else keys
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    shapes = [k for k in sorted(expected & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{where}: weights do not match this model (missing {missing[:4]}, unexpected {unexpected[:4]}, "
            f"shape mismatch {shapes[:4]}); resume with the config the run was started with"
        )
    module.load_state_dict(state, strict=keys is None)
