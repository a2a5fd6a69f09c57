"""What colour avgen-tiny draws when a caption asks for each ball colour (session 20, issue 8).

    OMP_NUM_THREADS=2 python runs/colour_drawn.py [--pipeline avgen-tiny] [--seeds 8] [--out FILE.json]

For every colour word, 'a medium COLOUR ball bounces slowly' (a size/colour pair seen in training) is
generated with ``--seeds`` seeds at the pipeline's own settings, and the foreground pixels (the same
foreground and colour classes as ``avgen.metrics.synth.prompt_adherence``) are split by the colour they
show. Real clips score their asked colour in all 32 test bounce clips (`gt` rows of any eval report).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avgen.data.synth.captions import COLORS
from avgen.metrics.synth import HUES, classify_colors, sampled_foreground

NAMES = [*HUES, "white"]


def drawn_shares(video: np.ndarray, max_frames: int = 12) -> np.ndarray:
    """``(len(NAMES),)`` share of coloured foreground pixels in each colour class; uint8 ``video (T, H, W, 3)``."""
    frames, _, fg = sampled_foreground(video, min(max_frames, len(video)))
    classes = classify_colors(frames)[fg]
    counts = np.bincount(classes[classes >= 0], minlength=len(NAMES)).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="avgen-tiny")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    from avgen.pipeline import AVPipeline

    pipe = AVPipeline.from_pretrained(args.pipeline)
    table: dict[str, list[float]] = {}
    bar = tqdm(total=len(COLORS) * args.seeds, desc="generate")
    for colour in COLORS:
        caption = f"a medium {colour} ball bounces slowly"
        shares = []
        for seed in range(args.seeds):
            clip = pipe(caption, seed=seed, progress=False)
            shares.append(drawn_shares(np.asarray(clip.video)))
            bar.update()
        table[colour] = np.mean(shares, axis=0).round(3).tolist()
    bar.close()
    print(f"asked   | {' | '.join(f'{n:>6s}' for n in NAMES)}")
    for colour, row in table.items():
        print(f"{colour:7s} | {' | '.join(f'{v:6.2f}' for v in row)}")
    if args.out is not None:
        from avgen.atomic import write_json

        write_json(
            args.out, {"pipeline": args.pipeline, "classes": NAMES, "shares": table}, mkdir_parents=True
        )


if __name__ == "__main__":
    main()
