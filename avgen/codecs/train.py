"""Codec training entry point: one readable loop with progress bar, JSONL log, checkpoints and resume.

Run folder layout (``out``)::

    config.json            the resolved CodecTrainConfig
    log.jsonl              one line per log/eval step
    checkpoints/step_N/    train_state.* (see train_state.py) and codec/ (a save_pretrained folder)
    checkpoints/latest.json
    codec/                 the final codec, latent stats fitted on the training clips
    metrics.json           held-out metrics of the final codec
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from avgen.codecs.audio import EncodecCodec, EncodecCodecConfig
from avgen.codecs.base import atomic_write_json
from avgen.codecs.losses import AudioLossWeights, VideoLossWeights
from avgen.codecs.train_state import latest_checkpoint, load_training_state, save_training_state
from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
from avgen.config import from_dict, to_dict
from avgen.errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class CodecTrainConfig:
    """Everything a codec training run depends on (the model config included)."""

    kind: str = "video"
    steps: int = 3000
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    crop_frames: int = 9
    crop_size: int = 64
    crop_seconds: float = 1.0
    adversarial: bool = False
    disc_start: int = 500
    disc_lr: float = 3e-4
    log_every: int = 25
    eval_every: int = 500
    eval_clips: int = 32
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    stats_clips: int = 64
    seed: int = 0
    num_threads: int = 0
    audio: EncodecCodecConfig = field(default_factory=EncodecCodecConfig)
    video: VideoVAEConfig = field(default_factory=VideoVAEConfig)
    audio_loss: AudioLossWeights = field(default_factory=AudioLossWeights)
    video_loss: VideoLossWeights = field(default_factory=VideoLossWeights)

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise ConfigError(f"CodecTrainConfig.kind must be 'audio' or 'video', got {self.kind!r}")
        for name in ("steps", "batch_size", "log_every", "eval_every", "ckpt_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"CodecTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and 0 <= self.min_lr_ratio <= 1 and self.warmup >= 0):
            raise ConfigError(f"CodecTrainConfig: need lr > 0, 0 <= min_lr_ratio <= 1, warmup >= 0 ({self})")
        if self.crop_seconds <= 0 or self.crop_frames < 1 or self.crop_size < 1:
            raise ConfigError("CodecTrainConfig: crop_seconds, crop_frames and crop_size must be positive")


class Task(Protocol):
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def batch(self, gen: torch.Generator) -> Tensor: ...

    def train_step(self, x: Tensor, step: int) -> dict[str, Tensor]: ...

    def evaluate(self, limit: int | None = None) -> dict[str, float]: ...

    def fit_stats(self, limit: int = 64) -> None: ...


def lr_at(step: int, cfg: CodecTrainConfig) -> float:
    """Linear warmup then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_codec(cfg: CodecTrainConfig) -> EncodecCodec | CausalVideoVAE:
    torch.manual_seed(cfg.seed)
    return EncodecCodec(cfg.audio) if cfg.kind == "audio" else CausalVideoVAE(cfg.video)


def build_task(cfg: CodecTrainConfig, codec: nn.Module, train: list[Tensor], held_out: list[Tensor]) -> Task:
    """The audio or video task over in-memory clips (uint8 (3, T, H, W) video / float (C, N) audio)."""
    from avgen.codecs.tasks import AudioTask, VideoTask

    common = {"batch_size": cfg.batch_size, "lr": cfg.lr, "betas": cfg.betas, "grad_clip": cfg.grad_clip}
    if cfg.kind == "video":
        assert isinstance(codec, CausalVideoVAE)
        return VideoTask(
            codec,
            train,
            held_out,
            crop_frames=cfg.crop_frames,
            crop_size=cfg.crop_size,
            weights=cfg.video_loss,
            **common,
        )
    assert isinstance(codec, EncodecCodec)
    return AudioTask(
        codec,
        train,
        held_out,
        crop_seconds=cfg.crop_seconds,
        weights=cfg.audio_loss,
        adversarial=cfg.adversarial,
        disc_start=cfg.disc_start,
        disc_lr=cfg.disc_lr,
        **common,
    )


def _log(out: Path, record: dict[str, Any]) -> None:
    with open(out / "log.jsonl", "a") as f:  # append-only log; a torn last line is harmless
        f.write(json.dumps(record) + "\n")


def train_codec(
    cfg: CodecTrainConfig,
    train: list[Tensor],
    held_out: list[Tensor],
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a codec on in-memory clips; returns the final held-out metrics (also in out/metrics.json).

    ``resume``: continue from ``out/checkpoints/latest.json`` (same config required, ``steps`` may grow).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    saved_cfg = out / "config.json"
    if resume and saved_cfg.is_file():
        before = json.loads(saved_cfg.read_text())
        now = to_dict(cfg)
        model_key = cfg.kind
        if before.get(model_key) != now[model_key] or before.get("kind") != now["kind"]:
            raise CheckpointError(f"{saved_cfg}: --resume with a different model config; use the saved one")
    atomic_write_json(saved_cfg, to_dict(cfg))

    codec = build_codec(cfg)
    task = build_task(cfg, codec, train, held_out)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if resume:
        ckpt = latest_checkpoint(out)
        if ckpt is not None:
            step, _ = load_training_state(ckpt, task.modules, task.optimizers, {"data": gen})
    elif latest_checkpoint(out) is not None:
        raise CheckpointError(f"{out}: already holds a run; pass --resume to continue it or pick a new --out")

    def write_codec(folder: Path) -> None:
        task.fit_stats(cfg.stats_clips)
        codec.train()
        codec.save_pretrained(folder / "codec")

    from tqdm import tqdm

    bar = tqdm(
        total=cfg.steps, initial=step, disable=not progress, dynamic_ncols=True, desc=f"{cfg.kind} codec"
    )
    codec.train()
    t0, sums, count = time.perf_counter(), {}, 0
    while step < cfg.steps:
        for opt in task.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
        logs = task.train_step(task.batch(gen), step)
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + float(v)  # note: a CPU-GPU sync point, fine at codec scale
        count += 1
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            record = {"step": step, "lr": lr_at(step - 1, cfg), **{k: v / count for k, v in sums.items()}}
            record["sec_per_step"] = (time.perf_counter() - t0) / count
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("loss", "psnr", "mel", "l1")})
            _log(out, record)
            t0, sums, count = time.perf_counter(), {}, 0
        if step % cfg.eval_every == 0 and step < cfg.steps:
            _log(out, {"step": step, "eval": task.evaluate(cfg.eval_clips)})
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            save_training_state(
                out,
                step,
                task.modules,
                task.optimizers,
                {"data": gen},
                keep=cfg.keep_checkpoints,
                write_extra_files=write_codec,
            )
            t0 = time.perf_counter()
    bar.close()
    task.fit_stats(cfg.stats_clips)
    codec.save_pretrained(out / "codec")
    metrics = {"step": step, "held_out": task.evaluate(None), "codec_id": codec.codec_id}
    _log(out, {"step": step, "final": metrics["held_out"]})
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def config_from_args(config_path: str | None, overrides: list[str], **fields: Any) -> CodecTrainConfig:
    """CodecTrainConfig from an optional YAML file, ``--set key=value`` overrides and CLI fields."""
    from avgen.config import apply_overrides, load_yaml

    data = load_yaml(config_path) if config_path else {}
    data.update({k: v for k, v in fields.items() if v is not None})
    return from_dict(
        CodecTrainConfig, apply_overrides(data, overrides), where=config_path or "codec train config"
    )


def threads_from_env() -> int:
    """AVGEN_NUM_THREADS or OMP_NUM_THREADS if set, else 0 (torch's default)."""
    for name in ("AVGEN_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0
