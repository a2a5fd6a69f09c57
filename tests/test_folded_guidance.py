"""Guidance folded into the DiT: per-sample guidance scales, one forward per step for a folded pipeline, the
guidance-scale input of a DiT (``guidance_embed``), old pipeline folders loading unchanged, clear refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from avgen.config import to_dict
from avgen.diffusion.folded import check_guidance, folded_velocity, guidance_vector
from avgen.diffusion.guidance import guided_velocity
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import ConfigError
from avgen.limits.memory import guidance_branches
from avgen.model.dit import GUIDANCE_SCALES, JointDiT, tiny_dit
from avgen.model.text import TextStates
from avgen.pipeline import AVPipeline, PipelineConfig, tiny_pipeline
from avgen.pipeline_config import config_from_json, shipped_path
from avgen.tokens import ShapeError, TokenSpec, latent_times, pack
from avgen.train.joint_parts import grow_dit

KW = {"seconds": 0.25, "height": 16, "width": 16, "seed": 1, "progress": False}


def _inputs(spec: TokenSpec, batch: int = 2, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    p = pack(
        spec,
        torch.randn(batch, spec.video_channels, 3, 4, 4, generator=g),
        torch.randn(batch, spec.audio_channels, 12, generator=g),
        latent_times(3, 6.25),
        latent_times(12, 50.0),
    )
    x = torch.randn(p.tokens.shape, generator=g) * p.layout.feature_mask()
    t = torch.rand(batch, 1, generator=g).expand(-1, p.layout.num_tokens).contiguous()
    text = TextStates(torch.randn(batch, 4, 32, generator=g), torch.ones(batch, 4, dtype=torch.bool))
    null = torch.randn(p.tokens.shape, generator=g) * p.layout.feature_mask()
    return p, x, t, text, null


def test_per_sample_scales_give_each_sample_its_own_guidance() -> None:
    spec = TokenSpec(video_channels=4, audio_channels=6)
    model = tiny_dit(spec).eval()
    p, x, t, text, null = _inputs(spec)
    uncond = TextStates(torch.zeros(1, 1, 32), torch.ones(1, 1, dtype=torch.bool))
    scales = {"video_guidance": [4.0, 1.5], "audio_guidance": [3.0, 1.0], "video_sync": [2.0, 0.0]}
    with torch.no_grad():
        both = guided_velocity(
            model,
            p.positions,
            p.modality,
            text,
            uncond,
            null=null,
            **{k: torch.tensor(v) for k, v in scales.items()},
        )(x, t)
        for b in range(2):
            alone = guided_velocity(
                model,
                p.positions,
                p.modality,
                TextStates(text.states[b : b + 1], text.mask[b : b + 1]),
                uncond,
                null=null[b : b + 1],
                **{k: v[b] for k, v in scales.items()},
            )(x[b : b + 1], t[b : b + 1])
            assert torch.allclose(both[b], alone[0], atol=1e-5)
    with pytest.raises(ShapeError, match="one per sample"):
        guided_velocity(model, p.positions, p.modality, text, uncond, video_guidance=torch.ones(3))(x, t)
    with pytest.raises(ConfigError, match="video_sync must be"):
        guided_velocity(
            model, p.positions, p.modality, text, uncond, video_sync=torch.tensor([1.0, float("nan")])
        )


def _counting(pipe: AVPipeline) -> list[int]:
    """The batch size of every DiT forward the pipeline makes from now on."""
    seen: list[int] = []
    pipe.dit.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    return seen


@pytest.mark.parametrize(("sampler", "steps", "evals"), [("euler", 3, 3), ("dpm2m", 4, 4), ("heun", 3, 5)])
def test_a_folded_pipeline_runs_one_forward_per_evaluation(sampler: str, steps: int, evals: int) -> None:
    guided = tiny_pipeline()
    guided.config = dataclasses.replace(
        guided.config, sampling=SamplingConfig(steps=steps, sampler=sampler, video_sync=2.0)
    )
    folded = tiny_pipeline()
    folded.config = dataclasses.replace(
        folded.config, sampling=dataclasses.replace(guided.config.sampling, guidance="folded")
    )
    seen_guided, seen_folded = _counting(guided), _counting(folded)
    guided("a red ball", **KW)
    folded("a red ball", **KW)
    assert seen_guided == [3] * evals  # conditional, unconditional and sync branches in one batch
    assert seen_folded == [1] * evals
    assert guidance_branches(guided.config.sampling) == 3 and guidance_branches(folded.config.sampling) == 1


def test_a_folded_dit_that_reads_the_scales_gets_them_every_forward() -> None:
    pipe = tiny_pipeline()
    pipe.dit = grow_dit(pipe.dit, {"guidance_embed": True}, "tiny").eval()
    with torch.no_grad():  # live weights on the new embedding: the scales change the output
        for p in pipe.dit.guidance_embed.parameters():
            p.normal_(0.0, 0.3)
    pipe.config = dataclasses.replace(pipe.config, sampling=SamplingConfig(steps=2, guidance="folded"))
    seen: list[torch.Tensor] = []
    pipe.dit.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["guidance"]), with_kwargs=True
    )
    a = pipe("a red ball", **KW)
    b = pipe("a red ball", video_guidance=7.0, video_sync=1.0, **KW)
    assert seen[0].tolist() == [[4.0, 3.0, 0.0, 0.0]] and seen[-1].tolist() == [[7.0, 3.0, 1.0, 0.0]]
    assert not (a.video == b.video).all()


def test_folded_velocity_is_one_plain_forward() -> None:
    spec = TokenSpec(video_channels=4, audio_channels=6)
    model = tiny_dit(spec).eval()
    p, x, t, text, _ = _inputs(spec)
    with torch.no_grad():
        out = folded_velocity(model, p.positions, p.modality, text)(x, t)
        assert torch.equal(out, model(x, t, p.positions, p.modality, text.states, text.mask))
        one = TextStates(text.states[:1], text.mask[:1])  # one prompt for the batch
        assert torch.equal(
            folded_velocity(model, p.positions, p.modality, one)(x, t),
            guided_velocity(model, p.positions, p.modality, one)(x, t),
        )
    assert guidance_vector(SamplingConfig(video_sync=2.0), 3).tolist() == [[4.0, 3.0, 2.0, 0.0]] * 3


def test_the_guidance_input_starts_as_a_no_op_and_is_required() -> None:
    base = tiny_dit(seed=1).eval()
    student = grow_dit(base, {"guidance_embed": True}, "base").eval()
    assert set(student.state_dict()) - set(base.state_dict()) == {
        f"guidance_embed.mlp.{i}.{w}" for i in (0, 2) for w in ("weight", "bias")
    }
    spec = base.config.tokens
    p, x, t, text, _ = _inputs(spec)
    args = (x, t, p.positions, p.modality, text.states, text.mask)
    with torch.no_grad():
        scales = torch.tensor([[4.0, 3.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
        assert torch.allclose(student(*args, guidance=scales), base(*args), atol=1e-6)
        assert torch.equal(base(*args, guidance=scales), base(*args))  # a DiT without it ignores it
    with pytest.raises(ShapeError, match=r"reads guidance scales.*\(2, 4\)"):
        student(*args)
    with pytest.raises(ShapeError, match=r"got \(1, 4\)"):
        student(*args, guidance=scales[:1])
    with pytest.raises(ConfigError, match="drop the trained guidance embedding"):
        grow_dit(student, {"guidance_embed": False}, "student")
    assert len(GUIDANCE_SCALES) == 4


def test_old_pipeline_folders_load_unchanged_and_new_ones_round_trip(tmp_path) -> None:
    # A folder saved before these settings existed: the shipped one with both keys taken out.
    path = shipped_path("avgen-tiny")
    meta = json.loads((path / "pipeline.json").read_text())
    assert meta["config"]["sampling"]["guidance"] == "folded"  # the shipped avgen-tiny is distilled
    del meta["config"]["sampling"]["guidance"]
    assert config_from_json(meta, "pipeline.json").sampling.guidance == "cfg"
    old_dit = tmp_path / "old_dit"
    shutil.copytree(path / "dit", old_dit)
    dit_config = json.loads((old_dit / "config.json").read_text())
    del dit_config["guidance_embed"]
    (old_dit / "config.json").write_text(json.dumps(dit_config))
    assert not JointDiT.from_pretrained(old_dit).config.guidance_embed

    pipe = tiny_pipeline()
    pipe.dit = grow_dit(pipe.dit, {"guidance_embed": True}, "tiny")
    pipe.config = PipelineConfig(name="folded", sampling=SamplingConfig(steps=2, guidance="folded"))
    folder = pipe.save_pretrained(tmp_path / "folded")
    saved = json.loads((folder / "pipeline.json").read_text())
    assert saved["config"]["sampling"]["guidance"] == "folded"
    loaded = AVPipeline.from_pretrained(folder)
    assert loaded.config == pipe.config and loaded.dit.config.guidance_embed
    bad = {
        **saved,
        "config": {**saved["config"], "sampling": {**saved["config"]["sampling"], "guidanse": "x"}},
    }
    with pytest.raises(ConfigError, match="unknown key 'guidanse'"):
        config_from_json(bad, "pipeline.json")
    with pytest.raises(ConfigError, match="guidance 'fold'"):
        config_from_json({**saved, "config": {**saved["config"], "sampling": {"guidance": "fold"}}}, "p.json")


def test_calls_that_a_dit_cannot_honour_are_refused() -> None:
    guided = tiny_pipeline()
    with pytest.raises(ConfigError, match="was not guidance-distilled"):
        guided("a red ball", guidance="folded", **KW)
    folded = tiny_pipeline()
    folded.config = dataclasses.replace(folded.config, sampling=SamplingConfig(steps=2, guidance="folded"))
    with pytest.raises(ConfigError, match="would guide twice"):
        folded("a red ball", guidance="cfg", **KW)
    with pytest.raises(ConfigError, match=r"video_guidance: .*folded into its DiT at .*video_guidance=4\.0"):
        folded("a red ball", video_guidance=6.0, **KW)
    with pytest.raises(ConfigError, match="negative_prompt"):
        folded("a red ball", negative_prompt="blurry", **KW)
    with pytest.raises(ConfigError, match="list of negative prompts"):
        folded(["a red ball", "a blue ball"], negative_prompt=["blurry", "dark"], **KW)
    folded("a red ball", video_guidance=4.0, steps=1, sampler="euler", **KW)  # its own scales: fine
    stored = folded.config.sampling
    check_guidance(stored.replace(video_guidance=6.0), stored, reads_scales=True)  # a knob when it reads them
    with pytest.raises(ConfigError, match="negative_prompt"):
        check_guidance(stored.replace(negative_prompt="x"), stored, reads_scales=True)
    assert to_dict(stored)["guidance"] == "folded"
