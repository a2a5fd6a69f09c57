"""Per-group timestep settings of the joint trainer: ``joint.group_flow`` lets one group (synth family or
folder subfolder) train on another task mix, e.g. talk clips on audio-to-video while the rest keep
video-to-audio, and leaves the other groups' draws and the validation loss as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from avgen.config import from_dict
from avgen.diffusion.flow import FlowConfig
from avgen.errors import ConfigError
from avgen.train.joint import JointConfig, JointTask

FAMILIES = {"bounce": 0.5, "keys": 0.5}
CFG = {
    "batch_size": 4,
    "caption_dropout": 0.0,
    "val_batches": 2,
    "model": {"preset": "tiny", "video_codec": "tiny", "audio_codec": "tiny", "text_encoder": "tiny"},
    "data": {"n": 8, "val_n": 4, "size": [32, 32], "duration": 1.0, "families": FAMILIES},
    "flow": {"clean_prob": 0.0},
}
KEYS_GIVEN_SOUND = {"keys": {"clean_prob": 1.0, "clean_modality": "audio", "independent_prob": 0.0}}


def _task(**extra) -> JointTask:
    return JointTask(from_dict(JointConfig, {**CFG, **extra}))


def _logs(task: JointTask, indices: list[int]) -> tuple[float, dict]:
    loss, logs = task.loss(task.model, {"indices": indices, "slots": indices}, step=3)
    return float(loss.detach()), {k: float(v) for k, v in logs.items()}


def test_flow_for_overrides_only_the_named_group() -> None:
    cfg = from_dict(JointConfig, {**CFG, "group_flow": KEYS_GIVEN_SOUND})
    assert cfg.flow_for("bounce") is cfg.flow
    keys = cfg.flow_for("keys")
    assert (keys.clean_prob, keys.clean_modality, keys.independent_prob) == (1.0, "audio", 0.0)
    assert isinstance(keys, FlowConfig) and keys.logit_std == cfg.flow.logit_std


def test_a_group_given_its_sound_has_no_audio_loss_and_the_others_draw_as_before() -> None:
    plain = _task()
    task = _task(group_flow=KEYS_GIVEN_SOUND)
    task.model.load_state_dict(plain.model.state_dict())
    groups = task.train_set.groups
    keys = [i for i, g in enumerate(groups) if g == "keys"]
    bounce = [i for i, g in enumerate(groups) if g == "bounce"]
    assert keys and bounce

    _, given = _logs(task, keys)
    assert given["audio_mse"] == 0.0 and given["video_mse"] > 0.0  # the sound is given clean: no loss on it
    _, plain_keys = _logs(plain, keys)
    assert plain_keys["audio_mse"] > 0.0

    # bounce samples keep the run's flow and the same per-sample random draws
    assert _logs(task, bounce)[0] == pytest.approx(_logs(plain, bounce)[0], rel=1e-6)
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
        ({"keys": 0.5}, r"group_flow\.keys must map fields"),
        ({"keys": {"clean_prob": 1.5}}, r"group_flow\.keys: FlowConfig\.clean_prob must be in \[0, 1\]"),
        ({"keys": {"clean_modality": "sound"}}, r"group_flow\.keys: FlowConfig\.clean_modality"),
        ({"keys": {"clean_prob": "half"}}, r"group_flow\.keys"),
    ],
)
def test_bad_group_flow_is_named(group_flow: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_dict(JointConfig, {**CFG, "group_flow": group_flow})


def test_a_group_no_clip_belongs_to_is_an_error_that_lists_the_groups() -> None:
    with pytest.raises(ConfigError, match=r"joint\.group_flow names \['talk'\].*\['bounce', 'keys'\]"):
        _task(group_flow={"talk": {"clean_prob": 0.5}})
