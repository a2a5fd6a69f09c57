"""AVClip: the one in-memory layout of audio + video that every part of avgen passes around."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from avgen.checks import as_fps, check_audio, check_sample_rate, check_video
from avgen.errors import ClipError
from avgen.writer import write_av


@dataclasses.dataclass(frozen=True, eq=False)
class AVClip:
    """Audio and video of one clip, validated on construction.

    video: uint8 (T, H, W, 3) RGB frames, or None for audio only.
    fps: exact frame rate as a Fraction (required with video).
    audio: float32 (C, N) in [-1, 1], C in {1, 2}; sample 0 plays with frame 0. None for video only.
    sample_rate: int Hz (required with audio).
    metadata: str -> str tags (generator, model, prompt, seed, ...).
    """

    video: np.ndarray | None = None
    fps: Fraction | None = None
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.video is None and self.audio is None:
            raise ClipError("AVClip needs video, audio or both; got neither")
        if self.video is not None:
            object.__setattr__(self, "video", check_video(self.video))
            object.__setattr__(self, "fps", as_fps(self.fps))
        elif self.fps is not None:
            object.__setattr__(self, "fps", as_fps(self.fps))
        if self.audio is not None:
            object.__setattr__(self, "audio", check_audio(self.audio))
            object.__setattr__(self, "sample_rate", check_sample_rate(self.sample_rate))
        elif self.sample_rate is not None:
            object.__setattr__(self, "sample_rate", check_sample_rate(self.sample_rate))
        if not isinstance(self.metadata, Mapping):
            raise ClipError(f"metadata must be a mapping of str to str, got {type(self.metadata).__name__}")
        object.__setattr__(self, "metadata", {str(k): str(v) for k, v in self.metadata.items()})

    @property
    def num_frames(self) -> int:
        return 0 if self.video is None else int(self.video.shape[0])

    @property
    def height(self) -> int:
        return 0 if self.video is None else int(self.video.shape[1])

    @property
    def width(self) -> int:
        return 0 if self.video is None else int(self.video.shape[2])

    @property
    def num_samples(self) -> int:
        return 0 if self.audio is None else int(self.audio.shape[1])

    @property
    def channels(self) -> int:
        return 0 if self.audio is None else int(self.audio.shape[0])

    @property
    def video_duration(self) -> float:
        return 0.0 if self.video is None else float(self.num_frames / self.fps)

    @property
    def audio_duration(self) -> float:
        return 0.0 if self.audio is None else self.num_samples / self.sample_rate

    @property
    def duration(self) -> float:
        """Seconds: the longer of the two streams."""
        return max(self.video_duration, self.audio_duration)

    def save(self, path: Any, **kwargs: Any) -> Any:
        """Write this clip with :func:`avgen.io.write_av` (same keyword arguments); returns the path."""
        return write_av(path, self, **kwargs)

    def replace(self, **changes: Any) -> AVClip:
        """A copy with fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        parts = []
        if self.video is not None:
            parts.append(f"video={self.num_frames}x{self.height}x{self.width} @ {self.fps} fps")
        if self.audio is not None:
            parts.append(f"audio={self.channels}ch x {self.num_samples} @ {self.sample_rate} Hz")
        return f"AVClip({', '.join(parts)}, {self.duration:.3f} s)"
