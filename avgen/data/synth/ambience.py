"""ambience: rain, a texture without discrete events (falling streaks and filtered noise).

Rain strength drifts slowly; the number of visible streaks and the loudness of the noise both follow it,
so picture and sound agree without any single event to time.
"""

from __future__ import annotations

import numpy as np

from avgen.data.synth import draw
from avgen.data.synth.captions import BACKGROUNDS, RAIN, pairs
from avgen.data.synth.family import Rendered, pick
from avgen.data.synth.sounds import rain_noise
from avgen.data.synth.spec import Scene

STRENGTH = {"light": (0.15, 0.3), "steady": (0.4, 0.6), "heavy": (0.75, 0.95)}


def render(rng: np.random.Generator, scene: Scene, split: str) -> Rendered:
    H, W, T = scene.height, scene.width, scene.num_frames
    strength, bg_name = pick(rng, pairs("ambience", RAIN, tuple(BACKGROUNDS), split))
    bg = BACKGROUNDS[bg_name]
    streak_rgb = (0.78, 0.83, 0.93) if draw.luminance(bg) < 0.5 else (0.25, 0.3, 0.45)
    level = float(rng.uniform(*STRENGTH[strength]))
    period, phase = float(rng.uniform(1.5, 4.0)), float(rng.uniform(0, 2 * np.pi))

    def intensity(t: np.ndarray) -> np.ndarray:
        return np.clip(level * (1 + 0.2 * np.sin(2 * np.pi * t / period + phase)), 0.05, 1.0)

    # A fixed pool of drops; drop j is visible while its rank j / M is below the current intensity.
    pool = int(max(H * W / 60, 8))
    speed = H * rng.uniform(1.6, 2.6, pool)  # px / s
    length = speed * float(rng.uniform(0.025, 0.045))  # streak length in px
    wind = float(rng.uniform(-0.35, 0.35))  # dx per dy
    x0 = rng.uniform(-0.4 * H * abs(wind), W + 0.4 * H * abs(wind), pool)
    y0 = rng.uniform(0, H + length.max(), pool)
    width = max(scene.short_side / 64, 0.6)
    alpha = float(rng.uniform(0.55, 0.8))

    times = scene.frame_times
    level_t = intensity(times)
    base = draw.vertical_gradient(H, W, draw.mix(bg, (0, 0, 0), 0.2), bg)
    frames = np.empty((T, H, W, 3), dtype=np.float32)
    visible = []
    for i, t in enumerate(times):
        frames[i] = base
        on = np.arange(pool) < level_t[i] * pool
        y_tail = (y0 + speed * t) % (H + length) - length  # top of each streak
        y_head = y_tail + length
        ends = np.stack([y_tail, x0 + wind * y_tail, y_head, x0 + wind * y_head], axis=1)[on]  # (K, 4)
        ends = ends[(ends[:, 2] > 0) & (ends[:, 0] < H)]
        draw.segments(frames[i], ends, width, streak_rgb, alpha)
        visible.append(len(ends))

    t_audio = np.arange(scene.num_samples) / scene.sample_rate
    audio = rain_noise(
        rng,
        scene.num_samples,
        scene.sample_rate,
        intensity=intensity(t_audio),
        brightness=float(rng.uniform(0.2, 1.0)),
    )
    state = {"rain_intensity": [round(float(v), 4) for v in level_t], "drops": visible}
    objects = {"background": bg_name, "strength": strength, "level": round(level, 4), "wind": round(wind, 4)}
    caption = f"{strength} rain falls against a {bg_name} background"
    return Rendered(draw.to_uint8(frames), audio, caption, [], state, objects)
