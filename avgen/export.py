"""Ship a trained pipeline: copy a ``save_pretrained`` folder with its weights stored in float16.

``avgen model export runs/tiny_joint/pipeline avgen/weights/avgen-tiny --card MODEL_CARD.md`` is how the
default model's folder is made. The copy loads with ``AVPipeline.from_pretrained`` into float32 modules
(weights are cast on load); the largest output change this causes is reported so a user can judge it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from avgen.errors import CheckpointError


def export_pipeline(
    src: str | Path,
    dst: str | Path,
    *,
    dtype: torch.dtype = torch.float16,
    card: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, int]:
    """Load the pipeline at ``src``, write it to ``dst`` with floating weights as ``dtype``; returns the
    bytes of each weights file. ``card``: a markdown file copied in as ``MODEL_CARD.md``."""
    from avgen.atomic import atomic_dir
    from avgen.pipeline import AVPipeline
    from avgen.weights import cast_weights_file

    target = Path(dst)
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target}: exists; pass --overwrite to replace it")
    if card is not None and not Path(card).is_file():
        raise CheckpointError(f"{card}: model card not found")
    pipe = AVPipeline.from_pretrained(src)
    with atomic_dir(target) as tmp:
        pipe.save_pretrained(tmp)
        sizes = {
            str(f.relative_to(tmp)): cast_weights_file(f, dtype) for f in sorted(tmp.rglob("*.safetensors"))
        }
        if card is not None:
            shutil.copyfile(card, tmp / "MODEL_CARD.md")
    return sizes
