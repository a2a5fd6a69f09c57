"""Session 29 experiment (not in the library): text-to-audio-video with the video's starting noise correlated
over time. Each video latent's noise is sqrt(1 - a) * its own + sqrt(a) * one draw shared by every latent frame
at the same channel / row / column, so each element stays unit variance and the picture starts from noise
that is the same, in part a, across the clip (training-free temporal-consistency tricks such as FreeInit and
PYoCo's mixed prior start from this). Does a steadier start give steadier balls, and bounce sync?

    python runs/tiny_joint_v16/sweep_bounce/correlated_noise.py A OUT [avgen eval model flags...]
"""

from __future__ import annotations

import sys

import torch
from einops import rearrange

import avgen.diffusion.generate as gen
from avgen.cli import main
from avgen.diffusion.tasks import initial_state

A = float(sys.argv[1])


def correlated_state(layout, batch, given, given_tokens=None, generator=None, device="cpu"):
    x = initial_state(layout, batch, given, given_tokens, generator=generator, device=device)
    pt, ph, pw = layout.spec.video_patch
    tp, hp, wp = layout.video_grid
    n = layout.num_video
    v = rearrange(
        x[:, :n, : layout.spec.video_dim],
        "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)",
        t=tp, h=hp, w=wp, pt=pt, ph=ph, pw=pw,
    )
    shared = torch.randn(v[:, :, :1].shape, generator=generator, device=v.device)
    mixed = (1 - A) ** 0.5 * v + A**0.5 * shared
    tok = rearrange(mixed, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)
    free = ~given[:, :n, None].to(x.device)
    x = x.clone()
    x[:, :n, : layout.spec.video_dim] = torch.where(free, tok, x[:, :n, : layout.spec.video_dim])
    return x


gen.initial_state = correlated_state
sys.exit(main(["eval", "model", *sys.argv[2:]]))
