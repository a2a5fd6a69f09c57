"""Validation losses of any pipeline on a recipe's validation clips: ``avgen eval loss RECIPE --pipeline P``.

A run's own ``val_loss`` follows its flow settings (clean share, timestep law, loss weights), so runs trained
differently cannot be compared by it. This scores a finished pipeline (a run's ``pipeline`` folder or a
shipped model) with ``avgen.train.joint_validation.validation_losses``: the recipe's validation clips, batch size and
``val_batches``, and the fixed per-task settings of ``avgen.train.joint_validation.VALIDATION_FLOWS``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from avgen.atomic import write_json
from avgen.errors import ConfigError
from avgen.train.joint import JointTask
from avgen.train.joint_validation import validation_losses
from avgen.train.recipe import load_recipe


def pipeline_validation(
    recipe: str | Path, pipeline: str, overrides: list[str] | None = None, progress: bool = True
) -> dict[str, Any]:
    """``{"val_loss", "val_mse", "val_clips", "pipeline", "recipe", "seconds"}`` of ``pipeline`` on ``recipe``'s
    validation set (the recipe's ``joint.model.init_from`` is replaced by ``pipeline``)."""
    cfg = load_recipe(recipe, [*(overrides or []), f"joint.model.init_from={pipeline}"])
    if cfg.task != "joint":
        raise ConfigError(f"{recipe}: task is {cfg.task!r}; validation losses need a joint recipe")
    t0 = time.perf_counter()
    task = JointTask(cfg.joint, seed=cfg.loop.seed, progress=progress)
    if task.val_set is None:
        raise ConfigError(f"{recipe}: joint.data gives no validation clips; set joint.data.val_n above 0")
    losses = validation_losses(task, task.model)
    return {
        **losses,
        "pipeline": str(pipeline),
        "recipe": str(recipe),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str]) -> int:
    """``avgen eval loss RECIPE --pipeline P [--set K=V] [--out FILE]``: print (and write) the losses."""
    parser = argparse.ArgumentParser(
        prog="avgen eval loss",
        description="a pipeline's flow-matching losses on a joint recipe's validation clips, fixed per task "
        "(t2av, v2a, a2v), so runs trained with other settings compare",
    )
    parser.add_argument("recipe", help="joint recipe YAML whose joint.data gives the validation clips")
    parser.add_argument("--pipeline", default="avgen-tiny", help="pipeline folder or shipped model name")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. joint.val_batches=8"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    result = pipeline_validation(args.recipe, args.pipeline, args.set, progress=True)
    mse = result["val_mse"]
    print(
        f"{args.pipeline}: t2av video {mse['t2av']['video']:.4f} audio {mse['t2av']['audio']:.4f}, "
        f"v2a audio {mse['v2a']['audio']:.4f}, a2v video {mse['a2v']['video']:.4f} "
        f"({result['val_clips']} clips; the recipe's own val_loss {result['val_loss']:.4f})"
    )
    if args.out is not None:
        write_json(args.out, result, mkdir_parents=True)
        print(f"-> {args.out}")
    return 0
