"""AVPipeline called as diffusers / audiocraft users call a pipeline: aliases, several clips per prompt,
per-clip seeds that regenerate any clip of a batch alone, a step callback, dtypes, and diffusers' output
layouts. All on the tiny random pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from avgen.clip import AVClip
from avgen.errors import ClipError, ConfigError
from avgen.pipeline import AVPipeline, tiny_pipeline
from avgen.pipeline_output import to_diffusers

SHORT = {"seconds": 0.25, "height": 32, "width": 48, "progress": False}


@pytest.fixture(scope="module")
def pipe() -> AVPipeline:
    return tiny_pipeline()


def _same(a: AVClip, b: AVClip) -> bool:
    return np.array_equal(a.video, b.video) and np.array_equal(a.audio, b.audio)


@pytest.mark.parametrize(
    ("alias", "avgen"),
    [
        ({"num_inference_steps": 3}, {"steps": 3}),
        ({"guidance_scale": 2.5}, {"video_guidance": 2.5, "audio_guidance": 2.5}),
        ({"guidance_scale": 2.5, "audio_guidance_scale": 6}, {"video_guidance": 2.5, "audio_guidance": 6}),
        ({"frame_rate": 12.0}, {"fps": 12}),
    ],
)
def test_aliases_give_what_avgen_names_give(pipe, alias, avgen) -> None:
    assert _same(pipe("a ball", seed=1, **SHORT, **alias), pipe("a ball", seed=1, **SHORT, **avgen))


def test_num_frames_and_duration_set_the_length(pipe) -> None:
    short = {k: v for k, v in SHORT.items() if k != "seconds"}
    clip = pipe("a ball", num_frames=9, frame_rate=18, seed=2, **short)
    assert clip.num_frames == 9 and clip.fps == 18
    assert _same(clip, pipe("a ball", seconds=0.5, fps=18, seed=2, **short))
    assert pipe("a ball", duration=0.25, seed=2, **short).num_frames == 6  # audiocraft's name, at 24 fps


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ({"num_inference_steps": 3, "steps": 4}, "num_inference_steps=3 and steps=4"),
        ({"guidance_scale": 2.0, "audio_guidance": 3.0}, "guidance_scale=2.0 and audio_guidance=3.0"),
        ({"frame_rate": 25, "fps": 24}, "frame_rate=25 and fps=24"),
        ({"num_frames": 12}, "num_frames=12 and seconds=0.25"),
        ({"duration": 1.0}, "duration=1.0 and seconds=0.25"),
    ],
)
def test_an_alias_and_its_avgen_name_must_agree(pipe, given, names) -> None:
    with pytest.raises(ConfigError, match=names):
        pipe("a ball", **SHORT, **given)
    with pytest.raises(ConfigError, match="num_frames must be a whole number"):
        pipe("a ball", num_frames=0.5, progress=False)


def test_agreeing_names_are_accepted(pipe) -> None:
    clip = pipe("a ball", num_inference_steps=2, steps=2, num_frames=6, **SHORT)
    assert clip.num_frames == 6 and clip.metadata["steps"] == "2"


def test_num_videos_per_prompt_is_prompt_major_with_a_seed_each(pipe) -> None:
    clips = pipe(["one", "two"], num_videos_per_prompt=2, seed=10, **SHORT)
    assert [c.metadata["prompt"] for c in clips] == ["one", "one", "two", "two"]
    assert [c.metadata["seed"] for c in clips] == ["10", "11", "12", "13"]
    assert not np.array_equal(clips[0].video, clips[1].video)
    two = pipe("one", num_videos_per_prompt=2, **SHORT)
    assert isinstance(two, list) and len(two) == 2 and isinstance(pipe("one", **SHORT), AVClip)
    assert pipe("one", **SHORT).metadata["seed"] == "0"
    with pytest.raises(ConfigError, match="num_videos_per_prompt"):
        pipe("one", num_videos_per_prompt=0, **SHORT)


@pytest.mark.parametrize(
    "settings", [{}, {"sampler": "euler_sde", "steps": 3, "video_sync": 1.5, "order": "audio_first"}]
)
def test_any_clip_of_a_batch_regenerates_alone_bit_for_bit(pipe, settings) -> None:
    """Prompts and negative prompts of different token counts, and a sampler and sync guidance that draw
    noise: each clip is what ``pipe(its prompt, seed=its seed)`` gives."""
    prompts, negatives = ["a red ball", "a dog barks", "xy"], ["", "blurry mess", ""]
    clips = pipe(prompts, negative_prompt=negatives, num_videos_per_prompt=2, seed=5, **SHORT, **settings)
    for i, clip in enumerate(clips):
        assert clip.metadata["seed"] == str(5 + i)
        alone = pipe(
            clip.metadata["prompt"],
            negative_prompt=negatives[i // 2],
            seed=int(clip.metadata["seed"]),
            **SHORT,
            **settings,
        )
        assert _same(alone, clip), f"clip {i}"


def test_generators_one_per_clip(pipe) -> None:
    gens = [torch.Generator().manual_seed(s) for s in (21, 7)]
    a, b = pipe(["one", "two"], generator=gens, **SHORT)
    assert (a.metadata["seed"], b.metadata["seed"]) == ("21", "7")
    assert _same(a, pipe("one", seed=21, **SHORT)) and _same(b, pipe("two", seed=7, **SHORT))
    single = pipe(["one", "two"], generator=torch.Generator().manual_seed(21), **SHORT)
    assert [c.metadata["seed"] for c in single] == ["21", "22"] and _same(single[0], a)
    with pytest.raises(ConfigError, match="a list of 1 generators for 2 clips"):
        pipe(["one", "two"], generator=gens[:1], **SHORT)
    with pytest.raises(ConfigError, match="a list of 2 generators for 4 clips"):
        pipe(["one", "two"], generator=gens, num_videos_per_prompt=2, **SHORT)
    with pytest.raises(ConfigError, match="appears twice"):
        pipe(["one", "two"], generator=[gens[0], gens[0]], **SHORT)


def test_negative_prompt_per_prompt(pipe) -> None:
    a, b = pipe(["one", "two"], negative_prompt=["dark", "loud noise"], seed=3, **SHORT)
    assert _same(b, pipe("two", negative_prompt="loud noise", seed=4, **SHORT))
    assert not _same(a, pipe("one", seed=3, **SHORT))
    with pytest.raises(ConfigError, match="one per prompt"):
        pipe(["one", "two"], negative_prompt=["dark"], **SHORT)


def test_callback_on_step_end_sees_each_step_and_can_replace_the_latents(pipe) -> None:
    calls: list[tuple] = []

    def record(p, step, timestep, kwargs):
        calls.append((p, step, float(timestep), sorted(kwargs), kwargs["latents"].clone()))
        return kwargs

    plain = pipe(["one", "two"], steps=3, seed=1, **SHORT)
    seen = pipe(["one", "two"], steps=3, seed=1, callback_on_step_end=record, **SHORT)
    assert all(_same(x, y) for x, y in zip(plain, seen))  # returning the kwargs unchanged changes nothing
    assert [c[1] for c in calls] == [0, 1, 2] and all(c[0] is pipe and c[3] == ["latents"] for c in calls)
    assert calls[0][2] == 1.0 and calls[0][2] > calls[1][2] > calls[2][2] > 0  # times the steps start from
    final = calls[-1][4]
    assert final.dtype == torch.float32 and final.ndim == 3 and final.shape[0] == 2

    def swap(p, step, timestep, kwargs):  # another seed's run, its last state put in place of this one's
        return {"latents": final} if step == 2 else {}

    swapped = pipe(["one", "two"], steps=3, seed=9, callback_on_step_end=swap, **SHORT)
    assert all(_same(x, y) for x, y in zip(plain, swapped))
    with pytest.raises(ConfigError, match="expected a tensor"):
        pipe("one", callback_on_step_end=lambda p, i, t, kw: {"latents": final[:1, :3]}, **SHORT)
    with pytest.raises(ConfigError, match="prompt_embeds"):
        pipe(
            "one", callback_on_step_end=record, callback_on_step_end_tensor_inputs=["prompt_embeds"], **SHORT
        )


def test_dtype_round_trip_and_cpu_warning(tmp_path) -> None:
    pipe = tiny_pipeline()
    assert pipe.dtype == torch.float32
    with pytest.warns(RuntimeWarning, match="bfloat16 on a CPU"):
        assert pipe.to(torch.bfloat16) is pipe
    assert pipe.dtype == torch.bfloat16 and pipe.device.type == "cpu"
    assert next(pipe.video_codec.parameters()).dtype == torch.float32  # codecs stay float32
    clip = pipe("a ball", **SHORT)
    assert clip.video.shape == (6, 32, 48, 3) and np.isfinite(clip.audio).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.to("cpu", torch_dtype=torch.float32)
    assert pipe.dtype == torch.float32
    with pytest.warns(RuntimeWarning, match="float16"):
        pipe.to("cpu", torch.float16)
    pipe.to(dtype=torch.float32)
    for bad in [(torch.int8,), ("cpu", "cpu"), (torch.float16, torch.bfloat16)]:
        with pytest.raises(ConfigError):
            pipe.to(*bad)
    pipe.save_pretrained(tmp_path / "p")
    with pytest.warns(RuntimeWarning):
        loaded = AVPipeline.from_pretrained(tmp_path / "p", torch_dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16


def test_to_diffusers_layouts(pipe) -> None:
    clips = pipe(["one", "two"], **SHORT)
    out = to_diffusers(clips)
    assert out.frames.shape == (2, 6, 32, 48, 3) and out.frames.dtype == np.float32
    assert np.array_equal((out.frames * 255).round().astype(np.uint8), np.stack([c.video for c in clips]))
    assert out.audio.shape == (2, 2, clips[0].num_samples) and out.audio.dtype == torch.float32
    assert torch.equal(out.audio[1, 1], torch.from_numpy(clips[1].audio[0]))  # mono on both channels
    assert (out.fps, out.sample_rate) == (24, 16000)
    pt = to_diffusers(clips[0], "pt", stereo=False)
    assert pt.frames.shape == (1, 6, 3, 32, 48) and pt.audio.shape == (1, 1, clips[0].num_samples)
    pil = to_diffusers(clips, "pil").frames
    assert len(pil) == 2 and len(pil[0]) == 6 and pil[0][0].size == (48, 32) and pil[0][0].mode == "RGB"
    with pytest.raises(ClipError, match="differ in frames"):
        to_diffusers([clips[0], clips[1].replace(video=clips[1].video[:3])])
    with pytest.raises(ConfigError, match="output_type"):
        to_diffusers(clips, "latent")


def test_to_diffusers_feeds_encode_video(pipe, tmp_path) -> None:
    export = pytest.importorskip("diffusers.utils.export_utils")
    from avgen.io import read_av

    clip = pipe("one", **SHORT)
    out = to_diffusers(clip)
    path = str(tmp_path / "clip.mp4")
    export.encode_video(
        out.frames[0],
        fps=int(out.fps),
        output_path=path,
        audio=out.audio[0],
        audio_sample_rate=out.sample_rate,
    )
    back = read_av(path)
    assert back.num_frames == clip.num_frames and (back.height, back.width) == (32, 48)
