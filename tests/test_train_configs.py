"""Recipes: every shipped config loads and validates; bad keys and overrides fail by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from avgen.errors import ConfigError
from avgen.train.recipe import codec_config, load_recipe, main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_configs_folder_has_the_recipes():
    names = {p.name for p in CONFIGS}
    assert {"tiny_audio_codec.yaml", "tiny_video_vae.yaml", "tiny_joint.yaml"} <= names
    assert {"small_joint_gpu.yaml", "base_joint_gpu.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path):
    cfg = load_recipe(path)
    if cfg.task != "joint":
        codec = codec_config(cfg)
        assert codec.kind == cfg.task.split("_")[0] and codec.steps == cfg.loop.steps


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_unknown_keys_fail_with_their_name(tmp_path):
    for text, name in [
        ("task: joint\nloop: {stepz: 3}\n", "stepz"),
        ("task: joint\njoint: {model: {video_codec: tiny, audio_codec: tiny, presett: tiny}}\n", "presett"),
        ("task: joint\njoint: {model: {video_codec: tiny, audio_codec: tiny, dit: {widht: 8}}}\n", "widht"),
        ("task: joint\njoint: {flow: {clean_prop: 0.1}}\n", "clean_prop"),
        ("task: video_codec\ncodec: {data: x, crop_sise: 8}\n", "crop_sise"),
        ("task: audio_codec\ncodec: {data: x, steps: 8}\n", "steps"),  # a loop setting in the wrong section
        ("tsk: joint\n", "tsk"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_recipe(_write(tmp_path, text))


def test_bad_values_fail():
    with pytest.raises(ConfigError, match="task"):
        load_recipe(CONFIGS[0], ["task=images"])
    with pytest.raises(ConfigError, match="strategy"):
        load_recipe(CONFIGS[0], ["distributed.strategy=zero3"])


def test_overrides_apply_and_mistyped_ones_fail(tmp_path):
    path = Path(__file__).parents[1] / "configs" / "tiny_joint.yaml"
    cfg = load_recipe(
        path, ["loop.steps=7", "joint.model.preset=tiny", "joint.data.size=[32, 48]"], out=str(tmp_path)
    )
    assert cfg.loop.steps == 7 and cfg.joint.model.preset == "tiny" and cfg.joint.data.size == (32, 48)
    assert cfg.out == str(tmp_path)
    with pytest.raises(ConfigError, match="stpes"):
        load_recipe(path, ["loop.stpes=7"])
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe(path, ["loop.steps"])


def test_cli_print_config(capsys):
    path = Path(__file__).parents[1] / "configs" / "tiny_joint.yaml"
    assert main([str(path), "--set", "loop.steps=3", "--print-config"]) == 0
    assert '"steps": 3' in capsys.readouterr().out
