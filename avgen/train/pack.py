"""A run's resume state in half the bytes, to carry a long run to another machine: ``avgen train pack``.

``pack_run(run, dest)`` writes ``dest`` as a run folder that ``avgen train CONFIG --resume --out dest``
(or a copy of it into the recipe's ``out``) continues from:

    config.json                   the run's resolved config (the resume checks its model keys)
    log.jsonl                     the run's metric log, so the loss curves go on in one file
    checkpoints/step_N/           the newest complete checkpoint, its floating tensors in 16 bits
    snapshots/step_N/             each scored snapshot's record and ``avgen eval curve`` reports, not its
                                  pipeline: the learning curve keeps the points scored before the pack

Module tensors (the weights and their EMA) are stored as float16, or bfloat16 where a value is beyond
float16's range; optimizer moments as bfloat16 (their range spans far below float16's smallest
normal). Counters (an optimizer's ``step``), integer tensors and RNG states keep their dtype. A resume
casts every tensor back to its parameter's dtype, so the run goes on with weights within float16's
rounding (relative 2^-11) of the unpacked ones: a perturbation below one optimizer step's. Snapshot
pipelines and exports stay behind: they are results, not state.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from avgen.atomic import atomic_dir
from avgen.errors import CheckpointError
from avgen.train import checkpoint as ckpt
from avgen.train.snapshots import SNAPSHOT_JSON, snapshot_folders, snapshot_root

CARRIED = ("config.json", "log.jsonl")
F16_MAX = torch.finfo(torch.float16).max


def _half(t: torch.Tensor) -> torch.Tensor:
    """A weight in float16, or bfloat16 where float16 would overflow."""
    if not t.is_floating_point() or t.dtype.itemsize <= 2:
        return t
    if t.numel() and not bool(t.abs().max() < F16_MAX):
        return t.to(torch.bfloat16)
    return t.to(torch.float16)


def _moment(key: str, value: object) -> object:
    """An optimizer state entry in bfloat16, its ``step`` counter as it is."""
    if key == "step" or not torch.is_tensor(value) or not value.is_floating_point():
        return value
    return value.to(torch.bfloat16)


def half_state(state: ckpt.TrainState) -> ckpt.TrainState:
    """``state`` with module tensors in 16 bits (``_half``) and optimizer moments in bfloat16."""
    modules = {m: {k: _half(v) for k, v in sd.items()} for m, sd in state.modules.items()}
    optimizers = {}
    for name, sd in state.optimizers.items():
        per_param = {pid: {k: _moment(k, v) for k, v in s.items()} for pid, s in sd.get("state", {}).items()}
        optimizers[name] = {**sd, "state": per_param}
    return ckpt.TrainState(
        step=state.step,
        modules=modules,
        optimizers=optimizers,
        schedulers=state.schedulers,
        rng=state.rng,
        extra=state.extra,
    )


def _carry_scores(run: Path, dest: Path) -> None:
    """Each scored snapshot's record and evaluation reports (``eval_KEY/``), without its pipeline; an
    unscored snapshot would carry nothing a curve could use."""
    for folder in snapshot_folders(run):
        if not (folder / SNAPSHOT_JSON).is_file() or not any(folder.glob("eval_*/report.json")):
            continue
        target = snapshot_root(dest) / folder.name
        target.mkdir(parents=True)
        shutil.copy2(folder / SNAPSHOT_JSON, target / SNAPSHOT_JSON)
        for scored in sorted(folder.glob("eval_*")):
            shutil.copytree(scored, target / scored.name)


def pack_run(run: str | Path, dest: str | Path) -> Path:
    """Write ``run``'s newest complete checkpoint, config, log and snapshot scores into ``dest``, the
    checkpoint in 16 bits (atomically: ``dest`` is replaced whole or left as it was). Returns the packed
    checkpoint folder."""
    run, dest = Path(run), Path(dest)
    if not (run / "config.json").is_file():
        raise CheckpointError(f"{run}: not a run folder (no config.json); give the run's --out folder")
    latest = ckpt.latest_checkpoint(run)
    if latest is None:
        raise CheckpointError(
            f"{run}: has no complete checkpoint to pack; train it for ckpt_every steps first"
        )
    if dest.resolve() == run.resolve():
        raise CheckpointError(f"{dest}: is the run folder itself; pack into another folder")
    state = half_state(ckpt.load_checkpoint(latest))
    with atomic_dir(dest) as tmp:
        tmp.mkdir(parents=True)
        for name in CARRIED:
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / name)
        _carry_scores(run, tmp)
        ckpt.save_checkpoint(tmp, state, keep=1)
    return ckpt.checkpoint_root(dest) / latest.name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="avgen train pack",
        description="write a run's newest checkpoint, config and log in 16 bits to another folder, to "
        "continue the run elsewhere: avgen train CONFIG --resume --out DEST",
    )
    parser.add_argument("run", help="the run folder (a recipe's out)")
    parser.add_argument("dest", help="the folder to write (replaced whole if it exists)")
    args = parser.parse_args(argv)
    folder = pack_run(args.run, args.dest)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(f"packed {folder} ({size:.1f} MB)")
    return 0
