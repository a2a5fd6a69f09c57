"""loop.budget_minutes: the step count is fixed from the timed first steps, recorded, kept on resume, and
the learning-rate schedule decays over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from avgen.errors import CheckpointError, ConfigError
from avgen.train import budget as budget_mod
from avgen.train.loop import train
from avgen.train.loop_config import LoopConfig, lr_factor


class Toy:
    """A linear regression that burns a fixed amount of CPU per step (so the budget is predictable)."""

    name = "toy"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(4, 1)
        self.aux_modules: dict[str, nn.Module] = {}
        self.aux_optimizers: dict[str, torch.optim.Optimizer] = {}
        self.samples_per_step = 8
        self.lrs: list[float] = []

    def checkpoint_keys(self) -> None:
        return None

    def next_batches(self, ctx: Any, grad_accum: int) -> list[Any]:
        return [torch.randn(8, 4, generator=torch.Generator().manual_seed(1))]

    def loss(self, model: nn.Module, batch: Any, step: int):
        return (model(batch) - batch.sum(1, keepdim=True)).pow(2).mean(), {}

    def data_state(self) -> dict[str, Any]:
        return {}

    def load_data_state(self, state: dict[str, Any]) -> None:
        pass

    def generators(self) -> dict[str, torch.Generator]:
        return {}

    def fresh_model(self) -> nn.Module:
        return nn.Linear(4, 1)

    def evaluate(self, model: nn.Module, step: int, out: Path) -> dict[str, Any]:
        return {}

    def export(self, model: nn.Module, folder: Path) -> None:
        pass


@pytest.fixture
def fake_clock(monkeypatch):
    """Every clock reading moves 0.5 s on: each timed step (start to stop) costs exactly 0.5 s."""
    now = [0.0]

    def tick() -> float:
        now[0] += 0.5
        return now[0]

    monkeypatch.setattr(budget_mod.time, "process_time", tick)
    monkeypatch.setattr(budget_mod.time, "perf_counter", tick)


def test_budget_fixes_the_step_count_and_the_schedule(tmp_path, fake_clock, monkeypatch) -> None:
    import avgen.train.loop as loop

    schedules: dict[int, int] = {}  # optimizer step -> the step count the schedule decayed over

    def recording(step: int, cfg: LoopConfig) -> float:
        schedules[step] = cfg.steps
        return lr_factor(step, cfg)

    monkeypatch.setattr(loop, "lr_factor", recording)
    cfg = LoopConfig(steps=10_000, lr=0.1, warmup=30, budget_minutes=1.0, ckpt_every=1000, log_every=10)
    lrs: list[int] = []
    result = train(Toy(), cfg, tmp_path / "run", progress=False, callbacks=(lambda s: lrs.append(s),))
    record = json.loads((tmp_path / "run" / "budget.json").read_text())
    # 60 s at 0.5 s a step: 120 steps, fixed after the 20 timed steps that follow the first
    assert record["steps"] == 120 and record["timed_steps"] == budget_mod.CALIBRATION_STEPS
    assert record["seconds_per_step"] == pytest.approx(0.5) and record["clock"] == "process_cpu"
    assert result["step"] == 120 and result["status"] == "done" and lrs[-1] == 120
    assert schedules[5] == 10_000 and schedules[119] == 120  # warmup before the count is fixed, decay over it


def test_budget_is_capped_by_steps_and_kept_on_resume(tmp_path, fake_clock) -> None:
    cfg = LoopConfig(steps=40, lr=0.1, warmup=5, budget_minutes=60.0, ckpt_every=1000)
    assert train(Toy(), cfg, tmp_path / "run", progress=False)["step"] == 40
    assert json.loads((tmp_path / "run" / "budget.json").read_text())["steps"] == 40
    record = tmp_path / "run" / "budget.json"
    record.write_text("{}")
    with pytest.raises(CheckpointError, match="budget"):
        train(Toy(), cfg, tmp_path / "run", progress=False, resume=True)
    with pytest.raises(ConfigError, match="budget_minutes"):
        LoopConfig(budget_minutes=-1.0)
