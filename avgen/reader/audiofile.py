"""Audio-only files (WAV, FLAC, Ogg) through libsndfile: exact sample counts at any bit depth, a window
read by seeking, and a WAV whose header promises more samples than it holds refused by name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from avgen.clip import AVClip
from avgen.errors import MediaError
from avgen.reader.base import Streams
from avgen.reader.limits import Budget, ReadLimits, Window

SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg")
_UNKNOWN_LENGTH = (0, 0xFFFFFFFF)  # what a writer that could not seek back (a pipe) leaves in the header


def wav_lengths(p: Path) -> tuple[int, int, int] | None:
    """(samples the header declares, samples the file holds, sample rate) of a RIFF WAV whose data chunk
    states its size; None for other files (RF64, a streamed header of unknown length, not WAV)."""
    with p.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = rate = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(size)
                if len(fmt) < 16:
                    return None
                _, _, rate, _, block = struct.unpack("<HHIIH", fmt[:14])
                f.seek(size % 2, 1)
            elif cid == b"data":
                if block == 0 or rate == 0 or size in _UNKNOWN_LENGTH:
                    return None
                held = p.stat().st_size - f.tell()
                return size // block, max(0, held) // block, rate
            else:
                f.seek(size + size % 2, 1)


def check_wav_length(p: Path, window: Window) -> None:
    """Refuse a WAV cut short (its header declares more samples than it holds) when the window reaches past
    what it holds; the error names a call that reads the part that is there."""
    lengths = wav_lengths(p) if p.suffix.lower() == ".wav" else None
    if lengths is None:
        return
    declared, held, rate = lengths
    end = window.samples(rate)[1]
    if held < declared and (end is None or end > held):
        raise MediaError(
            p,
            f"truncated: the header declares {declared} samples ({declared / rate:.3f} s) but the file holds "
            f"{held} ({held / rate:.3f} s); read the part that is there with "
            f"read_av(path, streams='a', duration={held / rate!r})",
        )


def read_soundfile(p: Path, streams: Streams, window: Window, limits: ReadLimits) -> AVClip | None:
    """The window of an audio-only file; None for more than two channels, which go through FFmpeg so they
    are downmixed exactly as in any other container."""
    import soundfile as sf

    if streams in ("av", "v"):
        raise MediaError(p, "is an audio file with no video stream; read its audio with streams='a'")
    try:
        with sf.SoundFile(p) as f:
            if f.channels > 2:
                return None
            rate, total, channels, comment = f.samplerate, f.frames, f.channels, f.comment or ""
            j0, j1 = window.samples(rate)
            stop = total if j1 is None else min(j1, total)
            if total and j0 >= total:
                raise MediaError(
                    p, f"start={float(window.start):g} s is past the end of the audio ({total / rate:.3f} s)"
                )
            n = max(0, stop - j0)
            Budget(p, limits, video=False).check(n * channels * 4, f"reading {n / rate:.1f} s of audio")
            if j0:
                f.seek(j0)
            data = f.read(n, dtype="float32", always_2d=True)
    except MediaError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise MediaError(p, f"not a readable audio file ({e})") from e
    if data.shape[0] == 0:
        raise MediaError(p, "audio file has no samples")
    try:
        tags = json.loads(comment) if comment.startswith("{") else {}
    except json.JSONDecodeError:
        tags = {}
    if not np.isfinite(data).all():
        raise MediaError(p, "holds NaN or infinite samples; re-export it from its source")
    return AVClip(audio=np.clip(data.T, -1, 1), sample_rate=rate, metadata=tags)
