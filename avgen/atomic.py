"""Atomic writes: a file appears at its path complete or not at all (temp file in the same folder + rename).

``write_bytes`` / ``write_text`` / ``write_json`` create their temp file like any other file (mode 0666 minus
the umask), so what lands at ``path`` is as readable as a plain ``open(path, "w")`` would make it;
``save_safetensors`` gives safetensors' own 0600 files the same mode, so saved weights can be shared.
"""

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
def atomic_path(
    path: str | os.PathLike, *, overwrite: bool = True, mkdir_parents: bool = False
) -> Iterator[Path]:
    """Yield a temp path to write; on success it is renamed to ``path``, on error removed.

    With ``overwrite=False`` an existing ``path`` raises FileExistsError (before and after writing).
    With ``mkdir_parents=True`` missing parent folders are created first.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target}: file exists; pass overwrite=True to replace it")
    if mkdir_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_path(target)
    try:
        yield tmp
        if not overwrite and target.exists():
            raise FileExistsError(f"{target}: file appeared while writing; pass overwrite=True to replace it")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an unused temp path beside ``path`` for the caller to create and fill as a folder; on success it
    replaces ``path`` (an existing folder there is removed first), on error it is removed and ``path`` is left
    as it was."""
    import shutil

    target = Path(path)
    tmp = part_path(target)
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_bytes(path: str | os.PathLike, data: bytes, *, mkdir_parents: bool = False) -> Path:
    with atomic_path(path, mkdir_parents=mkdir_parents) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, mkdir_parents: bool = False) -> Path:
    """``text`` encoded as UTF-8, written atomically."""
    return write_bytes(path, text.encode("utf-8"), mkdir_parents=mkdir_parents)


def write_json(
    path: str | os.PathLike,
    obj: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    separators: tuple[str, str] | None = None,
    allow_nan: bool = True,
    mkdir_parents: bool = False,
) -> Path:
    """``json.dumps(obj, ...)`` plus a final newline, written atomically; the keywords go to ``json.dumps``."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, separators=separators, allow_nan=allow_nan)
    return write_text(path, text + "\n", mkdir_parents=mkdir_parents)


def save_safetensors(
    tensors: dict[str, Any],
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
    *,
    mkdir_parents: bool = False,
) -> Path:
    """``safetensors.torch.save_file`` through a temp file: never pickle, never half-written."""
    from safetensors.torch import save_file

    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    with atomic_path(path, mkdir_parents=mkdir_parents) as tmp:
        save_file(contiguous, str(tmp), metadata=metadata)
        tmp.chmod(0o666 & ~_umask())
    return Path(path)


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
