"""Throughput of ``avgen data synth``: clips per minute for 2-second 64x64 clips, all families, MP4 output.

Run: .venv/bin/python benchmarks/synth_throughput.py [--n 300] [--workers 2]
Times the whole CLI (worker start-up, generation, H.264/AAC encoding, JSON and captions writing) into a
temporary folder and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    from avgen.data.cli import main as data_main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth"
        argv = ["synth", "--out", str(out), "--n", str(args.n), "--seed", str(args.seed), "--size", "64x64",
                "--duration", "2", "--workers", str(args.workers), "--quiet"]  # fmt: skip
        start = time.perf_counter()
        data_main(argv)
        elapsed = time.perf_counter() - start
        families = json.loads((out / "synth.json").read_text())["families"]
        mp4_bytes = sum(f.stat().st_size for f in out.glob("*.mp4"))
    print(json.dumps({
        "clips": args.n, "workers": args.workers, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "seconds": round(elapsed, 2), "clips_per_minute": round(args.n / elapsed * 60, 1),
        "families": families, "mean_mp4_kb": round(mp4_bytes / args.n / 1024, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
