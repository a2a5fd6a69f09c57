"""JointDiT: configs and presets, adaLN-zero init, per-token timesteps, RoPE positions, save/load, errors,
compiled blocks."""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil

import pytest
import torch

from avgen.errors import CheckpointError, ConfigError
from avgen.model import PRESETS, JointDiT, dit_config, parameter_count, tiny_dit
from avgen.model_cli import main as model_cli
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenSpec, latent_times, pack

SPEC = TokenSpec(video_channels=4, audio_channels=6, video_patch=(1, 2, 2), audio_patch=2)


def _batch(b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(b, 4, 3, 4, 6, generator=g)
    a = torch.randn(b, 6, 10, generator=g)
    p = pack(SPEC, v, a, latent_times(3, 6.25), latent_times(10, 50.0))
    text = torch.randn(b, 5, 32, generator=g)
    mask = torch.ones(b, 5, dtype=torch.bool)
    mask[1, 3:] = False
    return p, text, mask


def _run(model: JointDiT, p, text, mask, t=None, positions=None) -> torch.Tensor:
    t = torch.full((p.tokens.shape[0],), 0.5) if t is None else t
    return model(p.tokens, t, p.positions if positions is None else positions, p.modality, text, mask)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="divide"):
        dit_config("tiny", width=30, heads=4)
    with pytest.raises(ConfigError, match="sum"):
        dit_config("tiny", rope_axes=(8, 8, 8))
    with pytest.raises(ConfigError, match="even"):
        dit_config("tiny", rope_axes=(7, 5, 4))
    with pytest.raises(ConfigError, match="modulation"):
        dit_config("tiny", modulation="film")
    with pytest.raises(ConfigError, match="unknown DiT preset"):
        dit_config("huge")
    with pytest.raises(ConfigError, match="unknown key"):
        dit_config("tiny", widht=32)


def test_presets_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    counts = {name: parameter_count(dit_config(name)) for name in PRESETS}
    print(counts)
    assert list(counts) == ["tiny", "default", "small", "base", "large"]
    assert sorted(counts.values()) == list(counts.values())
    assert counts["tiny"] < 200_000
    assert 2_000_000 < counts["default"] < 10_000_000  # "a few million": trainable on a 2-core CPU
    assert counts["large"] > 300_000_000
    assert parameter_count(dit_config("tiny", tokens=SPEC, text_dim=32)) == sum(
        p.numel() for p in tiny_dit(SPEC).parameters()
    )
    assert model_cli(["presets"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and f"{counts['default']:,d}" in out


def test_adaln_zero_model_outputs_zero_at_init() -> None:
    model = tiny_dit(SPEC, active=False)
    p, text, mask = _batch()
    out = _run(model, p, text, mask)
    assert out.shape == p.tokens.shape and out.dtype == torch.float32
    assert torch.count_nonzero(out) == 0


def test_padded_features_are_zero_and_output_reacts_to_input() -> None:
    model = tiny_dit(SPEC)
    p, text, mask = _batch()
    out = _run(model, p, text, mask)
    assert torch.all(out[:, ~p.layout.feature_mask()] == 0)
    assert out[:, p.layout.feature_mask()].abs().min() > 0
    # the padded input features are ignored
    noisy = dataclasses.replace(p, tokens=p.tokens + 5.0 * (~p.layout.feature_mask()))
    assert torch.equal(_run(model, noisy, text, mask), out)


def test_per_token_timesteps() -> None:
    model = tiny_dit(SPEC).eval()
    p, text, mask = _batch()
    b, seq = p.tokens.shape[:2]
    # (B,) and a constant (B, L) are the same thing
    t = torch.tensor([0.3, 0.8])
    assert torch.allclose(
        _run(model, p, text, mask, t), _run(model, p, text, mask, t[:, None].expand(b, seq))
    )
    # modulation is computed per token: changing t at token i changes that token's conditioning only
    t_tok = p.layout.per_token(torch.tensor([0.2, 0.2]), torch.tensor([0.7, 0.7]))
    t_new = t_tok.clone()
    t_new[0, 5] = 0.9
    c_old, c_new = model.time_embed(t_tok), model.time_embed(t_new)
    changed = (c_old != c_new).any(-1)
    assert changed[0, 5] and changed.sum() == 1
    # in the full model it changes sample 0 (through attention) and never sample 1
    out_old, out_new = _run(model, p, text, mask, t_tok), _run(model, p, text, mask, t_new)
    assert not torch.allclose(out_old[0, 5], out_new[0, 5])
    assert torch.equal(out_old[1], out_new[1])
    # video and audio at different noise levels in one pass differ from both at one level
    same = _run(model, p, text, mask, torch.full((b, seq), 0.2))
    assert not torch.allclose(out_old[:, p.modality == VIDEO], same[:, p.modality == VIDEO])


def test_constant_runs_split_by_modality_and_timestep() -> None:
    from avgen.model.layers import constant_runs

    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    t = torch.tensor([[0.5] * 7, [0.2] * 4 + [0.0] * 3])
    assert constant_runs(t, modality) == [4, 3]
    t[1, :2] = 0.0  # a clean prefix in one sample (continuation) splits the run for the whole batch
    assert constant_runs(t, modality) == [2, 2, 3]
    assert constant_runs(torch.rand(2, 7), modality, max_runs=8) == [1] * 7
    assert constant_runs(torch.rand(2, 7), modality, max_runs=6) is None


@pytest.mark.parametrize("modulation", ["shared", "block"])
@pytest.mark.parametrize("pattern", ["one", "per_modality", "prefix", "per_token"])
def test_run_modulation_equals_per_token_modulation(
    monkeypatch: pytest.MonkeyPatch, modulation: str, pattern: str
) -> None:
    import avgen.model.dit as dit_module

    cfg = dataclasses.replace(tiny_dit(SPEC).config, modulation=modulation)
    torch.manual_seed(0)
    model = JointDiT(cfg)
    with torch.no_grad():
        for q in model.parameters():
            q.add_(0.1 * torch.randn_like(q))
    p, text, mask = _batch()
    b, seq = p.tokens.shape[:2]
    t = {
        "one": torch.full((b, seq), 0.4),
        "per_modality": p.layout.per_token(torch.tensor([0.3, 0.9]), torch.tensor([0.0, 0.6])),
        "prefix": p.layout.per_token(torch.tensor([0.3, 0.9]), torch.tensor([0.5, 0.6])),
        "per_token": torch.rand(b, seq, generator=torch.Generator().manual_seed(1)),
    }[pattern]
    if pattern == "prefix":
        t[:, :8] = 0.0
    x = p.tokens.clone().requires_grad_(True)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        x.grad = None
        out = model(x, t, p.positions, p.modality, text, mask)
        out.square().sum().backward()
        return out.detach(), x.grad.clone()

    fast_out, fast_grad = run()
    monkeypatch.setattr(dit_module, "constant_runs", lambda t, modality: None)  # force per token
    slow_out, slow_grad = run()
    assert torch.allclose(fast_out, slow_out, atol=1e-6) and torch.allclose(fast_grad, slow_grad, atol=1e-6)


def test_positions_are_explicit_ids_not_sequence_order() -> None:
    model = tiny_dit(SPEC).eval()
    p, text, mask = _batch()
    out = _run(model, p, text, mask)
    # permuting tokens (with their positions and modality) permutes the output
    perm = torch.randperm(p.tokens.shape[1], generator=torch.Generator().manual_seed(1))
    out_perm = model(
        p.tokens[:, perm], torch.full((2,), 0.5), p.positions[perm], p.modality[perm], text, mask
    )
    assert torch.allclose(out_perm, out[:, perm], atol=1e-5)
    # RoPE is relative: shifting every time by 3 s (or h/w by 2) leaves the output unchanged
    shifted = p.positions + torch.tensor([3.0, 2.0, 2.0])
    assert torch.allclose(_run(model, p, text, mask, positions=shifted), out, atol=1e-4)
    # ...but moving the audio 0.2 s against the video does change it
    moved = p.positions.clone()
    moved[p.modality == AUDIO, 0] += 0.2
    assert not torch.allclose(_run(model, p, text, mask, positions=moved), out, atol=1e-3)


def test_text_mask_hides_padding_and_text_matters() -> None:
    model = tiny_dit(SPEC).eval()
    p, text, mask = _batch()
    out = _run(model, p, text, mask)
    junk = text.clone()
    junk[1, 3:] = 100.0  # masked-out positions of sample 1
    assert torch.allclose(_run(model, p, junk, mask), out, atol=1e-6)
    other = text.clone()
    other[0, 0] += 1.0
    assert not torch.allclose(_run(model, p, other, mask)[0], out[0])


@pytest.mark.parametrize(
    "overrides", [{"modulation": "block"}, {"modulation": "shared", "per_modality_mlp": True}]
)
def test_variants_and_gradient_checkpointing_match(overrides: dict) -> None:
    cfg = dit_config("tiny", tokens=SPEC, text_dim=32, **overrides)
    torch.manual_seed(0)
    model = JointDiT(cfg)
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(0.1 * torch.randn_like(prm))
    ckpt = JointDiT(dataclasses.replace(cfg, gradient_checkpointing=True))
    ckpt.load_state_dict(model.state_dict())
    p, text, mask = _batch()
    grads = []
    for m in (model, ckpt):
        m.zero_grad()
        _run(m, p, text, mask).pow(2).mean().backward()
        grads.append(torch.cat([q.grad.flatten() for q in m.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert grads[0].abs().sum() > 0
    if overrides.get("per_modality_mlp"):
        # the audio MLP only sees audio tokens: its grads vanish if only video output is trained
        model.zero_grad()
        out = _run(model, p, text, mask)
        out[:, p.modality == VIDEO].sum().backward(retain_graph=True)
        assert model.blocks[-1].mlps[AUDIO].fc1.weight.grad.abs().sum() == 0


def test_save_load_gives_bitwise_same_output(tmp_path) -> None:
    model = tiny_dit(SPEC).eval()
    p, text, mask = _batch()
    model.save_pretrained(tmp_path / "dit")
    loaded = JointDiT.from_pretrained(tmp_path / "dit").eval()
    assert loaded.config == model.config
    assert torch.equal(_run(loaded, p, text, mask), _run(model, p, text, mask))
    assert not list((tmp_path / "dit").glob("*.part"))  # no temp file of avgen.atomic left behind
    other = tiny_dit(TokenSpec(video_channels=5, audio_channels=6))
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text((tmp_path / "dit" / "config.json").read_text())
    with pytest.raises(CheckpointError, match="shape"):
        JointDiT.from_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="not found"):
        JointDiT.from_pretrained(tmp_path / "missing")


def test_bad_inputs_raise_shape_errors() -> None:
    model = tiny_dit(SPEC)
    p, text, mask = _batch()
    t = torch.full((2,), 0.5)
    with pytest.raises(ShapeError, match="packed tokens"):
        model(p.tokens[..., :5], t, p.positions, p.modality, text, mask)
    with pytest.raises(ShapeError, match="t must be"):
        model(p.tokens, torch.full((3,), 0.5), p.positions, p.modality, text, mask)
    with pytest.raises(ShapeError, match="positions"):
        model(p.tokens, t, p.positions[:, :2], p.modality, text, mask)
    with pytest.raises(ShapeError, match="text states"):
        model(p.tokens, t, p.positions, p.modality, text[..., :8], mask)
    with pytest.raises(ShapeError, match="NaN"):
        model(p.tokens * float("nan"), t, p.positions, p.modality, text, mask)
    with pytest.raises(ShapeError, match="no True"):
        model(p.tokens, t, p.positions, p.modality, text, torch.zeros_like(mask))
    with pytest.raises(ShapeError, match="modality"):
        model(p.tokens, t, p.positions, p.modality.float(), text, mask)


def test_bf16_autocast_keeps_fp32_velocity() -> None:
    model = tiny_dit(SPEC).eval()
    p, text, mask = _batch()
    ref = _run(model, p, text, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = _run(model, p, text, mask)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="inductor on the CPU needs a C++ compiler"
)
def test_compiled_blocks_match_eager_forward_and_backward() -> None:
    """Inductor (the default backend) on the CPU: velocities and gradients as eager, weights untouched."""
    eager = tiny_dit(SPEC)
    compiled = copy.deepcopy(eager).compile_blocks()
    assert all(b._compiled_call_impl is not None for b in compiled.blocks)
    p, text, mask = _batch()
    t = torch.tensor([0.3, 0.8])
    outs, grads = [], []
    for model in (eager, compiled):
        model.zero_grad()
        out = _run(model, p, text, mask, t=t)
        (out**2).mean().backward()
        outs.append(out.detach())
        grads.append({n: q.grad.clone() for n, q in model.named_parameters()})
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-3, atol=1e-5, msg=name)
    # Same state-dict keys (no "_orig_mod." prefix), so checkpoints and save_pretrained are unchanged.
    assert list(compiled.state_dict()) == list(eager.state_dict())
    # A deep copy (the loop's EMA / export copy) is a plain eager module with its own weights.
    twin = copy.deepcopy(compiled)
    assert all(b._compiled_call_impl is None for b in twin.blocks)
    with torch.no_grad():
        next(twin.parameters()).add_(1.0)
        assert not torch.equal(_run(twin, p, text, mask, t=t), outs[1])
