"""A gate onset detector for clips with silence between sounds (bounce, keys, speech after a pause).

An onset is the first sample above ``quiet`` after at least ``silence_ms`` of samples all below ``quiet``,
provided the sound then reaches ``loud`` within 20 ms. It is exact to a sample on synthetic audio and
is what the tests use to check that listed events agree with the audio.
"""

from __future__ import annotations

import numpy as np

from avgen.errors import ClipError


def gate_onsets(
    audio: np.ndarray, sample_rate: int, *, silence_ms: float = 10.0, quiet: float = 0.003, loud: float = 0.01
) -> np.ndarray:
    """int64 (K,) sample indices of onsets in mono float ``audio`` (N,) in [-1, 1].

    The clip start counts as silence, so a sound at sample 0 is no onset (it is not preceded by silence).
    """
    x = np.asarray(audio)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ClipError(f"gate_onsets needs mono float audio of shape (N,), got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise ClipError("gate_onsets: audio contains NaN/inf")
    above = np.abs(x) > quiet
    idx = np.flatnonzero(above)
    if len(idx) == 0:
        return np.zeros(0, dtype=np.int64)
    gap = int(silence_ms * sample_rate / 1000)
    prev = np.concatenate([[-(10**9)], idx[:-1]])
    starts = idx[(idx - prev) > gap]
    starts = starts[starts >= gap]  # need a full silent window before it
    window = int(0.02 * sample_rate)
    keep = [s for s in starts if np.abs(x[s : s + window]).max() >= loud]
    return np.asarray(keep, dtype=np.int64)
