"""Validation losses that compare runs: ``val_mse`` per task (t2av, v2a, a2v) under fixed flow settings,
whatever flow settings the run trained with; ``avgen eval loss`` scores any pipeline folder with them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from avgen.cli import main as avgen_main
from avgen.config import from_dict
from avgen.errors import ConfigError
from avgen.train.joint import JointTask
from avgen.train.joint_config import JointConfig
from avgen.train.joint_validation import VALIDATION_FLOWS, VALIDATION_SEED, validation_losses
from avgen.train.validate import main as loss_main

CFG = {
    "batch_size": 4,
    "caption_dropout": 0.0,
    "val_batches": 2,
    "model": {"preset": "tiny", "video_codec": "tiny", "audio_codec": "tiny", "text_encoder": "tiny"},
    "data": {"n": 4, "val_n": 6, "size": [32, 32], "duration": 1.0, "families": {"bounce": 0.5, "keys": 0.5}},
}
RECIPE = """
task: joint
joint:
  batch_size: 4
  val_batches: 2
  flow: {clean_prob: 0.75, shift: 3.0}
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny}
  data: {n: 4, val_n: 6, size: [32, 32], duration: 1.0, families: {bounce: 0.5, keys: 0.5}}
"""


def _task(seed: int = 0, **extra) -> JointTask:
    return JointTask(from_dict(JointConfig, {**CFG, **extra}), seed=seed)


def _perturbed(task: JointTask) -> JointTask:
    """A fresh DiT's output layer is zero (it predicts 0 whatever it sees): random weights instead."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in task.model.parameters():
            p.normal_(0.0, 0.05)
    return task


def _flat(mse: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{task}.{term}": v for task, terms in mse.items() for term, v in terms.items()}


def test_val_mse_is_the_same_whatever_flow_and_seed_the_run_trained_with() -> None:
    plain = _task()
    other = _task(
        seed=7, flow={"clean_prob": 0.9, "independent_prob": 0.8, "shift": 3.0, "video_weight": 2.0}
    )
    other.model.load_state_dict(plain.model.state_dict())
    a, b = validation_losses(plain, plain.model), validation_losses(other, other.model)
    assert a["val_mse"] == b["val_mse"]  # fixed settings, fixed noise: bit-for-bit
    assert a["val_loss"] != pytest.approx(b["val_loss"], rel=1e-3)  # the run's own loss does move
    assert set(a["val_mse"]) == {"t2av", "v2a", "a2v"}
    assert set(a["val_mse"]["t2av"]) == {"video", "audio"}
    assert set(a["val_mse"]["v2a"]) == {"audio"} and set(a["val_mse"]["a2v"]) == {"video"}
    values = [v for terms in a["val_mse"].values() for v in terms.values()]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert 0 < a["val_clips"] <= 6
    # the training-time evaluation reports the same numbers
    assert plain.evaluate(plain.model, 0, Path("unused"))["val_mse"] == a["val_mse"]


def test_each_task_gives_its_modality_clean() -> None:
    task = _perturbed(_task())
    indices = [i for i, b in enumerate(task.val_set.buckets) if b == task.val_set.buckets[0]][:4]
    seeds = [task.sample_seed(-1, i, seed=VALIDATION_SEED) for i in indices]
    logs = {}
    for name, (flow, _) in VALIDATION_FLOWS.items():
        _, logs[name] = task.batch_loss(task.model, task.val_set, indices, seeds, 0.0, flow=flow)
    assert float(logs["v2a"]["video_mse"]) == 0.0 and float(logs["v2a"]["audio_mse"]) > 0  # frames given
    assert float(logs["a2v"]["audio_mse"]) == 0.0 and float(logs["a2v"]["video_mse"]) > 0  # sound given
    assert float(logs["t2av"]["video_mse"]) > 0 and float(logs["t2av"]["audio_mse"]) > 0
    # the same timesteps and noise: the given frames are what changes the sound's prediction
    assert float(logs["v2a"]["audio_mse"]) != float(logs["t2av"]["audio_mse"])


def test_avgen_eval_loss_scores_a_pipeline_folder(tmp_path: Path, capsys) -> None:
    task = _perturbed(_task())
    task.export(task.model, tmp_path / "run")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "loss" / "val.json"
    assert (
        avgen_main(
            ["eval", "loss", str(recipe), "--pipeline", str(tmp_path / "run" / "pipeline"), "--out", str(out)]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert _flat(result["val_mse"]) == pytest.approx(
        _flat(validation_losses(task, task.model)["val_mse"]), rel=1e-4
    )
    assert result["pipeline"] == str(tmp_path / "run" / "pipeline") and result["val_clips"] > 0
    assert "t2av video" in capsys.readouterr().out

    with pytest.raises(ConfigError, match="val_n"):
        loss_main(
            [
                str(recipe),
                "--pipeline",
                str(tmp_path / "run" / "pipeline"),
                "--set",
                "joint.data.val_n=0",
            ]
        )
    with pytest.raises(ConfigError, match="codec"):
        bad = tmp_path / "codec.yaml"
        bad.write_text("task: audio_codec\ncodec: {data: " + str(tmp_path) + "}\n")
        loss_main([str(bad), "--pipeline", str(tmp_path / "run" / "pipeline")])
