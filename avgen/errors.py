"""avgen's exception types: every error names the file or argument at fault and what would fix it."""

from __future__ import annotations

from pathlib import Path


class AVGenError(Exception):
    """Base class of every error avgen raises on purpose."""


class MediaError(AVGenError, ValueError):
    """A media file cannot be read or written: names the path and the problem."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ClipError(AVGenError, ValueError):
    """An AVClip (or arrays meant to become one) has the wrong shape, dtype, range or rate."""


class ConfigError(AVGenError, ValueError):
    """A config (dataclass, YAML or --set override) has an unknown key or a bad value."""


class CheckpointError(AVGenError, ValueError):
    """Weights are missing, or do not match the config they are loaded into."""


class ShapeError(AVGenError, ValueError):
    """A tensor handed to the tokenizer, model or sampler has the wrong shape, dtype or values."""
