"""Validation losses of any pipeline on a recipe's validation clips: ``avgen eval loss RECIPE --pipeline P``.

A run's own ``val_loss`` follows its flow settings (clean share, timestep law, loss weights), so runs trained
differently cannot be compared by it. This scores a finished pipeline (a run's ``pipeline`` folder or a
shipped model) with ``JointTask.validation_losses``: the recipe's validation clips, batch size and
``val_batches``, and the fixed per-task settings of ``avgen.train.joint.VALIDATION_FLOWS``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from avgen.errors import ConfigError


def pipeline_validation(
    recipe: str | Path, pipeline: str, overrides: list[str] | None = None, progress: bool = True
) -> dict[str, Any]:
    """``{"val_loss", "val_mse", "val_clips", "pipeline", "recipe", "seconds"}`` of ``pipeline`` on ``recipe``'s
    validation set (the recipe's ``joint.model.init_from`` is replaced by ``pipeline``)."""
    from avgen.train.joint import JointTask
    from avgen.train.recipe import load_recipe

    cfg = load_recipe(recipe, [*(overrides or []), f"joint.model.init_from={pipeline}"])
    if cfg.task != "joint":
        raise ConfigError(f"{recipe}: task is {cfg.task!r}; validation losses need a joint recipe")
    t0 = time.perf_counter()
    task = JointTask(cfg.joint, seed=cfg.loop.seed, progress=progress)
    if task.val_set is None:
        raise ConfigError(f"{recipe}: joint.data gives no validation clips; set joint.data.val_n above 0")
    losses = task.validation_losses(task.model)
    return {
        **losses,
        "pipeline": str(pipeline),
        "recipe": str(recipe),
        "seconds": round(time.perf_counter() - t0, 1),
    }
