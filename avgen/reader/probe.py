"""probe: container and stream facts without decoding (what ``avgen info`` prints)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from avgen.errors import MediaError
from avgen.reader.audiofile import SOUNDFILE_SUFFIXES
from avgen.reader.base import check_file, codec_of, container_tags, damage_is_media_error, open_container


def _stream_entry(p: Path, s: Any) -> dict[str, Any]:
    """What ``probe`` reports of one audio or video stream."""
    cc, tb = codec_of(p, s), s.time_base
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


def _probe_soundfile(p: Path) -> dict[str, Any]:
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


def probe(path: str | os.PathLike) -> dict[str, Any]:
    """Container and stream facts without decoding: what ``avgen info`` prints.

    Raises MediaError naming the path for missing, empty, non-media or damaged files (e.g. a stream whose
    codec id is unknown after a bit flip)."""
    p = check_file(path)
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        return _probe_soundfile(p)
    container = open_container(p)
    with container, damage_is_media_error(p):
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
            "metadata": container_tags(container),
        }
