"""End to end on a toy joint distribution: train the tiny DiT briefly, the loss falls, and text-to-AV
sampling with guidance follows the prompt in both modalities."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from avgen.diffusion import (
    FlowConfig,
    given_mask,
    guided_velocity,
    hold_given,
    initial_state,
    schedule,
    training_loss,
)
from avgen.diffusion.samplers import heun
from avgen.model import TextStates, tiny_dit, tiny_text_encoder
from avgen.tokens import TokenSpec, latent_times, pack, unpack

SPEC = TokenSpec(video_channels=2, audio_channels=2, video_patch=(1, 2, 2), audio_patch=2)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # note: matmuls this small run ~10x faster on one thread than on two busy ones (OpenMP sync costs)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy_batch(sign: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Video and audio share one hidden sign: video = sign * ramp, audio = sign * ones (+ a little noise)."""
    b = sign.shape[0]
    ramp = torch.linspace(-1, 1, 4)[None, None, None, :, None].expand(1, 2, 3, 4, 4)
    video = sign[:, None, None, None, None] * (0.5 + ramp) + 0.05 * torch.randn(b, 2, 3, 4, 4, generator=g)
    audio = sign[:, None, None] * torch.ones(b, 2, 8) + 0.05 * torch.randn(b, 2, 8, generator=g)
    return video, audio


def test_tiny_dit_learns_a_toy_joint_distribution() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    text_encoder = tiny_text_encoder(dim=32)
    prompts = text_encoder(["up", "down", ""])  # index 2: the empty prompt (dropped text)
    model = tiny_dit(SPEC, text_dim=32, active=False)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = FlowConfig(clean_prob=0.1, independent_prob=0.3)
    times = latent_times(3, 6.25), latent_times(8, 50.0)
    losses = []
    for _ in range(120):
        which = torch.randint(0, 2, (16,), generator=g)
        video, audio = _toy_batch(1.0 - 2.0 * which.float(), g)
        p = pack(SPEC, video, audio, *times)
        drop = torch.rand(16, generator=g) < 0.15
        idx = torch.where(drop, 2, which)
        text = TextStates(prompts.states[idx], prompts.mask[idx])
        fn = guided_velocity(model, p.positions, p.modality, text)  # conditional branch only
        loss = training_loss(fn, p.tokens, p.modality, p.layout.feature_mask(), cfg, g).total.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:15]) / 15, sum(losses[-15:]) / 15
    assert last < 0.5 * first, (first, last)

    # text -> audio + video with guidance: both modalities follow the prompt's sign
    model.eval()
    p = pack(SPEC, *_toy_batch(torch.ones(4), g), *times)
    cond = TextStates(prompts.states[[0, 0, 1, 1]], prompts.mask[[0, 0, 1, 1]])
    uncond = TextStates(prompts.states[2:3], prompts.mask[2:3])
    none = given_mask("t2av", p.layout, 4)
    x = initial_state(p.layout, 4, none, generator=torch.Generator().manual_seed(1))
    fn = guided_velocity(model, p.positions, p.modality, cond, uncond, video_guidance=2.0, audio_guidance=2.0)
    with torch.no_grad():
        out = heun(fn, x, hold_given(schedule(8), none))
    video, audio = unpack(out, p.layout)
    expected = torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert torch.equal(torch.sign(audio.mean((1, 2))), expected), audio.mean((1, 2))
    assert torch.equal(torch.sign(video.mean((1, 2, 3, 4))), expected), video.mean((1, 2, 3, 4))
