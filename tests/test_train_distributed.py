"""torch.distributed on CPU: 2 gloo processes (DDP, and FSDP2 fully_shard) follow the same loss curve as
one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from avgen.train.checkpoint import latest_checkpoint, load_checkpoint

RECIPE = """
task: joint
loop: {steps: 4, lr: 3.0e-3, warmup: 1, log_every: 1, eval_every: 0, ckpt_every: 4, ema_decay: 0.5,
       num_threads: 1}
distributed: {device: cpu}
joint:
  batch_size: 4
  caption_dropout: 0.3
  val_batches: 1
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}
  data: {n: 8, val_n: 2, size: [32, 32], duration: 1.0}
"""

CHILD = """
import functools, sys
import torch
from avgen.train.recipe import load_recipe, run
# loop.compile under test: dynamo capture + AOT autograd, without building C++ (tests/test_dit_model.py
# checks inductor itself)
torch.compile = functools.partial(torch.compile, backend="aot_eager")
run(load_recipe(sys.argv[1], sys.argv[3:], out=sys.argv[2]), progress=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(recipe: Path, out: Path, world: int, overrides: list[str]) -> None:
    port = _free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        if world > 1:
            env |= {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)}
            env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        cmd = [sys.executable, "-c", CHILD, str(recipe), str(out), *overrides]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]


def _curve(out: Path) -> list[float]:
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if "loss" in r]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("dist") / "joint.yaml"
    p.write_text(RECIPE)
    return p


@pytest.fixture(scope="module")
def single(recipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    _launch(recipe, out, 1, [])
    return out


@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "ddp+compile", "fsdp+compile"])
def test_two_gloo_processes_match_one(recipe, single, tmp_path, strategy):
    out = tmp_path / strategy
    name, _, compiled = strategy.partition("+")
    _launch(recipe, out, 2, [f"distributed.strategy={name}", f"loop.compile={str(bool(compiled)).lower()}"])
    one, two = _curve(single), _curve(out)
    assert len(one) == len(two) == 4
    assert one[-1] != one[0]  # the model is learning, so equal curves mean equal updates
    for a, b in zip(one, two):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6)
    sa, sb = load_checkpoint(latest_checkpoint(single)), load_checkpoint(latest_checkpoint(out))
    assert sb.extra["world_size"] == 2 and sorted(sb.rng) == [0, 1]  # rank 0 wrote every rank's RNG
    for name in ("model", "ema"):
        for k, v in sa.modules[name].items():
            assert (sb.modules[name][k] - v).abs().max() < 1e-4, f"{name}/{k}"
    assert (out / "pipeline" / "pipeline.json").is_file()
