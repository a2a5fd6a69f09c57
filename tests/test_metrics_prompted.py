"""Caption-only scoring of generated clips agrees with the layout-based ground-truth scores, and the model
evaluation runs end to end on a tiny random pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avgen.errors import ClipError, ConfigError
from avgen.metrics.prompted import caption_balls, caption_family, locate_face, score_prompted
from avgen.metrics.synth import score_synth


def _sample(family: str, seed: int):
    from avgen.data.synth.generate import make_sample
    from avgen.data.synth.spec import SynthConfig

    return make_sample(seed, "test", SynthConfig(families={family: 1.0}, sizes=((64, 64),), durations=(2.0,)))


def test_caption_parsing() -> None:
    assert caption_family('a round red face says "the ball is red"') == "talk"
    assert caption_family("two small orange balls bounce quickly") == "bounce"
    assert caption_family("six pink bars play a quick melody") == "keys"
    assert caption_family("light rain falls against a dark blue background") == "ambience"
    with pytest.raises(ClipError, match="not an avgen-synth caption"):
        caption_family("a cat on a mat")
    assert caption_balls("two small orange balls bounce quickly") == ["orange", "orange"]
    assert caption_balls("a big red ball, a small blue ball and a big red ball bounce") == [
        "red",
        "blue",
        "red",
    ]
    assert caption_balls("a medium pink ball bounces slowly") == ["pink"]


@pytest.mark.parametrize("family", ["talk", "bounce"])
def test_caption_only_scores_equal_the_layout_scores(family: str) -> None:
    for seed in range(3):
        s = _sample(family, seed)
        events = s.to_json()
        gt = score_synth(s.clip.video, 24, s.clip.audio, s.clip.sample_rate, events)
        got = score_prompted(s.clip.video, 24, s.clip.audio, s.clip.sample_rate, s.caption)
        assert got["family"] == family and got["prompt"] == gt["prompt"]
        if family == "bounce":
            assert got["impact"]["f1"] == pytest.approx(gt["impact"]["f1"])
        else:
            face = events["objects"]["face"]
            (row, col), radius = locate_face(s.clip.video, face["color"])
            assert abs(row - face["mouth_center"][0]) < 2.5 and abs(col - face["mouth_center"][1]) < 1.5
            assert abs(radius - face["radius"]) < 2.5
            assert got["lip_sync"]["correlation"] == pytest.approx(gt["lip_sync"]["correlation"], abs=0.05)


def test_missing_face_or_ball_scores_as_a_failure() -> None:
    s = _sample("talk", 0)
    grey = np.full_like(s.clip.video, 128)
    got = score_prompted(grey, 24, s.clip.audio, s.clip.sample_rate, s.caption)
    assert got["lip_sync"] is None and got["face"] is None
    b = _sample("bounce", 0)
    got = score_prompted(np.full_like(b.clip.video, 128), 24, b.clip.audio, b.clip.sample_rate, b.caption)
    assert got["impact"]["f1"] == 0.0


def test_model_eval_runs_on_a_tiny_pipeline(tmp_path) -> None:
    from avgen.metrics.model_eval import ModelEvalConfig, evaluate_model, summarize, summary_markdown
    from avgen.pipeline import tiny_pipeline

    with pytest.raises(ConfigError, match="per_family"):
        ModelEvalConfig(per_family=1)
    with pytest.raises(ConfigError, match="tasks"):
        ModelEvalConfig(tasks=("t2v",))
    cfg = ModelEvalConfig(
        per_family=2,
        families=("talk", "bounce"),
        size=(32, 32),
        seconds=1.0,
        batch=2,
        sampling={"steps": 1},
        save_clips=True,
    )
    report = evaluate_model(tiny_pipeline(), cfg, tmp_path, progress=False)
    for task in ("gt", "t2av", "a2v", "v2a", "codec"):  # --save-clips: every clip, the real ones too
        names = sorted(p.name for p in (tmp_path / "clips" / task).iterdir())
        assert names == [f"{i:03d}_{r['family']}.mp4" for i, r in enumerate(report["rows"]["gt"])], task
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"] == report["summary"]
    table = (tmp_path / "report.md").read_text()
    assert "| t2av | 2 |" in table and "impact F1" in table and "caption colour" in table
    assert set(report["summary"]) == {"gt", "t2av", "a2v", "v2a", "codec"}
    assert "| codec | 2 |" in table
    gt = report["summary"]["gt"]
    assert gt["talk"]["clips"] == 2 and gt["talk"]["face_found"] == 1.0 and gt["talk"]["color_ok"] == 1.0
    assert gt["bounce"]["impact_f1"] > 0.5
    assert gt["bounce"]["ball_area_cv"] < 0.1  # drawn balls keep their size
    assert 0 < gt["talk"]["frame_change"] < report["summary"]["t2av"]["talk"]["frame_change"]
    assert "| change between frames (0-255) | talk | bounce | ball area variation |" in table
    assert 0 <= gt["bounce"]["av_align_chance"] < gt["bounce"]["av_align"]  # real clips beat shifted peaks
    # a random model: its talk clips show no face of the asked colour
    assert report["summary"]["t2av"]["talk"]["face_found"] == 0.0
    # the shuffled-pair floor pairs each mouth with another clip's sound
    rows = [
        {"family": "talk", "lip_sync": {"lag_ms": 0.0, "correlation": 1.0}, "openness": o, "envelope": o}
        for o in ([0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0])
    ]
    talk = summarize(rows, 24)
    assert talk["shuffled_correlation"] == -1.0
    # mouth statistics over the clips with a face: a mouth in half the frames, opening std 0.5 px
    assert talk["mouth_shown"] == 0.5 and talk["mouth_opening_std"] == 0.5 and talk["mouth_moving"] == 1.0
    still = {"correlation": None, "lag_ms": None, "best_correlation": None}  # a face whose mouth never moves
    mouthless = {"family": "talk", "lip_sync": still, "openness": [0.0] * 6, "envelope": [1.0] * 6}
    faceless = {"family": "talk", "lip_sync": None, "envelope": [1.0] * 6}  # no face: not counted
    drawn = summarize([*rows, mouthless, faceless], 24)
    assert drawn["mouth_shown"] == 0.3333 and drawn["mouth_opening_std"] == 0.3333
    assert drawn["face_found"] == 0.75 and drawn["mouth_moving"] == 0.6667  # the still mouth: no correlation
    assert drawn["correlation"] == 1.0  # a mean over the two moving mouths only
    assert summarize([faceless, faceless], 24)["mouth_shown"] is None
    table = summary_markdown({"summary": {"a2v": {"talk": drawn}}})
    assert (
        "| mouth shown | opening std (px) | mouth moves |" in table and "| 0.333 | 0.333 | 0.667 |" in table
    )
    # ... and each clip's impacts with another clip's onsets: in-sync clips score 1, swapped pairs 0 here
    rows = [
        {"family": "bounce", "av_align": 0.5, "impact": {"f1": 1.0, "impact_times": t, "onset_times": t}}
        for t in ([0.25, 1.0], [0.5, 1.5], [])
    ]
    rows[2]["impact"]["f1"] = None  # no impacts and no onsets
    bounce = summarize(rows, 24)
    assert bounce["impact_f1"] == 1.0 and bounce["impact_f1_shuffled"] == 0.0
    assert bounce["onsets_per_clip"] == bounce["impacts_per_clip"] == 1.33  # (2 + 2 + 0) / 3
    rows[1]["impact"]["onset_times"] = [0.26, 0.99]  # clip 0's impacts against these: both hit
    assert summarize(rows, 24)["impact_f1_shuffled"] == 0.3333  # (1 + 0 + 0) / 3: a clip with no events
    assert "| shuffled pairs |" in summary_markdown({"summary": {"t2av": {"bounce": bounce}}})
    assert "| onsets / clip | impacts / clip |" in summary_markdown({"summary": {"t2av": {"bounce": bounce}}})


def test_model_eval_tunes_on_val_and_passes_sampler_settings() -> None:
    from avgen.metrics.model_eval import ModelEvalConfig, _generate, test_samples

    with pytest.raises(ConfigError, match="split"):
        ModelEvalConfig(split="holdout")
    with pytest.raises(ConfigError, match="audio_guidance"):
        ModelEvalConfig(sampling={"audio_guidance": float("nan")})
    with pytest.raises(ConfigError, match="shift"):
        ModelEvalConfig(sampling={"shift": 0.0})
    with pytest.raises(ConfigError, match="guidance_scale"):
        ModelEvalConfig(sampling={"guidance_scale": 2.0})
    geometry = {"per_family": 2, "families": ("talk",), "size": (32, 32), "seconds": 1.0}
    test = test_samples(ModelEvalConfig(**geometry), 16000)
    val = test_samples(ModelEvalConfig(split="val", **geometry), 16000)
    assert [s.to_json()["split"] for s in val] == ["val", "val"]
    assert {s.caption for s in val}.isdisjoint(s.caption for s in test)

    calls = []

    def pipe(prompts, **kw):
        calls.append(kw)
        return [None] * len(prompts)

    sampling = {"steps": 3, "sampler": "euler", "shift": 3.0, "video_guidance": 2.5, "audio_guidance": 1.5}
    cfg = ModelEvalConfig(sampling=sampling, batch=8, **geometry)
    _generate(pipe, "t2av", test, cfg)
    assert {k: calls[0][k] for k in sampling} == sampling


def test_steadiness_scores() -> None:
    from avgen.metrics.synth import frame_change, lane_area_variation

    still = np.full((5, 8, 8, 3), 40, np.uint8)
    assert frame_change(still) == 0.0
    flicker = still.copy()
    flicker[1::2] = 50
    assert frame_change(flicker) == 10.0
    with pytest.raises(ClipError):
        frame_change(still[:1])
    steady = np.zeros((6, 8, 8), bool)
    for t in range(6):
        steady[t, t : t + 2, 1:3] = True  # a 2 x 2 ball falling one row a frame
    assert lane_area_variation([steady]) == 0.0
    blob = steady.copy()
    blob[::2, :, :4] = True  # every other frame the blob swells
    assert lane_area_variation([blob]) > 0.5
    assert lane_area_variation([np.zeros((6, 8, 8), bool)]) is None  # no track
    b = _sample("bounce", 0)
    got = score_prompted(b.clip.video, 24, b.clip.audio, b.clip.sample_rate, b.caption)
    assert got["ball_area_cv"] < 0.1
