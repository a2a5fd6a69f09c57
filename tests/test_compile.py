"""torch.compile through the loop's ``compile`` switch and ``AVPipeline.compile`` (the DiT's compiled blocks
against eager: tests/test_dit_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from avgen.errors import ConfigError
from avgen.train.loop import train
from avgen.train.loop_config import LoopConfig
from avgen.train.recipe import load_recipe, run

RECIPE = """
task: joint
loop: {steps: 3, lr: 3.0e-3, warmup: 1, log_every: 1, eval_every: 0, ckpt_every: 3, num_threads: 1,
       compile: COMPILE}
joint:
  batch_size: 4
  val_batches: 0
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}
  data: {n: 8, val_n: 0, size: [32, 32], duration: 1.0}
"""


def _losses(tmp_path: Path, compiled: bool) -> list[float]:
    recipe = tmp_path / f"joint_{compiled}.yaml"
    recipe.write_text(RECIPE.replace("COMPILE", str(compiled).lower()))
    out = tmp_path / f"run_{compiled}"
    result = run(load_recipe(recipe, out=str(out)), progress=False)
    assert result["status"] == "done"
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_loop_compile_trains_the_joint_model_like_eager(tmp_path, monkeypatch) -> None:
    """``loop.compile`` through a whole (tiny) joint run: the same losses as eager. The backend is
    aot_eager here (dynamo capture + AOT autograd, no C++ build); tests/test_dit_model.py checks inductor."""
    eager = _losses(tmp_path, False)
    calls = []
    real_compile = torch.compile

    def recording_compile(fn, *args, **kwargs):
        calls.append(fn)
        return real_compile(fn, *args, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", recording_compile)
    compiled = _losses(tmp_path, True)
    assert len(calls) == 2  # the tiny preset's two blocks
    assert len(compiled) == len(eager) == 3
    assert compiled == pytest.approx(eager, rel=1e-4)


class _PlainTask:
    name = "plain"
    model = nn.Linear(2, 2)


def test_loop_compile_refuses_a_model_without_blocks(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"loop.compile.*Linear.*compile_blocks"):
        train(_PlainTask(), LoopConfig(steps=1, compile=True), tmp_path, progress=False)


def test_pipeline_compile_generates_the_same_clip() -> None:
    """``AVPipeline.compile`` passes its options to torch.compile (aot_eager: no C++ build in the suite)."""
    from avgen.pipeline import tiny_pipeline

    eager = tiny_pipeline()(["a red ball"], seed=3, steps=2, progress=False)[0]
    pipe = tiny_pipeline()
    assert pipe.compile(backend="aot_eager") is pipe
    assert all(b._compiled_call_impl is not None for b in pipe.dit.blocks)
    clip = pipe(["a red ball"], seed=3, steps=2, progress=False)[0]
    assert abs(clip.video.astype(int) - eager.video.astype(int)).max() <= 1
    assert abs(clip.audio - eager.audio).max() < 1e-4
