"""Velocity MSE of a joint checkpoint by noise level t, on cached validation latents (the issue-8 diagnosis).

Numbers in runs/README.md (video MSE at t = 1: 1.05 / 0.91 / 0.89 at steps 1700 / 1800 / 2100; those
checkpoints have since been rotated away; at the final step 3000: 0.84, audio 1.69) came from:

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/joint_velocity_by_t.py \
        runs/tiny_joint/checkpoints/step_00003000 data/latents/latents-fb50f4c2d4c5af80.safetensors

(the second file is the val split's latent cache that the run wrote; the run's parts are rebuilt from the
config.json in its folder, two levels above the checkpoint).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from avgen.diffusion.flow import interpolate
from avgen.pipeline import AVPipeline
from avgen.tokens import pack
from avgen.train.joint_parts import build_parts
from avgen.train.recipe import load_recipe
from avgen.weights import load_tensors


def pipeline_from_checkpoint(step_dir: str, which: str = "model") -> AVPipeline:
    """The run's parts (from its resolved config.json, two levels up: RUN/checkpoints/step_N) with the DiT
    weights of ``which`` ("model" or "ema") from a loop checkpoint."""
    dit, vc, ac, te, pc = build_parts(load_recipe(Path(step_dir).parents[1] / "config.json").joint)
    state = load_tensors(f"{step_dir}/train_state.safetensors")
    prefix = f"module/{which}/"
    dit.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return AVPipeline(dit.eval(), vc, ac, te, pc)


def main(step_dir: str, cache: str, n: int = 8) -> None:
    pipe = pipeline_from_checkpoint(step_dir)
    f = safe_open(cache, "pt")
    captions = json.loads(f.metadata()["avgen"])["captions"][:n]
    video = torch.stack([f.get_tensor(f"video/{i}") for i in range(n)])
    audio = torch.stack([f.get_tensor(f"audio/{i}") for i in range(n)])
    geom = pipe.geometry(2.0, 64, 64, 24)
    p = pack(pipe.dit.config.tokens, video, audio, geom.video_times(), geom.audio_times())
    text = pipe.text_encoder(captions)
    fmask = p.layout.feature_mask("cpu")  # (L, F)
    noise = torch.randn(p.tokens.shape, generator=torch.Generator().manual_seed(0)) * fmask
    for tv in (0.5, 0.8, 0.9, 0.95, 0.99, 1.0):
        t = torch.full(p.tokens.shape[:2], tv)
        with torch.no_grad():
            pred = pipe.dit(
                interpolate(p.tokens, noise, t), t, p.positions, p.modality, text.states, text.mask
            )
        err = (pred - (noise - p.tokens)) ** 2 * fmask
        parts = {
            name: float(err[:, p.modality == m].sum() / (fmask[p.modality == m].sum() * n))
            for name, m in (("video", 0), ("audio", 1))
        }
        print(f"t={tv:.2f} video mse {parts['video']:.3f} audio mse {parts['audio']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
