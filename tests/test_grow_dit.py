"""Fine-tuning a pipeline (joint.model.init_from) with a sync bridge added: what it may and may not change."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from avgen.config import from_dict
from avgen.errors import ConfigError
from avgen.model.dit import tiny_dit
from avgen.train.joint_config import JointModelConfig
from avgen.train.joint_parts import GROWABLE_DIT_FIELDS, build_parts, grow_dit


def _forward(dit: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    """One forward on a small random sequence: 4 video then 3 audio tokens, positions on one time axis."""
    g = torch.Generator().manual_seed(seed)
    spec = dit.config.tokens
    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    times = torch.tensor([0.0, 0.0, 0.1, 0.1, 0.0, 0.05, 0.1])
    positions = torch.stack([times, torch.tensor([0, 1, 0, 1, -1, -1, -1.0]), torch.zeros(7)], dim=-1)
    x = torch.randn(2, 7, spec.feature_dim, generator=g)
    t = torch.rand(2, generator=g)
    text = torch.randn(2, 3, dit.config.text_dim, generator=g)
    with torch.no_grad():
        return dit(x, t, positions, modality, text, torch.ones(2, 3, dtype=torch.bool))


def test_a_bridge_grown_onto_a_trained_dit_starts_as_the_same_function() -> None:
    base = tiny_dit(seed=1)
    grown = grow_dit(base, {"bridge_window": 0.125}, "base")
    assert grown is not base and grown.config.bridge_window == 0.125
    assert all(hasattr(b, "bridge") for b in grown.blocks) and not hasattr(base.blocks[0], "bridge")
    state = grown.state_dict()
    assert all(torch.equal(state[k], v) for k, v in base.state_dict().items())  # every trained weight kept
    assert torch.allclose(_forward(grown), _forward(base), atol=1e-6)  # zero output projection: a no-op
    added = set(state) - set(base.state_dict())
    assert added and all(".bridge." in k for k in added)  # what it adds is the bridge alone


def test_settings_that_keep_the_dit_return_it_unchanged() -> None:
    base = tiny_dit(seed=1)
    assert grow_dit(base, {}, "base") is base
    assert grow_dit(base, {"bridge_window": 0.0}, "base") is base
    checkpointed = grow_dit(base, {"gradient_checkpointing": True}, "base")
    assert checkpointed.config.gradient_checkpointing
    assert torch.allclose(_forward(checkpointed), _forward(base), atol=1e-6)


def test_settings_that_change_trained_weights_are_refused_by_name() -> None:
    base = tiny_dit(seed=1)
    with pytest.raises(ConfigError, match=r"joint\.model\.dit\.width: init_from base fixes"):
        grow_dit(base, {"width": 64, "bridge_window": 0.1}, "base")
    bridged = grow_dit(base, {"bridge_window": 0.125}, "base")
    with pytest.raises(ConfigError, match="drop the trained sync bridge"):
        grow_dit(bridged, {"bridge_window": 0.0}, "bridged")
    with pytest.raises(ConfigError, match="bridge_heads: init_from bridged has a trained sync bridge of 2"):
        grow_dit(bridged, {"bridge_heads": 4}, "bridged")
    assert grow_dit(bridged, {"bridge_window": 0.125}, "bridged") is bridged  # the same bridge: kept
    assert grow_dit(bridged, {"bridge_window": 0.25}, "bridged").config.bridge_window == 0.25  # wider window
    assert set(GROWABLE_DIT_FIELDS) == {
        "bridge_window",
        "bridge_heads",
        "gradient_checkpointing",
        "phonemes",
        "phoneme_window",
        "guidance_embed",
    }


def test_init_from_a_pipeline_folder_with_a_bridge(tmp_path) -> None:
    from avgen.pipeline import tiny_pipeline

    pipe = tiny_pipeline(seed=2)
    pipe.save_pretrained(tmp_path / "p")
    m = JointModelConfig(init_from=str(tmp_path / "p"), dit={"bridge_window": 0.2})
    dit = build_parts(_joint_config(m))[0]
    assert dit.config.bridge_window == 0.2 and hasattr(dit.blocks[0], "bridge")
    assert torch.allclose(_forward(dit), _forward(pipe.dit), atol=1e-6)
    assert dit.training and all(p.requires_grad for p in dit.parameters())
    with pytest.raises(ConfigError, match=r"joint\.model\.dit\.depth"):
        build_parts(_joint_config(JointModelConfig(init_from=str(tmp_path / "p"), dit={"depth": 1})))


def _joint_config(model: JointModelConfig):
    from avgen.train.joint_config import JointConfig

    return JointConfig(model=model)


def test_trainable_freezes_all_but_the_grown_bridge(tmp_path) -> None:
    """joint.model.trainable ['*.bridge.*']: only the bridge trains; the exported DiT keeps every pretrained
    weight bit for bit, and a resumed run carries on with the same parameters frozen."""
    from avgen.pipeline import AVPipeline, tiny_pipeline
    from avgen.train.joint import JointTask
    from avgen.train.joint_config import JointConfig
    from avgen.train.loop import train
    from avgen.train.loop_config import LoopConfig

    pipe = tiny_pipeline(seed=2)
    pipe.save_pretrained(tmp_path / "p")
    model = {"init_from": str(tmp_path / "p"), "dit": {"bridge_window": 0.2}, "trainable": ["*.bridge.*"]}
    data = {"n": 4, "val_n": 2, "size": [32, 32], "duration": 1.0, "cache_dir": str(tmp_path / "cache")}
    cfg = from_dict(JointConfig, {"model": model, "batch_size": 2, "val_batches": 1, "data": data})
    task = JointTask(cfg)
    trainable = {n for n, p in task.model.named_parameters() if p.requires_grad}
    assert trainable and all(".bridge." in n for n in trainable)
    assert trainable == {n for n, _ in task.model.named_parameters() if ".bridge." in n}
    loop = LoopConfig(steps=2, lr=1e-2, warmup=0, ema_decay=0.5, eval_every=2, ckpt_every=1, log_every=1)
    train(task, loop, tmp_path / "run", progress=False)
    out = AVPipeline.from_pretrained(tmp_path / "run" / "pipeline").dit.state_dict()
    for k, v in pipe.dit.state_dict().items():
        assert torch.equal(out[k], v), k  # every pretrained weight as it was
    projections = [out[k] for k in out if k.endswith("bridge.attn.proj.weight")]
    assert projections and all(w.abs().sum() > 0 for w in projections)  # grown at zero, now trained
    resumed = JointTask(cfg)
    train(resumed, replace(loop, steps=3), tmp_path / "run", resume=True, progress=False)
    again = AVPipeline.from_pretrained(tmp_path / "run" / "pipeline").dit.state_dict()
    assert all(torch.equal(again[k], v) for k, v in pipe.dit.state_dict().items())


@pytest.mark.parametrize(
    ("trainable", "lora", "match"),
    [
        (("*.bridge.*",), {}, r"'\*\.bridge\.\*' matches no DiT parameter.*bridge_window"),
        ("*.bridge.*", {}, r"model\.trainable: expected a list, got '\*\.bridge\.\*'"),
        (("*.bridge.*",), {"rank": 4}, "joint.model.trainable and joint.lora both choose"),
    ],
)
def test_bad_trainable_patterns_are_named(tmp_path, trainable, lora, match) -> None:
    from avgen.pipeline import tiny_pipeline
    from avgen.train.joint import JointTask
    from avgen.train.joint_config import JointConfig

    tiny_pipeline(seed=2).save_pretrained(tmp_path / "p")
    data = {"n": 2, "val_n": 1, "size": [32, 32], "duration": 1.0, "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(ConfigError, match=match):
        model = {"init_from": str(tmp_path / "p"), "trainable": trainable}
        JointTask(from_dict(JointConfig, {"model": model, "lora": lora, "data": data}))
