"""The figure v2a_waveforms.png, and the clip RMS numbers quoted in runs/README.md (session 10 probes).

Clips first (val split, 4 bounce prompts, euler 50 steps, audio guidance 1; the runs' pipeline folders):
    for r in probe_v2a_bounce probe_v2a_bounce_bridge probe_v2a_bounce_1200 probe_v2a_bounce_bridge_1200; do
      avgen eval model --pipeline runs/$r/pipeline --split val --families bounce --tasks v2a --per-family 4 \
          --sampler euler --steps 50 --audio-guidance 1 --save-clips --out /tmp/fig_$r
    done
    avgen eval model --pipeline runs/probe_v2a_bounce/pipeline --split val --families bounce --tasks v2a \
        --per-family 3 --save-clips --out /tmp/fig_defaults      # avgen-tiny's heun 8 / guidance 8
Then:
    python runs/probe_v2a_bounce_bridge/figures/v2a_waveforms.py      # prints RMS per clip, writes the PNG
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

from avgen.reader import read_av

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLUMNS = [
    ("/tmp/fig_probe_v2a_bounce", "gt", "the real sound"),
    ("/tmp/fig_probe_v2a_bounce", "v2a", "plain DiT, 600 steps"),
    ("/tmp/fig_probe_v2a_bounce_bridge", "v2a", "sync bridge, 600 steps"),
    ("/tmp/fig_probe_v2a_bounce_1200", "v2a", "plain DiT, 1200 steps"),
    ("/tmp/fig_probe_v2a_bounce_bridge_1200", "v2a", "sync bridge, 1200 steps"),
]


def _audio(folder: str, task: str, i: int) -> tuple[np.ndarray, int]:
    clip = read_av(f"{folder}/clips/{task}/{i:03d}_bounce.mp4")
    return np.asarray(clip.audio)[0], clip.sample_rate


def main(clips: int = 4) -> None:
    for folder, task in [
        ("/tmp/fig_defaults", "gt"),
        ("/tmp/fig_defaults", "v2a"),
        *[c[:2] for c in COLUMNS],
    ]:
        if Path(folder).exists():
            count = len(list(Path(folder, "clips", task).glob("*_bounce.mp4")))
            rms = [float(np.sqrt((_audio(folder, task, i)[0] ** 2).mean())) for i in range(count)]
            print(f"{folder} {task}: clip RMS", " ".join(f"{r:.3f}" for r in rms))
    _fig, axes = plt.subplots(clips, len(COLUMNS), figsize=(22, 1.9 * clips), sharex=True)
    for j, (folder, task, title) in enumerate(COLUMNS):
        rows = json.loads(Path(folder, "report.json").read_text())["rows"][task]
        for i in range(clips):
            audio, rate = _audio(folder, task, i)
            ax = axes[i, j]
            ax.plot(np.arange(len(audio)) / rate, audio, lw=0.35, color="tab:blue")
            for x in rows[i]["impact"]["impact_times"]:
                ax.axvline(x, color="tab:green", lw=1.2, alpha=0.7)
            ax.set_yticks([])
            f1 = rows[i]["impact"]["f1"]
            ax.set_title(f"{title}, clip {i}: F1 {f1:.2f}" if f1 is not None else title, fontsize=9)
    axes[-1, 2].set_xlabel("seconds (green: the ball meets the floor in the given frames; val split)")
    plt.tight_layout()
    plt.savefig(Path(__file__).with_suffix(".png"), dpi=50)


if __name__ == "__main__":
    main()
