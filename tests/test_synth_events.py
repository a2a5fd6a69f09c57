"""avgen-synth ground truth agrees with the audio (onsets within 5 ms) and with the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.data.synth.generate import make_sample
from avgen.data.synth.onsets import gate_onsets
from avgen.data.synth.spec import SynthConfig

TOL = 0.005  # seconds
SOUND_KINDS = {"talk": {"phoneme"}, "bounce": {"impact"}, "keys": {"note_on"}}


def _samples(family: str, seeds: range, **cfg: object) -> list:
    config = SynthConfig(families={family: 1.0}, sizes=((64, 64), (64, 96), (96, 64)), **cfg)  # type: ignore[arg-type]
    return [make_sample(s, "train", config) for s in seeds]


@pytest.mark.parametrize("family", ["talk", "bounce", "keys"])
def test_listed_onsets_are_heard_and_heard_onsets_are_listed(family: str) -> None:
    checked = 0
    for sample in _samples(family, range(6)):
        audio, sr = sample.clip.audio[0], sample.clip.sample_rate
        detected = gate_onsets(audio, sr) / sr
        listed = np.array([e["time"] for e in sample.events if e["kind"] in SOUND_KINDS[family]])
        assert len(listed) > 0, sample.caption
        for e in sample.events:
            if e["kind"] not in SOUND_KINDS[family]:
                continue
            assert e["sample"] == round(e["time"] * sr)
            assert e["frame"] == min(
                int(np.floor(e["time"] * float(sample.clip.fps) + 0.5)), sample.clip.num_frames - 1
            )
            n = e["sample"]
            before = audio[max(n - int(0.012 * sr), 0) : max(n - int(0.002 * sr), 0)]
            if n > int(0.012 * sr) and np.abs(before).max() < 0.003:  # follows silence: must be an onset
                checked += 1
                assert len(detected) and np.abs(detected - e["time"]).min() <= TOL, (sample.name, e)
        for t in detected:  # every sound that starts after silence is a listed event
            assert np.abs(listed - t).min() <= TOL, (sample.name, t)
    assert checked >= 6  # at least one checked event per clip on average


def test_events_shifted_by_20ms_would_fail() -> None:
    """The check above can fail: moving the events by 20 ms breaks the agreement."""
    sample = _samples("bounce", range(1))[0]
    sr = sample.clip.sample_rate
    detected = gate_onsets(sample.clip.audio[0], sr) / sr
    shifted = np.array([e["time"] + 0.02 for e in sample.events if e["kind"] == "impact"])
    assert all(np.abs(detected - t).min() > TOL for t in shifted)


def test_impact_frames_show_the_ball_on_the_floor() -> None:
    for sample in _samples("bounce", range(6)):
        video = sample.clip.video.astype(np.float32) / 255
        floor = sample.objects["floor_y"]
        for e in (e for e in sample.events if e["kind"] == "impact"):
            ball = sample.objects["balls"][e["ball"]]
            i, r = e["frame"], ball["radius"]
            x = sample.state["ball_x"][i][e["ball"]]
            assert sample.state["on_floor"][i][e["ball"]]
            assert abs(sample.state["ball_y"][i][e["ball"]] + r - floor) < 1e-6
            # pixels: the ball's colour reaches the row just above the floor, below its centre column
            col = video[i, :, int(x)]  # (H, 3)
            dist = np.abs(col - np.asarray(ball["rgb"])).sum(axis=1)
            rows = np.flatnonzero(dist < 0.25)
            assert len(rows) and rows.max() == int(floor) - 1, (sample.name, i, rows)
        # and mid-flight frames do not touch it
        for b, ball in enumerate(sample.objects["balls"]):
            airborne = [i for i, row in enumerate(sample.state["on_floor"]) if not row[b]]
            for i in airborne[:3]:
                assert sample.state["ball_y"][i][b] + ball["radius"] < floor


def test_mouth_pixels_follow_the_phoneme_state() -> None:
    for sample in _samples("talk", range(4)):
        video = sample.clip.video.astype(np.float32) / 255
        face = sample.objects["face"]
        my, mx = face["mouth_center"]
        r = face["radius"]
        box = video[:, int(my - 0.35 * r) : int(my + 0.35 * r) + 1, int(mx - 0.4 * r) : int(mx + 0.4 * r) + 1]
        dark = (np.abs(box - np.array([0.28, 0.03, 0.06])).sum(axis=-1) < 0.3).sum(axis=(1, 2))  # (T,)
        state = np.array(sample.state["mouth_open"])
        closed, wide = dark[state == 0.0], dark[state >= 0.5]
        assert len(closed) and len(wide), sample.caption
        assert wide.min() > closed.max(), (sample.name, wide, closed)
        # the bilabials close the mouth on their frames
        for e in sample.events:
            if e["kind"] == "phoneme" and e["phoneme"].lstrip("',") in ("p", "b", "m"):
                assert (
                    sample.state["viseme"][e["frame"]] in ("closed", "rest")
                    or sample.state["phoneme"][e["frame"]] != e["phoneme"]
                )


def test_lit_bars_match_notes_and_pixels() -> None:
    for sample in _samples("keys", range(4)):
        video = sample.clip.video.astype(np.float32) / 255
        lit = np.array(sample.state["lit"])  # (T, bars)
        for e in sample.events:
            if e["kind"] == "note_on":
                assert lit[e["frame"], e["bar"]]
                assert lit[e["frame"]].sum() == 1
        centres = [
            ((b[0] + b[1]) / 2, (b[2] + b[3]) / 2) for b in (bar["box"] for bar in sample.objects["bars"])
        ]
        lit_rgb, dim_rgb = np.array(sample.objects["lit_rgb"]), np.array(sample.objects["dim_rgb"])
        for b, (cy, cx) in enumerate(centres):
            pixel = video[:, int(cy), int(cx)]  # (T, 3)
            looks_lit = np.abs(pixel - lit_rgb).sum(-1) < np.abs(pixel - dim_rgb).sum(-1)  # (T,)
            np.testing.assert_array_equal(looks_lit, lit[:, b], err_msg=f"{sample.name} bar {b}")


def test_rain_has_no_events_and_follows_its_intensity() -> None:
    for sample in _samples("ambience", range(3), durations=(2.5,)):
        assert sample.events == []
        drops = np.array(sample.state["drops"], dtype=float)
        level = np.array(sample.state["rain_intensity"])
        assert drops.min() > 0 and np.corrcoef(drops, level)[0, 1] > 0.5
        assert 0.01 < np.abs(sample.clip.audio).max() <= 1.0
