"""Named JointDiT sizes, in one dict (as DiT's ``DiT_models``). Print them with ``avgen model presets``.

Each entry overrides ``DiTConfig`` fields; latent channels and the text width come from the codecs and
the text encoder a pipeline is built with. Head dim is 64 from "default" up (16 for "tiny").
With the default codecs (16 video, 32 audio latent channels) and MiniLM text (384-d) the counts are
about 0.07M (tiny), 7.1M (default), 70.6M (small), 158M (base) and 558M (large).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Unit tests: builds in milliseconds.
    "tiny": {"width": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0, "rope_axes": (8, 4, 4)},
    # avgen-tiny, the packaged model: small enough to train on a CPU, on 64x64, 2-s clips.
    "default": {"width": 256, "depth": 6, "heads": 4, "rope_axes": (24, 20, 20), "modulation": "shared"},
    "small": {"width": 512, "depth": 12, "heads": 8, "rope_axes": (24, 20, 20)},
    "base": {"width": 768, "depth": 12, "heads": 12, "rope_axes": (24, 20, 20)},
    "large": {"width": 1024, "depth": 24, "heads": 16, "rope_axes": (24, 20, 20)},
}
