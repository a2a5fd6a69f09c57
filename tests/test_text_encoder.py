"""Text encoder: the shipped MiniLM (int8 pack) and a tiny random one; empty and over-long prompts; save/load."""

from __future__ import annotations

import time

import pytest
import torch

from avgen.errors import CheckpointError, ConfigError
from avgen.model import TextEncoder, TextEncoderConfig, tiny_text_encoder


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder.from_config(TextEncoderConfig(max_length=24))


def test_minilm_states_mask_and_empty_prompt(minilm: TextEncoder) -> None:
    out = minilm(["a dog barks twice", ""])
    assert minilm.dim == 384
    assert out.states.shape[0] == 2 and out.states.shape[2] == 384 and out.states.dtype == torch.float32
    assert out.mask.dtype == torch.bool and out.mask[0].sum() == 7  # [CLS] a dog bark ##s twice [SEP]
    assert out.mask[1].sum() == 2  # the empty prompt keeps [CLS] [SEP]
    assert torch.all(out.states[1, 2:] == 0) and out.states.shape[1] == 7 and torch.isfinite(out.states).all()
    # padding does not change a prompt's states
    alone = minilm("a dog barks twice")
    assert torch.allclose(alone.states[0], out.states[0, :7], atol=1e-5)
    # the pretrained encoder separates meanings: a paraphrase is closer than an unrelated prompt
    pooled = []
    for p in ["a dog is barking loudly", "a dog barks", "violin music in a concert hall"]:
        s = minilm(p)
        pooled.append((s.states[0] * s.mask[0, :, None]).sum(0) / s.mask.sum())
    cos = torch.nn.functional.cosine_similarity
    assert cos(pooled[0], pooled[1], dim=0) > cos(pooled[0], pooled[2], dim=0) + 0.2


def test_minilm_truncates_long_prompts_with_a_warning(minilm: TextEncoder) -> None:
    long = " ".join(["thunder"] * 60)
    with pytest.warns(UserWarning, match="truncated to max_length=24"):
        out = minilm([long, "rain"])
    assert out.states.shape[1] == 24 and out.mask[0].all()


def test_tiny_encoder_is_deterministic_and_round_trips(tmp_path) -> None:
    enc = tiny_text_encoder(dim=32, seed=0)
    out = enc(["abc def", ""])
    assert out.states.shape == (2, 8, 32) and out.mask.sum(1).tolist() == [
        8,
        2,
    ]  # [CLS] a ##b ##c d ##e ##f [SEP]
    assert torch.equal(tiny_text_encoder(dim=32, seed=0)(["abc def"]).states[0], out.states[0])
    assert not torch.equal(tiny_text_encoder(dim=32, seed=1)(["abc def"]).states[0], out.states[0])
    assert all(not p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.model.training  # frozen encoder never enables dropout
    enc.save_pretrained(tmp_path / "text")
    loaded = TextEncoder.from_config(TextEncoderConfig(path=str(tmp_path / "text"), max_length=16))
    again = loaded(["abc def", ""])
    assert torch.equal(again.states, out.states) and torch.equal(again.mask, out.mask)
    with pytest.warns(UserWarning, match="truncated"):
        assert enc("x" * 40).states.shape[1] == 16


def test_missing_folder_and_hub_ids_fail_fast() -> None:
    start = time.monotonic()
    with pytest.raises(CheckpointError, match="does not download"):
        TextEncoder.from_pretrained("google/umt5-small")
    with pytest.raises(CheckpointError, match="not a local text encoder folder"):
        TextEncoder.from_config(TextEncoderConfig(path="/nonexistent/t5"))
    assert time.monotonic() - start < 2.0
    with pytest.raises(ConfigError, match="max_length"):
        TextEncoderConfig(max_length=1)
    with pytest.raises(ConfigError, match="prompts"):
        tiny_text_encoder()([])
