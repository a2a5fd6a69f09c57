"""Training recipes: ``avgen train CONFIG [--set k=v ...] [--resume] [--out DIR]``.

A recipe is a YAML ``TrainConfig``: ``task`` (joint | distill | audio_codec | video_codec), ``out``,
``loop`` (LoopConfig), ``distributed`` (strategy ddp | fsdp, device) and the task's section (``joint``,
``joint`` and ``distill``, or ``codec``). Every section is checked when the file is loaded: an unknown or
mistyped key is an error naming it. ``torchrun --nproc-per-node N -m avgen.cli train CONFIG`` runs the same recipe on N processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avgen.atomic import check_writable_dir
from avgen.config import apply_overrides, from_dict, load_yaml, to_dict
from avgen.errors import ConfigError
from avgen.train.codec import CodecTrainConfig, train_codec
from avgen.train.codec_data import load_audio_clips, load_video_clips
from avgen.train.distill import DistillConfig, DistillTask
from avgen.train.distributed import STRATEGIES, DistContext, close_distributed, init_distributed
from avgen.train.joint import JointTask
from avgen.train.joint_config import JointConfig
from avgen.train.loop import train
from avgen.train.loop_config import LoopConfig

TASKS = ("joint", "distill", "audio_codec", "video_codec")
JOINT_TASKS = ("joint", "distill")  # the tasks of the joint DiT, set up by the ``joint`` section
CODEC_DATA_KEYS = ("data", "eval_data", "limit", "eval_limit")


@dataclass(frozen=True)
class DistConfig:
    """strategy: "ddp" (replicate, all-reduce gradients) or "fsdp" (FSDP2 ``fully_shard`` per block).
    device: auto (CUDA when present), cpu or cuda. Both only matter under torchrun."""

    strategy: str = "ddp"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"distributed.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"distributed.device must be auto, cpu or cuda, got {self.device!r}")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``codec``: the fields of ``avgen.train.codec.CodecTrainConfig`` that are not
    loop settings (crops, model, losses, batch_size, ...) plus ``data`` / ``eval_data`` folders and
    ``limit`` / ``eval_limit`` file counts. ``distill``: guidance distillation's own settings
    (``avgen.train.distill``), for ``task: distill``."""

    task: str = "joint"
    out: str = "runs/avgen"
    loop: LoopConfig = field(default_factory=LoopConfig)
    distributed: DistConfig = field(default_factory=DistConfig)
    joint: JointConfig = field(default_factory=JointConfig)
    codec: dict[str, Any] = field(default_factory=dict)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "distill":
            self.distill.check(self.joint)
        elif self.distill != DistillConfig():
            raise ConfigError(
                f"distill: settings for task distill, but the task is {self.task!r}; remove them"
            )


def codec_config(cfg: TrainConfig, where: str = "codec") -> CodecTrainConfig:
    """The ``CodecTrainConfig`` of a codec recipe (loop settings taken from ``cfg.loop``)."""
    section = {k: v for k, v in cfg.codec.items() if k not in CODEC_DATA_KEYS}
    names = {f.name for f in dataclasses.fields(CodecTrainConfig)}
    loop_like = {f.name: getattr(cfg.loop, f.name) for f in dataclasses.fields(LoopConfig) if f.name in names}
    clash = sorted(set(section) & set(loop_like))
    if clash:
        raise ConfigError(f"{where}: {clash} are loop settings; set them under loop:, e.g. loop.{clash[0]}")
    if "kind" in section:
        raise ConfigError(f"{where}: 'kind' comes from task (audio_codec or video_codec); remove it")
    kind = "audio" if cfg.task == "audio_codec" else "video"
    return from_dict(CodecTrainConfig, {"kind": kind, **loop_like, **section}, where=where)


def load_recipe(path: str | Path, overrides: list[str] | None = None, out: str | None = None) -> TrainConfig:
    """Read, override (``key.path=value``) and fully validate a recipe; errors name the key at fault."""
    data = apply_overrides(load_yaml(path), overrides or [])
    if out is not None:
        data["out"] = out
    cfg = from_dict(TrainConfig, data, where=str(path))
    if cfg.task not in JOINT_TASKS:
        if not cfg.codec.get("data"):
            raise ConfigError(f"{path}: codec.data (a folder of training media) is required for {cfg.task}")
        codec_config(cfg, where=f"{path}: codec")
    return cfg


def _run_codec(cfg: TrainConfig, ctx: DistContext, resume: bool, progress: bool) -> dict[str, Any]:
    ccfg = codec_config(cfg)
    c = cfg.codec
    t0 = time.perf_counter()
    families = None  # per-clip synth family of the held-out audio, for per-family SI-SNR
    if ccfg.kind == "video":
        train_clips = load_video_clips(c["data"], c.get("limit"))
        held = load_video_clips(c["eval_data"], c.get("eval_limit")) if c.get("eval_data") else []
    else:
        sr, ch = ccfg.audio.sample_rate, ccfg.audio.channels
        train_clips, _ = load_audio_clips(c["data"], sr, ch, c.get("limit"))
        held, families = (
            load_audio_clips(c["eval_data"], sr, ch, c.get("eval_limit")) if c.get("eval_data") else ([], [])
        )
    if ctx.is_main:
        print(
            f"loaded {len(train_clips)} training and {len(held)} held-out clips in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    return train_codec(
        ccfg,
        train_clips,
        held,
        cfg.out,
        resume=resume,
        progress=progress,
        ctx=ctx,
        strategy=cfg.distributed.strategy,
        loop=cfg.loop,
        held_out_families=families,
    )


def _run_joint(
    cfg: TrainConfig, ctx: DistContext, resume: bool, progress: bool, callbacks: tuple = ()
) -> dict[str, Any]:
    options = {"seed": cfg.loop.seed, "device": ctx.device, "progress": progress and ctx.is_main}
    if cfg.task == "distill":
        task: JointTask = DistillTask(cfg.joint, cfg.distill, **options)
    else:
        task = JointTask(cfg.joint, **options)
    return train(
        task,
        cfg.loop,
        cfg.out,
        ctx=ctx,
        strategy=cfg.distributed.strategy,
        resume=resume,
        progress=progress,
        run_config=to_dict(cfg),
        must_match=("task", "joint.model", "joint.lora", *(("distill",) if cfg.task == "distill" else ())),
        callbacks=callbacks,
    )


def run(
    cfg: TrainConfig, *, resume: bool = False, progress: bool = True, callbacks: tuple = ()
) -> dict[str, Any]:
    """Run a recipe in this process (under torchrun: as one rank of the group)."""
    if cfg.loop.num_threads:
        torch.set_num_threads(cfg.loop.num_threads)
    ctx = init_distributed(cfg.distributed.device)
    try:
        if cfg.task in JOINT_TASKS:
            return _run_joint(cfg, ctx, resume, progress, callbacks)
        return _run_codec(cfg, ctx, resume, progress)
    finally:
        close_distributed(ctx)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="avgen train",
        description="train a codec or the joint model from a YAML recipe (see configs/); "
        "run it under torchrun for several processes",
    )
    parser.add_argument("config", help="recipe YAML, e.g. configs/examples/small_dit_synth.yaml")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. loop.steps=200"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the newest complete checkpoint in --out"
    )
    parser.add_argument("--out", help="run folder (default: the recipe's out)")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (log.jsonl is still written)"
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    args = parser.parse_args(argv)
    cfg = load_recipe(args.config, args.set, args.out)
    if args.print_config:
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    check_writable_dir(cfg.out, what="--out" if args.out else f"{args.config}: out")  # before any data loads
    result = run(cfg, resume=args.resume, progress=not args.no_progress)
    if result.get("status") == "interrupted":
        print(f"interrupted at step {result['step']}; continue with --resume", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2, default=str))
    return 0
