"""FolderDataset over tiny real media: good files load, broken ones are skipped and reported, windows are
cut on the target time grid (VFR sources by timestamp), random windows are a function of seed and epoch."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avgen.data.folder import REPORT_NAME, FolderConfig, FolderDataset, main
from avgen.data.scan import read_captions
from avgen.data.skips import SkipPolicy, read_report
from avgen.errors import ConfigError, MediaError

FPS = 10


def _clip(
    seconds: float,
    *,
    h: int = 32,
    w: int = 32,
    sr: int | None = 16000,
    channels: int = 1,
    burst_at: float | None = None,
    silent: bool = False,
    seed: int = 0,
):
    from avgen.io import AVClip

    rng = np.random.default_rng(seed)
    t = round(seconds * FPS)
    video = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    audio = None
    if sr is not None:
        n = round(seconds * sr)
        x = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)
        if burst_at is not None:  # quiet bed, then a loud 50 ms burst: an onset at a known time
            x = 0.01 * x
            i = int(burst_at * sr)
            x[i : i + sr // 20] = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(len(x[i : i + sr // 20])) / sr)
        audio = np.repeat(x[None], channels, 0).astype(np.float32) * (0.0 if silent else 1.0)
    return AVClip(video=video, fps=FPS, audio=audio, sample_rate=sr)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Three good files and one of each broken kind."""
    from avgen.io import write_av

    root = tmp_path_factory.mktemp("mixed")
    write_av(root / "a.mp4", _clip(1.0, seed=1))
    write_av(
        root / "b.mkv", _clip(1.0, h=32, w=56, sr=22050, channels=2, burst_at=0.7, seed=2), lossless=True
    )
    (root / "b.txt").write_text("a wide clip with a burst\n")
    (root / "sub").mkdir()
    write_av(root / "sub" / "c.mov", _clip(1.0, h=40, w=30, seed=3))
    # broken ones
    write_av(root / "trunc.mp4", _clip(1.0, seed=4))
    data = (root / "trunc.mp4").read_bytes()
    (root / "trunc.mp4").write_bytes(data[: len(data) // 2])
    (root / "zero.mp4").write_bytes(b"")
    write_av(root / "noaudio.mp4", _clip(1.0, sr=None, seed=5))
    (root / "text.mp4").write_text("this is not a video\n" * 20)
    write_av(root / "short.mp4", _clip(0.3, seed=6))
    write_av(root / "silent.mp4", _clip(1.0, silent=True, seed=7))
    (root / "notes.md").write_text("not scanned")
    lines = [
        {"file": "a.mp4", "caption": "random noise with a tone"},
        {"file": "sub/c.mov", "caption": "a tall clip"},
        {"file": "gone.mp4", "caption": "listed but absent"},
    ]
    (root / "captions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


CFG = FolderConfig(
    fps=FPS, sample_rate=16000, resolutions=((32, 32), (32, 48)), durations=(0.5,), window="fixed"
)


@pytest.fixture(scope="module")
def dataset(mixed) -> FolderDataset:
    return FolderDataset(mixed, CFG)


def test_good_files_load_and_each_broken_one_is_reported(mixed, dataset):
    kept = sorted(Path(e.path).relative_to(mixed).as_posix() for e in dataset.entries)
    assert kept == ["a.mp4", "b.mkv", "sub/c.mov"]
    reasons = {Path(s.path).name: s.reason for s in dataset.report.skips}
    assert reasons == {
        "trunc.mp4": "unreadable",
        "zero.mp4": "empty",
        "noaudio.mp4": "no_audio",
        "text.mp4": "unreadable",
        "short.mp4": "too_short",
        "silent.mp4": "silent",
        "gone.mp4": "missing",
    }
    header, skips = read_report(mixed / REPORT_NAME)
    assert {Path(s.path).name: s.reason for s in skips} == reasons
    assert all(s.detail for s in skips)
    assert header["total"] == 9 and header["kept"] == 3
    summary = dataset.report.summary()
    assert "kept 3 of 9 files; skipped 6 (" in summary and "2 unreadable" in summary
    assert summary.endswith("; 1 captioned file missing")


def test_items_have_bucket_shapes_ranges_and_captions(mixed, dataset):
    assert len(dataset) == 6  # three 1 s files, two 0.5 s windows each
    seen = {}
    for i in range(len(dataset)):
        item = dataset[i]
        shape = CFG.bucket_shape(item["bucket"])
        assert item["video"].shape == (3, 5, shape["height"], shape["width"])
        assert item["audio"].shape == (1, 8000)
        for key in ("video", "audio"):
            x = item[key]
            assert x.dtype == torch.float32 and torch.isfinite(x).all() and x.abs().max() <= 1.0
        seen[Path(item["path"]).name] = (item["caption"], item["bucket"])
    assert seen["a.mp4"] == ("random noise with a tone", (0, 0))
    assert seen["b.mkv"] == ("a wide clip with a burst", (1, 0))  # 56:32 is nearest 48:32
    assert seen["c.mov"] == ("a tall clip", (0, 0))
    assert [dataset[i]["start"] for i in range(2)] == [0.0, 0.5]


def test_audio_window_keeps_event_time(dataset):
    """b.mkv (22050 Hz stereo, FLAC) has a burst at 0.7 s; the window from 0.5 s must have it at 0.2 s."""
    idx = [i for i in range(len(dataset)) if dataset.item_spec(i)["path"].endswith("b.mkv")]
    item = dataset[idx[1]]
    assert item["start"] == 0.5
    onset = int(np.argmax(item["audio"][0].abs().numpy() > 0.1))
    assert abs(onset - 0.2 * 16000) <= 0.005 * 16000


def test_video_frames_follow_the_source(tmp_path):
    """A lossless source at the target fps comes back frame for frame (crop/resize is identity)."""
    from avgen.io import write_av

    clip = _clip(1.0, seed=9)
    write_av(tmp_path / "x.mkv", clip, lossless=True)
    ds = FolderDataset(
        tmp_path,
        FolderConfig(fps=FPS, sample_rate=16000, resolutions=((32, 32),), durations=(0.5,), window="fixed"),
    )
    item = ds[1]
    expect = torch.from_numpy(clip.video[5:10]).permute(3, 0, 1, 2).float() / 127.5 - 1
    assert torch.allclose(item["video"], expect, atol=1e-5)


def _write_vfr(path: Path, pts_ms: list[int]) -> list[int]:
    """H.264 MP4 written with PyAV directly at irregular pts; frame i is flat grey level 20 * i + 10."""
    import av

    levels = [20 * i + 10 for i in range(len(pts_ms))]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"crf": "0", "bf": "0"}
        for p, lv in zip(pts_ms, levels):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), lv, np.uint8), format="rgb24")
            f.pts, f.time_base = p, Fraction(1, 1000)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return levels


def test_vfr_source_is_resampled_by_timestamp_not_index(tmp_path):
    from avgen.io import read_video_timed

    pts = [0, 40, 80, 350, 380, 410, 440, 700, 1000, 1300]  # bursts and gaps; ends ~1.6 s
    levels = _write_vfr(tmp_path / "vfr.mp4", pts)
    _, times = read_video_timed(tmp_path / "vfr.mp4")
    np.testing.assert_allclose(times, np.array(pts) / 1000, atol=1e-6)

    cfg = FolderConfig(
        fps=FPS,
        sample_rate=16000,
        resolutions=((32, 32),),
        durations=(1.2,),
        window="fixed",
        skip=SkipPolicy(require_audio=False),
    )
    ds = FolderDataset(tmp_path, cfg)
    item = ds[0]
    got = ((item["video"][:, :, 16, 16].mean(0) + 1) * 127.5).round().numpy()  # (T,) grey levels
    # nearest timestamp to k/10 s: 0.0->0, 0.1->80, 0.2->80, 0.3->350, 0.4->410, 0.5->440, 0.6->700, ...
    src_times = np.array(pts) / 1000
    expect_idx = [int(np.argmin(np.abs(src_times - k / FPS))) for k in range(12)]
    np.testing.assert_allclose(got, [levels[i] for i in expect_idx], atol=2)
    by_index = [levels[min(round(k * len(pts) / 1.6 / FPS), len(pts) - 1)] for k in range(12)]
    assert not np.allclose(got, by_index, atol=2)  # index-based resampling would give other frames
    assert item["audio"].abs().max() == 0  # kept without audio by policy: silence


def test_random_windows_depend_on_seed_and_epoch_only(mixed):
    cfg = FolderConfig(
        fps=FPS, sample_rate=16000, resolutions=((32, 32),), durations=(0.5,), seed=3, crop="random"
    )
    ds = FolderDataset(mixed, cfg, report_path=mixed / "other_report.jsonl")
    assert len(ds) == 3
    first = [ds[i]["start"] for i in range(3)]
    assert first == [ds[i]["start"] for i in range(3)]
    assert torch.equal(ds[0]["video"], ds[0]["video"])
    assert all(0 <= s <= 0.5 for s in first)
    ds.set_epoch(1)
    assert [ds[i]["start"] for i in range(3)] != first
    assert ds.item_spec(0)["start"] is None


def test_bad_config_and_captions_raise_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="window"):
        FolderConfig(window="sliding")
    with pytest.raises(ConfigError, match="fps"):
        FolderConfig(fps="abc")
    with pytest.raises(ConfigError, match="resolutions"):
        FolderConfig(resolutions=((0, 32),))
    (tmp_path / "captions.jsonl").write_text('{"file": "a.mp4"}\n')
    with pytest.raises(MediaError, match="line 1"):
        read_captions(tmp_path, "captions.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="no usable videos"):
        FolderDataset(tmp_path / "empty", FolderConfig())
    with pytest.raises(MediaError, match="not a folder"):
        FolderDataset(tmp_path / "missing", FolderConfig())


def test_require_caption_policy(mixed, tmp_path):
    cfg = FolderConfig(fps=FPS, sample_rate=16000, durations=(0.5,), skip=SkipPolicy(require_caption=True))
    ds = FolderDataset(mixed, cfg, report_path=tmp_path / "r.jsonl")
    assert len(ds.entries) == 3  # every good file has a caption from the JSONL or a .txt


def test_scan_cli_prints_summary(mixed, tmp_path, capsys):
    report = tmp_path / "scan.jsonl"
    assert (
        main(
            [
                str(mixed),
                "--fps",
                "10",
                "--sample-rate",
                "16000",
                "--durations",
                "0.5",
                "--report",
                str(report),
                "--workers",
                "2",
            ]
        )
        == 1  # some files are unreadable (the report still lists every file)
    )
    out = capsys.readouterr().out
    assert "kept 3 of 9 files" in out and "skipped" in out and "zero.mp4: empty" in out
    assert report.is_file()


def test_audio_that_starts_after_the_video_stays_in_sync(tmp_path):
    """MKV written with PyAV directly: video from 0 s, audio stream starting at 0.25 s with a burst 0.2 s
    into it. The burst belongs at 0.45 s of the timeline, not at 0.2 s."""
    import av

    sr = 16000
    with av.open(str(tmp_path / "late.mkv"), "w") as c:
        v = c.add_stream("ffv1", rate=FPS)
        v.width = v.height = 32
        v.pix_fmt = "bgr0"
        a = c.add_stream("flac", rate=sr, layout="mono")
        x = (0.01 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
        x[int(0.2 * sr) : int(0.25 * sr)] = 0.8
        for i in range(FPS):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, FPS)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        for j in range(0, sr, 1024):
            fr = av.AudioFrame.from_ndarray(x[None, j : j + 1024], format="flt", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = sr, sr // 4 + j, Fraction(1, sr)
            c.mux(a.encode(fr))
        c.mux(a.encode(None))
    cfg = FolderConfig(fps=FPS, sample_rate=sr, resolutions=((32, 32),), durations=(0.5,), window="fixed")
    ds = FolderDataset(tmp_path, cfg)
    assert len(ds) == 2
    item = ds[0]
    onset = int(np.argmax(item["audio"][0].abs().numpy() > 0.5))
    assert abs(onset - int(0.45 * sr)) <= 16
    grey = ((item["video"][:, :, 5, 5].mean(0) + 1) * 127.5).round().numpy()
    np.testing.assert_allclose(grey, [0, 20, 40, 60, 80], atol=1)
