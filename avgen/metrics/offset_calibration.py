"""Calibration of the A/V offset estimate: evidence -> P(the lag is within one frame of the truth).

A logistic model on the lag search's evidence (``FEATURES``; see :mod:`avgen.metrics.offset_lags`), fitted
per video curve on avgen-synth clips with known shifts. ``COEFFICIENTS`` and ``RULED_OUT`` were fitted by
(2-4 minutes on one CPU thread; it prints both, ready to paste)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/offset_calibration.py --clips 40 --before d08a518 --write

on the train split (40 clips per family: bounce, talk, keys, ambience; audio shifted by -300..+300 ms in
100-ms steps) and checked on the val split; the numbers are in benchmarks/results/offset_calibration.md.
They hold for the method constants in offset_lags.py and offset.py (grid 200 Hz, 8x8 flow cells, audio
offset weight 0.5) and for clips like those: short (1.5-2.5 s), 24 fps, one scene. On other material the
probability ranks estimates but its level is an extrapolation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FEATURES = ("peak", "margin", "null_z", "support", "sharpness")

#: Intercept then one weight per feature, per video curve (the argument ``calibration`` of estimate_offset).
COEFFICIENTS: dict[str, tuple[float, ...]] = {
    "motion_change": (-3.5273, 1.2205, 1.2961, 0.2035, 2.5579, 3.2749),
    "motion_onset": (-2.4235, 5.5667, -0.4587, -0.0198, -0.6465, -0.2177),
}


#: The probability given to a lag withheld by a rule (the best lag at the edge of the search, or a rival lag
#: fitting as well per overlapping second): the share of such lags that were right on the train split.
RULED_OUT: dict[str, float] = {"motion_change": 0.26, "motion_onset": 0.29}


def probability(kind: str, evidence: Sequence[float]) -> float:
    """Calibrated probability in [0, 1] that the estimated lag is within one frame of the true lag.

    Args:
        kind: the video curve, a key of ``COEFFICIENTS``.
        evidence: the values named by ``FEATURES``, in that order.
    """
    b = COEFFICIENTS[kind]
    x = b[0] + sum(w * e for w, e in zip(b[1:], evidence, strict=True))
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
