"""Reports of an evaluation: one JSON file for the run and one PNG per clip.

The PNG shows, on one time axis: a strip of frames, the waveform, a log spectrogram, and the detected events
(audio onsets, optical-flow peaks, matched pairs) over the flow-magnitude and onset-strength curves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from einops import rearrange

from avgen import atomic
from avgen.errors import MediaError
from avgen.metrics._deps import require
from avgen.metrics.offset_result import describe_offset


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON atomically; NaN becomes null and +-inf the strings "inf"/"-inf"."""
    return atomic.write_json(path, _json_safe(data), indent=2, allow_nan=False, mkdir_parents=True)


def frame_strip(video: np.ndarray, n: int = 8, height: int = 96) -> np.ndarray:
    """``n`` evenly spaced frames side by side, each scaled to ``height`` rows.

    Args:
        video: (T, H, W, 3) uint8.
    Returns:
        (height, n' * width', 3) uint8 with n' = min(n, T).
    """
    cv2 = require("cv2")
    idx = np.unique(np.linspace(0, len(video) - 1, min(n, len(video))).round().astype(int))
    width = max(1, round(video.shape[2] * height / video.shape[1]))
    frames = np.stack([cv2.resize(video[i], (width, height), interpolation=cv2.INTER_AREA) for i in idx])
    return rearrange(frames, "n h w c -> h (n w) c")


def plot_clip(
    path: str | Path,
    video: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    evaluation: Any,
    *,
    title: str = "",
) -> Path:
    """Write the per-clip PNG (Agg backend) atomically.

    Args:
        video: (T, H, W, 3) uint8; audio: (C, N) float32 at ``sample_rate``.
        evaluation: an :class:`avgen.metrics.evaluate.ClipEvaluation` of this clip.
    """
    require("matplotlib")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    duration = len(video) / fps
    mono = audio.mean(axis=0)
    t_audio = np.arange(len(mono)) / sample_rate
    fig, axes = plt.subplots(
        4, 1, figsize=(10, 8), gridspec_kw={"height_ratios": [1.3, 0.8, 1.2, 1.4]}, constrained_layout=True
    )
    strip = frame_strip(video)
    axes[0].imshow(strip, aspect="auto", extent=(0, duration, 0, 1))
    axes[0].set_yticks([])
    axes[0].set_title(title or "clip", loc="left", fontsize=10)

    axes[1].plot(t_audio, mono, lw=0.5, color="0.2")
    axes[1].set_ylim(-1, 1)
    axes[1].set_ylabel("wave")

    n_fft = 512 if len(mono) >= 512 else max(16, 1 << (len(mono).bit_length() - 1))
    hop = n_fft // 4
    pad = np.pad(mono, (0, max(0, n_fft - len(mono) % hop)))
    frames = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[::hop]  # (frames, n_fft)
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1))  # (frames, bins)
    db = 20 * np.log10(np.maximum(spec, 1e-6))
    axes[2].imshow(
        rearrange(db, "t f -> f t"),
        origin="lower",
        aspect="auto",
        extent=(0, len(frames) * hop / sample_rate, 0, sample_rate / 2000),
        vmin=db.max() - 80,
        vmax=db.max(),
        cmap="magma",
    )
    axes[2].set_ylabel("kHz")

    ax = axes[3]
    flow = np.asarray(evaluation.av_align.flow)
    env_v, env_t = evaluation.onset_envelope
    ax.plot(np.arange(len(flow)) / fps, flow / max(flow.max(), 1e-9), color="tab:blue", lw=1, label="flow")
    ax.plot(env_t, env_v / max(env_v.max(), 1e-9), color="tab:orange", lw=0.8, alpha=0.8, label="onset")
    a_peaks, v_peaks = evaluation.av_align.audio_peaks, evaluation.av_align.video_peaks
    ax.vlines(a_peaks, 0, 1, color="tab:orange", lw=1.5, label="audio peaks")
    ax.vlines(v_peaks, -0.15, 0.85, color="tab:blue", lw=1.5, ls="--", label="video peaks")
    for i, j in evaluation.av_align.matches:
        ax.plot([a_peaks[i], v_peaks[j]], [1.05, 1.05], color="tab:green", lw=3)
    off = describe_offset(evaluation.offset.to_dict())
    ax.set_title(
        f"AV-Align {evaluation.av_align.score:.3f} ({evaluation.av_align.variant}; chance "
        f"{evaluation.chance:.3f}, legacy {evaluation.av_align_legacy.score:.3f})   offset "
        f"{off}, + = audio late",
        loc="left",
        fontsize=9,
    )
    ax.set_ylim(-0.2, 1.15)
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    for a in axes:
        a.set_xlim(0, duration)

    return save_png(fig, path, dpi=80, what="the report image")


def save_png(fig: Any, path: str | Path, dpi: int, what: str) -> Path:
    """Write a matplotlib figure to ``path`` as PNG atomically and close it; MediaError naming ``what``."""
    import matplotlib.pyplot as plt

    try:
        # the temp name ends in .part, so the format is named, not guessed from the suffix
        with atomic.atomic_path(path, mkdir_parents=True) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
        return Path(path)
    except OSError as e:
        raise MediaError(path, f"cannot write {what}: {e}") from e
    finally:
        plt.close(fig)
