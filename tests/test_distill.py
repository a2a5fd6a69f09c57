"""Guidance distillation (``task: distill``): the student learns its teacher's guided velocity in one forward,
the recipe runs end to end and exports a folded pipeline, and bad settings are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avgen.config import from_dict
from avgen.diffusion.guidance import guided_velocity
from avgen.errors import ConfigError
from avgen.model.dit import JointDiT
from avgen.pipeline import AVPipeline, tiny_pipeline
from avgen.tokens import VIDEO
from avgen.train.distill import DistillConfig, DistillTask
from avgen.train.joint import FlowBatch
from avgen.train.joint_config import JointConfig
from avgen.train.recipe import TrainConfig, load_recipe, run

TEACHER_SAMPLING = {"steps": 2, "video_guidance": 4.0, "audio_guidance": 3.0, "video_sync": 2.0}
DATA = {"n": 2, "val_n": 2, "size": [32, 32], "duration": 1.0, "families": {"bounce": 1.0}}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random pipeline folder with text and sync guidance: 3 branches per step."""
    pipe = tiny_pipeline(seed=2)
    pipe.config = from_dict(type(pipe.config), {"name": "teacher", "sampling": TEACHER_SAMPLING})
    return pipe.save_pretrained(tmp_path_factory.mktemp("distill") / "teacher")


def _joint(teacher: Path, **model: object) -> JointConfig:
    return from_dict(
        JointConfig,
        {
            "batch_size": 2,
            "caption_dropout": 0.0,
            "val_batches": 1,
            "model": {"init_from": str(teacher), **model},
            "data": DATA,
            "pipeline": {"sampling": {"steps": 3, "sampler": "dpm2m"}},
        },
    )


@pytest.fixture(scope="module")
def task(teacher: Path) -> DistillTask:
    return DistillTask(_joint(teacher), DistillConfig())


def _fixed_batch(task: DistillTask) -> FlowBatch:
    """Both training clips at t = 0.7, the second given its video clean (video-to-audio); seeded noise."""
    from avgen.tokens import pack

    data = task.train_set
    geom = data.geometries[data.buckets[0]]
    video = torch.stack([data.video[0], data.video[1]])
    audio = torch.stack([data.audio[0], data.audio[1]])
    packed = pack(task.model.config.tokens, video, audio, geom.video_times(), geom.audio_times())
    t = torch.full(packed.tokens.shape[:2], 0.7)
    t[1, packed.modality == VIDEO] = 0.0
    noise = torch.randn(packed.tokens.shape, generator=torch.Generator().manual_seed(5))
    gens = [torch.Generator().manual_seed(s) for s in (11, 12)]
    return FlowBatch(packed, task._text([data.captions[0], data.captions[1]]), t, noise, gens)


def _fresh(batch: FlowBatch) -> FlowBatch:
    """The same batch with its generators back at their seeds (each step draws the same null noise)."""
    gens = [torch.Generator().manual_seed(s) for s in (11, 12)]
    return FlowBatch(batch.packed, batch.text, batch.t, batch.noise, gens)


def test_the_folded_settings_are_the_teachers_and_the_export_says_folded(task: DistillTask) -> None:
    folded = task.folded
    assert (folded.video_guidance, folded.audio_guidance, folded.video_sync) == (4.0, 3.0, 2.0)
    exported = task.pipeline_config.sampling
    assert exported.guidance == "folded" and (exported.steps, exported.sampler) == (3, "dpm2m")
    assert exported.video_sync == 2.0 and task.name == "distill"


def test_distillation_steps_lower_the_loss_on_a_fixed_batch(task: DistillTask) -> None:
    student = JointDiT(task.model.config)
    student.load_state_dict(task.model.state_dict())
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss, logs = task.batch_loss(student, task.train_set, [0, 1], [11, 12], 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        assert set(logs) == {"video_mse", "audio_mse", "tokens"}
    assert losses[0] > 0.01  # the teacher's own forward is not its guided velocity
    assert losses[2] < losses[1] < losses[0]


def test_a_converged_student_gives_the_teachers_guided_velocity(task: DistillTask, teacher: Path) -> None:
    torch.manual_seed(0)
    batch = _fixed_batch(task)
    student = JointDiT(task.model.config)
    student.load_state_dict(task.model.state_dict())
    opt = torch.optim.Adam(student.parameters(), lr=2e-3)
    first = None
    for _ in range(150):
        loss = task.flow_terms(student, _fresh(batch), task.cfg.flow).total.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())

    # The teacher's guided velocity at the same x_t, computed here from its folder and its own settings.
    pipe = AVPipeline.from_pretrained(teacher)
    packed, fmask = batch.packed, batch.packed.layout.feature_mask()
    x_t = (1 - batch.t[..., None]) * packed.tokens + batch.t[..., None] * batch.noise * fmask
    null = (
        torch.cat([torch.randn((1, *x_t.shape[1:]), generator=g) for g in _fresh(batch).generators]) * fmask
    )
    s = pipe.config.sampling
    with torch.no_grad():
        target = guided_velocity(
            pipe.dit,
            packed.positions,
            packed.modality,
            batch.text,
            pipe.text_encoder([s.negative_prompt]),
            video_guidance=s.video_guidance,
            audio_guidance=s.audio_guidance,
            video_sync=s.video_sync,
            null=null,
        )(x_t, batch.t)
        got = student(x_t, batch.t, packed.positions, packed.modality, batch.text.states, batch.text.mask)
        plain = pipe.dit(x_t, batch.t, packed.positions, packed.modality, batch.text.states, batch.text.mask)
    noisy = (batch.t > 0)[..., None] & fmask  # the given video of sample 1 carries no loss
    err = (got - target)[noisy].pow(2).mean() / target[noisy].pow(2).mean()
    before = (plain - target)[noisy].pow(2).mean() / target[noisy].pow(2).mean()
    assert err < 0.005 and err < 0.01 * before, (float(err), float(before), first)


def test_a_student_with_a_guidance_knob_learns_at_drawn_scales(teacher: Path) -> None:
    ranges = {"video_guidance": (1.0, 6.0), "video_sync": (0.0, 3.0)}
    knob = DistillTask(_joint(teacher, dit={"guidance_embed": True}), DistillConfig(guidance_ranges=ranges))
    assert knob.model.config.guidance_embed
    gens = [torch.Generator().manual_seed(s) for s in range(64)]
    scales = knob.draw_scales(gens)  # (64, 4)
    assert scales.shape == (64, 4)
    assert 1.0 <= scales[:, 0].min() < scales[:, 0].max() <= 6.0 and 0 <= scales[:, 2].min() <= 3.0
    assert (scales[:, 1] == 3.0).all() and (scales[:, 3] == 0.0).all()  # the others stay the pipeline's
    loss, _ = knob.batch_loss(knob.model, knob.train_set, [0, 1], [11, 12], 0.0)
    loss.backward()
    assert knob.model.guidance_embed.mlp[2].weight.grad.abs().sum() > 0  # the knob learns


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        ({"guidance": (1, 2)}, "not a guidance scale"),
        ({"video_guidance": (3, 1)}, "low <= high"),
        ({"audio_guidance": (-1, 1)}, "low >= 0"),
        ({"video_sync": (0, float("inf"))}, "two finite numbers"),
        ({"video_sync": (0, 1, 2)}, "two finite numbers"),
    ],
)
def test_bad_guidance_ranges_are_refused_by_name(ranges: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DistillConfig(guidance_ranges=ranges)


def test_recipes_that_cannot_distil_are_refused(teacher: Path, tmp_path: Path) -> None:
    def recipe(**sections: object) -> TrainConfig:
        base = {"task": "distill", "joint": {"model": {"init_from": str(teacher)}, "data": DATA}}
        return from_dict(TrainConfig, {**base, **sections})

    with pytest.raises(ConfigError, match="init_from must name the teacher"):
        from_dict(TrainConfig, {"task": "distill"})
    with pytest.raises(ConfigError, match=r"set joint\.model\.dit\.guidance_embed: true"):
        recipe(distill={"guidance_ranges": {"video_guidance": [1, 5]}})
    with pytest.raises(ConfigError, match=r"give distill\.guidance_ranges"):
        recipe(joint={"model": {"init_from": str(teacher), "dit": {"guidance_embed": True}}})
    with pytest.raises(ConfigError, match="LoRA trains only its adapters"):
        recipe(
            joint={
                "model": {"init_from": str(teacher), "dit": {"guidance_embed": True}},
                "lora": {"rank": 2},
            },
            distill={"guidance_ranges": {"video_guidance": [1, 5]}},
        )
    with pytest.raises(ConfigError, match="settings for task distill, but the task is 'joint'"):
        from_dict(TrainConfig, {"task": "joint", "distill": {"guidance_ranges": {"video_sync": [0, 1]}}})
    with pytest.raises(ConfigError, match="unknown key 'scales' for DistillConfig"):
        recipe(distill={"scales": {}})
    # a teacher whose guidance is folded already
    folded = tiny_pipeline()
    folded.config = from_dict(type(folded.config), {"sampling": {"guidance": "folded"}})
    folder = folded.save_pretrained(tmp_path / "folded")
    with pytest.raises(ConfigError, match="already folded"):
        DistillTask(_joint(folder), DistillConfig())


def test_the_recipe_runs_and_exports_a_folded_pipeline(teacher: Path, tmp_path: Path) -> None:
    text = f"""
task: distill
loop: {{steps: 2, lr: 1.0e-3, warmup: 1, log_every: 1, eval_every: 0, ckpt_every: 2, num_threads: 1}}
joint:
  batch_size: 2
  val_batches: 1
  model: {{init_from: {teacher}, dit: {{guidance_embed: true}}}}
  data: {{n: 2, val_n: 2, size: [32, 32], duration: 1.0, families: {{bounce: 1.0}}, cache_dir: {tmp_path / "lat"}}}
  pipeline: {{name: distilled, sampling: {{steps: 2, sampler: euler, shift: 2.0}}}}
distill:
  guidance_ranges: {{video_guidance: [1.0, 6.0]}}
"""
    (tmp_path / "r.yaml").write_text(text)
    result = run(load_recipe(tmp_path / "r.yaml", out=str(tmp_path / "run")), progress=False)
    assert result["status"] == "done" and "val_mse" in result["final"]
    meta = json.loads((tmp_path / "run" / "pipeline" / "pipeline.json").read_text())
    sampling = meta["config"]["sampling"]
    assert sampling["guidance"] == "folded" and sampling["video_sync"] == 2.0 and sampling["shift"] == 2.0
    pipe = AVPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    assert pipe.dit.config.guidance_embed
    calls: list[int] = []
    pipe.dit.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    clip = pipe("a red ball", seconds=0.5, video_guidance=5.0, progress=False)
    assert calls == [1, 1] and clip.video.shape[0] == 12
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "distill" and config["distill"]["guidance_ranges"] == {
        "video_guidance": [1.0, 6.0]
    }
