"""Reading is bounded: limits are checked from the container's declarations before decoding and again while
decoding, each refusal names the file, the limit and a call that works; a window of a long file and
``max_size`` make large files usable. Every file is written here at run time with PyAV (or byte patches of
files it wrote), each under 100 KB."""

from __future__ import annotations

import re
import struct
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from avgen.errors import ConfigError, MediaError
from avgen.io import AVClip, ReadLimits, read_av, write_av

MIB = 1024**2


def _black_4096(path: Path, frames: int = 120) -> Path:
    """The issue's file: 120 black 4096x4096 H.264 frames at 24 fps (~53 KB, ~5.6 GiB decoded). One IDR
    frame and one all-skip P frame are encoded; the P frame's packet is muxed again for the rest."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=24)
        v.width = v.height = 4096
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast", "threads": "1", "bf": "0", "g": "1000"}
        f = av.VideoFrame(4096, 4096, "yuv420p")
        for plane, level in zip(f.planes, (16, 128, 128)):  # video-range black
            plane.update(bytes([level]) * plane.buffer_size)
        packets = []
        for i in range(2):
            f.pts = i
            packets += v.encode(f)
        packets += v.encode()
        idr, skip = (bytes(p) for p in packets[:2])
        for i in range(frames):
            p = av.Packet(idr if i == 0 else skip)
            p.stream, p.pts, p.dts, p.time_base = v, i, i, packets[0].time_base
            p.is_keyframe = i == 0
            c.mux(p)
    assert path.stat().st_size < 100_000
    return path


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    return _black_4096(tmp_path_factory.mktemp("huge") / "black4096.mp4")


def _refusal(fn) -> tuple[MediaError, int]:
    """The MediaError ``fn`` raises and the peak Python memory (bytes) traced while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(MediaError) as e:
            fn()
        return e.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_declared_video_is_refused_before_decoding(huge):
    t0 = time.monotonic()
    err, peak = _refusal(lambda: read_av(huge, streams="v"))
    assert time.monotonic() - t0 < 5 and peak < 5 * MIB  # nothing decoded, nothing allocated
    msg = str(err)
    assert msg.startswith(str(huge))
    assert "120 frames of 4096x4096" in msg and "5.6 GiB" in msg
    assert "ReadLimits.max_decoded_bytes = 2.0 GiB" in msg
    for fix in ("start=", "duration=", "max_size=", "limits=ReadLimits(max_decoded_bytes="):
        assert fix in msg


def test_window_and_max_size_make_the_huge_file_usable(huge):
    tracemalloc.start()
    try:
        clip = read_av(huge, streams="v", duration=0.25, max_size=256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.video.shape == (6, 256, 256, 3) and clip.fps == 24  # 0.25 s at 24 fps
    assert int(clip.video.max()) <= 1  # black
    assert peak < 8 * MIB  # the output (1.2 MB) and a frame or two at 256 x 256, never 4096 x 4096 RGB


def test_raised_limit_is_the_suggested_call(tmp_path):
    clip = AVClip(video=np.full((8, 40, 64, 3), 90, np.uint8), fps=8)
    path = write_av(tmp_path / "small.mkv", clip, lossless=True)
    need = 8 * 40 * 64 * 3
    with pytest.raises(MediaError) as e:
        read_av(path, streams="v", limits=ReadLimits(max_decoded_bytes=need - 1))
    suggested = int(re.search(r"max_decoded_bytes=(\d+)\)", str(e.value)).group(1))
    back = read_av(path, streams="v", limits=ReadLimits(max_decoded_bytes=suggested))
    assert np.array_equal(back.video, clip.video)
    with pytest.raises(MediaError, match=r"ReadLimits.max_frame_pixels = 2000; raise the limit"):
        read_av(path, streams="v", limits=ReadLimits(max_frame_pixels=2000))
    assert read_av(path, streams="v", limits=ReadLimits(max_frame_pixels=64 * 40)).num_frames == 8


def _patch_mkv_length(data: bytes, seconds: str, ms: float) -> bytes:
    """Make a Matroska file declare another length: the segment's Duration (float, ms) and the track's
    DURATION tag (same width)."""
    i = data.index(b"\x44\x89\x88")  # Duration, 8-byte float
    data = data[: i + 3] + struct.pack(">d", ms) + data[i + 11 :]
    j = data.index(b"DURATION") + 11  # tag name, SimpleTag string id and size, then "HH:MM:SS.nnnnnnnnn"
    assert len(seconds) == 18
    return data[:j] + seconds.encode() + data[j + 18 :]


def test_header_that_understates_is_stopped_while_decoding(tmp_path):
    frames = np.arange(48, dtype=np.uint8)[:, None, None, None] * np.ones((1, 64, 64, 3), np.uint8)
    src = write_av(tmp_path / "long.mkv", AVClip(video=frames, fps=12), lossless=True)
    liar = tmp_path / "liar.mkv"
    liar.write_bytes(_patch_mkv_length(src.read_bytes(), "00:00:00.100000000", 100.0))
    limits = ReadLimits(max_decoded_bytes=10 * 64 * 64 * 3)  # 10 frames; the header declares ~1
    err, peak = _refusal(lambda: read_av(liar, streams="v", limits=limits))
    assert str(liar) in str(err) and "more than its header declares" in str(err)
    assert "ReadLimits.max_decoded_bytes" in str(err) and "max_size=" in str(err)
    assert peak < 2 * MIB  # stopped at the 11th 12 KB frame
    assert np.array_equal(read_av(liar, streams="v").video, frames)  # within the default limit it reads


def _late_audio(path: Path, offset_s: float, sr: int = 16000) -> Path:
    """Ten 16x16 frames at 10 fps, and 0.5 s of audio (a 0.5 level) starting ``offset_s`` after them:
    FFV1 + FLAC in .mkv, H.264 + AAC in .mp4."""
    import av

    lossless = path.suffix == ".mkv"
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1" if lossless else "libx264", rate=10)
        v.width, v.height, v.pix_fmt = 16, 16, "bgr0" if lossless else "yuv420p"
        a = c.add_stream("flac" if lossless else "aac", rate=sr, layout="mono")
        a.time_base = Fraction(1, sr)
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 20 * i, np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f.reformat(format=v.pix_fmt)))
        c.mux(v.encode())
        af = av.AudioFrame.from_ndarray(np.full((1, sr // 2), 0.5, np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = sr, round(offset_s * sr)
        c.mux(a.encode(af))
        c.mux(a.encode())
    assert path.stat().st_size < 100_000
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_far_away_audio_start_is_refused_before_any_padding(tmp_path, suffix):
    """The issue's file: a few KB whose audio starts 100000 s after its video."""
    path = _late_audio(tmp_path / f"far{suffix}", 100_000.0)
    assert path.stat().st_size < 10_000
    err, peak = _refusal(lambda: read_av(path))
    msg = str(err)
    assert msg.startswith(str(path)) and re.search(
        r"audio starts (100000\.000|99999\.9\d\d) s after the video", msg
    )
    assert "ReadLimits.max_stream_offset_s = 60 s" in msg and peak < 5 * MIB
    assert read_av(path, streams="v").num_frames == 10  # the suggested call works
    # a raised offset limit still leaves 6 GiB of zero padding to the byte limit, checked before decoding
    err, peak = _refusal(lambda: read_av(path, limits=ReadLimits(max_stream_offset_s=200_000)))
    assert "ReadLimits.max_decoded_bytes" in str(err) and peak < 5 * MIB


def test_audio_start_within_the_limit_is_padded_exactly(tmp_path):
    sr = 16000
    path = _late_audio(tmp_path / "late.mkv", 2.5, sr)
    with pytest.raises(MediaError, match=r"2\.500 s after .*max_stream_offset_s=4\)"):
        read_av(path, limits=ReadLimits(max_stream_offset_s=1.0))
    clip = read_av(path)
    lead = int(2.5 * sr)
    assert clip.num_frames == 10 and clip.num_samples == lead + sr // 2
    assert not clip.audio[:, :lead].any() and np.allclose(clip.audio[:, lead:], 0.5, atol=1e-4)


@pytest.fixture(scope="module")
def long_clip() -> AVClip:
    """4 s at 12 fps (frame k is grey level 5 k + 2 with a marker column at k) and 8 kHz audio whose
    every sample is distinct (a slow chirp), so any misplaced frame or sample shows."""
    t = np.arange(4 * 8000) / 8000
    audio = 0.4 * np.sin(2 * np.pi * (40 + 30 * t) * t)
    video = np.zeros((48, 24, 48, 3), np.uint8)
    for k in range(48):
        video[k] = 5 * k + 2
        video[k, :, k] = 255
    return AVClip(video=video, fps=12, audio=audio[None].astype(np.float32), sample_rate=8000)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_window_returns_exactly_its_frames_and_samples(tmp_path, long_clip, suffix):
    path = write_av(tmp_path / f"long{suffix}", long_clip, lossless=suffix == ".mkv")
    assert path.stat().st_size < 100_000
    full = read_av(path)
    exact = suffix == ".mkv"  # FFV1 + FLAC; H.264 after a seek decodes the same frames, AAC nearly
    for start, duration, k0, k1 in [
        (1.5, 1.25, 18, 33),
        (1.51, 0.5, 19, 25),
        (0.0, 0.75, 0, 9),
        (3.0, None, 36, 48),
    ]:
        w = read_av(path, start=start, duration=duration)
        j0, j1 = (-(-k * 8000 // 12) for k in (k0, k1))  # ceil(k / fps * rate): sample 0 plays with frame 0
        assert w.num_frames == k1 - k0 and w.num_samples == j1 - j0, (start, duration)
        assert w.fps == 12 and w.sample_rate == 8000
        assert np.array_equal(w.video, full.video[k0:k1])
        tol = 0 if exact else 1e-4
        assert np.abs(w.audio - full.audio[:, j0:j1]).max() <= tol
    a = read_av(path, streams="a", start=1.51, duration=0.5)  # audio alone: the window in samples
    assert a.num_samples == 4000 and np.abs(a.audio - full.audio[:, 12080:16080]).max() <= (
        0 if exact else 1e-4
    )
    with pytest.raises(MediaError, match="past the end of the video"):
        read_av(path, start=4.5)


def test_max_size_bounds_the_frame_size(tmp_path):
    rng = np.random.default_rng(3)
    video = np.repeat(np.repeat(rng.integers(0, 256, (6, 10, 24, 3), dtype=np.uint8), 4, 1), 4, 2)  # 40x96
    path = write_av(tmp_path / "wide.mkv", AVClip(video=video, fps=6), lossless=True)
    small = read_av(path, streams="v", max_size=24)
    assert small.video.shape == (6, 10, 24, 3)  # longest side 24, aspect kept
    assert np.abs(small.video.astype(int) - video[:, ::4, ::4].astype(int)).max() <= 1  # 4x4 blocks averaged
    assert np.array_equal(read_av(path, streams="v", max_size=96).video, video)  # never enlarged
    odd = write_av(tmp_path / "odd.mp4", AVClip(video=video[:, :39, :95], fps=6))  # stored padded to 40x96
    assert read_av(odd, streams="v", max_size=19).video.shape == (6, 8, 19, 3)


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"start": -1.0}, "start=-1.0"),
        ({"duration": 0}, "duration=0"),
        ({"duration": float("nan")}, "duration=nan"),
        ({"max_size": 0}, "max_size must be a positive int"),
        ({"limits": {"max_decoded_bytes": 1}}, "limits must be an avgen.io.ReadLimits"),
        ({"vfr": "drop"}, "vfr must be 'grid' or 'frames'"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path, kwargs, words):
    path = write_av(tmp_path / "a.mkv", AVClip(video=np.zeros((2, 8, 8, 3), np.uint8), fps=8), lossless=True)
    with pytest.raises(MediaError) as e:
        read_av(path, streams="v", **kwargs)
    assert words in str(e.value)


def test_limits_are_checked_where_built():
    with pytest.raises(ConfigError, match="max_decoded_bytes must be a positive int"):
        ReadLimits(max_decoded_bytes=0)
    with pytest.raises(ConfigError, match="max_stream_offset_s"):
        ReadLimits(max_stream_offset_s=-1)
    assert ReadLimits().max_decoded_bytes == 2 * 1024**3
