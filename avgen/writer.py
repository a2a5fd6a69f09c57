"""Streaming, atomic audio-video writer (PyAV): H.264 + AAC in MP4, FFV1 + FLAC in MKV, WAV/FLAC audio.

Timing is exact by construction: the video stream's time base is 1/fps (an exact Fraction), the MP4 movie
timescale is the audio sample rate, so the container's own durations (what every player reads) carry the
exact sample count, and AAC priming is recorded in the edit list.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avgen import __version__
from avgen.atomic import part_path
from avgen.checks import as_fps, check_audio, check_sample_rate, check_video
from avgen.errors import ClipError, MediaError

# Rates an AAC stream can carry. Other rates are stored at the next higher one (see _StoredRate).
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
AUDIO_SUFFIXES = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}
# Container tags that describe avgen's own storage layout; read_av consumes them.
LAYOUT_TAGS = ("avgen_width", "avgen_height", "avgen_sample_rate")
_TAIL = 2048  # audio samples held back so the stored length can be fixed exactly at close


def provenance(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags every avgen file carries: the generator plus the caller's (model, prompt, seed, ...)."""
    tags = {"generator": f"avgen {__version__}"}
    for key, value in (metadata or {}).items():
        if value is not None:
            tags[str(key).lower()] = str(value)
    if "prompt" in tags and "title" not in tags:
        tags["title"] = tags["prompt"]
    return tags


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:  # never made (a read-only folder answers EROFS, not ENOENT): nothing to remove
        pass


class AVWriter:
    """Write a clip in chunks, so a long clip is never all in memory.

    Give ``fps`` (and ``width``/``height``) to write video, ``sample_rate`` (and ``channels``) to write
    audio. The file appears at ``path`` complete on ``close()`` (temp file + rename) or not at all: an
    exception inside ``with AVWriter(...)`` removes the temp file. An existing file is kept unless
    ``overwrite=True``.

    Example::

        with AVWriter("out.mp4", fps=24, width=64, height=64, sample_rate=16000) as w:
            w.write_video(frames)      # uint8 (T, H, W, 3), any number of calls
            w.write_audio(samples)     # float32 (C, N) in [-1, 1], any number of calls
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fps: Any = None,
        width: int | None = None,
        height: int | None = None,
        sample_rate: int | None = None,
        channels: int = 1,
        crf: int = 18,
        preset: str = "medium",
        lossless: bool = False,
        audio_bitrate: int | None = None,
        overwrite: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES and suffix not in AUDIO_SUFFIXES:
            known = ", ".join([*VIDEO_SUFFIXES, *AUDIO_SUFFIXES])
            raise MediaError(self.path, f"unknown extension {suffix or '(none)'!r}; avgen writes {known}")
        try:
            exists = self.path.exists()
        except OSError as e:  # e.g. a name longer than the file system takes
            raise MediaError(self.path, f"cannot be written ({e.strerror})") from None
        if exists and not overwrite:
            raise MediaError(self.path, "file exists; pass overwrite=True (CLI: --overwrite) to replace it")
        if not self.path.parent.is_dir():
            raise MediaError(self.path, f"folder {self.path.parent} does not exist")
        if lossless and suffix != ".mkv" and suffix not in AUDIO_SUFFIXES:
            raise MediaError(self.path, "lossless=True writes FFV1 + FLAC, which needs a .mkv path")
        if not (isinstance(crf, int) and 0 <= crf <= 51):
            raise ClipError(f"crf must be an int in [0, 51] (lower is better quality), got {crf!r}")
        self.has_video = fps is not None
        self.has_audio = sample_rate is not None
        if not (self.has_video or self.has_audio):
            raise ClipError("AVWriter needs fps (video), sample_rate (audio) or both")
        if suffix in AUDIO_SUFFIXES and self.has_video:
            raise MediaError(self.path, f"{suffix} holds audio only; write video to .mp4 or .mkv")
        self.fps = as_fps(fps) if self.has_video else None
        if self.has_video:
            for name, value in (("width", width), ("height", height)):
                if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                    raise ClipError(f"{name} must be a positive int when writing video, got {value!r}")
        self.width, self.height = (int(width), int(height)) if self.has_video else (0, 0)
        self.sample_rate = check_sample_rate(sample_rate) if self.has_audio else None
        if self.has_audio and channels not in (1, 2):
            raise ClipError(f"channels must be 1 (mono) or 2 (stereo), got {channels!r}")
        self.channels = channels if self.has_audio else 0
        self._overwrite = overwrite
        self.frames_written = 0
        self.samples_written = 0
        self._tags = provenance(metadata)
        self._part = part_path(self.path)
        self._closed = False
        self._finalizer = weakref.finalize(self, _remove, self._part)
        try:
            if suffix in AUDIO_SUFFIXES:
                self._open_soundfile(*AUDIO_SUFFIXES[suffix])
            else:
                self._open_container(VIDEO_SUFFIXES[suffix], lossless, crf, preset, audio_bitrate)
        except Exception:
            self._finalizer()
            raise

    # -- set-up -------------------------------------------------------------------------------------------
    def _open_soundfile(self, fmt: str, subtype: str) -> None:
        import json

        import soundfile as sf

        self._container = None
        try:
            self._sf = sf.SoundFile(
                self._part,
                "w",
                samplerate=self.sample_rate,
                channels=self.channels,
                format=fmt,
                subtype=subtype,
            )
        except (RuntimeError, OSError) as e:  # soundfile's LibsndfileError is a RuntimeError
            raise MediaError(self.path, f"cannot create file: {e}") from e
        self._sf.software = self._tags["generator"]
        self._sf.comment = json.dumps(self._tags, ensure_ascii=True)[:2000]
        if "title" in self._tags:
            self._sf.title = self._tags["title"][:500]

    def _open_container(self, fmt: str, lossless: bool, crf: int, preset: str, bitrate: int | None) -> None:
        import av

        self._sf = None
        tags = dict(self._tags)
        options: dict[str, str] = {}
        mp4 = fmt in ("mp4", "mov")
        store_rate = self.sample_rate
        if self.has_audio and mp4:
            store_rate = next(r for r in AAC_RATES if r >= self.sample_rate)
            if store_rate != self.sample_rate:
                tags["avgen_sample_rate"] = str(self.sample_rate)
        if mp4:
            # use_metadata_tags: keep our tags as given; movie_timescale: sample-exact durations.
            options["movflags"] = "+faststart+use_metadata_tags"
            options["movie_timescale"] = str(store_rate or 90000)
        self._store_rate = store_rate
        pad_w, pad_h = self.width, self.height
        if self.has_video and not lossless:  # yuv420p needs even sizes: pad by edge replication
            pad_w, pad_h = self.width + self.width % 2, self.height + self.height % 2
            if (pad_w, pad_h) != (self.width, self.height):
                tags["avgen_width"], tags["avgen_height"] = str(self.width), str(self.height)
        self._pad = (pad_h - self.height, pad_w - self.width)
        try:
            self._container = av.open(str(self._part), "w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(self.path, f"cannot create file: {e}") from e
        for key, value in tags.items():
            self._container.metadata[key] = value
        self._vstream = self._astream = None
        if self.has_video:
            codec = "ffv1" if lossless else "libx264"
            v = self._container.add_stream(codec, rate=self.fps)
            v.width, v.height = pad_w, pad_h
            v.time_base = Fraction(1, 1) / self.fps
            if lossless:
                v.pix_fmt = "bgr0"  # packed RGB: bit-exact frames
                v.options = {"level": "3", "slicecrc": "1"}
            else:
                v.pix_fmt = "yuv420p"
                v.options = {"crf": str(crf), "preset": preset}
            self._vstream = v
        if self.has_audio:
            layout = "mono" if self.channels == 1 else "stereo"
            codec = "aac" if mp4 else "flac"
            a = self._container.add_stream(codec, rate=store_rate, layout=layout)
            if codec == "aac":
                a.bit_rate = bitrate or 96_000 * self.channels
            self._astream = a
            self._resampler = None
            if store_rate != self.sample_rate:
                self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=store_rate)
            self._tail = np.zeros((self.channels, 0), np.float32)  # resampled, not yet encoded
            self._stored = 0  # samples at store_rate handed to the encoder

    # -- writing ------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise MediaError(self.path, "writer is closed")

    def write_video(self, frames: Any) -> None:
        """Append frames: uint8 (T, H, W, 3) RGB, or one (H, W, 3) frame."""
        self._check_open()
        if not self.has_video:
            raise ClipError(f"{self.path}: this writer has no video stream (give fps= when opening it)")
        if getattr(frames, "ndim", 0) == 3:
            frames = frames[None]
        frames = check_video(frames, name="frames")
        if frames.shape[1:3] != (self.height, self.width):
            raise ClipError(
                f"frames are {frames.shape[2]}x{frames.shape[1]} (WxH) but the writer was opened for "
                f"{self.width}x{self.height}"
            )
        import av

        if any(self._pad):
            frames = np.pad(frames, ((0, 0), (0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        rgb_ffv1 = self._vstream.pix_fmt == "bgr0"
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if rgb_ffv1:  # rgb24 -> bgr0 is a lossless reordering
                vf = vf.reformat(format="bgr0")
            vf.pts = self.frames_written
            self._mux(self._vstream.encode(vf))
            self.frames_written += 1

    def write_audio(self, samples: Any) -> None:
        """Append audio: float32 (C, N) in [-1, 1] with C = the writer's channels."""
        self._check_open()
        if not self.has_audio:
            raise ClipError(
                f"{self.path}: this writer has no audio stream (give sample_rate= when opening it)"
            )
        samples = check_audio(samples, name="audio")
        if samples.shape[0] != self.channels:
            raise ClipError(
                f"audio has {samples.shape[0]} channels, the writer was opened with {self.channels}"
            )
        self.samples_written += samples.shape[1]
        if self._sf is not None:
            try:
                self._sf.write(samples.T)
            except (RuntimeError, OSError) as e:
                raise MediaError(self.path, f"writing failed: {e}") from e
            return
        if self._resampler is not None:
            samples = self._resample(samples)
        self._tail = np.concatenate([self._tail, samples], axis=1)
        if self._tail.shape[1] > _TAIL:
            self._encode_audio(self._tail[:, :-_TAIL])
            self._tail = self._tail[:, -_TAIL:]

    def _resample(self, samples: np.ndarray | None) -> np.ndarray:
        import av

        if samples is None:
            out = self._resampler.resample(None)
        else:
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self._astream.layout.name)
            af.sample_rate = self.sample_rate
            out = self._resampler.resample(af)
        if not out:
            return np.zeros((self.channels, 0), np.float32)
        return np.concatenate([f.to_ndarray() for f in out], axis=1).astype(np.float32)

    def _encode_audio(self, samples: np.ndarray | None) -> None:
        import av

        if samples is None:
            self._mux(self._astream.encode(None))
            return
        if samples.shape[1] == 0:
            return
        af = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=self._astream.layout.name
        )
        af.sample_rate = self._store_rate
        af.pts = self._stored
        self._stored += samples.shape[1]
        self._mux(self._astream.encode(af))

    def _mux(self, packets: Any) -> None:
        import av

        try:
            for packet in packets:
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as e:  # full disk, read-only folder, file system errors
            raise MediaError(self.path, f"writing failed: {e}") from e

    # -- finishing ----------------------------------------------------------------------------------------
    def close(self) -> Path:
        """Flush encoders, finish the file and move it into place. Returns the final path."""
        if self._closed:
            return self.path
        try:
            if self._sf is not None:
                self._sf.close()
            else:
                if self.has_audio:
                    tail = self._tail
                    if self._resampler is not None:
                        tail = np.concatenate([tail, self._resample(None)], axis=1)
                        # Store exactly ceil(N * s / r) samples, so floor(M * r / s) == N on reading.
                        want = -(-self.samples_written * self._store_rate // self.sample_rate)
                        have = self._stored + tail.shape[1]
                        tail = tail[:, : tail.shape[1] - max(0, have - want)]
                        tail = np.pad(tail, ((0, 0), (0, max(0, want - have))))
                    self._encode_audio(tail)
                    self._encode_audio(None)
                if self.has_video:
                    self._mux(self._vstream.encode(None))
                self._container.close()
        except Exception as e:
            self.abort()
            raise MediaError(self.path, f"writing failed: {e}") from e
        self._closed = True
        if self.path.exists() and not self._overwrite:
            self._finalizer()
            raise MediaError(self.path, "file appeared while writing; pass overwrite=True to replace it")
        try:
            os.replace(self._part, self.path)
        except OSError as e:
            self._finalizer()
            raise MediaError(self.path, f"cannot move the finished file into place ({e.strerror})") from e
        self._finalizer.detach()
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the temp file; nothing appears at ``path``."""
        self._closed = True
        try:
            if self._sf is not None:
                self._sf.close()
            elif self._container is not None:
                self._container.close()
        except Exception:  # already failing; the temp file goes either way
            pass
        self._finalizer()

    def __enter__(self) -> AVWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_av(
    path: str | os.PathLike,
    clip: Any,
    *,
    crf: int = 18,
    preset: str = "medium",
    lossless: bool = False,
    overwrite: bool = False,
    metadata: Mapping[str, Any] | None = None,
    chunk_frames: int = 64,
) -> Path:
    """Write ``clip`` (an :class:`avgen.clip.AVClip`) to ``path`` atomically; the format follows the extension.

    .mp4/.m4v/.mov: H.264 (yuv420p, ``crf``) + AAC. .mkv: H.264 + FLAC, or FFV1 (RGB) + FLAC with
    ``lossless=True`` (bit-exact). .wav (float32) / .flac (24-bit): audio only. ``metadata`` adds tags to the
    clip's own (model, prompt, seed, ...). Returns the path written.

    Only the clip's fields are read (``AVClip.save`` calls this, so the clip type lives a layer above);
    the writer checks every frame and sample it is given.
    """
    try:
        video, fps, audio, sample_rate = clip.video, clip.fps, clip.audio, clip.sample_rate
        tags = {**clip.metadata, **(metadata or {})}
    except (AttributeError, TypeError):
        raise ClipError(
            f"write_av needs an AVClip, got {type(clip).__name__}; build one with AVClip(...)"
        ) from None
    tags.pop("generator", None)  # always this writer's own
    num_frames = 0 if video is None else len(video)
    num_samples = 0 if audio is None else audio.shape[1]
    writer = AVWriter(
        path,
        fps=fps if video is not None else None,
        width=video.shape[2] if video is not None else None,
        height=video.shape[1] if video is not None else None,
        sample_rate=sample_rate if audio is not None else None,
        channels=audio.shape[0] if audio is not None else 1,
        crf=crf,
        preset=preset,
        lossless=lossless,
        overwrite=overwrite,
        metadata=tags,
    )
    with writer:
        # Interleave in chunks (about 64 frames), as a streaming producer would.
        done = 0  # audio samples written so far
        for i in range(0, num_frames, chunk_frames):
            writer.write_video(video[i : i + chunk_frames])
            if audio is not None:
                until = min(num_samples, int((i + chunk_frames) / fps * sample_rate))
                if until > done:
                    writer.write_audio(audio[:, done:until])
                    done = until
        step = 65536
        for start in range(done, num_samples, step):
            writer.write_audio(audio[:, start : start + step])
    return writer.path
