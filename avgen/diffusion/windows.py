"""Long clips in overlapping windows: cost linear in duration, memory of one window.

A clip longer than ``window`` seconds is made as a run of windows of about that length. The first is plain
text-to-audio-video; each next one is the "continue" task on a short clip of its own: the last ``overlap``
seconds of the previous window, encoded by both codecs as the continuation task encodes a given clip, are
held clean (every token wholly inside them) while the rest is generated. Positions restart at 0 in every
window (RoPE is relative in time, so a window at 40 s is the same problem as one at 0 s, inside the
trained range), and each window is decoded alone. Over the shared part the output crossfades from the
previous window's decode to the new window's, so neither picture nor sound jumps where the codecs'
reconstructions differ.

Windows start on a multiple of the video codec's temporal downsampling at a whole audio sample
(``WindowPlan.grid``), so a window's latent times shifted by its start are the times of the frames and
samples they stand for, exactly: every event keeps its second. Where the overlap allows, starts also fall
on the audio codec's latent grid, and then a window's latents sit exactly on the whole clip's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avgen.clip import AVClip
from avgen.errors import ConfigError
from avgen.geometry import ClipGeometry
from avgen.model.phonemes import PAD, Phonemes
from avgen.model.text import TextStates
from avgen.tokens import TokenSpec, make_layout, positions

# (row of the batch, that clip's next piece) -> None
OnPiece = Callable[[int, AVClip], None]


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """Where the windows of a clip of ``num_frames`` frames lie (all counts in frames at the clip's fps).

    Window k covers ``span(k)``: ``size`` frames from ``starts[k]`` (the last one is cut at the clip's
    end). It shares its first ``overlap`` frames with window k - 1, of which the first ``held`` are its
    given prefix (all of them by default). It adds ``piece(k)`` to the output: from its start to the next
    window's start. ``step = size - overlap`` is a multiple of ``grid``; the output crossfades over the
    first ``fade = min(overlap, step)`` frames of each piece after the first.
    """

    num_frames: int
    size: int
    overlap: int
    grid: int
    starts: tuple[int, ...]
    held: int

    @property
    def step(self) -> int:
        return self.size - self.overlap

    @property
    def fade(self) -> int:
        return min(self.overlap, self.step)

    def __len__(self) -> int:
        return len(self.starts)

    def span(self, k: int) -> tuple[int, int]:
        """(first, end) frame of window k."""
        return self.starts[k], min(self.starts[k] + self.size, self.num_frames)

    def piece(self, k: int) -> tuple[int, int]:
        """(first, end) frame of what window k adds to the output."""
        end = self.starts[k + 1] if k + 1 < len(self.starts) else self.num_frames
        return self.starts[k], end


def _seconds(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def plan_windows(
    geom: ClipGeometry, spec: TokenSpec, window: float, overlap: float, hold: float | None = None
) -> WindowPlan:
    """The windows for a clip of ``geom``: about ``window`` seconds each, sharing at least ``overlap``,
    the first ``hold`` seconds of it (None: all) held clean.

    The window is rounded up to end on a latent frame. The step between starts is rounded down to
    ``grid`` frames: a multiple of the video codec's temporal downsampling that starts on a whole audio
    sample, and on the audio codec's latent grid too where that needs no longer overlap (at 24 fps and
    16 kHz / hop 320: 3 frames, or 12 = 0.5 s); where even whole samples need too long a step (30000/1001
    fps), the video codec's alone, audio then starting on the nearest sample. So the overlap can come out
    a little longer than asked. ConfigError, naming the values, when the window is
    shorter than one latent frame, the overlap is not shorter than the window, or the overlap (the held
    part) holds no whole video or audio token.
    """
    window, overlap = _seconds("window", window), _seconds("overlap", overlap)
    hold = None if hold is None else _seconds("hold", hold)
    if overlap >= window:
        raise ConfigError(f"overlap={overlap} s must be shorter than window={window} s")
    ts, fps = geom.temporal_downsample, geom.fps
    if window * fps < ts:
        raise ConfigError(
            f"window={window} s is shorter than one latent frame ({ts} frames at {fps} fps = "
            f"{float(ts / fps):.4g} s)"
        )
    size = 1 + ts * math.ceil((max(1, round(window * fps)) - 1) / ts)
    room = size - max(1, round(overlap * fps))  # frames a window may add
    sample_grid = math.lcm(ts, (geom.sample_rate / fps).denominator)  # starts on whole samples
    latent_grid = math.lcm(sample_grid, (Fraction(geom.sample_rate, geom.hop_length) / fps).denominator)
    if room >= latent_grid and room // latent_grid * latent_grid == room // sample_grid * sample_grid:
        grid = latent_grid  # on the audio latent grid too, at no extra overlap
    else:
        grid = sample_grid if room >= sample_grid else ts  # ts: audio starts on the nearest sample
    step = room // grid * grid
    if step < 1:
        raise ConfigError(
            f"window={window} s with overlap={overlap} s leaves {room} new frames per window; windows start "
            f"on a grid of {grid} frames ({float(grid / fps):.4g} s): lengthen window or shorten overlap"
        )
    shared = size - step
    held = shared if hold is None else min(shared, max(1, round(hold * fps)))
    first_token = 1 + ts * (spec.video_patch[0] - 1)  # frames under the first video token
    held_samples = round(held / fps * geom.sample_rate)
    if held < first_token or held_samples < geom.hop_length * spec.audio_patch:
        name, value = ("overlap", overlap) if hold is None else ("hold", hold)
        raise ConfigError(
            f"{name}={value} s ({held} frames, {held_samples} samples) holds no whole token of the "
            f"model (video tokens span {first_token} frames, audio tokens "
            f"{geom.hop_length * spec.audio_patch} samples): lengthen {name}"
        )
    starts = [0]
    while starts[-1] + size < geom.num_frames:
        starts.append(starts[-1] + step)
    return WindowPlan(geom.num_frames, size, shared, grid, tuple(starts), held)


def given_threshold(
    geom: ClipGeometry, spec: TokenSpec, frames: int, samples: int, exact: bool = True
) -> float:
    """The ``seconds`` of the "continue" task (tokens whose time is below it are given) that holds clean
    exactly the tokens of a window of ``geom`` whose latents lie wholly within its first ``frames`` frames
    and ``samples`` samples. A token that straddles the end of the given part is generated: given, it
    would hold the codec's view of the padding after that end (silence, a frozen frame) clean.

    Where no single time separates those tokens (video and audio tokens interleave in time) ``exact``
    raises ConfigError; ``exact=False`` returns the earliest time of a token not wholly given, so a few
    wholly given tokens after it are generated too and no straddling one is held."""
    video_shape = (spec.video_channels, *geom.video_latent_shape)
    layout = make_layout(spec, video_shape, (spec.audio_channels, geom.audio_latent_length))
    times = positions(layout, geom.video_times(), geom.audio_times())[:, 0]  # (L,) seconds
    (pt, *_), pa = spec.video_patch, spec.audio_patch
    grid_t, grid_h, grid_w = layout.video_grid
    last_v = torch.clamp(pt * (torch.arange(grid_t) + 1), max=layout.video_shape[1]) - 1  # latent index
    last_a = torch.clamp(pa * (torch.arange(layout.audio_groups) + 1), max=layout.audio_shape[1]) - 1
    inside = torch.cat(
        [
            (geom.temporal_downsample * last_v < frames).repeat_interleave(grid_h * grid_w),
            geom.hop_length * (last_a + 1) <= samples,
        ]
    )
    if inside.all():
        return float(times.max()) + 1.0
    high = times[~inside].min()
    low = times[inside].max() if inside.any() else high - 1.0
    if exact and not low < high:
        raise ConfigError(
            f"no single time separates the given tokens of this window ({frames} frames, {samples} samples "
            "given): its video and audio tokens interleave in time; change overlap"
        )
    return float(high)


def shifted_speech(text: TextStates, start: float, length: float) -> TextStates:
    """``text`` with its phonemes' times moved to a window starting at ``start`` seconds, and those outside
    ``[0, length)`` dropped (the model was trained on timelines inside its clip)."""
    p = text.phonemes
    if p is None:
        return text
    begin, end = p.start - start, p.end - start
    keep = p.mask & (end > 0) & (begin < length)
    return text.with_phonemes(Phonemes(torch.where(keep, p.ids, PAD), p.stress, begin, end))


@dataclasses.dataclass(frozen=True)
class Windowing:
    """How ``AVPipeline.__call__`` splits a clip: ``window`` and ``overlap`` seconds (see ``plan_windows``).

    ``on_piece(row, piece)``: called with each clip's next piece (an AVClip, metadata ``window`` and
    ``start_frame``) as soon as its window is decoded; with it the call keeps nothing and returns only the
    last pieces (``stream`` uses this). ``crossfade=False`` cuts from one window's decode to the next at the
    fade's end instead of crossfading. ``hold``: seconds of the shared part held clean (None: all of it;
    rounded to whole frames, then to whole tokens); the rest of it is generated again and crossfaded, which
    moves where the new window's generated part begins into the crossfade (``benchmarks/long_clips.py``
    measures the seams of each).
    """

    window: float
    overlap: float = 0.25
    on_piece: OnPiece | None = None
    crossfade: bool = True
    hold: float | None = None


def _ramp(n: int, crossfade: bool = True) -> np.ndarray:
    """(n,) float32 weights of the new window over a crossfade: (1 .. n) / (n + 1); zeros for a cut."""
    if not crossfade:
        return np.zeros(n, np.float32)
    return (np.arange(1, n + 1, dtype=np.float32) / (n + 1)).astype(np.float32)


def _cut(audio: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``audio[..., lo:hi]``, the last sample repeated where ``hi`` passes the end (off-grid rounding)."""
    out = audio[..., lo:hi]
    short = hi - lo - out.shape[-1]
    return np.concatenate([out, np.repeat(audio[..., -1:], short, axis=-1)], axis=-1) if short > 0 else out


class WindowedSampler:
    """Stands in for ``AVPipeline._sample`` (same arguments, same result) when a call asks for windows.

    ``pipe``: the pipeline (its ``_sample``, ``_encode_video``, ``_encode_audio`` and DiT token spec);
    ``window``: seconds, or a ``Windowing``. Each batch runs window by window; clip b draws every window's
    noise in turn from its own generator, so a call is reproducible and a clip that fits one window comes
    out exactly as without windows.
    """

    def __init__(
        self, pipe: Any, task: str, geom: ClipGeometry, window: float | Windowing, overlap: float
    ) -> None:
        if task != "t2av":
            raise ConfigError(
                f"window= generates text-to-audio-video; the {task!r} task (audio=, video=, extend=) runs "
                "over the whole clip: pass window=None"
            )
        self.windowing = window if isinstance(window, Windowing) else Windowing(window, overlap)
        w = self.windowing
        self.plan = plan_windows(geom, pipe.dit.config.tokens, w.window, w.overlap, w.hold)
        self.pipe, self.geom = pipe, geom

    @property
    def count(self) -> int:
        return len(self.plan)

    @property
    def metadata(self) -> dict[str, str]:
        """The window, overlap (and hold) the clip was made with, in seconds (as rounded to the grid)."""
        plan, fps = self.plan, self.geom.fps
        meta = {"window": f"{float(plan.size / fps):g}", "overlap": f"{float(plan.overlap / fps):g}"}
        if plan.held != plan.overlap:
            meta["hold"] = f"{float(plan.held / fps):g}"
        return meta

    def _sample_at(self, frame: int) -> int:
        """Global audio sample at global frame ``frame`` (``ClipGeometry.num_samples``'s rounding)."""
        return round(Fraction(frame) / self.geom.fps * self.geom.sample_rate)

    def _given(
        self, wgeom: ClipGeometry, frames: np.ndarray, audio: np.ndarray
    ) -> tuple[Tensor, Tensor, float]:
        """The previous window's shared part (uint8 (B, F, H, W, 3), float32 (B, C, S)) encoded as the
        continuation task encodes a given clip, zero-padded to the window's latents, and its threshold."""
        pipe, spec = self.pipe, self.pipe.dit.config.tokens
        short = dataclasses.replace(wgeom, num_frames=frames.shape[1])
        v_lat = torch.zeros(len(frames), spec.video_channels, *wgeom.video_latent_shape, device=pipe.device)
        a_lat = torch.zeros(len(frames), spec.audio_channels, wgeom.audio_latent_length, device=pipe.device)
        for b in range(len(frames)):
            clip = AVClip(video=frames[b], fps=wgeom.fps, audio=audio[b], sample_rate=wgeom.sample_rate)
            v = pipe._encode_video(clip, short, 1)  # causal codecs: these latents ignore the padding
            a = pipe._encode_audio(clip, short, 1)
            v_lat[b, :, : v.shape[2]], a_lat[b, :, : a.shape[2]] = v[0], a[0]
        return v_lat, a_lat, given_threshold(wgeom, spec, frames.shape[1], audio.shape[-1])

    def __call__(
        self,
        task: str,
        geom: ClipGeometry,
        settings: Any,
        cond: TextStates,
        uncond: TextStates,
        generators: list[torch.Generator],
        given: tuple[Tensor | None, Tensor | None],
        **options: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One batch, window by window: uint8 frames (B, T, H, W, 3) and float32 audio (B, C, N) of the
        whole clip (of the last pieces with an ``on_piece``)."""
        plan, on_piece = self.plan, self.windowing.on_piece
        options.pop("seconds", None)  # the given prefix of each window is this sampler's own
        batch, out_frames, out_audio = len(cond), None, None
        tail: tuple[np.ndarray, np.ndarray] | None = None  # the last window's decode of the shared part
        for k in range(len(plan)):
            start, stop = plan.span(k)
            wgeom = dataclasses.replace(geom, num_frames=stop - start)
            text = cond
            if len(plan) > 1:  # a clip in one window is the whole-clip call, bit for bit
                text = shifted_speech(cond, float(start / geom.fps), wgeom.duration)
            if tail is not None:  # the continuation task, from the last window's shared part
                held = self._sample_at(start + plan.held) - self._sample_at(start)
                v_lat, a_lat, seconds = self._given(wgeom, tail[0][:, : plan.held], tail[1][..., :held])
                task, given, options["seconds"] = "continue", (v_lat, a_lat), seconds
            frames, audio = self.pipe._sample(
                task, wgeom, settings, text, uncond, generators, given, **options
            )
            (piece_f, piece_a), tail = self._piece(k, frames, audio, tail)
            lo, hi = plan.piece(k)
            if on_piece is not None:
                meta = {"window": str(k), "start_frame": str(lo)}
                for b in range(batch):
                    on_piece(b, AVClip(piece_f[b], geom.fps, piece_a[b], geom.sample_rate, meta))
                out_frames, out_audio = piece_f, piece_a
                continue
            if out_frames is None:
                out_frames = np.empty((batch, geom.num_frames, *frames.shape[2:]), np.uint8)
                out_audio = np.empty((batch, audio.shape[1], geom.num_samples), np.float32)
            out_frames[:, lo:hi] = piece_f
            out_audio[..., self._sample_at(lo) : self._sample_at(hi)] = piece_a
        return out_frames, out_audio

    def _piece(
        self, k: int, frames: np.ndarray, audio: np.ndarray, tail: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
        """Window k's decode (frames (B, T, H, W, 3), audio (B, C, N)) -> what it adds to the clip,
        crossfaded from ``tail`` (the last window's decode of the shared part), and its own tail."""
        plan = self.plan
        start, stop = plan.span(k)
        lo, hi = plan.piece(k)
        first = self._sample_at(start)  # the clip's sample at this window's sample 0
        piece_f = frames[:, lo - start : hi - start].copy()
        piece_a = _cut(audio, self._sample_at(lo) - first, self._sample_at(hi) - first).copy()
        if tail is not None:
            n, fade = self._sample_at(lo + plan.fade) - self._sample_at(lo), self.windowing.crossfade
            w = _ramp(plan.fade, fade)[None, :, None, None, None]
            mixed = (1 - w) * tail[0][:, : plan.fade] + w * piece_f[:, : plan.fade]
            piece_f[:, : plan.fade] = np.rint(mixed).astype(np.uint8)
            wa = _ramp(n, fade)
            piece_a[..., :n] = (1 - wa) * tail[1][..., :n] + wa * piece_a[..., :n]
        if k + 1 == len(plan):
            return (piece_f, piece_a), None
        nxt = plan.starts[k + 1]
        shared = _cut(audio, self._sample_at(nxt) - first, self._sample_at(stop) - first)
        return (piece_f, piece_a), (frames[:, nxt - start :].copy(), shared.copy())
