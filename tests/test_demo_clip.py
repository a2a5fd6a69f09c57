"""`avgen demo` writes a real, playable MP4: one H.264 and one AAC stream of equal length, and a PNG."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from avgen.cli import main
from avgen.io import probe, read_av


def test_demo_generates_with_a_model_folder(tmp_path, capsys):
    from avgen.pipeline import tiny_pipeline

    model = tiny_pipeline().save_pretrained(tmp_path / "model")
    out = tmp_path / "gen.mp4"
    assert main(["demo", "--model", str(model), "--out", str(out), "--steps", "1", "--scale", "2"]) == 0
    clip = read_av(out)
    assert clip.video.shape == (96, 128, 128, 3)  # two 2-s scenes of 64x64 at 24 fps, enlarged twice
    assert clip.num_samples == 2 * 2 * clip.sample_rate
    assert clip.metadata["model"] == "tiny-random" and "face" in clip.metadata["prompt"]
    printed = capsys.readouterr().out
    assert ("lip-sync lag" in printed or "no face of the asked colour" in printed) and "impact F1" in printed
    assert out.with_suffix(".png").is_file()
    with pytest.raises(SystemExit):
        main(["demo", "--model", str(tmp_path / "missing"), "--out", str(out)])  # exists: refused first
    assert main(["demo", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "pipeline.json: not found" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_demo_writes_playable_mp4(tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    args = ["--ground-truth", "--size", "64x64", "--duration", "1.5", "--scale", "1"]
    assert main(["demo", "--out", str(out), *args]) == 0
    info = probe(out)
    assert [s["codec"] for s in info["streams"]] == ["h264", "aac"]
    v, a = info["streams"]
    assert abs(v["duration_s"] - a["duration_s"]) < 1 / 24  # less than one frame
    clip = read_av(out)
    assert clip.num_frames == 72 and clip.num_samples == 48000
    assert clip.metadata["generator"].startswith("avgen") and "face" in clip.metadata["prompt"]
    assert out.with_suffix(".png").stat().st_size > 10_000
    with pytest.raises(SystemExit):  # exists
        main(["demo", "--out", str(out), *args, "--no-png"])
    assert "overwrite" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed (apt-get install ffmpeg)")
def test_demo_mp4_in_ffprobe(tmp_path):
    out = tmp_path / "demo.mp4"
    main(["demo", "--out", str(out), "--ground-truth", "--size", "64x64", "--duration", "1.0", "--no-png"])
    res = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    streams = json.loads(res.stdout)["streams"]
    assert [s["codec_name"] for s in streams] == ["h264", "aac"]
    assert abs(float(streams[0]["duration"]) - float(streams[1]["duration"])) < 1 / 24


def test_shipped_default_model_generates_offline(tmp_path, capsys):
    """The committed avgen-tiny weights load by name (no network) and `avgen generate` uses them by default."""
    from avgen.pipeline import AVPipeline

    pipe = AVPipeline.from_pretrained("avgen-tiny")
    assert pipe.config.name == "avgen-tiny" and (pipe.config.height, pipe.config.width) == (64, 64)
    out = tmp_path / "gen.mp4"
    assert main(["generate", "two big white balls bounce slowly", "-o", str(out), "--steps", "2"]) == 0
    clip = read_av(out)
    assert clip.video.shape == (48, 64, 64, 3) and clip.num_samples == 32000
    assert clip.metadata["model"] == "avgen-tiny"


def test_sync_line_for_a_face_whose_mouth_never_moves():
    import numpy as np

    from avgen.clip import AVClip
    from avgen.data.synth import make_sample
    from avgen.demo import sync_line

    s = next(x for x in (make_sample(i, "test") for i in range(40)) if x.to_json()["family"] == "talk")
    still = np.repeat(s.clip.video[:1], len(s.clip.video), axis=0)  # the first frame held: a still mouth
    line = sync_line(
        s.caption, AVClip(video=still, fps=s.clip.fps, audio=s.clip.audio, sample_rate=s.clip.sample_rate)
    )
    assert "does not move" in line
    assert "lip-sync lag" in sync_line(s.caption, s.clip)
