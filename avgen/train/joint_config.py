"""What a joint-model run trains (``JointModelConfig``) and how (``JointConfig``): the ``joint:`` section
of a training recipe. Every field is checked where the config is built, so a bad recipe fails before any
data is made."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from avgen.config import from_dict
from avgen.data.maps import CAPTION_TRANSFORM_KINDS, CAPTION_TRANSFORMS, CLIP_MAPS
from avgen.diffusion.flow import FlowConfig
from avgen.errors import ConfigError
from avgen.model.dit import dit_config
from avgen.pipeline_config import PipelineConfig
from avgen.tokens import TokenSpec
from avgen.train.latents import JointDataConfig
from avgen.train.lora import LoRAConfig


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
                "(codec folders, e.g. from `avgen train configs/avgen-tiny/1_video_autoencoder.yaml` / `1_audio_codec.yaml`)"
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
    caption_variants: the chance that a training caption (one not dropped) is swapped for another true
    caption of the same clip that names less, from the data source's caption transform
    (``avgen.data.maps.CAPTION_TRANSFORMS``; avgen-synth: the clip with one attribute fewer, no size /
    shape / pace word or no colour), so each word is learned apart from the word it came with; validation
    always uses the caption itself. Off by default: on avgen-synth talk clips it lowered the asked face
    colour (docs/experiments.md).
    caption_variant_drops: which variants to swap in, from ``avgen.data.maps.CAPTION_TRANSFORM_KINDS`` of
    the source (avgen-synth: "adjectives", keeping the colour: 'a white ball bounces', and/or "colours",
    keeping the size / shape / pace word: 'a big ball bounces').
    group_loss_weights: per-group factors on the training loss's video / audio terms, e.g.
    ``{keys: {audio: 0.2}}`` (a group is a synth family, or a folder clip's top-level subfolder; see
    ``avgen.train.latents``); groups and terms not named keep 1. The loss stays the mean over samples, so
    lowering one group's weight also lowers the loss's scale. The validation loss is never weighted.
    foreground_weight: weighs each training video token's error by ``1 + foreground_weight * share`` (the
    share of its pixels that the map ``foreground_map`` marks, from the decoded clip), over the clip's mean,
    so small objects weigh more and the loss keeps its scale (``avgen.train.foreground``); 0 (default)
    weighs tokens alike. foreground_stride: decode every n-th latent frame for those maps (exact for
    per-frame codecs). foreground_map: a name in ``avgen.data.maps.CLIP_MAPS`` (avgen-synth: "objects",
    the default, or "mouth", the region a talking face's mouth covers in the clip, to weigh lip movement).
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
        if self.foreground_map not in CLIP_MAPS:
            raise ConfigError(
                f"joint.foreground_map must be one of {list(CLIP_MAPS)}, got {self.foreground_map!r}"
            )
        for name in ("caption_dropout", "caption_variants"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"joint.{name} must be in [0, 1], got {getattr(self, name)}")
        source = self.data.source
        if self.caption_variants > 0 and source not in CAPTION_TRANSFORMS:
            raise ConfigError(
                f"joint.caption_variants: the {source!r} data source has no caption transform (sources with "
                f"one: {sorted(CAPTION_TRANSFORMS)}); set it to 0"
            )
        kinds = CAPTION_TRANSFORM_KINDS.get(source)
        drops = self.caption_variant_drops
        if kinds and (isinstance(drops, str) or not drops or not set(drops) <= set(kinds)):
            raise ConfigError(
                f"joint.caption_variant_drops must be a non-empty list of {list(kinds)}, got {drops!r}"
            )
        from_dict(PipelineConfig, dict(self.pipeline), where="joint.pipeline")

    def flow_for(self, group: str) -> FlowConfig:
        """The flow settings a training sample of ``group`` draws its timesteps from (``group_flow``)."""
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
