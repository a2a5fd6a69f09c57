"""Hostile input (issue 43, class 6): every item ends in one line naming the argument or file, the problem and
the fix (exit status 2), before any sampling where it can be known before; nothing is left half-written.

The CLI runs in-process (``avgen.cli.main``); where a case needs a finished generation, the pipeline is a
stub, so no test here samples."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

import avgen.atomic
import avgen.generate
from avgen.cli import main, printable
from avgen.clip import AVClip
from avgen.config import from_dict
from avgen.errors import CheckpointError, ConfigError
from avgen.model.dit import DiTConfig
from avgen.pipeline_config import shipped_path
from avgen.train import checkpoint as ckpt
from avgen.train.loop_config import LoopConfig
from avgen.train.recipe import load_recipe
from avgen.train.run_log import RunLog

TINY = shipped_path("avgen-tiny")
ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "examples" / "small_dit_synth.yaml"


@pytest.fixture
def no_model(monkeypatch):
    """Loading the pipeline fails the test: the refusal must come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before the input was checked")

    monkeypatch.setattr("avgen.pipeline.AVPipeline.from_pretrained", refuse)


@pytest.fixture
def stub_model(monkeypatch):
    """A pipeline that returns a 1-s 16x16 clip at once, for the cases that need a finished generation."""

    def load(*args, **kwargs):
        def call(prompt, **kw):
            video = np.zeros((24, 16, 16, 3), np.uint8)
            audio = np.zeros((1, 16000), np.float32)
            return AVClip(video=video, fps=24, audio=audio, sample_rate=16000, metadata={"prompt": prompt})

        return call

    monkeypatch.setattr("avgen.pipeline.AVPipeline.from_pretrained", load)


def _generate(tmp_path: Path, *args: str, out: str | Path = "a.mp4") -> list[str]:
    return ["generate", "a red ball bounces", "-o", str(tmp_path / out), *args]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("avgen "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- write failures ---------------------------------------------------------------------------------------


def test_read_only_folder(tmp_path, monkeypatch, capsys, no_model) -> None:
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".part"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(avgen.atomic.os, "open", read_only)
    assert main(_generate(tmp_path)) == 2
    _one_line_error(capsys, "-o", "read-only", "pick a writable folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-555 folder")
def test_folder_without_permission(tmp_path, capsys, no_model) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main(_generate(tmp_path, out="locked/a.mp4")) == 2
    _one_line_error(capsys, "-o", "no permission")


def test_full_disk(tmp_path, monkeypatch, capsys, no_model) -> None:
    usage = SimpleNamespace(total=10**9, used=10**9 - 4096, free=4096)
    monkeypatch.setattr(avgen.atomic.shutil, "disk_usage", lambda path: usage)
    assert main(_generate(tmp_path)) == 2
    _one_line_error(capsys, "-o", "4.0 KiB free", "free some space")


def test_disk_filling_while_writing_is_one_line(tmp_path, monkeypatch, capsys, stub_model) -> None:
    from avgen.writer import AVWriter

    real_mux = AVWriter._mux

    def full(self, packets):
        def failing():
            raise OSError(errno.ENOSPC, "No space left on device")
            yield

        return real_mux(self, failing())  # as the container's first write would fail

    monkeypatch.setattr(AVWriter, "_mux", full)
    assert main(_generate(tmp_path)) == 2
    _one_line_error(capsys, "a.mp4")
    assert os.listdir(tmp_path) == []  # no .part left


def test_out_is_a_folder(tmp_path, capsys, no_model) -> None:
    (tmp_path / "d").mkdir()
    assert main(_generate(tmp_path, out="d")) == 2
    _one_line_error(capsys, "is a folder")


def test_300_character_name(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, out="a" * 300 + ".mp4")) == 2
    _one_line_error(capsys, "-o", "too long")


def test_name_whose_temp_file_is_too_long(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, out="a" * 246 + ".mp4")) == 2  # 250 bytes: fine, its temp name is not
    _one_line_error(capsys, "-o", "temp name", "shorter name")


def test_out_without_a_video_extension(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, out="a.wav")) == 2
    _one_line_error(capsys, ".mp4")


def test_out_into_missing_folder(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, out="missing/a.mp4")) == 2
    _one_line_error(capsys, "does not exist")


def test_unwritable_train_out(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("")
    assert main(["train", str(RECIPE), "--out", str(tmp_path / "file" / "run")]) == 2
    _one_line_error(capsys, "--out", "a file")


def test_unwritable_train_out_read_only(tmp_path, monkeypatch, capsys) -> None:
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".part"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(avgen.atomic.os, "open", read_only)
    assert main(["train", str(RECIPE), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "--out", "read-only")
    assert not (tmp_path / "run").exists()


def test_export_into_unwritable_folder(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("")
    assert main(["model", "export", str(TINY), str(tmp_path / "file" / "dst")]) == 2
    _one_line_error(capsys, "DST")


# -- arguments --------------------------------------------------------------------------------------------


def test_invalid_utf8_prompt(tmp_path, capsys, no_model) -> None:
    prompt = b"a red \xff\xfe ball".decode("utf-8", "surrogateescape")  # how Python hands over such argv
    assert main(["generate", prompt, "-o", str(tmp_path / "a.mp4")]) == 2
    _one_line_error(capsys, "prompt", "UTF-8")


@pytest.mark.parametrize("seed", [str(2**64), str(-(2**63) - 1)])
def test_seed_out_of_range(tmp_path, capsys, no_model, seed) -> None:
    assert main(_generate(tmp_path, "--seed", seed)) == 2
    _one_line_error(capsys, "--seed", "2**64 - 1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, "--device", "cuda")) == 2
    _one_line_error(capsys, "--device cuda", "--device cpu")


def test_guidance_inf(tmp_path, capsys, no_model) -> None:
    with pytest.raises(SystemExit) as e:  # there is no --guidance: argparse says so, exit 2
        main(_generate(tmp_path, "--guidance", "inf"))
    assert e.value.code == 2
    capsys.readouterr()
    assert main(_generate(tmp_path, "--video-guidance", "inf")) == 2
    _one_line_error(capsys, "--video-guidance inf", "finite")


def test_zero_steps(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, "--steps", "0")) == 2
    _one_line_error(capsys, "--steps 0", ">= 1")


def test_zero_seconds_and_size(tmp_path, capsys, no_model) -> None:
    assert main(_generate(tmp_path, "--seconds", "0")) == 2
    _one_line_error(capsys, "--seconds 0")
    assert main(_generate(tmp_path, "--size", "0x0")) == 2
    _one_line_error(capsys, "--size", "height")


# -- configs and checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize(("depth", "hint"), [(6.0, "write 6"), (6.5, "whole number"), (True, "whole number")])
def test_float_or_bool_depth_in_a_pipeline_config(tmp_path, capsys, no_model, depth, hint) -> None:
    folder = tmp_path / "pipe"
    shutil.copytree(TINY, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    cfg = json.loads((folder / "dit" / "config.json").read_text())
    (folder / "dit" / "config.json").write_text(json.dumps({**cfg, "depth": depth}))
    assert main(_generate(tmp_path, "--pipeline", str(folder))) == 2
    _one_line_error(capsys, "dit/config.json.depth", hint)


def test_config_types_are_checked() -> None:
    with pytest.raises(ConfigError, match="depth: expected a whole number"):
        from_dict(DiTConfig, {"depth": True})
    with pytest.raises(ConfigError, match="bridge_window: expected a number"):
        from_dict(DiTConfig, {"bridge_window": "0.1"})
    with pytest.raises(ConfigError, match=r"rope_axes\[1\]: expected a whole number"):
        from_dict(DiTConfig, {"rope_axes": [24, 20.5, 20]})
    assert from_dict(DiTConfig, {"bridge_window": 1}).bridge_window == 1.0  # an int is a fine float


def test_loop_steps_not_whole(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"loop\.steps: expected a whole number, got 1\.5"):
        load_recipe(RECIPE, ["loop.steps=1.5"])
    with pytest.raises(ConfigError, match=r"loop\.steps must be a whole number"):
        LoopConfig(steps=1.5)
    with pytest.raises(ConfigError, match=r"loop\.compile"):
        LoopConfig(compile=1)


def test_set_a_section_to_a_list(capsys) -> None:
    assert main(["train", str(RECIPE), "--set", "loop=[1,2]"]) == 2
    _one_line_error(capsys, "--set 'loop=[1,2]'", "section", "loop.")


def test_binary_recipe(tmp_path, capsys) -> None:
    recipe = tmp_path / "weights.yaml"
    recipe.write_bytes(b"\x80\x00\xff\xfe" + bytes(range(256)))
    assert main(["train", str(recipe)]) == 2
    _one_line_error(capsys, "weights.yaml", "not a YAML text file")


def _checkpoint(run: Path, step: int) -> Path:
    state = ckpt.TrainState(step=step, modules={"model": {"w": torch.zeros(3)}})
    return ckpt.save_checkpoint(run, state, keep=5)


@pytest.mark.parametrize("step", [4.5, "4", True, 3, -1])
def test_bad_step_in_train_state(tmp_path, step) -> None:
    _checkpoint(tmp_path, 2)
    folder = _checkpoint(tmp_path, 4)
    f = folder / ckpt.STATE_JSON
    meta = json.loads(f.read_text())
    meta["step"] = step
    meta[ckpt.CHECKSUMS]["json"] = ckpt._json_digest(meta)  # edited with care: the checksum still matches
    f.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"step_00000004: damaged checkpoint .*gives step"):
        ckpt.load_checkpoint(folder)
    with pytest.warns(UserWarning, match="step_00000004"):
        assert ckpt.latest_checkpoint(tmp_path).name == "step_00000002"  # resume from the older one


# -- media ------------------------------------------------------------------------------------------------


def test_nan_wav_names_the_file(tmp_path, capsys, no_model) -> None:
    wav = np.zeros(16000, np.float32)
    wav[100] = np.nan
    sf.write(tmp_path / "nan.wav", wav, 16000, subtype="FLOAT")
    assert main(_generate(tmp_path, "--audio", str(tmp_path / "nan.wav"))) == 2
    _one_line_error(capsys, "nan.wav", "--audio", "NaN")


def test_unreadable_file_names_the_file(tmp_path, monkeypatch, capsys, no_model) -> None:
    sf.write(tmp_path / "m000.wav", np.zeros(16000, np.float32), 16000)

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(avgen.generate, "open", denied, raising=False)  # mode 000, even for root
    assert main(_generate(tmp_path, "--audio", str(tmp_path / "m000.wav"))) == 2
    _one_line_error(capsys, "m000.wav", "--audio", "Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_mode_000_file(tmp_path, capsys, no_model) -> None:
    sf.write(tmp_path / "m000.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "m000.wav").chmod(0)
    assert main(_generate(tmp_path, "--audio", str(tmp_path / "m000.wav"))) == 2
    _one_line_error(capsys, "m000.wav", "Permission denied")


def test_info_escapes_control_characters_in_tags(tmp_path, capsys) -> None:
    evil = "hi\x1b[2J\x1b]0;owned\x07\x1b[31mred\x9b1m\u202eabc\nnext"
    clip = AVClip(
        video=np.zeros((2, 16, 16, 3), np.uint8),
        fps=24,
        audio=np.zeros((1, 1333), np.float32),
        sample_rate=16000,
        metadata={"prompt": evil, "key\x1b[1m": "v"},
    )
    clip.save(tmp_path / "tags.mp4")
    assert main(["info", str(tmp_path / "tags.mp4")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert "tag prompt: hi\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mred\\x9b1m\\u202eabc\\nnext" in out
    assert "tag key\\x1b[1m: v" in out
    assert main(["info", "--json", str(tmp_path / "tags.mp4")]) == 0
    assert "\x1b" not in capsys.readouterr().out
    assert printable("plain é 日本") == "plain é 日本"


# -- interrupted and resumed runs -------------------------------------------------------------------------


def test_sigterm_while_writing_leaves_no_part_file(tmp_path, monkeypatch, capsys, stub_model) -> None:
    from avgen.writer import AVWriter

    real = AVWriter.write_video

    def killed(self, frames):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises at the next bytecode
        return real(self, frames)

    monkeypatch.setattr(AVWriter, "write_video", killed)
    before = signal.getsignal(signal.SIGTERM)
    assert main(_generate(tmp_path)) == 143
    assert "terminated" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # neither a.mp4 nor .a.mp4.XXXXXXXX.part
    assert signal.getsignal(signal.SIGTERM) == before


def test_run_log_drops_steps_past_the_resumed_checkpoint(tmp_path) -> None:
    records = [{"step": s, "loss": 1.0 / s} for s in range(1, 7)]
    records.insert(4, {"step": 4, "eval": {"loss": 0.5}})
    lines = [json.dumps(r) for r in [*records, {"step": 6, "final": {"loss": 0.1}}]]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + '\n{"step": 7, "lo')  # and a torn line
    log = RunLog(tmp_path, enabled=True, start_step=4)
    log.write({"step": 5, "loss": 0.2})
    log.close()
    got = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in got] == [1, 2, 3, 4, 4, 5]
    assert got[4] == {"step": 4, "eval": {"loss": 0.5}} and got[-1]["loss"] == 0.2


def test_run_log_of_a_fresh_start_holds_only_its_own_steps(tmp_path) -> None:
    (tmp_path / "log.jsonl").write_text(
        '{"step": 3, "loss": 1.0}\n'
    )  # a run killed before its first checkpoint
    RunLog(tmp_path, enabled=True).close()
    assert (tmp_path / "log.jsonl").read_text() == ""
