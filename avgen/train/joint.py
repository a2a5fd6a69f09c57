"""The joint-model task: packed audio-video latents -> rectified-flow loss, for ``avgen.train.loop``.

Per step: a global batch from one bucket (BucketBatchSampler over the whole set, identical on every
rank) is cut into ``world_size x grad_accum`` micro-batches; each is packed with its bucket's
``ClipGeometry`` times (exactly what ``AVPipeline`` uses), captions are dropped to "" with probability
``caption_dropout`` (the unconditional branch of guidance), and the loss is
``avgen.diffusion.flow.training_loss``, one per sample in one pass for the batch. Each sample's
timesteps, noise and dropout come from a generator seeded by (seed, step, its slot in the global batch),
and the loss is the mean of per-sample losses, so the loss and its gradient do not depend on how the
global batch is split over processes and accumulation steps. Text states are computed once per caption
(the encoder is frozen) and kept in memory. The run's config is ``avgen.train.joint_config``, its model
``avgen.train.joint_parts``, its validation ``avgen.train.joint_validation``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avgen.data.buckets import BucketBatchSampler
from avgen.data.maps import CAPTION_TRANSFORMS
from avgen.diffusion.flow import FlowConfig, FlowLoss, sample_timesteps, training_loss
from avgen.errors import ConfigError
from avgen.model.dit import JointDiT
from avgen.model.phonemes import Phonemes
from avgen.model.text import TextStates
from avgen.pipeline import AVPipeline
from avgen.pipeline_config import caption_words
from avgen.tokens import Packed, pack
from avgen.train.distributed import micro_batch_size
from avgen.train.encode import codecs_on
from avgen.train.foreground import cached_foreground_maps, token_weights
from avgen.train.joint_config import JointConfig
from avgen.train.joint_parts import build_parts
from avgen.train.joint_validation import validation_losses, write_samples
from avgen.train.latent_set import LatentSet
from avgen.train.latents import load_latents
from avgen.train.lora import adapter_keys, apply_lora, save_adapters, strip_lora


@dataclass(frozen=True)
class FlowBatch:
    """One micro-batch ready for its loss: the clean ``packed`` tokens ``(B, L, F)``, their ``text``, per-token
    ``t (B, L)`` and ``noise (B, L, F)``, each sample's generator after those draws (a task that draws more
    goes on from there), and the loss weights ``sample_weights (B, 2)`` / ``token_weights (B, L)`` or None."""

    packed: Packed
    text: TextStates
    t: Tensor
    noise: Tensor
    generators: list[torch.Generator]
    sample_weights: Tensor | None = None
    token_weights: Tensor | None = None


class JointTask:
    """See the module docstring; ``avgen.train.loop.Task`` is the protocol."""

    name = "joint"

    def __init__(
        self, cfg: JointConfig, *, seed: int = 0, device: torch.device | None = None, progress: bool = False
    ) -> None:
        self.cfg, self.seed, self.progress = cfg, seed, progress
        self.device = device or torch.device("cpu")
        self.model, self.video_codec, self.audio_codec, self.text_encoder, self.pipeline_config = build_parts(
            cfg
        )
        if cfg.lora.rank:
            apply_lora(self.model, cfg.lora)
        self.aux_modules: dict[str, nn.Module] = {}
        self.aux_optimizers: dict[str, torch.optim.Optimizer] = {}
        self.samples_per_step = cfg.batch_size
        # Synth clips are encoded on the training device (the GPU when there is one), folders on the CPU.
        encode_on = self.device if cfg.data.source == "synth" else torch.device("cpu")
        self.phonemes = bool(self.model.config.phonemes)  # the DiT reads timed phonemes: the sets carry them
        with codecs_on(encode_on, self.video_codec, self.audio_codec):
            sets = {"progress": progress, "phonemes": self.phonemes}
            self.train_set = load_latents(cfg.data, self.video_codec, self.audio_codec, **sets)
            self.val_set = load_latents(cfg.data, self.video_codec, self.audio_codec, validation=True, **sets)
            self.foreground: list[Tensor] | None = None
            if cfg.foreground_weight > 0:
                self.foreground = cached_foreground_maps(
                    self.video_codec,
                    self.train_set.video,
                    cfg.data.cache_dir,
                    stride=cfg.foreground_stride,
                    kind=cfg.foreground_map,
                    progress=progress,
                )
        for name, named in (("group_loss_weights", cfg.group_loss_weights), ("group_flow", cfg.group_flow)):
            if unknown := set(named) - set(self.train_set.groups):
                raise ConfigError(
                    f"joint.{name} names {sorted(unknown)}, which no training clip belongs to; the "
                    f"training set's groups are {sorted(set(self.train_set.groups))}"
                )
        self.sampler = BucketBatchSampler(self.train_set.buckets, cfg.batch_size, seed=seed, drop_last=True)
        if len(self.sampler) == 0:
            raise ConfigError(
                f"joint.batch_size {cfg.batch_size} is larger than every bucket of the {len(self.train_set)} "
                "training clips; lower it or add data"
            )
        captions = {*self.train_set.captions, *(self.val_set.captions if self.val_set else []), ""}
        self.variants: dict[str, list[str]] = {}
        if cfg.caption_variants > 0:
            transform, kinds = CAPTION_TRANSFORMS[cfg.data.source], tuple(cfg.caption_variant_drops)
            self.variants = {c: transform(c, kinds) for c in set(self.train_set.captions)}
            captions |= {v for vs in self.variants.values() for v in vs}
        self.text = self._encode_captions(sorted(captions))
        self.epoch, self.index, self._epoch_batches = 0, 0, None
        if "vocabulary" not in cfg.pipeline:  # the words it is trained on, for the out-of-world warning
            words = {w for c in self.train_set.captions for w in caption_words(c)}
            vocabulary = tuple(sorted(words | set(self.pipeline_config.vocabulary)))
            self.pipeline_config = replace(self.pipeline_config, vocabulary=vocabulary)
        if "prompt_style" not in cfg.pipeline and cfg.data.source == "synth":  # users' words -> its grammar
            self.pipeline_config = replace(self.pipeline_config, prompt_style="avgen-synth")

    def group_weights(self, data: LatentSet, indices: list[int]) -> Tensor | None:
        """``(B, 2)`` (video, audio) loss factors of ``data`` items ``indices`` from ``group_loss_weights``;
        None when there are none."""
        if not self.cfg.group_loss_weights:
            return None
        rows = []
        for i in indices:
            terms = self.cfg.group_loss_weights.get(data.groups[i], {})
            rows.append([float(terms.get("video", 1.0)), float(terms.get("audio", 1.0))])
        return torch.tensor(rows, device=self.device)

    # --- text ---------------------------------------------------------------------------------------
    def _encode_captions(self, captions: list[str], chunk: int = 64) -> dict[str, tuple[Tensor, Tensor]]:
        """caption -> (states (Lt, D), mask (Lt,)) trimmed to its real tokens; computed once."""
        out = {}
        for s in range(0, len(captions), chunk):
            part = captions[s : s + chunk]
            enc = self.text_encoder(part)
            for i, c in enumerate(part):
                n = int(enc.mask[i].sum())
                out[c] = (enc.states[i, :n].cpu(), enc.mask[i, :n].cpu())
        return out

    def _text(self, captions: list[str], timelines: list[Any] | None = None) -> TextStates:
        """The states of ``captions`` (B), with ``timelines`` (B phoneme timelines) attached if given."""
        text = TextStates.cat([TextStates(self.text[c][0][None], self.text[c][1][None]) for c in captions])
        return text if timelines is None else text.with_phonemes(Phonemes.from_timelines(timelines))

    # --- data ---------------------------------------------------------------------------------------
    def data_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.epoch, self.index, self._epoch_batches = (
            int(state.get("epoch", 0)),
            int(state.get("index", 0)),
            None,
        )

    def generators(self) -> dict[str, torch.Generator]:
        return {}  # every random draw is seeded by (seed, step, slot): nothing to carry over

    def _next_global_batch(self) -> list[int]:
        if self._epoch_batches is None:
            self.sampler.set_epoch(self.epoch)
            self._epoch_batches = list(self.sampler)
        if self.index >= len(self._epoch_batches):
            self.epoch, self.index = self.epoch + 1, 0
            self.sampler.set_epoch(self.epoch)
            self._epoch_batches = list(self.sampler)
        batch = self._epoch_batches[self.index]
        self.index += 1
        return batch

    def next_batches(self, ctx: Any, grad_accum: int) -> list[dict[str, Any]]:
        indices = self._next_global_batch()
        n = micro_batch_size(len(indices), ctx.world_size, grad_accum)
        out = []
        for m in range(grad_accum):
            first = (ctx.rank * grad_accum + m) * n
            out.append({"indices": indices[first : first + n], "slots": list(range(first, first + n))})
        return out

    # --- loss ---------------------------------------------------------------------------------------
    def sample_seed(self, step: int, slot: int, seed: int | None = None) -> int:
        seed = self.seed if seed is None else seed
        return (seed * 1_000_003 + step) * 1_000_033 + slot

    def batch_loss(
        self,
        model: nn.Module,
        data: LatentSet,
        indices: list[int],
        seeds: list[int],
        dropout: float,
        variants: float = 0.0,
        weighted: bool = False,
        flow: FlowConfig | None = None,
    ) -> tuple[Tensor, dict[str, Tensor | float]]:
        """Mean per-sample flow loss of ``data`` items ``indices``; sample i draws from ``seeds[i]``;
        ``dropout`` / ``variants``: chances of an empty caption / of one of the caption's variants;
        ``weighted``: apply ``group_loss_weights``, ``foreground_weight`` and ``group_flow`` (training) or not
        (validation); ``flow``: timestep and loss settings (default: the run's ``cfg.flow``)."""
        flow = flow or self.cfg.flow

        buckets = {data.buckets[i] for i in indices}
        if len(buckets) != 1:
            raise ConfigError(f"a batch must come from one bucket, got {sorted(buckets)}")
        geom = data.geometries[buckets.pop()]
        video = torch.stack([data.video[i] for i in indices]).to(self.device)  # (B, Dv, T', H', W')
        audio = torch.stack([data.audio[i] for i in indices]).to(self.device)  # (B, Da, L)
        packed = pack(self.model.config.tokens, video, audio, geom.video_times(), geom.audio_times())
        ts, noises, captions, timelines, gens = [], [], [], [], []
        for i, s in zip(indices, seeds):
            g = torch.Generator().manual_seed(s)
            gens.append(g)
            drop = bool(torch.rand((), generator=g) < dropout)
            caption = "" if drop else data.captions[i]
            if variants > 0:  # (no draws otherwise: a run without variants keeps its random streams)
                swap, pick = torch.rand(2, generator=g).tolist()
                options = self.variants.get(caption, [])
                if swap < variants and options:
                    caption = options[min(int(pick * len(options)), len(options) - 1)]
            captions.append(caption)
            if self.phonemes:  # an empty caption says nothing timed either (guidance's unconditional branch)
                timelines.append([] if drop else data.phonemes[i])
            times = self.cfg.flow_for(data.groups[i]) if weighted and self.cfg.group_flow else flow
            ts.append(sample_timesteps(times, packed.modality.cpu(), 1, g))  # (1, L)
            noises.append(torch.randn((1, *packed.tokens.shape[1:]), generator=g))  # (1, L, F)
        t = torch.cat(ts).to(self.device)  # (B, L)
        noise = torch.cat(noises).to(self.device)  # (B, L, F)
        text = self._text(captions, timelines if self.phonemes else None).to(self.device)
        weights = self.group_weights(data, indices) if weighted else None  # (B, 2) or None
        token_w = None
        if weighted and self.foreground is not None and data is self.train_set:
            maps = torch.stack([self.foreground[i] for i in indices]).to(self.device)  # (B, T', H', W')
            token_w = token_weights(
                maps, self.model.config.tokens, packed.modality, self.cfg.foreground_weight
            )

        per = self.flow_terms(model, FlowBatch(packed, text, t, noise, gens, weights, token_w), flow)
        loss = per.total.mean()
        logs = {
            "video_mse": per.video.mean(),
            "audio_mse": per.audio.mean(),
            "tokens": float(packed.tokens.shape[0] * packed.tokens.shape[1]),
        }
        return loss, logs

    def flow_terms(self, model: nn.Module, batch: FlowBatch, flow: FlowConfig) -> FlowLoss:
        """Per-sample loss terms ``total, video, audio (B,)`` of one batch: ``training_loss``, the flow
        target ``noise - x0`` at ``batch.t``."""
        packed, text = batch.packed, batch.text
        extra = {"phonemes": text.phonemes} if self.phonemes else {}

        def velocity(x: Tensor, tt: Tensor) -> Tensor:
            return model(x, tt, packed.positions, packed.modality, text.states, text.mask, **extra)

        return training_loss(
            velocity,
            packed.tokens,
            packed.modality,
            packed.layout.feature_mask(self.device),
            flow,
            t=batch.t,
            noise=batch.noise,
            sample_weights=batch.sample_weights,
            token_weights=batch.token_weights,
        )

    def loss(
        self, model: nn.Module, batch: dict[str, Any], step: int
    ) -> tuple[Tensor, dict[str, Tensor | float]]:
        seeds = [self.sample_seed(step, s) for s in batch["slots"]]
        return self.batch_loss(
            model,
            self.train_set,
            batch["indices"],
            seeds,
            self.cfg.caption_dropout,
            self.cfg.caption_variants,
            weighted=True,
        )

    # --- checkpoints, export, evaluation ------------------------------------------------------------
    def checkpoint_keys(self) -> set[str] | None:
        return adapter_keys(self.model) if self.cfg.lora.rank else None

    def fresh_model(self) -> nn.Module:
        model = JointDiT(self.model.config)
        if self.cfg.lora.rank:
            apply_lora(model, self.cfg.lora)
        return model

    def pipeline(self, model: nn.Module) -> Any:
        """An AVPipeline around ``model`` (LoRA merged into a copy) with the run's codecs and text encoder."""
        dit = strip_lora(copy.deepcopy(model)) if self.cfg.lora.rank else model
        return AVPipeline(
            dit.to(self.device), self.video_codec, self.audio_codec, self.text_encoder, self.pipeline_config
        )

    def export(self, model: nn.Module, folder: Path) -> None:
        """``folder/pipeline`` (a save_pretrained folder, LoRA merged) and ``folder/lora`` when LoRA is on."""
        if self.cfg.lora.rank:
            save_adapters(model, self.cfg.lora, folder / "lora")
        self.pipeline(model).save_pretrained(folder / "pipeline", overwrite=True)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, step: int, out: Path) -> dict[str, Any]:
        """``validation_losses`` and ``eval_samples`` clips as MP4 with their sync metrics under
        ``out/samples/step_N/``."""
        metrics: dict[str, Any] = {}
        if self.val_set is not None and self.cfg.val_batches:
            metrics |= validation_losses(self, model)
        if self.cfg.eval_samples and self.val_set is not None:
            metrics["samples"] = write_samples(self, model, step, out)
        return metrics
