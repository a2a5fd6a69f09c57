"""How often generated clips show more or fewer coloured objects than their caption asks (session 22, issue 8).

    python3 runs/count_errors.py [--task t2av] REPORT_DIR [REPORT_DIR ...]

Reads each ``report.json`` of ``avgen eval model`` and, per family with a count (talk: one face; bounce: the
balls asked), prints how many clips measured more objects than asked, fewer, and in all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("--task", default="t2av")
    args = p.parse_args()
    for folder in args.reports:
        rows = json.loads((folder / "report.json").read_text())["rows"][args.task]
        for family in ("talk", "bounce"):
            prompts = [
                r["prompt"]
                for r in rows
                if r["family"] == family and r["prompt"]["count_measured"] is not None
            ]
            more = sum(x["count_measured"] > x["count_asked"] for x in prompts)
            fewer = sum(x["count_measured"] < x["count_asked"] for x in prompts)
            print(f"{folder} {args.task} {family}: more {more}, fewer {fewer}, of {len(prompts)}")


if __name__ == "__main__":
    main()
