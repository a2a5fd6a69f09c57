"""The joint-model task: packed audio-video latents -> rectified-flow loss, for ``avgen.train.loop``.

Per step: a global batch from one bucket (BucketBatchSampler over the whole set, identical on every
rank) is cut into ``world_size x grad_accum`` micro-batches; each is packed with its bucket's
``ClipGeometry`` times (exactly what ``AVPipeline`` uses), captions are dropped to "" with probability
``caption_dropout`` (the unconditional branch of guidance), and the loss is ``flow_loss`` per sample
(``per_sample_flow_loss``, one pass for the batch). Each sample's timesteps, noise and dropout come from
a generator seeded by (seed, step, its slot in the global batch), and the loss is the mean of per-sample
losses, so the loss and its gradient do not depend on how the
global batch is split over processes and accumulation steps. Text states are computed once per caption
(the encoder is frozen) and kept in memory.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avgen.diffusion.flow import FlowConfig, interpolate, per_sample_flow_loss, sample_timesteps
from avgen.errors import AVGenError, ConfigError
from avgen.model.text import TextStates
from avgen.tokens import TokenSpec
from avgen.train.latents import JointDataConfig, LatentSet, codecs_on, load_latents
from avgen.train.lora import LoRAConfig, adapter_keys, apply_lora, save_adapters, strip_lora


@dataclass(frozen=True)
class JointModelConfig:
    """What is trained. ``init_from``: a pipeline folder to fine-tune (its DiT, codecs and text encoder;
    the other fields then only matter where noted: ``dit`` may still set ``GROWABLE_DIT_FIELDS``, e.g.
    ``bridge_window`` adds a sync bridge, zero-initialised, to the pretrained DiT). Otherwise a new DiT of
    ``preset`` (+ ``dit`` field overrides) over the codec folders ``video_codec`` / ``audio_codec`` and
    ``text_encoder`` (None: the offline MiniLM; a local folder). "tiny" for a codec or the text encoder
    builds a small random one in process (tests and smoke runs). ``video_patch`` (pt, ph, pw): latent
    frames/rows/columns per video token, e.g. (4, 2, 2) over a VAE without temporal compression keeps the
    token count of (1, 2, 2) over a 4x-temporal one; ``audio_patch``: audio latent frames per token (both
    ignored with ``init_from``). ``trainable``: fnmatch patterns of DiT parameter names; when given, only
    the parameters they match train and the rest stay frozen, e.g. ``["*.bridge.*"]`` trains a sync bridge
    grown onto a pretrained DiT and leaves everything it already knew as it was (empty: all train)."""

    init_from: str | None = None
    preset: str = "default"
    dit: dict[str, Any] = field(default_factory=dict)
    video_codec: str | None = None
    audio_codec: str | None = None
    text_encoder: str | None = None
    text_max_length: int = 77
    video_patch: tuple[int, int, int] = (1, 2, 2)
    audio_patch: int = 2
    seed: int = 0
    trainable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from avgen.model.dit import dit_config

        self.token_spec(1, 1)  # a bad patch fails here, by name
        if isinstance(self.trainable, str) or not all(isinstance(p, str) and p for p in self.trainable):
            raise ConfigError(
                f"joint.model.trainable must be a list of parameter-name patterns such as '*.bridge.*', "
                f"got {self.trainable!r}"
            )
        if "tokens" in self.dit:
            raise ConfigError(
                "joint.model.dit.tokens: the token layout comes from the codecs; set joint.model.video_patch "
                "/ audio_patch instead"
            )
        dit_config(self.preset, **self.dit)  # an unknown preset or DiT field fails here, by name
        if self.init_from is None and not (self.video_codec and self.audio_codec):
            raise ConfigError(
                "joint.model: give init_from (a pipeline folder) or both video_codec and audio_codec "
                "(codec folders from `avgen train configs/tiny_video_vae_2d.yaml` / tiny_audio_codec.yaml)"
            )

    def token_spec(self, video_channels: int, audio_channels: int) -> TokenSpec:
        """The DiT's ``TokenSpec`` over codecs with these latent channel counts."""
        return TokenSpec(
            video_channels=video_channels,
            audio_channels=audio_channels,
            video_patch=tuple(int(p) for p in self.video_patch),
            audio_patch=int(self.audio_patch),
        )


def _finite_weight(w: Any) -> bool:
    """A loss weight: a finite int or float >= 0 (not a bool)."""
    return not isinstance(w, bool) and isinstance(w, int | float) and 0 <= w < float("inf")


# FlowConfig fields a group may override (joint.group_flow): those that only decide a sample's timesteps.
GROUP_FLOW_FIELDS = ("independent_prob", "clean_prob", "clean_modality", "uniform_prob")


@dataclass(frozen=True)
class JointConfig:
    """The joint task. batch_size is global (all processes and accumulation steps together).
    pipeline: PipelineConfig overrides for the exported pipeline (steps, sampler, guidance scales).
    caption_variants: the chance that a training caption (one not dropped) is swapped for one of its
    ``avgen.data.synth.captions.caption_variants``, the same clip described with one attribute fewer (no
    size / shape / pace word, or no colour), so each colour is learned apart from the word it came with;
    validation always uses the caption itself. Meant for avgen-synth captions: on other text it drops the
    same words where they occur. Measured once (runs/README.md, session 10 probes): 0.5 on talk clips for
    600 steps lowered the asked face colour (test split 0.59 -> 0.25), so it is off by default.
    caption_variant_drops: which variants to swap in: "adjectives" (keeps the colour: 'a white ball
    bounces') and/or "colours" (keeps the size / shape / pace word: 'a big ball bounces').
    group_loss_weights: per-group factors on the training loss's video / audio terms, e.g.
    ``{keys: {audio: 0.2}}`` (a group is a synth family, or a folder clip's top-level subfolder; see
    ``avgen.train.latents``); groups and terms not named keep 1. The loss stays the mean over samples, so
    lowering one group's weight also lowers the loss's scale. The validation loss is never weighted.
    foreground_weight: weighs each training video token's error by ``1 + foreground_weight * share`` (the
    share of its pixels that show an object, from the decoded clip), over the clip's mean, so small objects
    weigh more and the loss keeps its scale (``avgen.train.foreground``); 0 (default) weighs tokens alike.
    foreground_stride: decode every n-th latent frame for those maps (exact for per-frame codecs).
    foreground_map: what those maps show: "objects" (default) or "mouth" (the region a talking face's
    mouth covers in the clip, to weigh lip movement).
    group_flow: per-group overrides of ``flow``'s timestep fields (``GROUP_FLOW_FIELDS``) for training
    samples, e.g. ``{talk: {clean_prob: 0.5, clean_modality: audio}}`` trains talk clips on
    audio-to-video (dubbing) while the other groups keep ``flow``'s video-to-audio (Foley); groups not
    named use ``flow``. The validation loss always uses ``flow``."""

    model: JointModelConfig = field(
        default_factory=lambda: JointModelConfig(video_codec="tiny", audio_codec="tiny")
    )
    data: JointDataConfig = field(default_factory=JointDataConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    batch_size: int = 8
    caption_dropout: float = 0.1
    caption_variants: float = 0.0
    caption_variant_drops: tuple[str, ...] = ("adjectives", "colours")
    val_batches: int = 4
    eval_samples: int = 0
    group_loss_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    foreground_weight: float = 0.0
    foreground_stride: int = 1
    foreground_map: str = "objects"
    group_flow: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.val_batches < 0 or self.eval_samples < 0:
            raise ConfigError("joint: batch_size must be >= 1, val_batches and eval_samples >= 0")
        if self.lora.rank and self.model.trainable:
            raise ConfigError(
                "joint.model.trainable and joint.lora both choose what trains: LoRA trains only its adapters; "
                "drop one of them"
            )
        for group, terms in self.group_loss_weights.items():
            where = f"joint.group_loss_weights.{group}"
            if not isinstance(terms, dict) or not terms or not set(terms) <= {"video", "audio"}:
                raise ConfigError(f"{where} must map 'video' and/or 'audio' to a weight, got {terms!r}")
            for term, w in terms.items():
                if not _finite_weight(w):
                    raise ConfigError(f"{where}.{term} must be a finite number >= 0, got {w!r}")
        for group in self.group_flow:
            self.flow_for(group)  # refuses unknown fields and bad values by name
        if not _finite_weight(self.foreground_weight):
            raise ConfigError(
                f"joint.foreground_weight must be a finite number >= 0, got {self.foreground_weight!r}"
            )
        if isinstance(self.foreground_stride, bool) or not isinstance(self.foreground_stride, int):
            raise ConfigError(
                f"joint.foreground_stride must be an integer >= 1, got {self.foreground_stride!r}"
            )
        if self.foreground_stride < 1:
            raise ConfigError(f"joint.foreground_stride must be >= 1, got {self.foreground_stride}")
        from avgen.train.foreground import KINDS

        if self.foreground_map not in KINDS:
            raise ConfigError(f"joint.foreground_map must be one of {KINDS}, got {self.foreground_map!r}")
        for name in ("caption_dropout", "caption_variants"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"joint.{name} must be in [0, 1], got {getattr(self, name)}")
        from avgen.data.synth.captions import VARIANT_DROPS

        drops = self.caption_variant_drops
        if isinstance(drops, str) or not drops or not set(drops) <= set(VARIANT_DROPS):
            raise ConfigError(
                f"joint.caption_variant_drops must be a non-empty list of {list(VARIANT_DROPS)}, got {drops!r}"
            )
        from avgen.config import from_dict
        from avgen.pipeline import PipelineConfig

        from_dict(PipelineConfig, dict(self.pipeline), where="joint.pipeline")

    def flow_for(self, group: str) -> FlowConfig:
        """The flow settings a training sample of ``group`` draws its timesteps from (``group_flow``)."""
        from dataclasses import replace

        terms = self.group_flow.get(group)
        if terms is None:
            return self.flow
        where = f"joint.group_flow.{group}"
        if not isinstance(terms, dict) or not terms:
            raise ConfigError(f"{where} must map fields of {GROUP_FLOW_FIELDS} to values, got {terms!r}")
        if unknown := sorted(set(terms) - set(GROUP_FLOW_FIELDS)):
            raise ConfigError(
                f"{where}.{unknown[0]}: a group may only override {', '.join(GROUP_FLOW_FIELDS)} (the loss's "
                "settings are the run's, in joint.flow)"
            )
        try:
            return replace(self.flow, **terms)
        except (ConfigError, TypeError) as e:  # (TypeError: a value of the wrong type, e.g. a list)
            raise ConfigError(f"{where}: {e}") from None


def _codec(spec: str, kind: str, seed: int) -> Any:
    if spec == "tiny":
        from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae

        return tiny_video_vae(seed) if kind == "video" else tiny_audio_codec(seed)
    from avgen.codecs import load_codec

    return load_codec(spec)


# DiT fields a fine-tune (init_from) may set: the pretrained weights load unchanged into the new model, and
# what they add starts as a no-op (the sync bridge's output projection is zero), so step 0 samples as before.
GROWABLE_DIT_FIELDS = ("bridge_window", "bridge_heads", "gradient_checkpointing")


def freeze_except(model: nn.Module, patterns: tuple[str, ...]) -> set[str]:
    """Freeze every parameter of ``model`` but those whose name matches one of ``patterns`` (fnmatch);
    returns the names left trainable. A ConfigError when a pattern matches nothing (a mistyped pattern must
    not silently train less than asked)."""
    names = [n for n, _ in model.named_parameters()]
    keep: set[str] = set()
    for pattern in patterns:
        hits = {n for n in names if fnmatch.fnmatchcase(n, pattern)}
        if not hits:
            raise ConfigError(
                f"joint.model.trainable: {pattern!r} matches no DiT parameter (names look like "
                f"{names[0]!r}; a sync bridge's are 'blocks.N.bridge.*' and need joint.model.dit.bridge_window)"
            )
        keep |= hits
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    return keep


def grow_dit(dit: nn.Module, overrides: dict[str, Any], source: str, seed: int = 0) -> nn.Module:
    """``dit`` (a pretrained ``JointDiT`` from ``source``) with ``overrides`` of ``GROWABLE_DIT_FIELDS``: the
    same model where nothing changes, else a new one holding all of its weights plus freshly initialised
    (``seed``) modules that start as no-ops. Anything that would change or drop trained weights is a
    ``ConfigError`` naming the field."""
    from dataclasses import replace

    from avgen.model.dit import JointDiT

    old = dit.config
    fixed = sorted(set(overrides) - set(GROWABLE_DIT_FIELDS))
    if fixed:
        raise ConfigError(
            f"joint.model.dit.{fixed[0]}: init_from {source} fixes the DiT's architecture; a fine-tune can "
            f"only set {', '.join(GROWABLE_DIT_FIELDS)} (remove {', '.join(fixed)}, or train a new DiT "
            "without init_from)"
        )
    new = replace(old, **overrides)
    if new == old:
        return dit
    if old.bridge_window > 0 and new.bridge_window == 0:
        raise ConfigError(
            f"joint.model.dit.bridge_window: 0 would drop the trained sync bridge of init_from {source} "
            f"(its window is {old.bridge_window} s); leave bridge_window out to keep it"
        )
    if old.bridge_window > 0 and new.bridge_heads != old.bridge_heads:
        raise ConfigError(
            f"joint.model.dit.bridge_heads: init_from {source} has a trained sync bridge of "
            f"{old.bridge_heads} heads; its weights do not fit {new.bridge_heads}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = JointDiT(new)
    missing, unexpected = grown.load_state_dict(dit.state_dict(), strict=False)
    if unexpected or any(".bridge." not in k for k in missing):  # (a bug, not a user error)
        raise AVGenError(f"growing the DiT of {source}: missing {missing}, unexpected {unexpected}")
    return grown.to(next(dit.parameters()).device)


def build_parts(cfg: JointConfig) -> tuple[nn.Module, Any, Any, Any, Any]:
    """(dit, video codec, audio codec, text encoder, PipelineConfig) of the run, codecs/text frozen."""
    from avgen.config import from_dict, to_dict
    from avgen.model.dit import JointDiT, dit_config
    from avgen.model.text import TextEncoder, TextEncoderConfig, tiny_text_encoder
    from avgen.pipeline import AVPipeline, PipelineConfig

    m = cfg.model
    if m.init_from is not None:
        pipe = AVPipeline.from_pretrained(m.init_from)
        dit, vc, ac, te, base = pipe.dit, pipe.video_codec, pipe.audio_codec, pipe.text_encoder, pipe.config
        dit = grow_dit(dit, m.dit, m.init_from, m.seed)
        dit.train().requires_grad_(True)
    else:
        vc, ac = _codec(m.video_codec, "video", m.seed), _codec(m.audio_codec, "audio", m.seed)
        if m.text_encoder == "tiny":
            te = tiny_text_encoder(max_length=m.text_max_length, seed=m.seed)
        else:
            te = TextEncoder.from_config(TextEncoderConfig(path=m.text_encoder, max_length=m.text_max_length))
        spec = m.token_spec(vc.latent_channels, ac.latent_channels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(m.seed)
            dit = JointDiT(dit_config(m.preset, tokens=spec, text_dim=te.dim, **m.dit))
        text_path = m.text_encoder if m.text_encoder not in (None, "tiny") else None
        base = PipelineConfig(
            name=f"avgen-{m.preset}",
            fps=cfg.data.fps,
            height=cfg.data.size[0],
            width=cfg.data.size[1],
            duration=cfg.data.duration,
            text=TextEncoderConfig(path=text_path, max_length=m.text_max_length),
        )
    if m.trainable:
        freeze_except(dit, m.trainable)
    for part in (vc, ac, te):
        part.eval().requires_grad_(False)
    pcfg = from_dict(PipelineConfig, {**to_dict(base), **cfg.pipeline}, where="joint.pipeline")
    return dit, vc, ac, te, pcfg


# Validation's fixed flow settings, one per task: one t per sample from logit-normal(0, 1), shift 1, for
# every run whatever it trained with; "v2a" gives the frames clean and scores the sound, "a2v" the reverse.
# The random draws do not depend on these settings, so every task sees the same t and noise per clip; they
# come from VALIDATION_SEED, not the run's seed, so every run sees them too.
VALIDATION_SEED = 0
VALIDATION_FLOWS: dict[str, tuple[FlowConfig, tuple[str, ...]]] = {
    "t2av": (FlowConfig(independent_prob=0.0, clean_prob=0.0), ("video", "audio")),
    "v2a": (FlowConfig(independent_prob=0.0, clean_prob=1.0, clean_modality="video"), ("audio",)),
    "a2v": (FlowConfig(independent_prob=0.0, clean_prob=1.0, clean_modality="audio"), ("video",)),
}


class JointTask:
    """See the module docstring; ``avgen.train.loop.Task`` is the protocol."""

    name = "joint"

    def __init__(
        self, cfg: JointConfig, *, seed: int = 0, device: torch.device | None = None, progress: bool = False
    ) -> None:
        from avgen.data.buckets import BucketBatchSampler

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
        with codecs_on(encode_on, self.video_codec, self.audio_codec):
            self.train_set = load_latents(cfg.data, self.video_codec, self.audio_codec, progress=progress)
            self.val_set = load_latents(
                cfg.data, self.video_codec, self.audio_codec, validation=True, progress=progress
            )
            self.foreground: list[Tensor] | None = None
            if cfg.foreground_weight > 0:
                from avgen.train.foreground import cached_foreground_maps

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
            from avgen.data.synth.captions import caption_variants

            drops = tuple(cfg.caption_variant_drops)
            self.variants = {c: caption_variants(c, drops) for c in set(self.train_set.captions)}
            captions |= {v for vs in self.variants.values() for v in vs}
        self.text = self._encode_captions(sorted(captions))
        self.epoch, self.index, self._epoch_batches = 0, 0, None

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

    def _text(self, captions: list[str]) -> TextStates:
        return TextStates.cat([TextStates(self.text[c][0][None], self.text[c][1][None]) for c in captions])

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
        from avgen.codecs.tasks import micro_batch_size

        indices = self._next_global_batch()
        n = micro_batch_size(len(indices), ctx.world_size, grad_accum)
        out = []
        for m in range(grad_accum):
            first = (ctx.rank * grad_accum + m) * n
            out.append({"indices": indices[first : first + n], "slots": list(range(first, first + n))})
        return out

    # --- loss ---------------------------------------------------------------------------------------
    def _sample_seed(self, step: int, slot: int, seed: int | None = None) -> int:
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
        from avgen.tokens import pack

        flow = flow or self.cfg.flow

        buckets = {data.buckets[i] for i in indices}
        if len(buckets) != 1:
            raise ConfigError(f"a batch must come from one bucket, got {sorted(buckets)}")
        geom = data.geometries[buckets.pop()]
        video = torch.stack([data.video[i] for i in indices]).to(self.device)  # (B, Dv, T', H', W')
        audio = torch.stack([data.audio[i] for i in indices]).to(self.device)  # (B, Da, L)
        packed = pack(self.model.config.tokens, video, audio, geom.video_times(), geom.audio_times())
        fmask = packed.layout.feature_mask(self.device)  # (L, F)
        ts, noises, captions = [], [], []
        for i, s in zip(indices, seeds):
            g = torch.Generator().manual_seed(s)
            drop = bool(torch.rand((), generator=g) < dropout)
            caption = "" if drop else data.captions[i]
            if variants > 0:  # (no draws otherwise: older runs keep their random streams)
                swap, pick = torch.rand(2, generator=g).tolist()
                options = self.variants.get(caption, [])
                if swap < variants and options:
                    caption = options[min(int(pick * len(options)), len(options) - 1)]
            captions.append(caption)
            times = self.cfg.flow_for(data.groups[i]) if weighted and self.cfg.group_flow else flow
            ts.append(sample_timesteps(times, packed.modality.cpu(), 1, g))  # (1, L)
            noises.append(torch.randn((1, *packed.tokens.shape[1:]), generator=g))  # (1, L, F)
        t = torch.cat(ts).to(self.device)  # (B, L)
        noise = torch.cat(noises).to(self.device) * fmask  # (B, L, F)
        x0 = packed.tokens
        text = self._text(captions).to(self.device)
        pred = model(interpolate(x0, noise, t), t, packed.positions, packed.modality, text.states, text.mask)
        weights = self.group_weights(data, indices) if weighted else None  # (B, 2) or None
        token_w = None
        if weighted and self.foreground is not None and data is self.train_set:
            from avgen.train.foreground import token_weights

            maps = torch.stack([self.foreground[i] for i in indices]).to(self.device)  # (B, T', H', W')
            token_w = token_weights(
                maps, self.model.config.tokens, packed.modality, self.cfg.foreground_weight
            )
        per = per_sample_flow_loss(pred, x0, noise, t, packed.modality, fmask, flow, weights, token_w)  # (B,)
        loss = per.total.mean()
        logs = {
            "video_mse": per.video.mean(),
            "audio_mse": per.audio.mean(),
            "tokens": float(x0.shape[0] * x0.shape[1]),
        }
        return loss, logs

    def loss(
        self, model: nn.Module, batch: dict[str, Any], step: int
    ) -> tuple[Tensor, dict[str, Tensor | float]]:
        seeds = [self._sample_seed(step, s) for s in batch["slots"]]
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
        from avgen.model.dit import JointDiT

        model = JointDiT(self.model.config)
        if self.cfg.lora.rank:
            apply_lora(model, self.cfg.lora)
        return model

    def pipeline(self, model: nn.Module) -> Any:
        """An AVPipeline around ``model`` (LoRA merged into a copy) with the run's codecs and text encoder."""
        from avgen.pipeline import AVPipeline

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
            metrics |= self.validation_losses(model)
        if self.cfg.eval_samples and self.val_set is not None:
            metrics["samples"] = self._write_samples(model, step, out)
        return metrics

    @torch.no_grad()
    def validation_losses(self, model: nn.Module) -> dict[str, Any]:
        """Flow losses on the first ``val_batches`` validation batches, fixed noise, no caption dropout.

        ``val_loss``: the run's own flow settings (its clean share, timestep law and loss weights), so it
        tracks one run but does not compare runs trained with other settings. ``val_mse``: per task and
        modality, under ``VALIDATION_FLOWS`` with draws from ``VALIDATION_SEED`` (the same timesteps and
        noise for every run, whatever its seed, and every task), e.g.
        ``{"t2av": {"video": .., "audio": ..}, "v2a": {"audio": ..}, "a2v": {"video": ..}}``: these compare
        any two runs on the same validation clips. ``val_clips``: how many clips were scored.
        """
        from tqdm import tqdm

        val = self.val_set
        if val is None:
            raise ConfigError("joint.data has no validation clips (val_n is 0); set joint.data.val_n")
        model = model.to(self.device).eval()
        bs = self.cfg.batch_size
        by_bucket: dict[str, list[int]] = {}
        for i, b in enumerate(val.buckets):
            by_bucket.setdefault(b, []).append(i)
        chunks = [idx[s : s + bs] for idx in by_bucket.values() for s in range(0, len(idx), bs)]
        chunks = chunks[: self.cfg.val_batches]
        if not chunks:
            raise ConfigError("joint.val_batches is 0: set it above 0 to score validation clips")
        count = sum(len(c) for c in chunks)
        val_loss = 0.0
        mse = {task: dict.fromkeys(terms, 0.0) for task, (_, terms) in VALIDATION_FLOWS.items()}
        for chunk in tqdm(chunks, desc="validation", disable=not self.progress, leave=False):
            seeds = [self._sample_seed(-1, i) for i in chunk]  # the run's seed: val_loss as it always was
            loss, _ = self.batch_loss(model, val, chunk, seeds, 0.0)
            val_loss += float(loss) * len(chunk)
            fixed = [self._sample_seed(-1, i, seed=VALIDATION_SEED) for i in chunk]  # the same for every run
            for task, (flow, terms) in VALIDATION_FLOWS.items():
                _, logs = self.batch_loss(model, val, chunk, fixed, 0.0, flow=flow)
                for term in terms:
                    mse[task][term] += float(logs[f"{term}_mse"]) * len(chunk)
        mse = {task: {term: total / count for term, total in terms.items()} for task, terms in mse.items()}
        return {"val_loss": val_loss / count, "val_mse": mse, "val_clips": count}

    def _write_samples(self, model: nn.Module, step: int, out: Path) -> list[dict[str, Any]]:
        from avgen.io import write_av
        from avgen.metrics.evaluate import evaluate_clip

        pipe = self.pipeline(model)
        folder = out / "samples" / f"step_{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for i, caption in enumerate(self.val_set.captions[: self.cfg.eval_samples]):
            clip = pipe(caption, seed=i, progress=False)
            path = write_av(folder / f"{i:02d}.mp4", clip, overwrite=True)
            record: dict[str, Any] = {"file": str(path), "caption": caption}
            try:
                record |= evaluate_clip(clip.video, float(clip.fps), clip.audio, clip.sample_rate).to_dict()
            except (
                ImportError,
                AVGenError,
            ) as e:  # a missing optional metric dependency must not stop training
                record["metrics_error"] = f"{type(e).__name__}: {e}"
            records.append(record)
        return records
