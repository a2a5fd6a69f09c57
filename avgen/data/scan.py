"""Scanning a folder of videos: captions, one decode per file, and the skip decision for each.

``scan_folder`` returns the usable ``FolderEntry`` list and a ``SkipReport`` naming every file left out.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avgen.data.buckets import longest_fitting, nearest_resolution
from avgen.data.skips import SkipReport
from avgen.errors import AVGenError, MediaError
from avgen.io import probe, read_av, read_video_timed

if TYPE_CHECKING:
    from avgen.clip import AVClip
    from avgen.data.folder import FolderConfig


@dataclasses.dataclass(frozen=True)
class FolderEntry:
    """One usable source file, as found by the scan (times in seconds)."""

    path: str
    caption: str
    duration: float  # usable length: min of the video and audio timelines
    height: int
    width: int
    sample_rate: int  # source audio rate, 0 without audio
    bucket: tuple[int, int]  # (resolution index, duration index)


def read_captions(root: Path, name: str) -> dict[str, str]:
    """Relative posix path -> caption from ``root/name`` (JSONL); {} if there is no such file."""
    path = root / name
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            file, caption = rec["file"], rec["caption"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise MediaError(
                path, f'line {n}: expected {{"file": ..., "caption": ...}}, got {line[:80]!r} ({e})'
            ) from None
        if not isinstance(file, str) or not isinstance(caption, str):
            raise MediaError(path, f"line {n}: file and caption must be strings")
        out[Path(file).as_posix()] = caption
    return out


def _timeline_end(times: np.ndarray) -> float:
    """End of the last frame: last timestamp plus the median frame interval."""
    if len(times) < 2:
        return float(times[-1]) if len(times) else 0.0
    return float(times[-1] + np.median(np.diff(times)))


def packet_times(path: str | Path) -> np.ndarray:
    """Presentation times (s) of the video packets, ascending, first at 0, read without decoding."""
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            tb = stream.time_base
            t = sorted(float(p.pts * tb) for p in c.demux(stream) if p.pts is not None)
    except (av.FFmpegError, OSError, IndexError, AttributeError, TypeError, ZeroDivisionError) as e:
        raise MediaError(path, f"cannot read video timestamps ({e.__class__.__name__}: {e})") from None
    times = np.asarray(t, dtype=np.float64)
    return times - times[0] if len(times) else times


def decode_timed(path: str | Path, *, audio: bool) -> tuple[AVClip, np.ndarray]:
    """The clip (audio, if asked, aligned so sample 0 plays with the first frame) and the frames'
    presentation times (T,) float64 s, first at 0. One decode: times come from the packets, or from
    ``read_video_timed`` if their count disagrees with the decoded frames."""
    clip = read_av(path, streams="av" if audio else "v", vfr="frames")  # one frame per decoded frame
    times = packet_times(path)
    if len(times) != clip.num_frames:
        _, times = read_video_timed(path)
    return clip, times


def _probe(path: Path, rel: str, captions: dict[str, str], cfg: FolderConfig) -> FolderEntry | tuple:
    """A FolderEntry, or a (reason, detail) pair saying why the file is skipped."""
    if path.stat().st_size == 0:
        return ("empty", "0 bytes")
    caption = captions.get(rel)
    if caption is None and path.with_suffix(".txt").is_file():
        try:
            caption = path.with_suffix(".txt").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            return ("unreadable", f"caption file {path.with_suffix('.txt').name}: {e}")
    if caption is None and cfg.skip.require_caption:
        return ("no_caption", f"no entry in {cfg.captions_file} and no {path.with_suffix('.txt').name}")
    try:
        kinds = {s["type"] for s in probe(path)["streams"]}
        has_video, has_audio = "video" in kinds, "audio" in kinds
        if not has_video:
            return ("no_video", "the container has no video stream")
        if not has_audio and cfg.skip.require_audio:
            return ("no_audio", "the container has no audio stream")
        clip, times = decode_timed(path, audio=has_audio)
    except AVGenError as e:
        return ("unreadable", str(getattr(e, "problem", e)))
    duration, sample_rate = _timeline_end(times), 0
    if has_audio:
        sample_rate = int(clip.sample_rate)
        duration = min(duration, clip.num_samples / sample_rate)
        rms = float(np.sqrt(np.mean(np.square(clip.audio, dtype=np.float64)))) if clip.num_samples else 0.0
        dbfs = 20 * math.log10(max(rms, 1e-12))
        if cfg.skip.silence_dbfs is not None and dbfs < cfg.skip.silence_dbfs:
            return ("silent", f"audio RMS {dbfs:.1f} dBFS < {cfg.skip.silence_dbfs} dBFS")
    d_idx = longest_fitting(duration, cfg.durations)
    if d_idx is None:
        return ("too_short", f"{duration:.3f} s < shortest window {min(cfg.durations)} s")
    r_idx = nearest_resolution(clip.height, clip.width, cfg.resolutions)
    return FolderEntry(
        str(path), caption or "", duration, clip.height, clip.width, sample_rate, (r_idx, d_idx)
    )


def scan_folder(
    root: str | Path, cfg: FolderConfig, *, workers: int = 1
) -> tuple[list[FolderEntry], SkipReport]:
    """Decode every media file under ``root`` once: the usable entries (sorted by path) and the skips.

    A file that cannot be read, whatever it raises, is a skip with reason ``unreadable`` and a detail
    naming the problem; it never stops the scan of the other files.

    workers: threads decoding in parallel (PyAV releases the GIL while decoding).
    """
    root = Path(root)
    if not root.is_dir():
        raise MediaError(root, "not a folder; pass the folder that holds the videos")
    captions = read_captions(root, cfg.captions_file)
    exts = {e.lower() for e in cfg.extensions}
    files = sorted(
        (
            p
            for p in root.rglob("*")
            if p.suffix.lower() in exts and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    rels = [p.relative_to(root).as_posix() for p in files]
    report = SkipReport(root, total=len(files))
    for rel in sorted(set(captions) - set(rels)):
        report.add(root / rel, "missing", f"named in {cfg.captions_file}")

    def probe_one(i: int) -> FolderEntry | tuple:
        # one file must never sink the scan: whatever it raises becomes its skip reason
        try:
            return _probe(files[i], rels[i], captions, cfg)
        except Exception as e:
            return ("unreadable", f"unexpected {e.__class__.__name__}: {e}")

    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(probe_one, range(len(files))))
    else:
        results = [probe_one(i) for i in range(len(files))]
    entries = []
    for path, res in zip(files, results):
        if isinstance(res, FolderEntry):
            entries.append(res)
        else:
            report.add(path, *res)
    return entries, report
