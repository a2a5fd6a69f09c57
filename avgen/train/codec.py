"""Codec training: ``CodecTrainConfig`` (the flat config of ``avgen codec train``) run by the generic loop.

The loop, checkpoints and resume live in ``avgen.train.loop``; the per-step work in
``avgen.train.codec_task``. Run folder layout (``out``)::

    config.json            the resolved CodecTrainConfig
    log.jsonl              one line per log/eval step
    checkpoints/step_N/    train_state.* (see avgen.train.checkpoint) and codec/ (a save_pretrained folder)
    codec/                 the final codec, latent stats fitted on the training clips
    metrics.json           held-out metrics of the final codec
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avgen.atomic import write_json
from avgen.codecs.audio import EncodecCodec
from avgen.codecs.base import HF_ENCODEC, read_codec_config
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.losses import AudioLossWeights, VideoLossWeights
from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
from avgen.config import apply_overrides, from_dict, load_yaml, to_dict
from avgen.errors import CheckpointError, ConfigError
from avgen.train import loop as train_loop
from avgen.train.codec_task import AudioTask, VideoTask
from avgen.train.distributed import DistContext
from avgen.train.loop_config import LoopConfig, lr_factor


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
    init_from: str | None = None
    freeze_encoder: bool = False
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
        if self.freeze_encoder and (self.kind != "video" or self.init_from is None):
            raise ConfigError(
                "CodecTrainConfig.freeze_encoder fine-tunes a trained video codec's decoder: it needs "
                f"kind 'video' and init_from (a codec folder), got kind {self.kind!r}, init_from {self.init_from!r}"
            )

    def loop_config(self) -> LoopConfig:
        """The generic loop's settings of this run."""
        return LoopConfig(
            steps=self.steps,
            lr=self.lr,
            min_lr_ratio=self.min_lr_ratio,
            warmup=self.warmup,
            betas=self.betas,
            grad_clip=self.grad_clip,
            log_every=self.log_every,
            eval_every=self.eval_every,
            ckpt_every=self.ckpt_every,
            keep_checkpoints=self.keep_checkpoints,
            seed=self.seed,
            num_threads=self.num_threads,
        )


def lr_at(step: int, cfg: CodecTrainConfig) -> float:
    """Learning rate at optimizer step ``step``: linear warmup then cosine to ``lr * min_lr_ratio``."""
    return cfg.lr * lr_factor(step, cfg.loop_config())


def build_codec(cfg: CodecTrainConfig) -> EncodecCodec | CausalVideoVAE:
    """A fresh codec of ``cfg``'s architecture, or the trained one in ``cfg.init_from`` (encoder frozen
    with ``freeze_encoder``)."""
    torch.manual_seed(cfg.seed)
    if cfg.init_from is None:
        return EncodecCodec(cfg.audio) if cfg.kind == "audio" else CausalVideoVAE(cfg.video)
    codec = (EncodecCodec if cfg.kind == "audio" else CausalVideoVAE).from_pretrained(cfg.init_from)
    codec.train()
    if cfg.freeze_encoder:
        codec.encoder.requires_grad_(False)
    return codec


def resolve_init(cfg: CodecTrainConfig) -> CodecTrainConfig:
    """``cfg`` with the architecture of ``init_from``'s codec (the run's config.json then names what was
    trained). A recipe that also sets the architecture must agree with the folder."""
    if cfg.init_from is None:
        return cfg
    name, config_type = ("audio", EncodecCodecConfig) if cfg.kind == "audio" else ("video", VideoVAEConfig)
    kind, data = read_codec_config(cfg.init_from)
    if kind == HF_ENCODEC:
        raise CheckpointError(
            f"{cfg.init_from}: a Hugging Face EnCodec folder, not an avgen codec config; init_from needs a "
            "folder written by save_pretrained"
        )
    found = from_dict(config_type, data, where=f"{cfg.init_from} (init_from)")
    given = getattr(cfg, name)
    if given != config_type() and given != found:
        raise ConfigError(
            f"init_from {cfg.init_from} holds a different {name} architecture than the recipe's {name}: "
            f"section; remove that section (the folder's is used) or point init_from at a matching codec"
        )
    return replace(cfg, **{name: found})


def build_task(
    cfg: CodecTrainConfig,
    codec: nn.Module,
    train: list[Tensor],
    held_out: list[Tensor],
    rank: int = 0,
    held_out_families: list[str | None] | None = None,
) -> AudioTask | VideoTask:
    """The audio or video task over in-memory clips (uint8 (3, T, H, W) video / float (C, N) audio)."""
    common = {
        "batch_size": cfg.batch_size,
        "eval_clips": cfg.eval_clips,
        "stats_clips": cfg.stats_clips,
        "seed": cfg.seed,
        "rank": rank,
    }
    if cfg.kind == "video":
        assert isinstance(codec, CausalVideoVAE)
        return VideoTask(
            codec,
            train,
            held_out,
            crop_frames=cfg.crop_frames,
            crop_size=cfg.crop_size,
            weights=cfg.video_loss,
            fit_stats=not cfg.freeze_encoder,
            **common,
        )
    assert isinstance(codec, EncodecCodec)
    return AudioTask(
        codec,
        train,
        held_out,
        held_out_families=held_out_families,
        crop_seconds=cfg.crop_seconds,
        weights=cfg.audio_loss,
        adversarial=cfg.adversarial,
        disc_start=cfg.disc_start,
        disc_lr=cfg.disc_lr,
        **common,
    )


def train_codec(
    cfg: CodecTrainConfig,
    train: list[Tensor],
    held_out: list[Tensor],
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    ctx: DistContext | None = None,
    strategy: str = "ddp",
    loop: LoopConfig | None = None,
    held_out_families: list[str | None] | None = None,
) -> dict[str, Any]:
    """Train a codec on in-memory clips with the generic loop; returns the final held-out metrics.

    ``held_out_families``: the avgen-synth family of each held-out audio clip, for per-family SI-SNR.
    ``resume``: continue from the newest complete checkpoint (same model config required, ``steps`` may
    grow). Every checkpoint holds a loadable ``codec/`` folder; the final codec is ``out/codec``.
    ``loop`` replaces the loop settings derived from ``cfg`` (recipes set EMA, accumulation, precision).
    """
    ctx = ctx or DistContext()
    cfg = resolve_init(cfg)
    if cfg.adversarial and ctx.world_size > 1:
        raise ConfigError("adversarial codec training runs on one process (the discriminator is not synced)")
    task = build_task(
        cfg, build_codec(cfg), train, held_out, rank=ctx.rank, held_out_families=held_out_families
    )
    result = train_loop.train(
        task,
        loop or cfg.loop_config(),
        out,
        ctx=ctx,
        strategy=strategy,
        resume=resume,
        progress=progress,
        run_config=to_dict(cfg),
        must_match=("kind", cfg.kind),
        export_in_checkpoints=True,
    )
    metrics = {
        "step": result["step"],
        "status": result["status"],
        "held_out": result["final"],
        "codec_id": task.exported_id,
    }
    if ctx.is_main and result["status"] == "done":
        write_json(Path(out) / "metrics.json", metrics)
    return metrics


def config_from_args(config_path: str | None, overrides: list[str], **fields: Any) -> CodecTrainConfig:
    """CodecTrainConfig from an optional YAML file, ``--set key=value`` overrides and CLI fields."""
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
