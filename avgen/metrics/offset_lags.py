"""The lag search behind :func:`avgen.metrics.offset.estimate_offset`: pure numpy on two curves that share one
time grid, no media and no settings objects.

``lag_evidence`` scores every lag with the cross-covariance of the z-scored curves summed over their overlap
and divided by the full length (the "biased" estimator: a lag that leaves part of the clip unmatched scores
lower, so a few chance coincidences at a large lag cannot win as they can with a per-lag Pearson), then
measures how much to trust the best lag in three ways the calibration maps to a probability:

- ``margin``: the peak's lead over the best rival local maximum more than one frame away (periodic events);
- ``null_z``: the peak against the best scores of curves whose audio blocks were shuffled (chance level);
- ``support``: the share of block-bootstrap replicates whose best lag is within one frame of the peak
  (whether the whole clip agrees or one coincidence carries it);
- ``sharpness``: how far the score falls one frame either side of the peak (a broad peak, as smooth mouth
  motion gives, cannot place the lag within a frame);
- ``rival_fit``: the best rival's score per overlapping sample over the peak's. The biased score prefers
  small lags, so on a periodic train (a metronome) the true lag and one a period away tie per sample and
  only that preference picks one: near 1 the data cannot decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Fixed parts of the method: the calibration in offset_calibration.py holds for these values.
NULL_DRAWS = 32  # block-shuffled surrogates for null_z
NULL_BLOCK_FRAMES = 6  # shuffle the audio curve in blocks of this many frames (events stay whole)
BOOT_DRAWS = 100  # block-bootstrap replicates for support
BOOT_BLOCK_FRAMES = 4
SEED = 0  # the surrogates and replicates are drawn from a fixed seed: one clip, one answer


@dataclass(frozen=True)
class LagEvidence:
    """Best lag on the grid and the evidence for it (indices count grid samples from ``-max_shift``)."""

    scores: np.ndarray  # (2 * max_shift + 1,) score per lag
    best: int  # index of the highest score
    shift: float  # sub-sample position of the peak (parabola), same units as ``best``
    peak: float
    peak_z: float  # peak over the mean score of all lags, in standard deviations (uncalibrated)
    rival: int  # index of the best rival local maximum more than ``guard`` away, -1 if none
    margin: float
    null_z: float
    support: float
    sharpness: float
    tie: int  # index of the best rival per overlapping sample, -1 if none
    rival_fit: float  # its score per overlapping sample over the peak's (about 1: as good a fit)


def zscore(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the last axis; x must not be flat."""
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True))


def lag_scores(a: np.ndarray, v: np.ndarray, max_shift: int) -> np.ndarray:
    """score[..., k + max_shift] = sum_n a[..., n + k] * v[n] / N over the overlap, k in -max_shift..max_shift.

    Args:
        a: (..., N) z-scored audio curve(s); v: (N,) z-scored video curve.
    Returns:
        (..., 2 * max_shift + 1) float64 in [-1, 1].
    """
    n = a.shape[-1]
    nfft = 1 << (2 * n - 1).bit_length()
    full = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(v, nfft)), nfft)
    return full[..., np.arange(-max_shift, max_shift + 1) % nfft] / n


def _block_starts(n: int, block: int) -> np.ndarray:
    return np.arange(0, n, max(1, block))


def _null_z(
    a: np.ndarray, v: np.ndarray, max_shift: int, peak: float, block: int, rng: np.random.Generator
) -> float:
    """Peak over the best scores of ``NULL_DRAWS`` audio curves shuffled in blocks, in standard deviations."""
    pieces = np.split(a, _block_starts(len(a), block)[1:])
    order = [rng.permutation(len(pieces)) for _ in range(NULL_DRAWS)]
    surrogates = np.stack([np.concatenate([pieces[i] for i in o]) for o in order])  # (D, N)
    best = lag_scores(surrogates, v, max_shift).max(axis=-1)  # (D,)
    return float((peak - best.mean()) / max(float(best.std()), 1e-3))


def _support(
    a: np.ndarray, v: np.ndarray, max_shift: int, best: int, guard: int, block: int, rng: np.random.Generator
) -> float:
    """Share of block-bootstrap replicates (Dirichlet block weights) whose best lag is within ``guard``."""
    n = len(a)
    ks = np.arange(-max_shift, max_shift + 1)
    idx = np.arange(n)[None, :] + ks[:, None]  # (L, N): audio index paired with video sample n at lag k
    inside = (idx >= 0) & (idx < n)
    products = np.where(inside, a[np.clip(idx, 0, n - 1)] * v[None, :], 0.0)  # (L, N)
    starts = _block_starts(n, block)
    per_block = np.add.reduceat(products, starts, axis=1)  # (L, B)
    weights = rng.dirichlet(np.ones(len(starts)), size=BOOT_DRAWS)  # (R, B)
    winners = (weights @ per_block.T).argmax(axis=1)  # (R,)
    return float((np.abs(winners - best) <= guard).mean())


def _rival(curve: np.ndarray, best: int, guard: int) -> int:
    """Index of the highest local maximum more than ``guard`` samples from ``best``; -1 if there is none."""
    is_max = np.r_[False, (curve[1:-1] >= curve[:-2]) & (curve[1:-1] >= curve[2:]), False]
    is_max[max(0, best - guard) : best + guard + 1] = False
    return int(np.flatnonzero(is_max)[np.argmax(curve[is_max])]) if is_max.any() else -1


def lag_evidence(a: np.ndarray, v: np.ndarray, max_shift: int, frame: float) -> LagEvidence:
    """Search lags -max_shift..max_shift (grid samples) of audio ``a`` against video ``v``.

    Args:
        a, v: (N,) curves on one grid, neither flat.
        max_shift: largest lag in grid samples (< N).
        frame: one video frame in grid samples (sets the rival guard, the null and bootstrap blocks).
    """
    az, vz = zscore(a), zscore(v)
    scores = lag_scores(az, vz, max_shift)
    best = int(np.argmax(scores))
    shift = float(best)
    if 0 < best < len(scores) - 1:  # parabola through the peak and its neighbours
        y0, y1, y2 = scores[best - 1 : best + 2]
        curvature = y0 - 2 * y1 + y2
        if curvature < 0:
            shift += float(np.clip(0.5 * (y0 - y2) / curvature, -0.5, 0.5))
    peak = float(scores[best])
    spread = float(scores.std())
    peak_z = (peak - float(scores.mean())) / spread if spread > 0 else 0.0
    guard = math.ceil(frame)
    rival = _rival(scores, best, guard)
    margin = peak - float(scores[rival] if rival >= 0 else scores.min())
    # Per overlapping sample, a rival that lost only because it overlaps less (a periodic train) ties.
    per_sample = scores * len(a) / (len(a) - np.abs(np.arange(-max_shift, max_shift + 1)))
    tie = _rival(per_sample, best, guard)
    rival_fit = float(per_sample[tie] / per_sample[best]) if tie >= 0 and per_sample[best] > 0 else 0.0
    side = scores[[max(best - guard, 0), min(best + guard, len(scores) - 1)]]
    sharpness = peak - float(side.mean())
    rng = np.random.default_rng(SEED)
    null_z = _null_z(az, vz, max_shift, peak, round(NULL_BLOCK_FRAMES * frame), rng)
    support = _support(az, vz, max_shift, best, guard, round(BOOT_BLOCK_FRAMES * frame), rng)
    return LagEvidence(
        scores, best, shift, peak, peak_z, rival, margin, null_z, support, sharpness, tie, rival_fit
    )
