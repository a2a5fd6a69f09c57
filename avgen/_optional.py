"""Lazy import of ``transformers`` (the ``hf`` extra): avgen's default path (the shipped MiniLM pack, plain-torch
EnCodec) never imports it; only a user's own Hugging Face folders (text encoders, EnCodec) and the tiny random
test encoder need it."""

from __future__ import annotations

from types import ModuleType

from avgen.errors import AVGenError, CheckpointError

HF_EXTRA = "pip install 'avgen[hf]'"


def require_transformers(what: str, error: type[AVGenError] = CheckpointError) -> ModuleType:
    """The ``transformers`` module; when it cannot be imported, ``error`` saying that ``what`` (e.g. a folder
    and what it holds) needs it and how to install it."""
    try:
        import transformers
    except ImportError as e:
        raise error(
            f"{what} needs the transformers package, which cannot be imported ({e}); {HF_EXTRA}"
        ) from e
    return transformers
