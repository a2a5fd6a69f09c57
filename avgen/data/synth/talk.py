"""talk: a cartoon face speaks a phrase; its mouth follows espeak-ng's phoneme timing.

Speech comes from espeak-ng (voice, pitch, range and rate vary), resampled to the clip rate and placed at
a random start. Each frame shows the viseme of the phoneme sounding at that frame (see ``visemes``); the
face blinks now and then. Events: one per word and per phoneme (pauses included, as kind "pause").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avgen.data.synth import draw
from avgen.data.synth.captions import COLORS, MOUTH_RGB, SHAPES, pairs, phrases
from avgen.data.synth.family import Rendered, background_for, jitter, pick
from avgen.data.synth.spec import Scene
from avgen.data.synth.speech import Speech, synthesize
from avgen.data.synth.visemes import VISEMES, is_pause, viseme_of

LANGUAGES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-029")
# espeak-ng variants without "breath" (breath noise reads uninitialised memory: not reproducible across processes).
VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f4",
    "Andy",
    "Annie",
    "Denis",
    "Lee",
    "Mario",
    "Michael",
    "adam",
    "aunty",
    "boris",
    "grandma",
    "john",
    "max",
    "quincy",
    "steph",
    "travis",
)


def _speak(
    rng: np.random.Generator, scene: Scene, split: str, phrase_pool: str
) -> tuple[str, Speech, dict[str, Any]]:
    """A phrase of ``phrase_pool`` and its speech, fitted into the clip (faster speech, then shorter phrases,
    if needed)."""
    room = scene.duration - 0.2
    voice = f"{pick(rng, LANGUAGES)}+{pick(rng, VARIANTS)}"
    pitch, pitch_range = int(rng.integers(25, 76)), int(rng.integers(30, 81))
    rate = int(rng.integers(150, 211))
    noise_seed = int(rng.integers(2**31))
    pool = list(phrases(split, phrase_pool))
    phrase = pick(rng, pool)
    for attempt in range(8):
        speech = synthesize(
            phrase, voice=voice, rate=rate, pitch=pitch, pitch_range=pitch_range, noise_seed=noise_seed
        )
        if speech.duration <= room:
            break
        if attempt % 2 == 0 and rate < 300:
            rate += 50
        else:
            pool = [p for p in pool if len(p) < len(phrase)] or [min(pool, key=len)]
            phrase = pick(rng, pool)
    voice_info = {"voice": voice, "rate_wpm": rate, "pitch": pitch, "pitch_range": pitch_range}
    return phrase, speech, voice_info


def _place_speech(rng: np.random.Generator, scene: Scene, speech: Speech) -> tuple[np.ndarray, float]:
    """Speech at the clip rate inside a silent track: float32 (N,) and the start time in seconds."""
    import torch

    from avgen.dsp import resample

    audio = resample(torch.from_numpy(speech.audio), speech.sample_rate, scene.sample_rate).numpy()
    audio = audio * (float(rng.uniform(0.5, 0.8)) / max(float(np.abs(audio).max()), 1e-9))
    spare = scene.num_samples - len(audio) - int(0.05 * scene.sample_rate)
    start = int(rng.integers(int(0.1 * scene.sample_rate), max(spare, int(0.1 * scene.sample_rate)) + 1))
    track = np.zeros(scene.num_samples, dtype=np.float32)
    n = min(len(audio), scene.num_samples - start)
    track[start : start + n] = audio[:n]
    return np.clip(track, -1, 1), start / scene.sample_rate


def _events(scene: Scene, speech: Speech, t0: float) -> tuple[list[dict[str, Any]], list[tuple[float, str]]]:
    """Word, phoneme and pause events in clip time; also (time, phoneme) for the mouth track."""
    timeline = [(t0 + s / speech.sample_rate, p) for s, p in speech.phonemes]
    events: list[dict[str, Any]] = []
    for t, p in timeline:
        if t >= scene.duration:
            continue
        if is_pause(p):
            events.append(scene.event("pause", t, phoneme=p))
        else:
            v = viseme_of(p)
            events.append(scene.event("phoneme", t, phoneme=p, viseme=v, open=VISEMES[v][0]))
    sounding = [(s, p) for s, p in speech.phonemes if not is_pause(p)]
    for s_word, word in speech.words:
        # A word event may precede its first sound (leading silence): time it by its first phoneme.
        s = next((s for s, _ in sounding if s >= s_word), s_word)
        t = t0 + s / speech.sample_rate
        if t < scene.duration:
            events.append(scene.event("word", t, word=word))
    order = {"word": 0, "pause": 1, "phoneme": 1}
    events.sort(key=lambda e: (e["time"], order[e["kind"]]))
    return events, timeline


def _draw_face(canvas: np.ndarray, face: dict[str, Any], open_: float, width: float, eyes_open: bool) -> None:
    cy, cx, r, rgb = face["cy"], face["cx"], face["r"], face["rgb"]
    if face["shape"] == "round":
        draw.disc(canvas, cy, cx, r, rgb)
    elif face["shape"] == "square":
        draw.rounded_rect(canvas, cy - 0.92 * r, cy + 0.92 * r, cx - 0.92 * r, cx + 0.92 * r, 0.3 * r, rgb)
    else:
        draw.ellipse(canvas, cy, cx, r, 0.78 * r, rgb)
    for side in (-1, 1):
        ey, ex = cy - 0.25 * r, cx + side * 0.36 * r
        if eyes_open:
            draw.disc(canvas, ey, ex, max(0.17 * r, 1.2), (0.97, 0.97, 0.97))
            draw.disc(canvas, ey, ex + 0.03 * r, max(0.09 * r, 0.7), (0.05, 0.05, 0.08))
        else:
            draw.rounded_rect(canvas, ey - 0.5, ey + 0.5, ex - 0.17 * r, ex + 0.17 * r, 0.5, (0.1, 0.1, 0.12))
    my, half_w = cy + 0.45 * r, r * (0.14 + 0.22 * width)
    if open_ <= 0.02:  # closed lips: a thin line
        draw.rounded_rect(canvas, my - 0.5, my + 0.5, cx - half_w, cx + half_w, 0.5, MOUTH_RGB)
    else:
        draw.ellipse(canvas, my, cx, max(r * 0.26 * open_, 0.8), half_w, MOUTH_RGB)


def render(rng: np.random.Generator, scene: Scene, split: str, *, phrase_pool: str = "fixed") -> Rendered:
    """A talk clip of ``split`` whose face says a phrase of ``phrase_pool`` (``captions.PHRASE_POOLS``)."""
    H, W, T = scene.height, scene.width, scene.num_frames
    shape, color = pick(rng, pairs("talk", SHAPES, tuple(COLORS), split))
    bg_name, bg = background_for(rng, [color])
    r = scene.short_side * float(rng.uniform(0.28, 0.4))
    face = {
        "shape": shape,
        "rgb": jitter(rng, COLORS[color]),
        "r": r,
        "cy": float(rng.uniform(r + 1, H - r - 1)),
        "cx": float(rng.uniform(r + 1, W - r - 1)),
    }
    base = draw.vertical_gradient(H, W, bg, draw.mix(bg, (0, 0, 0), 0.25))

    phrase, speech, voice_info = _speak(rng, scene, split, phrase_pool)
    audio, t0 = _place_speech(rng, scene, speech)
    events, timeline = _events(scene, speech, t0)

    # Mouth track: each frame shows the phoneme whose nearest frame is the latest at or before it.
    visemes = ["rest"] * T
    phonemes = [""] * T
    for t, p in timeline:
        f = scene.frame_of(t)
        if t < scene.duration:
            visemes[f:] = [viseme_of(p)] * (T - f)
            phonemes[f:] = [p] * (T - f)
    eyes = [True] * T
    for _ in range(int(rng.integers(0, 3))):
        f, n = int(rng.integers(0, T)), int(rng.integers(2, 4))
        eyes[f : f + n] = [False] * len(eyes[f : f + n])

    frames = np.empty((T, H, W, 3), dtype=np.float32)
    for i in range(T):
        frames[i] = base
        _draw_face(frames[i], face, *VISEMES[visemes[i]], eyes_open=eyes[i])

    state = {
        "mouth_open": [VISEMES[v][0] for v in visemes],
        "mouth_width": [VISEMES[v][1] for v in visemes],
        "viseme": visemes,
        "phoneme": phonemes,
        "eyes_open": eyes,
    }
    objects = {
        "background": bg_name,
        "face": {
            "shape": shape,
            "color": color,
            "rgb": [round(c, 4) for c in face["rgb"]],
            "radius": round(r, 3),
            "center": [round(face["cy"], 3), round(face["cx"], 3)],
            "mouth_center": [round(face["cy"] + 0.45 * r, 3), round(face["cx"], 3)],
        },
        "phrase": phrase,
        "speech_start": round(t0, 6),
        "speech_end": round(t0 + speech.duration, 6),
        **voice_info,
    }
    caption = f'{"an" if shape[0] in "aeiou" else "a"} {shape} {color} face says "{phrase}"'
    return Rendered(draw.to_uint8(frames), audio, caption, events, state, objects)
