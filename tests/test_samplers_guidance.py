"""Classifier-free guidance per modality, sync guidance, and the conditioning tasks (a2v, v2a, continuation)."""

from __future__ import annotations

import pytest
import torch

from avgen.diffusion import (
    SAMPLERS,
    apply_guidance,
    generate_tokens,
    given_mask,
    guided_velocity,
    hold_given,
    initial_state,
    modality_scale,
    schedule,
)
from avgen.diffusion.guidance import without_modality
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import ConfigError
from avgen.model import TextStates, tiny_dit
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenSpec, latent_times, pack, unpack

SPEC = TokenSpec(video_channels=4, audio_channels=6)


def _setup(b: int = 2):
    g = torch.Generator().manual_seed(0)
    video, audio = torch.randn(b, 4, 3, 4, 6, generator=g), torch.randn(b, 6, 14, generator=g)
    p = pack(SPEC, video, audio, latent_times(3, 6.25), latent_times(14, 50.0))
    cond = TextStates(torch.randn(b, 5, 32, generator=g), torch.ones(b, 5, dtype=torch.bool))
    uncond = TextStates(torch.randn(1, 2, 32, generator=g), torch.ones(1, 2, dtype=torch.bool))
    return tiny_dit(SPEC).eval(), p, video, audio, cond, uncond


def test_guidance_formula_per_modality() -> None:
    cond, uncond = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    mod = torch.tensor([VIDEO, VIDEO, VIDEO, AUDIO, AUDIO])
    scale = modality_scale(mod, 4.0, 3.0)
    assert scale.tolist() == [4.0, 4.0, 4.0, 3.0, 3.0]
    out = apply_guidance(cond, uncond, scale)
    assert torch.allclose(out[:, :3], uncond[:, :3] + 4.0 * (cond[:, :3] - uncond[:, :3]))
    assert torch.allclose(out[:, 3:], uncond[:, 3:] + 3.0 * (cond[:, 3:] - uncond[:, 3:]))
    assert torch.allclose(apply_guidance(cond, uncond, torch.zeros(5)), uncond)


def test_scale_one_equals_the_conditional_prediction() -> None:
    model, p, _, _, cond, uncond = _setup()
    t = torch.full((2, p.layout.num_tokens), 0.6)
    direct = model(p.tokens, t, p.positions, p.modality, cond.states, cond.mask)
    fn = guided_velocity(model, p.positions, p.modality, cond, uncond, video_guidance=1.0, audio_guidance=1.0)
    assert torch.equal(fn(p.tokens, t), direct)


def test_batched_branches_equal_separate_forwards() -> None:
    model, p, _, _, cond, uncond = _setup()
    t = torch.rand(2, p.layout.num_tokens, generator=torch.Generator().manual_seed(1))
    calls = []

    def counting(*args: torch.Tensor) -> torch.Tensor:
        calls.append(args[0].shape[0])
        return model(*args)

    fn = guided_velocity(
        counting, p.positions, p.modality, cond, uncond, video_guidance=5.0, audio_guidance=2.0
    )
    out = fn(p.tokens, t)
    assert calls == [4]  # one forward with both branches
    v_c = model(p.tokens, t, p.positions, p.modality, cond.states, cond.mask)
    un = uncond.repeat(2)
    v_u = model(p.tokens, t, p.positions, p.modality, un.states, un.mask)
    expected = apply_guidance(v_c, v_u, modality_scale(p.modality, 5.0, 2.0))
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, v_c, atol=1e-3)
    with pytest.raises(ShapeError, match="batch"):
        guided_velocity(model, p.positions, p.modality, cond, uncond, 2.0, 2.0)(
            p.tokens[:1].repeat(3, 1, 1), t[:1].repeat(3, 1)
        )
    with pytest.raises(ConfigError, match="video_guidance"):
        guided_velocity(model, p.positions, p.modality, cond, uncond, video_guidance="4")


def test_sync_guidance_equals_separate_forwards_with_the_other_stream_noised() -> None:
    model, p, _, _, cond, uncond = _setup()
    g = torch.Generator().manual_seed(2)
    t = torch.rand(2, p.layout.num_tokens, generator=g)
    null = torch.randn(p.tokens.shape, generator=g)
    calls = []

    def counting(*args: torch.Tensor) -> torch.Tensor:
        calls.append(args[0].shape[0])
        return model(*args)

    kw = {"video_guidance": 3.0, "audio_guidance": 2.0, "video_sync": 1.5, "audio_sync": 4.0, "null": null}
    out = guided_velocity(counting, p.positions, p.modality, cond, uncond, **kw)(p.tokens, t)
    assert calls == [8]  # cond, uncond, no-audio, no-video: one forward

    def fwd(x: torch.Tensor, tt: torch.Tensor, text: TextStates) -> torch.Tensor:
        return model(x, tt, p.positions, p.modality, text.states, text.mask)

    v_c, v_u = fwd(p.tokens, t, cond), fwd(p.tokens, t, uncond.repeat(2))
    v_no_audio = fwd(*without_modality(p.tokens, t, p.modality, AUDIO, null), cond)
    v_no_video = fwd(*without_modality(p.tokens, t, p.modality, VIDEO, null), cond)
    is_v = (p.modality == VIDEO)[None, :, None]
    expected = apply_guidance(v_c, v_u, modality_scale(p.modality, 3.0, 2.0))
    expected = expected + torch.where(is_v, 1.5 * (v_c - v_no_audio), 4.0 * (v_c - v_no_video))
    assert torch.allclose(out, expected, atol=1e-5)
    # the dropped stream really is noise at t = 1, the other untouched
    x_d, t_d = without_modality(p.tokens, t, p.modality, VIDEO, null)
    assert torch.equal(x_d[:, p.modality == VIDEO], null[:, p.modality == VIDEO])
    assert torch.all(t_d[:, p.modality == VIDEO] == 1) and torch.equal(
        x_d[:, p.modality == AUDIO], p.tokens[:, p.modality == AUDIO]
    )
    # only audio sync on: one extra branch, and video tokens get plain text guidance
    calls.clear()
    kw = {"video_guidance": 3.0, "audio_guidance": 2.0, "audio_sync": 4.0, "null": null}
    only = guided_velocity(counting, p.positions, p.modality, cond, uncond, **kw)(p.tokens, t)
    assert calls == [6]
    plain = apply_guidance(v_c, v_u, modality_scale(p.modality, 3.0, 2.0))
    assert torch.allclose(only[:, p.modality == VIDEO], plain[:, p.modality == VIDEO], atol=1e-5)
    assert not torch.allclose(only[:, p.modality == AUDIO], plain[:, p.modality == AUDIO], atol=1e-3)
    with pytest.raises(ConfigError, match="null"):
        guided_velocity(model, p.positions, p.modality, cond, uncond, audio_sync=1.0)
    with pytest.raises(ConfigError, match="video_sync"):
        guided_velocity(model, p.positions, p.modality, cond, uncond, video_sync=float("nan"), null=null)
    with pytest.raises(ShapeError, match="null"):
        guided_velocity(model, p.positions, p.modality, cond, uncond, audio_sync=1.0, null=null[:1])(
            p.tokens, t
        )


def test_generate_tokens_sync_off_is_unchanged_and_on_changes_only_the_generated_stream() -> None:
    model, p, *_, cond, uncond = _setup()

    def run(task: str, **kw: float) -> torch.Tensor:
        gen = torch.Generator().manual_seed(7)
        return generate_tokens(
            model, p, cond, uncond, task=task, sampling=SamplingConfig(steps=3, **kw), generator=gen
        )

    base = run("t2av")
    assert torch.equal(run("t2av", video_sync=0.0, audio_sync=0.0), base)
    synced = run("t2av", audio_sync=3.0)
    assert torch.equal(synced, run("t2av", audio_sync=3.0))  # seeded: reproducible
    assert not torch.allclose(synced[:, p.modality == AUDIO], base[:, p.modality == AUDIO], atol=1e-3)
    a2v = run("a2v", video_sync=2.0)  # dubbing: the video follows the given audio harder
    assert torch.equal(a2v[:, p.modality == AUDIO], p.tokens[:, p.modality == AUDIO])
    assert not torch.allclose(a2v[:, p.modality == VIDEO], run("a2v")[:, p.modality == VIDEO], atol=1e-3)


def test_given_masks_for_each_task() -> None:
    _, p, *_ = _setup()
    lay = p.layout
    assert not given_mask("t2av", lay, 2).any()
    a2v = given_mask("a2v", lay, 2)
    assert a2v.shape == (2, lay.num_tokens) and torch.equal(a2v[0], p.modality == AUDIO)
    assert torch.equal(given_mask("v2a", lay, 2)[1], p.modality == VIDEO)
    cont = given_mask("continue", lay, 1, p.positions, seconds=0.15)
    assert torch.equal(cont[0], p.positions[:, 0] < 0.15)
    assert cont[0, p.modality == VIDEO].any() and cont[0, p.modality == AUDIO].any()
    with pytest.raises(ConfigError, match="unknown task"):
        given_mask("i2v", lay, 1)
    with pytest.raises(ShapeError):
        given_mask("continue", lay, 1)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_audio_to_video_returns_the_given_audio_unchanged(name: str) -> None:
    model, p, video, audio, cond, uncond = _setup()
    given = given_mask("a2v", p.layout, 2)
    g = torch.Generator().manual_seed(7)
    x = initial_state(p.layout, 2, given, p.tokens, generator=g)
    assert torch.equal(x[given], p.tokens[given])
    fn = guided_velocity(model, p.positions, p.modality, cond, uncond, video_guidance=4.0, audio_guidance=3.0)
    with torch.no_grad():
        out = SAMPLERS[name](fn, x, hold_given(schedule(3, shift=2.0), given), generator=g)
    v_out, a_out = unpack(out, p.layout)
    assert torch.equal(a_out, audio)
    assert v_out.shape == video.shape and torch.isfinite(v_out).all() and not torch.allclose(v_out, video)


def test_video_to_audio_and_same_seed_same_result() -> None:
    model, p, video, _, cond, uncond = _setup()
    given = given_mask("v2a", p.layout, 2)
    fn = guided_velocity(model, p.positions, p.modality, cond, uncond, video_guidance=1.0, audio_guidance=3.0)

    def run(seed: int) -> torch.Tensor:
        x = initial_state(p.layout, 2, given, p.tokens, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return SAMPLERS["euler"](fn, x, hold_given(schedule(3), given))

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(unpack(a, p.layout)[0], video)


def test_initial_state_noise_and_errors() -> None:
    _, p, *_ = _setup()
    none = torch.zeros(2, p.layout.num_tokens, dtype=torch.bool)
    x = initial_state(p.layout, 2, none, generator=torch.Generator().manual_seed(0))
    assert x.shape == p.tokens.shape and torch.all(x[:, ~p.layout.feature_mask()] == 0)
    assert x[:, p.layout.feature_mask()].std() == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ShapeError, match="given_tokens"):
        initial_state(p.layout, 2, given_mask("a2v", p.layout, 2))


def test_text_states_cat_pads_and_masks() -> None:
    a = TextStates(torch.ones(1, 3, 4), torch.ones(1, 3, dtype=torch.bool))
    b = TextStates(torch.ones(2, 5, 4), torch.ones(2, 5, dtype=torch.bool))
    c = TextStates.cat([a, b])
    assert c.states.shape == (3, 5, 4) and c.mask[0].tolist() == [True] * 3 + [False] * 2
    assert torch.all(c.states[0, 3:] == 0) and len(a.repeat(3)) == 3


def test_generate_tokens_continuation_and_seed() -> None:
    model, p, *_, cond, uncond = _setup()
    steps_seen: list[int] = []
    out = generate_tokens(
        model,
        p,
        cond,
        uncond,
        task="continue",
        seconds=0.15,
        sampling=SamplingConfig(steps=4, sampler="ab2"),
        generator=torch.Generator().manual_seed(3),
        callback=lambda i, x: steps_seen.append(i),
    )
    kept = p.positions[:, 0] < 0.15
    assert steps_seen == [0, 1, 2, 3]
    assert torch.equal(out[:, kept], p.tokens[:, kept]) and not torch.allclose(
        out[:, ~kept], p.tokens[:, ~kept]
    )
    a = generate_tokens(
        model, p, cond, None, sampling=SamplingConfig(steps=2), generator=torch.Generator().manual_seed(5)
    )
    b = generate_tokens(
        model, p, cond, None, sampling=SamplingConfig(steps=2), generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(a, b) and a.shape == p.tokens.shape
