"""Streaming a long clip: its windows' pieces as they are decoded, and a writer that takes them as they come.

``stream`` runs the pipeline call in a worker thread with a ``Windowing`` whose ``on_piece`` hands each
piece over a queue of one (as ``transformers.TextIteratorStreamer`` does for text), so the pieces are the
windowed call's own, bit for bit, and the first comes out after one window's compute while the next
window is being generated. Nothing of the clip is kept but the window in flight.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from avgen.clip import AVClip
from avgen.diffusion.windows import Windowing
from avgen.errors import ClipError, ConfigError
from avgen.writer import AVWriter

PIECE_KEYS = ("window", "start_frame")  # per-piece metadata, not the clip's


class _Closed(Exception):
    """The consumer stopped reading: the worker stops at its next piece."""


def stream(
    pipe: Any,
    prompt: str,
    *,
    window: float | Windowing | None = None,
    overlap: float = 0.25,
    caption: str | None = None,
    **call: Any,
) -> Iterator[AVClip]:
    """Generate one clip for ``prompt`` window by window, yielding each window's new part (an AVClip of
    whole frames and the sound that spans them) as soon as it is decoded; their concatenation is
    ``pipe(prompt, window=window, overlap=overlap, **call)`` bit for bit.

    ``window``: seconds (None: the model's trained duration, ``pipe.config.duration``) or a ``Windowing``
    (its ``on_piece`` is replaced); ``call``: any other argument of the pipeline call (``seconds``, ``seed``,
    sampling settings, ...). Pieces carry the clip's metadata (model, prompt, ``caption``: the text the model
    reads, the prompt when None, seed) plus ``window`` (its index) and ``start_frame``. Errors of the call
    come out of the first ``next``; closing the generator early stops the worker after the window it is on.
    """
    if not isinstance(prompt, str):
        raise ConfigError(f"stream makes one clip: prompt must be a string, got {prompt!r}")
    if call.get("num_videos_per_prompt", 1) != 1:
        raise ConfigError("stream makes one clip: num_videos_per_prompt must be 1")
    generator = call.get("generator")
    seed = generator.initial_seed() if isinstance(generator, torch.Generator) else call.get("seed", 0)
    meta = {
        "model": pipe.config.name,
        "prompt": prompt,
        "caption": prompt if caption is None else caption,
        "seed": str(seed),
        "task": "t2av",
    }
    if not isinstance(window, Windowing):
        window = Windowing(pipe.config.duration if window is None else window, overlap)
    return _pieces(pipe, prompt, window, meta, call)


def _pieces(
    pipe: Any, prompt: str, windowing: Windowing, meta: dict[str, str], call: dict[str, Any]
) -> Iterator[AVClip]:
    """``stream``'s generator: the call in a worker thread, its pieces through a queue of one."""
    pieces: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    threads = torch.get_num_threads()

    def put(item: tuple[str, Any]) -> None:
        while not stop.is_set():
            try:
                pieces.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
        raise _Closed

    def work() -> None:
        # A new thread starts at the OpenMP default thread count; the caller's count keeps the caller's bits.
        torch.set_num_threads(threads)

        def on_piece(row: int, piece: AVClip) -> None:
            put(("piece", piece.replace(metadata={**meta, **piece.metadata})))

        try:
            pipe(prompt, window=dataclasses.replace(windowing, on_piece=on_piece), **call)
            put(("done", None))
        except _Closed:
            pass
        except BaseException as e:  # handed to the consumer, raised there
            try:
                put(("error", e))
            except _Closed:
                pass

    worker = threading.Thread(target=work, name="avgen-stream", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = pieces.get()
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value
    finally:
        stop.set()
        worker.join()


def write_stream(pieces: Iterable[AVClip], path: str | os.PathLike, **options: Any) -> Path:
    """Write clips that continue one another (``stream``'s pieces) to ``path`` through ``AVWriter``, each
    as it comes, so a long clip is never whole in memory; the file appears complete at the end or not at
    all. ``options``: AVWriter's (``crf``, ``preset``, ``lossless``, ``overwrite``, ``metadata``); the first
    piece sets fps, size, sample rate and channels, and its metadata (less the per-piece keys) tags the
    file. Returns the path written."""
    writer = None
    try:
        for piece in pieces:
            if writer is None:
                tags = {k: v for k, v in piece.metadata.items() if k not in PIECE_KEYS}
                writer = AVWriter(
                    path,
                    fps=piece.fps,
                    width=piece.width,
                    height=piece.height,
                    sample_rate=piece.sample_rate,
                    channels=piece.channels,
                    metadata={**tags, **options.pop("metadata", {})},
                    **options,
                )
            writer.write_video(piece.video)
            writer.write_audio(piece.audio)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if hasattr(pieces, "close"):  # a generator stops its worker now, not at garbage collection
            pieces.close()
    if writer is None:
        raise ClipError(f"{path}: write_stream got no pieces to write")
    return writer.close()
