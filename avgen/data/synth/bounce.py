"""bounce: balls fall and bounce on a floor; every impact is a percussive sound pitched by ball size.

Each ball follows gravity between impacts, losing speed at each bounce (restitution), and comes to rest
once a flight would last under three frames. On the frame nearest each impact the ball is drawn touching
the floor; the strike sound starts at the impact's sample. Between impacts the audio is silent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from avgen.data.synth import draw
from avgen.data.synth.captions import COLORS, SIZES, count_word, pairs
from avgen.data.synth.family import Rendered, background_for, jitter, pick
from avgen.data.synth.sounds import MATERIALS, add_at, strike
from avgen.data.synth.spec import Scene

SIZE_RADIUS = {"small": 0.065, "medium": 0.095, "big": 0.13}  # radius / short side
PACE_FLIGHT = {"slow": (0.55, 0.8), "quick": (0.26, 0.4)}  # seconds between the first two impacts
ADVERB = {"slow": "slowly", "quick": "quickly"}


def pitch_of(radius_fraction: float) -> float:
    """Impact pitch in Hz: bigger balls sound lower (small ~700 Hz, big ~250 Hz)."""
    return 400.0 * (0.095 / radius_fraction) ** 1.5


def _trajectory(
    rng: np.random.Generator, scene: Scene, pace: str, rest_y: float, top_y: float
) -> dict[str, Any]:
    """Impact times and the parabola parameters of one ball."""
    first_flight = float(rng.uniform(*PACE_FLIGHT[pace]))
    apex = float(rng.uniform(0.55, 1.0)) * (rest_y - top_y)  # pixels above the resting height
    gravity = 8.0 * apex / first_flight**2  # px / s^2
    restitution = float(rng.uniform(0.78, 0.97))
    min_flight = max(0.12, 3.0 / float(scene.fps))
    t = float(rng.uniform(0.06, min(first_flight, 0.5 * scene.duration)))
    impacts, flights_before = [t], [first_flight]
    flight = first_flight * restitution
    while flight >= min_flight and t + flight < scene.duration:
        t += flight
        impacts.append(t)
        flights_before.append(flight)
        flight *= restitution
    resting_after = impacts[-1] if flight < min_flight else math.inf
    return {
        "impacts": impacts,
        "flights_before": flights_before,
        "gravity": gravity,
        "first_flight": first_flight,
        "restitution": restitution,
        "resting_after": resting_after,
        "next_flight": flight,
    }


def _height(traj: dict[str, Any], t: np.ndarray) -> np.ndarray:
    """float64 (T,) height of the ball's bottom above the floor in pixels at times ``t``."""
    impacts = np.asarray(traj["impacts"])
    before = np.asarray(traj["flights_before"])
    k = np.searchsorted(impacts, t, side="right")  # number of impacts at or before t
    after = np.append(before[1:], traj["next_flight"])  # flight following each impact
    ta = np.where(k == 0, impacts[0] - before[0], impacts[np.maximum(k - 1, 0)])
    tb = np.where(k == 0, impacts[0], impacts[np.maximum(k - 1, 0)] + after[np.maximum(k - 1, 0)])
    h = 0.5 * traj["gravity"] * (t - ta) * (tb - t)
    return np.where(t >= traj["resting_after"], 0.0, np.maximum(h, 0.0))


def render(rng: np.random.Generator, scene: Scene, split: str) -> Rendered:
    H, W, T = scene.height, scene.width, scene.num_frames
    count = int(pick(rng, (1, 1, 2, 2, 3)))
    allowed = pairs("bounce", SIZES, tuple(COLORS), split)
    if count == 1 or rng.random() < 0.5:
        kinds = [pick(rng, allowed)] * count
    else:
        kinds = [pick(rng, allowed) for _ in range(count)]
    pace = pick(rng, ("slow", "quick"))
    material = pick(rng, tuple(MATERIALS))
    bg_name, bg = background_for(rng, [c for _, c in kinds])
    floor_top = H - round(float(rng.uniform(0.1, 0.16)) * H)
    floor_color = draw.mix(bg, (1.0, 1.0, 1.0) if draw.luminance(bg) < 0.5 else (0.0, 0.0, 0.0), 0.3)
    base = draw.vertical_gradient(H, W, draw.mix(bg, (1, 1, 1), 0.08), bg)
    base[floor_top:] = np.asarray(floor_color, np.float32)

    times = scene.frame_times
    balls: list[dict[str, Any]] = []
    for b, (size, color_name) in enumerate(kinds):
        r = SIZE_RADIUS[size] * scene.short_side * float(rng.uniform(0.92, 1.08))
        lane0, lane1 = b * W / count, (b + 1) * W / count
        lo, hi = lane0 + r + 1, lane1 - r - 1
        x0, x1 = (
            (float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
            if hi > lo
            else ((lane0 + lane1) / 2,) * 2
        )
        traj = _trajectory(rng, scene, pace, rest_y=floor_top - r, top_y=r + 1)
        height = _height(traj, times)
        for t_hit in traj["impacts"]:
            height[scene.frame_of(t_hit)] = 0.0  # the impact frame shows the ball on the floor
        balls.append(
            {
                "size": size,
                "color": color_name,
                "rgb": jitter(rng, COLORS[color_name]),
                "radius": r,
                "x": x0 + (x1 - x0) * times / scene.duration,
                "y": floor_top - r - height,
                "height": height,
                "traj": traj,
                "pitch_hz": pitch_of(r / scene.short_side),
            }
        )

    frames = np.empty((T, H, W, 3), dtype=np.float32)
    for i in range(T):
        canvas = frames[i]
        canvas[:] = base
        for ball in balls:
            r, x = ball["radius"], float(ball["x"][i])
            lift = min(float(ball["height"][i]) / max(floor_top - 2 * r, 1.0), 1.0)
            draw.ellipse(
                canvas,
                floor_top + 0.6,
                x,
                0.9,
                r * (1.0 - 0.5 * lift),
                draw.mix(floor_color, (0, 0, 0), 0.5),
                0.6,
            )
        for ball in balls:
            r, x, y = ball["radius"], float(ball["x"][i]), float(ball["y"][i])
            draw.disc(canvas, y, x, r, ball["rgb"])
            draw.disc(
                canvas, y - 0.35 * r, x - 0.35 * r, 0.3 * r, draw.mix(ball["rgb"], (1, 1, 1), 0.55), 0.8
            )

    audio = np.zeros(scene.num_samples, dtype=np.float32)
    events: list[dict[str, Any]] = []
    gain = 0.3 if count == 1 else 0.22
    for b, ball in enumerate(balls):
        traj = ball["traj"]
        v_first = traj["gravity"] * traj["flights_before"][0] / 2
        following = [*traj["flights_before"][1:], traj["next_flight"]]
        for t_hit, before, after in zip(traj["impacts"], traj["flights_before"], following):
            speed = traj["gravity"] * before / 2  # px / s at impact
            amp = gain * (speed / v_first) ** 0.8
            length = int(min(0.35, 0.7 * after) * scene.sample_rate)
            tau = min(0.02 + 0.5 * ball["radius"] / scene.short_side, after / 8)
            start = scene.sample_of(t_hit)
            add_at(
                audio,
                start,
                strike(
                    ball["pitch_hz"],
                    scene.sample_rate,
                    amp=amp,
                    tau=tau,
                    length=max(length, 16),
                    material=material,
                ),
            )
            events.append(
                scene.event(
                    "impact", t_hit, ball=b, speed=round(speed / H, 4), pitch_hz=round(ball["pitch_hz"], 2)
                )
            )
    events.sort(key=lambda e: (e["time"], e["ball"]))

    on_floor = [[bool(ball["height"][i] == 0.0) for ball in balls] for i in range(T)]
    state = {
        "ball_x": [[round(float(ball["x"][i]), 3) for ball in balls] for i in range(T)],
        "ball_y": [[round(float(ball["y"][i]), 3) for ball in balls] for i in range(T)],
        "on_floor": on_floor,
    }
    objects = {
        "background": bg_name,
        "floor_y": float(floor_top),
        "material": material,
        "pace": pace,
        "balls": [
            {
                "size": ball["size"],
                "color": ball["color"],
                "rgb": [round(c, 4) for c in ball["rgb"]],
                "radius": round(ball["radius"], 3),
                "pitch_hz": round(ball["pitch_hz"], 2),
                "restitution": round(ball["traj"]["restitution"], 4),
            }
            for ball in balls
        ],
    }
    return Rendered(
        draw.to_uint8(frames), np.clip(audio, -1, 1), _caption(kinds, pace), events, state, objects
    )


def _caption(kinds: list[tuple[str, str]], pace: str) -> str:
    adverb = ADVERB[pace]
    if len(set(kinds)) == 1:
        size, color = kinds[0]
        if len(kinds) == 1:
            return f"a {size} {color} ball bounces {adverb}"
        return f"{count_word(len(kinds))} {size} {color} balls bounce {adverb}"
    names = [f"a {size} {color} ball" for size, color in kinds]
    return f"{', '.join(names[:-1])} and {names[-1]} bounce {adverb}"
