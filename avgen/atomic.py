"""Atomic writes: a file appears at its path complete or not at all (temp file in the same folder + rename).

``write_bytes`` / ``write_text`` / ``write_json`` create their temp file like any other file (mode 0666 minus
the umask), so what lands at ``path`` is as readable as a plain ``open(path, "w")`` would make it;
``save_safetensors`` gives safetensors' own 0600 files the same mode, so saved weights can be shared.
``check_writable`` / ``check_writable_dir`` refuse an output path before the work that would fill it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avgen.errors import ConfigError


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


_WHY = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission to create files there",
    errno.EPERM: "no permission to create files there",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
}


def _stat_error(path: Path, what: str, e: OSError) -> ConfigError:
    if e.errno == errno.ENAMETOOLONG:
        return ConfigError(f"{what} {path}: the name is too long for the file system; use a shorter one")
    return ConfigError(f"{what} {path}: cannot be used ({e.strerror})")


def _probe_folder(folder: Path, name: str, what: str, shown: Path) -> None:
    """Create and remove the temp file a write of ``folder / name`` would use; ConfigError if that fails."""
    probe = part_path(folder / name)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise ConfigError(
                f"{what} {shown}: the file name is too long: {len(name.encode())} bytes, and avgen writes through "
                f"a temp name {len(probe.name.encode())} bytes long; this file system takes "
                f"{_name_max(folder)}: use a shorter name"
            ) from None
        why = _WHY.get(e.errno or 0, e.strerror)
        raise ConfigError(
            f"{what} {shown}: cannot write in {folder} ({why}); pick a writable folder"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()


def _name_max(folder: Path) -> str:
    try:
        return f"at most {os.pathconf(folder, 'PC_NAME_MAX')}"
    except (OSError, ValueError):
        return "fewer"


def _human(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _check_space(folder: Path, need_bytes: int, what: str, shown: Path) -> None:
    if need_bytes <= 0:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need_bytes:
        raise ConfigError(
            f"{what} {shown}: the disk holding {folder} has {_human(free)} free and the output needs up to "
            f"about {_human(need_bytes)}; free some space or write elsewhere"
        )


def check_writable(
    path: str | os.PathLike, *, what: str, overwrite: bool = False, need_bytes: int = 0
) -> Path:
    """Fail before the work, not after it: ``path`` is a file that can be written, ``what`` (the argument
    that names it, e.g. ``"-o"``) leads every error. Refused: a folder, an existing file without
    ``overwrite``, a missing folder, a folder that takes no new file (read-only, no permission, a name too
    long for the temp file beside it) and, when ``need_bytes`` > 0, a disk with less free space than that.
    The check creates and removes the temp file the real write will use."""
    target = Path(path)
    try:
        is_dir, exists, parent_ok = target.is_dir(), target.exists(), target.parent.is_dir()
    except OSError as e:
        raise _stat_error(target, what, e) from None
    if is_dir:
        raise ConfigError(f"{what} {target}: is a folder; give the file to write, e.g. {target / 'out.mp4'}")
    if exists and not overwrite:
        raise ConfigError(f"{what} {target}: exists; pass --overwrite to replace it")
    if not parent_ok:
        raise ConfigError(f"{what} {target}: the folder {target.parent} does not exist; create it first")
    _probe_folder(target.parent, target.name, what, target)
    _check_space(target.parent, need_bytes, what, target)
    return target


def check_writable_dir(path: str | os.PathLike, *, what: str, need_bytes: int = 0) -> Path:
    """``path`` is a folder avgen can fill, or one it can create (the nearest existing folder above it takes
    new entries); ConfigError naming ``what`` otherwise. Nothing is left behind."""
    target = Path(path)
    try:
        existing = next(p for p in (target, *target.parents) if p.exists())
        is_dir = existing.is_dir()
    except OSError as e:
        raise _stat_error(target, what, e) from None
    except StopIteration:
        existing, is_dir = Path.cwd(), True
    if not is_dir:
        kind = "is a file" if existing == target else f"sits under {existing}, a file"
        raise ConfigError(f"{what} {target}: {kind}; give a folder")
    name = target.relative_to(existing).parts[0] if existing != target else "probe"
    _probe_folder(existing, name, what, target)
    _check_space(existing, need_bytes, what, target)
    return target
