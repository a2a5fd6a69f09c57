"""Dataset hooks for training: which pixels of a clip a loss weighs more, and other true captions of a clip.

Training code names a map or a caption transform in its config; what the name means is the dataset's and
lives with it (``avgen.data.synth`` for avgen-synth's objects, mouth and caption grammar), so the trainers
and the codec losses hold no dataset's rules. Another dataset adds its own entries to these tables.

- ``CLIP_MAPS[name]``: one decoded clip's uint8 frames ``(T, H, W, 3)`` -> bool ``(T, H, W)``, the pixels the
  joint trainer's per-token weights count (``avgen.train.foreground``); ``hold``: the map marks where
  something ever is over the clip (each latent cell keeps its largest share over time), for a part that
  comes and goes, like an opening mouth.
- ``VIDEO_MASKS[name](video, reference)``: ``(B, 3, T, H, W)`` in [-1, 1] -> bool ``(B, T, H, W)``, the
  pixels a codec's video loss weighs (``avgen.codecs.losses.weighted_l1``); ``reference`` (or None) is the
  clip whose backdrop decides, when a reconstruction is judged against its target.
- ``CAPTION_TRANSFORMS[source](caption, kinds)``: other true captions of the same clip, each naming less
  (``kinds`` chooses which, from ``CAPTION_TRANSFORM_KINDS[source]``), for caption augmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from avgen.data.synth import captions, pixels


@dataclass(frozen=True)
class ClipMap:
    """A per-pixel map of a clip's frames and how it is spread over time (module docstring)."""

    fn: Callable[[np.ndarray], np.ndarray]
    hold: bool = False


def _objects(frames: np.ndarray) -> np.ndarray:
    return pixels.sampled_foreground(frames, len(frames))[2]


def _mouth(frames: np.ndarray) -> np.ndarray:
    # an object pixel too, so a backdrop of about the mouth's colour is no mouth
    return _objects(frames) & pixels.mouth_pixels(frames)


CLIP_MAPS: dict[str, ClipMap] = {"objects": ClipMap(_objects), "mouth": ClipMap(_mouth, hold=True)}

VideoMask = Callable[[Tensor, Tensor | None], Tensor]
VIDEO_MASKS: dict[str, VideoMask] = {
    "objects": lambda video, reference=None: pixels.foreground_mask(video, reference=reference),
    "mouth": lambda video, reference=None: pixels.mouth_mask(video),
}

CAPTION_TRANSFORMS: dict[str, Callable[[str, tuple[str, ...]], list[str]]] = {
    "synth": captions.caption_variants
}
CAPTION_TRANSFORM_KINDS: dict[str, tuple[str, ...]] = {"synth": captions.VARIANT_DROPS}
