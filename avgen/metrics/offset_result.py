"""The result of an A/V offset estimate and how it is shown: JSON rounded to what the numbers mean, one line
for a log."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OffsetResult:
    """Estimated A/V offset. ``lag_ms`` > 0: audio late; NaN when there is no estimate (``reason`` says why).

    ``probability``: calibrated P(|lag error| <= one frame); for a lag withheld by a rule (the edge of the
    search, a periodic tie) the train split's share of right answers under that rule; 0 for a flat curve.
    ``best_lag_ms``: the best lag even when it is not reported (NaN only for a flat curve); ``rival_lag_ms``:
    the best lag more than a frame away from it. Evidence: ``correlation`` (peak score), ``margin`` (its lead
    over the rival), ``null_z`` (against shuffled audio), ``support`` (bootstrap agreement), ``sharpness``
    (fall one frame either side), ``rival_fit`` (the best rival's fit per overlapping second over the
    peak's). ``confidence`` is the peak's z-score over all lags, the uncalibrated number reported before
    ``probability`` (kept for callers; it does not separate right from wrong). ``lags_ms`` and
    ``correlation_curve`` hold every lag's score for plots.
    """

    lag_ms: float
    probability: float
    reason: str | None
    best_lag_ms: float
    rival_lag_ms: float
    correlation: float
    confidence: float
    margin: float
    null_z: float
    support: float
    sharpness: float
    rival_fit: float
    max_lag_ms: float
    frame_ms: float
    lags_ms: tuple[float, ...] = field(repr=False)
    correlation_curve: tuple[float, ...] = field(repr=False)

    @property
    def estimated(self) -> bool:
        return not math.isnan(self.lag_ms)

    def to_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready summary rounded to what the numbers mean: lags to 10 ms, scores to 2 digits."""

        def num(x: float, digits: int = 2) -> float | None:
            return None if math.isnan(x) else round(float(x), digits) + 0.0

        return {
            "lag_ms": round_ms(self.lag_ms),
            "probability": num(self.probability),
            "reason": self.reason,
            "best_lag_ms": round_ms(self.best_lag_ms),
            "rival_lag_ms": round_ms(self.rival_lag_ms),
            "correlation": num(self.correlation),
            "margin": num(self.margin),
            "null_z": num(self.null_z, 1),
            "support": num(self.support),
            "sharpness": num(self.sharpness),
            "rival_fit": num(self.rival_fit),
            "peak_z": num(self.confidence, 1),
            "max_lag_ms": round(self.max_lag_ms),
            "frame_ms": num(self.frame_ms, 1),
        }


def round_ms(x: float | None) -> int | None:
    """A lag in ms rounded to 10 ms (finer digits are noise: one frame is 33-42 ms); None/NaN -> None."""
    return None if x is None or math.isnan(x) else round(x / 10.0) * 10


def describe_offset(summary: dict[str, object]) -> str:
    """One line for :meth:`OffsetResult.to_dict` output: "+40 ms (p 0.83)" or "no estimate (p 0.21)"."""
    p = summary.get("probability")
    tail = f" (p {p:.2f})" if isinstance(p, float) else ""
    lag = summary.get("lag_ms")
    return (f"{lag:+d} ms" if isinstance(lag, int) else "no estimate") + tail
