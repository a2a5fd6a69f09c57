"""Generation limits (issue 43, class 1): the memory estimate grows with every size, counts tokens as the
packer does, and `avgen generate` refuses what does not fit before any weight loads, naming the flag and
the override. The memory there is is always injected: no test reads this machine's."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avgen import limits
from avgen.cli import main
from avgen.errors import CheckpointError, ConfigError
from avgen.generate import main as generate_main
from avgen.pipeline import tiny_pipeline
from avgen.pipeline_config import shipped_path
from avgen.tokens import pack

TINY = shipped_path("avgen-tiny")


@pytest.fixture(scope="module")
def shape() -> limits.ModelShape:
    return limits.read_model_shape("avgen-tiny")


@pytest.fixture
def no_model(monkeypatch):
    """Loading any pipeline fails the test: every refusal must come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before the limits were checked")

    monkeypatch.setattr("avgen.pipeline.AVPipeline.from_pretrained", refuse)


@pytest.fixture
def configs_only(tmp_path) -> Path:
    """avgen-tiny's folder with its JSON configs and none of its weights."""
    folder = tmp_path / "no-weights"
    for f in TINY.rglob("*.json"):
        (folder / f.relative_to(TINY)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, folder / f.relative_to(TINY))
    assert not list(folder.rglob("*.safetensors"))
    return folder


def _peak(shape: limits.ModelShape, seconds: float, height: int, width: int, fps: int) -> int:
    geom = shape.geometry(seconds, height, width, fps)
    return limits.estimate_memory(shape, geom).peak


def test_estimate_grows_with_seconds_size_and_fps(shape) -> None:
    seconds = [_peak(shape, s, 64, 64, 24) for s in (1, 2, 4, 8, 60)]
    heights = [_peak(shape, 2, h, 64, 24) for h in (64, 128, 256, 512)]
    widths = [_peak(shape, 2, 64, w, 24) for w in (64, 128, 256, 512)]
    rates = [_peak(shape, 2, 64, 64, f) for f in (6, 12, 24, 48, 96)]
    for series in (seconds, heights, widths, rates):
        assert series == sorted(series) and len(set(series)) == len(series), series
    # more branches (sync guidance on) and the math attention fallback only add
    geom = shape.geometry(4, 64, 64, 24)
    base = limits.estimate_memory(shape, geom)
    for more in (
        limits.estimate_memory(shape, geom, branches=3),
        limits.estimate_memory(shape, geom, efficient_attention=False),
    ):
        assert more.stages["sampling"] > base.stages["sampling"] and more.peak >= base.peak


@pytest.mark.parametrize(
    ("seconds", "height", "width", "fps"), [(1, 64, 64, 24), (0.7, 40, 72, 30), (2.3, 8, 120, 12)]
)
def test_token_count_matches_the_packer(seconds, height, width, fps) -> None:
    pipe = tiny_pipeline()
    geom = pipe.geometry(seconds, height, width, fps)
    spec = pipe.dit.config.tokens
    v = torch.zeros(1, spec.video_channels, *geom.video_latent_shape)
    a = torch.zeros(1, spec.audio_channels, geom.audio_latent_length)
    packed = pack(spec, v, a, geom.video_times(), geom.audio_times())
    video, audio = limits.token_counts(geom, pipe.dit.config)
    assert video + audio == packed.tokens.shape[1]


def test_model_shape_reads_json_only(shape, configs_only) -> None:
    bare = limits.read_model_shape(configs_only)
    assert (bare.spatial_downsample, bare.hop_length, bare.dit) == (
        shape.spatial_downsample,
        shape.hop_length,
        shape.dit,
    )
    assert 0 < bare.weight_bytes <= shape.weight_bytes  # the DiT counted from its config, codecs unknown
    with pytest.raises(CheckpointError, match=r"pipeline\.json"):
        limits.read_model_shape(configs_only / "dit")


def test_memory_limit_flag_beats_env_beats_measured(monkeypatch) -> None:
    monkeypatch.setattr(limits.memory, "available_memory", lambda device="cpu": (5 * limits.GIB, "injected"))
    assert limits.memory_limit("cpu", None, {}) == (5 * limits.GIB, "injected")
    assert limits.memory_limit("cpu", None, {limits.MEMORY_ENV: "3"})[0] == 3 * limits.GIB
    assert limits.memory_limit("cpu", 2.0, {limits.MEMORY_ENV: "3"})[0] == 2 * limits.GIB
    assert limits.memory_limit("cpu", float("inf"), {})[0] == float("inf")
    with pytest.raises(ConfigError, match=limits.MEMORY_ENV):
        limits.memory_limit("cpu", None, {limits.MEMORY_ENV: "lots"})
    with pytest.raises(ConfigError, match="--max-memory-gb"):
        limits.memory_limit("cpu", 0.0, {})


def test_available_memory_reads_meminfo(tmp_path) -> None:
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       32000000 kB\nMemFree:   1000 kB\nMemAvailable:   2048 kB\n")
    assert limits._meminfo_available(str(f)) == 2048 * 1024
    assert limits._meminfo_available(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--seconds", "1e9"], "--seconds 1e+09"),
        (["--size", "4096x4096"], "--size 4096x4096"),
        (["--seconds", "30", "--fps", "240"], "--fps 240"),
    ],
)
def test_refused_before_weights_load_naming_flag_and_override(
    configs_only, tmp_path, monkeypatch, no_model, args, flag
):
    monkeypatch.setenv(limits.MEMORY_ENV, "1")
    argv = ["a red ball bounces", "--pipeline", str(configs_only), "-o", str(tmp_path / "a.mp4"), *args]
    with pytest.raises(ConfigError) as e:
        generate_main(argv)
    message = str(e.value)
    assert flag in message and "--max-memory-gb" in message and limits.MEMORY_ENV in message
    assert "1.0 GiB allowed" in message and not (tmp_path / "a.mp4").exists()


def test_a_clip_that_fits_goes_on_to_load(configs_only, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(limits.MEMORY_ENV, "64")
    with pytest.raises(
        CheckpointError, match=r"model\.safetensors"
    ):  # past the limits: the weights are missing
        generate_main(["a red ball", "--pipeline", str(configs_only), "-o", str(tmp_path / "a.mp4")])


def test_the_override_lets_a_big_request_through(configs_only, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(limits.MEMORY_ENV, "1")
    argv = ["a red ball", "--pipeline", str(configs_only), "-o", str(tmp_path / "a.mp4"), "--seconds", "60"]
    with pytest.raises(ConfigError, match="--seconds 60"):
        generate_main(argv)
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        generate_main([*argv, "--max-memory-gb", "inf"])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--fps", "1e9"], "--fps 1e9: at most 240"),
        (["--fps", "1/1000000"], "--fps 1/1000000: one frame lasts"),
        (["--fps", "0"], "fps"),
        (["--size", "4097x64"], "--size: height"),
        (["--size", "64x7"], "--size: width"),
        (["--seconds", "inf"], "--seconds inf"),
        (["--seconds", "1e308"], "--seconds 1e\\+308"),
    ],
)
def test_argument_bounds(tmp_path, no_model, args, match) -> None:
    with pytest.raises(ConfigError, match=match):
        generate_main(["a red ball", "-o", str(tmp_path / "a.mp4"), *args])


def test_cli_prints_the_refusal_on_one_line(tmp_path, capsys, monkeypatch, no_model) -> None:
    monkeypatch.setenv(limits.MEMORY_ENV, "2")
    assert main(["generate", "a red ball", "--seconds", "1e9", "-o", str(tmp_path / "a.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avgen generate: error: --seconds") and err.count("\n") == 1


@pytest.fixture
def long_wav(tmp_path) -> Path:
    path = tmp_path / "long.wav"
    sf.write(path, (0.1 * np.sin(np.arange(8000 * 120) / 5)).astype(np.float32), 8000, subtype="PCM_16")
    return path


def test_long_audio_is_refused_before_reading(long_wav, tmp_path, monkeypatch, no_model) -> None:
    monkeypatch.setenv(limits.MEMORY_ENV, "1")

    def unread(*args, **kwargs):
        raise AssertionError("the audio was decoded before the limits were checked")

    monkeypatch.setattr("avgen.generate.read_av", unread)
    with pytest.raises(ConfigError, match=r"--audio .*long\.wav \(120\.0 s; --seconds uses part of it\)"):
        generate_main(["a face", "--audio", str(long_wav), "-o", str(tmp_path / "a.mp4")])


def test_long_audio_is_cut_to_seconds_on_reading(long_wav, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(limits.MEMORY_ENV, "8")
    given = {}

    class Stop(Exception):
        pass

    def fake_pipe(name, device="cpu"):
        def call(prompt, **kwargs):
            given.update(kwargs)
            raise Stop

        return call

    monkeypatch.setattr("avgen.pipeline.AVPipeline.from_pretrained", fake_pipe)
    with pytest.raises(Stop):
        generate_main(["a face", "--audio", str(long_wav), "--seconds", "1.5", "-o", str(tmp_path / "a.mp4")])
    clip = given["audio"]
    assert clip.audio.shape[1] == 12000 and clip.sample_rate == 8000  # 1.5 s read of the 120
    assert given["seconds"] == 1.5


def test_guidance_branches() -> None:
    from avgen.diffusion.settings import SamplingConfig

    assert limits.guidance_branches(SamplingConfig(video_guidance=1.0, audio_guidance=1.0)) == 1
    assert limits.guidance_branches(SamplingConfig()) == 2
    assert limits.guidance_branches(SamplingConfig(video_sync=2.0, audio_sync=1.0)) == 4


def test_fps_fraction_and_seconds_checks() -> None:
    assert limits.check_fps("30000/1001") == Fraction(30000, 1001)
    assert limits.check_seconds(0.5, Fraction(24)) == 0.5
    with pytest.raises(ConfigError, match="--fps 1: one frame lasts 1 s"):
        limits.check_seconds(0.25, Fraction(1))
