"""Recipes: every config under configs/ loads and validates; the default model's chain reads only what its own
earlier stages make, as the Makefile runs it; bad keys and overrides fail by name."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from avgen.errors import ConfigError
from avgen.train.recipe import TrainConfig, codec_config, load_recipe, main

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
CHAIN = sorted((ROOT / "configs" / "avgen-tiny").glob("*.yaml"))
EXAMPLE = ROOT / "configs" / "examples" / "small_dit_synth.yaml"
# Tasks whose run exports a pipeline folder (the others export a codec).
PIPELINE_TASKS = ("joint", "distill")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT / "configs").as_posix()


def test_configs_folder_has_the_recipes():
    names = {_rel(p) for p in CONFIGS}
    assert {
        "avgen-tiny/1_video_autoencoder.yaml",
        "avgen-tiny/1_audio_codec.yaml",
        "avgen-tiny/2_video_decoder_mouth.yaml",
        "avgen-tiny/3_joint.yaml",
        "avgen-tiny/4_distill.yaml",
    } <= names
    assert {"small_joint_gpu.yaml", "base_joint_gpu.yaml", "examples/small_dit_synth.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_every_config_loads(path: Path):
    cfg = load_recipe(path)
    if cfg.task not in PIPELINE_TASKS:
        codec = codec_config(cfg)
        assert codec.kind == cfg.task.split("_")[0] and codec.steps == cfg.loop.steps


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_every_config_says_what_it_makes_and_how_long(path: Path):
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(header)
    assert f"train configs/{_rel(path)}" in text, f"{_rel(path)}: its header does not give the command"
    assert "# Time" in text, f"{_rel(path)}: its header does not say how long it takes, on what"
    assert not re.search(r"\bsession \d|\bprobe\b|\bv\d+\b", text, re.IGNORECASE), _rel(path)


def _stage(path: Path) -> int:
    return int(path.name.split("_")[0])


def _inputs(cfg: TrainConfig) -> dict[str, str]:
    """The run folders a recipe reads, by the key that names each."""
    if cfg.task in PIPELINE_TASKS:
        m = cfg.joint.model
        found = {
            "joint.model.init_from": m.init_from,
            "joint.model.video_codec": m.video_codec,
            "joint.model.audio_codec": m.audio_codec,
        }
    else:
        found = {"codec.init_from": cfg.codec.get("init_from")}
    return {key: value for key, value in found.items() if value is not None}


def test_chain_reads_only_what_its_earlier_stages_make():
    recipes = {p: load_recipe(p) for p in CHAIN}
    outs = {p: PurePosixPath(cfg.out) for p, cfg in recipes.items()}
    (root,) = {out.parent for out in outs.values()}  # one folder holds the whole chain
    assert root.parts[0] == "runs" and len(set(outs.values())) == len(CHAIN)
    # What each stage leaves for the next: its codec folder, or its DiT's pipeline folder.
    made = {
        str(outs[p] / ("pipeline" if cfg.task in PIPELINE_TASKS else "codec")): p
        for p, cfg in recipes.items()
    }
    for p, cfg in recipes.items():
        wanted = {
            "joint.model.init_from": "joint",
            "joint.model.video_codec": "video_codec",
            "joint.model.audio_codec": "audio_codec",
            "codec.init_from": cfg.task,
        }
        for key, value in _inputs(cfg).items():
            assert value in made, f"{_rel(p)}: {key} {value!r} is no output of the chain under {root}"
            source = made[value]
            assert _stage(source) < _stage(p), f"{_rel(p)}: {key} names {_rel(source)}, not an earlier stage"
            kind = recipes[source].task
            assert kind == wanted[key], (
                f"{_rel(p)}: {key} names what a {kind} stage makes, not a {wanted[key]} stage"
            )


def _make_rules() -> dict[str, str]:
    """Each chain recipe's Makefile command (its continuation lines joined), by recipe name."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    rules = {}
    for line in text.splitlines():
        m = re.search(r"\$\(CHAIN\)/(\S+\.yaml)", line)
        if m:
            assert m.group(1) not in rules, f"Makefile runs {m.group(1)} twice"
            rules[m.group(1)] = line
    return rules


def test_makefile_runs_every_stage_with_the_recipes_own_paths():
    rules = _make_rules()
    assert set(rules) == {p.name for p in CHAIN}
    for p in CHAIN:
        cfg = load_recipe(p)
        runs = str(PurePosixPath(cfg.out).parent)
        line = rules[p.name].replace("$(RUNS)", runs)
        assert f"--out {cfg.out} " in line + " ", f"Makefile: {p.name} writes elsewhere than its out:"
        given = dict(re.findall(r"--set ((?:joint\.model|codec)\.\w+)=(\S+)", line))
        assert given == _inputs(cfg), f"Makefile: {p.name} gets {given}, the recipe names {_inputs(cfg)}"


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
    cfg = load_recipe(
        EXAMPLE, ["loop.steps=7", "joint.model.dit.depth=2", "joint.data.size=[32, 48]"], out=str(tmp_path)
    )
    assert cfg.loop.steps == 7 and cfg.joint.model.dit["depth"] == 2 and cfg.joint.data.size == (32, 48)
    assert cfg.out == str(tmp_path)
    with pytest.raises(ConfigError, match="stpes"):
        load_recipe(EXAMPLE, ["loop.stpes=7"])
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe(EXAMPLE, ["loop.steps"])


def test_cli_print_config(capsys):
    assert main([str(EXAMPLE), "--set", "loop.steps=3", "--print-config"]) == 0
    assert '"steps": 3' in capsys.readouterr().out
