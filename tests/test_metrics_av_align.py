"""AV-Align: hand-computed peak-list cases for both variants, peak picking, and the reference on files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avgen.errors import ClipError
from avgen.metrics.av_align import (
    av_align,
    chance_iou,
    flow_magnitudes,
    iou_from_peaks,
    match_peaks,
    video_peak_times,
)

# (audio peaks, video peaks, fps, expected current, expected legacy), each worked out by hand.
CASES = [
    # 0.5<->0.52 and 2.0<->2.0 match; 1.0 vs 1.15 is 0.15 >= 1/10. I=2, union 3+4-2=5.
    ([0.5, 1.0, 2.0], [0.52, 1.15, 2.0, 3.0], 10, 2 / 5, 2 / 5),
    # Two audio peaks near one video peak: current uses it once (1/2); legacy counts both: 2/(2+1-2)=2.
    ([1.0, 1.05], [1.02], 10, 1 / 2, 2.0),
    # The window is strict: |1.25 - 1.0| = 1/4 exactly does not match at 4 fps.
    ([1.25], [1.0], 4, 0.0, 0.0),
    ([1.2499], [1.0], 4, 1.0, 1.0),
    # Greedy in list order: 1.1 takes 1.0 first, so 0.9 finds nothing (an optimal matching would get 2).
    ([1.1, 0.9], [1.0, 1.3], 4, 1 / 3, 1.0),
    # No audio peaks: I=0, union=|V|.
    ([], [1.0, 2.0], 24, 0.0, 0.0),
]


@pytest.mark.parametrize(("audio", "video", "fps", "current", "legacy"), CASES)
def test_iou_matches_hand_computed_values(audio, video, fps, current, legacy) -> None:
    assert iou_from_peaks(audio, video, fps, variant="current") == pytest.approx(current)
    assert iou_from_peaks(audio, video, fps, variant="legacy") == pytest.approx(legacy)


def test_match_pairs_and_undefined_score() -> None:
    assert match_peaks([1.1, 0.9], [1.0, 1.3], 4) == [(0, 0)]
    assert match_peaks([1.1, 0.9], [1.0, 1.3], 4, variant="legacy") == [(0, 0), (1, 0)]
    assert math.isnan(iou_from_peaks([], [], 24))
    with pytest.raises(ClipError, match="variant"):
        iou_from_peaks([1.0], [1.0], 24, variant="v2")  # type: ignore[arg-type]
    with pytest.raises(ClipError, match="fps"):
        iou_from_peaks([1.0], [1.0], 0)
    with pytest.raises(ClipError, match="NaN"):
        iou_from_peaks([float("nan")], [1.0], 24)


def test_video_peaks_threshold_and_strictness() -> None:
    flow = [0.5, 0.5, 0.9, 0.3, 0.05, 0.08, 0.02, 0.4, 0.4, 0.1]
    # i=2 is a peak (t=1.0); i=5 is a local max below 0.1 (legacy only); the 0.4 plateau is no strict max.
    np.testing.assert_allclose(video_peak_times(flow, 2), [1.0])
    np.testing.assert_allclose(video_peak_times(flow, 2, variant="legacy"), [1.0, 2.5])


def _jumps_and_clicks(fps: int, jump_frames: list[int], click_times: list[float], sr: int = 16000):
    """A disc that jumps 6 px sideways on each listed frame, and 3 ms clicks in silence."""
    n_frames, size = 3 * fps, 48
    yy, xx = np.mgrid[0:size, 0:size]
    x, video = 16.0, np.empty((n_frames, size, size, 3), np.uint8)
    for i in range(n_frames):
        if i in jump_frames:
            x += 6.0 if x < 24 else -6.0
        disc = np.clip((7 - np.hypot(xx - x, yy - 24)) / 2, 0, 1)
        video[i] = (20 + 220 * disc)[..., None].astype(np.uint8)
    audio = np.zeros((1, 3 * sr), np.float32)
    burst = np.random.default_rng(0).uniform(-0.8, 0.8, int(0.003 * sr)).astype(np.float32)
    for t in click_times:
        s = round(t * sr)
        audio[0, s : s + len(burst)] = burst
    return video, audio, sr


def test_clip_with_known_peaks_scores_the_hand_computed_value() -> None:
    # Video peaks at frames 10, 30, 50 of 20 fps (0.5, 1.5, 2.5 s); clicks at 0.5 and 1.5 match, 2.0 does
    # not: I = 2, |A| = 3, |V| = 3 -> 2 / 4.
    video, audio, sr = _jumps_and_clicks(20, [10, 30, 50], [0.49, 1.49, 2.0])
    result = av_align(video, 20, audio, sr)
    np.testing.assert_allclose(result.video_peaks, [0.5, 1.5, 2.5])
    assert len(result.audio_peaks) == 3
    assert result.score == pytest.approx(0.5)
    assert result.to_dict()["variant"] == "current"


def test_chance_is_low_for_sparse_peaks_and_checks_input() -> None:
    rng = np.random.default_rng(1)
    a, v = np.sort(rng.uniform(0, 10, 8)), np.sort(rng.uniform(0, 10, 8))
    chance = chance_iou(a, v, 24, 10.0)
    # 8 peaks with a +-1/24 s window each cover ~7% of 10 s: chance IoU is small but not zero.
    assert 0.0 < chance < 0.15
    assert chance_iou(v, v, 24, 10.0) == pytest.approx(chance_iou(v, v, 24, 10.0))
    with pytest.raises(ClipError, match="duration"):
        chance_iou(a, v, 24, 0.0)


def test_bad_inputs_raise_clip_errors() -> None:
    with pytest.raises(ClipError, match="uint8"):
        flow_magnitudes(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(ClipError, match="at least 2"):
        flow_magnitudes(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ClipError, match="NaN"):
        av_align(None, 24, np.full((1, 100), np.nan, np.float32), 16000, flow=np.ones(5))
    with pytest.raises(ClipError, match="give the video"):
        av_align(None, 24, np.zeros((1, 100), np.float32), 16000)


def _reference_av_align(mp4: str, wav: str) -> float:
    """The TempoTokens recipe step by step: OpenCV decoding (BGR), librosa.load of a WAV at 22050 Hz."""
    import cv2
    import librosa

    cap = cv2.VideoCapture(mp4)
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cap.release()

    def mean_flow(a: np.ndarray, b: np.ndarray) -> float:
        f = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return cv2.mean(cv2.magnitude(f[..., 0], f[..., 1]))[0]

    traj = [mean_flow(frames[0], frames[1])] + [
        mean_flow(frames[i - 1], frames[i]) for i in range(1, len(frames))
    ]
    video_peaks = [
        i / fps for i in range(1, len(traj) - 1) if traj[i - 1] < traj[i] > traj[i + 1] and traj[i] >= 0.1
    ]
    y, sr = librosa.load(wav)
    env = librosa.onset.onset_strength(y=y, sr=sr)
    audio_peaks = librosa.frames_to_time(librosa.onset.onset_detect(onset_envelope=env, sr=sr), sr=sr)
    hits, used = 0, [False] * len(video_peaks)
    for a in audio_peaks:
        for j, v in enumerate(video_peaks):
            if not used[j] and v - 1 / fps < a < v + 1 / fps:
                hits, used[j] = hits + 1, True
                break
    return hits / (len(audio_peaks) + len(video_peaks) - hits)


def test_same_value_as_the_reference_recipe_on_the_same_file(tmp_path) -> None:
    import soundfile as sf

    from avgen.io import AVClip, read_av, write_av

    video, audio, sr = _jumps_and_clicks(24, [12, 29, 41, 60], [0.5, 1.21, 1.7, 2.2, 2.5])
    path = write_av(tmp_path / "clip.mp4", AVClip(video=video, fps=24, audio=audio, sample_rate=sr))
    clip = read_av(path)
    sf.write(tmp_path / "clip.wav", clip.audio.T, clip.sample_rate)
    reference = _reference_av_align(str(path), str(tmp_path / "clip.wav"))
    ours = av_align(clip.video, clip.fps, clip.audio, clip.sample_rate)
    assert 0.0 < reference < 1.0
    assert ours.score == pytest.approx(reference, abs=1e-12)
