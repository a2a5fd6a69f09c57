"""Session 30 experiment (not in the library): text-to-audio-video with the picture's clean estimate smoothed
over time at every sampler step. At each velocity call the video tokens' clean estimate x0 = x - t * v
(rectified flow, x_t = (1 - t) x0 + t noise) is low-passed along the latent frames ([1, 2, 1] / 4, applied
ITERS times, edge frames repeated), blended as (1 - LAM) * x0 + LAM * smooth, and the velocity is rebuilt
from it, v = (x - x0') / t, for the video tokens at t >= TMIN (given tokens, t = 0, are untouched). The
sound's velocity is not touched; it is made with the steadier picture in the same joint steps (or after it,
with --order video_first). Question: do balls that stay put from frame to frame give the sound bounces to
follow (bounce impact F1)?

    python runs/tiny_joint_v16/sweep_bounce/smoothed_x0.py LAM ITERS TMIN [avgen eval model flags...]
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from einops import rearrange

import avgen.diffusion.generate as gen
from avgen.cli import main

LAM, ITERS, TMIN = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
_layout = {}
_initial_state = gen.initial_state
_guided_velocity = gen.guided_velocity


def initial_state(layout, *args, **kwargs):
    _layout["now"] = layout
    return _initial_state(layout, *args, **kwargs)


def smooth_time(x0: torch.Tensor, layout) -> torch.Tensor:
    """``x0 (B, N, video_dim)`` video tokens -> the same, low-passed along latent frames."""
    pt, ph, pw = layout.spec.video_patch
    tp, hp, wp = layout.video_grid
    pattern = "b (t h w) (c pt ph pw) -> (b c h ph w pw) 1 (t pt)"
    lanes = rearrange(x0, pattern, t=tp, h=hp, w=wp, pt=pt, ph=ph, pw=pw)
    kernel = torch.tensor([0.25, 0.5, 0.25], dtype=lanes.dtype, device=lanes.device).view(1, 1, 3)
    for _ in range(ITERS):
        lanes = F.conv1d(F.pad(lanes, (1, 1), mode="replicate"), kernel)
    back = "(b c h ph w pw) 1 (t pt) -> b (t h w) (c pt ph pw)"
    return rearrange(lanes, back, b=x0.shape[0], h=hp, w=wp, pt=pt, ph=ph, pw=pw)


def guided_velocity(*args, **kwargs):
    velocity_fn = _guided_velocity(*args, **kwargs)

    def smoothed(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = velocity_fn(x, t)
        layout = _layout["now"]
        n, d = layout.num_video, layout.spec.video_dim
        tv = t[:, :n, None].to(v.dtype)
        xv = x[:, :n, :d]
        x0 = xv - tv * v[:, :n, :d]
        x0 = (1 - LAM) * x0 + LAM * smooth_time(x0, layout)
        rebuilt = (xv - x0) / tv.clamp_min(1e-6)
        out = v.clone()
        out[:, :n, :d] = torch.where((tv > 0) & (tv >= TMIN), rebuilt, v[:, :n, :d])
        return out

    return smoothed


gen.initial_state = initial_state
gen.guided_velocity = guided_velocity
sys.exit(main(["eval", "model", *sys.argv[4:]]))
