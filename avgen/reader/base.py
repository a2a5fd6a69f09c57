"""What every read path shares: file checks, opening a container, and the container's own declarations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from avgen.errors import AVGenError, MediaError

Streams = Literal["av", "v", "a", "any"]
# Container tags that describe avgen's own storage layout (see avgen.writer); the reader consumes them.
INTERNAL_TAGS = ("avgen_width", "avgen_height", "avgen_sample_rate")


def check_file(path: Any) -> Path:
    """``path`` as a Path, or a MediaError naming it: missing, not a regular file, empty, or unreadable."""
    p = Path(path)
    try:
        if not p.exists():
            raise MediaError(p, "no such file")
        if not p.is_file():
            raise MediaError(p, "not a regular file")
        if p.stat().st_size == 0:
            raise MediaError(p, "empty file (0 bytes)")
        with open(p, "rb") as f:
            f.read(1)
    except OSError as e:
        raise MediaError(p, f"cannot be read ({e.strerror or e}); check its permissions and name") from None
    return p


@contextlib.contextmanager
def damage_is_media_error(p: Path) -> Iterator[None]:
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


def codec_of(p: Path, stream: Any) -> Any:
    """The stream's codec context; a damaged or unknown codec id leaves PyAV without one."""
    if stream.codec_context is None:
        raise MediaError(
            p, f"{stream.type} stream {stream.index} has no codec (unknown codec id or damaged header)"
        )
    return stream.codec_context


def open_container(p: Path) -> Any:
    import av

    try:
        container = av.open(str(p), "r", metadata_errors="replace")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise MediaError(p, f"not a readable media file ({e.__class__.__name__}: {e})") from e
    if not container.streams.video and not container.streams.audio:
        container.close()
        raise MediaError(p, "contains no audio or video stream")
    return container


def container_tags(container: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in container.metadata.items()}


def need_streams(p: Path, streams: str, has_video: bool, has_audio: bool) -> tuple[bool, bool]:
    """Which streams to read; a missing required one is an error whose hint is a call that works."""
    if streams in ("av", "v") and not has_video:
        hint = "; read its audio with streams='a'" if has_audio else ""
        raise MediaError(p, "has no video stream" + hint)
    if streams in ("av", "a") and not has_audio:
        raise MediaError(
            p, "has no audio stream" + ("; read its video with streams='v'" if has_video else "")
        )
    if streams == "any":
        return has_video, has_audio
    return "v" in streams, "a" in streams


def declared_seconds(stream: Any) -> tuple[float | None, bool]:
    """The stream's length as the container declares it, and whether that is exact (MP4, Ogg) or only to
    the millisecond (Matroska's per-track DURATION tag)."""
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


def stream_start(stream: Any) -> float:
    """The stream's declared start time in seconds (0 when it declares none)."""
    if stream.start_time is None or not stream.time_base:
        return 0.0
    return float(stream.start_time * stream.time_base)


def check_index(p: Path, stream: Any) -> None:
    """Refuse a video index that marks no frame as a keyframe (a damaged MP4 sync-sample table): nothing
    in such a file can be sought, and its first frames may not decode."""
    entries = stream.index_entries
    if len(entries) and not any(entries[i].is_keyframe for i in range(len(entries))):
        raise MediaError(
            p,
            f"damaged index: none of the video stream's {len(entries)} frames is marked as a keyframe "
            "(MP4 sync-sample table); re-encode or re-mux the file",
        )
