"""Long clips in windows (issue 45): exact lengths, each window continuing the last, reproducible, streamed,
event times on the whole clip's latent grid, and bad window / overlap values named."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from avgen.clip import AVClip
from avgen.codecs.tiny import tiny_audio_codec, tiny_pixel_codec
from avgen.diffusion import generate
from avgen.diffusion.settings import SamplingConfig
from avgen.diffusion.streaming import write_stream
from avgen.diffusion.tasks import given_mask
from avgen.diffusion.windows import (
    Windowing,
    given_threshold,
    plan_windows,
    shifted_speech,
)
from avgen.errors import ConfigError
from avgen.geometry import ClipGeometry
from avgen.io import read_av
from avgen.model.dit import tiny_dit
from avgen.model.phonemes import Phonemes
from avgen.model.text import TextStates, tiny_text_encoder
from avgen.pipeline import AVPipeline, tiny_pipeline
from avgen.pipeline_config import PipelineConfig
from avgen.tokens import TokenSpec, make_layout, pack, positions

PROMPT = "a red ball"
LONG = {"seconds": 3.0, "window": 1.0, "overlap": 0.5, "progress": False}  # 5 windows of 25 frames


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def long_clip(pipe) -> AVClip:
    return pipe(PROMPT, seed=3, **LONG)


@pytest.fixture(scope="module")
def frame_wise() -> AVPipeline:
    """A frame-wise video codec (no temporal downsampling) with 4-frame video tokens, as avgen-tiny has."""
    video, audio, text = tiny_pixel_codec(), tiny_audio_codec(0), tiny_text_encoder(seed=0)
    spec = TokenSpec(video.latent_channels, audio.latent_channels, video_patch=(4, 2, 2))
    config = PipelineConfig(name="tiny-frames", height=16, width=16, sampling=SamplingConfig(steps=1))
    return AVPipeline(tiny_dit(spec, text_dim=text.dim), video, audio, text, config)


def _geometry(seconds: float, fps=24, ts: int = 4) -> ClipGeometry:
    return ClipGeometry.from_duration(
        seconds, fps, height=64, width=64, sample_rate=16000, temporal_downsample=ts, hop_length=320
    )


def test_windowed_clip_has_exactly_the_asked_frames_and_samples(pipe, long_clip) -> None:
    assert (long_clip.num_frames, long_clip.num_samples) == (72, 48000)
    assert long_clip.metadata["window"] == "1.04167"  # 25 frames: one window ends on a latent frame
    assert long_clip.metadata["overlap"] == "0.541667"  # 13 frames: the step (12) is on the 0.5 s grid
    odd = pipe(PROMPT, seconds=2.3, fps=25, window=1.0, overlap=0.3, progress=False)
    geom = pipe.geometry(2.3, 64, 64, 25)
    assert (odd.num_frames, odd.num_samples, odd.fps) == (geom.num_frames, geom.num_samples, 25)


@pytest.mark.parametrize(
    ("fps", "window", "overlap", "grid"),
    [(24, 1.0, 0.25, 3), ("30000/1001", 1.0, 0.25, 15), ("30000/1001", 0.6, 0.25, 1)],
)
def test_off_the_audio_latent_grid_lengths_stay_exact(frame_wise, fps, window, overlap, grid) -> None:
    # whole samples (3 frames at 24 fps, 15 at 30000/1001) or, with no room for that, the nearest sample
    geom = frame_wise.geometry(2.5, 16, 16, fps)
    assert plan_windows(geom, frame_wise.dit.config.tokens, window, overlap).grid == grid
    call = {"seconds": 2.5, "fps": fps, "window": window, "overlap": overlap, "seed": 1, "progress": False}
    clip = frame_wise(PROMPT, **call)
    assert (clip.num_frames, clip.num_samples) == (geom.num_frames, geom.num_samples)
    pieces = list(frame_wise.stream(PROMPT, **call))
    assert np.array_equal(np.concatenate([p.video for p in pieces]), clip.video)
    assert np.array_equal(np.concatenate([p.audio for p in pieces], axis=1), clip.audio)


def test_a_clip_that_fits_one_window_is_the_whole_clip_call(pipe) -> None:
    whole = pipe(PROMPT, seconds=1.0, seed=5, progress=False)
    windowed = pipe(PROMPT, seconds=1.0, seed=5, window=1.0, progress=False)
    assert np.array_equal(whole.video, windowed.video)
    assert np.array_equal(whole.audio, windowed.audio)


def test_the_same_call_twice_is_bit_identical(pipe, long_clip) -> None:
    again = pipe(PROMPT, seed=3, **LONG)
    assert np.array_equal(again.video, long_clip.video)
    assert np.array_equal(again.audio, long_clip.audio)
    other = pipe(PROMPT, seed=4, **LONG)
    assert not np.array_equal(other.video, long_clip.video)
    # clip i of a batch is the clip alone with seed + i, window by window too
    first, second = pipe([PROMPT, PROMPT], seed=2, **LONG)
    assert np.array_equal(second.video, long_clip.video)
    assert np.array_equal(second.audio, long_clip.audio)
    assert not np.array_equal(first.video, second.video)


def test_each_window_holds_the_end_of_the_last_one_clean(pipe, monkeypatch) -> None:
    calls, decoded = [], []
    real_tokens, real_sample = generate.generate_tokens, pipe._sample

    def tokens_spy(model, packed, cond, uncond=None, **kwargs):
        out = real_tokens(model, packed, cond, uncond, **kwargs)
        calls.append((packed, kwargs["task"], kwargs.get("seconds", 0.0), out))
        return out

    def sample_spy(*args, **kwargs):
        out = real_sample(*args, **kwargs)
        decoded.append((args[1], out))
        return out

    monkeypatch.setattr(generate, "generate_tokens", tokens_spy)
    monkeypatch.setattr(pipe, "_sample", sample_spy)
    clip = pipe(PROMPT, seed=3, window=Windowing(1.0, 0.5, crossfade=False), seconds=3.0, progress=False)
    plan = plan_windows(pipe.geometry(3.0, 64, 64), pipe.dit.config.tokens, 1.0, 0.5)
    assert [task for _, task, _, _ in calls] == ["t2av"] + ["continue"] * (len(plan) - 1)
    spec = pipe.dit.config.tokens
    for k in range(1, len(plan)):
        packed, _, seconds, out = calls[k]
        given = given_mask("continue", packed.layout, 1, packed.positions, seconds)[0]
        assert torch.equal(out[0, given], packed.tokens[0, given].float())  # held clean
        # the given tokens are the previous window's decoded end, encoded as the continuation task does
        (geom, (frames, audio)), shared = decoded[k - 1], plan.overlap
        shared_audio = audio[0, :, round(plan.step / 24 * 16000) :]
        tail = AVClip(video=frames[0, plan.step :], fps=24, audio=shared_audio, sample_rate=16000)
        short = dataclasses.replace(geom, num_frames=shared)
        v, a = pipe._encode_video(tail, short, 1), pipe._encode_audio(tail, short, 1)
        whole_v = torch.zeros(1, spec.video_channels, *decoded[k][0].video_latent_shape)
        whole_a = torch.zeros(1, spec.audio_channels, decoded[k][0].audio_latent_length)
        whole_v[:, :, : v.shape[2]], whole_a[..., : a.shape[2]] = v, a
        wgeom = decoded[k][0]
        expected = pack(spec, whole_v, whole_a, wgeom.video_times(), wgeom.audio_times()).tokens
        # (to the last bit but one: the codecs' kernels may sum in another order on another buffer)
        assert torch.allclose(packed.tokens[0, given], expected[0, given], rtol=0, atol=1e-6)
        # every video latent of the 13 shared frames is given (1 + 4 * 3: latents 0..3), none after
        video_given = given[: packed.layout.num_video].view(packed.layout.video_grid)[:, 0, 0]
        assert video_given.tolist() == [True] * 4 + [False] * (len(video_given) - 4)
        # without a crossfade the output is the last window's own decode up to the cut
        start = plan.starts[k]
        assert np.array_equal(
            clip.video[start : start + plan.fade], frames[0, plan.step : plan.step + plan.fade]
        )


def test_the_crossfade_runs_from_one_window_to_the_next(pipe, monkeypatch) -> None:
    decoded = []
    real_sample = pipe._sample

    def sample_spy(*args, **kwargs):
        decoded.append(real_sample(*args, **kwargs))
        return decoded[-1]

    monkeypatch.setattr(pipe, "_sample", sample_spy)
    clip = pipe(PROMPT, seed=3, **LONG)
    plan = plan_windows(pipe.geometry(3.0, 64, 64), pipe.dit.config.tokens, 1.0, 0.5)
    start, fade = plan.starts[1], plan.fade
    old, new = decoded[0][0][0, plan.step :].astype(np.float32), decoded[1][0][0].astype(np.float32)
    w = (np.arange(1, fade + 1) / (fade + 1))[:, None, None, None]
    expected = np.rint((1 - w) * old[:fade] + w * new[:fade]).astype(np.uint8)
    assert np.abs(clip.video[start : start + fade].astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(clip.video[start + fade : plan.starts[2]], decoded[1][0][0, fade : plan.step])


def test_hold_gives_only_the_start_of_the_shared_part(pipe, monkeypatch) -> None:
    calls = []
    real_tokens = generate.generate_tokens

    def tokens_spy(model, packed, cond, uncond=None, **kwargs):
        calls.append((packed, kwargs.get("seconds", 0.0)))
        return real_tokens(model, packed, cond, uncond, **kwargs)

    monkeypatch.setattr(generate, "generate_tokens", tokens_spy)
    clip = pipe(PROMPT, seed=3, seconds=2.0, window=Windowing(1.0, 0.5, hold=0.2), progress=False)
    assert clip.metadata["hold"] == "0.208333"  # 5 frames: latents 0 and 1 of the causal VAE
    packed, seconds = calls[1]
    given = given_mask("continue", packed.layout, 1, packed.positions, seconds)[0]
    video_given = given[: packed.layout.num_video].view(packed.layout.video_grid)[:, 0, 0]
    assert video_given.tolist() == [True] * 2 + [False] * (len(video_given) - 2)
    assert int(given[packed.layout.num_video :].sum()) == round(5 / 24 * 16000) // 640


def test_stream_yields_pieces_that_make_the_windowed_call(pipe, long_clip, tmp_path) -> None:
    pieces = list(pipe.stream(PROMPT, seed=3, **LONG))
    assert len(pieces) == 5
    assert [p.metadata["window"] for p in pieces] == ["0", "1", "2", "3", "4"]
    assert [p.metadata["start_frame"] for p in pieces] == ["0", "12", "24", "36", "48"]
    assert pieces[0].metadata["seed"] == "3" and pieces[0].metadata["prompt"] == PROMPT
    assert np.array_equal(np.concatenate([p.video for p in pieces]), long_clip.video)
    assert np.array_equal(np.concatenate([p.audio for p in pieces], axis=1), long_clip.audio)
    path = write_stream(pipe.stream(PROMPT, seed=3, **LONG), tmp_path / "long.mkv", lossless=True)
    back = read_av(path)
    assert np.array_equal(back.video, long_clip.video)
    assert back.num_samples == long_clip.num_samples
    assert back.metadata.get("prompt") == PROMPT and "start_frame" not in back.metadata


def test_a_stream_closed_early_stops_and_errors_come_out(pipe) -> None:
    pieces = pipe.stream(PROMPT, seed=3, **LONG)
    first = next(pieces)
    pieces.close()
    assert first.num_frames == 12
    with pytest.raises(ConfigError, match=r"overlap=1\.0 s must be shorter than window=1\.0 s"):
        next(pipe.stream(PROMPT, seconds=3.0, window=1.0, overlap=1.0, progress=False))
    with pytest.raises(ConfigError, match="one clip"):
        pipe.stream([PROMPT, PROMPT], seconds=3.0)


@pytest.mark.parametrize(
    ("fps", "ts", "patch", "overlap", "grid"),
    [
        (24, 4, (1, 2, 2), 0.5, 12),  # the tiny test codecs
        (24, 1, (4, 2, 2), 0.5, 12),  # avgen-tiny: on the audio latent grid too (0.5 s)
        (24, 1, (4, 2, 2), 0.25, 3),  # a shorter overlap: on whole samples (3 frames = 2000 samples)
        (30, 4, (1, 2, 2), 0.5, 12),
    ],
)
def test_window_times_are_the_whole_clips(fps, ts, patch, overlap, grid) -> None:
    geom = _geometry(61.0, fps, ts)
    plan = plan_windows(geom, TokenSpec(video_patch=patch), 2.0, overlap)
    assert plan.grid == grid
    v_all, a_all = geom.video_times().double(), geom.audio_times().double()
    assert plan.piece(len(plan) - 1)[1] == geom.num_frames
    assert [plan.piece(k)[1] for k in range(len(plan) - 1)] == list(plan.starts[1:])
    for k, (start, stop) in enumerate(plan.span(k) for k in range(len(plan))):
        assert start % grid == 0 and start % ts == 0 and (start * 16000) % fps == 0  # a whole sample
        wgeom = dataclasses.replace(geom, num_frames=stop - start)
        offset = start / float(fps)
        v, a = wgeom.video_times().double() + offset, wgeom.audio_times().double() + offset
        # latent 0 of a window is its first frame alone (re-encoded), at the time of the clip's latent there
        v0 = start // ts
        assert torch.allclose(v, v_all[v0 : v0 + len(v)], atol=1e-5), k
        if grid % 12 == 0:  # starts on an audio latent: the window's audio latents are the clip's
            a0 = start * 16000 // fps // 320
            assert a0 * 320 == start * 16000 // fps
            assert torch.allclose(a, a_all[a0 : a0 + len(a)], atol=1e-5), k


def test_the_shipped_model_windows() -> None:
    # avgen-tiny: 24 fps, frame-wise VAE, 4-frame video tokens, 16 kHz audio in 640-sample tokens
    geom, spec = _geometry(60.0, 24, 1), TokenSpec(video_patch=(4, 2, 2))
    plan = plan_windows(geom, spec, 2.0, 0.5)
    assert (plan.size, plan.step, plan.overlap, plan.grid, len(plan)) == (48, 36, 12, 12, 40)
    plan = plan_windows(geom, spec, 2.0, 0.25)  # 48 / 42 frames of compute per frame: 1.14x
    assert (plan.size, plan.step, plan.overlap, plan.grid, len(plan)) == (48, 42, 6, 3, 35)


@pytest.mark.parametrize(("ts", "patch", "frames"), [(4, (1, 2, 2), 13), (1, (4, 2, 2), 12)])
def test_the_threshold_gives_whole_tokens_only(ts, patch, frames) -> None:
    geom, spec = _geometry(2.0, 24, ts), TokenSpec(video_patch=patch)
    samples = round(frames / 24 * 16000)
    seconds = given_threshold(geom, spec, frames, samples)
    layout = make_layout(spec, (16, *geom.video_latent_shape), (32, geom.audio_latent_length))
    pos = positions(layout, geom.video_times(), geom.audio_times())
    given = given_mask("continue", layout, 1, pos, seconds)[0]
    video = given[: layout.num_video].view(layout.video_grid)[:, 0, 0]
    audio = given[layout.num_video :]
    assert int(video.sum()) * patch[0] == (frames - 1) // ts + 1  # every latent of the shared frames
    assert int(audio.sum()) == samples // 640  # audio tokens wholly inside, not the one across the end


def test_a_threshold_across_interleaved_tokens_holds_no_straddling_token() -> None:
    # 4-frame video tokens (1/6 s) and 640-sample audio tokens (1/25 s), 8 frames and 0.5 s of sound given:
    # the video token of frames 8-11 (time 0.40 s) is not, audio tokens up to 0.45 s are, so no time
    # separates them exactly
    geom, spec = _geometry(2.0, 24, 1), TokenSpec(video_patch=(4, 2, 2))
    frames, samples = 8, 8000
    with pytest.raises(ConfigError, match="no single time separates"):
        given_threshold(geom, spec, frames, samples)
    seconds = given_threshold(geom, spec, frames, samples, exact=False)
    layout = make_layout(spec, (16, *geom.video_latent_shape), (32, geom.audio_latent_length))
    pos = positions(layout, geom.video_times(), geom.audio_times())
    given = given_mask("continue", layout, 1, pos, seconds)[0]
    video = given[: layout.num_video].view(layout.video_grid)[:, 0, 0]
    audio = given[layout.num_video :]
    assert int(video.sum()) == 2  # frames 0-7
    assert int(audio.sum()) == 10  # the audio tokens before 0.40 s, all wholly given
    assert given_threshold(geom, spec, 48, 32000, exact=False) > float(pos[:, 0].max())  # all given


def test_bad_window_and_overlap_values_are_named(pipe) -> None:
    geom, spec = _geometry(10.0), TokenSpec()
    cases = [
        ((2.0, 2.0), "overlap=2.0 s must be shorter than window=2.0 s"),
        ((2.0, 3.0), "overlap=3.0 s must be shorter than window=2.0"),
        ((0.1, 0.05), "window=0.1 s is shorter than one latent frame"),
        ((0.0, 0.5), "window must be a positive number"),
        ((float("nan"), 0.5), "window must be a positive number"),
        ((True, 0.5), "window must be a positive number"),
        ((2.0, 0.0), "overlap must be a positive number"),
        ((2.0, -1.0), "overlap must be a positive number"),
        ((0.5, 0.4), "leaves 3 new frames per window"),
    ]
    for (window, overlap), message in cases:
        with pytest.raises(ConfigError, match=message):
            plan_windows(geom, spec, window, overlap)
    with pytest.raises(ConfigError, match=r"overlap=0.01 s \(1 frames, 667 samples\) holds no whole token"):
        plan_windows(geom, TokenSpec(video_patch=(2, 2, 2)), 2.0, 0.01)  # video tokens of 5 frames
    with pytest.raises(ConfigError, match=r"hold=0.02 s \(1 frames, 667 samples\) holds no whole token"):
        plan_windows(_geometry(10.0, ts=1), TokenSpec(video_patch=(4, 2, 2)), 2.0, 0.5, hold=0.02)
    with pytest.raises(ConfigError, match="hold must be a positive number"):
        plan_windows(geom, spec, 2.0, 0.5, hold=-0.1)
    with pytest.raises(ConfigError, match="window="):
        pipe(PROMPT, seconds=3.0, window=0.1, progress=False)
    face = pipe(PROMPT, seconds=1.0, progress=False)
    with pytest.raises(ConfigError, match=r"'a2v' task .* pass window=None"):
        pipe(PROMPT, audio=face, window=1.0, progress=False)


def test_speech_moves_with_the_window() -> None:
    phonemes = Phonemes.from_timelines([[(0.1, 0.3, "h"), (2.6, 2.8, "@"), (5.0, 5.2, "l")]])
    text = TextStates(torch.zeros(1, 3, 8), torch.ones(1, 3, dtype=torch.bool), phonemes)
    moved = shifted_speech(text, 1.5, 2.0).phonemes
    assert moved.mask.tolist() == [[False, True, False]]
    assert torch.allclose(moved.start[0, 1], torch.tensor(1.1)) and torch.allclose(
        moved.end[0, 1], torch.tensor(1.3)
    )


@pytest.mark.filterwarnings("ignore:prompt .* truncated")  # the tiny text encoder reads 16 tokens
def test_stream_pieces_carry_the_caption_the_model_read(pipe) -> None:
    synth = copy.copy(pipe)
    synth.config = dataclasses.replace(pipe.config, prompt_style="avgen-synth")
    prompt, short = "a red ball bouncing on the ground", {**LONG, "seconds": 1.5}
    whole = synth(prompt, seed=1, **short)
    pieces = list(synth.stream(prompt, seed=1, **short))
    assert whole.metadata["caption"] != prompt  # the call read the prompt as a synth caption
    assert {p.metadata["caption"] for p in pieces} == {whole.metadata["caption"]}
    raw = next(iter(synth.stream(prompt, seed=1, rewrite_prompt=False, **short)))
    assert raw.metadata["caption"] == prompt
