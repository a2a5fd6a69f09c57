"""Mouth openness against the sound for a few val talk clips: ground truth, the codec round trip, and
audio-to-video by the shipped avgen-tiny and by the probe (heun 8, video guidance 4, the evaluation's seeds).
Each row's mouth box is where that row's own face was found, as ``avgen eval model`` scores it.

    OMP_NUM_THREADS=2 python runs/probe_a2v_talk_from_v8/figures/mouth.py [RUN]

RUN (default probe_a2v_talk_from_v8) names the probe under runs/; the figure goes to runs/RUN/figures/.

Writes mouth.png (per clip: the sound's per-frame RMS and each row's openness; below, the mouth box of every
4th frame) and mouth.json (per row and clip: mean and std of the openness, its lag-0 correlation with the
sound, and the share of frames with no mouth-coloured pixel at all).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from avgen import AVPipeline
from avgen.clip import AVClip
from avgen.metrics.model_eval import ModelEvalConfig, test_samples
from avgen.metrics.prompted import score_prompted
from avgen.metrics.synth import frame_rms, lip_sync, mouth_openness

RUN = Path("runs") / (sys.argv[1] if len(sys.argv) > 1 else "probe_a2v_talk_from_v8")
CLIPS = 4


def main() -> None:
    shipped = AVPipeline.from_pretrained("runs/avgen-tiny-v8")  # as shipped in sessions 18-26: make avgen-tiny-v8
    probe = AVPipeline.from_pretrained(RUN / "pipeline")
    out = RUN / "figures"
    out.mkdir(exist_ok=True)
    cfg = ModelEvalConfig(per_family=CLIPS, families=("talk",), split="val")
    samples = test_samples(cfg, shipped.audio_codec.sample_rate)
    rows: dict[str, list] = {"ground truth": [], "codec round trip": [], "shipped a2v": [], "probe a2v": []}
    for i, s in enumerate(samples):
        given = AVClip(audio=s.clip.audio, sample_rate=s.clip.sample_rate)
        kw = dict(audio=given, height=64, width=64, fps=24, seed=cfg.seed + i, progress=False)
        rows["ground truth"].append(s.clip)
        rows["codec round trip"].append(shipped.reconstruct(s.clip))
        rows["shipped a2v"].append(shipped(s.caption, **kw))
        rows["probe a2v"].append(probe(s.caption, **kw))
    stats: dict[str, list] = {k: [] for k in rows}
    fig, axes = plt.subplots(2 * CLIPS, 1, figsize=(10, 3.2 * CLIPS), gridspec_kw={"hspace": 0.45})
    for i, s in enumerate(samples):
        gt = s.clip
        env = frame_rms(gt.audio, gt.sample_rate, 24, len(gt.video))
        ax = axes[2 * i]
        ax.plot(env / (env.max() + 1e-9), "k--", label="sound RMS (scaled)")
        strips = []
        for name, clips in rows.items():
            video = clips[i].video
            face = score_prompted(video, 24, clips[i].audio, clips[i].sample_rate, s.caption)["face"]
            o = mouth_openness(video, face["mouth_center"], face["radius"])
            ls = lip_sync(o, env, 24)
            stats[name].append(
                {
                    "mean": round(float(o.mean()), 3),
                    "std": round(float(o.std()), 3),
                    "correlation": None if ls["correlation"] is None else round(ls["correlation"], 3),
                    "closed_share": round(float((o == 0).mean()), 3),
                }
            )
            ax.plot(o / (o.max() + 1e-9), label=name)
            cy, cx = (round(c) for c in face["mouth_center"])
            r = round(0.5 * face["radius"]) + 2
            crop = video[::4, max(0, cy - r) : cy + r, max(0, cx - r) : cx + r]
            strips.append(np.concatenate(list(crop), axis=1))
        ax.set_title(f"val talk clip {i}: {s.caption[:70]}", fontsize=8)
        ax.legend(fontsize=6, loc="upper right")
        width = max(x.shape[1] for x in strips)
        axes[2 * i + 1].imshow(
            np.concatenate([np.pad(x, ((0, 1), (0, width - x.shape[1]), (0, 0))) for x in strips])
        )
        axes[2 * i + 1].set_yticks([])
        axes[2 * i + 1].set_xticks([])
        axes[2 * i + 1].set_ylabel("gt / codec\nshipped / probe", fontsize=6)
    fig.savefig(out / "mouth.png", dpi=110, bbox_inches="tight")
    (out / "mouth.json").write_text(json.dumps(stats, indent=1) + "\n")
    for name, rs in stats.items():
        print(name, [(r["mean"], r["std"], r["correlation"], r["closed_share"]) for r in rs])


if __name__ == "__main__":
    main()
