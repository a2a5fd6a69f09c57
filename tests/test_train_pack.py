"""``avgen train pack``: a run's resume state in 16 bits, which a resume continues from (same steps, the
weights within float16 rounding of a run never packed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avgen.cli import main as cli_main
from avgen.errors import CheckpointError
from avgen.train.checkpoint import latest_checkpoint, load_checkpoint
from avgen.train.pack import half_state, pack_run
from avgen.train.recipe import load_recipe, run

RECIPE = """
task: joint
loop: {steps: 6, lr: 3.0e-3, warmup: 2, log_every: 1, eval_every: 0, ckpt_every: 3, keep_checkpoints: 1,
       ema_decay: 0.9, num_threads: 1}
joint:
  batch_size: 4
  val_batches: 1
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}
  data: {n: 8, val_n: 2, size: [32, 32], duration: 1.0}
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("recipe") / "joint.yaml"
    p.write_text(RECIPE)
    return p


@pytest.fixture(scope="module")
def halfway(recipe, tmp_path_factory) -> Path:
    """A run stopped at its step-3 checkpoint."""
    out = tmp_path_factory.mktemp("halfway")
    result = run(load_recipe(recipe, ["loop.steps=3"], out=str(out)), progress=False)
    assert result["step"] == 3
    return out


def test_pack_halves_the_bytes_and_keeps_counters(halfway, tmp_path):
    dest = tmp_path / "packed"
    assert cli_main(["train", "pack", str(halfway), str(dest)]) == 0
    full, packed = latest_checkpoint(halfway), latest_checkpoint(dest)
    assert packed is not None and packed.name == full.name
    assert (dest / "config.json").read_bytes() == (halfway / "config.json").read_bytes()
    assert (dest / "log.jsonl").read_bytes() == (halfway / "log.jsonl").read_bytes()
    size = lambda f: (f / "train_state.safetensors").stat().st_size  # noqa: E731
    assert size(packed) < 0.6 * size(full)
    a, b = load_checkpoint(full), load_checkpoint(packed)
    for name, sd in a.modules.items():
        for k, v in sd.items():
            w = b.modules[name][k]
            if v.is_floating_point():
                assert w.dtype == torch.float16, f"{name}/{k}"
                torch.testing.assert_close(w.float(), v.float(), rtol=2e-3, atol=1e-4)
            else:
                assert torch.equal(w, v)
    for pid, st in a.optimizers["model"]["state"].items():
        got = b.optimizers["model"]["state"][pid]
        assert torch.equal(torch.as_tensor(got["step"]), torch.as_tensor(st["step"]))
        assert got["step"].dtype == st["step"].dtype
        assert got["exp_avg_sq"].dtype == torch.bfloat16
    assert a.rng.keys() == b.rng.keys() and a.extra == b.extra and a.schedulers == b.schedulers


def test_weights_beyond_float16_range_go_to_bfloat16():
    from avgen.train.checkpoint import TrainState

    state = TrainState(step=1, modules={"m": {"big": torch.tensor([1e6, 1.0]), "n": torch.tensor([3])}})
    half = half_state(state).modules["m"]
    assert half["big"].dtype == torch.bfloat16 and torch.isfinite(half["big"].float()).all()
    assert half["n"].dtype == torch.int64


def test_resume_from_a_pack_continues_the_run(recipe, halfway, tmp_path):
    dest = tmp_path / "moved"
    pack_run(halfway, dest)
    result = run(load_recipe(recipe, out=str(dest)), resume=True, progress=False)
    assert result["status"] == "done" and result["step"] == 6
    steps = [json.loads(line).get("step") for line in (dest / "log.jsonl").read_text().splitlines()]
    assert steps[:3] == [1, 2, 3] and 6 in steps  # the log goes on in one file
    straight = tmp_path / "straight"
    run(load_recipe(recipe, out=str(straight)), progress=False)
    a, b = load_checkpoint(latest_checkpoint(straight)), load_checkpoint(latest_checkpoint(dest))
    assert a.step == b.step == 6
    for k, v in a.modules["model"].items():
        if v.is_floating_point():
            assert b.modules["model"][k].dtype == v.dtype  # cast back on resume
            torch.testing.assert_close(b.modules["model"][k], v, rtol=0.05, atol=2e-3)


def test_pack_refuses_what_it_cannot_carry(halfway, tmp_path):
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        pack_run(tmp_path, tmp_path / "x")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        pack_run(empty, tmp_path / "x")
    with pytest.raises(CheckpointError, match="the run folder itself"):
        pack_run(halfway, halfway)
    assert not (tmp_path / "x").exists()
