"""Snapshots of a run: the model exported every ``loop.snapshot_every`` steps, kept for good.

Layout (beside ``checkpoints/`` in the run folder)::

    snapshots/step_00000500/
        snapshot.json     {"step", "samples_seen", "samples_per_step", "task"}
        pipeline/         what the task exports (``Task.export``): a pipeline folder for joint runs
        eval_KEY/         ``avgen eval curve``'s report, one folder per set of evaluation options

A snapshot folder is built under a hidden temp name beside its final name and renamed into place, so a
folder named ``step_N`` is complete whatever moment the run was stopped at; leftovers of a stopped write are
removed by the next one. Checkpoint rotation does not look here. ``samples_seen`` is ``step x`` the
global batch (clips per optimizer step over every process and accumulation step).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avgen.atomic import atomic_dir, write_json
from avgen.errors import CheckpointError

SNAPSHOTS = "snapshots"
SNAPSHOT_JSON = "snapshot.json"
PREFIX = "step_"


def snapshot_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / SNAPSHOTS


def snapshot_dir(run_dir: str | Path, step: int) -> Path:
    """``run_dir/snapshots/step_NNNNNNNN`` (the step zero-padded to 8 digits, as checkpoints are)."""
    return snapshot_root(run_dir) / f"{PREFIX}{step:08d}"


def has_snapshot(run_dir: str | Path, step: int) -> bool:
    return (snapshot_dir(run_dir, step) / SNAPSHOT_JSON).is_file()


def write_snapshot(
    run_dir: str | Path,
    step: int,
    samples_per_step: int,
    export: Callable[[Path], None],
    *,
    task: str,
) -> Path:
    """Write ``snapshot_dir(run_dir, step)`` atomically: ``export(folder)`` fills it, then ``snapshot.json``.

    An existing snapshot of ``step`` is left as it is (a resumed run does not redo it). Call on one process.
    """
    target = snapshot_dir(run_dir, step)
    if has_snapshot(run_dir, step):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{PREFIX}*.part"):  # a write stopped midway
        shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(target) as tmp:
        tmp.mkdir()
        export(tmp)
        record = {
            "step": step,
            "samples_seen": step * samples_per_step,
            "samples_per_step": samples_per_step,
            "task": task,
        }
        write_json(tmp / SNAPSHOT_JSON, record)
    return target


def snapshot_folders(run_dir: str | Path) -> list[Path]:
    """The snapshot folders of a run (named ``step_N``, temp folders left out), by step."""
    root = snapshot_root(run_dir)
    if not root.is_dir():
        return []
    found = [(int(p.name[len(PREFIX) :]), p) for p in root.iterdir() if _is_step_name(p.name) and p.is_dir()]
    return [p for _, p in sorted(found)]


def read_snapshot(folder: str | Path) -> dict[str, Any]:
    """``snapshot.json`` of a snapshot folder, checked: CheckpointError naming the folder when it is missing,
    unreadable, or disagrees with the folder's step."""
    folder = Path(folder)
    path = folder / SNAPSHOT_JSON
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{folder}: damaged snapshot ({path} cannot be read: {e})") from e
    ok = isinstance(record, dict) and all(
        isinstance(record.get(k), int) and not isinstance(record.get(k), bool) and record[k] >= 0
        for k in ("step", "samples_seen")
    )
    if not ok:
        raise CheckpointError(f"{folder}: damaged snapshot ({path} lacks a whole step and samples_seen)")
    if _is_step_name(folder.name) and int(folder.name[len(PREFIX) :]) != record["step"]:
        raise CheckpointError(f"{folder}: damaged snapshot ({path} gives step {record['step']})")
    return record


def _is_step_name(name: str) -> bool:
    return name.startswith(PREFIX) and name[len(PREFIX) :].isdigit()
