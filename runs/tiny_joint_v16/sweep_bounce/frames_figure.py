"""Session 30: the first 4 val bounce prompts as real clips, as avgen-tiny draws them, and with the smoothed
clean estimate + frames first (every 3rd frame of 48). Clips come from `avgen eval model ... --save-clips`:

    avgen eval model --pipeline avgen-tiny --per-family 4 --split val --families bounce --tasks t2av \
        --save-clips --out /tmp/clips_default
    python runs/tiny_joint_v16/sweep_bounce/smoothed_x0.py 0.5 2 0 --pipeline avgen-tiny --per-family 4 \
        --split val --families bounce --tasks t2av --order video_first --save-clips --out /tmp/clips_smooth
    python runs/tiny_joint_v16/sweep_bounce/frames_figure.py /tmp/clips_default /tmp/clips_smooth OUT.png
"""

import sys
from pathlib import Path

import av
import matplotlib.pyplot as plt
import numpy as np


def strip(folder: Path) -> np.ndarray:
    rows = []
    for f in sorted(folder.glob("*.mp4")):
        with av.open(str(f)) as c:
            frames = [x.to_ndarray(format="rgb24") for x in c.decode(video=0)]
        rows.append(np.concatenate(frames[::3][:16], axis=1))
    return np.concatenate(rows, axis=0)


default, smooth, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
panels = [
    ("real val clips (4 prompts)", strip(default / "clips" / "gt")),
    ("avgen-tiny, text-to-audio-video, as shipped", strip(default / "clips" / "t2av")),
    (
        "clean estimate smoothed over time (0.5, [1,2,1] twice) + frames first",
        strip(smooth / "clips" / "t2av"),
    ),
]
fig, axes = plt.subplots(3, 1, figsize=(12, 9.6))
for ax, (title, img) in zip(axes, panels, strict=True):
    ax.imshow(img, interpolation="nearest")
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xticks(np.arange(16) * 64 + 32, [f"{i * 3 / 24:.2f}" for i in range(16)], fontsize=7)
    ax.set_yticks([])
axes[-1].set_xlabel("time (s)")
fig.tight_layout()
fig.savefig(out, dpi=80)
