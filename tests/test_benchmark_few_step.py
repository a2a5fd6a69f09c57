"""benchmarks/few_step.py: settings parse, forwards are counted per call, and a run on tiny pipelines (a guided
one and a folded copy) fills the cost, distance and score tables."""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest

from avgen.diffusion.settings import SamplingConfig
from avgen.pipeline import tiny_pipeline


def _bench():
    return importlib.import_module("benchmarks.few_step")  # conftest puts the root on sys.path


def test_settings_parse_and_bad_ones_are_named() -> None:
    bench = _bench()
    s = bench.parse_setting("distilled", "dpm2m:4:2")
    assert (
        s.overrides == {"sampler": "dpm2m", "steps": 4, "shift": 2.0}
        and s.label == "distilled dpm2m 4 shift 2"
    )
    assert bench.parse_setting("guided", "heun:8").label == "guided heun 8"
    with pytest.raises(ValueError, match="sampler:steps"):
        bench.parse_setting("guided", "heun")


def test_a_run_on_tiny_pipelines_fills_every_table(tmp_path) -> None:
    bench = _bench()
    guided = tiny_pipeline()
    guided.config = dataclasses.replace(
        guided.config,
        duration=1.0,
        height=32,
        width=32,
        sampling=SamplingConfig(steps=2, sampler="heun", video_sync=2.0),
    )
    folded = tiny_pipeline()
    folded.config = dataclasses.replace(
        guided.config, sampling=dataclasses.replace(guided.config.sampling, guidance="folded")
    )
    guided.save_pretrained(tmp_path / "guided")
    folded.save_pretrained(tmp_path / "folded")
    out = tmp_path / "few_step.md"
    argv = ["--pipeline", str(tmp_path / "guided"), "--distilled", str(tmp_path / "folded")]
    argv += ["--settings", "euler:2", "heun:2", "--teacher-settings", "euler:2", "--prompts", "a red ball"]
    argv += [
        "--seeds",
        "1",
        "--repeats",
        "1",
        "--eval-per-family",
        "2",
        "--families",
        "bounce",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert bench.main(argv) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    t = result["timing"]
    assert (t["reference"]["forwards"], t["reference"]["samples_per_forward"]) == (3, 3)  # heun 2: 3 evals
    assert (t["distilled euler 2"]["forwards"], t["distilled euler 2"]["samples_per_forward"]) == (2, 1)
    assert t["distilled heun 2"]["forwards"] == 3 and t["guided euler 2"]["samples_per_forward"] == 3
    # the same DiT folded runs its conditional branch alone: not the guided reference
    assert result["distance"]["distilled heun 2"]["latent_rel_rms"] > 0
    assert set(result["scores"]) == {"reference", "ground truth", *result["labels"]}
    page = out.read_text()
    assert "| distilled euler 2 | 2 | 1 |" in page and "## Evaluation scores" in page
    assert "python -m benchmarks.few_step" in page
