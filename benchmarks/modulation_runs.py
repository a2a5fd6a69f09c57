"""Per-run vs per-token adaLN modulation: JointDiT default preset forward + backward, batch 16 x 258 tokens.

Interleaved trials in one process (machine noise hits both alike); prints seconds per trial and the largest
output difference (0.0: the two paths agree). The numbers in benchmarks/TRAIN.md came from
``.venv/bin/python benchmarks/modulation_runs.py 1`` (one thread, while a codec trained on the other core).
"""

from __future__ import annotations

import sys
import time

import torch

import avgen.model.dit as dit_module
from avgen.model.dit import JointDiT, dit_config
from avgen.tokens import TokenSpec


def main(threads: int) -> None:
    torch.set_num_threads(threads)
    cfg = dit_config("default", tokens=TokenSpec(video_channels=16, audio_channels=32))
    model = JointDiT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    b, lv, la = 16, 208, 50
    x = torch.randn(b, lv + la, cfg.tokens.feature_dim)
    modality = torch.tensor([0] * lv + [1] * la)
    positions = torch.randn(lv + la, 3)
    t = torch.rand(b)
    text, mask = torch.randn(b, 12, 384), torch.ones(b, 12, dtype=torch.bool)
    runs = dit_module.constant_runs

    def step() -> torch.Tensor:
        out = model(x, t, positions, modality, text, mask)
        out.square().mean().backward()
        return out.detach()

    seconds: dict[str, list[float]] = {}
    outputs: dict[str, torch.Tensor] = {}
    for name, fn in [("per-token", lambda t, m: None), ("runs", runs)] * 3:
        dit_module.constant_runs = fn
        step()  # warm-up
        t0 = time.perf_counter()
        outputs[name] = step()
        seconds.setdefault(name, []).append(round(time.perf_counter() - t0, 2))
    dit_module.constant_runs = runs
    print(seconds)
    print("max diff", (outputs["per-token"] - outputs["runs"]).abs().max().item())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
