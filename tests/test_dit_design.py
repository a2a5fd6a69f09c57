"""The DiT's design options: clean-sample (x) prediction read back as velocity, the bottleneck video
embedding, and modality-specific first/last blocks; each stored in the DiT's config, so older models load."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from avgen.diffusion.samplers import SAMPLERS, hold_given, schedule
from avgen.errors import ConfigError
from avgen.model import JointDiT, dit_config
from avgen.model.dit import x_to_velocity
from avgen.model.layers import ByModality, Modalities
from avgen.tokens import AUDIO, VIDEO, TokenSpec, latent_times, pack

SPEC = TokenSpec(video_channels=4, audio_channels=6, video_patch=(2, 2, 2), audio_patch=2)


def _batch(b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    p = pack(
        SPEC,
        torch.randn(b, 4, 4, 4, 6, generator=g),
        torch.randn(b, 6, 10, generator=g),
        latent_times(4, 6.25),
        latent_times(10, 50.0),
    )
    return p, torch.randn(b, 5, 32, generator=g), torch.ones(b, 5, dtype=torch.bool)


def _model(**overrides) -> JointDiT:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = JointDiT(dit_config("tiny", tokens=SPEC, text_dim=32, **overrides))
        with torch.no_grad():
            for prm in model.parameters():
                prm.add_(0.1 * torch.randn_like(prm))
    return model.eval()


def test_x_to_velocity_at_both_ends_of_t() -> None:
    x_t, x0 = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    t = torch.tensor([[1.0, 0.5, 0.01]])
    v = x_to_velocity(x_t, x0, t, min_t=0.05)
    assert torch.allclose(v[0, 0], x_t[0, 0] - x0[0, 0])  # t = 1: the noise minus the clean sample
    assert torch.allclose(v[0, 1], (x_t[0, 1] - x0[0, 1]) / 0.5)
    assert torch.allclose(v[0, 2], (x_t[0, 2] - x0[0, 2]) / 0.05)  # near clean: clamped, finite
    # an exact clean prediction gives the exact velocity of the path
    clean, noise = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    tt = torch.tensor([[0.9, 0.3, 0.06]])
    xt = (1 - tt[..., None]) * clean + tt[..., None] * noise
    assert torch.allclose(x_to_velocity(xt, clean, tt, 0.05), noise - clean, atol=1e-5)


def test_x_prediction_is_the_same_network_read_as_clean_tokens() -> None:
    v_model, x_model = _model(), _model(prediction="x")
    assert all(
        torch.equal(a, b) for a, b in zip(v_model.state_dict().values(), x_model.state_dict().values())
    )
    p, text, mask = _batch()
    t = torch.rand(2, p.layout.num_tokens, generator=torch.Generator().manual_seed(1))
    raw = v_model(p.tokens, t, p.positions, p.modality, text, mask)  # the last layer's output
    out = x_model(p.tokens, t, p.positions, p.modality, text, mask)
    assert torch.allclose(out, x_to_velocity(p.tokens, raw, t, 0.05), atol=1e-5)
    assert torch.all(out[:, ~p.layout.feature_mask()] == 0)  # padding stays zero


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("prediction", ["v", "x"])
def test_every_sampler_runs_on_both_targets(sampler: str, prediction: str) -> None:
    model = _model(prediction=prediction)
    p, text, mask = _batch()
    given = torch.zeros(2, p.layout.num_tokens, dtype=torch.bool)
    given[:, p.modality == AUDIO] = True  # video-to-audio shape of problem: audio held
    x = torch.where(
        given[..., None], p.tokens, torch.randn(p.tokens.shape, generator=torch.Generator().manual_seed(2))
    )

    def velocity(xx: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        return model(xx, tt, p.positions, p.modality, text, mask)

    out = SAMPLERS[sampler](
        velocity, x, hold_given(schedule(4), given), generator=torch.Generator().manual_seed(3)
    )
    assert torch.isfinite(out).all() and torch.equal(out[given], p.tokens[given])


def test_bottleneck_embedding_and_modality_blocks() -> None:
    model = _model(video_bottleneck=8, modality_blocks=1, depth=2)
    assert [m.weight.shape for m in model.video_in] == [(8, SPEC.video_dim), (32, 8)]
    assert all(isinstance(b.attn.qkv, ByModality) and len(b.mlps) == 2 for b in model.blocks)
    deep = _model(depth=4, modality_blocks=1)
    assert [isinstance(b.attn.qkv, ByModality) for b in deep.blocks] == [True, False, False, True]
    p, text, mask = _batch()
    t = torch.full((2,), 0.5)
    out = model(p.tokens, t, p.positions, p.modality, text, mask)
    # the last block's audio MLP comes after its attention: it cannot touch the video tokens' output
    with torch.no_grad():
        model.blocks[-1].mlps[AUDIO].fc2.bias.add_(1.0)
    moved = model(p.tokens, t, p.positions, p.modality, text, mask)
    video = p.modality == VIDEO
    assert torch.equal(moved[:, video], out[:, video]) and not torch.allclose(
        moved[:, ~video], out[:, ~video]
    )
    with pytest.raises(ConfigError, match="modality_blocks"):
        dit_config("tiny", tokens=SPEC, modality_blocks=2)  # depth 2: first 2 and last 2 overlap
    with pytest.raises(ConfigError, match="prediction"):
        dit_config("tiny", tokens=SPEC, prediction="eps")


def test_modality_layers_slice_a_packed_sequence_and_gather_any_other() -> None:
    p, text, mask = _batch()
    packed = Modalities.of(p.modality, VIDEO, AUDIO)
    assert packed.split == int((p.modality == VIDEO).sum())  # pack: all video tokens, then all audio
    perm = torch.randperm(len(p.modality), generator=torch.Generator().manual_seed(0))
    assert Modalities.of(p.modality[perm], VIDEO, AUDIO).split is None
    model = _model(video_bottleneck=8, modality_blocks=1, bridge_window=0.125)
    t = torch.full((2,), 0.4)
    out = model(p.tokens, t, p.positions, p.modality, text, mask)  # sliced
    shuffled = model(p.tokens[:, perm], t, p.positions[perm], p.modality[perm], text, mask)  # gathered
    assert torch.allclose(shuffled, out[:, perm], atol=1e-5)


def test_options_round_trip_and_older_configs_load(tmp_path) -> None:
    model = _model(prediction="x", video_bottleneck=8, modality_blocks=1)
    model.save_pretrained(tmp_path / "dit")
    again = JointDiT.from_pretrained(tmp_path / "dit")
    assert again.config == model.config
    p, text, mask = _batch()
    t = torch.full((2,), 0.7)
    assert torch.equal(
        again(p.tokens, t, p.positions, p.modality, text, mask),
        model(p.tokens, t, p.positions, p.modality, text, mask),
    )
    old = _model()
    old.save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    for key in ("prediction", "prediction_min_t", "video_bottleneck", "modality_blocks"):
        del cfg[key]  # a DiT saved before these options existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    assert JointDiT.from_pretrained(tmp_path / "old").config == dataclasses.replace(old.config)


def test_a_joint_recipe_trains_and_exports_each_design(tmp_path) -> None:
    """x-prediction, 2x2x2 video tokens, a bottleneck and modality blocks go through the one training path
    and come back from the exported pipeline folder as they were trained."""
    from avgen.pipeline import AVPipeline
    from avgen.train.recipe import load_recipe, run

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "task: joint\n"
        "loop: {steps: 2, lr: 1.0e-3, warmup: 1, log_every: 1, eval_every: 0, ckpt_every: 2, num_threads: 1}\n"
        "joint:\n"
        "  batch_size: 2\n"
        "  val_batches: 1\n"
        "  model: {preset: tiny, video_codec: tiny, audio_codec: tiny, text_encoder: tiny, text_max_length: 32,\n"
        "          video_patch: [2, 2, 2],\n"
        "          dit: {prediction: x, video_bottleneck: 8, modality_blocks: 1}}\n"
        f"  data: {{n: 4, val_n: 2, size: [32, 32], duration: 1.0, cache_dir: {tmp_path / 'latents'}}}\n"
        "  flow: {logit_mean: 0.8, uniform_prob: 0.0}\n"
    )
    result = run(load_recipe(recipe, out=str(tmp_path / "run")), progress=False)
    assert result["status"] == "done" and result["final"]["val_loss"] > 0
    pipe = AVPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    cfg = pipe.dit.config
    assert (cfg.prediction, cfg.video_bottleneck, cfg.modality_blocks) == ("x", 8, 1)
    clip = pipe("a red ball bounces", seconds=1.0, steps=2, seed=0, progress=False)
    assert clip.video.shape[1:3] == (32, 32)
