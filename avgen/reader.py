"""Reading media into AVClip with exact timing: frame count, sample count and A/V start all preserved."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from avgen.clip import AVClip
from avgen.errors import AVGenError, MediaError

Streams = Literal["av", "v", "a", "any"]
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg")
_INTERNAL_TAGS = ("avgen_width", "avgen_height", "avgen_sample_rate")


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "no such file")
    if not p.is_file():
        raise MediaError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise MediaError(p, "empty file (0 bytes)")
    return p


@contextlib.contextmanager
def _damage_is_media_error(p: Path) -> Iterator[None]:
    """Turn what PyAV and numpy raise on a damaged container (a stream with no codec, None timestamps or
    rates, an FFmpeg error outside decoding such as a failed seek) into a MediaError naming ``p``."""
    import av

    try:
        yield
    except AVGenError:
        raise
    except av.error.FFmpegError as e:
        raise MediaError(p, f"damaged or unsupported stream ({e.__class__.__name__}: {e})") from e
    except (AttributeError, TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError) as e:
        raise MediaError(p, f"damaged container or stream header ({e.__class__.__name__}: {e})") from e


def _codec(p: Path, stream: Any) -> Any:
    """The stream's codec context; a damaged or unknown codec id leaves PyAV without one."""
    if stream.codec_context is None:
        raise MediaError(
            p, f"{stream.type} stream {stream.index} has no codec (unknown codec id or damaged header)"
        )
    return stream.codec_context


def _open(p: Path) -> Any:
    import av

    try:
        container = av.open(str(p), "r", metadata_errors="replace")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise MediaError(p, f"not a readable media file ({e.__class__.__name__}: {e})") from e
    if not container.streams.video and not container.streams.audio:
        container.close()
        raise MediaError(p, "contains no audio or video stream")
    return container


def _tags(container: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in container.metadata.items()}


def _need(p: Path, streams: str, has_video: bool, has_audio: bool) -> tuple[bool, bool]:
    """Which streams to read; a missing required one is an error."""
    if streams in ("av", "v") and not has_video:
        raise MediaError(p, "has no video stream" + ("; read it with streams='a'" if has_audio else ""))
    if streams in ("av", "a") and not has_audio:
        raise MediaError(p, "has no audio stream" + ("; read it with streams='v'" if has_video else ""))
    if streams == "any":
        return has_video, has_audio
    return "v" in streams, "a" in streams


def _declared_seconds(stream: Any) -> tuple[float | None, bool]:
    """The stream's length as the container declares it, and whether that is exact (MP4) or only to the
    millisecond (Matroska's per-track DURATION tag)."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base), True
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec), False
        except ValueError:
            return None, False
    return None, False


def _stream_start(stream: Any) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _decode_video(p: Path, container: Any, tags: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """All frames as uint8 (T, H, W, 3) and their presentation times (T,) in seconds."""
    import av

    stream = container.streams.video[0]
    _codec(p, stream)
    width = int(tags.get("avgen_width", 0)) or None
    height = int(tags.get("avgen_height", 0)) or None
    frames, times = [], []
    try:
        for frame in container.decode(stream):
            if frame.pts is None or frame.time is None:
                raise MediaError(p, f"video frame {len(frames)} has no timestamp")
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(rgb[:height, :width])
            times.append(float(frame.pts * stream.time_base))
    except av.error.FFmpegError as e:
        raise MediaError(p, f"video is corrupt or truncated after {len(frames)} frames ({e})") from e
    if not frames:
        raise MediaError(p, "video stream has no decodable frames (truncated or corrupt)")
    if stream.frames and len(frames) < stream.frames:
        raise MediaError(p, f"truncated: decoded {len(frames)} of {stream.frames} video frames")
    declared, exact = _declared_seconds(stream)
    rate = stream.average_rate or stream.guessed_rate
    if declared and rate:  # MP4 declares a length, Matroska an end time
        decoded = max(times) - (min(times) if exact else 0.0) + 1 / float(rate)
        if decoded < declared - 1.5 / float(rate) - 0.002:
            raise MediaError(p, f"truncated: decoded {decoded:.3f} s of {declared:.3f} s of video")
    order = np.argsort(times, kind="stable")
    return np.stack([frames[i] for i in order]), np.asarray(times, dtype=np.float64)[order]


def _decode_audio(p: Path, container: Any) -> tuple[np.ndarray, int, float, int | None]:
    """All samples as float32 (C, N) with C in {1, 2}; the rate, the start time (s), and the
    container's declared length in samples (None if it declares none)."""
    import av

    stream = container.streams.audio[0]
    codec = _codec(p, stream)  # first: an audio stream without one has no .rate or .channels either
    rate = stream.rate or codec.sample_rate
    if not rate:
        raise MediaError(p, "audio stream has no sample rate")
    layout = "mono" if stream.channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks, start = [], None
    try:
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
            chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    except av.error.FFmpegError as e:
        raise MediaError(p, f"audio is corrupt or truncated ({e})") from e
    if not chunks:
        raise MediaError(p, "audio stream has no decodable samples (truncated or corrupt)")
    audio = np.concatenate(chunks, axis=1).astype(np.float32)
    seconds, exact = _declared_seconds(stream)
    if seconds is not None and not exact:  # millisecond precision: a check for truncation, not a trim
        if (start or 0.0) * rate + audio.shape[1] < (seconds - 0.002) * rate - (codec.frame_size or 0):
            raise MediaError(
                p, f"truncated: decoded {audio.shape[1] / rate:.3f} s of {seconds:.3f} s of audio"
            )
    declared = round(seconds * rate) if seconds is not None and exact else None
    return audio, int(rate), start or 0.0, declared


def _fit_audio(p: Path, audio: np.ndarray, rate: int, declared: int | None, frame_size: int) -> np.ndarray:
    """Trim encoder padding to the declared length; a much shorter stream is truncated."""
    if declared is None or declared <= 0:
        return audio
    if audio.shape[1] >= declared:
        return audio[:, :declared]
    if declared - audio.shape[1] > max(frame_size, 1024):
        raise MediaError(p, f"truncated: decoded {audio.shape[1]} of {declared} audio samples")
    return np.pad(audio, ((0, 0), (0, declared - audio.shape[1])))


def _restore_rate(audio: np.ndarray, stored: int, original: int) -> np.ndarray:
    """Undo the writer's storage at a higher AAC rate: exactly floor(M * r / s) samples at rate r."""
    # torch (and avgen.dsp, which needs it) only here, so reading and probing files never import it
    import torch

    from avgen.dsp import fit_length, resample

    length = audio.shape[1] * original // stored
    return fit_length(resample(torch.from_numpy(audio), stored, original), length).numpy()


def _read_soundfile(p: Path, streams: str) -> AVClip:
    import soundfile as sf

    if streams in ("av", "v"):
        raise MediaError(p, "is an audio file with no video stream; read it with streams='a'")
    try:
        with sf.SoundFile(p) as f:
            data = f.read(dtype="float32", always_2d=True)
            rate, comment = f.samplerate, f.comment or ""
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise MediaError(p, f"not a readable audio file ({e})") from e
    if data.shape[0] == 0:
        raise MediaError(p, "audio file has no samples")
    audio = data.T
    if audio.shape[0] > 2:
        audio = audio[:2]
    try:
        tags = json.loads(comment) if comment.startswith("{") else {}
    except json.JSONDecodeError:
        tags = {}
    return AVClip(audio=np.clip(audio, -1, 1), sample_rate=rate, metadata=tags)


def read_av(path: str | os.PathLike, *, streams: Streams = "av") -> AVClip:
    """Read a media file into an AVClip.

    streams: "av" needs both video and audio, "v" / "a" read one, "any" reads what is there.
    Audio sample 0 is aligned with frame 0 (a later audio start is zero-padded, an earlier one cut),
    AAC priming and padding are trimmed, fps stays an exact fraction. Raises MediaError naming the path
    for missing, empty, truncated, corrupt or non-media files and for a missing required stream.
    """
    if streams not in ("av", "v", "a", "any"):
        raise ValueError(f"streams must be 'av', 'v', 'a' or 'any', got {streams!r}")
    p = _check_file(path)
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        return _read_soundfile(p, streams)
    container = _open(p)
    with container, _damage_is_media_error(p):
        tags = _tags(container)
        want_v, want_a = _need(p, streams, bool(container.streams.video), bool(container.streams.audio))
        video = fps = audio = rate = None
        v_start = None
        if want_v:
            vstream = container.streams.video[0]
            fps = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
            if not fps or fps <= 0:
                raise MediaError(p, "video stream has no frame rate")
            video, times = _decode_video(p, container, tags)
            v_start = times[0]
            container.seek(0)
        if want_a:
            astream = container.streams.audio[0]
            audio, rate, a_start, declared = _decode_audio(p, container)
            audio = _fit_audio(p, audio, rate, declared, _codec(p, astream).frame_size or 0)
            original = int(tags.get("avgen_sample_rate", 0)) or rate
            if original != rate:
                audio, rate = _restore_rate(audio, rate, original), original
            if v_start is None:  # video not decoded: its start from the container, else time 0
                v_start = _stream_start(container.streams.video[0]) if container.streams.video else 0.0
            shift = round((a_start - v_start) * rate)  # put audio sample 0 at the first frame's time
            audio = np.pad(audio, ((0, 0), (shift, 0))) if shift > 0 else audio[:, -shift:]
            audio = np.clip(audio, -1.0, 1.0)
    meta = {k: v for k, v in tags.items() if k not in _INTERNAL_TAGS}
    return AVClip(
        video=video, fps=Fraction(fps) if fps else None, audio=audio, sample_rate=rate, metadata=meta
    )


def read_video_timed(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (T, H, W, 3) and presentation times (T,) float64 in seconds, first frame at 0.

    For variable-frame-rate sources: resample by these times, not by frame index.
    """
    p = _check_file(path)
    container = _open(p)
    with container, _damage_is_media_error(p):
        _need(p, "v", bool(container.streams.video), bool(container.streams.audio))
        frames, times = _decode_video(p, container, _tags(container))
    return frames, times - times[0]


def _stream_entry(p: Path, s: Any) -> dict[str, Any]:
    """What ``probe`` reports of one audio or video stream."""
    cc, tb = _codec(p, s), s.time_base
    entry: dict[str, Any] = {
        "index": s.index,
        "type": s.type,
        "codec": cc.name,
        "profile": cc.profile,
        "duration_s": float(s.duration * tb) if s.duration is not None and tb else None,
        "start_s": float(s.start_time * tb) if s.start_time is not None and tb else None,
        "bit_rate": cc.bit_rate or None,
    }
    if s.type == "video":
        rate = s.average_rate or s.guessed_rate
        return entry | {
            "width": cc.width,
            "height": cc.height,
            "pix_fmt": cc.pix_fmt,
            "fps": str(rate) if rate else None,
            "frames": s.frames or None,
        }
    return entry | {
        "sample_rate": s.rate,
        "channels": s.channels,
        "layout": s.layout.name,
        "samples": round(s.duration * tb * s.rate) if s.duration is not None and tb else None,
    }


def probe(path: str | os.PathLike) -> dict[str, Any]:
    """Container and stream facts without decoding: what ``avgen info`` prints.

    Raises MediaError naming the path for missing, empty, non-media or damaged files (e.g. a stream whose
    codec id is unknown after a bit flip)."""
    p = _check_file(path)
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            info = sf.info(str(p))
        except (sf.LibsndfileError, RuntimeError) as e:
            raise MediaError(p, f"not a readable audio file ({e})") from e
        return {
            "path": str(p),
            "format": info.format,
            "size_bytes": p.stat().st_size,
            "duration_s": info.duration,
            "streams": [
                {
                    "type": "audio",
                    "codec": info.subtype,
                    "sample_rate": info.samplerate,
                    "channels": info.channels,
                    "samples": info.frames,
                    "duration_s": info.duration,
                    "start_s": 0.0,
                }
            ],
            "av_start_offset_s": None,
            "metadata": {"comment": info.extra_info.strip()[:200]} if info.extra_info else {},
        }
    container = _open(p)
    with container, _damage_is_media_error(p):
        streams = [_stream_entry(p, s) for s in container.streams if s.type in ("video", "audio")]
        starts = {e["type"]: e["start_s"] for e in reversed(streams)}
        offset = None
        if starts.get("video") is not None and starts.get("audio") is not None:
            offset = starts["audio"] - starts["video"]
        return {
            "path": str(p),
            "format": container.format.name,
            "size_bytes": p.stat().st_size,
            "duration_s": container.duration / 1e6 if container.duration else None,
            "streams": streams,
            "av_start_offset_s": offset,
            "metadata": _tags(container),
        }
