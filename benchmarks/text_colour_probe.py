"""Does the text encoder keep a colour word's meaning in the size/colour pairs the test split holds out?

avgen-synth's test split asks only for (size, colour) pairs that train and val never show
(``avgen.data.synth.captions.HELD_OUT``). If a generated ball comes out in the wrong colour for those
captions, either the text encoder's state for the colour word changes in the unseen pair, or the DiT bound
colour to size. For each held-out bounce pair this takes the encoder's state of the colour word in
``"a {size} {colour} ball bounces slowly"`` and its cosine similarity to the mean state of every colour
over the sizes seen with it: the nearest colour should be the asked one, by a wide margin.
Results: ``benchmarks/results/text_colour_probe.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_colour_probe.py
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from avgen.atomic import write_text
from avgen.data.synth.bounce import SIZES
from avgen.data.synth.captions import COLORS, HELD_OUT
from avgen.model.text import TextEncoder, default_encoder_path


def colour_state(encoder: TextEncoder, size: str, colour: str) -> Tensor:
    """``(D,)`` the encoder's state of ``colour``'s first word piece in the bounce caption."""
    caption = f"a {size} {colour} ball bounces slowly"
    index = 1 + len(encoder.tokenizer.tokenize(f"a {size}"))  # after [CLS] and the words before the colour
    return encoder([caption]).states[0, index]


def probe(encoder: TextEncoder) -> list[dict[str, object]]:
    """Per held-out bounce pair: ``{"pair", "similarity": {colour: cosine to its seen-pairs mean}}``."""
    held = HELD_OUT["bounce"]
    seen_mean = {
        c: torch.stack([colour_state(encoder, s, c) for s in SIZES if (s, c) not in held]).mean(0)
        for c in COLORS
    }
    rows = []
    for size, colour in sorted(held):
        v = colour_state(encoder, size, colour)
        sims = {c: torch.cosine_similarity(v, m, dim=0).item() for c, m in seen_mean.items()}
        rows.append(
            {"pair": f"{size} {colour}", "similarity": dict(sorted(sims.items(), key=lambda kv: -kv[1]))}
        )
    return rows


def markdown(rows: list[dict[str, object]], title: str) -> str:
    lines = [
        f"# Colour words in unseen size/colour pairs: {title}",
        "",
        "Cosine similarity of the colour word's state in a held-out (test) bounce caption to each colour's",
        "mean state over the sizes seen with it in training.",
        "",
        "| held-out pair | nearest colour | similarity | runner-up | similarity |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        (c1, s1), (c2, s2) = list(r["similarity"].items())[:2]
        lines.append(f"| {r['pair']} | {c1} | {s1:.3f} | {c2} | {s2:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    with torch.no_grad():
        rows = probe(TextEncoder.from_pretrained(default_encoder_path()))
    md = markdown(rows, "the default text encoder (all-MiniLM-L6-v2)")
    md += "\nReproduce: `OMP_NUM_THREADS=1 python benchmarks/text_colour_probe.py`\n"
    write_text(Path(__file__).parent / "results" / "text_colour_probe.md", md)
    print(md)


if __name__ == "__main__":
    main()
