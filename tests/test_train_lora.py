"""LoRA: adapters start as the identity, only adapters train, merge gives the same outputs, adapters save."""

from __future__ import annotations

import pytest
import torch

from avgen.errors import ConfigError
from avgen.model import tiny_dit
from avgen.tokens import TokenSpec
from avgen.train.lora import (
    LoRAConfig,
    LoRALinear,
    adapter_keys,
    apply_lora,
    load_adapters,
    merge_lora,
    save_adapters,
    strip_lora,
    unmerge_lora,
)

SPEC = TokenSpec(video_channels=2, audio_channels=2, video_patch=(1, 2, 2), audio_patch=2)


def _inputs(batch: int = 2):
    g = torch.Generator().manual_seed(0)
    seq = 10
    x = torch.randn(batch, seq, SPEC.feature_dim, generator=g)
    t = torch.rand(batch, seq, generator=g)
    pos = torch.randn(seq, 3, generator=g)
    modality = torch.tensor([0] * 6 + [1] * 4)
    text = torch.randn(batch, 5, 32, generator=g)
    mask = torch.ones(batch, 5, dtype=torch.bool)
    return x, t, pos, modality, text, mask


def test_adapters_start_as_identity_and_only_they_train():
    torch.manual_seed(0)
    model = tiny_dit(SPEC, text_dim=32)
    before = model(*_inputs())
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    names = apply_lora(model, LoRAConfig(rank=2, alpha=4.0))
    assert any(n.endswith("attn.qkv") for n in names) and any(n.endswith("fc2") for n in names)
    assert any(n.endswith("cross.kv") for n in names)
    assert torch.equal(model(*_inputs()), before)  # B = 0: exactly the base model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == adapter_keys(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(*_inputs()).pow(2).mean().backward()
        opt.step()
    after = model.state_dict()
    for k, v in base_state.items():
        key = k.replace(".weight", ".base.weight").replace(".bias", ".base.bias") if k not in after else k
        assert torch.equal(after[key], v), k  # every base weight untouched
    assert not torch.equal(model(*_inputs()), before)  # the adapters moved the output


def test_merge_unmerge_and_strip_give_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    model = tiny_dit(SPEC, text_dim=32)
    apply_lora(model, LoRAConfig(rank=2))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_b.normal_(0, 0.05)
    adapted = model(*_inputs())
    merge_lora(model)
    torch.testing.assert_close(model(*_inputs()), adapted, atol=1e-5, rtol=1e-5)
    unmerge_lora(model)
    torch.testing.assert_close(model(*_inputs()), adapted, atol=1e-5, rtol=1e-5)

    save_adapters(model, LoRAConfig(rank=2), tmp_path / "lora")
    fresh = tiny_dit(SPEC, text_dim=32)
    load_adapters(fresh, tmp_path / "lora")
    torch.testing.assert_close(fresh(*_inputs()), adapted, atol=1e-6, rtol=1e-6)

    plain = strip_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in plain.modules())
    assert set(plain.state_dict()) == set(tiny_dit(SPEC, text_dim=32).state_dict())
    torch.testing.assert_close(plain(*_inputs()), adapted, atol=1e-5, rtol=1e-5)


def test_bad_lora_settings_fail():
    with pytest.raises(ConfigError, match="match no linear"):
        apply_lora(tiny_dit(SPEC, text_dim=32), LoRAConfig(rank=2, targets=("*.nothing",)))
    with pytest.raises(ConfigError, match="rank"):
        LoRAConfig(rank=-1)
    with pytest.raises(ConfigError, match="rank"):
        apply_lora(tiny_dit(SPEC, text_dim=32), LoRAConfig(rank=1000))
