"""Video frames of one window: RGB uint8, shrunk to ``max_size`` as they decode, turned upright by the
container's display matrix, and placed on the clip's constant frame grid by their timestamps."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from avgen.errors import MediaError
from avgen.reader.base import declared_seconds
from avgen.reader.limits import Budget, ReadLimits, Window

Vfr = Literal["grid", "frames"]
# A rate FFmpeg guesses from the timestamps (the rate every frame lies on) is used for the grid when it is
# at most this many times the average rate: a 30 fps phone clip with dropped frames reads at 30 fps, while a
# screen recording with millisecond timestamps reads at its average rate instead of 1000 fps.
_GUESS_OVER_AVERAGE = 2
_MAX_GRID_FPS = 240


def stream_rate(stream: Any, vfr: Vfr) -> Fraction | None:
    """The clip's frame rate: with ``vfr="grid"`` the grid frames are placed on, else the average rate."""
    avg, guessed = stream.average_rate, stream.guessed_rate
    rate = avg or guessed or stream.base_rate
    if vfr == "grid" and avg and guessed and avg < guessed <= min(_GUESS_OVER_AVERAGE * avg, _MAX_GRID_FPS):
        rate = guessed
    return Fraction(rate) if rate and rate > 0 else None


def declared_frames(stream: Any, fps: Fraction, container_seconds: float | None) -> int | None:
    """How many grid frames the container declares (the larger of its frame count and length x fps)."""
    seconds, _ = declared_seconds(stream)
    if seconds is None:
        seconds = container_seconds
    counts = [stream.frames or 0, round(seconds * fps) if seconds else 0]
    return max(counts) or None


def scaled_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) with the longest side at most ``max_size``, aspect kept; never enlarged."""
    if max_size is None or max(width, height) <= max_size:
        return width, height
    s = max_size / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _display_matrix(frame: Any) -> bytes | None:
    """The raw DISPLAYMATRIX side data of a decoded frame, or None. PyAV before 18 iterates a frame's
    side data as entries with a ``type``; PyAV 18 as a mapping from each type to its entry."""
    side = frame.side_data
    for item in side:
        kind = getattr(item, "type", item)
        if getattr(kind, "name", None) == "DISPLAYMATRIX":
            return bytes(item if hasattr(item, "type") else side[item])
    return None


def display_transform(p: Path, frame: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """What turns a stored (H, W, 3) frame upright per its display matrix (MP4 ``tkhd``, Matroska
    projection): a rotation by a multiple of 90 degrees, possibly mirrored. None when the frame has no
    matrix or the identity; any other matrix (odd angles, scaling) is left unapplied with a warning."""
    data = _display_matrix(frame)
    if data is None or len(data) < 36:
        return None
    m = np.frombuffer(data[:36], dtype=np.int32).astype(np.float64) / 65536.0  # 16.16 fixed point
    # FFmpeg's convention: a stored pixel (x, y) is shown at (a x + c y, b x + d y), y pointing down
    a, b, c, d = (round(v) for v in (m[0], m[1], m[3], m[4]))
    if not (np.allclose([m[0], m[1], m[3], m[4]], [a, b, c, d], atol=1e-3) and abs(a * d - b * c) == 1):
        warnings.warn(
            f"{p}: display matrix {m[[0, 1, 3, 4]].round(3).tolist()} is not a rotation by a multiple of "
            "90 degrees; frames are returned as stored",
            stacklevel=4,
        )
        return None
    if (a, b, c, d) == (1, 0, 0, 1):
        return None
    swap = a == 0
    flip_rows, flip_cols = (b < 0, c < 0) if swap else (d < 0, a < 0)

    def upright(img: np.ndarray) -> np.ndarray:
        if swap:
            img = img.transpose(1, 0, 2)  # (W, H, 3)
        if flip_rows:
            img = img[::-1]
        if flip_cols:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    return upright


class VideoSink:
    """Takes decoded frames of one stream and keeps those of the window.

    origin: clip time 0 in seconds, or None for the first decoded frame's time. Frame k of the clip shows
    at origin + k / fps; with ``vfr="grid"`` it is the last frame whose timestamp rounds to slot k or
    earlier (frames repeat over gaps and drop where two share a slot), with ``vfr="frames"`` the decoded
    frames are kept one for one in timestamp order.
    """

    def __init__(
        self,
        p: Path,
        stream: Any,
        *,
        fps: Fraction,
        window: Window,
        tags: dict[str, str],
        max_size: int | None,
        limits: ReadLimits,
        budget: Budget,
        origin: float | None,
        vfr: Vfr,
    ) -> None:
        self.p, self.stream, self.fps, self.vfr = p, stream, fps, vfr
        self.tb = stream.time_base
        self.k0, self.k1 = window.frames(fps)
        self.true_size = (int(tags.get("avgen_width", 0)), int(tags.get("avgen_height", 0)))
        self.max_size, self.limits, self.budget = max_size, limits, budget
        self.origin = origin
        self.frames: list[np.ndarray | None] = []
        self.times: list[float] = []
        self.slots: list[int] = []
        self.before: tuple[float, int, Any] | None = None  # the last frame before the window
        self.seen = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.last_duration: float | None = None
        self.done = False
        self.from_start = True  # decoding began at the file's start (set by the reader before a pass)
        self._size: tuple[int, int, int, int] | None = None  # scaled stored (w, h), output (w, h)
        self._upright: Callable[[np.ndarray], np.ndarray] | None = None
        self.frame_bytes = 0

    def push(self, frame: Any) -> None:
        if frame.pts is None or frame.time is None:
            raise MediaError(self.p, f"video frame {self.seen} has no timestamp")
        t = float(frame.pts * self.tb)
        if self.origin is None:
            self.origin = t
        if self.first_time is None:
            self.first_time = t
        self.seen += 1
        if self.last_time is None or t >= self.last_time:
            self.last_time = t
            self.last_duration = float(frame.duration * self.tb) if frame.duration else None
        slot = round((t - self.origin) * float(self.fps))
        if slot < self.k0:
            if self.before is None or t >= self.before[0]:
                self.before = (t, slot, frame)
            return
        if self.k1 is not None and slot >= self.k1:
            self.done = True
            return
        self.frames.append(self._rgb(frame))
        self.times.append(t)
        self.slots.append(slot)

    def _rgb(self, frame: Any) -> np.ndarray:
        if frame.width * frame.height > self.limits.max_frame_pixels:
            raise MediaError(
                self.p,
                f"a video frame is {frame.width}x{frame.height} = {frame.width * frame.height} pixels, over "
                f"ReadLimits.max_frame_pixels = {self.limits.max_frame_pixels}; raise the limit: "
                f"limits=ReadLimits(max_frame_pixels={frame.width * frame.height})",
            )
        if self._size is None:
            w, h = frame.width, frame.height
            tw, th = min(self.true_size[0] or w, w), min(self.true_size[1] or h, h)  # writer's padding
            ow, oh = scaled_size(tw, th, self.max_size)
            sw, sh = (
                (w, h) if (ow, oh) == (tw, th) else (max(ow, round(w * ow / tw)), max(oh, round(h * oh / th)))
            )
            self._size = (sw, sh, ow, oh)
            self._upright = display_transform(self.p, frame)
            self.frame_bytes = ow * oh * 3
        sw, sh, ow, oh = self._size
        self.budget.take(self.frame_bytes, f"video frame {self.seen}")
        if (frame.width, frame.height) == (sw, sh):
            rgb = frame.to_ndarray(format="rgb24")
        else:  # shrink (area average); also brings a frame of a stream that changes size to the first size
            rgb = frame.to_ndarray(format="rgb24", width=sw, height=sh, interpolation="AREA")
        if rgb.shape[:2] != (oh, ow):
            rgb = np.ascontiguousarray(rgb[:oh, :ow])
        return rgb if self._upright is None else self._upright(rgb)

    def check_complete(self) -> None:
        """After reading to the end of the file: refuse a stream shorter than its container declares."""
        stream, n = self.stream, self.seen
        if self.from_start and stream.frames and n < stream.frames:
            raise MediaError(self.p, f"truncated: decoded {n} of {stream.frames} video frames")
        declared, exact = declared_seconds(stream)
        rate = stream.average_rate or stream.guessed_rate
        if declared and rate and self.last_time is not None:  # MP4 declares a length, Matroska an end time
            assert self.origin is not None
            decoded = self.last_time - (self.origin if exact else 0.0) + 1 / float(rate)
            if decoded < declared - 1.5 / float(rate) - 0.002:
                raise MediaError(self.p, f"truncated: decoded {decoded:.3f} s of {declared:.3f} s of video")

    def finish(self, eof: bool) -> tuple[np.ndarray, np.ndarray]:
        """The window's frames uint8 (T, H, W, 3) and their source times (T,) in seconds.

        ``eof``: the file was read to its end (so a short stream is truncated, not cut by the window)."""
        if self.seen == 0:
            raise MediaError(self.p, "video stream has no decodable frames (truncated or corrupt)")
        if eof and not self.done:
            self.check_complete()
        order = np.argsort(self.times, kind="stable")
        if self.vfr == "frames":
            pick = order
        else:
            pick = self._grid(order, eof and not self.done)
        if len(pick) == 0:
            end = (self.last_time or 0.0) - (self.origin or 0.0)
            raise MediaError(
                self.p,
                f"the window from {float(self.k0 / self.fps):.3f} s is past the end of the video ({end:.3f} s)",
            )
        return self._assemble(pick), np.asarray(self.times, dtype=np.float64)[pick]

    def _grid(self, order: np.ndarray, to_end: bool) -> np.ndarray:
        """Indices into ``self.frames`` for grid slots k0, k0 + 1, ...: the frame showing at each slot."""
        slots = np.asarray(self.slots, dtype=np.int64)[order]
        if len(slots) and np.array_equal(slots, np.arange(self.k0, self.k0 + len(slots))):
            return order  # constant frame rate: one frame per slot, nothing to place
        if self.before is not None:  # the frame still showing when the window opens
            t, slot, frame = self.before
            self.frames.append(self._rgb(frame))
            self.times.append(t)
            self.slots.append(slot)
            order = np.concatenate([[len(self.frames) - 1], order])
            slots = np.concatenate([[slot], slots])
        if not len(slots):
            return order
        if to_end:  # the last frame lasts its own duration (at least one slot)
            last = max(1, round((self.last_duration or 0.0) * float(self.fps)))
            end = int(slots[-1]) + last if self.k1 is None else min(self.k1, int(slots[-1]) + last)
        else:
            end = self.k1 if self.k1 is not None else int(slots[-1]) + 1
        ks = np.arange(self.k0, end)  # empty when the stream ends before the window opens
        at = np.clip(np.searchsorted(slots, ks, side="right") - 1, 0, None)  # a late start holds frame 0
        extra = len(ks) - len(self.frames)
        if extra > 0:
            self.budget.take(extra * self.frame_bytes, f"{len(ks)} frames on the {self.fps} fps grid")
        return order[at]

    def _assemble(self, pick: np.ndarray) -> np.ndarray:
        """Stack the picked frames, freeing each source frame after its last use (peak ~ output + 1)."""
        last_use = {int(i): j for j, i in enumerate(pick)}
        first = self.frames[int(pick[0])]
        assert first is not None
        out = np.empty((len(pick), *first.shape), dtype=np.uint8)  # (T, H, W, 3)
        for j, i in enumerate(pick.tolist()):
            src = self.frames[i]
            assert src is not None
            out[j] = src
            if last_use[i] == j:
                self.frames[i] = None
        return out
