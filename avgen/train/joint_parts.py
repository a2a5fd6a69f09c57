"""The model side of a joint run: codecs, text encoder and DiT built new or loaded from a pipeline folder,
grown (a sync bridge added to a pretrained DiT) and partly frozen."""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from avgen.codecs import load_codec
from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae
from avgen.config import from_dict, to_dict
from avgen.errors import AVGenError, ConfigError
from avgen.model.dit import JointDiT, dit_config
from avgen.model.text import TextEncoder, TextEncoderConfig, tiny_text_encoder
from avgen.pipeline import AVPipeline
from avgen.pipeline_config import PipelineConfig
from avgen.train.joint_config import JointConfig


def _codec(spec: str, kind: str, seed: int) -> Any:
    """A codec folder, or "tiny": a small random one built in process."""
    if spec == "tiny":
        return tiny_video_vae(seed) if kind == "video" else tiny_audio_codec(seed)
    return load_codec(spec)


# DiT fields a fine-tune (init_from) may set: the pretrained weights load unchanged into the new model, and
# what they add starts as a no-op (the sync bridge's output projection is zero), so step 0 samples as before.
GROWABLE_DIT_FIELDS = (
    "bridge_window",
    "bridge_heads",
    "gradient_checkpointing",
    "phonemes",
    "phoneme_window",
    "guidance_embed",
)
# the parameters a grown DiT may add: sync bridges, the phoneme reader and the guidance-scale embedding,
# each a no-op at init
GROWN_PARTS = (".bridge.", ".speech.", ".norm_speech.", "phoneme_embed.", "guidance_embed.")


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
    if old.phonemes and not new.phonemes:
        raise ConfigError(
            f"joint.model.dit.phonemes: 0 would drop the trained phoneme reader of init_from {source}; leave "
            "phonemes out to keep it"
        )
    if old.guidance_embed and not new.guidance_embed:
        raise ConfigError(
            f"joint.model.dit.guidance_embed: false would drop the trained guidance embedding of init_from "
            f"{source}; leave guidance_embed out to keep it"
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
    if unexpected or any(
        not any(part in k for part in GROWN_PARTS) for k in missing
    ):  # (a bug, not a user error)
        raise AVGenError(f"growing the DiT of {source}: missing {missing}, unexpected {unexpected}")
    return grown.to(next(dit.parameters()).device)


def build_parts(cfg: JointConfig) -> tuple[nn.Module, Any, Any, Any, Any]:
    """(dit, video codec, audio codec, text encoder, PipelineConfig) of the run, codecs/text frozen.
    ``joint.pipeline`` overrides the pipeline settings field by field (``sampling`` too)."""

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
    merged = to_dict(base)
    for key, value in cfg.pipeline.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if nested else value
    pcfg = from_dict(PipelineConfig, merged, where="joint.pipeline")
    return dit, vc, ac, te, pcfg
