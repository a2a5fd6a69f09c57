"""The loop's logged step rate counts training steps only: evaluation and checkpoint time are left out,
and the steps before them in a log window keep their own time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from avgen.train.loop import train
from avgen.train.loop_config import LoopConfig


class _Clock:
    """A fake ``time.perf_counter``: it only moves when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _ToyTask:
    """One linear layer fit to zero; each step costs 1 fake second, each evaluation 100."""

    name = "toy"
    samples_per_step = 4

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.aux_modules: dict[str, nn.Module] = {}
        self.aux_optimizers: dict[str, torch.optim.Optimizer] = {}
        self.model = nn.Linear(3, 3)
        self.position = 0

    def checkpoint_keys(self) -> set[str] | None:
        return None

    def next_batches(self, ctx: Any, grad_accum: int) -> list[Tensor]:
        self.position += 1
        return [torch.ones(4, 3)]

    def loss(self, model: nn.Module, batch: Tensor, step: int) -> tuple[Tensor, dict[str, float]]:
        self.clock.now += 1.0
        return model(batch).pow(2).mean(), {}

    def data_state(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.position = state.get("position", 0)

    def generators(self) -> dict[str, torch.Generator]:
        return {}

    def fresh_model(self) -> nn.Module:
        return nn.Linear(3, 3)

    def evaluate(self, model: nn.Module, step: int, out: Path) -> dict[str, Any]:
        self.clock.now += 100.0
        return {"val": 0.0}

    def export(self, model: nn.Module, folder: Path) -> None:
        pass


def test_eval_and_checkpoint_time_is_left_out_of_the_step_rate(tmp_path, monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    # An evaluation at step 3 and a checkpoint at step 4, both inside the first 5-step log window.
    cfg = LoopConfig(steps=10, warmup=1, log_every=5, eval_every=3, ckpt_every=4)
    train(_ToyTask(clock), cfg, tmp_path, progress=False)
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    rates = {r["step"]: r["steps_per_s"] for r in records if "steps_per_s" in r}
    assert sorted(rates) == [5, 10]
    assert rates == {5: pytest.approx(1.0), 10: pytest.approx(1.0)}
    assert [r["step"] for r in records if "eval" in r] == [3, 6, 9]
