"""The talk lip-sync table of runs/README.md's session-24 section, from the eval reports' rows.

    python runs/probe_a2v_talk_bridge_from_v8/lip_table.py REPORT_DIR [REPORT_DIR ...]

Per report and generated task: the lag-0 lip correlation (mean over the clips whose mouth opening changes
at all) against shuffled pairs, the lag median and share within a frame, the mouth columns, and how many
clips the correlation is a mean over. It reads ``rows`` as well as ``summary`` because reports written
before ``mouth_moving`` existed (this session's first ones) lack that key.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    print(
        "| report | task | correlation (shuffled) | lag median ms, within 1 frame | mouth shown | opening std "
        "| clips scored |"
    )
    print("|---|---|---|---|---|---|---|")
    for folder in sys.argv[1:]:
        r = json.loads((Path(folder) / "report.json").read_text())
        for task, fams in r["summary"].items():
            s = fams.get("talk")
            if task == "gt" or not s:
                continue
            rows = [x for x in r["rows"][task] if x["family"] == "talk"]
            scored = sum(1 for x in rows if x["lip_sync"] and x["lip_sync"]["correlation"] is not None)
            print(
                f"| {folder} | {task} | {s['correlation']:.3f} ({s['shuffled_correlation']:.3f}) | "
                f"{s['lag_ms_median']:.0f}, {100 * s['within_one_frame']:.0f} % | {s['mouth_shown']:.3f} | "
                f"{s['mouth_opening_std']:.3f} | {scored} of {len(rows)} |"
            )


if __name__ == "__main__":
    main()
