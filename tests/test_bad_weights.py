"""Bad weights and bad output fail loudly: int8 / bool / NaN tensors are refused by name on load, a decoder
that yields NaN raises naming the stage, and a checkpoint with flipped bytes is caught by its checksums
(resume falls back to the previous checkpoint and still ends bitwise equal to a run never damaged)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from avgen.errors import CheckpointError, ClipError
from avgen.pipeline import AVPipeline, tiny_pipeline
from avgen.train.checkpoint import STATE_JSON, STATE_TENSORS, latest_checkpoint, load_checkpoint
from avgen.train.recipe import load_recipe, run
from avgen.weights import cast_weights_file, load_weights, save_weights

# --- weights on load --------------------------------------------------------------------------------------


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool, torch.int64])
def test_float_parameter_stored_as_integer_or_bool_is_refused_by_name(tmp_path, dtype) -> None:
    path = tmp_path / "model.safetensors"
    save_weights(_net(), path)
    state = load_file(path)
    state["2.weight"] = (state["2.weight"] * 10).to(dtype)
    save_file(state, path)
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"model\.safetensors.*2\.weight: file {dtype}"):
        load_weights(model, path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # left untouched


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_name(tmp_path, bad) -> None:
    path = tmp_path / "model.safetensors"
    save_weights(_net(), path)
    state = load_file(path)
    state["1.bias"][3] = bad
    save_file(state, path)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: 1 tensor\(s\) hold NaN or inf: 1\.bias"):
        load_weights(_net(), path)


def test_half_precision_storage_still_loads(tmp_path) -> None:
    path = tmp_path / "model.safetensors"
    net = _net()
    save_weights(net, path)
    for dtype in (torch.float16, torch.bfloat16):
        cast_weights_file(path, dtype)
        other = _net().apply(lambda m: [p.data.zero_() for p in m.parameters(recurse=False)])
        load_weights(other, path)
        assert all(p.dtype == torch.float32 for p in other.parameters())
        assert torch.allclose(other[0].weight, net[0].weight, atol=1e-2)


def test_cast_refuses_integer_dtypes_and_overflow(tmp_path) -> None:
    path = tmp_path / "model.safetensors"
    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0] = 1e6  # past float16's 65504
    save_weights(net, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="float dtype"):
        cast_weights_file(path, torch.int8)
    with pytest.raises(CheckpointError, match=r"overflow torch\.float16: 0\.weight; use bfloat16"):
        cast_weights_file(path, torch.float16)
    assert path.read_bytes() == before
    cast_weights_file(path, torch.bfloat16)  # bfloat16 has float32's range


def test_nan_video_decoder_weights_are_refused_when_the_pipeline_loads(tmp_path) -> None:
    src = tiny_pipeline().save_pretrained(tmp_path / "src")
    f = src / "video_codec" / "model.safetensors"
    state = load_file(f)
    key = next(k for k, v in state.items() if k.startswith("decoder.") and v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, f, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"video_codec/model\.safetensors: .*{key}"):
        AVPipeline.from_pretrained(src)


# --- output ----------------------------------------------------------------------------------------------


def _generate(pipe: AVPipeline, steps: int = 2):
    return pipe("a red ball", seconds=0.5, height=32, width=32, steps=steps, progress=False)


@pytest.mark.parametrize("what", ["video", "audio"])
def test_a_decoder_that_outputs_nan_raises_naming_the_codec(what) -> None:
    pipe = tiny_pipeline()
    codec = getattr(pipe, f"{what}_codec")
    decode = codec.decode
    codec.decode = lambda z, **kw: decode(z, **kw) * float("nan")  # e.g. an overflow inside the decoder
    with pytest.raises(ClipError, match=f"the {what} codec decoded non-finite values"):
        _generate(pipe)


def test_a_diverged_dit_raises_instead_of_a_black_video() -> None:
    pipe = tiny_pipeline()
    with torch.no_grad():
        next(pipe.dit.parameters()).fill_(float("inf"))
    with pytest.raises(ClipError, match="video latents"):  # the codec's input check, or _decode's
        _generate(pipe, steps=1)  # with more steps the DiT's own input check stops the next step


# --- checkpoints -----------------------------------------------------------------------------------------

RECIPE = """
task: joint
loop: {steps: 4, lr: 3.0e-3, warmup: 1, log_every: 1, eval_every: 0, ckpt_every: 2, keep_checkpoints: 2,
       ema_decay: 0.9, num_threads: 1}
joint:
  batch_size: 2
  val_batches: 1
  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 64}
  data: {n: 4, val_n: 2, size: [32, 32], duration: 1.0}
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("recipe") / "joint.yaml"
    p.write_text(RECIPE)
    return p


@pytest.fixture(scope="module")
def straight(recipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight")
    assert run(load_recipe(recipe, out=str(out)), progress=False)["step"] == 4
    return out


def _copy(straight: Path, dst: Path) -> Path:
    shutil.copytree(straight, dst)
    return dst / "checkpoints"


def _flip_a_byte(file: Path, prefix: str) -> str:
    """Flip one bit in the middle of the data of the first tensor named ``prefix...``; returns its name."""
    raw = bytearray(file.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    name = next(k for k in sorted(header) if k.startswith(prefix))
    begin, end = header[name]["data_offsets"]
    raw[8 + n + (begin + end) // 2] ^= 0x01
    file.write_bytes(bytes(raw))
    return name


def _assert_same_state(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa.step == sb.step and sa.extra == sb.extra and sa.schedulers == sb.schedulers
    for name in sa.modules:
        for k, v in sa.modules[name].items():
            assert torch.equal(v, sb.modules[name][k]), f"{name}/{k}"
    for pid, st in sa.optimizers["model"]["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(sb.optimizers["model"]["state"][pid][k]))


def test_checkpoints_carry_checksums(straight) -> None:
    meta = json.loads((latest_checkpoint(straight) / STATE_JSON).read_text())
    sums = meta["checksums"]
    assert sums["algorithm"] == "sha256" and set(sums["tensors"]) == set(
        load_file(latest_checkpoint(straight) / STATE_TENSORS)
    )


def test_flipped_bytes_are_caught_and_resume_falls_back(recipe, straight, tmp_path) -> None:
    ckpts = _copy(straight, tmp_path / "run")
    name = _flip_a_byte(ckpts / "step_00000004" / STATE_TENSORS, "module/model/")
    with pytest.raises(CheckpointError, match=rf"step_00000004: damaged checkpoint .*{name}"):
        load_checkpoint(ckpts / "step_00000004")
    with pytest.warns(UserWarning, match="step_00000004") as record:
        assert latest_checkpoint(tmp_path / "run").name == "step_00000002"
    assert len(record) == 1

    with pytest.warns(UserWarning, match="step_00000004"):
        result = run(load_recipe(recipe, out=str(tmp_path / "run")), resume=True, progress=False)
    assert result["status"] == "done" and result["step"] == 4
    _assert_same_state(latest_checkpoint(straight), ckpts / "step_00000004")  # bitwise resume still holds


def test_a_flipped_byte_in_the_json_is_caught(straight, tmp_path) -> None:
    ckpts = _copy(straight, tmp_path / "run")
    f = ckpts / "step_00000004" / STATE_JSON
    f.write_text(f.read_text().replace('"step": 4', '"step": 5'))
    with pytest.raises(CheckpointError, match=f"{STATE_JSON} does not match its checksum"):
        load_checkpoint(ckpts / "step_00000004")


def test_every_checkpoint_damaged_is_a_clear_error(straight, tmp_path) -> None:
    ckpts = _copy(straight, tmp_path / "run")
    for step in ("step_00000002", "step_00000004"):
        _flip_a_byte(ckpts / step / STATE_TENSORS, "optim/")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="every checkpoint is damaged"):
        latest_checkpoint(tmp_path / "run")


def test_checkpoints_without_checksums_still_load(straight, tmp_path) -> None:
    ckpts = _copy(straight, tmp_path / "run")
    f = ckpts / "step_00000004" / STATE_JSON
    meta = json.loads(f.read_text())
    del meta["checksums"]
    f.write_text(json.dumps(meta))
    assert latest_checkpoint(tmp_path / "run").name == "step_00000004"
    _assert_same_state(latest_checkpoint(straight), ckpts / "step_00000004")
