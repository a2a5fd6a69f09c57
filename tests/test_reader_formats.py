"""Ordinary media read correctly: WebM/MKV/Ogg with Opus or Vorbis, WAV at every bit depth and 1-8 channels
(downmixed like any other container), variable frame rate, rotated MP4, a truncated WAV, and the hint for
reading an audio-only file. Every file is written here at run time with PyAV (or byte patches of files it
wrote), each under 100 KB."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from avgen.errors import MediaError
from avgen.io import AVClip, read_av, write_av

LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _encoder(name: str) -> None:
    import av

    try:
        av.Codec(name, "w")
    except av.error.FFmpegError:  # an unknown codec name
        pytest.skip(f"this PyAV build has no {name} encoder")


def _write(
    path: Path,
    audio: np.ndarray | None,
    *,
    sr: int = 48000,
    acodec: str = "libopus",
    layout: str | None = None,
    vcodec: str | None = None,
    frames: int = 12,
    fps: int = 24,
    fmt: str | None = None,
) -> Path:
    """Frame i flat grey 10 i mod 250 (32x32) and ``audio`` (C, N) float in the given codecs, written with PyAV."""
    import av

    for name in (acodec if audio is not None else None, vcodec):
        if name:
            _encoder(name)
    with av.open(str(path), "w", format=fmt) as c:  # both streams first: none can be added once muxing starts
        v = a = None
        if vcodec:
            v = c.add_stream(vcodec, rate=fps)
            v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
            v.options = (
                {"deadline": "realtime", "cpu-used": "8"} if "vpx" in vcodec else {"preset": "ultrafast"}
            )
        if audio is not None:
            layout = layout or LAYOUTS[audio.shape[0]]
            a = c.add_stream(acodec, rate=sr, layout=layout)
            if acodec == "vorbis":
                a.codec_context.options = {"strict": "experimental"}  # FFmpeg's own Vorbis encoder
        if v is not None:
            for i in range(frames):
                f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i % 250, np.uint8), format="rgb24")
                f.pts = i
                c.mux(v.encode(f))
            c.mux(v.encode())
        if a is not None:
            step = a.codec_context.frame_size or 1024
            for i in range(0, audio.shape[1], step):
                chunk = np.ascontiguousarray(audio[:, i : i + step].T, dtype=np.float32).reshape(1, -1)
                f = av.AudioFrame.from_ndarray(
                    chunk, format="flt", layout=layout
                )  # packed: any channel count
                f.sample_rate, f.pts = sr, i
                c.mux(a.encode(f))
            c.mux(a.encode())
    assert path.stat().st_size < 100_000
    return path


def _click_tone(channels: int, n: int, sr: int = 48000) -> np.ndarray:
    """A 440 Hz tone with a full-scale click in its first millisecond, so a lost start shows."""
    x = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)
    x[: sr // 1000] = 0.9
    return np.stack([x] * channels)


def _first_loud(audio: np.ndarray) -> int:
    return int(np.argmax(np.abs(audio[0]) > 0.5))


@pytest.mark.parametrize(
    "suffix,fmt,vcodec,acodec",
    [
        (".webm", "webm", "libvpx-vp9", "libopus"),
        (".mkv", "matroska", "libvpx-vp9", "libopus"),
        (".mkv", "matroska", "libx264", "flac"),
        (".webm", "webm", "libvpx", "vorbis"),
    ],
)
def test_webm_and_mkv_read_both_streams_whole(tmp_path, suffix, fmt, vcodec, acodec):
    """VP9 + Opus straight from FFmpeg: no 'truncated' refusal (Opus pre-skip), no lost first 20 ms."""
    n = 48000  # 1 s, 24 frames at 24 fps
    path = _write(
        tmp_path / f"c{suffix}", _click_tone(2, n), vcodec=vcodec, acodec=acodec, frames=24, fmt=fmt
    )
    both, audio, video = read_av(path), read_av(path, streams="a"), read_av(path, streams="v")
    assert both.num_frames == video.num_frames == 24 and both.fps == 24
    slack = 0 if acodec != "vorbis" else 1024  # FFmpeg's experimental Vorbis encoder pads its last packet
    assert n <= both.num_samples <= n + slack and both.num_samples == audio.num_samples
    assert _first_loud(both.audio) == _first_loud(audio.audio) == 0  # the click at sample 0 is there
    assert np.array_equal(both.audio, audio.audio)
    assert np.abs(both.video[:, 16, 16, 0].astype(int) - 10 * np.arange(24)).max() <= 6


def test_webm_window_is_sample_exact(tmp_path):
    """WebM timestamps count milliseconds: a window's audio still matches the whole read to the sample."""
    rng = np.random.default_rng(7)
    n = 48000 * 5 // 2  # 2.5 s, 60 frames at 24 fps
    noise = rng.uniform(-0.3, 0.3, (1, n))  # no period, so any shift shows
    path = _write(tmp_path / "w.webm", np.repeat(noise, 2, 0), vcodec="libvpx-vp9", frames=60, fmt="webm")
    full = read_av(path)
    win = read_av(path, start=1.0, duration=0.75)
    assert win.num_frames == 18 and win.num_samples == 36000
    assert np.array_equal(win.video, full.video[24:42])
    assert np.array_equal(win.audio, full.audio[:, 48000:84000])


@pytest.mark.parametrize("suffix,acodec", [(".ogg", "libopus"), (".opus", "libopus"), (".ogg", "vorbis")])
def test_ogg_audio(tmp_path, suffix, acodec):
    n = 24123  # not a whole number of codec frames
    path = _write(tmp_path / f"a{suffix}", _click_tone(2, n), acodec=acodec, fmt="ogg")
    clip = read_av(path, streams="a")
    slack = 0 if acodec == "libopus" else 64  # Vorbis: the experimental encoder rounds its last granule
    assert clip.sample_rate == 48000 and clip.channels == 2 and n <= clip.num_samples <= n + slack
    assert _first_loud(clip.audio) == 0
    t = np.arange(n) / 48000
    ref = 0.3 * np.sin(2 * np.pi * 440 * t)
    assert np.corrcoef(clip.audio[0, 4800:n], ref[4800:])[0, 1] > 0.99


@pytest.mark.parametrize(
    "codec,tol",
    [
        ("pcm_u8", 2 / 256),
        ("pcm_s16le", 2**-15),
        ("pcm_s24le", 2**-23),
        ("pcm_s32le", 2**-24),  # float32 keeps 24 bits
        ("pcm_f32le", 0.0),
        ("pcm_f64le", 2**-24),
    ],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_bit_depths(tmp_path, rng, codec, tol, channels):
    x = rng.uniform(-0.9, 0.9, (channels, 4000)).astype(np.float32)
    path = _write(tmp_path / "a.wav", x, sr=16000, acodec=codec)
    clip = read_av(path, streams="a")
    assert (clip.channels, clip.num_samples, clip.sample_rate) == (channels, 4000, 16000)
    assert np.abs(clip.audio - x).max() <= tol


def _speech_like(n: int, sr: int) -> np.ndarray:
    """A voiced-speech stand-in: 140 Hz harmonics under a 4 Hz syllable envelope."""
    t = np.arange(n) / sr
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    return 0.25 * voice * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) / 2


@pytest.mark.parametrize("channels", range(1, 9))
def test_every_channel_count_reads_and_downmixes_like_mp4(tmp_path, channels):
    """1-8 channel WAV: mono stays mono, wider becomes stereo with FFmpeg's ITU-R BS.775 matrix (LFE
    dropped), the same matrix as the same audio in an AAC MP4."""
    sr, n = 16000, 4000
    x = np.zeros((channels, n))
    tones = {}
    names = LAYOUTS[channels]
    import av

    roles = [ch.name for ch in av.AudioLayout(names).channels]
    for i, role in enumerate(roles):
        tones[role] = 300 + 100 * i
        x[i] = 0.15 * np.sin(2 * np.pi * tones[role] * np.arange(n) / sr)
    wav = read_av(_write(tmp_path / "m.wav", x, sr=sr, acodec="pcm_s16le"), streams="a")
    assert wav.channels == min(channels, 2) and wav.num_samples == n
    spectrum = np.abs(np.fft.rfft(wav.audio.sum(0))) / n
    for role, hz in tones.items():  # every channel but LFE is heard
        level = spectrum[round(hz * n / sr)]
        assert (level < 1e-3) if role == "LFE" else (level > 0.03), (role, level)
    if channels > 2:
        mp4 = read_av(_write(tmp_path / "m.mp4", x, sr=sr, acodec="aac"), streams="a")
        assert mp4.num_samples == n
        for c in range(2):
            assert np.corrcoef(wav.audio[c], mp4.audio[c])[0, 1] > 0.99


def test_centre_channel_speech_survives_5_1(tmp_path):
    sr, n = 8000, 6000
    x = np.zeros((6, n))
    x[2] = _speech_like(n, sr)  # FC of 5.1; the fronts hold quiet noise
    x[[0, 1]] = np.random.default_rng(0).normal(0, 0.002, (2, n))
    for suffix, codec in ((".wav", "pcm_s16le"), (".mp4", "aac"), (".ogg", "libopus")):
        rate = 48000 if codec == "libopus" else sr  # Opus runs at 48 kHz: the same signal, samples repeated
        src = x if rate == sr else np.repeat(x, rate // sr, axis=1)
        clip = read_av(_write(tmp_path / f"s{suffix}", src, sr=rate, acodec=codec, fmt=None), streams="a")
        speech = src[2] * np.sqrt(0.5)  # FC at -3 dB in both L and R
        for c in range(2):
            out = clip.audio[c, : len(speech)]
            assert np.corrcoef(out, speech[: out.shape[0]])[0, 1] > 0.95, suffix
            assert 0.8 < np.sqrt(np.mean(out**2) / np.mean(speech[: out.shape[0]] ** 2)) < 1.25, suffix


def _write_vfr(path: Path, times_s: list[float], fmt: str | None = None) -> list[int]:
    """H.264 at the given presentation times (time base 1/90000); frame i is flat grey 5 i + 10."""
    import av

    tb = Fraction(1, 90000)
    levels = [5 * i + 10 for i in range(len(times_s))]
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream("libx264", rate=30)
        v.width = v.height = 32
        v.pix_fmt = "yuv420p"
        v.time_base = v.codec_context.time_base = tb
        v.options = {"preset": "ultrafast", "crf": "0", "bf": "0"}
        for t, level in zip(times_s, levels):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), level, np.uint8), format="rgb24")
            f.pts, f.time_base = round(t / tb), tb
            c.mux(v.encode(f))
        c.mux(v.encode())
    return levels


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_is_placed_on_the_grid(tmp_path, suffix):
    """1 s at 30 fps then 1 s at 15 fps: read on a 30 fps grid, each 15 fps frame shows for two slots."""
    times = [i / 30 for i in range(30)] + [1 + i / 15 for i in range(15)]
    levels = _write_vfr(tmp_path / f"vfr{suffix}", times)
    clip = read_av(tmp_path / f"vfr{suffix}", streams="v")
    assert clip.fps == 30
    expect = [levels[i] for i in range(30)] + [levels[30 + k // 2] for k in range(29)]  # last frame: 1 slot
    assert clip.num_frames == len(expect) == 59
    assert np.abs(clip.video[:, 16, 16, 0].astype(int) - expect).max() <= 2
    frames = read_av(tmp_path / f"vfr{suffix}", streams="v", vfr="frames")  # one for one, as decoded
    assert frames.num_frames == 45
    assert np.abs(frames.video[:, 16, 16, 0].astype(int) - levels).max() <= 2


def test_variable_frame_rate_window_keeps_the_frame_showing(tmp_path):
    times = [0.0, 0.5, 0.6, 1.5]  # irregular; a window opening at 1.0 s still shows the 0.6 s frame
    levels = _write_vfr(tmp_path / "gaps.mp4", times)
    clip = read_av(tmp_path / "gaps.mp4", streams="v", vfr="grid")
    fps = clip.fps
    win = read_av(tmp_path / "gaps.mp4", streams="v", start=1.0, duration=0.5)
    k0 = int(np.ceil(1.0 * fps - 1e-6))
    assert win.num_frames == int(np.ceil(1.5 * fps - 1e-6)) - k0
    assert np.array_equal(win.video, clip.video[k0 : k0 + win.num_frames])
    assert abs(int(win.video[0, 16, 16, 0]) - levels[2]) <= 2


def _marked(width: int = 64, height: int = 32) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[:8, :8] = 255  # a white top-left corner
    return img


def _write_rotated(path: Path, degrees: int | None, hflip: bool = False) -> Path:
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 64, 32, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "0"}
        if degrees is not None:
            v.set_display_rotation(degrees, hflip=hflip)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(_marked(), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode())
    return path


def _corner(video: np.ndarray) -> str:
    """Which corner of frame 0 is white."""
    f = video[0, :, :, 0].astype(int)
    h, w = f.shape
    corners = {"tl": f[:4, :4], "tr": f[:4, w - 4 :], "bl": f[h - 4 :, :4], "br": f[h - 4 :, w - 4 :]}
    return max(corners, key=lambda k: corners[k].mean())


@pytest.mark.parametrize(
    "degrees,hflip,shape,corner",
    [
        (None, False, (32, 64), "tl"),
        (-90, False, (64, 32), "tr"),  # clockwise, like a phone held upright
        (90, False, (64, 32), "bl"),  # counter-clockwise
        (180, False, (32, 64), "br"),
        (0, True, (32, 64), "tr"),  # mirrored
    ],
)
def test_display_matrix_is_applied(tmp_path, degrees, hflip, shape, corner):
    clip = read_av(_write_rotated(tmp_path / "r.mp4", degrees, hflip), streams="v")
    assert clip.video.shape[1:3] == shape and _corner(clip.video) == corner


def test_phone_portrait_matrix_patched_into_tkhd(tmp_path):
    """The tkhd matrix a phone writes for an upright shot ({0, 1, -1, 0}), patched into a file PyAV wrote
    unrotated: read as rotated 90 degrees clockwise."""
    data = bytearray(_write_rotated(tmp_path / "plain.mp4", None).read_bytes())
    at = data.index(b"tkhd") + 4 + 4 + 36  # version 0: flags, times, track id, duration, layer... then matrix
    assert data[at : at + 4] == b"\x00\x01\x00\x00"  # identity's a = 1.0
    matrix = [0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000]
    data[at : at + 36] = b"".join(v.to_bytes(4, "big", signed=True) for v in matrix)
    path = tmp_path / "portrait.mp4"
    path.write_bytes(bytes(data))
    clip = read_av(path, streams="v")
    assert clip.video.shape[1:3] == (64, 32) and _corner(clip.video) == "tr"


@pytest.mark.parametrize("kind", [".wav", ".flac", "6ch.wav", ".mp4", ".webm", ".ogg"])
def test_audio_only_file_hint_is_a_call_that_works(tmp_path, kind):
    """``read_av("speech.wav")`` asks for video by default; the error names the call that reads it."""
    x = _click_tone(6 if kind == "6ch.wav" else 1, 4800, 48000) * 0.5
    if kind in (".wav", ".flac"):
        path = write_av(tmp_path / f"speech{kind}", AVClip(audio=x.astype(np.float32), sample_rate=48000))
    else:
        codec = {"6ch.wav": "pcm_s16le", ".mp4": "aac", ".webm": "libopus", ".ogg": "libopus"}[kind]
        path = _write(tmp_path / f"speech.{kind.split('.')[-1]}", x, acodec=codec)
    with pytest.raises(MediaError) as e:
        read_av(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "no video stream" in msg
    streams = re.search(r"streams='(\w+)'", msg).group(1)
    clip = read_av(path, streams=streams)
    assert clip.video is None and clip.num_samples >= 4800


def test_truncated_wav_is_refused_with_a_call_that_reads_what_is_there(tmp_path, rng):
    x = rng.uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    full = _write(tmp_path / "full.wav", x, sr=16000, acodec="pcm_s16le").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[: len(full) - 4 * 6000])  # 6000 stereo 16-bit samples short
    with pytest.raises(MediaError) as e:
        read_av(cut, streams="a")
    msg = str(e.value)
    assert msg.startswith(str(cut)) and "declares 16000 samples" in msg and "holds 10000" in msg
    duration = float(re.search(r"duration=([0-9.e-]+)\)", msg).group(1))
    part = read_av(cut, streams="a", duration=duration)
    assert part.num_samples == 10000 and np.abs(part.audio - x[:, :10000]).max() <= 2**-15
    assert read_av(cut, streams="a", start=0.1, duration=0.2).num_samples == 3200  # a window inside: fine
    # a header written by a streaming writer (length unknown) reads to the end
    streamed = bytearray(full)
    streamed[streamed.index(b"data") + 4 : streamed.index(b"data") + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert read_av(tmp_path / "streamed.wav", streams="a").num_samples == 16000
