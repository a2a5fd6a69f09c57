"""At which noise level do the lip-sync probes lose the mouth? One-step denoising of real val talk clips.

For each val talk clip (the evaluation's first CLIPS, rendered in-process) its frames and sound are encoded
as the pipeline does; the video tokens are noised to ``x_t = (1 - t) x0 + t noise`` at each t in TS (the
sound stays clean, as audio-to-video keeps it), the DiT's guided velocity at the pipeline's video guidance
gives the clean estimate ``x0_hat = x_t - t v`` in one step, and that is decoded. The mouth is measured in
the real face's mouth box (the structure is the real clip's at small t): the share of frames with any
mouth-coloured pixel and the opening's correlation with the real clip's opening. A model that keeps the
mouth at t = 0.1 but loses it by 0.5 can draw a mouth once the face is placed but never places one; a model
that loses it already at t = 0.1 erases mouths it is shown. The control gives each clip another clip's sound:
where the correlation with the real opening holds without the right sound, it comes from what is left of the
real frames in x_t, not from listening. How much the sound moves the picture at all: the mean absolute change
of the opening (pixels) and of the whole frame (8-bit levels) between the right sound and the other clip's.

    OMP_NUM_THREADS=2 python runs/probe_a2v_talk_bridge_from_v8/figures/denoise.py PIPELINE [PIPELINE ...]

PIPELINE: a pipeline folder or shipped name. Writes denoise.json (per pipeline and t: the means over clips)
and denoise.png (per pipeline, rows of t: the first clip's mouth box every 4th frame) next to this file;
for a pipeline with a sync bridge, denoise.json also gives each block's bridge and main-attention output
projection norms (the bridge's starts at 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from avgen import AVPipeline
from avgen.diffusion.flow import interpolate
from avgen.diffusion.guidance import guided_velocity
from avgen.metrics.model_eval import ModelEvalConfig, test_samples
from avgen.metrics.prompted import score_prompted
from avgen.metrics.synth import lip_sync, mouth_openness
from avgen.tokens import VIDEO, unpack

CLIPS = 16
TS = (0.1, 0.3, 0.5, 0.7, 0.9)
OUT = Path(__file__).parent


def _mean(xs: list[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return round(float(np.mean(v)), 3) if v else None


def _mouth_stats(opens: list[np.ndarray], real: list[np.ndarray]) -> dict[str, float | None]:
    """Means over clips: share of frames with a mouth, the opening's std, its lag-0 correlation with the
    real clip's opening (``lip_sync``'s, None where either is flat)."""
    return {
        "mouth_shown": _mean([float((o > 0).mean()) for o in opens]),
        "opening_std": _mean([float(o.std()) for o in opens]),
        "corr_with_real": _mean([lip_sync(o, g, 24)["correlation"] for o, g in zip(opens, real)]),
    }


@torch.no_grad()
def denoise(
    pipe: AVPipeline, samples: list, encoded: list, t: float, shuffle: bool = False
) -> list[np.ndarray]:
    """``x0_hat`` of each sample's video at noise level ``t``, decoded: (T, H, W, 3) uint8 per clip.
    ``encoded``: ``pipe.encode`` of each sample's clip. ``shuffle``: clip i is given clip i+1's sound
    instead of its own (the control: what the noisy frames alone tell the model)."""
    out = []
    uncond = pipe.text_encoder([pipe.config.negative_prompt])
    for i, s in enumerate(samples):
        packed = encoded[i]
        video = (packed.modality == VIDEO)[None]  # (1, L)
        other = encoded[(i + 1) % len(samples)].tokens if shuffle else packed.tokens
        x0 = torch.where(video[..., None], packed.tokens, other)  # (1, L, F): these frames, that sound
        tt = torch.where(video, torch.full_like(x0[..., 0], t), torch.zeros_like(x0[..., 0]))  # (1, L)
        g = torch.Generator().manual_seed(1000 + i)
        x_t = interpolate(x0, torch.randn(x0.shape, generator=g), tt)
        text = pipe.text_encoder([s.caption])
        v_fn = guided_velocity(
            pipe.dit, packed.positions, packed.modality, text, uncond, video_scale=pipe.config.video_scale
        )
        x0_hat = torch.where(video[..., None], x_t - tt[..., None] * v_fn(x_t, tt), x0)
        geom = pipe.geometry(s.clip.video_duration, s.clip.height, s.clip.width, s.clip.fps)
        frames, _ = pipe._decode(*unpack(x0_hat, packed.layout), geom)
        out.append(frames[0])
    return out


def main() -> None:
    names = sys.argv[1:] or ["avgen-tiny"]
    cfg = ModelEvalConfig(per_family=CLIPS, families=("talk",), split="val")
    pipes = {n: AVPipeline.from_pretrained(n) for n in names}
    samples = test_samples(cfg, next(iter(pipes.values())).audio_codec.sample_rate)
    faces = [
        score_prompted(s.clip.video, 24, s.clip.audio, s.clip.sample_rate, s.caption)["face"] for s in samples
    ]

    def opening(videos: list[np.ndarray]) -> list[np.ndarray]:
        return [mouth_openness(v, f["mouth_center"], f["radius"]) for v, f in zip(videos, faces)]

    real = opening([s.clip.video for s in samples])
    stats: dict[str, dict] = {}
    strips: dict[str, list[np.ndarray]] = {}
    f0 = faces[0]
    cy, cx = (round(c) for c in f0["mouth_center"])
    r = round(0.5 * f0["radius"]) + 2

    def crop(video: np.ndarray) -> np.ndarray:
        return np.concatenate(list(video[::4, max(0, cy - r) : cy + r, max(0, cx - r) : cx + r]), axis=1)

    first = next(iter(pipes.values()))
    round_trip = [first.reconstruct(s.clip).video for s in samples]
    for label, videos in (
        ("ground truth", [s.clip.video for s in samples]),
        ("codec round trip", round_trip),
    ):
        stats[label] = _mouth_stats(opening(videos), real)
        strips[label] = [crop(videos[0])]
    for name, pipe in pipes.items():
        stats[name], strips[name] = {}, []
        encoded = [pipe.encode(s.clip) for s in samples]
        for t in TS:
            videos = denoise(pipe, samples, encoded, t)
            opens = opening(videos)
            control = denoise(pipe, samples, encoded, t, shuffle=True)
            shuffled = opening(control)
            stats[name][f"t={t}"] = {
                **_mouth_stats(opens, real),
                "corr_with_real_shuffled_sound": _mouth_stats(shuffled, real)["corr_with_real"],
                "opening_change_with_sound": _mean(
                    [float(np.abs(o - c).mean()) for o, c in zip(opens, shuffled)]
                ),
                "frame_change_with_sound": _mean(
                    [float(np.abs(a.astype(np.float32) - b).mean()) for a, b in zip(videos, control)]
                ),
            }
            strips[name].append(crop(videos[0]))
            print(name, t, stats[name][f"t={t}"], flush=True)
    rows = [(k, i, s) for k, ss in strips.items() for i, s in enumerate(ss)]
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 0.75 * len(rows)))
    for ax, (k, i, s) in zip(axes, rows):
        ax.imshow(s)
        ax.set_xticks([])
        ax.set_yticks([])
        label = k if k in ("ground truth", "codec round trip") else f"{Path(k).parent.name or k} t={TS[i]}"
        ax.set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(
        f"one-step x0 estimate at noise t, val talk clip 0 ({samples[0].caption[:60]}), mouth box", fontsize=8
    )
    fig.savefig(OUT / "denoise.png", dpi=110, bbox_inches="tight")
    # A grown sync bridge starts with a zero output projection: how far training moved it, per block, next
    # to the main attention's output projection (Frobenius norms).
    bridges = {
        n: [
            [round(float(b.bridge.attn.proj.weight.norm()), 3), round(float(b.attn.proj.weight.norm()), 3)]
            for b in p.dit.blocks
        ]
        for n, p in pipes.items()
        if p.dit.config.bridge_window > 0
    }
    meta = {
        "clips": CLIPS,
        "split": "val",
        "video_guidance": {n: p.config.video_scale for n, p in pipes.items()},
    }
    (OUT / "denoise.json").write_text(
        json.dumps({"settings": meta, "stats": stats, "bridge_vs_attention_proj_norm": bridges}, indent=1)
        + "\n"
    )


if __name__ == "__main__":
    main()
