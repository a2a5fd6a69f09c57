"""Sampling order: "joint" (both modalities together) or one modality finished before the other is made
from it ("video_first" / "audio_first"), as one per-token schedule through the same samplers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avgen.diffusion import SAMPLERS, generate_tokens, hold_given, schedule
from avgen.diffusion.samplers import ORDERS, drop_idle, ordered
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import ConfigError
from avgen.model import TextStates, tiny_dit
from avgen.pipeline import PipelineConfig, tiny_pipeline
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenSpec, latent_times, pack, unpack

SPEC = TokenSpec(video_channels=4, audio_channels=6)


def _setup(b: int = 2):
    g = torch.Generator().manual_seed(0)
    video, audio = torch.randn(b, 4, 3, 4, 6, generator=g), torch.randn(b, 6, 14, generator=g)
    p = pack(SPEC, video, audio, latent_times(3, 6.25), latent_times(14, 50.0))
    cond = TextStates(torch.randn(b, 5, 32, generator=g), torch.ones(b, 5, dtype=torch.bool))
    uncond = TextStates(torch.randn(1, 2, 32, generator=g), torch.ones(1, 2, dtype=torch.bool))
    return tiny_dit(SPEC).eval(), p, cond, uncond


def test_ordered_schedules() -> None:
    ts = schedule(3, shift=2.0)
    modality = torch.tensor([VIDEO, VIDEO, AUDIO, AUDIO, AUDIO])
    joint = ordered(ts, modality, "joint")
    assert joint.shape == (4, 5) and torch.equal(joint, ts[:, None].expand(-1, 5))
    vf = ordered(ts, modality, "video_first")
    assert vf.shape == (7, 5)
    assert torch.equal(vf[:, 0], torch.cat([ts, torch.zeros(3)]))  # video: the schedule, then held at 0
    assert torch.equal(vf[:, 4], torch.cat([torch.ones(4), ts[1:]]))  # audio: waits at 1, then the schedule
    af = ordered(ts, modality, "audio_first")
    assert torch.equal(af[:, 4], vf[:, 0]) and torch.equal(af[:, 0], vf[:, 4])
    for order in ORDERS:  # every token still runs from noise to data, never backwards
        s = ordered(ts, modality, order)
        assert (s[0] == 1).all() and (s[-1] == 0).all() and (s[1:] <= s[:-1]).all()
    with pytest.raises(ConfigError, match="order"):
        ordered(ts, modality, "sideways")
    with pytest.raises(ShapeError):
        ordered(ts[:, None], modality, "joint")


def test_drop_idle_removes_steps_that_move_nothing() -> None:
    ts = schedule(4)
    modality = torch.tensor([VIDEO, VIDEO, AUDIO])
    given = torch.tensor([[True, True, False]])  # video-to-audio: the video pass has nothing to move
    full = hold_given(ordered(ts, modality, "video_first"), given)
    assert full.shape == (9, 1, 3)
    kept = drop_idle(full)
    assert torch.equal(kept, hold_given(ts, given))  # exactly the joint schedule of the same task
    everything = torch.ones(1, 3, dtype=torch.bool)
    assert drop_idle(hold_given(ts, everything)).shape == (2, 1, 3)  # all given: one (empty) step is kept


def test_heun_is_euler_wherever_a_token_lands_on_zero() -> None:
    """Video-first with S Heun steps: two passes, each ending in an Euler step, 2 * (2 S - 1) evaluations."""
    steps, calls = 3, []
    modality = torch.tensor([VIDEO, VIDEO, AUDIO])

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(t[0].clone())
        return -x

    x = torch.randn(1, 3, 2, generator=torch.Generator().manual_seed(0))
    ts = hold_given(ordered(schedule(steps), modality, "video_first"), torch.zeros(1, 3, dtype=torch.bool))
    SAMPLERS["heun"](fn, x, ts)
    assert len(calls) == 2 * (2 * steps - 1)
    # The model never sees a token at t = 0 that it is still denoising: the video reaches 0 through an
    # Euler step (no correction evaluated there, so (0, 0, 1) is seen once: the audio pass's first step),
    # and the audio is never evaluated at 0.
    assert sum(bool((t[:2] == 0).all() and t[2] == 1) for t in calls) == 1
    assert all(t[2] > 0 for t in calls)
    joint_calls = []
    SAMPLERS["heun"](lambda x, t: joint_calls.append(t) or -x, x, hold_given(schedule(steps), ts[0] < 0))
    assert len(joint_calls) == 2 * steps - 1  # the joint schedule is as before


@pytest.mark.parametrize("sampler", ["euler", "heun", "ab2"])
def test_video_first_is_text_to_video_then_video_to_audio(sampler: str) -> None:
    """The second pass of "video_first" is exactly video-to-audio given the first pass's frames and the
    same starting noise, and the frames come out of it untouched."""
    model, p, cond, uncond = _setup()
    s = SamplingConfig(steps=3, sampler=sampler, video_guidance=2.0, audio_guidance=3.0)
    kw = {"sampling": s}
    with torch.no_grad():
        first = {"sampling": s.replace(order="video_first")}
        out = generate_tokens(model, p, cond, uncond, generator=torch.Generator().manual_seed(5), **first)
        v2a_in = dataclasses.replace(p, tokens=out)
        seed = torch.Generator().manual_seed(5)
        redo = generate_tokens(model, v2a_in, cond, uncond, task="v2a", generator=seed, **kw)
        joint = generate_tokens(model, p, cond, uncond, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.allclose(redo, out, atol=1e-5)
    assert torch.equal(unpack(redo, p.layout)[0], unpack(out, p.layout)[0])
    assert not torch.allclose(unpack(joint, p.layout)[1], unpack(out, p.layout)[1], atol=1e-3)


def test_video_first_frames_do_not_depend_on_the_audio_pass() -> None:
    """The frames are finished before the sound starts: the audio guidance cannot change them."""
    model, p, cond, uncond = _setup()

    def run(audio_scale: float) -> torch.Tensor:
        with torch.no_grad():
            return generate_tokens(
                model,
                p,
                cond,
                uncond,
                sampling=SamplingConfig(
                    order="video_first",
                    steps=2,
                    sampler="euler",
                    video_guidance=2.0,
                    audio_guidance=audio_scale,
                ),
                generator=torch.Generator().manual_seed(0),
            )

    a, b = run(1.0), run(6.0)
    assert torch.equal(unpack(a, p.layout)[0], unpack(b, p.layout)[0])
    assert not torch.allclose(unpack(a, p.layout)[1], unpack(b, p.layout)[1])


def test_orders_in_the_pipeline() -> None:
    pipe = tiny_pipeline()
    joint = pipe("a red ball bounces", seconds=0.5, seed=1, progress=False)
    first = pipe("a red ball bounces", seconds=0.5, seed=1, order="video_first", progress=False)
    assert first.metadata["order"] == "video_first" and "order" not in joint.metadata
    assert not (first.audio == joint.audio).all()
    with pytest.raises(ConfigError, match="order"):
        pipe("a red ball bounces", seconds=0.5, order="sideways", progress=False)
    with pytest.raises(ConfigError, match="order"):
        PipelineConfig(sampling=SamplingConfig(order="sideways"))
    given = pipe("a red ball bounces", video=joint, order="video_first", progress=False)  # one pass only
    assert (given.video == joint.video).all()
