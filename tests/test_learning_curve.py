"""Learning curves: a run exports snapshots every ``loop.snapshot_every`` steps (atomically, kept through
checkpoint rotation, not redone on resume), and ``avgen eval curve`` scores each once, writing
curve.json / curve.md / curve.png, skipping a damaged snapshot with a warning."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from avgen.cli import main
from avgen.config import from_dict
from avgen.errors import ConfigError
from avgen.metrics.model_eval import ModelEvalConfig
from avgen.train import curve as curve_module
from avgen.train.checkpoint import complete_checkpoints
from avgen.train.curve import learning_curve, options_key, run_points
from avgen.train.loop_config import LoopConfig
from avgen.train.recipe import load_recipe, run
from avgen.train.snapshots import read_snapshot, snapshot_folders

# batch_size 4 in 2 accumulation steps: samples seen count the global batch, 4 clips a step
RECIPE = """
task: joint
loop: {steps: 6, lr: 3.0e-3, warmup: 1, grad_accum: 2, log_every: 1, eval_every: 0, ckpt_every: 3,
       keep_checkpoints: 1, snapshot_every: 2, ema_decay: 0.9, num_threads: 1}
joint:
  batch_size: 4
  val_batches: 1
  eval_samples: 0
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}
  data: {n: 4, val_n: 2, size: [32, 32], duration: 1.0}
"""
# the cheapest scoring avgen eval model offers: two bounce prompts, text-to-audio-video, one solver step
EVAL_FLAGS = ["--per-family", "2", "--families", "bounce", "--tasks", "t2av", "--steps", "1"]
EVAL = ModelEvalConfig(per_family=2, families=("bounce",), tasks=("t2av",), sampling={"steps": 1})


def _steps(run_dir: Path) -> list[int]:
    return [read_snapshot(f)["step"] for f in snapshot_folders(run_dir)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run trained to step 3, then resumed to step 6 from a config.json written before snapshots existed."""
    recipe = tmp_path_factory.mktemp("recipe") / "joint.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path_factory.mktemp("run")
    first = run(load_recipe(recipe, ["loop.steps=3"], out=str(out)), progress=False)
    assert first["status"] == "done" and _steps(out) == [2]
    before = (out / "snapshots" / "step_00000002" / "snapshot.json").stat().st_mtime_ns
    config = json.loads((out / "config.json").read_text())
    del config["loop"]["snapshot_every"]  # a run started before the setting existed resumes as before
    (out / "config.json").write_text(json.dumps(config))
    stale = out / "snapshots" / ".step_00000004.0123abcd.part"  # a snapshot write that was stopped midway
    (stale / "pipeline").mkdir(parents=True)
    result = run(load_recipe(recipe, out=str(out)), resume=True, progress=False)
    assert result["status"] == "done" and result["step"] == 6
    assert (out / "snapshots" / "step_00000002" / "snapshot.json").stat().st_mtime_ns == before  # not redone
    assert not stale.exists()
    return out


def test_snapshot_every_is_a_checked_loop_setting() -> None:
    assert LoopConfig().snapshot_every == 0  # off unless asked for
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match=r"loop\.snapshot_every"):
            LoopConfig(snapshot_every=bad)
    assert from_dict(LoopConfig, {"steps": 10}).snapshot_every == 0  # a saved config without it


def test_snapshots_land_at_their_steps_and_outlive_checkpoints(trained) -> None:
    assert [p.name for p in snapshot_folders(trained)] == ["step_00000002", "step_00000004", "step_00000006"]
    assert [read_snapshot(f)["samples_seen"] for f in snapshot_folders(trained)] == [8, 16, 24]
    assert [p.name for p in complete_checkpoints(trained)] == ["step_00000006"]  # rotation left snapshots
    assert json.loads((trained / "metrics.json").read_text())["samples_seen"] == 24
    # the last snapshot is the model the run exported at its end: the EMA weights of step 6
    last = load_file(trained / "snapshots" / "step_00000006" / "pipeline" / "dit" / "model.safetensors")
    final = load_file(trained / "pipeline" / "dit" / "model.safetensors")
    assert last.keys() == final.keys() and all((last[k] == final[k]).all() for k in last)
    first = load_file(trained / "snapshots" / "step_00000002" / "pipeline" / "dit" / "model.safetensors")
    assert any((first[k] != final[k]).any() for k in first)


def test_a_resume_writes_the_snapshot_a_stop_left_out(trained, tmp_path) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    shutil.rmtree(out / "snapshots" / "step_00000006")  # stopped at step 6: checkpointed, not snapshotted
    kept = {f.name: (f / "snapshot.json").stat().st_mtime_ns for f in snapshot_folders(out)}
    recipe = tmp_path / "joint.yaml"
    recipe.write_text(RECIPE)
    run(load_recipe(recipe, out=str(out)), resume=True, progress=False)
    assert _steps(out) == [2, 4, 6]
    assert {n: (out / "snapshots" / n / "snapshot.json").stat().st_mtime_ns for n in kept} == kept


def test_eval_curve_scores_each_snapshot_once(trained, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    calls = []
    real = curve_module.evaluate_model
    monkeypatch.setattr(curve_module, "evaluate_model", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    assert main(["eval", "curve", str(out), *EVAL_FLAGS]) == 0
    assert len(calls) == 3  # the final pipeline is step 6's snapshot: scored once
    curve = json.loads((out / "curve" / "curve.json").read_text())
    assert [(p["name"], p["step"], p["samples_seen"]) for p in curve["points"]] == [
        ("step_00000002", 2, 8),
        ("step_00000004", 4, 16),
        ("step_00000006", 6, 24),
    ]
    assert curve["gt"]["bounce"]["impact_f1"] > 0.5 and curve["skipped"] == []
    for p in curve["points"]:
        assert set(p["summary"]) == {"t2av"} and "impact_f1" in p["summary"]["t2av"]["bounce"]
    table = (out / "curve" / "curve.md").read_text().splitlines()
    header = next(line for line in table if line.startswith("| step |"))
    assert "bounce: impact F1 (shuffled)" in header and "bounce: ball of the asked colour" in header
    rows = [line for line in table if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| 2", "| 4", "| 6", "| ground truth"]
    assert (out / "curve" / "curve.png").is_file() == (not curve_module.missing(("matplotlib",)))

    # a rerun reads every report from its snapshot; a new snapshot is the only one scored
    reports = sorted(out.glob("snapshots/step_*/eval_*/report.json"))
    stamps = [r.stat().st_mtime_ns for r in reports]
    assert len(reports) == 3 and main(["eval", "curve", str(out), *EVAL_FLAGS]) == 0
    assert len(calls) == 3 and [r.stat().st_mtime_ns for r in reports] == stamps
    again = json.loads((out / "curve" / "curve.json").read_text())
    assert [p["cached"] for p in again["points"]] == [True] * 3
    assert [p["summary"] for p in again["points"]] == [p["summary"] for p in curve["points"]]
    extra = out / "snapshots" / "step_00000008"
    shutil.copytree(out / "snapshots" / "step_00000006", extra, ignore=shutil.ignore_patterns("eval_*"))
    (extra / "snapshot.json").write_text(json.dumps({"step": 8, "samples_seen": 32}))
    assert main(["eval", "curve", str(out), *EVAL_FLAGS]) == 0 and len(calls) == 4


def test_a_packed_run_keeps_its_scored_points(trained, tmp_path) -> None:
    from avgen.train.pack import pack_run

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    shutil.copytree(run_dir / "snapshots" / "step_00000006", run_dir / "snapshots" / "step_00000008")
    (run_dir / "snapshots" / "step_00000008" / "snapshot.json").write_text(
        json.dumps({"step": 8, "samples_seen": 32})
    )
    scored = learning_curve(run_dir, EVAL, run_dir / "curve", progress=False)
    shutil.rmtree(run_dir / "snapshots" / "step_00000008" / f"eval_{options_key(EVAL)}")  # never scored
    scored["points"].pop()
    packed = tmp_path / "packed"
    pack_run(run_dir, packed)
    assert not list(packed.glob("snapshots/*/pipeline")) and len(list(packed.glob("snapshots/*/eval_*"))) == 3
    assert not (packed / "snapshots" / "step_00000008").exists()  # unscored: nothing to carry
    again = learning_curve(packed, EVAL, packed / "curve", progress=False)
    assert [p["cached"] for p in again["points"]] == [True] * 3
    assert [p["summary"] for p in again["points"]] == [p["summary"] for p in scored["points"]]
    other = dataclasses.replace(EVAL, per_family=3)
    with pytest.warns(UserWarning, match="carries the reports scored before it was packed"):
        with pytest.raises(ConfigError, match="no snapshot could be scored"):
            learning_curve(packed, other, packed / "curve_other", progress=False)


def test_other_options_are_scored_afresh() -> None:
    assert options_key(EVAL) == options_key(dataclasses.replace(EVAL, save_clips=True))
    for change in ({"split": "val"}, {"per_family": 3}, {"sampling": {"steps": 2}}, {"batch": 4}):
        assert options_key(dataclasses.replace(EVAL, **change)) != options_key(EVAL)


def test_damaged_snapshots_are_skipped_with_a_warning(trained, tmp_path) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    step2, step4 = out / "snapshots" / "step_00000002", out / "snapshots" / "step_00000004"
    weights = step2 / "pipeline" / "dit" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    (step4 / "snapshot.json").write_text("{not json")
    shutil.rmtree(out / "snapshots" / "step_00000006")  # the final pipeline (step 6) is scored instead
    with pytest.warns(UserWarning, match="skipping a snapshot") as caught:
        curve = learning_curve(out, EVAL, out / "curve", progress=False)
    said = " ".join(str(w.message) for w in caught)
    assert str(step2) in said and str(step4) in said
    assert [(p["name"], p["step"], p["samples_seen"]) for p in curve["points"]] == [("final", 6, 24)]
    assert [s["folder"] for s in curve["skipped"]] == [str(step4), str(step2)]
    table = (out / "curve" / "curve.md").read_text()
    assert "| 6 (final) | 24 |" in table and f"skipped {step4}" in table


def test_nothing_to_score_names_the_folder_and_the_setting(tmp_path, capsys) -> None:
    empty = tmp_path / "run"
    empty.mkdir()
    assert main(["eval", "curve", str(empty), *EVAL_FLAGS]) == 2
    err = capsys.readouterr().err
    assert str(empty / "snapshots") in err and "loop.snapshot_every" in err
    with pytest.raises(ConfigError, match="not a folder"):
        run_points(tmp_path / "missing")
    (empty / "config.json").write_text(json.dumps({"task": "audio_codec"}))
    with pytest.raises(ConfigError, match="audio_codec"):
        run_points(empty)
    (empty / "config.json").write_text(json.dumps({"task": "joint"}))
    (empty / "snapshots" / "step_00000002").mkdir(parents=True)  # every snapshot damaged, no pipeline
    with pytest.warns(UserWarning, match="step_00000002"), pytest.raises(ConfigError, match="1 skipped"):
        learning_curve(empty, EVAL, empty / "curve", progress=False)


def test_without_matplotlib_the_curve_is_still_written(trained, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    for folder in snapshot_folders(out):  # reports as a previous scoring left them: nothing to generate
        report = {"config": {}, "summary": {"gt": {"bounce": {"impact_f1": 0.7}}, "t2av": {"bounce": {}}}}
        (folder / f"eval_{options_key(EVAL)}").mkdir()
        (folder / f"eval_{options_key(EVAL)}" / "report.json").write_text(json.dumps(report))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    learning_curve(out, EVAL, out / "curve", progress=False)
    assert capsys.readouterr().err.count("needs matplotlib") == 1
    assert (out / "curve" / "curve.json").is_file() and (out / "curve" / "curve.md").is_file()
    assert not (out / "curve" / "curve.png").exists()
