"""A training budget in minutes, turned into a step count once the step time is known.

Candidates compared at an equal budget must each run a whole learning-rate schedule, so a budget does not
cut a run short: after ``CALIBRATION_STEPS`` timed steps (the first step, which compiles and warms caches,
is not timed) the run fixes its step count to what fits the budget, at most ``loop.steps``, writes it to
``budget.json`` in the run folder, and its schedule decays over that count from then on (the warmup does
not depend on it, so fix it inside the warmup). ``--resume`` reads the file, so a resumed run keeps it.
Time is the process's CPU time on a CPU (all threads; a busy machine's other processes do not count) and
wall-clock time on a GPU; evaluation and checkpoints are not counted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from avgen.atomic import write_json
from avgen.errors import CheckpointError

BUDGET_FILE = "budget.json"
CALIBRATION_STEPS = 20


class StepBudget:
    """Times the steps of a run against ``minutes`` (see the module docstring)."""

    def __init__(self, minutes: float, device: torch.device, out: Path, max_steps: int, resume: bool) -> None:
        self.minutes, self.max_steps, self.path = minutes, max_steps, out / BUDGET_FILE
        self.clock_name = "process_cpu" if device.type == "cpu" else "wall"
        self.clock = time.process_time if device.type == "cpu" else time.perf_counter
        self.steps: int | None = None
        if resume and self.path.is_file():
            try:
                self.steps = int(json.loads(self.path.read_text())["steps"])
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(
                    f"{self.path}: not a budget record ({e}); delete it to time the run again"
                ) from e
        self._seen, self._timed, self._spent, self._t0 = 0, 0, 0.0, 0.0

    def start(self) -> None:
        """Call before a step's work."""
        self._t0 = self.clock()

    def stop(self, step: int) -> int | None:
        """Call after the step numbered ``step`` (1-based); returns the step count the budget allows once
        enough steps are timed (then ``fix`` it), else None."""
        self._seen += 1
        if self.steps is not None or self._seen == 1:  # the first step compiles: not timed
            return None
        self._spent += self.clock() - self._t0
        self._timed += 1
        if self._timed < CALIBRATION_STEPS:
            return None
        return max(step, min(self.max_steps, int(self.minutes * 60 / (self._spent / self._timed))))

    def fix(self, steps: int, is_main: bool) -> None:
        """Fix the run's step count (every process the same) and record it in ``budget.json``."""
        self.steps = steps
        if is_main:
            write_json(
                self.path,
                {
                    "steps": steps,
                    "minutes": self.minutes,
                    "seconds_per_step": self._spent / self._timed,
                    "clock": self.clock_name,
                    "timed_steps": self._timed,
                },
            )
