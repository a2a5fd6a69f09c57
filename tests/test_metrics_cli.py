"""`avgen eval files DIR`: scores real MP4 files, writes report.json and a PNG per clip."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from avgen.errors import MediaError
from avgen.metrics.cli import main

_SYNC = Path(__file__).with_name("test_metrics_sync.py")


def _struck_puck():
    spec = importlib.util.spec_from_file_location("_metrics_sync_scene", _SYNC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_files_reports_sync_and_offset_through_mp4(tmp_path, capsys) -> None:
    from avgen.io import AVClip, write_av

    scene = _struck_puck()
    video, audio, _ = scene.struck_puck(0, size=64)
    folder = tmp_path / "outputs"
    folder.mkdir()
    write_av(folder / "synced.mp4", AVClip(video=video, fps=scene.FPS, audio=audio, sample_rate=scene.SR))
    late = scene.delay(audio, 200)
    write_av(folder / "late.mp4", AVClip(video=video, fps=scene.FPS, audio=late, sample_rate=scene.SR))
    (folder / "notes.txt").write_text("not a video")

    assert main(["files", str(folder), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    clips = {Path(c["file"]).stem: c for c in report["clips"]}
    assert set(clips) == {"synced", "late"}
    synced, shifted = clips["synced"]["scores"], clips["late"]["scores"]
    assert synced["av_align"] >= 0.7 and shifted["av_align"] <= 0.3
    assert synced["av_align_variant"] == "current"
    assert abs(synced["offset"]["lag_ms"]) <= 1000 / scene.FPS
    assert abs(shifted["offset"]["lag_ms"] - 200) <= 1000 / scene.FPS
    assert report["summary"]["scored"] == 2 and report["summary"]["failed"] == 0
    for c in clips.values():
        png = Path(c["png"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "scored 2/2 clips" in capsys.readouterr().out


def test_eval_files_records_unreadable_files_and_rejects_empty_folders(tmp_path) -> None:
    from avgen.io import AVClip, write_av

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"not an mp4 at all")
    silent = np.zeros((12, 32, 32, 3), np.uint8)
    write_av(folder / "silent.mp4", AVClip(video=silent, fps=24))
    assert main(["files", str(folder), "--no-png"]) == 1
    report = json.loads((folder / "avgen_eval" / "report.json").read_text())
    assert all("error" in c for c in report["clips"]) and report["summary"]["failed"] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MediaError, match="holds no videos"):
        main(["files", str(empty)])


def test_eval_files_adds_synth_scores_from_the_events_json(tmp_path) -> None:
    from avgen.data.synth.generate import make_sample, write_sample
    from avgen.data.synth.spec import SynthConfig

    folder = tmp_path / "synth"
    folder.mkdir()
    write_sample(make_sample(2, "val", SynthConfig(families={"bounce": 1.0}, durations=(2.0,))), folder)
    assert main(["files", str(folder), "--no-png"]) == 0
    report = json.loads((folder / "avgen_eval" / "report.json").read_text())
    (clip,) = report["clips"]
    assert clip["synth"]["family"] == "bounce" and clip["synth"]["impact"]["f1"] >= 0.7
    assert report["summary"]["synth_clips"] == 1 and report["summary"]["prompt_adherence"] == 1.0
