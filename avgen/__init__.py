"""avgen: joint audio-video generation with one diffusion transformer over a shared latent.

``import avgen`` is instant: the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "AVClip": "avgen.clip",
    "AVPipeline": "avgen.pipeline",
    "read_av": "avgen.reader",
    "write_av": "avgen.writer",
}
__all__ = ["AVClip", "AVPipeline", "__version__", "read_av", "write_av"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avgen' has no attribute {name!r}")
