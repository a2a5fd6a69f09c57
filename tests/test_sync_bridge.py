"""The sync bridge: its mask, its locality in time, the zero start, and that a DiT without it is unchanged."""

from __future__ import annotations

import pytest
import torch

from avgen.errors import ConfigError
from avgen.model import JointDiT, dit_config, parameter_count
from avgen.model.bridge import SyncBridge, bridge_mask
from avgen.model.layers import rope_angles, rope_tables
from avgen.tokens import AUDIO, VIDEO, TokenSpec, latent_times, pack

SPEC = TokenSpec(video_channels=4, audio_channels=6, video_patch=(1, 2, 2), audio_patch=2)


def _packed(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(2, 4, 6, 4, 4, generator=g)  # 6 latent frames at 6.25/s: 0.96 s
    a = torch.randn(2, 6, 48, generator=g)  # 48 audio latents at 50/s -> 24 tokens
    return pack(SPEC, v, a, latent_times(6, 6.25), latent_times(48, 50.0))


def test_mask_pairs_other_modality_within_window_plus_self() -> None:
    times = torch.tensor([0.0, 0.5, 0.0, 0.1, 0.45, 0.9])
    modality = torch.tensor([VIDEO, VIDEO, AUDIO, AUDIO, AUDIO, AUDIO])
    m = bridge_mask(times, modality, 0.12)[0, 0]
    expected = torch.tensor(
        [
            [1, 0, 1, 1, 0, 0],
            [0, 1, 0, 0, 1, 0],
            [1, 0, 1, 0, 0, 0],
            [1, 0, 0, 1, 0, 0],
            [0, 1, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 1],  # nothing of the other modality near: itself only
        ],
        dtype=torch.bool,
    )
    assert torch.equal(m, expected)
    per_sample = bridge_mask(torch.stack([times, times + 1.0]), modality, 0.12)
    assert per_sample.shape == (2, 1, 6, 6) and torch.equal(per_sample[1, 0], expected)


def test_bridge_output_depends_only_on_the_other_modality_within_the_window() -> None:
    p = _packed()
    torch.manual_seed(0)
    bridge = SyncBridge(32, heads=2, head_dim=8)
    torch.nn.init.normal_(bridge.attn.proj.weight)
    rope = rope_tables(rope_angles(p.positions, (4, 2, 2), 10000.0, (25.0, 1.0, 1.0)))
    mask = bridge_mask(p.positions[:, 0], p.modality, 0.1)
    x = torch.randn(2, p.tokens.shape[1], 32)
    out = bridge(x, rope, mask)
    times, modality = p.positions[:, 0], p.modality
    query = int(torch.nonzero(modality == AUDIO)[0])  # the first audio token (t = 0.01 s)
    far_video = torch.nonzero((modality == VIDEO) & ((times - times[query]).abs() > 0.1)).flatten()
    near_video = torch.nonzero((modality == VIDEO) & ((times - times[query]).abs() <= 0.1)).flatten()
    other_audio = torch.nonzero(modality == AUDIO).flatten()[1:]
    assert len(far_video) and len(near_video)
    y = x.clone()
    y[:, far_video] += 5.0
    y[:, other_audio] += 5.0
    assert torch.allclose(bridge(y, rope, mask)[:, query], out[:, query], atol=1e-5)
    y = x.clone()
    y[:, near_video[:1]] += 5.0
    assert not torch.allclose(bridge(y, rope, mask)[:, query], out[:, query], atol=1e-3)


def test_bridged_dit_starts_as_the_unbridged_one_and_learns_through_the_bridge() -> None:
    p = _packed()
    text, mask = torch.randn(2, 5, 32), torch.ones(2, 5, dtype=torch.bool)
    t = torch.full((2,), 0.5)
    plain = JointDiT(dit_config("tiny", tokens=SPEC, text_dim=32))
    with torch.no_grad():  # make the zero-initialised (adaLN-zero) layers live
        for q in plain.parameters():
            q.add_(0.1 * torch.randn_like(q))
    bridged = JointDiT(dit_config("tiny", tokens=SPEC, text_dim=32, bridge_window=0.1))
    missing, unexpected = bridged.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".bridge." in k for k in missing)
    args = (p.tokens, t, p.positions, p.modality, text, mask)
    assert torch.allclose(plain(*args), bridged(*args), atol=1e-6)  # bridge.attn.proj starts at zero
    bridged(*args).square().mean().backward()
    assert bridged.blocks[0].bridge.attn.proj.weight.grad.abs().sum() > 0


def test_config_and_size() -> None:
    with pytest.raises(ConfigError, match="bridge_window"):
        dit_config("tiny", bridge_window=-0.1)
    with pytest.raises(ConfigError, match="bridge_heads"):
        dit_config("tiny", bridge_heads=0)
    base = parameter_count(dit_config("default"))
    extra = parameter_count(dit_config("default", bridge_window=0.125)) - base
    # per block: a (256 -> 3 x 128) qkv, a (128 -> 256) projection, three norms
    assert extra == 6 * (256 * 384 + 384 + 128 * 256 + 256 + 256 + 64 + 64)
    assert "bridge" not in " ".join(JointDiT(dit_config("tiny", tokens=SPEC, text_dim=32)).state_dict())
