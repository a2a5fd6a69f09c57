"""keys: a row of bars plays a short melody; a bar lights while its note sounds.

Bar i plays scale degree i of a major pentatonic scale (left = low). Notes never overlap and consecutive
notes use different bars, so every note is a separate light and a separate onset. The bar is drawn lit
on frames frame_of(on) .. frame_of(off) - 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avgen.data.synth import draw
from avgen.data.synth.captions import COLORS, PACES, count_word, pairs
from avgen.data.synth.family import Rendered, background_for, jitter, pick
from avgen.data.synth.sounds import TIMBRES, add_at, note
from avgen.data.synth.spec import Scene

PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)  # semitones above the root
BEAT = {"slow": (0.38, 0.5), "quick": (0.2, 0.27)}  # seconds per note slot
RELEASE = 0.02  # seconds of fade after a note ends


def midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _melody(rng: np.random.Generator, scene: Scene, n_bars: int, pace: str) -> list[tuple[float, float, int]]:
    """(on, off, bar) in seconds, in order; each note lasts >= 2 frames and is followed by >= 1.5 frames of rest."""
    frame = 1.0 / float(scene.fps)
    beat = float(rng.uniform(*BEAT[pace]))
    min_len, min_gap = max(0.1, 2 * frame), max(0.06, 1.5 * frame)
    beat = max(beat, min_len + min_gap)
    t, bar, notes = float(rng.uniform(0.05, 0.3)), int(rng.integers(n_bars)), []
    while True:
        length = max(beat * float(rng.uniform(0.5, 0.7)), min_len)
        length = min(length, beat - min_gap)
        if t + length + RELEASE > scene.duration - 0.02:
            break
        if notes and rng.random() < 0.15:  # a rest
            t += beat
            continue
        notes.append((t, t + length, bar))
        steps = [s for s in (-2, -1, 1, 2) if 0 <= bar + s < n_bars]
        bar += int(pick(rng, steps))
        t += beat
    return notes


def render(rng: np.random.Generator, scene: Scene, split: str) -> Rendered:
    H, W, T = scene.height, scene.width, scene.num_frames
    n_bars = int(rng.integers(4, 8))
    pace, color = pick(rng, pairs("keys", PACES, tuple(COLORS), split))
    bg_name, bg = background_for(rng, [color])
    rgb = jitter(rng, COLORS[color])
    timbre = pick(rng, tuple(TIMBRES))
    root = int(rng.integers(55, 68))
    midis = [root + PENTATONIC[i] for i in range(n_bars)]

    margin = W * float(rng.uniform(0.05, 0.1))
    slot = (W - 2 * margin) / n_bars
    bar_w = slot * float(rng.uniform(0.6, 0.8))
    tall, short = H * float(rng.uniform(0.55, 0.75)), H * float(rng.uniform(0.3, 0.45))
    centre_y = H * float(rng.uniform(0.45, 0.55))
    bars = []
    for i in range(n_bars):
        h = tall + (short - tall) * i / max(n_bars - 1, 1)
        x0 = margin + i * slot + (slot - bar_w) / 2
        bars.append((centre_y - h / 2, centre_y + h / 2, x0, x0 + bar_w))
    dim, lit_rgb = draw.mix(rgb, bg, 0.7), draw.mix(rgb, (1.0, 1.0, 1.0), 0.3)

    notes = _melody(rng, scene, n_bars, pace)
    lit = np.zeros((T, n_bars), dtype=bool)
    for on, off, bar in notes:
        lit[scene.frame_of(on) : scene.frame_of(off), bar] = True

    base = draw.vertical_gradient(H, W, bg, draw.mix(bg, (0, 0, 0), 0.2))
    frames = np.empty((T, H, W, 3), dtype=np.float32)
    radius = max(0.15 * bar_w, 0.5)
    for i in range(T):
        frames[i] = base
        for b, (y0, y1, x0, x1) in enumerate(bars):
            if lit[i, b]:
                g = max(0.12 * bar_w, 1.0)
                draw.rounded_rect(frames[i], y0 - g, y1 + g, x0 - g, x1 + g, radius + g, rgb, 0.35)
            draw.rounded_rect(frames[i], y0, y1, x0, x1, radius, lit_rgb if lit[i, b] else dim)

    audio = np.zeros(scene.num_samples, dtype=np.float32)
    events: list[dict[str, Any]] = []
    release = int(RELEASE * scene.sample_rate)
    for on, off, bar in notes:
        start, stop = scene.sample_of(on), scene.sample_of(off)
        add_at(
            audio,
            start,
            note(
                midi_hz(midis[bar]),
                scene.sample_rate,
                amp=0.5,
                on=stop - start,
                release=release,
                timbre=timbre,
            ),
        )
        events.append(
            scene.event("note_on", on, bar=bar, midi=midis[bar], pitch_hz=round(midi_hz(midis[bar]), 3))
        )
        events.append(scene.event("note_off", off, bar=bar))
    events.sort(key=lambda e: e["time"])

    state = {"lit": [[bool(v) for v in row] for row in lit]}
    objects = {
        "background": bg_name,
        "color": color,
        "rgb": [round(c, 4) for c in rgb],
        "lit_rgb": [round(c, 4) for c in lit_rgb],
        "dim_rgb": [round(c, 4) for c in dim],
        "pace": pace,
        "timbre": timbre,
        "bars": [{"box": [round(v, 3) for v in box], "midi": m} for box, m in zip(bars, midis)],
    }
    caption = f"{count_word(n_bars)} {color} bars play a {pace} melody"
    return Rendered(draw.to_uint8(frames), np.clip(audio, -1, 1), caption, events, state, objects)
