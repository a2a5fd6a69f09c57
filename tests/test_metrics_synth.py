"""Ground-truth scores on avgen-synth clips: high on the truth, low when the audio is shifted, and the pixel
measurements agree with the events JSON."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.errors import ClipError
from avgen.metrics.synth import (
    impact_f1,
    lip_sync,
    match_events,
    parse_caption,
    prompt_adherence,
    score_synth,
    visible_impacts,
)


def _sample(family: str, seed: int):
    from avgen.data.synth.generate import make_sample
    from avgen.data.synth.spec import SynthConfig

    return make_sample(seed, "val", SynthConfig(families={family: 1.0}, durations=(2.5,)))


def _delay(audio: np.ndarray, sr: int, ms: float) -> np.ndarray:
    s = round(ms * sr / 1000)
    return np.concatenate([np.zeros((audio.shape[0], s), np.float32), audio[:, :-s]], 1)


def test_impact_f1_and_matching_by_hand() -> None:
    # Impacts 1.0, 2.0, 3.0; onsets 1.03 (hit), 2.2 (miss at 24 fps), 3.0 (hit), 3.01 (extra). 2 hits.
    scores = impact_f1([1.0, 2.0, 3.0], [1.03, 2.2, 3.0, 3.01], 24)
    assert scores["hits"] == 2 and scores["precision"] == 0.5 and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(4 / 7)
    assert match_events([1.0, 1.05], [1.04], 0.1) == [(1, 0)]  # closest pair first, one-to-one
    assert impact_f1([], [], 24)["f1"] is None


def test_caption_parsing_ignores_quoted_speech() -> None:
    assert parse_caption("two small red balls bounce quickly") == {"colors": ["red"], "count": 2}
    assert parse_caption("a big red ball and a small blue ball bounce slowly") == {
        "colors": ["red", "blue"],
        "count": 2,
    }
    assert parse_caption('a round green face says "a big red bus"') == {"colors": ["green"], "count": 1}
    assert parse_caption("heavy rain falls against a grey background")["colors"] == []


def test_bounce_ground_truth_scores_high_and_shifted_audio_low() -> None:
    f1, f1_shifted = [], []
    for seed in range(3):
        s = _sample("bounce", seed)
        clip, data = s.clip, s.to_json()
        fps = float(clip.fps)
        seen = visible_impacts(clip.video, fps, data["objects"]["balls"])
        truth = np.unique([e["frame"] for e in s.events if e["kind"] == "impact"]) / fps
        # Every impact seen in the pixels is a ground-truth impact frame; at most the last one is missed.
        assert set(np.round(seen, 6)) <= set(np.round(truth, 6)) and len(seen) >= len(truth) - 1
        f1.append(score_synth(clip.video, fps, clip.audio, clip.sample_rate, data)["impact"]["f1"])
        late = _delay(clip.audio, clip.sample_rate, 200)
        f1_shifted.append(score_synth(clip.video, fps, late, clip.sample_rate, data)["impact"]["f1"])
    assert min(f1) >= 0.85
    assert max(f1_shifted) <= 0.3


def test_talk_lip_sync_high_and_recovers_a_shift() -> None:
    s = _sample("talk", 0)
    clip, data = s.clip, s.to_json()
    fps = float(clip.fps)
    synced = score_synth(clip.video, fps, clip.audio, clip.sample_rate, data)
    assert synced["lip_sync"]["correlation"] >= 0.6 and synced["lip_sync"]["lag_ms"] == 0.0
    late = score_synth(clip.video, fps, _delay(clip.audio, clip.sample_rate, 200), clip.sample_rate, data)
    assert late["lip_sync"]["correlation"] < synced["lip_sync"]["correlation"] - 0.3
    assert abs(late["lip_sync"]["lag_ms"] - 200) <= 1000 / fps
    assert synced["prompt"]["adherent"]


def test_prompt_adherence_accepts_the_truth_and_rejects_a_wrong_caption() -> None:
    s = _sample("bounce", 1)
    truth = prompt_adherence(s.clip.video, s.caption)
    assert truth is not None and truth["adherent"] and truth["count_measured"] == truth["count_asked"]
    asked = parse_caption(s.caption)
    other = next(c for c in ("green", "pink", "blue", "yellow") if c not in asked["colors"])
    wrong_colour = prompt_adherence(s.clip.video, f"three big {other} balls bounce quickly")
    assert wrong_colour is not None and not wrong_colour["color_ok"] and not wrong_colour["adherent"]
    wrong_count = prompt_adherence(s.clip.video, s.caption.replace(s.caption.split()[0], "eight", 1))
    if asked["count"] != 8:
        assert wrong_count is not None and wrong_count["count_ok"] is False


def test_keys_colour_is_scored_on_the_lit_bars() -> None:
    """Unlit bars are 70 % background and lit ones are lightened towards white, so keys clips are scored on
    the pixels that light up: every clip passes its own colour and fails another."""
    for seed in range(6):
        s = _sample("keys", seed)
        asked = parse_caption(s.caption)["colors"]
        truth = prompt_adherence(s.clip.video, s.caption, count=False, lit=True)
        assert truth is not None and truth["color_ok"], (s.caption, truth)
        other = next(c for c in ("green", "pink", "blue", "orange") if c not in asked)
        wrong = prompt_adherence(s.clip.video, f"five {other} bars play a slow melody", count=False, lit=True)
        assert wrong is not None and not wrong["color_ok"], (s.caption, other, wrong)
        assert score_synth(s.clip.video, float(s.clip.fps), s.clip.audio, s.clip.sample_rate, s.to_json())[
            "prompt"
        ]["color_ok"]


def test_lip_sync_and_inputs_checked() -> None:
    o = np.array([0, 1, 0, 2, 0, 1, 0, 0, 3, 0], float)
    assert lip_sync(o, np.roll(o, 2), 10)["lag_ms"] == pytest.approx(200.0)
    assert lip_sync(o, np.zeros_like(o), 10)["correlation"] is None
    with pytest.raises(ClipError, match="same length"):
        lip_sync(o, o[:5], 10)
    with pytest.raises(ClipError, match="family"):
        score_synth(np.zeros((3, 8, 8, 3), np.uint8), 24, np.zeros((1, 100), np.float32), 16000, {})
