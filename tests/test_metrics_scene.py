"""Scene scores: avgen-synth ground truth passes; blobs, blocks and wrong backdrops do not."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.data.synth import SynthConfig, make_sample
from avgen.data.synth.captions import BACKGROUNDS
from avgen.metrics.scene import background_ok, ball_round, scene_scores
from avgen.metrics.synth import parse_caption

pytest.importorskip("cv2")


@pytest.mark.parametrize("family", ["bounce", "talk"])
def test_ground_truth_shows_its_scene(family: str) -> None:
    for seed in range(6):
        s = make_sample(seed, "test", SynthConfig(families={family: 1.0}, sizes=((64, 64),)))
        scores = scene_scores(s.clip.video, family, parse_caption(s.caption)["colors"])
        assert scores["background_ok"], s.caption
        if family == "bounce":
            assert scores["ball_round"] >= 0.9, s.caption


def _canvas(bg: tuple[float, float, float]) -> np.ndarray:
    return np.broadcast_to(np.asarray(bg, np.float32), (12, 64, 64, 3)).copy()


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def test_a_square_a_textured_field_and_a_wrong_backdrop_fail() -> None:
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 30) ** 2 + (xx - 30) ** 2 <= 8**2
    ball = _canvas(BACKGROUNDS["black"])
    ball[:, disc] = (0.86, 0.13, 0.13)
    assert ball_round(_u8(ball)) == 1.0 and background_ok(_u8(ball), ["red"])
    square = _canvas(BACKGROUNDS["black"])
    square[:, 22:38, 22:38] = (0.86, 0.13, 0.13)
    assert ball_round(_u8(square)) == 0.0
    textured = ball.copy()
    textured[:, 5:50, 10:60] += (
        np.random.default_rng(0).uniform(-0.4, 0.4, (12, 45, 50, 3)).astype(np.float32)
    )
    assert ball_round(_u8(textured)) == 0.0  # a disc in clutter is no ball on a floor
    olive = _canvas((0.5, 0.5, 0.1))  # no palette colour
    olive[:, disc] = (0.86, 0.13, 0.13)
    assert not background_ok(_u8(olive), ["red"])
    white_on_cream = _canvas(BACKGROUNDS["cream"])  # the renderer never puts white on cream
    assert not background_ok(_u8(white_on_cream), ["white"]) and background_ok(_u8(white_on_cream), ["blue"])
