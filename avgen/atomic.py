"""Atomic writes: a file appears at its path complete or not at all (temp file in the same folder + rename)."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def part_path(path: str | os.PathLike) -> Path:
    """A hidden, unique temp name beside ``path`` (same folder, so the rename is atomic)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.part")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp path to write; on success it is renamed to ``path``, on error removed.

    With ``overwrite=False`` an existing ``path`` raises FileExistsError (before and after writing).
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target}: file exists; pass overwrite=True to replace it")
    tmp = part_path(target)
    try:
        yield tmp
        if not overwrite and target.exists():
            raise FileExistsError(f"{target}: file appeared while writing; pass overwrite=True to replace it")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def save_safetensors(
    tensors: dict[str, Any], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """``safetensors.torch.save_file`` through a temp file: never pickle, never half-written."""
    from safetensors.torch import save_file

    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=metadata)
    return Path(path)
