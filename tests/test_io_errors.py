"""Bad input: every case raises avgen's own exception naming the path or argument, quickly."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest

from avgen.errors import AVGenError, ClipError, MediaError
from avgen.io import AVClip, AVWriter, as_fps, read_av, write_av


def good_clip(frames: int = 12) -> AVClip:
    rng = np.random.default_rng(1)
    return AVClip(
        video=rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8),
        fps=12,
        audio=rng.uniform(-0.5, 0.5, (1, frames * 16000 // 12)).astype(np.float32),
        sample_rate=16000,
    )


def assert_media_error(path, fn, *words):
    t0 = time.monotonic()
    with pytest.raises(MediaError) as e:
        fn()
    assert time.monotonic() - t0 < 10, "must fail in bounded time"
    assert str(path) in str(e.value)
    for w in words:
        assert w in str(e.value).lower()


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.touch()
    assert_media_error(p, lambda: read_av(p), "empty")


def test_missing_file_and_folder(tmp_path):
    assert_media_error(tmp_path / "nope.mp4", lambda: read_av(tmp_path / "nope.mp4"), "no such file")
    assert_media_error(tmp_path, lambda: read_av(tmp_path), "not a regular file")


def test_text_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    assert_media_error(p, lambda: read_av(p), "not a readable media file")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_mp4(tmp_path, keep):
    src = write_av(tmp_path / "full.mp4", good_clip(48))
    data = src.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: int(len(data) * keep)])
    assert_media_error(p, lambda: read_av(p))


def test_truncated_mkv(tmp_path):
    src = write_av(tmp_path / "full.mkv", good_clip(48), lossless=True)
    data = src.read_bytes()
    p = tmp_path / "cut.mkv"
    p.write_bytes(data[: len(data) // 2])
    assert_media_error(p, lambda: read_av(p))


def test_missing_stream_is_named(tmp_path):
    clip = good_clip()
    v = write_av(tmp_path / "v.mp4", clip.replace(audio=None, sample_rate=None))
    a = write_av(tmp_path / "a.mp4", clip.replace(video=None))
    assert_media_error(v, lambda: read_av(v), "no audio stream", "streams='v'")
    assert_media_error(a, lambda: read_av(a), "no video stream", "streams='a'")
    w = write_av(tmp_path / "a.wav", clip.replace(video=None))
    assert_media_error(w, lambda: read_av(w), "no video stream")


def test_unknown_extension(tmp_path):
    assert_media_error(
        tmp_path / "x.avi", lambda: write_av(tmp_path / "x.avi", good_clip()), "unknown extension"
    )
    assert_media_error(tmp_path / "x", lambda: write_av(tmp_path / "x", good_clip()), "unknown extension")


def test_lossless_needs_mkv(tmp_path):
    assert_media_error(
        tmp_path / "x.mp4", lambda: write_av(tmp_path / "x.mp4", good_clip(), lossless=True), "mkv"
    )


def test_video_into_audio_only_format(tmp_path):
    assert_media_error(tmp_path / "x.wav", lambda: write_av(tmp_path / "x.wav", good_clip()), "audio only")


def test_nan_and_out_of_range_audio():
    with pytest.raises(ClipError, match="NaN"):
        AVClip(audio=np.array([[0.0, np.nan]], np.float32), sample_rate=16000)
    with pytest.raises(ClipError, match=r"exceeds \[-1, 1\]"):
        AVClip(audio=np.array([[0.0, 1.5]], np.float32), sample_rate=16000)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"video": np.zeros((2, 8, 8, 3), np.float32), "fps": 12}, "uint8"),
        ({"video": np.zeros((8, 8, 3), np.uint8), "fps": 12}, r"\(T, H, W, 3\)"),
        ({"video": np.zeros((2, 8, 8, 4), np.uint8), "fps": 12}, r"\(T, H, W, 3\)"),
        ({"video": np.zeros((0, 8, 8, 3), np.uint8), "fps": 12}, "empty"),
        ({"audio": np.zeros(100, np.float32), "sample_rate": 16000}, r"audio\[None\]"),
        ({"audio": np.zeros((100, 2), np.float32), "sample_rate": 16000}, "transpose"),
        ({"audio": np.zeros((1, 100), np.int16), "sample_rate": 16000}, "32768"),
        ({"audio": np.zeros((1, 100), np.float32), "sample_rate": 0}, "outside"),
        ({"audio": np.zeros((1, 100), np.float32), "sample_rate": 16000.0}, "must be an int"),
        ({"audio": [[0.0]], "sample_rate": 16000}, "numpy array"),
        ({}, "neither"),
    ],
)
def test_clip_validation(kwargs, match):
    with pytest.raises(ClipError, match=match):
        AVClip(**kwargs)


@pytest.mark.parametrize("fps", [0, -24, "abc", float("nan"), None, True])
def test_bad_fps(fps):
    with pytest.raises(ClipError, match="fps"):
        AVClip(video=np.zeros((1, 8, 8, 3), np.uint8), fps=fps)


def test_fps_parsing_is_exact():
    assert as_fps("30000/1001") == Fraction(30000, 1001)
    assert as_fps(29.97002997002997) == Fraction(30000, 1001)
    assert as_fps(np.int64(24)) == 24
    assert as_fps(23.976023976023978) == Fraction(24000, 1001)


def test_torch_tensors_are_accepted():
    import torch

    clip = AVClip(
        video=torch.zeros(2, 8, 8, 3, dtype=torch.uint8), fps=8, audio=torch.zeros(1, 10), sample_rate=8000
    )
    assert isinstance(clip.video, np.ndarray) and clip.audio.dtype == np.float32


def test_existing_file_is_not_overwritten(tmp_path):
    p = tmp_path / "keep.mp4"
    p.write_bytes(b"precious")
    assert_media_error(p, lambda: write_av(p, good_clip()), "exists", "overwrite=true")
    assert p.read_bytes() == b"precious"
    write_av(p, good_clip(), overwrite=True)
    assert read_av(p).num_frames == 12


def test_failed_write_leaves_nothing(tmp_path):
    p = tmp_path / "half.mp4"
    with (
        pytest.raises(RuntimeError, match="boom"),
        AVWriter(p, fps=12, width=32, height=32, sample_rate=16000) as w,
    ):
        w.write_video(good_clip().video)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_bad_chunk_leaves_nothing(tmp_path):
    p = tmp_path / "bad.mp4"
    with (
        pytest.raises(ClipError, match="writer was opened for"),
        AVWriter(p, fps=12, width=32, height=32) as w,
    ):
        w.write_video(np.zeros((3, 32, 32, 3), np.uint8))
        w.write_video(np.zeros((3, 16, 16, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_unfinished_writer_cleans_up_when_collected(tmp_path):
    import gc

    w = AVWriter(tmp_path / "lost.mkv", fps=12, width=8, height=8, lossless=True)
    w.write_video(np.zeros((2, 8, 8, 3), np.uint8))
    w._container.close()
    del w
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_bad_crf(tmp_path):
    assert_media_error(
        tmp_path / "no" / "x.mp4", lambda: write_av(tmp_path / "no" / "x.mp4", good_clip()), "folder"
    )
    with pytest.raises(ClipError, match="crf"):
        write_av(tmp_path / "x.mp4", good_clip(), crf=99)


def test_all_errors_share_a_base():
    assert issubclass(MediaError, AVGenError) and issubclass(ClipError, AVGenError)
