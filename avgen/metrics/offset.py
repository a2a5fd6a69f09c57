"""A/V offset: the lag that best aligns audio events with video events, and how far to trust it.

Sign convention: a **positive lag means the audio is late** (a sound heard ``lag_ms`` after the motion that
caused it); shifting the audio earlier by ``lag_ms`` re-synchronises the clip.

Method (:func:`av_offset` given the frames):

- audio: log-mel spectral flux at 22050 Hz (256-sample window, 32-sample hop), its rising part (onsets) plus
  half its falling part (offsets: a key let go, a mouth closing); a percussive onset peaks within ~2 ms;
- video: the *change of motion*. Farneback flow between consecutive frames is averaged in 8x8 cells, and the
  summed size of the change of those cell vectors from one frame pair to the next is placed at the frame the
  two pairs share. A bounce reverses the motion and a strike starts it; both peak at the event's frame.
  (The earlier curve, the rising part of the mean flow magnitude, spread a falling ball over its whole fall,
  so in-sync bounce clips read +30..+70 ms.)
- both go onto one 200 Hz grid (audio smoothed to the frame rate); every lag within +-``max_lag_ms`` is
  scored by the cross-covariance of the z-scored curves (:mod:`avgen.metrics.offset_lags`), and the best is
  refined with a parabola;
- ``probability`` is the calibrated chance that the lag is within one frame of the truth
  (:mod:`avgen.metrics.offset_calibration`). Below ``min_probability``, with the best lag at the edge of
  the search range, or with a rival lag that fits as well per overlapping second (periodic events), there
  is **no estimate**: ``lag_ms`` is NaN (None in JSON) and ``reason`` says why; ``best_lag_ms`` keeps the
  best lag for plots.

With per-frame flow magnitudes only (``flow=``, no frames) the video curve is that older rising-magnitude
curve against audio onsets, with its own calibration; it is biased on bounces, so pass frames where you can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from avgen.errors import ClipError
from avgen.metrics._checks import check_rate, check_times, check_video
from avgen.metrics._deps import require
from avgen.metrics.av_align import AUDIO_SR, FARNEBACK, to_librosa_mono
from avgen.metrics.offset_calibration import COEFFICIENTS, RULED_OUT, probability
from avgen.metrics.offset_lags import lag_evidence
from avgen.metrics.offset_result import OffsetResult, round_ms

# Fixed parts of the method (the calibration holds for these values).
OFFSET_WEIGHT = 0.5  # weight of sound offsets against onsets in the audio curve
FLOW_CELLS = 8  # flow is averaged in FLOW_CELLS x FLOW_CELLS cells before its change is measured
FLOW_MAX_SIDE = 256  # larger frames are shrunk to this short side for the flow (speed; timing is unchanged)
AMBIGUOUS_FIT = 0.95  # a rival lag fitting this well per overlapping second: no estimate (periodic events)


@dataclass(frozen=True)
class OffsetConfig:
    """Settings of :func:`estimate_offset`.

    ``rate_hz`` is the common grid rate (must exceed the clip's fps); ``n_fft``/``hop``/``n_mels`` set the
    audio envelope at 22050 Hz; ``min_probability`` is the calibrated probability below which no lag is
    reported. The calibration was fitted with the defaults.
    """

    max_lag_ms: float = 500.0
    rate_hz: float = 200.0
    n_fft: int = 256
    hop: int = 32
    n_mels: int = 32
    min_probability: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_lag_ms) and self.max_lag_ms > 0):
            raise ClipError(f"OffsetConfig.max_lag_ms: expected > 0 ms, got {self.max_lag_ms}")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ClipError(f"OffsetConfig.rate_hz: expected > 0 Hz, got {self.rate_hz}")
        if self.hop < 1 or self.n_fft < self.hop or self.n_mels < 1:
            raise ClipError(
                f"OffsetConfig: need 1 <= hop <= n_fft and n_mels >= 1, got hop={self.hop}, "
                f"n_fft={self.n_fft}, n_mels={self.n_mels}"
            )
        if not 0.0 <= self.min_probability <= 1.0:
            raise ClipError(
                f"OffsetConfig.min_probability: expected a value in [0, 1], got {self.min_probability}"
            )


def audio_onset_envelope(
    audio: np.ndarray, sample_rate: int, config: OffsetConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Onset strength (rising spectral flux of log-mel) and the time of each value.

    Args:
        audio: (C, N) or (N,) float in [-1, 1] at ``sample_rate``.
    Returns:
        (values (M,) float64 >= 0, times (M,) float64 seconds); a percussive onset peaks within ~2 ms of its
        start (librosa's centring shift and the log flux's early rise from silence about cancel).
    """
    librosa = require("librosa")
    cfg = config or OffsetConfig()
    y = to_librosa_mono(audio, sample_rate)
    env = librosa.onset.onset_strength(
        y=y, sr=AUDIO_SR, n_fft=cfg.n_fft, hop_length=cfg.hop, n_mels=cfg.n_mels
    ).astype(np.float64)
    times = (np.arange(len(env)) - 0.5) * cfg.hop / AUDIO_SR
    return env, times


def audio_event_envelope(
    audio: np.ndarray, sample_rate: int, config: OffsetConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Onsets plus ``OFFSET_WEIGHT`` times offsets (falling spectral flux), on the times of
    :func:`audio_onset_envelope`. Args and returns as there."""
    librosa = require("librosa")
    cfg = config or OffsetConfig()
    y = to_librosa_mono(audio, sample_rate)
    mel = librosa.feature.melspectrogram(
        y=y, sr=AUDIO_SR, n_fft=cfg.n_fft, hop_length=cfg.hop, n_mels=cfg.n_mels
    )
    db = librosa.power_to_db(mel)  # what onset_strength computes from y
    onsets = librosa.onset.onset_strength(S=db, sr=AUDIO_SR, n_fft=cfg.n_fft, hop_length=cfg.hop)
    offsets = librosa.onset.onset_strength(S=-db, sr=AUDIO_SR, n_fft=cfg.n_fft, hop_length=cfg.hop)
    env = (onsets + OFFSET_WEIGHT * offsets).astype(np.float64)
    return env, (np.arange(len(env)) - 0.5) * cfg.hop / AUDIO_SR


def motion_onset_curve(flow: object, fps: float | Fraction) -> tuple[np.ndarray, np.ndarray]:
    """Rising part of the motion energy, and its times (the curve for flow magnitudes without frames).

    Args:
        flow: (T,) per-frame mean flow magnitude as :func:`avgen.metrics.av_align.flow_magnitudes` gives
            (entry i is the motion from frame i-1 to i, at time (i - 0.5) / fps).
    Returns:
        (values (T-2,) float64 >= 0, times (T-2,) seconds): the rise ``max(m[k] - m[k-1], 0)`` at the
        midpoint (k + 0.5) / fps of the pair where it shows. Right for motion that starts from rest; a
        falling ball's speed rises over its whole fall, so its impacts read early (audio late).
    """
    f = check_times(flow, "flow")
    rate = check_rate(fps, "fps")
    if len(f) < 3:
        raise ClipError(f"flow: need at least 3 frames to measure motion onsets, got {len(f)}")
    motion = f[1:]  # motion[k]: frames k -> k+1, at (k + 0.5) / fps
    rising = np.maximum(np.diff(motion), 0.0)  # rising[j] = motion[j+1] - motion[j], seen in pair j+1
    times = (np.arange(len(rising)) + 1.5) / rate
    return rising, times


def motion_change_curve(video: np.ndarray, fps: float | Fraction) -> tuple[np.ndarray, np.ndarray]:
    """How much the motion changes at each inner frame.

    Args:
        video: (T, H, W, 3) uint8 RGB, T >= 3.
    Returns:
        (values (T-2,) float64 >= 0, times (T-2,) seconds): value k-1 is the sum over 8x8 cells of
        |mean flow (k -> k+1) - mean flow (k-1 -> k)| (pixels per frame, at the flow's working size), at
        time k / fps, the frame both pairs share.
    """
    cv2 = require("cv2")
    check_video(video, min_frames=3)
    rate = check_rate(fps, "fps")
    height, width = video.shape[1:3]
    scale = min(1.0, FLOW_MAX_SIDE / min(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    cells, prev = [], None
    for frame in video:
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if prev is not None:
            flow = cv2.calcOpticalFlowFarneback(prev, gray, None, *FARNEBACK)  # (h, w, 2)
            cells.append(cv2.resize(flow, (FLOW_CELLS, FLOW_CELLS), interpolation=cv2.INTER_AREA))
        prev = gray
    per_pair = np.stack(cells).astype(np.float64)  # (T-1, C, C, 2): pair i -> i+1
    change = np.linalg.norm(np.diff(per_pair, axis=0), axis=-1).sum(axis=(1, 2))  # (T-2,)
    return change, np.arange(1, len(video) - 1) / rate


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.5:
        return x
    radius = math.ceil(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.convolve(np.pad(x, radius, mode="edge"), taps / taps.sum(), mode="valid")


def _is_flat(x: np.ndarray) -> bool:
    return float(np.ptp(x)) <= 1e-9 * max(float(np.abs(x).max()), 1e-30)


def estimate_offset(
    audio_env: object,
    audio_times: object,
    video_curve: object,
    video_times: object,
    fps: float | Fraction,
    *,
    config: OffsetConfig | None = None,
    calibration: str = "motion_change",
) -> OffsetResult:
    """Lag (ms, positive = audio late) that best aligns two event curves, with its calibrated probability.

    Pure: takes any audio envelope and video curve with their sample times (seconds, increasing). The lag
    range is +-``max_lag_ms``, reduced to a third of the shared duration for short clips. ``calibration``
    names the video curve the probability was fitted for: "motion_change" (:func:`motion_change_curve`
    against :func:`audio_event_envelope`) or "motion_onset" (:func:`motion_onset_curve` against
    :func:`audio_onset_envelope`).
    """
    cfg = config or OffsetConfig()
    rate = check_rate(fps, "fps")
    if cfg.rate_hz <= rate:
        raise ClipError(f"OffsetConfig.rate_hz={cfg.rate_hz} must exceed the frame rate {rate:g}")
    if calibration not in COEFFICIENTS:
        raise ClipError(
            f"estimate_offset: calibration must be one of {', '.join(COEFFICIENTS)}, got {calibration!r}"
        )
    a_val, a_t = check_times(audio_env, "audio_env"), check_times(audio_times, "audio_times")
    v_val, v_t = check_times(video_curve, "video_curve"), check_times(video_times, "video_times")
    if a_val.shape != a_t.shape or v_val.shape != v_t.shape or len(a_t) < 2 or len(v_t) < 2:
        raise ClipError("estimate_offset: each curve needs >= 2 values, as many as its times")
    end = min(a_t[-1], v_t[-1])
    if end <= 0:
        raise ClipError(f"estimate_offset: the curves share no time span (end {end:.3f} s)")
    grid = np.arange(0.0, end, 1.0 / cfg.rate_hz)
    # The audio envelope is sharper than one frame; smooth it to the video's time resolution first.
    audio_rate = (len(a_t) - 1) / (a_t[-1] - a_t[0])
    a = np.interp(grid, a_t, _gaussian_smooth(a_val, 0.25 * audio_rate / rate))
    v = np.interp(grid, v_t, v_val)
    max_lag_ms = min(cfg.max_lag_ms, 1000.0 * end / 3.0)
    max_shift = min(max(1, round(max_lag_ms * cfg.rate_hz / 1000.0)), max(1, len(grid) - 1))
    lags_ms = tuple((np.arange(-max_shift, max_shift + 1) * 1000.0 / cfg.rate_hz).tolist())
    frame_ms = 1000.0 / rate
    nan = float("nan")
    flat = (
        "silent or steady audio" if _is_flat(a) else "no motion change in the video" if _is_flat(v) else None
    )
    if flat is not None or len(grid) < 3:
        reason = f"no estimate: {flat or 'clip too short'}"
        curve = (nan,) * len(lags_ms)
        return OffsetResult(
            nan,
            0.0,
            reason,
            nan,
            nan,
            nan,
            0.0,
            nan,
            nan,
            nan,
            nan,
            nan,
            max_lag_ms,
            frame_ms,
            lags_ms,
            curve,
        )

    ev = lag_evidence(a, v, max_shift, cfg.rate_hz / rate)
    to_ms = 1000.0 / cfg.rate_hz
    best_lag = (ev.shift - max_shift) * to_ms
    rival_lag = (ev.rival - max_shift) * to_ms if ev.rival >= 0 else nan
    # Rules first: what no evidence score can settle gets the train split's rate of right answers for it.
    rule = None
    if ev.best in (0, len(ev.scores) - 1):
        rule = f"the best lag is at the edge of the +-{max_lag_ms:.0f} ms search"
    elif ev.rival_fit >= AMBIGUOUS_FIT:
        tie_lag = (ev.tie - max_shift) * to_ms
        rule = f"{round_ms(best_lag):+d} ms and {round_ms(tie_lag):+d} ms fit as well (periodic events?)"
    if rule is not None:
        p, reason = RULED_OUT[calibration], f"no estimate: {rule}"
    else:
        p, reason = probability(calibration, (ev.peak, ev.margin, ev.null_z, ev.support, ev.sharpness)), None
        if p < cfg.min_probability:
            reason = f"no estimate: P(within one frame) {p:.2f} < {cfg.min_probability:.2f}"
            if ev.rival >= 0:
                best, rival = round_ms(best_lag), round_ms(rival_lag)
                reason += f" (best {best:+d} ms, rival {rival:+d} ms only {ev.margin:.2f} lower)"
    return OffsetResult(
        lag_ms=nan if reason else float(best_lag),
        probability=p,
        reason=reason,
        best_lag_ms=float(best_lag),
        rival_lag_ms=float(rival_lag),
        correlation=ev.peak,
        confidence=ev.peak_z,
        margin=ev.margin,
        null_z=ev.null_z,
        support=ev.support,
        sharpness=ev.sharpness,
        rival_fit=ev.rival_fit,
        max_lag_ms=float(max_lag_ms),
        frame_ms=frame_ms,
        lags_ms=lags_ms,
        correlation_curve=tuple(ev.scores.tolist()),
    )


def av_offset(
    video: np.ndarray | None,
    fps: float | Fraction | str,
    audio: np.ndarray,
    sample_rate: int,
    *,
    flow: np.ndarray | None = None,
    config: OffsetConfig | None = None,
) -> OffsetResult:
    """A/V offset of one clip (positive = audio late).

    Args:
        video: (T, H, W, 3) uint8 RGB with T >= 3; used when given (the accurate path).
        audio: (C, N) or (N,) float32 in [-1, 1] at ``sample_rate`` Hz.
        flow: per-frame flow magnitudes (T,), e.g. from an AV-Align run; used only when ``video`` is None
            (the older, coarser curve, with its own calibration).
    """
    rate = check_rate(fps, "fps")
    if video is not None:
        v_val, v_t = motion_change_curve(video, rate)
        a_val, a_t = audio_event_envelope(audio, sample_rate, config)
        return estimate_offset(a_val, a_t, v_val, v_t, rate, config=config, calibration="motion_change")
    if flow is None:
        raise ClipError("av_offset: give the video frames or their precomputed flow magnitudes")
    v_val, v_t = motion_onset_curve(flow, rate)
    a_val, a_t = audio_onset_envelope(audio, sample_rate, config)
    return estimate_offset(a_val, a_t, v_val, v_t, rate, config=config, calibration="motion_onset")
