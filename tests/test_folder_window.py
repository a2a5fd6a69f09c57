"""The pure window functions behind FolderDataset: nearest-timestamp frames, aspect crop + resize at odd
sizes, sample-exact audio windows across rates; and FolderConfig built from plain data."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from avgen.config import from_dict, to_dict
from avgen.data.folder import FolderConfig
from avgen.data.skips import SkipPolicy
from avgen.data.window import (
    audio_window,
    crop_box,
    crop_resize,
    frames_for,
    mix_channels,
    nearest_frames,
    samples_for,
    start_grid,
)
from avgen.errors import ConfigError


def test_nearest_frames_picks_the_closest_timestamp_ties_earlier():
    times = np.array([0.0, 0.1, 0.35, 0.4, 1.0])
    got = nearest_frames(times, np.array([0.0, 0.05, 0.2, 0.3, 0.7, 0.71, 2.0, -1.0]))
    assert got.tolist() == [0, 0, 1, 2, 3, 4, 4, 0]


@pytest.mark.parametrize("src", [(37, 53), (53, 37), (20, 20), (9, 101)])
@pytest.mark.parametrize("dst", [(17, 29), (16, 16), (29, 17)])
def test_crop_resize_shapes_and_range_at_odd_sizes(src, dst):
    frames = np.random.default_rng(0).integers(0, 256, (3, *src, 3), dtype=np.uint8)
    out = crop_resize(frames, *dst)
    assert out.shape == (3, 3, *dst) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    top, left, h, w = crop_box(*src, *dst)
    assert 0 <= top <= src[0] - h and 0 <= left <= src[1] - w
    assert abs(w / h - dst[1] / dst[0]) <= max(1 / h, 1 / w) * dst[1] / dst[0] + 1e-9
    for u in [(0.0, 0.0), (0.999, 0.999)]:
        t, lft, hh, ww = crop_box(*src, *dst, rand=u)
        assert (hh, ww) == (h, w) and 0 <= t <= src[0] - h and 0 <= lft <= src[1] - w


def test_crop_keeps_the_centre_and_maps_values_exactly():
    frames = np.zeros((1, 4, 8, 3), np.uint8)
    frames[:, :, 2:6] = 255  # a white centre square in a wide frame
    out = crop_resize(frames, 4, 4)
    assert torch.equal(out, torch.ones(3, 1, 4, 4))
    assert crop_box(4, 8, 4, 4) == (0, 2, 4, 4)


def test_audio_window_same_rate_is_an_exact_slice():
    x = torch.rand(2, 1000) * 2 - 1
    out = audio_window(x, 8000, 8000, Fraction(30, 8000), 500)
    assert torch.equal(out, x[:, 30:530])


@pytest.mark.parametrize(("orig", "new"), [(48000, 16000), (22050, 16000), (16000, 24000)])
def test_audio_window_across_rates_keeps_phase(orig, new):
    f = 440.0
    x = torch.sin(2 * torch.pi * f * torch.arange(orig) / orig)[None] * 0.5  # 1 s
    step = start_grid(orig, new)
    start = (Fraction(3, 10) // step) * step
    out = audio_window(x, orig, new, start, new // 4)
    expect = 0.5 * torch.sin(2 * torch.pi * f * (float(start) + torch.arange(new // 4) / new))
    assert (out[0] - expect).abs().max() < 2e-3
    with pytest.raises(ValueError, match="multiple"):
        audio_window(x, orig, new, start + step / 3, 10)


def test_counts_grid_and_channel_mix():
    assert frames_for(0.1, Fraction(30)) == 3 and frames_for(2.0, Fraction(30000, 1001)) == 59
    assert samples_for(0.5, 24000) == 12000
    assert start_grid(44100, 16000) == Fraction(1, 100)
    st = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert torch.equal(mix_channels(st, 1), torch.tensor([[0.5, 0.5]]))
    assert mix_channels(st[:1], 2).shape == (2, 2)


def test_folder_config_from_plain_data():
    cfg = from_dict(
        FolderConfig,
        {
            "fps": "30000/1001",
            "resolutions": [[64, 112], [64, 64]],
            "durations": [1, 2],
            "skip": {"silence_dbfs": None},
        },
        where="data.yaml",
    )
    assert cfg.resolutions == ((64, 112), (64, 64)) and cfg.durations == (1.0, 2.0)
    assert cfg.skip == SkipPolicy(silence_dbfs=None) and cfg.fps_fraction == Fraction(30000, 1001)
    assert from_dict(FolderConfig, to_dict(cfg)) == cfg
    assert cfg.bucket_shape((0, 1)) == {"frames": 59, "height": 64, "width": 112, "samples": 48000}
    with pytest.raises(ConfigError, match="unknown key 'fsp'"):
        from_dict(FolderConfig, {"fsp": 24})
    with pytest.raises(ConfigError, match="silence_dbfs"):
        SkipPolicy(silence_dbfs=10.0)
    with pytest.raises(ConfigError, match="channels"):
        FolderConfig(channels=3)
