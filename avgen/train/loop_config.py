"""The training loop's settings (``LoopConfig``) and its learning-rate schedule (``lr_factor``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from avgen.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
INT_FIELDS = (
    "steps",
    "warmup",
    "grad_accum",
    "log_every",
    "eval_every",
    "ckpt_every",
    "keep_checkpoints",
    "snapshot_every",
    "seed",
    "num_threads",
)


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation and bookkeeping settings shared by every task.

    lr follows ``lr_factor``: linear warmup over ``warmup`` steps, then cosine to ``lr * min_lr_ratio``
    at ``steps``. ``grad_accum`` micro-batches make one step. ``ema_decay`` 0 turns EMA off.
    ``eval_every`` 0 turns periodic evaluation off. ``precision`` "auto" is bf16 autocast on CUDA and fp32
    on CPU (bf16 matmul on a CPU without bf16 instructions is ~400x slower; on one with avx512_bf16 the
    joint step is 1.6x faster under "bf16", ``benchmarks/TRAIN.md``). ``compile`` runs the model's blocks
    through ``torch.compile`` (the joint DiT's ``compile_blocks``; other models refuse it).
    ``budget_minutes`` > 0 trains for that many minutes instead of ``steps`` (then the most it may run):
    the step count is fixed from the first steps' timing (``avgen.train.budget``), so candidates compare
    at equal compute on the same clips and seeds. ``snapshot_every`` > 0 exports the model (EMA when on)
    every that many steps to ``out/snapshots/step_N`` with its samples seen (``avgen.train.snapshots``), for
    ``avgen eval curve``; checkpoint rotation never removes them. 0 turns snapshots off.
    """

    steps: int = 1000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    grad_accum: int = 1
    ema_decay: float = 0.0
    log_every: int = 25
    eval_every: int = 500
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    snapshot_every: int = 0
    seed: int = 0
    precision: str = "auto"
    num_threads: int = 0
    compile: bool = False
    budget_minutes: float = 0.0

    def __post_init__(self) -> None:
        for name in INT_FIELDS:  # a bool is an int to Python, and 1.5 steps would silently run 2
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"loop.{name} must be a whole number, got {value!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"loop.compile must be true or false, got {self.compile!r}")
        for name in ("steps", "grad_accum", "log_every", "ckpt_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "warmup", "num_threads", "snapshot_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loop.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and 0 <= self.min_lr_ratio <= 1):
            raise ConfigError(
                f"loop: need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr}, {self.min_lr_ratio}"
            )
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"loop.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_decay < 0 or len(self.betas) != 2:
            raise ConfigError("loop: grad_clip and weight_decay must be >= 0 and betas two numbers")
        if not 0 <= self.budget_minutes < float("inf"):
            raise ConfigError(f"loop.budget_minutes must be >= 0 (0 = off), got {self.budget_minutes}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"loop.precision must be one of {PRECISIONS}, got {self.precision!r}")


def lr_factor(step: int, cfg: LoopConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based): warmup, then cosine to min_lr_ratio."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
