"""Asked-colour hits per colour word, from `avgen eval model` reports (session 20, issue 8).

    python runs/colour_by_word.py REPORT_DIR... [--family bounce] [--task t2av]

Prints, for each report, "colour: clips with the asked colour / clips (mean share of the foreground in it)"
per set of colours a caption asks for. `gt` and `codec` rows are the real clips and their autoencoder
round trip: the ceiling a generated clip can reach.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def by_word(report: Path, family: str, task: str) -> dict[str, tuple[int, int, float]]:
    rows = [r for r in json.loads(report.read_text())["rows"][task] if r["family"] == family]
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for r in rows:
        key = "+".join(r["prompt"]["colors_asked"])
        out[key][0] += bool(r["prompt"]["color_ok"])
        out[key][1] += 1
        out[key][2] += r["prompt"]["color_fraction"] or 0.0
    return {k: (int(a), int(n), f / n) for k, (a, n, f) in sorted(out.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path, help="folders with a report.json")
    p.add_argument("--family", default="bounce")
    p.add_argument("--task", default="t2av", help="t2av, a2v, gt or codec")
    args = p.parse_args()
    for folder in args.reports:
        counts = by_word(folder / "report.json", args.family, args.task)
        hits, total = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
        cells = " ".join(f"{k}:{a}/{n}({f:.2f})" for k, (a, n, f) in counts.items())
        print(f"{folder} {args.task} {hits}/{total}: {cells}")


if __name__ == "__main__":
    main()
