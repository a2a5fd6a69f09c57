"""A run's metric log: ``log.jsonl`` in the run folder, and TensorBoard scalars when it is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avgen.atomic import write_text


class RunLog:
    """JSONL (append-only, so a torn last line is harmless) + TensorBoard when installed; rank 0 only.

    ``start_step``: the step the run starts (or resumes) from. Records of later steps, written after that
    step's checkpoint by the run that was stopped, are dropped when the log opens (with any ``final``
    record and torn line), so a resumed run's log holds each step once.
    """

    def __init__(self, out: Path, enabled: bool, start_step: int = 0) -> None:
        self.path, self.enabled, self.tb = out / "log.jsonl", enabled, None
        if enabled:
            self._truncate(start_step)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.tb = None

    def _truncate(self, start_step: int) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept = [line for line in lines if _before(line, start_step)]
        if len(kept) != len(lines):
            write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in _flatten(record).items():
                if key != "step" and isinstance(value, int | float):
                    self.tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _before(line: str, start_step: int) -> bool:
    """Whether a log line is a complete record of a step the run has already made (not its final one)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    step = record.get("step") if isinstance(record, dict) else None
    if isinstance(step, bool) or not isinstance(step, int):
        return False
    return step < start_step or (step == start_step and "final" not in record)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}/")
        else:
            out[f"{prefix}{k}"] = v
    return out
