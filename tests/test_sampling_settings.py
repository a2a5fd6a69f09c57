"""One sampling dataclass: validation, per-call overrides by the same names, the CLI flags made from it,
pipeline.json format 1 read into it, and the warning for prompts outside a model's vocabulary."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from avgen.config import to_dict
from avgen.diffusion import settings
from avgen.diffusion.settings import FIELDS, SamplingConfig
from avgen.errors import ConfigError
from avgen.pipeline import AVPipeline, PipelineConfig, tiny_pipeline
from avgen.pipeline_config import config_from_json, unknown_words


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("steps", 0, "steps"),
        ("steps", 2.5, "steps"),
        ("sampler", "rk99", "sampler"),
        ("order", "sideways", "order"),
        ("shift", 0.0, "shift"),
        ("video_guidance", float("nan"), "video_guidance"),
        ("audio_guidance", -1.0, "audio_guidance"),
        ("audio_sync", float("inf"), "audio_sync"),
        ("video_sync", True, "video_sync"),
        ("negative_prompt", None, "negative_prompt"),
    ],
)
def test_bad_settings_are_refused_by_name(field: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SamplingConfig(**{field: value})


def test_replace_keeps_none_and_refuses_unknown_names() -> None:
    s = SamplingConfig(steps=8, video_guidance=4.0)
    assert s.replace(steps=None, audio_sync=2.0) == SamplingConfig(
        steps=8, video_guidance=4.0, audio_sync=2.0
    )
    with pytest.raises(ConfigError, match=r"guidance_scale.*video_guidance"):
        s.replace(guidance_scale=3.0)


def test_cli_flags_are_the_field_names() -> None:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    args = parser.parse_args(["--steps", "3", "--video-guidance", "2.5", "--order", "video_first"])
    assert settings.from_arguments(args) == {"steps": 3, "video_guidance": 2.5, "order": "video_first"}
    assert settings.from_arguments(parser.parse_args([])) == {}
    flags = {a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
    assert flags == set(FIELDS)


def test_pipeline_call_takes_every_setting_and_refuses_others() -> None:
    pipe = tiny_pipeline()
    kw = {"seconds": 0.25, "height": 16, "width": 16, "seed": 1, "progress": False}
    base = pipe("a red ball bounces", **kw)
    same = pipe("a red ball bounces", steps=2, sampler="heun", **kw)  # the tiny pipeline's own settings
    assert (base.video == same.video).all() and (base.audio == same.audio).all()
    other = pipe("a red ball bounces", video_guidance=7.0, audio_guidance=1.0, negative_prompt="blurry", **kw)
    assert not (other.video == base.video).all()
    with pytest.raises(ConfigError, match="guidance_scal"):
        pipe("a red ball bounces", guidance_scal=3.0, **kw)
    with pytest.raises(ConfigError, match="steps"):
        pipe("a red ball bounces", steps=0, **kw)


def test_format_1_pipeline_json_reads_into_the_dataclass(tmp_path) -> None:
    old = {
        "format": "avgen.pipeline",
        "version": 1,
        "config": {"name": "old", "steps": 8, "video_scale": 4.0, "audio_scale": 8.0, "video_sync": 4.0},
    }
    cfg = config_from_json(old, "pipeline.json")
    assert cfg.sampling == SamplingConfig(steps=8, video_guidance=4.0, audio_guidance=8.0, video_sync=4.0)
    with pytest.raises(ConfigError, match="unknown key 'steps'"):
        config_from_json({**old, "version": 2}, "pipeline.json")
    pipe = tiny_pipeline()
    folder = pipe.save_pretrained(tmp_path / "pipe")
    meta = json.loads((folder / "pipeline.json").read_text())
    assert meta["version"] == 2 and meta["config"]["sampling"] == to_dict(pipe.config.sampling)
    assert AVPipeline.from_pretrained(folder).config == pipe.config


def test_prompts_outside_the_vocabulary_get_one_warning(caplog) -> None:
    vocab = ("a", "red", "ball", "bounces", "face", "says", "green", "round")
    assert unknown_words('a round green face says "anything at all here"', vocab) == []
    assert unknown_words("a red ball bounces on the floor", vocab) == []  # 4 of 7 known
    assert unknown_words("a cat playing the piano", vocab) == ["cat", "playing", "the", "piano"]
    assert unknown_words("", vocab) == []
    pipe = tiny_pipeline()
    pipe.config = PipelineConfig(name="tiny", sampling=SamplingConfig(steps=1), vocabulary=vocab)
    kw = {"seconds": 0.25, "height": 16, "width": 16, "progress": False}
    with caplog.at_level(logging.WARNING, logger="avgen"):
        pipe(["a red ball bounces"], **kw)
        assert not caplog.records
        pipe(["a cat playing the piano", "a cat playing the piano"], **kw)
    assert len(caplog.records) == 1 and "cat, playing" in caplog.records[0].getMessage()


def test_the_shipped_model_knows_its_world_and_flags_the_rest() -> None:
    from avgen.data.synth import make_sample
    from avgen.pipeline_config import shipped_path

    path = shipped_path("avgen-tiny") / "pipeline.json"
    cfg = config_from_json(json.loads(path.read_text()), str(path))
    held_out = [make_sample(seed, "test").caption for seed in range(12)]  # unseen pairs and phrases
    assert all(unknown_words(c, cfg.vocabulary) == [] for c in held_out), held_out
    assert unknown_words("a cat playing the piano in paris", cfg.vocabulary)
