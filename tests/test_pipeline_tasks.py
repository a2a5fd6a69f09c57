"""AVPipeline: shapes at any size, the three tasks, folder round trips, and the CLI, on tiny random parts."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.cli import main
from avgen.errors import CheckpointError, ClipError, ConfigError
from avgen.io import AVClip, read_av, write_av
from avgen.pipeline import AVPipeline, tiny_pipeline


@pytest.fixture(scope="module")
def pipe() -> AVPipeline:
    return tiny_pipeline()


@pytest.mark.parametrize(
    "duration,height,width", [(1.0, 64, 64), (0.75, 40, 56), (0.5, 96, 32), (1 / 24, 8, 8)]
)
def test_text_to_av_shapes(pipe, duration, height, width):
    clip = pipe("a red ball bounces", seconds=duration, height=height, width=width, progress=False)
    frames = max(1, round(duration * 24))
    assert clip.video.shape == (frames, height, width, 3) and clip.video.dtype == np.uint8
    assert clip.num_samples == round(frames / 24 * 16000)  # audio ends with the last frame
    assert clip.audio.dtype == np.float32 and np.abs(clip.audio).max() <= 1
    assert clip.metadata["prompt"] == "a red ball bounces" and clip.metadata["task"] == "t2av"


def test_batch_and_seed(pipe):
    a = pipe("one", seconds=0.5, seed=3, progress=False)
    again = pipe("one", seconds=0.5, seed=3, progress=False)
    _, b = pipe(["one", "two"], seconds=0.5, seed=3, progress=False)
    other = pipe("one", seconds=0.5, seed=4, progress=False)
    assert np.array_equal(a.video, again.video) and np.array_equal(a.audio, again.audio)
    assert not np.array_equal(a.video, other.video)
    assert b.metadata["prompt"] == "two"


def test_audio_to_video_keeps_the_given_audio(pipe, rng):
    speech = AVClip(audio=rng.uniform(-0.5, 0.5, (2, 22050)).astype(np.float32), sample_rate=22050)
    clip = pipe("a face speaks", audio=speech, progress=False)
    assert clip.audio is speech.audio or np.array_equal(clip.audio, speech.audio)
    assert clip.sample_rate == 22050 and clip.num_frames == 24 and clip.metadata["task"] == "a2v"


def test_video_to_audio_keeps_the_given_frames(pipe, rng):
    silent = AVClip(video=rng.integers(0, 256, (15, 36, 44, 3), dtype=np.uint8), fps=30)
    clip = pipe("rain", video=silent, progress=False)
    assert np.array_equal(clip.video, silent.video) and clip.fps == 30
    assert clip.num_samples == 8000 and clip.metadata["task"] == "v2a"


def _noise_clip(rng: np.random.Generator) -> AVClip:
    """0.5 s of random frames (15 x 36 x 44 at 30 fps) and stereo noise at 22.05 kHz."""
    return AVClip(
        video=rng.integers(0, 256, (15, 36, 44, 3), dtype=np.uint8),
        fps=30,
        audio=rng.uniform(-0.5, 0.5, (2, 11025)).astype(np.float32),
        sample_rate=22050,
    )


def test_reconstruct_round_trips_through_both_codecs(pipe, rng):
    clip = _noise_clip(rng)
    out = pipe.reconstruct(clip)
    assert out.video.shape == clip.video.shape and out.fps == 30 and out.metadata["task"] == "reconstruct"
    assert out.sample_rate == 16000 and out.audio.shape == (1, 8000)  # mono at the codec rate
    assert not np.array_equal(out.video, clip.video)  # a random codec does not reproduce the frames
    with pytest.raises(ClipError, match="video and audio"):
        pipe.reconstruct(AVClip(audio=clip.audio, sample_rate=22050))


def test_encode_packs_what_reconstruct_decodes(pipe, rng):
    from avgen.tokens import AUDIO, VIDEO, unpack

    clip = _noise_clip(rng)
    packed = pipe.encode(clip)
    layout = packed.layout
    assert packed.tokens.shape == (1, layout.num_tokens, pipe.dit.config.tokens.feature_dim)
    assert (packed.modality == VIDEO).sum() == layout.num_video and (packed.modality == AUDIO).any()
    v_lat, a_lat = unpack(packed.tokens, layout)
    geom = pipe.geometry(clip.video_duration, clip.height, clip.width, clip.fps)
    frames, wav = pipe._decode(v_lat, a_lat, geom)
    out = pipe.reconstruct(clip)
    assert np.array_equal(frames[0], out.video) and np.allclose(wav[0], out.audio, atol=1e-6)
    with pytest.raises(ClipError, match="encode needs an AVClip with video and audio"):
        pipe.encode(AVClip(video=clip.video, fps=30))


def test_continuation_keeps_the_given_prefix(pipe, tmp_path):
    prefix = pipe("a ball", seconds=0.5, seed=1, progress=False)
    clip = pipe("a ball", extend=prefix, seconds=1.0, seed=2, progress=False)
    assert clip.num_frames == 24 and clip.num_samples == 16000 and clip.metadata["task"] == "continue"
    assert np.array_equal(clip.video[:12], prefix.video)
    assert np.array_equal(clip.audio[:, :8000], prefix.audio)
    path = clip.save(tmp_path / "long.mp4")  # AVClip.save goes through write_av
    assert read_av(path).num_frames == 24
    with pytest.raises(ConfigError, match="exceed"):
        pipe("a ball", extend=prefix, seconds=0.25, progress=False)


def test_generator_and_fps(pipe):
    from fractions import Fraction

    import torch

    a = pipe("x", seconds=0.5, generator=torch.Generator().manual_seed(9), progress=False)
    b = pipe("x", seconds=0.5, generator=torch.Generator().manual_seed(9), progress=False)
    assert np.array_equal(a.video, b.video)
    ntsc = pipe("x", seconds=1.0, fps="30000/1001", progress=False)
    assert ntsc.fps == Fraction(30000, 1001) and ntsc.num_frames == 30
    assert ntsc.num_samples == round(30 * 1001 / 30000 * 16000)


def test_bad_calls(pipe):
    with pytest.raises(ConfigError, match="height"):
        pipe("x", height=3, progress=False)
    with pytest.raises(ConfigError, match="seconds"):
        pipe("x", seconds=-1, progress=False)
    with pytest.raises(ConfigError, match="prompt"):
        pipe([], progress=False)
    with pytest.raises(ClipError, match="audio="):
        pipe("x", audio=AVClip(video=np.zeros((1, 8, 8, 3), np.uint8), fps=1), progress=False)
    clip = AVClip(audio=np.zeros((1, 10), np.float32), sample_rate=8000)
    with pytest.raises(ConfigError, match="at most one"):
        pipe("x", audio=clip, video=clip, progress=False)


def test_save_load_round_trip_is_identical(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "pipe")
    parts = [
        "audio_codec",
        "dit",
        "pipeline.json",
        "text_encoder",
        "video_codec",
    ]  # custom text encoder saved
    assert sorted(p.name for p in folder.iterdir()) == parts
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))  # safetensors + JSON only
    loaded = AVPipeline.from_pretrained(folder)
    a = pipe("same", seconds=0.5, seed=1, progress=False)
    b = loaded("same", seconds=0.5, seed=1, progress=False)
    assert np.array_equal(a.video, b.video) and np.array_equal(a.audio, b.audio)
    with pytest.raises(CheckpointError, match="exists"):
        pipe.save_pretrained(folder)


def test_missing_and_mismatched_weights(pipe, tmp_path):
    with pytest.raises(CheckpointError, match=r"pipeline\.json"):
        AVPipeline.from_pretrained(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="video latent channels"):
        from avgen.codecs.tiny import tiny_pixel_codec

        AVPipeline(pipe.dit, tiny_pixel_codec(), pipe.audio_codec, pipe.text_encoder)
    folder = pipe.save_pretrained(tmp_path / "p")
    (folder / "pipeline.json").write_text('{"format": "avgen.pipeline", "config": {"stepz": 3}}')
    with pytest.raises(ConfigError, match="stepz"):
        AVPipeline.from_pretrained(folder)


def test_generate_cli(pipe, tmp_path, capsys):
    folder = pipe.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "clip.mp4"
    args = ["generate", "a blue ball", "-o", str(out), "--pipeline", str(folder), "--size", "32x48"]
    assert main([*args, "--seconds", "0.5", "--steps", "1"]) == 0
    clip = read_av(out)
    assert (clip.num_frames, clip.height, clip.width, clip.num_samples) == (12, 32, 48, 8000)
    assert clip.metadata["prompt"] == "a blue ball" and clip.metadata["model"] == "tiny-random"
    assert main([*args, "--seconds", "0.5"]) == 2 and "overwrite" in capsys.readouterr().err
    speech = write_av(tmp_path / "s.wav", AVClip(audio=np.zeros((1, 8000), np.float32), sample_rate=16000))
    assert (
        main(
            [
                "generate",
                "a face",
                "-o",
                str(tmp_path / "a2v.mp4"),
                "--pipeline",
                str(folder),
                "--audio",
                str(speech),
            ]
        )
        == 0
    )
    assert read_av(tmp_path / "a2v.mp4").num_frames == 12


def test_eval_generates_and_scores(pipe, tmp_path):
    import json

    folder = pipe.save_pretrained(tmp_path / "pipe")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"caption": "a red ball bounces"}\n{"caption": "a green face says \\"hi\\""}\n')
    out = tmp_path / "eval"
    args = ["eval", "--pipeline", str(folder), "--prompts", str(prompts), "--n", "3", "--out", str(out)]
    assert main([*args, "--steps", "1", "--no-png"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["clips"] == 3 and report["summary"]["scored"] == 3
    assert [c["file"].endswith(f"clip_000{i}.mp4") for i, c in enumerate(report["clips"])] == [True] * 3
    assert read_av(out / "clip_0002.mp4").metadata["prompt"] == "a red ball bounces"


def test_eval_model_cli_passes_every_sampler_flag(pipe, tmp_path):
    import json

    folder = pipe.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "model_eval"
    args = ["eval", "model", "--pipeline", str(folder), "--out", str(out), "--per-family", "2"]
    args += ["--families", "bounce", "--tasks", "t2av,codec", "--split", "val", "--steps", "1"]
    args += ["--sampler", "euler_sde", "--shift", "2", "--video-guidance", "1.5", "--audio-guidance", "2.5"]
    args += ["--audio-sync", "2", "--video-sync", "0.5", "--order", "video_first"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["split"] == "val" and set(report["summary"]) == {"gt", "t2av", "codec"}
    assert report["sampling"] == {
        "steps": 1,
        "sampler": "euler_sde",
        "shift": 2.0,
        "video_guidance": 1.5,
        "audio_guidance": 2.5,
        "video_sync": 0.5,
        "audio_sync": 2.0,
        "order": "video_first",
        "negative_prompt": "",
        "guidance": "cfg",
    }


def test_cross_modal_dependence_benchmark_measures_both_streams(pipe):
    import importlib

    bench = importlib.import_module("benchmarks.cross_modal_dependence")
    result = bench.measure(pipe, per_family=2, split="val")
    assert set(result) == {"talk", "bounce"}
    for by_t in result.values():
        assert list(by_t) == [str(t) for t in bench.TIMES]
        for mods in by_t.values():
            for d in (mods["audio"], mods["video"]):
                assert set(d) == {"v", "text", "other", "given"}
                assert all(np.isfinite(v) and v >= 0 for v in d.values())
                assert d["v"] > 0 and d["other"] > 0  # a random DiT mixes the two streams
    md = bench.markdown(result, "tiny")
    assert md.count("| talk |") == len(bench.TIMES) and md.count("| bounce |") == len(bench.TIMES)
