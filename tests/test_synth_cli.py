"""``avgen data synth`` writes readable MP4s, events JSON and captions.jsonl, with two worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avgen.data.cli import main as data_main
from avgen.data.synth.generate import make_sample
from avgen.data.synth.spec import SynthConfig
from avgen.errors import ConfigError
from avgen.io import read_av


def test_cli_writes_clips_captions_and_events(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    argv = [
        "synth",
        "--out",
        str(out),
        "--n",
        "5",
        "--seed",
        "10",
        "--split",
        "val",
        "--size",
        "32x48",
        "--duration",
        "1",
        "--workers",
        "2",
        "--quiet",
    ]
    assert data_main(argv) == 0
    lines = (out / "captions.jsonl").read_text().splitlines()
    assert len(lines) == 5
    cfg = SynthConfig(sizes=((32, 48),), durations=(1.0,))
    for line, seed in zip(lines, range(10, 15)):
        rec = json.loads(line)
        assert rec["file"] == f"val_{seed:07d}.mp4" and rec["seed"] == seed
        clip = read_av(out / rec["file"])
        events = json.loads((out / rec["events"]).read_text())
        assert (clip.num_frames, clip.height, clip.width) == (24, 32, 48)
        assert clip.num_samples == events["num_samples"] == 16000 and clip.sample_rate == 16000
        assert events["caption"] == rec["caption"] and clip.metadata.get("caption") == rec["caption"]
        assert all(len(v) == 24 for v in events["state"].values())
        # written by another process, equal to this process's ground truth
        assert events == json.loads(json.dumps(make_sample(seed, "val", cfg).to_json()))
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["n"] == 5 and manifest["global_seed_start"] == 10_000_010
    with pytest.raises(ConfigError, match="--overwrite"):
        data_main(argv)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        data_main(["synth", "--out", str(tmp_path), "--n", "1", "--size", "64by64", "--quiet"])
    with pytest.raises(ConfigError):
        data_main(["synth", "--out", str(tmp_path), "--n", "1", "--families", "talk,dance", "--quiet"])
    with pytest.raises(SystemExit):
        data_main(["synth", "--out", str(tmp_path), "--n", "1", "--split", "dev"])
