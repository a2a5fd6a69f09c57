"""Guidance distillation: a student DiT whose one forward gives its teacher's guided velocity.

The teacher is the DiT of a pipeline folder (``joint.model.init_from``) with that pipeline's sampling
settings (``joint.pipeline.sampling`` may override them): text guidance on video and audio plus sync
guidance, 2-4 forwards per step (``avgen.diffusion.guidance.guided_velocity``). The student starts as a copy
of it and learns, on the latent cache's clips noised at sampled times exactly as joint training noises
them (``JointTask``: the run's ``joint.flow``, so "given clean" samples teach v2a / a2v too), to give from
the conditional text alone what the teacher's branches combine to, by MSE in velocity space over the
noisy tokens (``avgen.diffusion.flow.per_sample_velocity_loss``). The exported pipeline says
``sampling.guidance: folded``, so it samples with one forward per step (``avgen.diffusion.folded``).

With ``joint.model.dit.guidance_embed`` the student also reads the four guidance scales, and each sample
draws them uniformly from ``distill.guidance_ranges`` (the scales not named keep the pipeline's), so the
scales stay a knob of the distilled pipeline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avgen.diffusion.flow import FlowConfig, FlowLoss, interpolate, per_sample_velocity_loss
from avgen.diffusion.folded import guidance_vector
from avgen.diffusion.guidance import guided_velocity
from avgen.errors import ConfigError
from avgen.model.dit import GUIDANCE_SCALES, JointDiT
from avgen.pipeline_config import PIPELINE_FILE, SHIPPED, config_from_json, shipped_path
from avgen.train.joint import FlowBatch, JointTask
from avgen.train.joint_config import JointConfig


@dataclass(frozen=True)
class DistillConfig:
    """The ``distill:`` section of a ``task: distill`` recipe (the rest is the ``joint:`` section: teacher
    in ``model.init_from``, data, flow, batch size, the exported pipeline's few-step sampling).

    ``guidance_ranges``: ``{scale: [low, high]}`` for scales of ``avgen.model.dit.GUIDANCE_SCALES``: each
    training sample draws that scale uniformly in the range, and the student (which must read the scales:
    ``joint.model.dit.guidance_embed``) learns the teacher's velocity at it. Empty: the pipeline's scales,
    fixed.
    """

    guidance_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, bounds in self.guidance_ranges.items():
            where = f"distill.guidance_ranges.{name}"
            if name not in GUIDANCE_SCALES:
                raise ConfigError(
                    f"{where}: not a guidance scale; the scales are {', '.join(GUIDANCE_SCALES)}"
                )
            numbers = all(not isinstance(b, bool) and isinstance(b, int | float) for b in bounds)
            if len(bounds) != 2 or not numbers or not all(math.isfinite(b) for b in bounds):
                raise ConfigError(f"{where} must be [low, high], two finite numbers, got {bounds!r}")
            if bounds[0] > bounds[1] or (name.endswith("_guidance") and bounds[0] < 0):
                raise ConfigError(
                    f"{where} must have low <= high (and low >= 0 for a guidance scale), got {bounds!r}"
                )

    def check(self, joint: JointConfig) -> None:
        """A ConfigError when the ``joint:`` section cannot run this distillation."""
        m = joint.model
        if m.init_from is None:
            raise ConfigError(
                "task distill: joint.model.init_from must name the teacher, a pipeline folder (or 'avgen-tiny')"
            )
        embed = bool(m.dit.get("guidance_embed", False))
        if self.guidance_ranges and not embed:
            raise ConfigError(
                "distill.guidance_ranges: the student must read the scales it learns at; set "
                "joint.model.dit.guidance_embed: true (or drop the ranges to fold in fixed scales)"
            )
        if embed and not self.guidance_ranges:
            raise ConfigError(
                "joint.model.dit.guidance_embed: give distill.guidance_ranges, the scales the student learns "
                "to follow (or leave guidance_embed off to fold in the pipeline's scales, fixed)"
            )
        if embed and joint.lora.rank:
            raise ConfigError(
                "joint.lora with joint.model.dit.guidance_embed: LoRA trains only its adapters, so the new "
                "guidance embedding would stay zero; drop one of them"
            )


def teacher_folder(init_from: str) -> Path:
    """The pipeline folder of ``joint.model.init_from`` (a folder, or a shipped model's name)."""
    return shipped_path(init_from) if init_from in SHIPPED else Path(init_from)


class DistillTask(JointTask):
    """``JointTask`` with the teacher's guided velocity as the target; see the module docstring."""

    name = "distill"

    def __init__(
        self,
        cfg: JointConfig,
        distill: DistillConfig,
        *,
        seed: int = 0,
        device: torch.device | None = None,
        progress: bool = False,
    ) -> None:
        distill.check(cfg)
        folder = teacher_folder(cfg.model.init_from)
        meta_file = folder / PIPELINE_FILE  # (a missing one: loading the student below says so)
        stored = (
            config_from_json(json.loads(meta_file.read_text()), str(meta_file))
            if meta_file.is_file()
            else None
        )
        if stored is not None and stored.sampling.guidance != "cfg":
            raise ConfigError(
                f"joint.model.init_from {cfg.model.init_from}: its guidance is already folded into its DiT "
                "(sampling.guidance: folded); distil from the pipeline it was distilled from"
            )
        super().__init__(cfg, seed=seed, device=device, progress=progress)
        self.distill = distill
        self.teacher = JointDiT.from_pretrained(folder / "dit").to(self.device).eval().requires_grad_(False)
        self.folded = replace(self.pipeline_config.sampling, guidance="cfg")  # what the teacher runs
        self.pipeline_config = replace(self.pipeline_config, sampling=replace(self.folded, guidance="folded"))
        self.uncond = self.text_encoder([self.folded.negative_prompt]).to(self.device)  # (1 row)

    def draw_scales(self, generators: list[torch.Generator]) -> Tensor:
        """``(B, 4)`` guidance scales (``GUIDANCE_SCALES``): the folded ones, with each scale of
        ``guidance_ranges`` drawn uniformly per sample from its generator (in ``GUIDANCE_SCALES`` order)."""
        scales = guidance_vector(self.folded, len(generators))
        for col, name in enumerate(GUIDANCE_SCALES):
            if name in self.distill.guidance_ranges:
                low, high = self.distill.guidance_ranges[name]
                u = torch.cat([torch.rand(1, generator=g) for g in generators])  # (B,)
                scales[:, col] = low + (high - low) * u
        return scales

    def flow_terms(self, model: nn.Module, batch: FlowBatch, flow: FlowConfig) -> FlowLoss:
        """Per-sample ``total, video, audio (B,)``: MSE of ``model``'s velocity (one forward, cond text, the
        drawn scales when it reads them) against the teacher's guided velocity at the same ``x_t``."""
        packed, text = batch.packed, batch.text
        fmask = packed.layout.feature_mask(self.device)  # (L, F)
        x_t = interpolate(packed.tokens, batch.noise * fmask, batch.t)  # (B, L, F)
        scales = self.draw_scales(batch.generators)  # (B, 4)
        # The sync branches' stand-in for the dropped modality: fresh noise per sample, as generation's.
        null = torch.cat([torch.randn((1, *x_t.shape[1:]), generator=g) for g in batch.generators])
        per_sample = {name: scales[:, i].to(self.device) for i, name in enumerate(GUIDANCE_SCALES)}
        if not self.distill.guidance_ranges:  # one number each: the branches only where the scales need them
            per_sample = {name: float(getattr(self.folded, name)) for name in GUIDANCE_SCALES}
        with torch.no_grad():
            teacher = guided_velocity(
                self.teacher,
                packed.positions,
                packed.modality,
                text,
                self.uncond,
                null=null.to(self.device) * fmask,
                **per_sample,
            )
            target = teacher(x_t, batch.t)
        extra: dict[str, Any] = {"phonemes": text.phonemes} if self.phonemes else {}
        if self.model.config.guidance_embed:
            extra["guidance"] = scales.to(self.device)
        pred = model(x_t, batch.t, packed.positions, packed.modality, text.states, text.mask, **extra)
        return per_sample_velocity_loss(
            pred, target, batch.t, packed.modality, fmask, flow, batch.sample_weights, batch.token_weights
        )
