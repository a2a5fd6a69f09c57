"""Session 30: clips side by side, every 3rd frame of 48 for each clip of each panel, from the MP4 folders
that `avgen eval model ... --save-clips` writes (OUT/clips/gt, OUT/clips/t2av, ...). frames.png here:

    avgen eval model --pipeline avgen-tiny --per-family 4 --split val --families bounce --tasks t2av \
        --save-clips --out /tmp/clips_default
    python runs/tiny_joint_v16/sweep_bounce/smoothed_x0.py 0.5 2 0 --pipeline avgen-tiny --per-family 4 \
        --split val --families bounce --tasks t2av --order video_first --save-clips --out /tmp/clips_smooth
    python runs/tiny_joint_v16/sweep_bounce/frames_figure.py runs/tiny_joint_v16/sweep_bounce/frames.png \
        "real val clips (4 prompts)=/tmp/clips_default/clips/gt" \
        "avgen-tiny, text-to-audio-video, as shipped=/tmp/clips_default/clips/t2av" \
        "clean estimate smoothed over time (0.5, [1,2,1] twice) + frames first=/tmp/clips_smooth/clips/t2av"

    python frames_figure.py OUT.png "TITLE=FOLDER" ... [--clips N]   (the first N clips of each; default 4)
"""

import argparse
from pathlib import Path

import av
import matplotlib.pyplot as plt
import numpy as np


def strip(folder: Path, clips: int) -> np.ndarray:
    """(clips * H, 16 * W, 3) uint8: each clip's frames 0, 3, ..., 45 side by side, one clip per row."""
    rows = []
    for f in sorted(folder.glob("*.mp4"))[:clips]:
        with av.open(str(f)) as c:
            frames = [x.to_ndarray(format="rgb24") for x in c.decode(video=0)]
        rows.append(np.concatenate(frames[::3][:16], axis=1))
    if not rows:
        raise SystemExit(f"{folder}: no .mp4 clips; write them with `avgen eval model ... --save-clips`")
    return np.concatenate(rows, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("panels", nargs="+", help="TITLE=FOLDER of MP4 clips")
    ap.add_argument("--clips", type=int, default=4)
    args = ap.parse_args()
    panels = [(t, strip(Path(f), args.clips)) for t, f in (p.rsplit("=", 1) for p in args.panels)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.2 * len(panels)), squeeze=False)
    for ax, (title, img) in zip(axes[:, 0], panels, strict=True):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=10, loc="left")
        width = img.shape[1] // 16
        ax.set_xticks(
            np.arange(16) * width + width // 2, [f"{i * 3 / 24:.2f}" for i in range(16)], fontsize=7
        )
        ax.set_yticks([])
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)


if __name__ == "__main__":
    main()
