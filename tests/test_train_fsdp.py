"""FSDP2 for the joint DiT: the bf16 mixed-precision policy where training is bf16, and the GPU recipe
``configs/gpu/wan_dac_480p.yaml`` run for two optimizer steps on 2 gloo processes on CPU, over tiny random
Wan and DAC folders and a folder of captioned PyAV clips, then resumed from its first checkpoint to the
same weights."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avgen.clip import AVClip
from avgen.io import write_av
from avgen.train.checkpoint import latest_checkpoint, load_checkpoint
from avgen.train.fsdp import bf16_policy, bf16_training, shard_units

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "gpu" / "wan_dac_480p.yaml"


def test_bf16_parameters_only_where_the_step_is_bf16():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert bf16_training(cuda, "auto") and bf16_training(cpu, "bf16") and bf16_training(cuda, "bf16")
    assert not bf16_training(cpu, "auto") and not bf16_training(cuda, "fp32")
    policy = bf16_policy()
    assert (policy.param_dtype, policy.reduce_dtype) == (torch.bfloat16, torch.float32)
    assert not policy.cast_forward_inputs  # token times and RoPE tables stay float32

    from avgen.model.dit import JointDiT, dit_config

    dit = JointDiT(dit_config("tiny"))
    assert shard_units(dit) == list(dit.blocks) and shard_units(torch.nn.Linear(2, 2)) == []


# --- the recipe on 2 gloo processes ---------------------------------------------------------------------------


def _wan(folder: Path) -> Path:
    """A Wan2.1-layout VAE at width 8 (8x spatial, 4x causal temporal, 4 latent channels, shipped stats)."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0, 0.1, -0.1, 0.2],
        latents_std=[1.0, 0.5, 2.0, 1.5],
    )
    vae.save_pretrained(folder)
    return folder


def _dac(folder: Path) -> Path:
    """A mono 16 kHz DAC with hop 32 and 2 codebooks of dimension 3 (6 latent channels)."""
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    cfg = DacConfig(
        encoder_hidden_size=4,
        downsampling_ratios=[4, 8],
        decoder_hidden_size=8,
        n_codebooks=2,
        codebook_size=16,
        codebook_dim=3,
        sampling_rate=16000,
    )
    DacModel(cfg).save_pretrained(folder)
    return folder


def _footage(folder: Path, n: int, seed: int) -> Path:
    """``n`` 1-s clips at 16 fps (two 0.5-s windows each) with sound and captions.jsonl."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        clip = AVClip(
            video=rng.integers(0, 256, (16, 36, 54, 3), dtype=np.uint8),
            fps=Fraction(16),
            audio=(0.3 * rng.standard_normal((1, 16000))).clip(-1, 1).astype(np.float32),
            sample_rate=16000,
        )
        write_av(folder / f"c{i}.mp4", clip)
        lines.append(json.dumps({"file": f"c{i}.mp4", "caption": f"a clip with sound number {i}"}))
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return folder


CHILD = """
import json, sys
from torch import nn
from avgen.train import fsdp
from avgen.train.recipe import load_recipe, run

seen, shard = {}, fsdp.fully_shard_model

def first_linear(model):
    return next(m for m in model.blocks[0].modules() if isinstance(m, nn.Linear))

def computed(module, args, output):  # (a forward hook: returns None, so the output stays)
    seen["compute"] = str(module.weight.dtype)

def watched(model, device, precision):  # what a block's linear computes with, and what it stores
    model = shard(model, device, precision)
    first_linear(model).register_forward_hook(computed)
    seen["model"] = model
    return model

def stored(step):
    w = first_linear(seen["model"]).weight
    seen["stored"] = [type(w).__name__, str(w.dtype)]

fsdp.fully_shard_model = watched
run(load_recipe(sys.argv[1], sys.argv[4:], out=sys.argv[2]), progress=False, callbacks=(stored,),
    resume=sys.argv[3] == "resume")
with open(f"{sys.argv[2]}/seen-{__import__('os').environ['RANK']}.json", "w") as f:
    json.dump({k: v for k, v in seen.items() if k != "model"}, f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out: Path, overrides: list[str], resume: bool = False) -> None:
    port, procs = _free_port(), []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "RANK": str(rank)}
        env |= {
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        cmd = [sys.executable, "-c", CHILD, str(RECIPE), str(out), "resume" if resume else "new", *overrides]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """The recipe's run folder after 2 steps (a checkpoint after each), and the overrides it ran with."""
    tmp = tmp_path_factory.mktemp("wan_dac")
    wan, dac = _wan(tmp / "wan" / "vae"), _dac(tmp / "dac")
    train, val = _footage(tmp / "footage" / "train", 2, 0), _footage(tmp / "footage" / "val", 1, 1)
    overrides = [  # the recipe as it ships, at toy sizes on CPU processes
        f"joint.model.video_codec={wan}",
        f"joint.model.audio_codec={dac}",
        "joint.model.text_encoder=tiny",
        "joint.model.preset=tiny",
        f"joint.data.root={train}",
        f"joint.data.val_root={val}",
        f"joint.data.cache_dir={tmp / 'latents'}",
        "joint.data.size=[32, 48]",
        "joint.data.duration=0.5",
        "joint.batch_size=2",
        "joint.val_batches=1",
        "joint.eval_samples=0",  # (sampling and scoring a clip is tested elsewhere)
        "distributed.device=cpu",
        "loop.precision=bf16",  # the policy CUDA gets under precision auto
        "loop.steps=2",
        "loop.warmup=1",
        "loop.log_every=1",
        "loop.ckpt_every=1",
        "loop.num_threads=1",
    ]
    _launch(tmp / "run", overrides)
    return tmp / "run", overrides


def test_wan_dac_recipe_trains_two_fsdp_steps_on_cpu(recipe_run):
    out, _ = recipe_run
    for rank in range(2):  # a block computes in bf16 and keeps float32 shards
        seen = json.loads((out / f"seen-{rank}.json").read_text())
        assert seen == {"compute": "torch.bfloat16", "stored": ["DTensor", "torch.float32"]}
    losses = [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 2 and all(np.isfinite(losses))
    state = load_checkpoint(latest_checkpoint(out))
    assert state.step == 2 and state.extra["world_size"] == 2
    from avgen.model.dit import JointDiT

    exported = JointDiT.from_pretrained(out / "pipeline" / "dit")
    assert exported.config.gradient_checkpointing and exported.config.tokens.video_patch == (1, 2, 2)
    full = exported.state_dict()
    assert set(state.modules["model"]) == set(full)
    for k, v in state.modules["model"].items():  # rank 0 wrote whole float32 tensors, not shards
        assert v.dtype == torch.float32 and v.shape == full[k].shape, k
    for codec in ("video_codec", "audio_codec"):
        assert (out / "pipeline" / codec / "config.json").is_file()
    shards = {p.stem for p in (out.parent / "latents").glob("codec-*/shard-*.safetensors")}
    assert shards == {
        f"shard-rank{r}-0000{k}" for r in (0, 1) for k in (0, 1)
    }  # each rank's train, val share


def _tensors(tree: object, prefix: str = "") -> dict[str, torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    return {k: v for key, sub in items for k, v in _tensors(sub, f"{prefix}/{key}").items()}


def test_wan_dac_recipe_resumes_to_the_same_weights(recipe_run, tmp_path):
    out, overrides = recipe_run
    again = tmp_path / "again"  # a copy stopped after step 1
    shutil.copytree(out, again, ignore=shutil.ignore_patterns("pipeline", "metrics.json", "seen-*"))
    shutil.rmtree(latest_checkpoint(again))
    _launch(again, overrides, resume=True)
    straight, resumed = load_checkpoint(latest_checkpoint(out)), load_checkpoint(latest_checkpoint(again))
    assert resumed.step == 2
    for a, b in ((straight.modules, resumed.modules), (straight.optimizers, resumed.optimizers)):
        ta, tb = _tensors(a), _tensors(b)
        assert set(ta) == set(tb) and len(ta) > 0
        for k, v in ta.items():
            assert torch.equal(tb[k], v), k
