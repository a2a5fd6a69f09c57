"""How much each modality's predicted velocity depends on the other one and on the text, by noise level t.

For held-out avgen-synth clips (both modalities at the same t, as in text-to-audio-video sampling), the RMS
over a modality's tokens of

- ``text``: ``v(x_t, caption) - v(x_t, "")``, what classifier-free guidance amplifies;
- ``other``: ``v(x_t, caption) - v(x_t with the other modality replaced by noise at t = 1, caption)``, what
  sync guidance (``audio_sync`` / ``video_sync``) amplifies;
- ``given``: the same difference with the other modality given clean (t = 0, as in v2a / a2v) instead of
  at the same t: how much the model uses a fully known other stream;

and ``v`` itself for scale. If ``other`` is small next to ``text`` the model makes that stream mostly from
the caption, and sync guidance has little to amplify. Results: ``benchmarks/results/cross_modal_<name>.md``.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cross_modal_dependence.py runs/tiny_joint_v4/pipeline \
        --name avgen_tiny_v4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from avgen.atomic import write_text
from avgen.diffusion.guidance import without_modality
from avgen.metrics.model_eval import ModelEvalConfig, test_samples
from avgen.pipeline import AVPipeline
from avgen.tokens import AUDIO, VIDEO

TIMES = (0.9, 0.7, 0.5, 0.3, 0.1)


def rms(x: torch.Tensor) -> float:
    return x.float().pow(2).mean().sqrt().item()


def measure(pipe: AVPipeline, per_family: int, split: str, seed: int = 0) -> dict[str, dict]:
    """``{family: {t: {"audio"|"video": {"v", "text", "other", "given"}}}}``, RMS averaged over the clips."""
    cfg = ModelEvalConfig(per_family=per_family, families=("talk", "bounce"), split=split, tasks=())
    samples = test_samples(cfg, pipe.audio_codec.sample_rate)
    dit = pipe.dit
    uncond = pipe.text_encoder([""])
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, dict] = {}
    for s in samples:
        p = pipe.encode(s.clip)
        mask = p.layout.feature_mask("cpu")
        noise, null = (torch.randn(p.tokens.shape, generator=gen) * mask for _ in range(2))
        cond = pipe.text_encoder([s.caption])
        fam = out.setdefault(s.to_json()["family"], {})
        for t_val in TIMES:
            t = torch.full(p.tokens.shape[:2], t_val)
            x = (1 - t_val) * p.tokens + t_val * noise

            v_c = dit(x, t, p.positions, p.modality, cond.states, cond.mask)
            v_u = dit(x, t, p.positions, p.modality, uncond.states, uncond.mask)
            for name, m, other in (("audio", AUDIO, VIDEO), ("video", VIDEO, AUDIO)):
                sel = p.modality == m
                x_o, t_o = without_modality(x, t, p.modality, other, null)
                v_o = dit(x_o, t_o, p.positions, p.modality, cond.states, cond.mask)
                osel = (p.modality == other)[None, :, None]
                x_g = torch.where(osel, p.tokens, x)
                t_g = torch.where(osel[..., 0], torch.zeros_like(t), t)
                v_g = dit(x_g, t_g, p.positions, p.modality, cond.states, cond.mask)
                zero = {"v": 0.0, "text": 0.0, "other": 0.0, "given": 0.0}
                acc = fam.setdefault(str(t_val), {}).setdefault(name, zero)
                acc["v"] += rms(v_c[:, sel]) / per_family
                acc["text"] += rms((v_c - v_u)[:, sel]) / per_family
                acc["other"] += rms((v_c - v_o)[:, sel]) / per_family
                acc["given"] += rms((v_g - v_o)[:, sel]) / per_family
    return out


def markdown(result: dict[str, dict], title: str) -> str:
    lines = [
        f"# Cross-modal dependence: {title}",
        "",
        "RMS over a modality's tokens (mean over clips): `v` the conditional velocity, `text` = v(caption) -",
        "v(empty), `other` = v - v(other modality replaced by noise at t = 1), `given` = the same with the other",
        "modality given clean (t = 0) instead of at the same t. `other / text` < 1: that stream follows the",
        "caption more than the other stream.",
        "",
        "| family | t | audio v | audio text | audio other | audio given | audio other/text | video v | "
        "video text | video other | video given | video other/text |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for family, by_t in result.items():
        for t, mods in by_t.items():
            cells = []
            for name in ("audio", "video"):
                d = mods[name]
                cells += [f"{d[k]:.4f}" for k in ("v", "text", "other", "given")]
                # A stream the caption does not move (e.g. a video-to-audio model's frames) has no ratio.
                cells.append(f"{d['other'] / d['text']:.2f}" if d["text"] > 0 else "-")
            lines.append(f"| {family} | {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", help="a pipeline folder or a shipped name (avgen-tiny)")
    ap.add_argument("--name", default="avgen_tiny", help="results file stem")
    ap.add_argument("--per-family", type=int, default=8)
    ap.add_argument("--split", default="val")
    args = ap.parse_args()
    pipe = AVPipeline.from_pretrained(args.pipeline)
    with torch.no_grad():
        result = measure(pipe, args.per_family, args.split)
    res = Path(__file__).parent / "results"
    cmd = f"benchmarks/cross_modal_dependence.py {args.pipeline} --name {args.name} --per-family {args.per_family}"
    payload = {"pipeline": args.pipeline, "split": args.split, "per_family": args.per_family, "command": cmd}
    write_text(
        res / f"cross_modal_{args.name}.json", json.dumps({**payload, "result": result}, indent=1) + "\n"
    )
    md = markdown(result, f"{args.pipeline}, {args.split} split, {args.per_family} clips per family")
    write_text(res / f"cross_modal_{args.name}.md", md + f"\nReproduce: `python {cmd}`\n")
    print(md)


if __name__ == "__main__":
    main()
