"""The JointDiT, its layers and presets, and the text encoder (transformers is imported lazily)."""

from avgen.model.dit import DiTConfig, JointDiT, dit_config, parameter_count, tiny_dit
from avgen.model.presets import PRESETS
from avgen.model.text import TextEncoder, TextEncoderConfig, TextStates, tiny_text_encoder

__all__ = [
    "PRESETS",
    "DiTConfig",
    "JointDiT",
    "TextEncoder",
    "TextEncoderConfig",
    "TextStates",
    "dit_config",
    "parameter_count",
    "tiny_dit",
    "tiny_text_encoder",
]
