"""Per-group settings of the joint trainer: each clip's group (synth family, folder subfolder) is kept with
its latents and cache; ``joint.group_loss_weights`` scales that group's video / audio loss terms and
``joint.group_flow`` lets it train on another task mix (e.g. talk on audio-to-video while the rest keep
video-to-audio), leaving the other groups' draws and the validation loss as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avgen.config import from_dict
from avgen.data.synth import SynthConfig, make_sample, sample_family
from avgen.diffusion.flow import FlowConfig, per_sample_flow_loss
from avgen.errors import ConfigError, ShapeError
from avgen.train.joint import JointTask
from avgen.train.joint_config import JointConfig
from avgen.train.latents import folder_group

FAMILIES = {"bounce": 0.5, "keys": 0.5}
CFG = {
    "batch_size": 4,
    "caption_dropout": 0.0,
    "val_batches": 2,
    "model": {"preset": "tiny", "video_codec": "tiny", "audio_codec": "tiny", "text_encoder": "tiny"},
    "data": {"n": 8, "val_n": 4, "size": [32, 32], "duration": 1.0, "families": FAMILIES},
}


def _task(tmp_path: Path | None = None, **extra) -> JointTask:
    cfg = {**CFG, **extra}
    if tmp_path is not None:
        cfg["data"] = {**cfg["data"], "cache_dir": str(tmp_path)}
    return JointTask(from_dict(JointConfig, cfg))


def _loss_and_logs(task: JointTask, indices: list[int]) -> tuple[float, dict]:
    loss, logs = task.loss(task.model, {"indices": indices, "slots": indices}, step=3)
    return float(loss.detach()), {k: float(v) for k, v in logs.items()}


def _loss(task: JointTask, indices: list[int]) -> float:
    return _loss_and_logs(task, indices)[0]


@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_family_is_make_sample_family_without_rendering(split: str) -> None:
    for cfg in (SynthConfig(), SynthConfig(families={"talk": 0.2, "keys": 0.8})):
        for seed in range(24):
            assert sample_family(seed, split, cfg) == make_sample(seed, split, cfg).family


def test_groups_are_families_and_survive_the_cache_also_from_older_caches(tmp_path: Path) -> None:
    task = _task(tmp_path)
    synth = SynthConfig(families=FAMILIES)
    expected = [sample_family(i, "train", synth) for i in range(8)]
    assert task.train_set.groups == expected and set(expected) == {"bounce", "keys"}
    assert task.val_set.groups == [sample_family(i, "val", synth) for i in range(4)]
    again = _task(tmp_path)  # from the cache
    assert again.train_set.groups == expected
    assert again.train_set.captions == task.train_set.captions

    # a cache written before groups were stored: the groups come back from the seeds
    from safetensors import safe_open

    from avgen.atomic import save_safetensors

    for path in tmp_path.glob("latents-*.safetensors"):
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["avgen"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        del meta["groups"]
        save_safetensors(tensors, path, metadata={"avgen": json.dumps(meta)})
    old = _task(tmp_path)
    assert old.train_set.groups == expected
    torch.testing.assert_close(old.train_set.audio[3], task.train_set.audio[3])


def test_group_weights_scale_each_samples_terms_and_leave_validation_alone() -> None:
    torch.manual_seed(0)
    plain = _task()
    groups = plain.train_set.groups
    bounce = [i for i, g in enumerate(groups) if g == "bounce"]
    batch = list(range(8))
    base = _loss(plain, batch)

    ones = _task(group_loss_weights={"keys": {"video": 1.0, "audio": 1.0}})
    ones.model.load_state_dict(plain.model.state_dict())
    assert _loss(ones, batch) == pytest.approx(base, rel=1e-6)

    off = _task(group_loss_weights={"keys": {"video": 0.0, "audio": 0.0}})
    off.model.load_state_dict(plain.model.state_dict())
    only_bounce = _loss(plain, bounce)  # the same per-sample draws: seeds come from each sample's slot
    assert _loss(off, batch) == pytest.approx(only_bounce * len(bounce) / len(batch), rel=1e-4)

    double_audio = _task(group_loss_weights={"bounce": {"audio": 2.0}})
    double_audio.model.load_state_dict(plain.model.state_dict())
    weights = double_audio.group_weights(double_audio.train_set, batch)
    assert weights.tolist() == [[1.0, 2.0] if g == "bounce" else [1.0, 1.0] for g in groups]
    assert _loss(double_audio, batch) > base
    assert plain.group_weights(plain.train_set, batch) is None

    # validation stays the plain flow loss, comparable across runs with other weights
    assert off.evaluate(off.model, 0, Path("unused"))["val_loss"] == pytest.approx(
        plain.evaluate(plain.model, 0, Path("unused"))["val_loss"], rel=1e-6
    )


def test_group_weight_gradients_follow_the_weights() -> None:
    task = _task(group_loss_weights={"keys": {"audio": 0.0, "video": 0.0}})
    keys = [i for i, g in enumerate(task.train_set.groups) if g == "keys"]
    loss, _ = task.loss(task.model, {"indices": keys, "slots": keys}, step=0)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert all(p.grad is None or not p.grad.any() for p in task.model.parameters())


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"keys": {"sound": 0.5}}, "'video' and/or 'audio'"),
        ({"keys": {}}, "'video' and/or 'audio'"),
        ({"keys": 0.5}, r"group_loss_weights\.keys: expected a mapping"),
        ({"keys": {"audio": -1.0}}, r"keys\.audio must be a finite number >= 0"),
        ({"keys": {"audio": float("nan")}}, r"keys\.audio must be a finite number >= 0"),
        ({"keys": {"audio": "low"}}, r"keys\.audio: expected a number, got 'low' \(str\)$"),
    ],
)
def test_bad_group_weights_are_named(weights: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_dict(JointConfig, {**CFG, "group_loss_weights": weights})


@pytest.mark.parametrize(
    ("field", "value"),
    [("group_loss_weights", {"key": {"audio": 0.2}}), ("group_flow", {"key": {"clean_prob": 0.5}})],
)
def test_a_group_no_clip_belongs_to_is_an_error_that_lists_the_groups(field: str, value: dict) -> None:
    with pytest.raises(ConfigError, match=rf"joint\.{field} names \['key'\].*\['bounce', 'keys'\]"):
        _task(**{field: value})


def test_folder_group_is_the_top_level_subfolder(tmp_path: Path) -> None:
    (tmp_path / "speech" / "en").mkdir(parents=True)
    assert folder_group(tmp_path, tmp_path / "speech" / "en" / "a.mp4") == "speech"
    assert folder_group(str(tmp_path), str(tmp_path / "a.mp4")) == ""
    assert folder_group(tmp_path / "speech", tmp_path / "other" / "b.mp4") == ""


def test_per_sample_flow_loss_checks_the_weight_shape() -> None:
    x0 = torch.randn(2, 6, 4)
    modality = torch.tensor([0, 0, 0, 1, 1, 1])
    t = torch.full((2, 6), 0.5)
    fmask = torch.ones(6, 4, dtype=torch.bool)
    cfg = FlowConfig()
    plain = per_sample_flow_loss(x0, x0, x0 * 0, t, modality, fmask, cfg)
    w = torch.tensor([[1.0, 0.0], [0.5, 2.0]])
    weighted = per_sample_flow_loss(x0, x0, x0 * 0, t, modality, fmask, cfg, w)
    torch.testing.assert_close(weighted.total, w[:, 0] * plain.video + w[:, 1] * plain.audio)
    torch.testing.assert_close(weighted.audio, plain.audio)
    with pytest.raises(ShapeError, match=r"sample_weights must be \(B, 2\)"):
        per_sample_flow_loss(x0, x0, x0 * 0, t, modality, fmask, cfg, torch.ones(2))


def test_folder_clips_take_their_top_level_subfolder_as_group(tmp_path: Path) -> None:
    import numpy as np

    from avgen.clip import AVClip
    from avgen.io import write_av

    rng = np.random.default_rng(0)
    files = ["speech/en/a.mp4", "speech/b.mp4", "foley/c.mp4", "d.mp4"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        clip = AVClip(
            video=rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8),
            fps=24,
            audio=rng.uniform(-0.5, 0.5, (1, 16000)).astype(np.float32),
            sample_rate=16000,
        )
        write_av(tmp_path / name, clip)
    lines = [json.dumps({"file": f, "caption": f"clip {f}"}) for f in files]
    (tmp_path / "captions.jsonl").write_text("\n".join(lines) + "\n")
    data = {"source": "folder", "root": str(tmp_path), "size": [32, 32], "duration": 1.0, "val_n": 0}
    task = _task(data=data, batch_size=2, group_loss_weights={"foley": {"audio": 3.0}})
    groups = dict(zip(task.train_set.captions, task.train_set.groups, strict=True))
    assert groups == {
        "clip speech/en/a.mp4": "speech",
        "clip speech/b.mp4": "speech",
        "clip foley/c.mp4": "foley",
        "clip d.mp4": "",
    }
    weights = task.group_weights(task.train_set, list(range(len(files))))
    assert sorted(weights[:, 1].tolist()) == [1.0, 1.0, 1.0, 3.0]


# --- group_flow --------------------------------------------------------------------------------------
NO_CLEAN = {"flow": {"clean_prob": 0.0}}  # only group_flow gives a modality clean
KEYS_GIVEN_SOUND = {"keys": {"clean_prob": 1.0, "clean_modality": "audio", "independent_prob": 0.0}}


def test_flow_for_overrides_only_the_named_group() -> None:
    cfg = from_dict(JointConfig, {**CFG, **NO_CLEAN, "group_flow": KEYS_GIVEN_SOUND})
    assert cfg.flow_for("bounce") is cfg.flow
    keys = cfg.flow_for("keys")
    assert (keys.clean_prob, keys.clean_modality, keys.independent_prob) == (1.0, "audio", 0.0)
    assert isinstance(keys, FlowConfig) and keys.logit_std == cfg.flow.logit_std


def test_a_group_given_its_sound_has_no_audio_loss_and_the_others_draw_as_before() -> None:
    plain = _task(**NO_CLEAN)
    task = _task(**NO_CLEAN, group_flow=KEYS_GIVEN_SOUND)
    task.model.load_state_dict(plain.model.state_dict())
    groups = task.train_set.groups
    keys = [i for i, g in enumerate(groups) if g == "keys"]
    bounce = [i for i, g in enumerate(groups) if g == "bounce"]
    assert keys and bounce

    _, given = _loss_and_logs(task, keys)
    assert given["audio_mse"] == 0.0 and given["video_mse"] > 0.0  # the sound is given clean: no loss on it
    _, plain_keys = _loss_and_logs(plain, keys)
    assert plain_keys["audio_mse"] > 0.0

    # bounce samples keep the run's flow and the same per-sample random draws
    assert _loss(task, bounce) == pytest.approx(_loss(plain, bounce), rel=1e-6)
    # validation always uses the run's flow
    assert task.evaluate(task.model, 0, Path("unused"))["val_loss"] == pytest.approx(
        plain.evaluate(plain.model, 0, Path("unused"))["val_loss"], rel=1e-6
    )


@pytest.mark.parametrize(
    ("group_flow", "match"),
    [
        ({"keys": {"shift": 3.0}}, r"group_flow\.keys\.shift: a group may only override independent_prob"),
        ({"keys": {"video_weight": 0.0}}, r"group_flow\.keys\.video_weight"),
        ({"keys": {}}, r"group_flow\.keys must map fields"),
        ({"keys": 0.5}, r"group_flow\.keys: expected a mapping"),
        ({"keys": {"clean_prob": 1.5}}, r"group_flow\.keys: FlowConfig\.clean_prob must be in \[0, 1\]"),
        ({"keys": {"clean_modality": "sound"}}, r"group_flow\.keys: FlowConfig\.clean_modality"),
        ({"keys": {"clean_prob": "half"}}, r"group_flow\.keys"),
    ],
)
def test_bad_group_flow_is_named(group_flow: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_dict(JointConfig, {**CFG, **NO_CLEAN, "group_flow": group_flow})


def test_a_synth_trained_model_reads_prompts_in_the_synth_grammar() -> None:
    task = _task()
    assert task.pipeline_config.prompt_style == "avgen-synth"  # users' words rewritten to its captions
    assert "melody" in task.pipeline_config.vocabulary
    assert _task(pipeline={"prompt_style": "raw"}).pipeline_config.prompt_style == "raw"
