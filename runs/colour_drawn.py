"""What colour avgen-tiny draws when a caption asks for each ball colour (session 20, issue 8).

    OMP_NUM_THREADS=2 python runs/colour_drawn.py [--pipeline avgen-tiny] [--seeds 8] [--out FILE.json]
    OMP_NUM_THREADS=2 python runs/colour_drawn.py --real [--pipeline avgen-tiny] [--seeds 8] [--out FILE.json]

For every colour word, 'a medium COLOUR ball bounces slowly' (a size/colour pair seen in training) is
generated with ``--seeds`` seeds at the pipeline's own settings, and the foreground pixels (the same
foreground and colour classes as ``avgen.metrics.synth.prompt_adherence``) are split by the colour they
show. Real clips score their asked colour in all 32 test bounce clips (`gt` rows of any eval report).
``--real`` (session 21) scores real train-split clips of one ball of each colour (any size; the first
``--seeds`` such clips by seed) as rendered ("gt") and after a round trip through the pipeline's video
autoencoder ("codec"): what the picture codec alone keeps of each colour.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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


def real_shares(pipe: Any, per_colour: int, max_seeds: int = 20000) -> dict[str, dict[str, list[float]]]:
    """``{"gt": {colour: shares}, "codec": {...}}`` over the first ``per_colour`` one-ball train clips of
    each colour (searching at most ``max_seeds`` seeds)."""
    import torch

    from avgen.data.synth import SynthConfig, make_sample
    from avgen.pipeline import from_pixels, to_pixels

    synth = SynthConfig(families={"bounce": 1.0})
    codec = pipe.video_codec.float().eval()
    found: dict[str, list[np.ndarray]] = {c: [] for c in COLORS}
    seed = 0
    bar = tqdm(total=len(COLORS) * per_colour, desc="real clips")
    while any(len(v) < per_colour for v in found.values()):
        if seed == max_seeds:
            raise SystemExit(
                f"fewer than {per_colour} one-ball clips of some colour in {max_seeds} train seeds"
            )
        sample = make_sample(seed, "train", synth)
        seed += 1
        words = sample.caption.split()
        if not sample.caption.startswith("a ") or words[3:4] != ["ball"] or words[2] not in found:
            continue
        if len(found[words[2]]) < per_colour:
            found[words[2]].append(np.asarray(sample.clip.video))
            bar.update()
    bar.close()
    out: dict[str, dict[str, list[float]]] = {"gt": {}, "codec": {}}
    with torch.no_grad():
        for colour, clips in found.items():
            round_trip = [to_pixels(codec.decode(codec.encode(from_pixels(v))))[0] for v in clips]
            out["gt"][colour] = np.mean([drawn_shares(v) for v in clips], axis=0).round(3).tolist()
            out["codec"][colour] = np.mean([drawn_shares(v) for v in round_trip], axis=0).round(3).tolist()
    return out


def _print(title: str, table: dict[str, list[float]]) -> None:
    print(f"{title:7s} | {' | '.join(f'{n:>6s}' for n in NAMES)}")
    for colour, row in table.items():
        print(f"{colour:7s} | {' | '.join(f'{v:6.2f}' for v in row)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="avgen-tiny")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--real", action="store_true", help="real clips and their autoencoder round trip")
    args = p.parse_args()
    from avgen.atomic import write_json
    from avgen.pipeline import AVPipeline

    pipe = AVPipeline.from_pretrained(args.pipeline)
    if args.real:
        tables = real_shares(pipe, args.seeds)
        for name, table in tables.items():
            _print(name, table)
        if args.out is not None:
            write_json(args.out, {"pipeline": args.pipeline, "classes": NAMES, **tables}, mkdir_parents=True)
        return
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
    _print("asked", table)
    if args.out is not None:
        write_json(
            args.out, {"pipeline": args.pipeline, "classes": NAMES, "shares": table}, mkdir_parents=True
        )


if __name__ == "__main__":
    main()
