"""Ship a trained pipeline: copy a ``save_pretrained`` folder with its weights stored in float16.

``avgen model export RUN/pipeline avgen/weights/avgen-tiny --card MODEL_CARD.md`` makes the folder of a
packaged model from a training run's pipeline. The copy loads with ``AVPipeline.from_pretrained`` into
float32 modules (weights are cast on load); ``benchmarks/export_precision.py`` measures the largest output
change this causes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from avgen.atomic import atomic_dir
from avgen.codecs import load_codec
from avgen.errors import CheckpointError
from avgen.pipeline import AVPipeline
from avgen.weights import cast_weights_file


def export_pipeline(
    src: str | Path,
    dst: str | Path,
    *,
    dtype: torch.dtype = torch.float16,
    card: str | Path | None = None,
    video_decoder: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, int]:
    """Load the pipeline at ``src``, write it to ``dst`` with floating weights as ``dtype``; returns the
    bytes of each weights file. ``card``: a markdown file copied in as ``MODEL_CARD.md``.
    ``video_decoder``: a video codec folder to ship instead of ``src``'s; it must encode exactly as
    ``src``'s does (``check_same_latents``), so only its decoder differs and the DiT needs no retraining."""
    target = Path(dst)
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target}: exists; pass --overwrite to replace it")
    if card is not None and not Path(card).is_file():
        raise CheckpointError(f"{card}: model card not found")
    pipe = AVPipeline.from_pretrained(src)
    if video_decoder is not None:
        replacement = load_codec(video_decoder)
        check_same_latents(pipe.video_codec, replacement, f"{src}/video_codec", str(video_decoder))
        pipe.video_codec = replacement
    with atomic_dir(target) as tmp:
        pipe.save_pretrained(tmp)
        sizes = {
            str(f.relative_to(tmp)): cast_weights_file(f, dtype) for f in sorted(tmp.rglob("*.safetensors"))
        }
        if card is not None:
            shutil.copyfile(card, tmp / "MODEL_CARD.md")
    return sizes


def check_same_latents(old: torch.nn.Module, new: torch.nn.Module, old_name: str, new_name: str) -> None:
    """CheckpointError unless ``new`` is ``old``'s kind of codec with the same config and the same encoder
    and latent stats tensors, i.e. it maps every clip to the same latents."""
    if type(new) is not type(old) or getattr(new, "config", None) != getattr(old, "config", None):
        raise CheckpointError(
            f"{new_name}: not the same kind and architecture of codec as {old_name}; only a decoder "
            "fine-tuned from it (codec.init_from + codec.freeze_encoder) can replace it"
        )
    a, b = old.state_dict(), new.state_dict()
    differ = [
        k for k in a if k.startswith(("encoder.", "stats.")) and not torch.equal(a[k].float(), b[k].float())
    ]
    if differ:
        raise CheckpointError(
            f"{new_name}: its encoder or latent stats differ from {old_name}'s ({len(differ)} tensors, e.g. "
            f"{differ[0]}), so the pipeline's DiT would see latents it was not trained on; fine-tune the "
            "decoder only (codec.freeze_encoder) or retrain the DiT on the new codec"
        )
