"""Round trips through real files: exact frame and sample counts, exact fps, aligned starts."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from avgen.io import AVClip, AVWriter, probe, read_av, write_av

FPS = [8, 12, 24, 25, Fraction(30000, 1001)]
RATES = [16000, 22050, 24000, 44100, 48000]
SIZES = [(64, 64), (65, 47), (48, 80)]  # (width, height)


def make_clip(fps, sr, channels, width, height, frames=9, extra=37) -> AVClip:
    """A smooth moving gradient, and a noise burst at 50 ms (broadband, so alignment is unambiguous)."""
    t = np.arange(frames)[:, None, None]
    x = np.arange(width)[None, None, :]
    y = np.arange(height)[None, :, None]
    r = (x * 255 // max(width - 1, 1) + 0 * y + 9 * t) % 256
    g = (y * 255 // max(height - 1, 1) + 0 * x + 0 * t) % 256
    b = np.broadcast_to(128 + 0 * t + 0 * x + 0 * y, r.shape)
    video = np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8)
    n = int(frames / Fraction(fps) * sr) + extra
    s = np.arange(n) / sr
    noise = np.random.default_rng(5).uniform(-1, 1, n)
    audio = 0.5 * noise * np.exp(-((s - 0.05) ** 2) / 2e-4)
    audio = np.stack([audio * (1 - 0.3 * c) for c in range(channels)]).astype(np.float32)
    return AVClip(video=video, fps=fps, audio=audio, sample_rate=sr)


def lag(a: np.ndarray, b: np.ndarray) -> int:
    """Samples by which a is late relative to b (cross-correlation peak)."""
    xc = np.correlate(a, b, "full")
    return int(np.argmax(xc)) - (len(b) - 1)


@pytest.mark.parametrize(
    "fps,sr,channels,size", list(itertools.product(FPS, RATES, [1, 2], SIZES)), ids=lambda v: str(v)
)
def test_mp4_roundtrip_is_exact(tmp_path, fps, sr, channels, size):
    clip = make_clip(fps, sr, channels, *size)
    path = write_av(tmp_path / "c.mp4", clip, metadata={"seed": 7})
    back = read_av(path)
    assert back.num_frames == clip.num_frames
    assert back.num_samples == clip.num_samples  # AAC priming and padding trimmed
    assert back.fps == Fraction(fps) and isinstance(back.fps, Fraction)
    assert (back.sample_rate, back.channels, back.width, back.height) == (sr, channels, *size)
    assert np.abs(back.video.astype(int) - clip.video.astype(int)).mean() < 3.0  # codec error only
    assert abs(lag(back.audio[0], clip.audio[0])) <= 1  # sample 0 plays with frame 0
    info = probe(path)
    assert [s["start_s"] for s in info["streams"]] == [0.0, 0.0]


def test_fractional_fps_never_truncated(tmp_path):
    clip = make_clip(Fraction(30000, 1001), 48000, 2, 64, 64, frames=31)
    back = read_av(write_av(tmp_path / "ntsc.mp4", clip))
    assert back.fps == Fraction(30000, 1001)
    info = probe(tmp_path / "ntsc.mp4")
    assert info["streams"][0]["fps"] == "30000/1001"
    v_dur, a_dur = (s["duration_s"] for s in info["streams"])
    assert abs(v_dur - 31 * 1001 / 30000) < 1e-6
    assert abs(a_dur - clip.num_samples / 48000) < 1e-9  # container durations are sample-exact


@pytest.mark.parametrize("sr", [8000, 10000, 37800])
def test_uncommon_sample_rates_keep_exact_length(tmp_path, sr):
    clip = make_clip(12, sr, 1, 32, 32, extra=5)
    back = read_av(write_av(tmp_path / "odd.mp4", clip))
    assert back.sample_rate == sr and back.num_samples == clip.num_samples
    assert abs(lag(back.audio[0], clip.audio[0])) <= 1
    assert "avgen_sample_rate" not in back.metadata  # storage detail, consumed by the reader


def test_lossless_mkv_is_bit_exact(tmp_path, rng):
    video = rng.integers(0, 256, (7, 47, 65, 3), dtype=np.uint8)
    audio = rng.uniform(-1, 1, (2, 12345)).astype(np.float32)
    clip = AVClip(video=video, fps=Fraction(24000, 1001), audio=audio, sample_rate=22050)
    back = read_av(write_av(tmp_path / "ds.mkv", clip, lossless=True))
    assert np.array_equal(back.video, video)
    assert back.num_samples == 12345 and back.fps == Fraction(24000, 1001)
    assert np.abs(back.audio - audio).max() <= 2.0**-15  # FLAC stores 16-bit PCM
    assert probe(tmp_path / "ds.mkv")["streams"][0]["codec"] == "ffv1"


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_audio_only_files(tmp_path, rng, ext):
    audio = rng.uniform(-1, 1, (2, 4321)).astype(np.float32)
    path = write_av(tmp_path / f"a{ext}", AVClip(audio=audio, sample_rate=24000, metadata={"prompt": "rain"}))
    back = read_av(path, streams="a")
    assert back.num_samples == 4321 and back.sample_rate == 24000 and back.video is None
    tol = 0 if ext == ".wav" else 2.0**-22
    assert np.abs(back.audio - audio).max() <= tol
    assert back.metadata["prompt"] == "rain" and back.metadata["generator"].startswith("avgen ")


def test_video_only_and_audio_only_mp4(tmp_path):
    clip = make_clip(24, 16000, 1, 32, 32)
    v_only = write_av(tmp_path / "v.mp4", clip.replace(audio=None, sample_rate=None))
    a_only = write_av(tmp_path / "a.mp4", clip.replace(video=None))
    assert read_av(v_only, streams="v").num_frames == clip.num_frames
    assert read_av(a_only, streams="a").num_samples == clip.num_samples
    assert read_av(v_only, streams="any").audio is None


def test_streaming_chunks_match_one_shot(tmp_path):
    clip = make_clip(25, 44100, 2, 48, 80, frames=40)
    write_av(tmp_path / "whole.mkv", clip, lossless=True)
    with AVWriter(
        tmp_path / "chunks.mkv", fps=25, width=48, height=80, sample_rate=44100, channels=2, lossless=True
    ) as w:
        cuts_v, cuts_a = [0, 1, 7, 23, 40], [0, 100, 5000, 33333, clip.num_samples]
        for i in range(4):  # uneven chunks, video and audio interleaved out of step
            w.write_audio(clip.audio[:, cuts_a[i] : cuts_a[i + 1]])
            w.write_video(clip.video[cuts_v[i] : cuts_v[i + 1]])
        w.write_video(clip.video[-1])  # a single (H, W, 3) frame
    a, b = read_av(tmp_path / "whole.mkv"), read_av(tmp_path / "chunks.mkv")
    assert np.array_equal(a.video, b.video[:-1]) and np.array_equal(b.video[-1], clip.video[-1])
    assert np.array_equal(a.audio, b.audio)


def test_provenance_tags(tmp_path):
    clip = make_clip(24, 16000, 1, 32, 32).replace(metadata={"model": "avgen-tiny"})
    path = write_av(tmp_path / "p.mp4", clip, metadata={"prompt": 'a face says "hi"', "seed": 42})
    meta = read_av(path).metadata
    from avgen import __version__

    assert meta["generator"] == f"avgen {__version__}"
    assert (meta["model"], meta["prompt"], meta["seed"]) == ("avgen-tiny", 'a face says "hi"', "42")
    assert probe(path)["metadata"]["prompt"] == 'a face says "hi"'


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed (apt-get install ffmpeg)")
def test_ffprobe_sees_streams_and_tags(tmp_path):
    import json

    path = write_av(tmp_path / "f.mp4", make_clip(30, 48000, 2, 64, 64), metadata={"seed": 1})
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert [s["codec_name"] for s in info["streams"]] == ["h264", "aac"]
    assert info["format"]["tags"]["generator"].startswith("avgen")


def test_av_start_offset_is_aligned_on_read(tmp_path):
    """A foreign file whose audio starts 0.25 s after its video reads back with leading silence."""
    import av

    path = tmp_path / "late_audio.mkv"
    sr, fps = 16000, 10
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1", rate=fps)
        v.width, v.height, v.pix_fmt = 16, 16, "bgr0"
        a = c.add_stream("flac", rate=sr, layout="mono")
        a.time_base = Fraction(1, sr)
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 20 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f.reformat(format="bgr0")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        af = av.AudioFrame.from_ndarray(np.full((1, 8000), 0.5, np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = sr, sr // 4
        for p in a.encode(af):
            c.mux(p)
        for p in a.encode():
            c.mux(p)
    clip = read_av(path)
    assert clip.num_frames == 10
    assert np.all(clip.audio[0, : sr // 4 - 2] == 0) and np.all(
        clip.audio[0, sr // 4 + 2 : sr // 4 + 100] > 0.4
    )
