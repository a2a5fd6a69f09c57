"""Which family drives the audio's training signal in a video-to-audio batch? Per-family loss and gradient.

For the val split's first 8 clips of each family (frames given clean, audio noised at t = 0.1 ... 0.9, one
noise draw per clip and t), the audio flow loss of a pipeline's DiT, the norm of its gradient over all DiT
weights, and the cosine between the families' gradients. If one family's gradient is much larger, a
three-family video-to-audio batch mostly follows that family, and bounce's timing signal is a small part.

    for p in runs/tiny_joint_v5_ft8/pipeline avgen-tiny; do
      OMP_NUM_THREADS=2 python runs/tiny_joint_v5_ft8/family_gradients.py $p
    done > runs/tiny_joint_v5_ft8/family_gradients.txt      # ~30 s each
"""

from __future__ import annotations

import sys

import torch

from avgen.diffusion.flow import FlowConfig, flow_loss, interpolate
from avgen.metrics.model_eval import ModelEvalConfig, test_samples
from avgen.pipeline import AVPipeline
from avgen.tokens import VIDEO

FAMILIES = ("talk", "bounce", "keys")
TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)
AUDIO_ONLY = FlowConfig(video_weight=0.0)  # the frames are clean and carry no loss anyway


def family_gradient(pipe: AVPipeline, samples: list, gen: torch.Generator) -> tuple[float, torch.Tensor]:
    """Mean audio flow loss over ``samples`` x ``TIMES`` and its gradient, flattened over the DiT's weights."""
    dit = pipe.dit.train(False).requires_grad_(True)  # loaded for inference: weights frozen
    dit.zero_grad(set_to_none=True)
    total = 0.0
    n = len(samples) * len(TIMES)
    for s in samples:
        p = pipe.encode(s.clip)
        x0, pos, mod = p.tokens.clone(), p.positions.clone(), p.modality.clone()  # not inference tensors
        mask = p.layout.feature_mask("cpu")
        cond = pipe.text_encoder([s.caption])
        states, smask = cond.states.clone(), cond.mask.clone()
        for t_val in TIMES:
            noise = torch.randn(x0.shape, generator=gen) * mask
            t = torch.full(x0.shape[:2], t_val)
            t[:, mod == VIDEO] = 0.0  # frames given clean
            pred = dit(interpolate(x0, noise, t), t, pos, mod, states, smask)
            loss = flow_loss(pred, x0, noise, t, mod, mask, AUDIO_ONLY).total
            (loss / n).backward()
            total += loss.item() / n
    grad = torch.cat([w.grad.flatten() for w in dit.parameters() if w.grad is not None])
    return total, grad


def main(path: str) -> None:
    pipe = AVPipeline.from_pretrained(path)
    cfg = ModelEvalConfig(per_family=8, families=FAMILIES, split="val", tasks=())
    samples = test_samples(cfg, pipe.audio_codec.sample_rate)
    gen = torch.Generator().manual_seed(0)
    grads = {}
    print(f"{path}: val, 8 clips per family, frames clean, audio at t = {TIMES}")
    for fam in FAMILIES:
        mine = [s for s in samples if s.family == fam]
        loss, grads[fam] = family_gradient(pipe, mine, gen)
        print(f"{fam:>7}: audio loss {loss:.4f}, gradient norm {grads[fam].norm().item():.4f}")
    for i, a in enumerate(FAMILIES):
        for b in FAMILIES[i + 1 :]:
            cos = torch.nn.functional.cosine_similarity(grads[a], grads[b], dim=0).item()
            print(f"cosine({a}, {b}) = {cos:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
