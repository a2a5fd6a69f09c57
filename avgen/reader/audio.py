"""Audio samples of one window from a container stream: float32 (C, N), C in {1, 2}, placed on the clip's
timeline (sample 0 plays with clip time 0, the first video frame)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from avgen.errors import MediaError
from avgen.reader.base import codec_of, declared_seconds, stream_start
from avgen.reader.limits import Budget, ReadLimits


def out_channels(channels: int) -> int:
    """Mono stays mono; anything wider becomes stereo (FFmpeg's ITU-R BS.775 downmix, LFE dropped)."""
    return 1 if channels == 1 else 2


def offset_error(p: Path, offset: float, limits: ReadLimits) -> MediaError:
    side = "after" if offset > 0 else "before"
    return MediaError(
        p,
        f"audio starts {abs(offset):.3f} s {side} the video, over ReadLimits.max_stream_offset_s = "
        f"{limits.max_stream_offset_s:g} s (aligning them would pad or cut that much audio); read the video "
        f"alone with streams='v', or raise the limit: limits=ReadLimits(max_stream_offset_s="
        f"{math.ceil(abs(offset)) + 1})",
    )


class AudioSink:
    """Takes decoded frames of one audio stream and keeps the samples of the window [j0, j1).

    origin: clip time 0 in seconds; None until the first video frame is decoded (samples wait until then).
    Positions count samples at ``rate`` from the origin; the first decoded frame's timestamp anchors them
    and later frames follow on without gaps, so millisecond container timestamps cost no samples.
    """

    def __init__(
        self,
        p: Path,
        stream: Any,
        *,
        rate: int,
        span: tuple[int, int | None],
        limits: ReadLimits,
        budget: Budget,
        origin: float | None,
        container_format: str,
    ) -> None:
        import av

        self.p, self.stream, self.rate = p, stream, rate
        self.codec = codec_of(p, stream)  # first: a stream without one has no .channels either
        self.channels = out_channels(stream.channels or self.codec.channels)
        layout = "mono" if self.channels == 1 else "stereo"
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self.j0, self.j1 = span
        self.limits, self.budget = limits, budget
        self.origin = origin
        self.ogg = container_format == "ogg"
        self.anchor: float | None = None  # time of the first decoded sample
        self.count = 0  # samples decoded since the anchor
        self.waiting: list[tuple[int, np.ndarray]] = []  # (index since anchor, samples) until the origin
        self.kept: list[np.ndarray] = []
        self.kept_from: int | None = None  # position of the first kept sample
        self.kept_n = 0
        self.largest = 0
        self.done = False
        self.from_start = True  # decoding began at the file's start (set by the reader before a pass)
        self._end: int | None = None  # where keeping stops: the window's end or the declared end

    @property
    def base(self) -> int:
        """Position of the anchor sample on the clip's timeline."""
        assert self.anchor is not None and self.origin is not None
        return round((self.anchor - self.origin) * self.rate)

    def push(self, frame: Any) -> None:
        if self.anchor is None:
            self.anchor = float(frame.pts * self.stream.time_base) if frame.pts is not None else 0.0
            self._check_offset()
            if self.origin is not None:
                self._set_end()
        self.largest = max(self.largest, frame.samples)
        for out in self.resampler.resample(frame):
            self._add(out.to_ndarray())

    def set_origin(self, origin: float) -> None:
        self.origin = origin
        self._check_offset()
        if self.anchor is not None:
            self._set_end()
        waiting, self.waiting = self.waiting, []
        for index, chunk in waiting:
            self.budget.give(chunk.nbytes)
            self._place(index, chunk)

    def _check_offset(self) -> None:
        if self.anchor is not None and self.origin is not None:
            if abs(self.anchor - self.origin) > self.limits.max_stream_offset_s:
                raise offset_error(self.p, self.anchor - self.origin, self.limits)

    def _set_end(self) -> None:
        """Samples past an exact declared length are encoder padding: never kept, and decoding stops there
        (a stream that holds more than its header says costs no memory)."""
        declared = self._declared()
        self._end = self.j1
        if declared is not None:
            self._end = sum(declared) if self.j1 is None else min(self.j1, sum(declared))

    def _add(self, chunk: np.ndarray) -> None:
        index, self.count = self.count, self.count + chunk.shape[1]
        if self.origin is None:
            self.budget.take(chunk.nbytes, "audio")
            self.waiting.append((index, chunk))
        else:
            self._place(index, chunk)

    def _place(self, index: int, chunk: np.ndarray) -> None:
        pos, end = self.base + index, self._end
        lo = max(pos, self.j0)
        hi = pos + chunk.shape[1] if end is None else min(pos + chunk.shape[1], end)
        if hi > lo:
            piece = np.ascontiguousarray(chunk[:, lo - pos : hi - pos], dtype=np.float32)
            self.budget.take(piece.nbytes, "audio")
            if self.kept_from is None:
                self.kept_from = lo
            self.kept.append(piece)
            self.kept_n += piece.shape[1]
        if end is not None and pos + chunk.shape[1] >= end:
            self.done = True

    def _declared(self) -> tuple[int, int] | None:
        """(position, count) of the samples the container declares (exact lengths only: MP4, Ogg)."""
        seconds, exact = declared_seconds(self.stream)
        if seconds is None or not exact:
            return None
        count = round(seconds * self.rate)
        if self.ogg:  # an Ogg length counts the codec's pre-skip (Opus), which the decoder drops
            count -= self.codec.delay or 0
        assert self.origin is not None
        start = self.base if self.from_start else round((stream_start(self.stream) - self.origin) * self.rate)
        return start, count

    def finish(self, eof: bool) -> np.ndarray:
        """The window's samples float32 (C, N) in [-1, 1]; zeros where the audio starts after the window
        does, and the declared length's end trimmed (encoder padding) or, a few samples short, padded."""
        for out in self.resampler.resample(None):
            self._add(out.to_ndarray())
        if self.anchor is None:
            raise MediaError(self.p, "audio stream has no decodable samples (truncated or corrupt)")
        if self.origin is None:
            self.set_origin(self.anchor)
        rate, end = self.rate, self.base + self.count  # position after the last decoded sample
        declared = self._declared()
        declared_end = None if declared is None else sum(declared)
        if eof and not self.done:
            seconds, exact = declared_seconds(self.stream)
            frame_size = self.codec.frame_size or 0
            if declared_end is not None and end < declared_end:
                if declared_end - end > max(frame_size, 1024):
                    raise MediaError(
                        self.p, f"truncated: decoded {self.count} of {declared[1]} audio samples"
                    )
                self._place(self.count, np.zeros((self.channels, declared_end - end), np.float32))
            elif seconds is not None and not exact:  # millisecond tag: a check for truncation, not a trim
                slack = frame_size + (self.codec.delay or 0) + self.largest  # pre-skip, last frame's padding
                if self.anchor * rate + self.count < (seconds - 0.002) * rate - slack:
                    raise MediaError(
                        self.p, f"truncated: decoded {self.count / rate:.3f} s of {seconds:.3f} s of audio"
                    )
        stop = self.j1
        if declared_end is not None:  # encoder padding past the declared length goes
            stop = declared_end if stop is None else min(stop, declared_end)
        return self._assemble(stop)

    def _assemble(self, stop: int | None) -> np.ndarray:
        """Kept samples from j0, led by zeros where the audio starts later, cut at ``stop``."""
        if self.kept_from is None:  # nothing inside the window
            starts_after = self.base >= (self.j1 if self.j1 is not None else self.base + 1)
            n = (self.j1 or self.j0) - self.j0 if starts_after else 0
            self.budget.take(n * self.channels * 4, "audio padding")
            return np.zeros((self.channels, n), np.float32)
        lead = self.kept_from - self.j0
        n = lead + self.kept_n if stop is None else min(lead + self.kept_n, max(0, stop - self.j0))
        self.budget.take(lead * self.channels * 4, "audio padding")
        out = np.zeros((self.channels, n), np.float32)  # (C, N)
        at = lead
        for piece in self.kept:
            take = min(piece.shape[1], n - at)
            if take <= 0:
                break
            out[:, at : at + take] = piece[:, :take]
            at += take
        self.kept = []
        np.clip(out, -1.0, 1.0, out=out)
        return out


def stored_span(
    span: tuple[int, int | None], stored: int, original: int
) -> tuple[tuple[int, int | None], int]:
    """For audio the writer stored at a higher rate: the stored-rate span to decode (the window plus a
    margin for the resampling filter) and the original-rate position of its first sample. The span starts
    on a multiple of stored / gcd, so that position is a whole sample."""
    j0, j1 = span
    q = stored // math.gcd(stored, original)
    margin = q * math.ceil(0.05 * stored / q)
    s0 = max(0, (j0 * stored // original) // q * q - margin)
    s1 = None if j1 is None else math.ceil(j1 * stored / original) + margin
    return (s0, s1), s0 * original // stored


def restore_rate(
    audio: np.ndarray, stored: int, original: int, first: int, span: tuple[int, int | None]
) -> np.ndarray:
    """Undo the writer's storage at a higher AAC rate; ``audio`` starts at original-rate position ``first``.
    From position 0, a stream of M stored samples gives exactly floor(M * original / stored)."""
    # torch (and avgen.dsp, which needs it) only here, so reading and probing files never import it
    import torch

    from avgen.dsp import fit_length, resample

    length = audio.shape[1] * original // stored
    out = fit_length(
        resample(torch.from_numpy(np.ascontiguousarray(audio)), stored, original), length
    ).numpy()
    j0, j1 = span
    return np.clip(out[:, j0 - first : None if j1 is None else j1 - first], -1.0, 1.0)
