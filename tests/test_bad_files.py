"""Damaged media (made here at run time: bit flips, truncation, zeroed headers, unknown codec ids, text named
.mp4) ends in avgen's MediaError naming the file, and one bad file never sinks a folder command: every file
is reported with its reason and the exit code says whether any failed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avgen.errors import AVGenError, MediaError
from avgen.io import AVClip, probe, read_av, write_av


def _clip(seed: int = 0) -> AVClip:
    rng = np.random.default_rng(seed)
    sr, fps, frames = 16000, 12, 12
    audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(sr * frames // fps) / sr)
    return AVClip(
        video=rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8),
        fps=fps,
        audio=audio[None].astype(np.float32),
        sample_rate=sr,
    )


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of one valid MP4 (H.264 + AAC) and one valid MKV (FFV1 + FLAC)."""
    root = tmp_path_factory.mktemp("good")
    return {
        ".mp4": write_av(root / "g.mp4", _clip()).read_bytes(),
        ".mkv": write_av(root / "g.mkv", _clip(), lossless=True).read_bytes(),
    }


def _flip(data: bytes, at: int, mask: int = 0xFF) -> bytes:
    b = bytearray(data)
    b[at] ^= mask
    return bytes(b)


def _at(data: bytes, atom: bytes, nth: int = 0) -> int:
    """Offset of the nth occurrence of ``atom`` (an MP4 box type or a Matroska codec id)."""
    i = -1
    for _ in range(nth + 1):
        i = data.find(atom, i + 1)
        assert i >= 0, f"{atom!r} #{nth} not in the test file"
    return i


# name -> (suffix, damage, words the error must contain). Each one, on PyAV 18, used to escape as an
# AttributeError (stream with no codec context) or a bare PermissionError (seek on a broken time table).
NO_CODEC = {
    "mp4_video_stsd_type": (".mp4", lambda d: _flip(d, _at(d, b"stsd", 0)), "video stream 0 has no codec"),
    "mp4_audio_hdlr_size": (
        ".mp4",
        lambda d: _flip(d, _at(d, b"hdlr", 1) - 1),
        "audio stream 1 has no codec",
    ),
    "mkv_audio_codec_id": (
        ".mkv",
        lambda d: d.replace(b"A_FLAC", b"A_FLAX", 1),
        "audio stream 1 has no codec",
    ),
    "mkv_video_codec_id": (
        ".mkv",
        lambda d: d.replace(b"V_FFV1", b"V_FFVX", 1),
        "video stream 0 has no codec",
    ),
}
OTHER = {
    "mp4_stts_entry": (".mp4", lambda d: _flip(d, _at(d, b"stts") + 36, 0x01)),
    "mp4_zeroed_header": (".mp4", lambda d: bytes(64) + d[64:]),
    "mkv_zeroed_header": (".mkv", lambda d: bytes(256) + d[256:]),
    "mp4_truncated_100": (".mp4", lambda d: d[:100]),
    "mp4_truncated_half": (".mp4", lambda d: d[: len(d) // 2]),
    "mkv_truncated_half": (".mkv", lambda d: d[: len(d) // 2]),
    "text_named_mp4": (".mp4", lambda d: b"this is not a video\n" * 40),
}


def _make(folder: Path, name: str, suffix: str, damage, good: dict[str, bytes]) -> Path:
    path = folder / f"{name}{suffix}"
    path.write_bytes(damage(good[suffix]))
    return path


@pytest.mark.parametrize("name", list(NO_CODEC))
def test_stream_without_codec_is_a_media_error(tmp_path, good, name) -> None:
    suffix, damage, words = NO_CODEC[name]
    path = _make(tmp_path, name, suffix, damage, good)
    for read in (probe, lambda p: read_av(p, streams="any")):
        with pytest.raises(MediaError) as e:
            read(path)
        assert str(path) in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("name", list(OTHER))
def test_damaged_files_fail_with_media_error_naming_them(tmp_path, good, name) -> None:
    suffix, damage = OTHER[name]
    path = _make(tmp_path, name, suffix, damage, good)
    with pytest.raises(MediaError) as e:
        read_av(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_bit_flip_sweep_raises_only_avgen_errors(tmp_path, good, suffix) -> None:
    """Flip bytes across the headers and spread over the file: each read succeeds or raises AVGenError."""
    data = good[suffix]
    offsets = sorted({*range(0, 160, 7), *np.linspace(0, len(data) - 1, 24).astype(int).tolist()})
    for o in offsets:
        path = tmp_path / f"flip_{o}{suffix}"
        path.write_bytes(_flip(data, o))
        for read in (probe, lambda p: read_av(p, streams="any")):
            try:
                read(path)
            except AVGenError as e:
                assert str(path) in str(e)


def _bad_folder(folder: Path, good: dict[str, bytes]) -> dict[str, Path]:
    folder.mkdir()
    files = {"good": folder / "good.mp4"}
    files["good"].write_bytes(good[".mp4"])
    for name in ("mp4_video_stsd_type", "mp4_audio_hdlr_size"):
        files[name] = _make(folder, name, *NO_CODEC[name][:2], good)
    for name in ("mp4_stts_entry", "mp4_truncated_half", "text_named_mp4"):
        files[name] = _make(folder, name, *OTHER[name], good)
    return files


def test_info_reports_every_file_and_exits_1_if_any_failed(tmp_path, good, capsys) -> None:
    from avgen.cli import main

    files = _bad_folder(tmp_path / "f", good)
    bad, ok = files["mp4_video_stsd_type"], files["good"]
    assert main(["info", str(bad), str(ok)]) == 1
    out, err = capsys.readouterr()
    assert str(ok) in out and "h264" in out and "aac" in out
    assert f"avgen info: error: {bad}: video stream 0 has no codec" in err
    assert main(["info", "--json", str(ok), str(bad)]) == 1
    infos = json.loads(capsys.readouterr().out)
    assert infos[0]["path"] == str(ok) and "streams" in infos[0]
    assert infos[1]["path"] == str(bad) and "no codec" in infos[1]["error"]
    assert main(["info", str(ok)]) == 0


def test_eval_files_scores_the_rest_and_reports_each_failure(tmp_path, good, capsys) -> None:
    from avgen.metrics.cli import main

    files = _bad_folder(tmp_path / "f", good)
    assert main(["files", str(tmp_path / "f"), "--no-png", "--out", str(tmp_path / "r")]) == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    clips = {Path(c["file"]).stem: c for c in report["clips"]}
    assert set(clips) == set(files)
    assert "scores" in clips["good"] and "error" not in clips["good"]
    for name, path in files.items():
        if name != "good":
            assert clips[name]["error"].startswith(str(path)), clips[name]
            assert "unexpected" not in clips[name]["error"]  # the reader named the damage itself
    assert report["summary"]["scored"] == 1 and report["summary"]["failed"] == len(files) - 1
    err = capsys.readouterr().err
    assert err.count("FAILED: ") == len(files) - 1


def test_eval_files_isolates_an_unexpected_crash(tmp_path, good, monkeypatch) -> None:
    import avgen.metrics.cli as cli

    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.mp4").write_bytes(good[".mp4"])
    real = cli.evaluate_clip
    calls = iter([RuntimeError("metric blew up"), None])

    def flaky(*args, **kwargs):
        boom = next(calls)
        if boom is not None:
            raise boom
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "evaluate_clip", flaky)
    assert cli.main(["files", str(folder), "--no-png"]) == 1
    report = json.loads((folder / "avgen_eval" / "report.json").read_text())
    a, b = report["clips"]
    assert a["error"] == f"{folder / 'a.mp4'}: unexpected RuntimeError: metric blew up"
    assert "scores" in b and report["summary"]["failed"] == 1


def test_scan_reports_each_bad_file_and_survives_a_crash(tmp_path, good, monkeypatch) -> None:
    import avgen.data.scan as scan
    from avgen.data.folder import FolderConfig

    files = _bad_folder(tmp_path / "f", good)
    (tmp_path / "f" / "crash.mp4").write_bytes(good[".mp4"])
    real = scan.decode_timed

    def crashing(path, *, audio):
        if Path(path).name == "crash.mp4":
            raise KeyError("something nobody expected")
        return real(path, audio=audio)

    monkeypatch.setattr(scan, "decode_timed", crashing)
    cfg = FolderConfig(fps=12, sample_rate=16000, durations=(0.5,))
    entries, report = scan.scan_folder(tmp_path / "f", cfg, workers=2)
    assert [Path(e.path).name for e in entries] == ["good.mp4"]
    skips = {Path(s.path).stem: s for s in report.skips}
    assert set(skips) == (set(files) - {"good"}) | {"crash"}
    assert all(s.reason == "unreadable" for s in skips.values())
    assert "no codec" in skips["mp4_video_stsd_type"].detail
    assert skips["crash"].detail == "unexpected KeyError: 'something nobody expected'"
    assert report.total == len(files) + 1 and report.kept == 1
