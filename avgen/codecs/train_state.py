"""Moved to ``avgen.train.checkpoint`` (the one checkpoint format of every training task)."""

from avgen.train.checkpoint import latest_checkpoint

__all__ = ["latest_checkpoint"]
