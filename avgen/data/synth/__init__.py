"""avgen-synth: procedural audio-visual clips (talk, bounce, keys, ambience) with exact ground truth.

``make_sample(seed, split, cfg)`` returns a SynthSample (AVClip, caption, events, per-frame state);
``sample_family(seed, split, cfg)`` its family alone, without rendering. The CLI ``avgen data synth``
writes datasets. Names are imported on first use, so importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SynthConfig", "SynthSample", "make_sample", "sample_family", "write_sample"]


def __getattr__(name: str) -> Any:
    if name == "SynthConfig":
        from avgen.data.synth.spec import SynthConfig

        return SynthConfig
    if name in ("SynthSample", "make_sample", "sample_family", "write_sample"):
        from avgen.data.synth import generate

        return getattr(generate, name)
    raise AttributeError(f"module 'avgen.data.synth' has no attribute {name!r}")
