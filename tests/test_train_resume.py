"""Kill-and-resume is exact: a run SIGKILLed after a checkpoint and resumed ends bitwise equal to one never
killed (weights, EMA, optimizer); torn checkpoints are ignored; LoRA fine-tuning from a pipeline folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avgen.errors import CheckpointError
from avgen.train.checkpoint import complete_checkpoints, latest_checkpoint, load_checkpoint
from avgen.train.recipe import load_recipe, run

RECIPE = """
task: joint
loop: {steps: 8, lr: 3.0e-3, warmup: 2, grad_accum: 2, log_every: 1, eval_every: 4, ckpt_every: 3,
       keep_checkpoints: 2, ema_decay: 0.9, num_threads: 1}
joint:
  batch_size: 4
  caption_dropout: 0.3
  val_batches: 1
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}
  data: {n: 10, val_n: 2, size: [32, 32], duration: 1.0}
"""

CHILD = """
import os, signal, sys
from avgen.train.recipe import load_recipe, run

def kill(step):
    if step == 5:  # after the step-3 checkpoint, before the step-6 one
        os.kill(os.getpid(), signal.SIGKILL)

run(load_recipe(sys.argv[1], out=sys.argv[2]), progress=False, callbacks=(kill,))
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("recipe") / "joint.yaml"
    p.write_text(RECIPE)
    return p


@pytest.fixture(scope="module")
def straight(recipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight")
    result = run(load_recipe(recipe, out=str(out)), progress=False)
    assert result["status"] == "done" and result["step"] == 8
    return out


def _assert_same_state(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa.step == sb.step
    assert set(sa.modules) == set(sb.modules) == {"model", "ema"}
    for name in sa.modules:
        assert set(sa.modules[name]) == set(sb.modules[name])
        for k, v in sa.modules[name].items():
            assert torch.equal(v, sb.modules[name][k]), f"{name}/{k}"
    oa, ob = sa.optimizers["model"], sb.optimizers["model"]
    assert oa["param_groups"] == ob["param_groups"]
    for pid, st in oa["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(ob["state"][pid][k])), f"optim {pid}/{k}"
    assert sa.extra["data"] == sb.extra["data"] and sa.schedulers == sb.schedulers


def test_sigkill_then_resume_is_bitwise_identical(recipe, straight, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(recipe), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert latest_checkpoint(out).name == "step_00000003"
    assert not (out / "pipeline").exists()

    with pytest.raises(CheckpointError, match="--resume"):
        run(load_recipe(recipe, out=str(out)), progress=False)
    result = run(load_recipe(recipe, out=str(out)), resume=True, progress=False)
    assert result == {**result, "status": "done", "step": 8}
    _assert_same_state(latest_checkpoint(straight), latest_checkpoint(out))
    assert [p.name for p in complete_checkpoints(out)] == ["step_00000006", "step_00000008"]  # pruned to 2

    # the logged losses of steps 6..8 match the uninterrupted run's exactly
    def losses(run_dir: Path) -> dict[int, float]:
        lines = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in lines if "loss" in r}

    la, lb = losses(straight), losses(out)
    assert [la[s] for s in (6, 7, 8)] == [lb[s] for s in (6, 7, 8)]
    assert (
        json.loads((out / "metrics.json").read_text())["final"]
        == json.loads((straight / "metrics.json").read_text())["final"]
    )


def test_torn_checkpoints_are_ignored(straight, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(straight / "checkpoints", run_dir / "checkpoints")
    root = run_dir / "checkpoints"
    (root / ".step_00000009.tmp").mkdir()  # killed while writing
    torn = root / "step_00000010"
    torn.mkdir()
    (torn / "train_state.json").write_text("{}")  # no tensors file: incomplete
    (root / "latest.json").write_text("{not json")
    assert latest_checkpoint(run_dir).name == "step_00000008"


def test_sigterm_writes_a_checkpoint_and_stops(recipe, tmp_path):
    out = tmp_path / "term"

    def term(step: int) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    result = run(load_recipe(recipe, out=str(out)), progress=False, callbacks=(term,))
    assert result["status"] == "interrupted" and result["step"] == 2
    assert latest_checkpoint(out).name == "step_00000002"


def test_lora_finetune_from_a_pipeline_folder(straight, tmp_path):
    from avgen.pipeline import AVPipeline

    text = RECIPE.replace(
        "model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}",
        f"model: {{init_from: {straight / 'pipeline'}}}\n  lora: {{rank: 2, alpha: 4.0}}",
    )
    path = tmp_path / "lora.yaml"
    path.write_text(text)
    cfg = load_recipe(path, ["loop.steps=2", "loop.ckpt_every=2"], out=str(tmp_path / "ft"))
    assert run(cfg, progress=False)["status"] == "done"
    state = load_checkpoint(latest_checkpoint(tmp_path / "ft"))
    assert state.modules["model"] and all(".lora_" in k for k in state.modules["model"])  # adapters only
    assert (tmp_path / "ft" / "lora" / "adapters.safetensors").is_file()
    pipe = AVPipeline.from_pretrained(tmp_path / "ft" / "pipeline")  # merged: a plain pipeline folder
    base = AVPipeline.from_pretrained(straight / "pipeline")
    assert set(pipe.dit.state_dict()) == set(base.dit.state_dict())
