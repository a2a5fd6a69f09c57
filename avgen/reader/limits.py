"""What one read may cost: the limits (``ReadLimits``), the part of the file asked for (``Window``) and the
running count of bytes held (``Budget``). Limits are checked from the container's declarations before any
decoding, and again as frames and samples arrive, since a header can understate what a file holds."""

from __future__ import annotations

import dataclasses
import math
import numbers
from fractions import Fraction
from pathlib import Path
from typing import Any

from avgen.errors import ConfigError, MediaError

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class ReadLimits:
    """Bounds on one ``read_av`` call. Exceeding one raises MediaError naming the file, the limit and a call
    that reads the file anyway: a window (``start``/``duration``), ``max_size``, or a raised limit.

    max_decoded_bytes: bytes of the returned clip, counted as frames x height x width x 3 (uint8, after
        ``max_size``) plus samples x channels x 4 (float32), zero padding included. Default 2 GiB.
    max_stream_offset_s: the largest gap between the audio's and the video's start that the reader aligns
        (by zero padding or cutting the audio). Default 60 s.
    max_frame_pixels: the largest coded frame (width x height) decoded at all. ``max_size`` shrinks frames
        after decoding, so the decoder still holds one frame at full size. Default 8192 x 8192.
    """

    max_decoded_bytes: int = 2 * GIB
    max_stream_offset_s: float = 60.0
    max_frame_pixels: int = 8192 * 8192

    def __post_init__(self) -> None:
        for name in ("max_decoded_bytes", "max_frame_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ReadLimits.{name} must be a positive int, got {value!r}")
        offset = self.max_stream_offset_s
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not offset >= 0:
            raise ConfigError(f"ReadLimits.max_stream_offset_s must be a number >= 0, got {offset!r}")


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _as_seconds(p: Path, name: str, value: Any, *, allow_none: bool) -> Fraction | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MediaError(p, f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (name == "duration" and value == 0):
        raise MediaError(
            p,
            f"{name}={value!r} must be a finite number of seconds {'> 0' if name == 'duration' else '>= 0'}",
        )
    return Fraction(value) if isinstance(value, numbers.Rational) else Fraction(float(value))


# Window edges are rounded up to the next frame or sample; this much float error (0.1 s written as 0.1)
# still counts as on the edge.
_EDGE = Fraction(1, 10**6)


@dataclasses.dataclass(frozen=True)
class Window:
    """The part of a clip to read, in seconds after clip time 0 (the first video frame): [start, end)."""

    start: Fraction = Fraction(0)
    end: Fraction | None = None

    @classmethod
    def of(cls, p: Path, start: Any, duration: Any) -> Window:
        s = _as_seconds(p, "start", start, allow_none=False)
        d = _as_seconds(p, "duration", duration, allow_none=True)
        assert s is not None
        return cls(s, None if d is None else s + d)

    def frames(self, fps: Fraction) -> tuple[int, int | None]:
        """Frames k with start <= k / fps < end."""
        k0 = math.ceil(self.start * fps - _EDGE)
        return k0, None if self.end is None else max(k0, math.ceil(self.end * fps - _EDGE))

    def samples(self, rate: int, fps: Fraction | None = None) -> tuple[int, int | None]:
        """Samples j with start <= j / rate < end; with ``fps``, the edges first move to the window's frames,
        so audio sample 0 plays with the window's first frame."""
        start, end = self.start, self.end
        if fps is not None:
            k0, k1 = self.frames(fps)
            start, end = k0 / fps, None if k1 is None else k1 / fps
            return math.ceil(start * rate), None if end is None else math.ceil(end * rate)
        j0 = math.ceil(start * rate - _EDGE)
        return j0, None if end is None else max(j0, math.ceil(end * rate - _EDGE))


class Budget:
    """Bytes held for the returned clip, against ``ReadLimits.max_decoded_bytes``."""

    def __init__(self, p: Path, limits: ReadLimits, *, video: bool) -> None:
        self.p, self.limit, self.video, self.used = p, limits.max_decoded_bytes, video, 0

    def fix(self, need: int | None) -> str:
        """The ways to read the file anyway; ``need``: the bytes it takes, when known."""
        ways = "read a part with start= and duration="
        if self.video:
            ways += ", shrink frames with max_size= (longest side in pixels)"
        raise_to = f"{need}" if need is not None else f"N, e.g. {2 * self.limit}"
        return f"{ways}, or raise the limit: limits=ReadLimits(max_decoded_bytes={raise_to})"

    def check(self, need: int, what: str) -> None:
        """Refuse before decoding when the declared content needs more than the limit."""
        if need > self.limit:
            raise MediaError(
                self.p,
                f"{what} needs {human_bytes(need)}, over ReadLimits.max_decoded_bytes = "
                f"{human_bytes(self.limit)}; {self.fix(need)}",
            )

    def take(self, nbytes: int, what: str) -> None:
        """Count bytes as they are decoded; a file holding more than its header declared stops here."""
        self.used += nbytes
        if self.used > self.limit:
            raise MediaError(
                self.p,
                f"decoding {what} went past ReadLimits.max_decoded_bytes = {human_bytes(self.limit)} "
                f"(the file holds more than its header declares, or declares no length); {self.fix(None)}",
            )

    def give(self, nbytes: int) -> None:
        self.used -= nbytes
