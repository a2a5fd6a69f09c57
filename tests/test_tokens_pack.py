"""Packing: exact inverse at odd sizes and aspect ratios; time-aligned positions; bad input errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen.errors import ConfigError
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenSpec, latent_times, pack, positions, unpack


def _pack(
    spec: TokenSpec, v: torch.Tensor, a: torch.Tensor, video_rate: float = 6.0, audio_rate: float = 50.0
):
    return pack(spec, v, a, latent_times(v.shape[2], video_rate), latent_times(a.shape[2], audio_rate))


@pytest.mark.parametrize("hw", [(8, 8), (6, 14), (13, 5)], ids=["square", "wide", "tall-odd"])
@pytest.mark.parametrize("patch", [(1, 2, 2), (2, 2, 3), (1, 1, 1)])
def test_pack_unpack_is_exact_inverse(hw: tuple[int, int], patch: tuple[int, int, int]) -> None:
    spec = TokenSpec(video_channels=3, audio_channels=5, video_patch=patch, audio_patch=3)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 3, 5, *hw, generator=g)  # 5 latent frames: odd, not a multiple of pt=2
    a = torch.randn(2, 5, 37, generator=g)  # 37 audio frames: not a multiple of pa=3
    p = _pack(spec, v, a)
    assert p.tokens.shape == (2, p.layout.num_tokens, spec.feature_dim)
    v2, a2 = unpack(p.tokens, p.layout)
    assert torch.equal(v2, v) and torch.equal(a2, a)
    # padding features are zero, real ones carry the data
    assert torch.all(p.tokens[:, ~p.layout.feature_mask()] == 0)


@settings(max_examples=25, deadline=None)
@given(
    t=st.integers(1, 6),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    n=st.integers(1, 40),
    pt=st.integers(1, 3),
    ph=st.integers(1, 3),
    pw=st.integers(1, 3),
    pa=st.integers(1, 4),
)
def test_pack_unpack_roundtrip_any_size(
    t: int, h: int, w: int, n: int, pt: int, ph: int, pw: int, pa: int
) -> None:
    spec = TokenSpec(video_channels=2, audio_channels=3, video_patch=(pt, ph, pw), audio_patch=pa)
    v = torch.randn(1, 2, t, h, w)
    a = torch.randn(1, 3, n)
    p = _pack(spec, v, a)
    v2, a2 = unpack(p.tokens, p.layout)
    assert torch.equal(v2, v) and torch.equal(a2, a)
    assert p.positions.shape == (p.layout.num_tokens, 3)
    assert p.layout.num_video == -(-t // pt) * -(-h // ph) * -(-w // pw)
    assert p.layout.num_audio == -(-n // pa)


def test_token_order_follows_the_einops_patch_layout() -> None:
    spec = TokenSpec(video_channels=1, audio_channels=1, video_patch=(1, 2, 2), audio_patch=2)
    v = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 1, 2, 4, 4)
    a = torch.arange(6, dtype=torch.float32).reshape(1, 1, 6)
    p = _pack(spec, v, a)
    # first token: frame 0, rows 0-1, cols 0-1; second: cols 2-3
    assert p.tokens[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert p.tokens[0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]
    # audio: frames (0, 1) then (2, 3), zero-padded to the video feature width
    assert p.tokens[0, 8].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert p.modality.tolist() == [VIDEO] * 8 + [AUDIO] * 3


def test_same_second_shares_t_whatever_the_rates() -> None:
    # video latents at 25/4 = 6.25 per s (0.16 s apart), audio at 50 per s, one audio frame per token
    spec = TokenSpec(video_channels=2, audio_channels=2, video_patch=(1, 2, 2), audio_patch=1)
    v, a = torch.zeros(1, 2, 13, 4, 4), torch.zeros(1, 2, 100)
    p = pack(spec, v, a, latent_times(13, 25 / 4), latent_times(100, 50.0))
    pos, mod = p.positions, p.modality
    video_t = pos[mod == VIDEO, 0].unique()
    audio_t = pos[mod == AUDIO, 0]
    assert torch.allclose(video_t, torch.arange(13) * 0.16, atol=1e-6)
    # every video time within the audio's span is also an audio time (to float precision)
    for t in video_t[video_t < 2.0]:
        assert (audio_t - t).abs().min() < 1e-6
    # both span the same 2 seconds
    assert audio_t.max() == pytest.approx(1.98) and video_t.max() == pytest.approx(1.92)


def test_group_time_is_the_mean_of_its_frames() -> None:
    spec = TokenSpec(video_channels=1, audio_channels=1, video_patch=(2, 1, 1), audio_patch=4)
    p = pack(
        spec,
        torch.zeros(1, 1, 3, 1, 1),
        torch.zeros(1, 1, 6),
        torch.tensor([0.0, 1.0, 2.0]),
        latent_times(6, 4),
    )
    assert p.positions[:, 0].tolist() == pytest.approx([0.5, 2.0, 0.375, 1.125])


def test_audio_positions_never_collide_with_video() -> None:
    spec = TokenSpec(
        video_channels=1, audio_channels=1, video_patch=(1, 1, 1), audio_patch=1, audio_hw_offset=-1.0
    )
    v, a = torch.zeros(1, 1, 9, 5, 7), torch.zeros(1, 1, 100)
    p = _pack(spec, v, a, video_rate=4.0, audio_rate=50.0)
    video_ids = {tuple(r) for r in p.positions[p.modality == VIDEO].tolist()}
    audio_ids = {tuple(r) for r in p.positions[p.modality == AUDIO].tolist()}
    assert len(video_ids) == p.layout.num_video and len(audio_ids) == p.layout.num_audio
    assert not video_ids & audio_ids
    assert (p.positions[p.modality == AUDIO, 1:] == -1.0).all()
    assert p.positions[p.modality == VIDEO, 1].max() == 4 and p.positions[p.modality == VIDEO, 2].max() == 6


def test_layout_helpers() -> None:
    spec = TokenSpec(video_channels=2, audio_channels=3, video_patch=(1, 2, 2), audio_patch=2)
    p = _pack(spec, torch.zeros(2, 2, 3, 4, 4), torch.zeros(2, 3, 10))
    lay = p.layout
    assert lay.per_token(0.3, 0.7).tolist() == pytest.approx([0.3] * 12 + [0.7] * 5)
    both = lay.per_token(torch.tensor([0.1, 0.2]), torch.tensor([0.5, 0.6]))
    assert both.shape == (2, 17) and both[1, -1] == pytest.approx(0.6)
    fm = lay.feature_mask()
    assert fm.shape == (17, 8) and fm[:12].all() and fm[12:, :6].all() and not fm[12:, 6:].any()


def test_bad_inputs_raise_clear_errors() -> None:
    spec = TokenSpec(video_channels=2, audio_channels=3)
    v, a = torch.zeros(1, 2, 3, 4, 4), torch.zeros(1, 3, 10)
    with pytest.raises(ShapeError, match="channels"):
        _pack(spec, torch.zeros(1, 5, 3, 4, 4), a)
    with pytest.raises(ShapeError, match=r"\(B, C, T, H, W\)"):
        _pack(spec, torch.zeros(2, 3, 4, 4), a)
    with pytest.raises(ShapeError, match="batch"):
        _pack(spec, v, torch.zeros(2, 3, 10))
    with pytest.raises(ShapeError, match="video_times"):
        pack(spec, v, a, latent_times(4, 6.0), latent_times(10, 50.0))
    with pytest.raises(ShapeError, match="NaN"):
        pack(spec, v, a, torch.tensor([0.0, float("nan"), 1.0]), latent_times(10, 50.0))
    with pytest.raises(ShapeError, match="floating"):
        _pack(spec, v.long(), a)
    with pytest.raises(ShapeError, match="for this layout"):
        unpack(torch.zeros(1, 3, 12), _pack(spec, v, a).layout)
    with pytest.raises(ShapeError):
        latent_times(3, 0.0)
    with pytest.raises(ConfigError, match="audio_hw_offset"):
        TokenSpec(audio_hw_offset=0.0)
    with pytest.raises(ConfigError, match="video_patch"):
        TokenSpec(video_patch=(1, 0, 2))


def test_positions_function_matches_pack() -> None:
    spec = TokenSpec(video_channels=1, audio_channels=1)
    p = _pack(spec, torch.zeros(1, 1, 3, 4, 6), torch.zeros(1, 1, 9))
    again = positions(p.layout, latent_times(3, 6.0), latent_times(9, 50.0))
    assert torch.equal(again, p.positions) and again.dtype == torch.float32
