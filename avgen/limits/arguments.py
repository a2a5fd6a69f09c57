"""Argument bounds of a generation, each checked before any work: text, seed, frame size, frame rate, clip
length and device (``docs/limits.md``). Each refusal names the flag, the limit and the fix."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from avgen.checks import as_fps
from avgen.errors import ClipError, ConfigError

GIB = 1024**3
MIB = 1024**2
MAX_FPS = 240
MIN_SIDE, MAX_SIDE = 8, 4096
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.Generator.manual_seed takes
MEMORY_ENV = "AVGEN_MEMORY_LIMIT_GB"
MEMORY_FLAG = "--max-memory-gb"


def gib(n: float) -> str:
    """``n`` bytes as a short human string."""
    if n >= 1000 * 1024**4:
        return f"{n / GIB:.3g} GiB"
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


# -- argument bounds -----------------------------------------------------------------------------------------


def check_text(flag: str, text: str) -> str:
    """``text`` as given on a command line, refused when it is not valid UTF-8 (Python keeps undecodable
    argv bytes as lone surrogates, which the tokenizer and the file tags cannot take)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start : e.end].encode("utf-8", "surrogateescape")
        raise ConfigError(
            f"{flag}: not valid UTF-8 (bytes {bad!r} at character {e.start}); pass the text in UTF-8"
        ) from None
    return text


def check_seed(seed: int, flag: str = "--seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_MIN <= seed <= SEED_MAX:
        raise ConfigError(f"{flag} {seed}: must be a whole number in [0, 2**64 - 1] (or down to -2**63)")
    return seed


def parse_size(text: str, flag: str = "--size") -> tuple[int, int]:
    """``"HxW"`` -> (height, width), each a whole number of pixels in [MIN_SIDE, MAX_SIDE]."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected HxW, e.g. 64x96") from None
    check_side(height, "height", flag)
    check_side(width, "width", flag)
    return height, width


def check_side(value: int, name: str, flag: str = "--size") -> int:
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise ConfigError(
            f"{flag}: {name} must be a whole number of pixels in [{MIN_SIDE}, {MAX_SIDE}], got {value}"
        )
    return value


def check_fps(fps: Any, flag: str = "--fps") -> Fraction:
    """A frame rate in (0, MAX_FPS]."""
    try:
        value = as_fps(fps, name=flag)
    except ClipError as e:
        raise ConfigError(str(e)) from None
    if value > MAX_FPS:
        raise ConfigError(f"{flag} {fps}: at most {MAX_FPS} frames per second, e.g. 24, 30 or 60")
    return value


def check_seconds(seconds: float, fps: Fraction, flag: str = "--seconds", fps_flag: str = "--fps") -> float:
    """A finite length > 0 that holds at least one frame at ``fps``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds < math.inf:
        raise ConfigError(f"{flag} {seconds:g}: the clip length must be a finite number of seconds > 0")
    if not math.isfinite(seconds * float(fps)):
        raise ConfigError(
            f"{flag} {seconds:g}: {seconds:g} s at {fps} fps is more frames than can be counted"
        )
    if seconds * fps < Fraction(1, 2):  # fewer than half a frame: the one frame made would outlast the clip
        raise ConfigError(
            f"{fps_flag} {fps}: one frame lasts {float(1 / fps):.4g} s, longer than the {seconds:g}-s clip "
            f"({flag}); use {fps_flag} {math.ceil(1 / seconds)} or more"
        )
    return float(seconds)


def check_device(device: str, flag: str = "--device") -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, refused when this machine (or this torch build) has no such device."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{flag} {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch was built without CUDA"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise ConfigError(f"{flag} {device}: {why}; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{flag} {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    elif dev.type != "cpu":
        raise ConfigError(f"{flag} {device}: avgen generates on cpu or cuda")
    return device
