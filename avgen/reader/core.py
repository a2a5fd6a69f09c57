"""read_av: a window of a media file into an AVClip, with exact timing and bounded memory."""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avgen.clip import AVClip
from avgen.errors import ClipError, MediaError
from avgen.reader.audio import AudioSink, offset_error, out_channels, restore_rate, stored_span
from avgen.reader.audiofile import SOUNDFILE_SUFFIXES, check_wav_length, read_soundfile
from avgen.reader.base import (
    INTERNAL_TAGS,
    Streams,
    check_file,
    check_index,
    codec_of,
    container_tags,
    damage_is_media_error,
    declared_seconds,
    need_streams,
    open_container,
    stream_start,
)
from avgen.reader.limits import Budget, ReadLimits, Window
from avgen.reader.video import Vfr, VideoSink, declared_frames, scaled_size, stream_rate

# Decoding starts this long before the window, so audio codecs that need the previous frames (AAC's
# overlap, Opus's 80 ms pre-roll) are settled when the window opens.
_PREROLL_S = 1.0

Span = tuple[int, int | None]  # [first, end) in samples; end None: to the end of the stream


def _check_args(path: Any, streams: Any, max_size: Any, limits: Any, vfr: Any) -> ReadLimits:
    if streams not in ("av", "v", "a", "any"):
        raise MediaError(path, f"streams must be 'av', 'v', 'a' or 'any', got {streams!r}")
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise MediaError(
            path, f"max_size must be a positive int (longest side in pixels) or None, got {max_size!r}"
        )
    if vfr not in ("grid", "frames"):
        raise MediaError(path, f"vfr must be 'grid' or 'frames', got {vfr!r}")
    if limits is None:
        return ReadLimits()
    if not isinstance(limits, ReadLimits):
        raise MediaError(path, f"limits must be an avgen.io.ReadLimits, got {type(limits).__name__}")
    return limits


def read_av(
    path: str | os.PathLike,
    *,
    streams: Streams = "av",
    start: float = 0.0,
    duration: float | None = None,
    max_size: int | None = None,
    limits: ReadLimits | None = None,
    vfr: Vfr = "grid",
) -> AVClip:
    """Read a media file, or a window of it, into an AVClip.

    streams: "av" needs both video and audio, "v" / "a" read one, "any" reads what is there.
    start, duration: the window in seconds from the first video frame (the audio's start without video):
        frames k with start <= k / fps < start + duration, and the audio those frames span; without
        video, samples j with start <= j / rate < start + duration. Decoding seeks near ``start``.
    max_size: longest side of the returned frames in pixels; larger frames shrink as they decode (aspect
        kept), so memory follows the output.
    limits: :class:`ReadLimits`; a file that needs more is refused before decoding, and again while
        decoding if its header understates it, with a MediaError naming the limit and the fix.
    vfr: "grid" places frames on a constant grid at the stream's rate by their timestamps (variable frame
        rate sources keep their timing); "frames" keeps every decoded frame in order at the average rate.

    Audio sample 0 plays with frame 0 (a later audio start is zero-padded, an earlier one cut), AAC priming
    and padding are trimmed, more than two channels are downmixed to stereo (FFmpeg's ITU-R BS.775 matrix),
    frames are turned upright by the container's display matrix, fps stays an exact fraction. Raises
    MediaError naming the path for missing, empty, truncated, corrupt or non-media files, a missing
    required stream, or a limit.
    """
    limits = _check_args(path, streams, max_size, limits, vfr)
    p = check_file(path)
    window = Window.of(p, start, duration)
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        check_wav_length(p, window)
        clip = read_soundfile(p, streams, window, limits)
        if clip is not None:
            return clip
    container = open_container(p)
    with container, damage_is_media_error(p):
        plan = _plan(p, container, streams, window, max_size, limits, vfr)
        _precheck(plan, container)
        clip = _read(plan, container)
        if clip is None:  # an index that seeks past the window: read again from the start
            clip = _read(dataclasses.replace(plan, seek_to=None), container)
        assert clip is not None
        return clip


def _read(plan: _Plan, container: Any) -> AVClip | None:
    """Decode the plan's windows; None when a seek landed after the window (a damaged index).

    Audio whose timestamps are coarser than a sample (Matroska and WebM count milliseconds) is read from
    its start in a pass of its own, so its samples are counted exactly rather than placed by a rounded
    timestamp; the video pass still seeks."""
    p = plan.p
    sinks = _sinks(plan, container, Budget(p, plan.limits, video=plan.fps is not None))
    passes = [(sinks, plan.seek_to)]
    audio = sinks[-1] if isinstance(sinks[-1], AudioSink) else None
    if plan.seek_to is not None and audio is not None and audio.stream.time_base > Fraction(1, audio.rate):
        passes = [(sinks[:-1], plan.seek_to), ([audio], None)] if len(sinks) > 1 else [([audio], None)]
    eof: dict[int, bool] = {}
    for n, (group, seek_to) in enumerate(passes):
        c = container if n == 0 else open_container(p)
        try:
            done = _decode(p, c, group, seek_to)
        finally:
            if n:
                c.close()
        if seek_to is not None and _landed_late(group, plan.origin_or_0 + float(plan.window.start)):
            return None
        eof |= {id(s): done for s in group}
    return _clip(plan, sinks, eof)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What one read decodes, decided from the container's declarations before decoding."""

    p: Path
    tags: dict[str, str]
    window: Window
    max_size: int | None
    limits: ReadLimits
    vfr: Vfr
    fps: Fraction | None  # None: video not read
    rate: int | None  # the audio stream's sample rate; None: audio not read
    original: int | None  # the clip's sample rate (the writer may have stored audio at a higher one)
    span: Span | None  # the window in samples at ``original``
    stored: tuple[Span, int] | None  # the span decoded at ``rate`` and where it starts at ``original``
    origin: float | None  # clip time 0 in s; None: the first decoded frame's time
    seek_to: float | None  # where decoding starts (s); None: the start of the file

    @property
    def origin_or_0(self) -> float:
        return self.origin or 0.0


def _plan(
    p: Path,
    container: Any,
    streams: Streams,
    window: Window,
    max_size: int | None,
    limits: ReadLimits,
    vfr: Vfr,
) -> _Plan:
    tags = container_tags(container)
    videos, audios = container.streams.video, container.streams.audio
    want_v, want_a = need_streams(p, streams, bool(videos), bool(audios))
    fps = rate = original = span = stored = None
    if want_v:
        codec_of(p, videos[0])
        check_index(p, videos[0])
        fps = stream_rate(videos[0], vfr)
        if not fps:
            raise MediaError(p, "video stream has no frame rate")
    if want_a:
        cc = codec_of(p, audios[0])  # first: a stream without one has no .rate either
        rate = audios[0].rate or cc.sample_rate
        if not rate:
            raise MediaError(p, "audio stream has no sample rate")
        original = int(tags.get("avgen_sample_rate", 0)) or rate
        span = window.samples(original, fps)
        stored = (span, 0) if original == rate else stored_span(span, rate, original)
    # clip time 0: the first decoded frame for a whole read, else the video stream's declared start
    v_start = stream_start(videos[0]) if videos else 0.0
    origin = None if (want_v and window.start == 0) else v_start
    seek_to = None
    if window.start > 0:
        seek_to = v_start + float(window.start) - _PREROLL_S
        read = [s for s, want in ((videos, want_v), (audios, want_a)) if want]
        if seek_to <= min(stream_start(s[0]) for s in read):
            seek_to = None  # the window opens within the pre-roll: read from the start
    return _Plan(p, tags, window, max_size, limits, vfr, fps, rate, original, span, stored, origin, seek_to)


def _precheck(plan: _Plan, container: Any) -> None:
    """Refuse from the container's declarations alone, before anything is decoded."""
    p, limits = plan.p, plan.limits
    videos, audios = container.streams.video, container.streams.audio
    v_start = stream_start(videos[0]) if videos else 0.0
    seconds_all = container.duration / 1e6 if container.duration else None
    need, parts = 0, []
    if plan.fps is not None:
        cc = videos[0].codec_context
        w, h = cc.width or 0, cc.height or 0
        if w * h > limits.max_frame_pixels:
            raise MediaError(
                p,
                f"video frames are {w}x{h} = {w * h} pixels, over ReadLimits.max_frame_pixels = "
                f"{limits.max_frame_pixels}; raise the limit: limits=ReadLimits(max_frame_pixels={w * h})",
            )
        tw = min(int(plan.tags.get("avgen_width", 0)) or w, w)
        th = min(int(plan.tags.get("avgen_height", 0)) or h, h)
        ow, oh = scaled_size(tw, th, plan.max_size)
        k0, k1 = plan.window.frames(plan.fps)
        ends = [x for x in (declared_frames(videos[0], plan.fps, seconds_all), k1) if x is not None]
        if ends and ow * oh:
            n = max(0, min(ends) - k0)
            need += n * ow * oh * 3
            parts.append(f"{n} frames of {ow}x{oh}")
    if plan.span is not None and plan.original is not None:
        (j0, j1), rate, stream = plan.span, plan.original, audios[0]
        a_start = stream_start(stream)
        if videos and abs(a_start - v_start) > limits.max_stream_offset_s:
            raise offset_error(p, a_start - v_start, limits)
        seconds = declared_seconds(stream)[0] or seconds_all
        declared_end = None if seconds is None else round((a_start - v_start + seconds) * rate)
        ends = [x for x in (j1, declared_end) if x is not None]
        if ends:
            n = max(0, min(ends) - j0)
            channels = out_channels(stream.channels or 1)
            need += n * channels * 4
            parts.append(f"{n / rate:.1f} s of {'mono' if channels == 1 else 'stereo'} audio at {rate} Hz")
    if parts:
        Budget(p, limits, video=plan.fps is not None).check(need, "decoding " + " and ".join(parts))


def _sinks(plan: _Plan, container: Any, budget: Budget) -> list[Any]:
    sinks: list[Any] = []
    if plan.fps is not None:
        stream = container.streams.video[0]
        sinks.append(
            VideoSink(
                plan.p,
                stream,
                fps=plan.fps,
                window=plan.window,
                tags=plan.tags,
                max_size=plan.max_size,
                limits=plan.limits,
                budget=budget,
                origin=plan.origin,
                vfr=plan.vfr,
            )
        )
    if plan.stored is not None and plan.rate is not None:
        sinks.append(
            AudioSink(
                plan.p,
                container.streams.audio[0],
                rate=plan.rate,
                span=plan.stored[0],
                limits=plan.limits,
                budget=budget,
                origin=plan.origin,
                container_format=container.format.name,
            )
        )
    return sinks


def _decode(p: Path, container: Any, sinks: list[Any], seek_to: float | None) -> bool:
    """Feed the streams' frames to their sinks in one pass from ``seek_to`` (seconds; None: the start).
    True when the file was read to its end, False when every sink had its window first."""
    import av

    vsink = next((s for s in sinks if isinstance(s, VideoSink)), None)
    asink = next((s for s in sinks if isinstance(s, AudioSink)), None)
    streams = [container.streams[s.stream.index] for s in sinks]  # ``container`` may be a second opening
    for s in sinks:
        s.from_start = seek_to is None
    if seek_to is not None:
        container.seek(int(seek_to / streams[0].time_base), stream=streams[0], backward=True)
    by_index = {s.stream.index: s for s in sinks}
    for packet in container.demux(streams):
        sink = by_index[packet.stream.index]
        if sink.done:
            continue
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            what = f"after {sink.seen} frames" if sink is vsink else f"after {sink.count} samples"
            raise MediaError(p, f"{packet.stream.type} is corrupt or truncated {what} ({e})") from e
        for frame in frames:
            sink.push(frame)
            if sink.done:
                break
        if asink is not None and asink.origin is None and vsink is not None and vsink.origin is not None:
            asink.set_origin(vsink.origin)  # audio waits for the first frame's time
        if all(s.done for s in sinks):
            return False
    return True


def _landed_late(sinks: list[Any], target: float) -> bool:
    """Whether a seek put a stream's first decoded sample after the window's start (and after the
    stream's own declared start, which would make the gap real)."""
    for s in sinks:
        video = isinstance(s, VideoSink)
        t = s.first_time if video else s.anchor
        tol = 0.5 / float(s.fps) if video else 1 / s.rate
        if t is not None and t > max(target, stream_start(s.stream)) + tol:
            return True
    return False


def _clip(plan: _Plan, sinks: list[Any], eof: dict[int, bool]) -> AVClip:
    """The clip from the sinks; ``eof[id(sink)]``: whether its pass read the file to its end."""
    video = audio = None
    for s in sinks:
        if isinstance(s, VideoSink):
            video, _ = s.finish(eof[id(s)])
        else:
            audio = s.finish(eof[id(s)])
            if plan.original != plan.rate:
                assert plan.stored is not None and plan.span is not None
                audio = restore_rate(audio, plan.rate, plan.original, plan.stored[1], plan.span)
    meta = {k: v for k, v in plan.tags.items() if k not in INTERNAL_TAGS}
    try:
        return AVClip(
            video=video,
            fps=plan.fps if video is not None else None,
            audio=audio,
            sample_rate=plan.original if audio is not None else None,
            metadata=meta,
        )
    except ClipError as e:  # decoded values no clip may hold (NaN samples): the file's fault, named
        raise MediaError(plan.p, str(e)) from None


def read_video_timed(
    path: str | os.PathLike, *, max_size: int | None = None, limits: ReadLimits | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (T, H, W, 3), every decoded one in timestamp order, and their presentation times (T,)
    float64 in seconds, first frame at 0.

    For variable-frame-rate sources: resample by these times, not by frame index.
    """
    limits = _check_args(path, "v", max_size, limits, "frames")
    p = check_file(path)
    container = open_container(p)
    with container, damage_is_media_error(p):
        plan = _plan(p, container, "v", Window(), max_size, limits, "frames")
        _precheck(plan, container)
        (sink,) = _sinks(plan, container, Budget(p, limits, video=True))
        frames, times = sink.finish(_decode(p, container, [sink], None))
    return frames, times - times[0]
